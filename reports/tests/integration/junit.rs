use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::fixture::basic_report;
use crate::golden::assert_golden;

#[test]
fn basic_report_matches_golden_file() {
    assert_golden("basic_report.xml", &reports::junit::render(&basic_report()));
}

/// Counts read back from a JUnit document: what the attributes claim and what the
/// elements show.
#[derive(Debug, Default, PartialEq)]
pub struct Tally {
    pub tests: usize,
    pub failures: usize,
    pub errors: usize,
    pub skipped: usize,
}

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &str) -> String {
    e.try_get_attribute(name)
        .unwrap()
        .unwrap_or_else(|| panic!("missing attribute {name}"))
        .unescape_value()
        .unwrap()
        .into_owned()
}

fn claimed(e: &quick_xml::events::BytesStart<'_>) -> Tally {
    let n = |name| attr(e, name).parse::<usize>().unwrap();
    Tally {
        tests: n("tests"),
        failures: n("failures"),
        errors: n("errors"),
        skipped: n("skipped"),
    }
}

/// Parses `xml` with quick-xml (end names checked) and checks that every testsuite's and
/// the root's counts match the testcases inside. Returns the root's counts and the
/// number of suites.
pub fn check_counts(xml: &str) -> (Tally, usize) {
    let mut reader = Reader::from_str(xml);
    let mut root = None;
    let mut suite_claim = None;
    let mut suite = Tally::default();
    let mut total = Tally::default();
    let mut suites = 0;
    loop {
        let event = reader.read_event().unwrap_or_else(|e| {
            panic!("not well-formed at {}: {e}\n{xml}", reader.error_position())
        });
        match event {
            Event::Start(e) | Event::Empty(e) => {
                // Values must unescape.
                for a in e.attributes() {
                    a.unwrap().unescape_value().unwrap();
                }
                match e.name().as_ref() {
                    b"testsuites" => root = Some(claimed(&e)),
                    b"testsuite" => {
                        suites += 1;
                        suite_claim = Some(claimed(&e));
                        suite = Tally::default();
                    }
                    b"testcase" => {
                        suite.tests += 1;
                        total.tests += 1;
                    }
                    b"failure" => {
                        suite.failures += 1;
                        total.failures += 1;
                    }
                    b"error" => {
                        suite.errors += 1;
                        total.errors += 1;
                    }
                    b"skipped" => {
                        suite.skipped += 1;
                        total.skipped += 1;
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                t.decode().unwrap();
            }
            Event::End(e) if e.name().as_ref() == b"testsuite" => {
                assert_eq!(suite_claim.take(), Some(std::mem::take(&mut suite)));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(root.as_ref(), Some(&total), "root counts");
    (total, suites)
}

#[test]
fn basic_report_parses_back_and_counts_add_up() {
    let xml = reports::junit::render(&basic_report());
    let (total, suites) = check_counts(&xml);
    // Six scenarios, five thresholds, three gates and the interruption: the two failed
    // scenarios, the failed threshold and the failing critical gate are failures; the
    // scenario in error and the interruption are errors.
    assert_eq!(
        total,
        Tally {
            tests: 15,
            failures: 4,
            errors: 2,
            skipped: 1
        }
    );
    assert_eq!(suites, 4);
    roxmltree::Document::parse(&xml).unwrap();
}

#[test]
fn gates_come_first_and_only_a_critical_one_fails() {
    let xml = reports::junit::render(&basic_report());
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suites: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites[0].attribute("name"), Some("gates"));
    let mut cases: Vec<_> = suites[0]
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let child = |case: &roxmltree::Node<'_, '_>, tag: &str| {
        case.children()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.attribute("message").or(n.text()).map(str::to_owned))
    };
    // The run was interrupted: that comes first, as an error.
    let interruption = cases.remove(0);
    assert_eq!(interruption.attribute("name"), Some("the run finished"));
    assert_eq!(
        child(&interruption, "error").as_deref(),
        Some("the run was interrupted: 1 of 6 scenarios not run")
    );
    // Critical and held; critical and failed; not critical and failed (a warning).
    assert_eq!(child(&cases[0], "failure"), None);
    assert_eq!(
        child(&cases[1], "failure").as_deref(),
        Some("pass rate of all scenarios: 50.0% (2/4), target >= 90%")
    );
    assert_eq!(child(&cases[2], "failure"), None);
    assert!(
        child(&cases[2], "system-out")
            .unwrap()
            .starts_with("WARNING: p95 of scenario duration")
    );
    let critical: Vec<_> = cases
        .iter()
        .map(|c| {
            c.descendants()
                .find(|n| n.attribute("name") == Some("critical"))
                .and_then(|n| n.attribute("value"))
                .unwrap()
        })
        .collect();
    assert_eq!(critical, ["true", "true", "false"]);
}

#[test]
fn a_report_without_gates_has_no_gates_suite() {
    let mut report = basic_report();
    report.gates.clear();
    report.partition = None;
    report.interrupted = false;
    let xml = reports::junit::render(&report);
    assert!(
        !xml.contains("name=\"gates\"") && !xml.contains("partition"),
        "{xml}"
    );
    let (total, suites) = check_counts(&xml);
    assert_eq!((total.tests, suites), (11, 3));
}

// Regression: an interrupted run reported 0 failures and 0 errors in JUnit, so a CI that
// reads only the counts took it for green.
#[test]
fn an_interrupted_run_is_an_error_even_without_gates() {
    let mut report = basic_report();
    report.gates.clear();
    for s in &mut report.scenarios {
        s.outcome = reports::Outcome::Skipped;
        s.failures = vec![reports::Failure {
            kind: "interrupted".into(),
            message: "not run to the end: the run was interrupted".into(),
            detail: String::new(),
        }];
        s.metrics.thresholds.clear();
    }
    let xml = reports::junit::render(&report);
    let (total, suites) = check_counts(&xml);
    assert_eq!(
        total,
        Tally {
            tests: 7,
            failures: 0,
            errors: 1,
            skipped: 6
        }
    );
    assert_eq!(suites, 4, "the gates suite carries the interruption");
    assert!(
        xml.contains(r#"<error message="the run was interrupted: 6 of 6 scenarios not run" type="interrupted"/>"#),
        "{xml}"
    );
}

#[test]
fn retries_follow_surefire() {
    let xml = reports::junit::render(&basic_report());
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
            .unwrap()
    };
    let tags = |n: roxmltree::Node<'_, '_>| -> Vec<String> {
        n.children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name().to_owned())
            .collect()
    };
    let flaky = case("coder retries through a 5xx burst");
    assert_eq!(
        tags(flaky),
        ["properties", "flakyFailure", "system-out", "system-err"]
    );
    let attempt = flaky
        .children()
        .find(|n| n.has_tag_name("flakyFailure"))
        .unwrap();
    assert_eq!(attempt.attribute("type"), Some("timeout"));
    assert_eq!(attempt.attribute("time"), Some("1.000"));
    assert!(xml.contains(r#"<property name="flaky" value="true"/>"#));

    let failed = case("critic asks for one refinement, then accepts");
    assert_eq!(
        tags(failed),
        [
            "properties",
            "failure",
            "rerunFailure",
            "system-out",
            "system-err"
        ]
    );
}

#[test]
fn ansi_and_control_characters_are_gone() {
    let xml = reports::junit::render(&basic_report());
    assert!(!xml.contains('\x1b') && !xml.contains('\u{1}'));
    assert!(
        xml.contains("ERROR critic call failed: 404\nretrying in 0.5s"),
        "{xml}"
    );
}
