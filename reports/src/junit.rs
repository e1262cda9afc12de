//! `junit.xml`: the run as a JUnit XML document, the format CI test reporters read
//! (Jenkins, GitLab, GitHub actions such as dorny/test-reporter and
//! mikepenz/action-junit-report).
//!
//! The shape:
//!
//! ```text
//! <testsuites name="agent-harness" tests failures errors skipped time timestamp>
//!   <testsuite name="gates" tests failures errors skipped time timestamp>    first, when there are gates or the run was interrupted
//!     <properties> partition                                                  when partitioned
//!     <testcase name="the run finished" classname="gates" time="0.000">       when the run was interrupted
//!       <error message="the run was interrupted: <n> of <total> scenarios not run" type="interrupted"/>
//!     <testcase name=<gate name> classname="gates" time="0.000">
//!       <properties> critical, metric, target, actual
//!       <failure message="<metric>: <actual>, target <target>" type="gate">detail</failure>   a critical gate failed
//!       <system-out>WARNING: <metric>: <actual>, target <target> …</system-out>               a non-critical one did
//!   <testsuite name=<suite> tests failures errors skipped time timestamp>   one per suite, first seen first
//!     <properties> partition                                                  when partitioned
//!     <testcase name=<scenario name> classname=<suite, / as .> file=<path> time>
//!       <properties> id (a matrix case's, whose file is the path before `[`), seed, target, tags, exit_code, attempts, flaky,
//!                    latency.<histogram>, memory.*, load, tokens_per_run, cost_per_run
//!       <failure message type>every failure, then every failed threshold</failure>   Failed
//!       <error message type>every failure</error>       Error
//!       <skipped message/>                              Skipped
//!       <rerunFailure message type time>…</rerunFailure>   per earlier attempt of a Failed or Error scenario
//!       <flakyFailure message type time>…</flakyFailure>   per failed attempt of a flaky scenario
//!       <system-out>the stub journal, a line per request</system-out>
//!       <system-err>the target's stderr tail</system-err>
//!     <testcase name=<threshold as written> classname=<suite>.<file stem>.thresholds file=<path> time="0.000">
//!       <properties> scenario, observed                 one per threshold, after its scenario
//!       <failure message="<threshold>: observed <value>" type="threshold"/>   it failed
//!       <system-out><threshold>: observed <value></system-out>               it held
//! ```
//!
//! Retries follow Maven Surefire (which nextest also writes): a scenario that passed after
//! failing is a passed testcase with a `<flakyFailure>` per failed attempt, so a CI test
//! tab stays green but shows the flake; one that failed every attempt is a failure with a
//! `<rerunFailure>` per earlier attempt. A failing non-critical gate is a passed testcase
//! whose output starts with `WARNING:`, for the same reason: it must not turn the tab red.
//!
//! A scenario's performance numbers are properties of its testcase, for tools that read
//! them: a property per latency histogram (`latency.end_to_end`, `latency.llm.planner`,
//! `latency.time_to_first_token`, `latency.inter_token`, `latency.executor.sandbox`)
//! whose value is `count=… p50=…ms p95=…ms p99=…ms max=…ms`, then
//! `memory.peak_rss_bytes`, `memory.growth_per_run_bytes`, `load` (the load run in
//! words), `tokens_per_run` and `cost_per_run`, each when measured.
//!
//! Each of a scenario's thresholds is a testcase of its own, in the scenario's suite right
//! after it: a failed one fails, and one that held passes. Passing ones are written too so
//! a CI test tab shows how many thresholds a scenario has, and so a reader that keeps a
//! history per testcase (Jenkins, GitLab) sees a threshold go from passing to failing and
//! back, instead of a failure that appears from nowhere. The classname carries the
//! scenario's file stem (`refpipe.perf.load_smoke.thresholds`) so that two scenarios in
//! one folder with the same threshold make distinct testcases. A failed threshold also
//! fails the scenario, and is listed in its `<failure>` unless the harness already
//! reported it there.
//!
//! Scenarios at the scenario root (suite `.`) get the classname `scenarios`. Times are
//! seconds with three decimals; a suite's time is the sum of its scenarios' times, the
//! root's is the run's wall time; gates take no time. The root's counts include the gate
//! testcases. Every text and attribute is cleaned of ANSI escape sequences and of
//! characters XML 1.0 forbids, then escaped, so the document is well-formed whatever the
//! strings in the report.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use quick_xml::Writer;
use quick_xml::escape::{escape, partial_escape};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::metrics::{ScenarioMetrics, ThresholdResult};
use crate::model::{FailedAttempt, Failure, GateResult, Outcome, RunReport, ScenarioResult};
use crate::{text, view};

