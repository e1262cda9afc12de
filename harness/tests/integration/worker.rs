//! The `worker` target kind from outside: growth per run under a reused worker, a worker
//! that dies mid-run, an import error before anything runs, `harness worker python`.

use crate::support::{harness, results, run_harness, scenario, stderr};

// See: issue 8 (a pipeline keeping 5 MB per run passed every scenario).
#[test]
fn a_reused_worker_that_keeps_5_mb_per_run_fails_its_growth_threshold_and_a_tidy_one_passes() {
    for round in 1..=5 {
        let out = tempfile::tempdir().unwrap();
        let o = run_harness(&["tests/fixtures/worker/growth", "--jobs", "2"], out.path());
        let r = results(out.path());
        let leaky = scenario(&r, "leaky.toml");
        let tidy = scenario(&r, "tidy.toml");
        assert_eq!(leaky["outcome"], "failed", "round {round}: {}", stderr(&o));
        let failure = leaky["failures"][0]["message"].as_str().unwrap();
        assert!(
            failure.contains("rss_growth_per_run") && failure.contains("KiB per run"),
            "round {round}: {failure}"
        );
        let growth = leaky["metrics"]["memory"]["growth_per_run_bytes"]
            .as_f64()
            .unwrap();
        assert!(
            (4.0e6..6.5e6).contains(&growth),
            "round {round}: growth {growth} bytes per run"
        );
        assert_eq!(
            tidy["outcome"], "passed",
            "round {round}: {}",
            tidy["failures"]
        );
        assert_eq!(o.status.code(), Some(1));
    }
}

