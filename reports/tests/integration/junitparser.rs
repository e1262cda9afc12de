//! `junit.xml` read back by Python's junitparser (its xunit2 flavour, which knows
//! Surefire's flaky and rerun elements), as Python CI tooling reads it: the counts, a
//! failure's message, the gates suite, the flaky scenario. A document junitparser cannot
//! read fails the check.
//!
//! Needs `python3` and junitparser 4 or later (`python3 -m pip install 'junitparser>=4'`;
//! `cargo xtask test` installs it). The reader is `tests/junit_read.py`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::fixture::basic_report;
use crate::tools;

const INSTALL: &str = "python3 -m pip install 'junitparser>=4'";

/// What junitparser read from the JUnit document `xml` (see `tests/junit_read.py`), or
/// why it could not.
fn read(xml: &str) -> Result<Value, String> {
    let python = tools::require("python3", &["/usr/bin/python3"], "Python 3", INSTALL);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(reports::JUNIT_FILE);
    std::fs::write(&path, xml).unwrap();
    let mut cmd = Command::new(python);
    cmd.arg(tools::crate_file("tests/junit_read.py")).arg(&path);
    let ran = tools::run(cmd, Duration::from_secs(60));
    match ran.status.and_then(|s| s.code()) {
        Some(0) => Ok(serde_json::from_str(&ran.stdout).unwrap()),
        Some(3) => panic!(
            "junitparser 4 or later is needed by this test: install it with `{INSTALL}` \
             (`cargo xtask test` installs it)\n{}",
            ran.stderr
        ),
        _ => Err(format!("{:?}: {}", ran.status, ran.stderr)),
    }
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn junitparser_reads_the_fixture() {
    let xml = reports::junit::render(&basic_report());
    let read = read(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));

    assert_eq!(read["name"], "agent-harness");
    assert_eq!(
        (
            count(&read["tests"]),
            count(&read["failures"]),
            count(&read["errors"])
        ),
        (15, 4, 2)
    );
    let suites = read["suites"].as_array().unwrap();
    let names: Vec<&str> = suites.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gates", "refpipe", "refpipe/chaos", "refpipe/perf"]);

    // Every suite's claimed counts match the cases junitparser found in it.
    for suite in suites {
        let cases = suite["cases"].as_array().unwrap();
        let with = |tag: &str| {
            cases
                .iter()
                .filter(|c| {
                    c["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["tag"] == tag)
                })
                .count() as u64
        };
        assert_eq!(count(&suite["tests"]), cases.len() as u64, "{suite}");
        assert_eq!(count(&suite["failures"]), with("failure"), "{suite}");
        assert_eq!(count(&suite["errors"]), with("error"), "{suite}");
        assert_eq!(count(&suite["skipped"]), with("skipped"), "{suite}");
        assert_eq!(suite["properties"]["partition"], "hash:1/3");
    }

    // The gates suite: the interruption first, as an error; then the failing critical
    // gate fails, the non-critical one warns.
    let gates = suites[0]["cases"].as_array().unwrap();
    assert_eq!(gates[0]["name"], "the run finished");
    assert_eq!(gates[0]["results"][0]["tag"], "error");
    assert_eq!(gates[0]["results"][0]["type"], "interrupted");
    let gates = &gates[1..];
    let e2e = &gates[1];
    assert_eq!(e2e["name"], "end-to-end success");
    assert_eq!(e2e["classname"], "gates");
    assert_eq!(e2e["properties"]["critical"], "true");
    assert_eq!(
        e2e["results"][0]["message"],
        "pass rate of all scenarios: 50.0% (2/4), target >= 90%"
    );
    assert_eq!(e2e["results"][0]["type"], "gate");
    let p95 = &gates[2];
    assert_eq!(p95["results"], serde_json::json!([]));
    assert_eq!(p95["properties"]["critical"], "false");
    assert!(p95["system_out"].as_str().unwrap().starts_with("WARNING: "));

    // A failure's message, and its earlier attempt as a rerun.
    let failed = &suites[1]["cases"][1];
    assert_eq!(failed["results"][0]["tag"], "failure");
    assert!(
        failed["results"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("2 failures: output.\"$.refinement_iterations\": expected >= 1, got 0; ")
    );
    assert_eq!(failed["reruns"].as_array().unwrap().len(), 1);

    // The flaky scenario passed, with its failed attempt as a flaky failure.
    let flaky = &suites[2]["cases"][1];
    assert_eq!(flaky["name"], "coder retries through a 5xx burst");
    assert_eq!(flaky["results"], serde_json::json!([]));
    assert_eq!(flaky["properties"]["flaky"], "true");
    assert_eq!(flaky["properties"]["attempts"], "2");
    assert_eq!(
        flaky["flaky"][0]["message"],
        "the target did not finish within 1s"
    );
    assert_eq!(
        flaky["flaky"][0]["text"],
        "timeout: the target did not finish within 1s"
    );

    // The load scenario failed on a threshold; its latencies and memory are properties;
    // each of its thresholds is a testcase after it, the failed one a failure.
    let perf = suites[3]["cases"].as_array().unwrap();
    let load = &perf[0];
    assert_eq!(load["name"], "planner holds p95 under load");
    assert_eq!(load["results"][0]["type"], "threshold");
    assert_eq!(
        load["properties"]["latency.llm.planner"],
        "count=1000 p50=180.0ms p95=323.8ms p99=447.0ms max=823.3ms"
    );
    assert!(
        load["properties"]["memory.peak_rss_bytes"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    let thresholds: Vec<(&str, usize)> = perf[1..]
        .iter()
        .map(|c| {
            assert_eq!(c["classname"], "refpipe.perf.load_smoke.thresholds");
            (
                c["name"].as_str().unwrap(),
                c["results"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        thresholds,
        [
            ("end_to_end: p95 < 2s", 0),
            ("latency{agent=planner}: p95 < 300ms", 1),
            ("time_to_first_token: p99 < 250ms", 0),
            ("memory: growth_per_run < 64KiB", 0),
            ("load: achieved_rate >= 38/s", 0),
        ]
    );
    let failed = &perf[2]["results"][0];
    assert_eq!(
        (&failed["tag"], &failed["type"], &failed["message"]),
        (
            &serde_json::json!("failure"),
            &serde_json::json!("threshold"),
            &serde_json::json!("latency{agent=planner}: p95 < 300ms: observed 323.8ms")
        )
    );
    assert_eq!(perf[2]["properties"]["observed"], "323.8ms");
    assert_eq!(
        perf[1]["system_out"],
        "end_to_end: p95 < 2s: observed 1794.0ms"
    );
}

#[test]
fn a_document_junitparser_cannot_read_fails() {
    let xml = reports::junit::render(&basic_report());
    for (what, broken) in [
        ("cut short", xml[..xml.len() / 2].to_owned()),
        (
            "another root",
            xml.replacen("<testsuites ", "<results ", 1)
                .replacen("</testsuites>", "</results>", 1),
        ),
        (
            "a count that is not a number",
            xml.replacen("tests=\"3\"", "tests=\"three\"", 1),
        ),
    ] {
        assert!(read(&broken).is_err(), "{what} was read");
    }
}