/// The root element's `name`.
const ROOT_NAME: &str = "agent-harness";
/// The name of the testsuite of gates, and the classname of its testcases.
const GATES_SUITE: &str = "gates";
/// The name of the testcase that stands for an interruption in the gates suite.
const INTERRUPTION_CASE: &str = "the run finished";
/// The classname of scenarios at the scenario root (suite `.`).
const ROOT_CLASSNAME: &str = "scenarios";

/// Renders `report` as a JUnit XML document, ending with a newline.
///
/// Pure and deterministic: the same report gives the same bytes.
pub fn render(report: &RunReport) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    write_report(&mut writer, report).expect("writing into a Vec<u8> cannot fail");
    let mut xml = String::from_utf8(writer.into_inner())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    xml.push('\n');
    xml
}

type Xml = Writer<Vec<u8>>;

fn write_report(w: &mut Xml, report: &RunReport) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut counts = Counts::of(report.scenarios.iter());
    let gates = Counts::of_gates(report);
    counts.tests += gates.tests;
    counts.failures += gates.failures;
    counts.errors += gates.errors;
    w.write_event(Event::Start(element(
        "testsuites",
        &[
            ("name", ROOT_NAME),
            ("tests", &counts.tests.to_string()),
            ("failures", &counts.failures.to_string()),
            ("errors", &counts.errors.to_string()),
            ("skipped", &counts.skipped.to_string()),
            ("time", &secs(report.duration)),
            ("timestamp", &report.started_at),
        ],
    )))?;
    if !report.gates.is_empty() || report.interrupted {
        suite_start(w, GATES_SUITE, &gates, report)?;
        if report.interrupted {
            write_interruption(w, report)?;
        }
        for gate in &report.gates {
            write_gate(w, gate)?;
        }
        w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    for (suite, scenarios) in suites(&report.scenarios) {
        suite_start(w, suite, &Counts::of(scenarios.iter().copied()), report)?;
        for scenario in scenarios {
            write_case(w, scenario)?;
            for threshold in &scenario.metrics.thresholds {
                write_threshold(w, scenario, threshold)?;
            }
        }
        w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuites")))
}

/// `<testsuite …>` and, when the run was partitioned, its `<properties>`.
fn suite_start(w: &mut Xml, name: &str, counts: &Counts, report: &RunReport) -> io::Result<()> {
    w.write_event(Event::Start(element(
        "testsuite",
        &[
            ("name", name),
            ("tests", &counts.tests.to_string()),
            ("failures", &counts.failures.to_string()),
            ("errors", &counts.errors.to_string()),
            ("skipped", &counts.skipped.to_string()),
            ("time", &secs(counts.time)),
            ("timestamp", &report.started_at),
        ],
    )))?;
    if let Some(partition) = &report.partition {
        w.write_event(Event::Start(BytesStart::new("properties")))?;
        property(w, "partition", partition)?;
        w.write_event(Event::End(BytesEnd::new("properties")))?;
    }
    Ok(())
}

/// A gate as a testcase: a failing critical gate is a `<failure>`; a failing
/// non-critical one passes with a `WARNING:` in its output.
fn write_gate(w: &mut Xml, gate: &GateResult) -> io::Result<()> {
    w.write_event(Event::Start(element(
        "testcase",
        &[
            ("name", &gate.name),
            ("classname", GATES_SUITE),
            ("time", &secs(Duration::ZERO)),
        ],
    )))?;
    w.write_event(Event::Start(BytesStart::new("properties")))?;
    property(w, "critical", if gate.critical { "true" } else { "false" })?;
    property(w, "metric", &gate.metric)?;
    property(w, "target", &gate.target)?;
    if let Some(actual) = &gate.actual {
        property(w, "actual", actual)?;
    }
    w.write_event(Event::End(BytesEnd::new("properties")))?;

    let statement = format!(
        "{}: {}, target {}",
        gate.metric,
        view::actual(gate),
        gate.target
    );
    let with_detail = |prefix: &str| {
        if gate.detail.is_empty() {
            format!("{prefix}{statement}")
        } else {
            format!("{prefix}{statement}\n{}", gate.detail)
        }
    };
    match view::GateStatus::of(gate) {
        view::GateStatus::Failed => {
            let start = element("failure", &[("message", &statement), ("type", "gate")]);
            if gate.detail.is_empty() {
                w.write_event(Event::Empty(start))?;
            } else {
                w.write_event(Event::Start(start))?;
                w.write_event(Event::Text(text_node(&gate.detail)))?;
                w.write_event(Event::End(BytesEnd::new("failure")))?;
            }
        }
        view::GateStatus::Warning => text_element(w, "system-out", &with_detail("WARNING: "))?,
        view::GateStatus::Passed => text_element(w, "system-out", &with_detail(""))?,
    }
    w.write_event(Event::End(BytesEnd::new("testcase")))
}

/// An interrupted run as an `<error>` testcase first in the gates suite, so that no CI
/// reading only the counts takes a run that stopped half-way for a green one.
fn write_interruption(w: &mut Xml, report: &RunReport) -> io::Result<()> {
    w.write_event(Event::Start(element(
        "testcase",
        &[
            ("name", INTERRUPTION_CASE),
            ("classname", GATES_SUITE),
            ("time", &secs(Duration::ZERO)),
        ],
    )))?;
    let message = format!(
        "the run was interrupted: {} of {} scenarios not run",
        report.not_run(),
        report.scenarios.len()
    );
    w.write_event(Event::Empty(element(
        "error",
        &[("message", &message), ("type", "interrupted")],
    )))?;
    w.write_event(Event::End(BytesEnd::new("testcase")))
}

fn write_case(w: &mut Xml, s: &ScenarioResult) -> io::Result<()> {
    w.write_event(Event::Start(element(
        "testcase",
        &[
            ("name", &s.name),
            ("classname", &classname(&s.suite)),
            ("file", source_file(&s.path)),
            ("time", &secs(s.duration)),
        ],
    )))?;

    w.write_event(Event::Start(BytesStart::new("properties")))?;
    if s.path != source_file(&s.path) {
        property(w, "id", &s.path)?;
    }
    property(w, "seed", &s.seed.to_string())?;
    property(w, "target", &s.target)?;
    if !s.tags.is_empty() {
        property(w, "tags", &s.tags.join(","))?;
    }
    if let Some(code) = s.exit_code {
        property(w, "exit_code", &code.to_string())?;
    }
    if s.attempts() > 1 {
        property(w, "attempts", &s.attempts().to_string())?;
    }
    if s.is_flaky() {
        property(w, "flaky", "true")?;
    }
    metric_properties(w, &s.metrics)?;
    w.write_event(Event::End(BytesEnd::new("properties")))?;

    match s.outcome {
        Outcome::Passed => {}
        Outcome::Failed => problem(
            w,
            "failure",
            ("scenario failed", "failed"),
            &view::all_failures(s),
            &[],
        )?,
        Outcome::Error => problem(
            w,
            "error",
            ("scenario could not run", "error"),
            &view::all_failures(s),
            &[],
        )?,
        Outcome::Skipped => {
            let message = s.failures.first().map_or("skipped", |f| f.message.as_str());
            w.write_event(Event::Empty(element("skipped", &[("message", message)])))?;
        }
    }
    let attempt_tag = match s.outcome {
        Outcome::Passed => "flakyFailure",
        Outcome::Failed | Outcome::Error | Outcome::Skipped => "rerunFailure",
    };
    for attempt in &s.failed_attempts {
        attempt_element(w, attempt_tag, attempt)?;
    }

    if !s.journal.is_empty() {
        let lines: Vec<String> = s
            .journal
            .iter()
            .map(|entry| text::one_line(&entry.to_string()))
            .collect();
        text_element(w, "system-out", &lines.join("\n"))?;
    }
    if !s.stderr_tail.is_empty() {
        text_element(w, "system-err", &s.stderr_tail)?;
    }
    w.write_event(Event::End(BytesEnd::new("testcase")))
}

/// The performance numbers of a scenario, as properties (see the module docs).
fn metric_properties(w: &mut Xml, m: &ScenarioMetrics) -> io::Result<()> {
    for latency in view::latencies(m) {
        property(
            w,
            &format!("latency.{}", latency.key),
            &view::latency_summary(latency.histo),
        )?;
    }
    if let Some(memory) = &m.memory {
        property(
            w,
            "memory.peak_rss_bytes",
            &memory.peak_rss_bytes.to_string(),
        )?;
        if let Some(growth) = memory.growth_per_run_bytes {
            property(w, "memory.growth_per_run_bytes", &format!("{growth:.1}"))?;
        }
    }
    if let Some(load) = &m.load {
        property(w, "load", &view::load_summary(load))?;
    }
    if let Some(tokens) = m.tokens_per_run {
        property(w, "tokens_per_run", &format!("{tokens:.1}"))?;
    }
    if let Some(cost) = m.cost_per_run {
        property(w, "cost_per_run", &format!("{cost:.6}"))?;
    }
    Ok(())
}

/// A threshold of scenario `s` as a testcase: failed, or passed with the observed value
/// in its output.
fn write_threshold(w: &mut Xml, s: &ScenarioResult, t: &ThresholdResult) -> io::Result<()> {
    w.write_event(Event::Start(element(
        "testcase",
        &[
            ("name", &t.name),
            ("classname", &threshold_classname(s)),
            ("file", source_file(&s.path)),
            ("time", &secs(Duration::ZERO)),
        ],
    )))?;
    w.write_event(Event::Start(BytesStart::new("properties")))?;
    property(w, "scenario", &s.name)?;
    property(w, "observed", &t.observed)?;
    w.write_event(Event::End(BytesEnd::new("properties")))?;
    let statement = view::threshold_statement(t);
    if t.passed {
        text_element(w, "system-out", &statement)?;
    } else {
        w.write_event(Event::Empty(element(
            "failure",
            &[("message", &statement), ("type", "threshold")],
        )))?;
    }
    w.write_event(Event::End(BytesEnd::new("testcase")))
}

/// `<suite classname>.<file stem>.thresholds`: `refpipe/perf/load_smoke.toml` in suite
/// `refpipe/perf` → `refpipe.perf.load_smoke.thresholds`.
/// A matrix case keeps its values: `sweep.toml[n=5]` → `….sweep[n=5].thresholds`.
fn threshold_classname(s: &ScenarioResult) -> String {
    let path = source_file(&s.path);
    let case = &s.path[path.len()..];
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.strip_suffix(".toml").unwrap_or(file);
    format!("{}.{stem}{case}.thresholds", classname(&s.suite))
}

/// `<flakyFailure>` or `<rerunFailure>` for a failed attempt: as [`problem`], with the
/// attempt's time.
fn attempt_element(w: &mut Xml, tag: &str, attempt: &FailedAttempt) -> io::Result<()> {
    let time = secs(attempt.duration);
    problem(
        w,
        tag,
        ("attempt failed", "failed"),
        &attempt.failures,
        &[("time", &time)],
    )
}

/// `<failure>`, `<error>` or an attempt's element: the first failure's message and kind
/// as attributes (or a count when there are several; `fallback` when there are none),
/// then `extra` attributes, every failure in the text.
fn problem(
    w: &mut Xml,
    tag: &str,
    fallback: (&str, &str),
    failures: &[Failure],
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let (message, kind) = match failures {
        [] => (fallback.0.to_owned(), fallback.1),
        [only] => (text::one_line(&only.message), only.kind.as_str()),
        [first, ..] => {
            let messages: Vec<String> = failures
                .iter()
                .map(|f| text::one_line(&f.message))
                .collect();
            let message = format!("{} failures: {}", failures.len(), messages.join("; "));
            (message, first.kind.as_str())
        }
    };
    let mut attributes = vec![("message", message.as_str()), ("type", kind)];
    attributes.extend_from_slice(extra);
    let start = element(tag, &attributes);
    if failures.is_empty() {
        return w.write_event(Event::Empty(start));
    }
    let body: Vec<String> = failures
        .iter()
        .map(|f| {
            if f.detail.is_empty() {
                format!("{}: {}", f.kind, f.message)
            } else {
                format!("{}: {}\n{}", f.kind, f.message, f.detail)
            }
        })
        .collect();
    w.write_event(Event::Start(start))?;
    w.write_event(Event::Text(text_node(&body.join("\n\n"))))?;
    w.write_event(Event::End(BytesEnd::new(tag)))
}

/// The file a scenario id names: a matrix case `file.toml[k=v,…]` is in `file.toml`.
fn source_file(id: &str) -> &str {
    match id.find(".toml[") {
        Some(i) if id.ends_with(']') => &id[..i + ".toml".len()],
        _ => id,
    }
}

fn property(w: &mut Xml, name: &str, value: &str) -> io::Result<()> {
    w.write_event(Event::Empty(element(
        "property",
        &[("name", name), ("value", value)],
    )))
}

fn text_element(w: &mut Xml, tag: &str, content: &str) -> io::Result<()> {
    w.write_event(Event::Start(BytesStart::new(tag)))?;
    w.write_event(Event::Text(text_node(content)))?;
    w.write_event(Event::End(BytesEnd::new(tag)))
}

/// A start (or empty) tag whose attribute values are cleaned and escaped.
fn element<'a>(name: &'a str, attributes: &[(&str, &str)]) -> BytesStart<'a> {
    let mut start = BytesStart::new(name);
    for (key, value) in attributes {
        let value = attribute_value(value);
        start.push_attribute(Attribute::from((key.as_bytes(), value.as_bytes())));
    }
    start
}

