//! Gates decide the verdict; shards merge into the same verdicts; retries find flaky
//! scenarios; --fail-fast stops early; each exit code has a test.

use std::path::Path;

use crate::support::{harness, results, run_harness, stderr};

#[test]
fn a_failing_critical_gate_fails_the_run_and_heads_every_report() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &[
            "../scenarios/refpipe/validation",
            "--gates",
            "tests/fixtures/gates/critical_fails.toml",
        ],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("FAIL instant scenarios"), "{err}");
    assert!(err.contains("PASS validation passes"), "{err}");
    assert!(
        err.contains("Verdict FAIL (a critical gate failed)"),
        "{err}"
    );
    let r = results(out.path());
    assert_eq!(r["verdict"], "fail");
    assert_eq!(
        r["summary"]["failed"], 0,
        "every scenario passed; the gate alone failed the run"
    );

    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    let head = summary.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        head.contains("FAIL") && head.contains("instant scenarios"),
        "{head}"
    );

    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    let first_suite = junit.find("<testsuite ").unwrap();
    assert!(
        junit[first_suite..].starts_with("<testsuite name=\"gates\""),
        "{junit}"
    );
    let gate_case = junit.find("name=\"instant scenarios\"").unwrap();
    let first_failure = junit.find("<failure").unwrap();
    assert!(
        first_failure > gate_case,
        "the failing gate is the first failure in the file"
    );
    assert!(
        junit[..first_failure].matches("<testcase").count() <= 2,
        "{junit}"
    );

    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    let gate_at = html.find("instant scenarios").unwrap();
    let scenario_at = html.find("an empty prompt is rejected").unwrap();
    assert!(
        gate_at < scenario_at,
        "the gate comes before the scenarios in report.html"
    );
}

#[test]
fn run_gates_count_every_run_of_a_load_and_fail_below_their_sample_size() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &[
            "../scenarios/refpipe/perf/concurrency_02.toml",
            "../scenarios/refpipe/validation/empty_prompt.toml",
            "--gates",
            "tests/fixtures/gates/runs.toml",
        ],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = results(out.path());
    assert_eq!(r["summary"]["failed"], 0, "{}", stderr(&o));
    let gate = |name: &str| {
        r["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .unwrap_or_else(|| panic!("no gate {name} in {}", r["gates"]))
            .clone()
    };
    let runs = gate("runs succeed");
    assert_eq!(runs["actual"], "100.0% (11/11 runs)");
    assert_eq!(runs["passed"], true);
    let sample = gate("a sample of 50 runs");
    assert_eq!(sample["passed"], false);
    assert!(
        sample["detail"]
            .as_str()
            .unwrap()
            .contains("only 11 runs were measured, and the gate needs at least 50"),
        "{sample}"
    );
    let latency = gate("run latency");
    assert_eq!(latency["passed"], false);
    assert!(
        latency["detail"]
            .as_str()
            .unwrap()
            .starts_with("over 10 runs of 1 scenarios"),
        "{latency}"
    );
}

#[test]
fn a_failing_non_critical_gate_warns_and_exits_0() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &[
            "../scenarios/refpipe/validation",
            "--gates",
            "tests/fixtures/gates/noncritical_fails.toml",
        ],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("WARN instant scenarios (non-critical)"),
        "{err}"
    );
    assert!(err.contains("Verdict PASS with warnings"), "{err}");
    assert_eq!(results(out.path())["verdict"], "warn");
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    let head = summary.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert!(head.contains("PASS") && head.contains("warning"), "{head}");
}

