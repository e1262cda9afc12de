//! `[[service]]`s from outside: started before the target and reached by placeholder or
//! through a proxy, killed and restarted by a fault, stopped after the scenario whatever
//! happened; what a target leaves running is found and fails the scenario; a harness
//! killed with SIGKILL takes its services and targets with it, and the next run removes
//! its scratch directories.

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{exited, results, run_harness, scenario, spawn_harness};

fn messages(s: &serde_json::Value) -> String {
    s["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["message"].as_str().unwrap_or_default(),
                f["detail"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `pid` still runs (a zombie waiting for its parent counts as gone).
fn runs(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Waits (polling, bounded) until `cond` holds; false if it never did within `within`.
fn eventually(within: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn services_are_reached_by_placeholder_and_proxy_and_come_back_after_a_kill() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["tests/fixtures/services/pass", "--jobs", "2"], out.path());
    exited(&o, 0);
    let r = results(out.path());
    let restarted = scenario(&r, "killed_and_restarted.toml");
    let journal = restarted["journal"].to_string();
    assert!(
        journal.contains("sent SIGKILL; the service is down"),
        "{journal}"
    );
    assert!(
        journal.contains("starting again on 127.0.0.1:"),
        "{journal}"
    );
    // Every service of every scenario was stopped, and says how.
    for s in r["scenarios"].as_array().unwrap() {
        assert!(s["journal"].to_string().contains("stopped (SIGTERM"), "{s}");
    }
}

// Regression (issue 13): a target's grandchild that daemonised (setsid) kept running after
// the scenario, and holding stdout it made the target's valid JSON be discarded.
#[test]
fn a_daemonised_descendant_is_killed_and_fails_the_scenario_and_the_output_is_kept() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &["tests/fixtures/services/must_fail/a_daemon_outlives_the_target.toml"],
        out.path(),
    );
    exited(&o, 1);
    let r = results(out.path());
    let s = scenario(&r, "a_daemon_outlives_the_target.toml");
    assert_eq!(s["output"]["status"], "completed", "stdout was read whole");
    let why = messages(s);
    assert!(why.contains("outlived it and were killed: pid "), "{why}");
    assert!(why.contains("`sleep 600`"), "{why}");
    let pid: i32 = why
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    assert!(!runs(pid), "the daemon {pid} is gone");
}

#[test]
fn a_service_that_never_gets_ready_or_cannot_restart_fails_its_scenario() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &[
            "tests/fixtures/services/must_fail/a_service_never_ready.toml",
            "tests/fixtures/services/must_fail/a_service_that_cannot_restart.toml",
        ],
        out.path(),
    );
    exited(&o, 1);
    let r = results(out.path());
    let never = messages(scenario(&r, "a_service_never_ready.toml"));
    assert!(
        never.contains("service `web` was not ready within 2s"),
        "{never}"
    );
    assert!(never.contains("listening soon"), "its stderr: {never}");
    let restart = messages(scenario(&r, "a_service_that_cannot_restart.toml"));
    assert!(
        restart.contains("service `web` could not be started again after its `kill`"),
        "{restart}"
    );
}

// Issue 12: the harness being SIGKILLed must not leave services running (they die with
// it); issue 13: nor its targets, and the next run removes its scratch directories.
#[test]
fn a_harness_killed_with_sigkill_takes_its_service_and_target_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let announce = dir.path().join("announce.json");
    let out = dir.path().join("out");
    let env = format!("ANNOUNCE={}", announce.display());
    let mut harness = spawn_harness(&[
        "run",
        "tests/fixtures/services/killed",
        "--out",
        out.to_str().unwrap(),
        "--env",
        &env,
    ]);
    assert!(
        eventually(Duration::from_secs(30), || announce.exists()),
        "the target did not announce itself within 30 s"
    );
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&announce).unwrap()).unwrap();
    let service = a["service"].as_str().unwrap().to_string();
    let scratch = a["scratch"].as_str().unwrap().to_string();
    let target = a["pid"].as_i64().unwrap() as i32;
    assert!(TcpStream::connect(&service).is_ok(), "the service listens");

    kill(Pid::from_raw(harness.0.id() as i32), Signal::SIGKILL).unwrap();
    let _ = harness.0.wait();
    assert!(
        eventually(Duration::from_secs(5), || TcpStream::connect(&service)
            .is_err()),
        "nothing listens on {service} once the harness is gone"
    );
    assert!(
        eventually(Duration::from_secs(5), || !runs(target)),
        "the target {target} died with the harness"
    );
    assert!(Path::new(&scratch).exists(), "SIGKILL left {scratch}");

    // The next run sweeps what the killed one left.
    let next = tempfile::tempdir().unwrap();
    let o = run_harness(
        &["tests/fixtures/services/pass/reach_by_placeholder.toml"],
        next.path(),
    );
    exited(&o, 0);
    assert!(!Path::new(&scratch).exists(), "{scratch} was removed");
}