/// Cleaned and escaped for a double-quoted attribute. Tabs and line breaks become
/// character references, which attribute-value normalisation keeps (a raw one would be
/// read back as a space).
fn attribute_value(value: &str) -> String {
    char_refs(&escape(text::clean(value)), &['\t', '\n', '\r'])
}

/// Cleaned and escaped for element text. Quotes stay as they are, for readability.
fn text_node(content: &str) -> BytesText<'static> {
    BytesText::from_escaped(char_refs(&partial_escape(text::clean(content)), &['\r']))
}

/// `escaped` with each of `chars` written as a character reference, so that it survives
/// XML's normalisation: line ends become `\n` everywhere, and in attribute values every
/// tab and line break becomes a space.
fn char_refs(escaped: &str, chars: &[char]) -> String {
    let mut out = String::with_capacity(escaped.len());
    for c in escaped.chars() {
        if chars.contains(&c) {
            out.push_str(&format!("&#{};", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The JUnit classname for a suite: `refpipe/chaos` → `refpipe.chaos`, `.` → `scenarios`.
fn classname(suite: &str) -> String {
    if suite.is_empty() || suite == "." {
        ROOT_CLASSNAME.to_owned()
    } else {
        suite.replace('/', ".")
    }
}

/// Seconds with three decimals, as JUnit readers expect.
fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// Scenarios grouped by suite, suites in the order they are first seen.
fn suites(scenarios: &[ScenarioResult]) -> Vec<(&str, Vec<&ScenarioResult>)> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut suites: Vec<(&str, Vec<&ScenarioResult>)> = Vec::new();
    for s in scenarios {
        let i = *index.entry(s.suite.as_str()).or_insert_with(|| {
            suites.push((s.suite.as_str(), Vec::new()));
            suites.len() - 1
        });
        suites[i].1.push(s);
    }
    suites
}

#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    time: Duration,
}

impl Counts {
    /// The gates suite: every gate a test, failing critical gates failures, and an
    /// interruption one test in error.
    fn of_gates(report: &RunReport) -> Counts {
        let interrupted = usize::from(report.interrupted);
        Counts {
            tests: report.gates.len() + interrupted,
            failures: report
                .gates
                .iter()
                .filter(|g| view::GateStatus::of(g) == view::GateStatus::Failed)
                .count(),
            errors: interrupted,
            ..Counts::default()
        }
    }

    fn of<'a>(scenarios: impl Iterator<Item = &'a ScenarioResult>) -> Counts {
        let mut counts = Counts::default();
        for s in scenarios {
            counts.tests += 1 + s.metrics.thresholds.len();
            counts.failures += s.metrics.thresholds.iter().filter(|t| !t.passed).count();
            counts.time = counts.time.saturating_add(s.duration);
            match s.outcome {
                Outcome::Passed => {}
                Outcome::Failed => counts.failures += 1,
                Outcome::Error => counts.errors += 1,
                Outcome::Skipped => counts.skipped += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{report, scenario};

    #[test]
    fn classname_maps_folders_to_dots_and_root_to_scenarios() {
        assert_eq!(classname("refpipe/chaos"), "refpipe.chaos");
        assert_eq!(classname("refpipe"), "refpipe");
        assert_eq!(classname("."), "scenarios");
    }

    #[test]
    fn threshold_classnames_name_the_scenario_file() {
        let mut s = scenario("load", Outcome::Passed);
        s.path = "refpipe/perf/load_smoke.toml".into();
        s.suite = "refpipe/perf".into();
        assert_eq!(
            threshold_classname(&s),
            "refpipe.perf.load_smoke.thresholds"
        );
        s.path = "top.toml".into();
        s.suite = ".".into();
        assert_eq!(threshold_classname(&s), "scenarios.top.thresholds");
        s.path = "top.toml[n=5,who=a]".into();
        assert_eq!(
            threshold_classname(&s),
            "scenarios.top[n=5,who=a].thresholds"
        );
    }

    #[test]
    fn a_matrix_case_names_its_source_file() {
        assert_eq!(source_file("perf/sweep.toml[n=5]"), "perf/sweep.toml");
        assert_eq!(source_file("perf/sweep.toml"), "perf/sweep.toml");
        assert_eq!(source_file("odd.toml[name"), "odd.toml[name");
        assert_eq!(
            crate::journal::file_stem("perf/sweep.toml[n=5]"),
            "perf__sweep[n=5]"
        );
    }

    #[test]
    fn attribute_keeps_line_breaks_as_references() {
        assert_eq!(
            attribute_value("a<b>&\"c'\n\t\r\x1b[31md\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;&#9;&#13;d"
        );
    }

    #[test]
    fn suites_keep_first_seen_order() {
        let mut a = scenario("a", Outcome::Passed);
        a.suite = "z".into();
        let mut b = scenario("b", Outcome::Passed);
        b.suite = "a".into();
        let mut c = scenario("c", Outcome::Passed);
        c.suite = "z".into();
        let scenarios = [a, b, c];
        let names: Vec<(&str, usize)> = suites(&scenarios)
            .into_iter()
            .map(|(suite, cases)| (suite, cases.len()))
            .collect();
        assert_eq!(names, [("z", 2), ("a", 1)]);
    }

    #[test]
    fn failed_without_failures_still_says_so() {
        let xml = render(&report(vec![scenario("lonely", Outcome::Failed)]));
        assert!(
            xml.contains(r#"<failure message="scenario failed" type="failed"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn several_failures_are_counted_in_the_message() {
        let mut s = scenario("two", Outcome::Error);
        s.failures = vec![
            Failure {
                kind: "stub".into(),
                message: "first".into(),
                detail: String::new(),
            },
            Failure {
                kind: "spawn".into(),
                message: "second".into(),
                detail: "why".into(),
            },
        ];
        let xml = render(&report(vec![s]));
        assert!(
            xml.contains(
                "<error message=\"2 failures: first; second\" type=\"stub\">stub: first\n\nspawn: second\nwhy</error>"
            ),
            "{xml}"
        );
    }

    #[test]
    fn a_gate_that_measured_nothing_says_so() {
        let mut r = report(Vec::new());
        let mut g = crate::test_support::gate("e2e", true, false);
        g.actual = None;
        g.value = None;
        r.gates = vec![g];
        let xml = render(&r);
        assert!(
            xml.contains(r#"<failure message="pass rate of tag `smoke`: not measured, target &gt;= 80%" type="gate"/>"#),
            "{xml}"
        );
        assert!(!xml.contains(r#"name="actual""#), "{xml}");
    }

    #[test]
    fn empty_report_is_a_valid_document() {
        let xml = render(&report(Vec::new()));
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"agent-harness\" tests=\"0\""));
        assert!(xml.ends_with("</testsuites>\n"));
    }
}
