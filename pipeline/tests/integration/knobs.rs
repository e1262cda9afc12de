//! The benchmark/test knobs: `REFPIPE_WORK_DELAY` slows every agent step by a known amount,
//! `REFPIPE_LEAK_BYTES_PER_RUN` makes `serve` leak a known amount per finished run,
//! `REFPIPE_PLANTED_BUG` plants a known parsing bug.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::support::*;

const DELAY: Duration = Duration::from_millis(200);
const MIB: i64 = 1 << 20;

fn with(mut env: Vec<(String, String)>, var: &str, value: &str) -> Vec<(String, String)> {
    env.push((var.to_owned(), value.to_owned()));
    env
}

fn request() -> Value {
    json!({"prompt": "sword"})
}

/// When each agent of the happy path was called, in flow order.
fn call_times(stub: &Stub) -> Vec<Instant> {
    ["planner", "coder", "executor", "critic"]
        .iter()
        .map(|route| {
            let calls = stub.calls(route);
            assert_eq!(calls.len(), 1, "{route}: {calls:?}");
            calls[0].at
        })
        .collect()
}

/// Each of the four agent steps was followed by at least `DELAY`: the next agent was called
/// no sooner, and the run finished no sooner than `DELAY` after the critic's call.
fn assert_delayed_steps(stub: &Stub, finished: Instant) {
    let times = call_times(stub);
    for (i, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        assert!(gap >= DELAY, "step {i} was followed by only {gap:?}");
    }
    let tail = finished - times[3];
    assert!(tail >= DELAY, "the critic was followed by only {tail:?}");
}

#[tokio::test]
async fn work_delay_slows_each_agent_step_of_run() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    let env = with(env_for(&stub), "REFPIPE_WORK_DELAY", "200ms");
    let started = Instant::now();
    let out = run(&env, request()).await;
    let finished = Instant::now();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.doc["status"], "completed");
    let elapsed = finished - started;
    assert!(elapsed >= 4 * DELAY, "the run took only {elapsed:?}");
    assert_delayed_steps(&stub, finished);
    assert!(
        out.stderr
            .contains("benchmark knob: REFPIPE_WORK_DELAY adds 200ms after each agent step"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn work_delay_slows_each_agent_step_of_serve() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    let env = with(env_for(&stub), "REFPIPE_WORK_DELAY", "200ms");
    let served = Served::start(&env, &[]).await;
    let started = Instant::now();
    let id = served.submit(request()).await;
    let status = served.wait_done(&id).await;
    let finished = Instant::now();
    assert_eq!(status["result"]["status"], "completed", "{status}");
    let elapsed = finished - started;
    assert!(elapsed >= 4 * DELAY, "the run took only {elapsed:?}");
    assert_delayed_steps(&stub, finished);
    let (exit, stderr) = served.stop(Signal::SIGTERM).await;
    assert!(exit.success(), "{exit}\n{stderr}");
    assert!(
        stderr.contains("benchmark knob: REFPIPE_WORK_DELAY"),
        "{stderr}"
    );
}

#[tokio::test]
async fn invalid_knobs_are_config_errors() {
    let stub = Stub::start().await;
    let env = with(env_for(&stub), "REFPIPE_WORK_DELAY", "soon");
    let out = run(&env, request()).await;
    assert_eq!(out.code, 3);
    assert_eq!(out.doc["error"]["kind"], "config");
    let message = out.doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`REFPIPE_WORK_DELAY` has invalid value `soon`"),
        "{message}"
    );

    let env = with(env_for(&stub), "REFPIPE_LEAK_BYTES_PER_RUN", "lots");
    let out = run(&env, request()).await;
    assert_eq!(out.code, 3);
    let message = out.doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`REFPIPE_LEAK_BYTES_PER_RUN` has invalid value `lots`"),
        "{message}"
    );

    let output = refpipe(&env).arg("serve").output().await.unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`REFPIPE_LEAK_BYTES_PER_RUN` has invalid value `lots`"),
        "{stderr}"
    );
    assert!(stub.calls("planner").is_empty());
}

#[tokio::test]
async fn leak_bytes_per_run_has_no_lasting_effect_in_run() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    let env = with(env_for(&stub), "REFPIPE_LEAK_BYTES_PER_RUN", "1048576");
    let out = run(&env, request()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.doc["status"], "completed");
    assert!(out.stderr.contains("no lasting effect"), "{}", out.stderr);
}

