//! `report.html` read back with an HTML5 parser (html5ever, through scraper): it parses
//! without an error, loads nothing, escapes what it shows, and puts first what matters.

use scraper::{ElementRef, Html, Selector};

use crate::fixture::basic_report;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef<'_>) -> String {
    e.text().collect()
}

/// Parses `html`, failing on any parse error, and checks what every page must hold
/// whatever the report: one inline script and nothing else that runs, nothing fetched,
/// links only within the page. Used by the hostile test too.
pub fn check_page(html: &str) -> Html {
    let doc = Html::parse_document(html);
    assert!(
        doc.errors.is_empty(),
        "parse errors {:?} in\n{html}",
        doc.errors
    );
    assert!(html.starts_with("<!DOCTYPE html>\n"));

    let scripts: Vec<ElementRef<'_>> = doc.select(&sel("script")).collect();
    assert_eq!(scripts.len(), 1, "one script, ours");
    assert_eq!(scripts[0].value().attrs().count(), 0, "inline, no src");
    for bad in [
        "link", "iframe", "object", "embed", "img", "base", "use", "image",
    ] {
        assert_eq!(doc.select(&sel(bad)).count(), 0, "<{bad}> in\n{html}");
    }
    for e in doc.select(&sel("*")) {
        for (name, value) in e.value().attrs() {
            let name = name.to_ascii_lowercase();
            assert!(!name.starts_with("on"), "event handler {name}={value:?}");
            assert!(name != "src" && name != "srcset", "{name}={value:?}");
            if name.ends_with("href") {
                assert!(value.starts_with('#'), "a link out of the page: {value:?}");
            }
        }
    }
    let csp = doc
        .select(&sel(r#"meta[http-equiv="Content-Security-Policy"]"#))
        .next()
        .expect("a Content-Security-Policy");
    let policy = csp.value().attr("content").unwrap();
    assert!(policy.starts_with("default-src 'none'; "), "{policy}");
    let script_src = policy
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src "))
        .expect("a script-src directive");
    assert!(
        script_src.starts_with("script-src 'sha256-") && !script_src.contains("unsafe"),
        "{policy}"
    );
    doc
}

#[test]
fn the_fixture_parses_cleanly_and_is_self_contained() {
    let html = reports::html::render(&basic_report());
    check_page(&html);
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("@import") && !html.contains("url("));
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn the_verdict_comes_first_then_the_failing_gate() {
    let html = reports::html::render(&basic_report());
    let doc = check_page(&html);
    let banner = doc.select(&sel("header.banner.fail h1")).next().unwrap();
    assert_eq!(
        text(banner),
        "✗ FAIL — critical gate \"end-to-end success\" failed"
    );
    let rows: Vec<String> = doc
        .select(&sel("table.gates tbody tr"))
        .map(|tr| text(tr.select(&sel("td")).nth(1).unwrap()))
        .collect();
    assert_eq!(
        rows,
        ["end-to-end success", "p95 duration", "smoke stays green"]
    );
    let first = doc.select(&sel("table.gates tbody tr")).next().unwrap();
    assert_eq!(first.value().attr("class"), Some("failed"));
    assert!(html.find("id=\"gates\"").unwrap() < html.find("id=\"scenarios\"").unwrap());
}

#[test]
fn scenarios_come_failures_first_with_everything_a_reader_needs() {
    let doc = Html::parse_document(&reports::html::render(&basic_report()));
    let scenarios: Vec<ElementRef<'_>> = doc.select(&sel("details.scenario")).collect();
    let statuses: Vec<&str> = scenarios
        .iter()
        .map(|d| d.value().attr("data-status").unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["failed", "failed", "error", "flaky", "passed", "skipped"]
    );
    // Failures are open; the rest folded.
    let open: Vec<bool> = scenarios
        .iter()
        .map(|d| d.value().attr("open").is_some())
        .collect();
    assert_eq!(open, [true, true, true, false, false, false]);

    let failed = scenarios[0];
    assert_eq!(failed.value().attr("id"), Some("s-1"));
    let body = text(failed);
    for needle in [
        "expectation: output.\"$.refinement_iterations\": expected >= 1, got 0",
        "a request to `llm` matched no rule <critic & friends>",
        "Earlier attempts",
        "ERROR critic call failed: 404\nretrying in 0.5s",
        "\"refinement_iterations\": 0",
        "1002",
    ] {
        assert!(body.contains(needle), "{needle:?} in {body}");
    }
    assert!(!body.contains('\x1b') && !body.contains('\u{1}'));

    // The flaky one has a timeline of its six requests and a row for each.
    let flaky = scenarios[3];
    assert_eq!(flaky.select(&sel("table.journal tbody tr")).count(), 6);
    let timeline = flaky.select(&sel("svg")).next().unwrap();
    assert_eq!(timeline.select(&sel("circle")).count(), 6);
    assert_eq!(
        flaky.select(&sel("span.served.s5xx")).count(),
        2,
        "503s are marked"
    );
}

#[test]
fn charts_and_filters_are_there() {
    let doc = Html::parse_document(&reports::html::render(&basic_report()));
    let charts: Vec<ElementRef<'_>> = doc.select(&sel("#durations svg")).collect();
    assert_eq!(charts.len(), 2);
    // Five scenarios ran; each bar links to its details.
    let links: Vec<&str> = charts[0]
        .select(&sel("a"))
        .map(|a| a.value().attr("href").unwrap())
        .collect();
    assert_eq!(links, ["#s-5", "#s-1", "#s-3", "#s-0", "#s-2"]);
    assert!(text(charts[1]).contains("p99"));

    let form = doc.select(&sel("form#filters")).next().unwrap();
    assert!(
        form.value().attr("hidden").is_some(),
        "hidden until the script runs"
    );
    let boxes: Vec<&str> = form
        .select(&sel("input[name=status]"))
        .map(|i| i.value().attr("value").unwrap())
        .collect();
    assert_eq!(boxes, ["failed", "error", "flaky", "passed", "skipped"]);
    assert_eq!(form.select(&sel("input#failures-only")).count(), 1);
    assert_eq!(form.select(&sel("input#q[type=search]")).count(), 1);
}

#[test]
fn latency_and_performance_are_there() {
    let doc = Html::parse_document(&reports::html::render(&basic_report()));
    // The run: every scenario's end-to-end latency, merged (1000 load runs and 1 more).
    let run: Vec<ElementRef<'_>> = doc.select(&sel("#latency svg")).collect();
    assert_eq!(run.len(), 1);
    let plot = text(run[0]);
    assert!(
        plot.contains("end to end, all scenarios (1001 runs, 2 scenarios)")
            && plot.contains("p99.9"),
        "{plot}"
    );

    // The load scenario: a percentile plot with a line per agent, end to end and time to
    // first token; memory over time; every histogram in a table; the thresholds.
    let load = doc.select(&sel("details#s-5")).next().unwrap();
    let charts: Vec<ElementRef<'_>> = load.select(&sel(".charts svg")).collect();
    assert_eq!(charts.len(), 2);
    assert_eq!(charts[0].select(&sel("polyline")).count(), 5);
    for series in [
        "end to end",
        "llm coder",
        "llm critic",
        "llm planner",
        "time to first token",
    ] {
        assert!(text(charts[0]).contains(series), "{series}");
    }
    assert!(text(charts[1]).contains("MiB"));
    let rows: Vec<String> = load
        .select(&sel("table.latency tbody tr td:first-child"))
        .map(text)
        .collect();
    assert_eq!(
        rows,
        [
            "end to end",
            "llm coder",
            "llm critic",
            "llm planner",
            "time to first token",
            "inter-token",
            "executor sandbox"
        ]
    );
    let facts = text(load.select(&sel("dl.perf")).next().unwrap());
    for needle in [
        "growth +12.5 KiB/run over 1000 runs",
        "39.5/s achieved of 40/s intended",
        "4 dropped",
    ] {
        assert!(facts.contains(needle), "{needle:?} in {facts}");
    }
    let thresholds: Vec<(String, String)> = load
        .select(&sel("table.thresholds tbody tr"))
        .map(|tr| (tr.value().attr("class").unwrap().to_owned(), text(tr)))
        .collect();
    assert_eq!(thresholds.len(), 5);
    assert_eq!(
        thresholds[1],
        (
            "failed".to_owned(),
            "✗ failedlatency{agent=planner}: p95 < 300ms323.8ms".to_owned()
        )
    );
    // The failed threshold is among the failures, once.
    let failures: Vec<String> = load.select(&sel(".failure")).map(text).collect();
    assert_eq!(
        failures,
        ["threshold: threshold `latency{agent=planner}: p95 < 300ms` failed: observed 323.8ms"]
    );

    // One run: a table, no plot; memory without a timeline has no chart.
    let happy = doc.select(&sel("details#s-0")).next().unwrap();
    assert_eq!(happy.select(&sel(".charts")).count(), 0);
    assert_eq!(happy.select(&sel("table.latency tbody tr")).count(), 4);
    // Scenarios without metrics have no performance section.
    let flaky = doc.select(&sel("details#s-3")).next().unwrap();
    assert!(!text(flaky).contains("Performance"));
}

#[test]
fn a_hostile_scenario_is_shown_not_run() {
    let mut report = basic_report();
    let evil = "<script>alert(1)</script>";
    report.scenarios[0].name = evil.into();
    report.scenarios[0].path = "\"><img src=x onerror=alert(1)>.toml".into();
    report.scenarios[0].stderr_tail = format!("</pre>{evil}\x1b[31m");
    report.scenarios[0].output = Some(serde_json::json!({ "html": evil }));
    report.gates[0].name = evil.into();
    report.partition = Some(format!("'{evil}"));
    let html = reports::html::render(&report);
    let doc = check_page(&html);
    let name = doc
        .select(&sel("details#s-0 summary .name"))
        .next()
        .unwrap();
    assert_eq!(text(name), evil);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn an_empty_run_still_makes_a_page() {
    let mut report = basic_report();
    report.scenarios.clear();
    report.gates.clear();
    report.verdict = reports::Verdict::Pass;
    let html = reports::html::render(&report);
    let doc = check_page(&html);
    assert!(text(doc.select(&sel("h1")).next().unwrap()).contains("PASS"));
    assert!(html.contains("No scenario ran."));
    assert_eq!(doc.select(&sel("svg")).count(), 0);
}