#[test]
fn a_worker_that_dies_mid_run_fails_that_scenario_and_is_replaced_for_the_next() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &["tests/fixtures/worker/restart", "--jobs", "1"],
        out.path(),
    );
    let r = results(out.path());
    let killed = scenario(&r, "a_kills_its_worker.toml");
    assert_eq!(killed["outcome"], "failed", "{}", stderr(&o));
    assert!(
        killed["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("died while running this scenario"),
        "{}",
        killed["stderr_tail"]
    );
    let next = scenario(&r, "b_runs_on_a_new_worker.toml");
    assert_eq!(next["outcome"], "passed", "{}", next["failures"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn an_import_error_stops_the_run_with_exit_2_and_the_traceback() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["tests/fixtures/worker/import_error"], out.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("target `broken`"), "{err}");
    assert!(err.contains("Traceback (most recent call last)"), "{err}");
    assert!(err.contains("cannot import name 'no_such_name'"), "{err}");
    assert!(
        !out.path().join("results.json").exists(),
        "nothing was run, so no reports"
    );
}

#[test]
fn the_python_adapter_is_printed_and_is_valid_python() {
    let o = harness().args(["worker", "python"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let source = String::from_utf8(o.stdout).unwrap();
    assert!(source.starts_with("#!/usr/bin/env python3"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("harness_worker.py");
    std::fs::write(&file, &source).unwrap();
    let help = std::process::Command::new("python3")
        .arg(&file)
        .arg("--help")
        .output()
        .expect("python3 runs");
    assert!(
        help.status.success(),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
    assert!(String::from_utf8_lossy(&help.stdout).contains("--isolation"));
}

/// The Python example (examples/pypipe, on the official `openai` package, which
/// `cargo xtask test` installs) passes its whole pack as a process per scenario and in a
/// warm worker alike.
#[test]
fn the_python_example_pack_passes_as_a_command_and_as_a_worker() {
    for target in ["pypipe", "pypipe-worker"] {
        let out = tempfile::tempdir().unwrap();
        let o = run_harness(
            &[
                "../examples/pypipe/scenarios",
                "--jobs",
                "2",
                "--target",
                target,
            ],
            out.path(),
        );
        let r = results(out.path());
        let scenarios = r["scenarios"].as_array().unwrap();
        let failed: Vec<String> = scenarios
            .iter()
            .filter(|s| s["outcome"] != "passed")
            .map(|s| format!("{}: {}", s["path"], s["failures"]))
            .collect();
        assert!(
            failed.is_empty(),
            "target `{target}` (hint: `pip install openai` if it is missing):\n{}\n{}",
            failed.join("\n"),
            stderr(&o)
        );
        assert!(scenarios.len() >= 20, "{} scenarios", scenarios.len());
        assert_eq!(o.status.code(), Some(0));
    }
}

#[test]
fn threads_and_sockets_created_at_import_are_reported_once() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["tests/fixtures/worker/hazards"], out.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let threads = "warning: target `threaded`: 1 thread(s) besides the main one were running after import (heartbeat)";
    assert_eq!(err.matches(threads).count(), 1, "{err}");
    assert!(
        err.contains("warning: target `threaded`: 1 socket(s) were open after import"),
        "{err}"
    );
}

#[test]
fn process_faults_reach_the_forked_child_and_spare_the_worker() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["tests/fixtures/worker/faults", "--jobs", "1"], out.path());
    let r = results(out.path());
    for file in ["a_memory_limit.toml", "b_kill.toml", "c_after.toml"] {
        let s = scenario(&r, file);
        assert_eq!(
            s["outcome"],
            "passed",
            "{file}: {}\n{}",
            s["failures"],
            stderr(&o)
        );
    }
    let killed = serde_json::to_string(&scenario(&r, "b_kill.toml")["journal"]).unwrap();
    assert!(killed.contains("sent SIGKILL"), "{killed}");
    assert_eq!(o.status.code(), Some(0));
}

// See: issue 8 (runs beyond the warm workers started cold workers). Four runs at once each
// wait until four runs have checked in under their parent's pid: they pass only if one warm
// worker forked all four side by side.
#[test]
fn a_fork_worker_serves_any_number_of_runs_at_once_from_one_warm_process() {
    let out = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let o = harness()
        .args(["run", "--out"])
        .arg(out.path())
        .args(["tests/fixtures/worker/zygote", "--jobs", "4"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let r = results(out.path());
    for i in 1..=4 {
        let s = scenario(&r, &format!("run_{i}.toml"));
        assert_eq!(
            s["outcome"],
            "passed",
            "run {i}: {}\n{}",
            s["failures"],
            stderr(&o)
        );
    }
    let rooms: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("gather-"))
        .collect();
    assert_eq!(rooms.len(), 1, "one parent for every run");
    assert_eq!(o.status.code(), Some(0));
}

/// A fork worker's children put off loading a CA bundle that loaded fine in an earlier
/// run until the context is used; what the contexts hold, and the error a missing bundle
/// raises, stay the same. What was learned is kept for the next start in TMPDIR.
#[test]
fn ca_loads_put_off_in_forked_children_change_nothing_the_pipeline_sees() {
    let tmp = tempfile::tempdir().unwrap();
    let put_off = |round: u32| -> Vec<serde_json::Value> {
        let out = tempfile::tempdir().unwrap();
        let o = harness()
            .args(["run", "--out"])
            .arg(out.path())
            .args(["tests/fixtures/worker/tls", "--jobs", "1"])
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap();
        let r = results(out.path());
        (1..=3)
            .map(|i| {
                let s = scenario(&r, &format!("run_{i}.toml"));
                assert_eq!(
                    s["outcome"],
                    "passed",
                    "start {round}, run {i}: {}\n{}",
                    s["failures"],
                    stderr(&o)
                );
                s["output"]["put_off"].clone()
            })
            .collect()
    };
    let (no, yes) = (
        serde_json::json!([false, false]),
        serde_json::json!([true, true]),
    );
    assert_eq!(put_off(1), [no.clone(), yes.clone(), yes.clone()]);
    assert_eq!(put_off(2), [yes.clone(), yes.clone(), yes]);
}

/// The pids of `parent`'s children (every thread's), from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

// Regression: a SIGINT while a worker was still importing its pipeline killed the harness
// outright (the handler was installed only after the warm-up): no reports, no exit 130.
#[test]
fn a_signal_during_the_workers_warm_up_still_writes_reports_that_say_interrupted() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let out = tempfile::tempdir().unwrap();
    let mut child = crate::support::spawn_harness(&[
        "run",
        "tests/fixtures/worker/slow_import",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let harness_pid = child.0.id();
    // The worker (python3) is the harness's child once the warm-up has begun.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let worker = loop {
        if let Some(&pid) = children_of(harness_pid).first() {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "no worker started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    kill(Pid::from_raw(harness_pid as i32), Signal::SIGINT).unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let r = results(out.path());
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["summary"]["not_run"], 1, "{}", r["summary"]);
    let gone = std::path::Path::new(&format!("/proc/{worker}/cmdline"))
        .exists()
        .then(|| std::fs::read(format!("/proc/{worker}/cmdline")).unwrap_or_default())
        .is_none_or(|c| c.is_empty());
    assert!(gone, "the importing worker {worker} was stopped");
}