/// The resident memory of process `pid`, in bytes, from `/proc/PID/status`.
fn vm_rss(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap_or_else(|| panic!("no VmRSS in:\n{status}"));
    let kib: i64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    kib * 1024
}

/// How much the resident memory of a `refpipe serve` with `env` grows over `runs` runs,
/// measured after two warm-up runs.
async fn rss_growth(env: &[(String, String)], runs: usize) -> i64 {
    let served = Served::start(env, &[]).await;
    let pid = served.child.id().unwrap();
    for _ in 0..2 {
        let id = served.submit(request()).await;
        served.wait_done(&id).await;
    }
    let before = vm_rss(pid);
    let mut ids = Vec::new();
    for _ in 0..runs {
        ids.push(served.submit(request()).await);
    }
    for id in &ids {
        let status = served.wait_done(id).await;
        assert_eq!(status["result"]["status"], "completed", "{status}");
    }
    let after = vm_rss(pid);
    let (exit, stderr) = served.stop(Signal::SIGTERM).await;
    assert!(exit.success(), "{exit}\n{stderr}");
    after - before
}

#[tokio::test]
async fn leak_bytes_per_run_grows_serve_resident_memory() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    let control = rss_growth(&env_for(&stub), 20).await;
    let env = with(env_for(&stub), "REFPIPE_LEAK_BYTES_PER_RUN", "1048576");
    let leaking = rss_growth(&env, 20).await;
    let mib = |bytes: i64| bytes as f64 / MIB as f64;
    eprintln!(
        "VmRSS growth over 20 runs: {:.1} MiB without the knob, {:.1} MiB with 1 MiB per run",
        mib(control),
        mib(leaking)
    );
    assert!(
        leaking >= 15 * MIB,
        "20 runs leaking 1 MiB each grew VmRSS by only {:.1} MiB",
        mib(leaking)
    );
    assert!(
        control < leaking,
        "without the knob VmRSS grew by {:.1} MiB, with it by {:.1} MiB",
        mib(control),
        mib(leaking)
    );
}

/// `REFPIPE_PLANTED_BUG=unchecked-plan`: a planner reply that is JSON without a list at
/// `subtasks` panics the process (no result document); a good plan still completes.
#[tokio::test]
async fn planted_unchecked_plan_panics_on_a_plan_without_subtasks() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on("planner", vec![raw_completion("{}")]);
    let env = with(env_for(&stub), "REFPIPE_PLANTED_BUG", "unchecked-plan");
    let mut command = refpipe(&env);
    command.arg("run");
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, request().to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(101), "{stderr}");
    assert!(output.stdout.is_empty(), "no result document");
    assert!(stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(
            "benchmark knob: REFPIPE_PLANTED_BUG plants the `unchecked-plan` parsing bug"
        ),
        "{stderr}"
    );

    let stub = Stub::start().await;
    script_happy_path(&stub);
    let env = with(env_for(&stub), "REFPIPE_PLANTED_BUG", "unchecked-plan");
    let out = run(&env, request()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.doc["status"], "completed");
}

/// `REFPIPE_PLANTED_BUG=critic-text-match`: a critic asking for refinement in spaced JSON
/// is taken as approval (no refinement); in compact JSON it is heard. Without the knob,
/// both are heard.
#[tokio::test]
async fn planted_critic_text_match_ignores_a_spaced_request_for_refinement() {
    for (knob, critic, refinements) in [
        (
            Some("critic-text-match"),
            r#"{"score":4,"needs_refinement":true}"#,
            1,
        ),
        (
            Some("critic-text-match"),
            r#"{"score": 4, "needs_refinement": true}"#,
            0,
        ),
        (None, r#"{"score": 4, "needs_refinement": true}"#, 1),
    ] {
        let stub = Stub::start().await;
        script_happy_path(&stub);
        stub.on(
            "critic",
            vec![
                raw_completion(critic),
                completion(json!({"score": 9, "needs_refinement": false})),
            ],
        );
        let mut env = env_for(&stub);
        if let Some(bug) = knob {
            env = with(env, "REFPIPE_PLANTED_BUG", bug);
        }
        let out = run(&env, request()).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.doc["status"], "completed");
        assert_eq!(
            out.doc["refinement_iterations"], refinements,
            "{knob:?} {critic}"
        );
    }
}