#[test]
fn two_shards_merged_give_the_verdicts_of_one_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name);
    let run = |extra: &[&str], out: &Path| {
        let mut args = vec!["../scenarios", "--seed", "5"];
        args.extend_from_slice(extra);
        let o = run_harness(&args, out);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    run(&[], &dir("whole"));
    run(&["--partition", "hash:1/2"], &dir("shard1"));
    run(&["--partition", "hash:2/2"], &dir("shard2"));
    let shard_sizes: Vec<usize> = ["shard1", "shard2"]
        .iter()
        .map(|s| results(&dir(s))["scenarios"].as_array().unwrap().len())
        .collect();
    assert!(
        shard_sizes.iter().all(|&n| n > 0),
        "both shards ran something: {shard_sizes:?}"
    );

    let o = harness()
        .args([
            "report",
            "merge",
            "--gates",
            "../scenarios/gates.toml",
            "--out",
        ])
        .arg(dir("merged"))
        .arg(dir("shard1"))
        .arg(dir("shard2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let whole = results(&dir("whole"));
    let merged = results(&dir("merged"));
    let scenarios = |r: &serde_json::Value| -> Vec<(String, String, u64)> {
        r["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["path"].as_str().unwrap().to_string(),
                    s["outcome"].as_str().unwrap().to_string(),
                    s["seed"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        scenarios(&whole),
        scenarios(&merged),
        "same scenarios, outcomes and seeds, same order"
    );
    let verdicts = |r: &serde_json::Value| -> Vec<(String, bool)> {
        r["gates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["name"].as_str().unwrap().to_string(),
                    g["passed"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(verdicts(&whole), verdicts(&merged));
    assert_eq!(whole["verdict"], merged["verdict"]);
    // Token and cost gates are sums and means of the same outputs: exactly equal.
    for name in ["tokens per run", "cost of the suite", "end-to-end success"] {
        let value = |r: &serde_json::Value| {
            r["gates"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["name"] == name)
                .unwrap()["value"]
                .clone()
        };
        assert_eq!(value(&whole), value(&merged), "{name}");
    }
}

#[test]
fn merging_a_shard_twice_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_harness(&["../scenarios/refpipe/validation"], tmp.path());
    assert_eq!(o.status.code(), Some(0));
    let o = harness()
        .args(["report", "merge", "--out"])
        .arg(tmp.path().join("m"))
        .arg(tmp.path())
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is in both"), "{}", stderr(&o));
}

#[test]
fn a_scenario_that_passes_on_a_retry_is_flaky() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = harness()
        .env("FLAKY_DIR", state.path())
        .args(["run", "tests/fixtures/flaky", "--retries", "2", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("FLAKY"), "{}", stderr(&o));
    let r = results(out.path());
    let s = &r["scenarios"][0];
    assert_eq!(s["outcome"], "passed");
    assert_eq!(s["failed_attempts"].as_array().unwrap().len(), 1);
    assert_eq!(r["summary"]["flaky"], 1);
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<flakyFailure"), "{junit}");

    // Without retries the same first run is a plain failure.
    let state = tempfile::tempdir().unwrap();
    let o = harness()
        .env("FLAKY_DIR", state.path())
        .args(["run", "tests/fixtures/flaky", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn fail_fast_stops_launching_after_the_first_failure() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &["tests/fixtures/must_fail", "--fail-fast", "--jobs", "1"],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = results(out.path());
    let outcomes: Vec<&str> = r["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes[0], "failed");
    assert!(
        outcomes[1..].iter().all(|o| *o == "skipped"),
        "{outcomes:?}"
    );
    let not_run = &r["scenarios"][1]["failures"][0];
    assert_eq!(not_run["kind"], "not_run");
    assert!(not_run["message"].as_str().unwrap().contains("--fail-fast"));
}

#[test]
fn an_invalid_gates_file_is_a_positioned_error_and_exit_2() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &[
            "../scenarios/refpipe/validation",
            "--gates",
            "tests/fixtures/gates/misspelt_metric.toml",
        ],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("tests/fixtures/gates/misspelt_metric.toml:1:1")
            || err.contains("misspelt_metric.toml:"),
        "{err}"
    );
    assert!(err.contains("did you mean `pass_rate`?"), "{err}");
    let o = run_harness(
        &[
            "../scenarios/refpipe/validation",
            "--gates",
            "tests/fixtures/gates/percent_missing.toml",
        ],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("a pass rate target is a percentage"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn reports_that_cannot_be_written_exit_3() {
    // The folder is writable (so the run starts), but report.html cannot be replaced: a
    // folder stands in its place. (An unwritable --out is refused before the run: exit 2,
    // see cli::an_unwritable_out_is_refused_before_anything_runs.)
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir(out.path().join("report.html")).unwrap();
    let o = run_harness(
        &["../scenarios/refpipe/validation/empty_prompt.toml"],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("report.html"), "{}", stderr(&o));
    assert!(
        !out.path().join("junit.xml").exists(),
        "no report of a set that could not be written whole"
    );
}
