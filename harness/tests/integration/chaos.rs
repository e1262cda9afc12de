//! Chaos end to end: the pack bites (fragile refpipe fails it, scenario by scenario, for
//! the right reason), drills stay on loopback unless allowed and abort on their bound,
//! faults are rolled back on SIGINT, and `harness proxy` injects faults on its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{harness, results, run_harness, spawn_harness, stderr};

#[test]
fn the_chaos_pack_fails_against_fragile_refpipe_for_the_missing_behaviour() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &["../scenarios/refpipe/chaos", "--env", "REFPIPE_FRAGILE=1"],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = results(out.path());
    let mut resilience = 0;
    for s in r["scenarios"].as_array().unwrap() {
        let tags: Vec<&str> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let text = serde_json::to_string(&s["failures"]).unwrap();
        if tags.contains(&"resilience") {
            resilience += 1;
            assert_eq!(
                s["outcome"], "failed",
                "{} must fail against fragile refpipe",
                s["path"]
            );
            assert!(
                text.contains("fragile mode"),
                "{}: the explanation names the missing behaviour: {text}",
                s["path"]
            );
        } else {
            assert_eq!(
                s["outcome"], "passed",
                "{} does not test resilience: {text}",
                s["path"]
            );
        }
    }
    assert!(
        resilience >= 6,
        "the pack has its resilience scenarios: {resilience}"
    );
}

#[test]
fn a_drill_dry_run_prints_every_fault_and_runs_nothing() {
    let out = tempfile::tempdir().unwrap();
    let o = harness()
        .args([
            "drill",
            "../scenarios/refpipe/chaos/drill.toml",
            "--dry-run",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(plan.contains("reaches: loopback only"), "{plan}");
    assert!(
        plan.contains("HTTP 429 with Retry-After 1s, the first 2 matching call(s)"),
        "{plan}"
    );
    assert!(
        plan.contains("SIGKILL to the target's process group at +600ms, then start it again"),
        "{plan}"
    );
    assert!(plan.contains("proxy `llm` → llm"), "{plan}");
    assert!(
        !out.path().join("junit.xml").exists(),
        "a dry run writes no report"
    );
}

#[test]
fn hosts_beyond_loopback_need_the_drills_allowlist() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["tests/fixtures/drills/staging_proxy.toml"], out.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("reaches `10.20.30.40`, which is not loopback"),
        "{}",
        stderr(&o)
    );
    let o = harness()
        .args([
            "drill",
            "tests/fixtures/drills/beyond_loopback.toml",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("reaches: loopback, and 10.20.30.40"));
}

#[test]
fn a_drill_aborts_when_its_error_rate_is_passed() {
    let out = tempfile::tempdir().unwrap();
    let o = harness()
        .args([
            "drill",
            "tests/fixtures/drills/abort_early.toml",
            "--jobs",
            "1",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Aborted aborted: 2 of 2 scenarios failed"),
        "{}",
        stderr(&o)
    );
    let r = results(out.path());
    let kinds: Vec<String> = r["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["failures"][0]["kind"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "aborted").count(),
        kinds.len() - 2,
        "{kinds:?}"
    );
}

/// Polls for a file the target writes (a condition, not a timed guess).
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "`{}` never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn process_state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

#[test]
fn sigint_rolls_back_a_pause_and_a_proxy_and_still_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut child = crate::support::ChildGuard(
        harness()
            .env("ROLLBACK_DIR", dir.path())
            .args(["run", "tests/fixtures/rollback", "--out"])
            .arg(out.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = wait_for_file(&dir.path().join("pid"));
    let proxy = wait_for_file(&dir.path().join("proxy"));
    // The pause fault fires at +200ms: wait until the kernel shows the target stopped.
    let deadline = Instant::now() + Duration::from_secs(30);
    while process_state(&pid) != Some('T') {
        assert!(Instant::now() < deadline, "the target was never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        TcpStream::connect(&proxy).is_ok(),
        "the proxy is up while the scenario runs"
    );

    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGINT).unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    // Rolled back: the target's group is gone (not left stopped), the proxy is closed.
    let state = process_state(&pid);
    assert!(
        state.is_none() || state == Some('Z'),
        "the paused target is gone, not stopped: {state:?}"
    );
    assert!(
        TcpStream::connect(&proxy).is_err(),
        "the proxy no longer accepts"
    );
    let r = results(out.path());
    assert_eq!(r["interrupted"], true, "{err}");
}

#[test]
fn the_standalone_proxy_limits_data_and_stops_on_ctrl_c() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        s.write_all(b"0123456789").unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let toxics = dir.path().join("toxics.toml");
    std::fs::write(
        &toxics,
        "[[toxic]]\nname = \"cap\"\nkind = { type = \"limit_data\", bytes = 4 }\n",
    )
    .unwrap();
    let mut child = spawn_harness(&[
        "proxy",
        "--upstream",
        &upstream_addr.to_string(),
        "--toxics",
        toxics.to_str().unwrap(),
    ]);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("proxy: ")
        .unwrap()
        .split(" -> ")
        .next()
        .unwrap()
        .to_string();
    let mut client = TcpStream::connect(&addr).unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(
        got, b"0123",
        "exactly the limit passes, then the connection closes"
    );
    server.join().unwrap();
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGINT).unwrap();
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
}

/// The faults a run injected, in order: which request each hit (or none).
fn fault_trace(dir: &Path) -> Vec<String> {
    results(dir)["scenarios"][0]["journal"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "llm")
        .map(|e| format!("{} {}", e["agent"], e["rule"]))
        .collect()
}

#[test]
fn the_same_seed_replays_the_same_faults() {
    let run = |seed: &str| {
        let out = tempfile::tempdir().unwrap();
        let o = run_harness(
            &["tests/fixtures/replay/coin_flips.toml", "--seed", seed],
            out.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        fault_trace(out.path())
    };
    let first = run("11");
    assert!(
        first.iter().any(|t| t.contains("chaos[1]")),
        "some calls were hit: {first:?}"
    );
    assert!(
        first.iter().any(|t| t.contains("llm[")),
        "some calls got through: {first:?}"
    );
    assert_eq!(
        first,
        run("11"),
        "the same seed, the same faults on the same requests"
    );
    let others: Vec<Vec<String>> = ["12", "13", "14"].iter().map(|s| run(s)).collect();
    assert!(
        others.iter().any(|o| *o != first),
        "other seeds draw otherwise"
    );
}

#[test]
fn process_faults_are_felt_by_the_target() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["tests/fixtures/process"], out.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = results(out.path());
    let disk = r["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "disk_full.toml")
        .unwrap();
    let journal = serde_json::to_string(&disk["journal"]).unwrap();
    assert!(
        journal.contains("is a full disk: writes fail with ENOSPC"),
        "{journal}"
    );
}
