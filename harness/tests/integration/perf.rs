//! Performance end to end: histograms in results.json merge exactly across shards, and a
//! baseline comparison passes an unchanged rerun and catches an injected slowdown.

use std::path::Path;

use reports::metrics::Histo;

use crate::support::{harness, run_harness, stderr};

fn report(dir: &Path) -> reports::RunReport {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let results: reports::json::Results<'static> = serde_json::from_str(&text).unwrap();
    results.report.into_owned()
}

#[test]
fn histograms_merge_exactly_across_two_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| tmp.path().join(n);
    for k in ["1", "2"] {
        let o = run_harness(
            &[
                "../scenarios/refpipe/perf",
                "--filter",
                "concurrency_0",
                "--partition",
                &format!("hash:{k}/2"),
                "--seed",
                "3",
            ],
            &dir(k),
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let o = harness()
        .args(["report", "merge", "--out"])
        .arg(dir("merged"))
        .arg(dir("1"))
        .arg(dir("2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (a, b, merged) = (report(&dir("1")), report(&dir("2")), report(&dir("merged")));
    assert_eq!(
        a.scenarios.len() + b.scenarios.len(),
        3,
        "the sweep's first three scenarios, split"
    );
    // Every scenario's histograms survive the merge unchanged (read back from JSON).
    for s in a.scenarios.iter().chain(&b.scenarios) {
        let m = merged.scenarios.iter().find(|x| x.path == s.path).unwrap();
        assert_eq!(m.metrics.end_to_end, s.metrics.end_to_end, "{}", s.path);
        assert_eq!(m.metrics.llm, s.metrics.llm, "{}", s.path);
    }
    // The run-level distribution of the merged report is the exact sum of the shards'.
    let mut expected = Histo::new();
    for r in [&a, &b] {
        expected.merge(&r.merged_end_to_end().unwrap());
    }
    let got = merged.merged_end_to_end().unwrap();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 30, "10 runs in each of three scenarios");
}

#[test]
fn a_baseline_passes_an_unchanged_rerun_and_catches_a_slowdown() {
    let tmp = tempfile::tempdir().unwrap();
    let baselines = tmp.path().join("baselines");
    let perf = |extra: &[&str], out: &str| {
        let mut cmd = harness();
        cmd.args([
            "perf",
            "../scenarios/refpipe/perf/size_small.toml",
            "--baselines",
        ])
        .arg(&baselines)
        .arg("--out")
        .arg(tmp.path().join(out))
        .args(extra);
        cmd.output().unwrap()
    };
    let o = perf(&["--save-baseline", "before"], "saved");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(baselines.join("before.json").is_file());

    // The rerun is judged with a wide bound: this test shares the machine with the rest
    // of the suite (the default bound's false-alarm check is the five-rerun benchmark in
    // the README).
    let o = perf(&["--baseline", "before", "--max-regression", "60%"], "same");
    assert_eq!(
        o.status.code(),
        Some(0),
        "an unchanged rerun is no regression: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("size_small.toml"), "{}", stderr(&o));

    // refpipe's documented knob: 150ms of extra work after each of four steps, on a run
    // of about 250ms — far beyond the bound.
    let o = perf(
        &[
            "--baseline",
            "before",
            "--max-regression",
            "60%",
            "--env",
            "REFPIPE_WORK_DELAY=150ms",
        ],
        "slow",
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("REGRESSED"), "{}", stderr(&o));
    // The comparison is a gate too: it heads the job summary like any failing gate.
    let summary = std::fs::read_to_string(tmp.path().join("slow/summary.md")).unwrap();
    let head = summary.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        head.contains("FAIL") && head.contains("no regression against baseline"),
        "{head}"
    );

    let o = perf(&["--baseline", "no-such-baseline"], "missing");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
