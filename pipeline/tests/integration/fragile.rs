//! Fragile mode: each stubbed fault that resilient refpipe rides out fails the run in
//! fragile mode, and the error names the resilience that was switched off.

use serde_json::{Value, json};

use crate::support::*;

fn with(mut env: Vec<(String, String)>, var: &str, value: &str) -> Vec<(String, String)> {
    env.push((var.to_owned(), value.to_owned()));
    env
}

fn fragile(env: Vec<(String, String)>) -> Vec<(String, String)> {
    with(env, "REFPIPE_FRAGILE", "1")
}

/// Runs `request` against a fresh stub scripted by `script`: resilient, then fragile.
/// Returns each mode's output with its stub.
async fn both_modes(script: impl Fn(&Stub), request: Value) -> [(RunOutput, Stub); 2] {
    let resilient = Stub::start().await;
    script(&resilient);
    let resilient_out = run(&env_for(&resilient), request.clone()).await;
    let fragile_stub = Stub::start().await;
    script(&fragile_stub);
    let fragile_out = run(&fragile(env_for(&fragile_stub)), request).await;
    [(resilient_out, resilient), (fragile_out, fragile_stub)]
}

fn assert_passes(out: &RunOutput, status: &str) {
    assert_eq!(out.code, 0, "{:#}\n{}", out.doc, out.stderr);
    assert_eq!(out.doc["status"], status);
    assert_eq!(out.doc["mode"], "resilient");
}

/// The run failed with `kind` at `agent`, and its message contains every needle.
fn assert_fragile_failure(out: &RunOutput, kind: &str, agent: &str, needles: &[&str]) {
    let doc = &out.doc;
    assert_eq!(out.code, 1, "{doc:#}\n{}", out.stderr);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["mode"], "fragile");
    assert_eq!(doc["error"]["kind"], kind, "{doc:#}");
    assert_eq!(doc["error"]["agent"], agent, "{doc:#}");
    let message = doc["error"]["message"].as_str().unwrap();
    for needle in needles {
        assert!(
            message.contains(needle),
            "`{needle}` missing from: {message}"
        );
    }
    assert!(out.stderr.contains("(fragile mode: "), "{}", out.stderr);
}

#[tokio::test]
async fn a_fault_free_run_completes_in_fragile_mode_too() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on(
        "critic",
        vec![
            completion(json!({"score": 5, "needs_refinement": true, "issues": ["dull"]})),
            completion(json!({"score": 9, "needs_refinement": false})),
        ],
    );
    let out = run(&fragile(env_for(&stub)), json!({"prompt": "sword"})).await;
    assert_eq!(out.code, 0, "{:#}\n{}", out.doc, out.stderr);
    assert_eq!(out.doc["status"], "completed");
    assert_eq!(out.doc["mode"], "fragile");
    assert_eq!(
        out.doc["refinement_iterations"], 1,
        "the critic's loop is flow, not resilience"
    );
    assert!(
        out.stderr.contains("refpipe: fragile mode: no retries"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn rate_limit_429_is_not_retried() {
    let [(resilient, _), (fragile, stub)] = both_modes(
        |stub| {
            script_happy_path(stub);
            stub.on(
                "planner",
                vec![
                    status(429, Some("0.05")),
                    completion(json!({"subtasks": ["blade"]})),
                ],
            );
        },
        json!({"prompt": "sword"}),
    )
    .await;
    assert_passes(&resilient, "completed");
    assert_fragile_failure(
        &fragile,
        "llm_error",
        "planner",
        &[
            "HTTP 429",
            "primary provider",
            "(fragile mode: no retries, Retry-After ignored)",
        ],
    );
    assert_eq!(stub.calls("planner").len(), 1);
    assert_eq!(fragile.doc["llm_requests"]["planner"], 1);
}

#[tokio::test]
async fn server_errors_are_not_retried() {
    let [(resilient, _), (fragile, stub)] = both_modes(
        |stub| {
            script_happy_path(stub);
            stub.on(
                "coder",
                vec![
                    status(503, None),
                    status(500, None),
                    tool_call(json!({"code": "print(1)"})),
                ],
            );
        },
        json!({"prompt": "sword"}),
    )
    .await;
    assert_passes(&resilient, "completed");
    assert_fragile_failure(
        &fragile,
        "llm_error",
        "coder",
        &["HTTP 503", "(fragile mode: no retries)"],
    );
    assert_eq!(stub.calls("coder").len(), 1);
    assert_eq!(
        fragile.doc["subtasks"],
        json!(["blade", "hilt"]),
        "work done is kept"
    );
}

#[tokio::test]
async fn the_fallback_provider_is_not_used() {
    let mut outputs = Vec::new();
    for flag in [None, Some("--fragile")] {
        let primary = Stub::start().await;
        for role in ["planner", "coder", "critic"] {
            primary.on(role, vec![status(503, None)]);
        }
        let fallback = Stub::start().await;
        script_happy_path(&fallback);
        let env = with(
            env_for(&primary),
            "REFPIPE_FALLBACK_BASE_URL",
            &fallback.llm_url(),
        );
        let env = with(env, "EXECUTOR_URL", &fallback.base);
        // the flag, this time, instead of REFPIPE_FRAGILE
        let mut child = refpipe(&env);
        child.arg("run").args(flag);
        let out = run_command(child, json!({"prompt": "sword"})).await;
        outputs.push((out, fallback));
    }
    assert_passes(&outputs[0].0, "completed");
    let (fragile, fallback) = &outputs[1];
    assert_fragile_failure(
        fragile,
        "llm_error",
        "planner",
        &[
            "HTTP 503",
            "(fragile mode: no retries, no fallback provider)",
        ],
    );
    assert!(fallback.calls("planner").is_empty());
    assert_eq!(
        fragile.doc["provider_calls"],
        json!({"primary": 1, "fallback": 0})
    );
}

#[tokio::test]
async fn a_malformed_reply_is_not_re_asked() {
    let [(resilient, _), (fragile, stub)] = both_modes(
        |stub| {
            script_happy_path(stub);
            stub.on(
                "planner",
                vec![
                    raw_completion("{\"subtasks\": "),
                    completion(json!({"subtasks": ["blade"]})),
                ],
            );
        },
        json!({"prompt": "sword"}),
    )
    .await;
    assert_passes(&resilient, "completed");
    assert_fragile_failure(
        &fragile,
        "malformed_llm_output",
        "planner",
        &[
            "planner agent's reply is malformed: content is not JSON",
            "(fragile mode: no re-ask of a malformed reply)",
        ],
    );
    assert_eq!(stub.calls("planner").len(), 1);
}

#[tokio::test]
async fn a_failed_critic_fails_the_run_instead_of_degrading_it() {
    let [(resilient, _), (fragile, stub)] = both_modes(
        |stub| {
            script_happy_path(stub);
            stub.on("critic", vec![status(500, None)]);
        },
        json!({"prompt": "sword"}),
    )
    .await;
    assert_passes(&resilient, "degraded");
    assert_fragile_failure(
        &fragile,
        "llm_error",
        "critic",
        &[
            "HTTP 500",
            "(fragile mode: no retries, a critic failure fails the run instead of degrading it)",
        ],
    );
    assert_eq!(stub.calls("critic").len(), 1);
    assert_eq!(fragile.doc["degraded_reason"], Value::Null);
}

#[tokio::test]
async fn a_failed_execution_is_not_fed_back_to_the_coder() {
    let [(resilient, _), (fragile, stub)] = both_modes(
        |stub| {
            script_happy_path(stub);
            stub.on(
                "executor",
                vec![executed(false, &["NameError: swrod"]), executed(true, &[])],
            );
        },
        json!({"prompt": "sword"}),
    )
    .await;
    assert_passes(&resilient, "completed");
    assert_eq!(resilient.doc["refinement_iterations"], 1);
    assert_fragile_failure(
        &fragile,
        "executor_failed",
        "executor",
        &[
            "execution attempt 1 failed: NameError: swrod",
            "(fragile mode: a failed execution is not fed back to the coder)",
        ],
    );
    assert_eq!(stub.calls("coder").len(), 1);
    assert!(stub.calls("critic").is_empty());
}

#[tokio::test]
async fn an_unavailable_executor_is_not_retried() {
    let [(resilient, _), (fragile, stub)] = both_modes(
        |stub| {
            script_happy_path(stub);
            stub.on("executor", vec![status(503, None), executed(true, &[])]);
        },
        json!({"prompt": "sword"}),
    )
    .await;
    assert_passes(&resilient, "completed");
    assert_fragile_failure(
        &fragile,
        "executor_error",
        "executor",
        &["HTTP 503", "(fragile mode: no retries)"],
    );
    assert_eq!(stub.calls("executor").len(), 1);
}

#[tokio::test]
async fn failures_resilience_would_not_help_are_reported_as_usual() {
    let stub = Stub::start().await; // nothing scripted: 404, which is never retried
    let out = run(&fragile(env_for(&stub)), json!({"prompt": "sword"})).await;
    assert_eq!(out.doc["error"]["kind"], "llm_error");
    let message = out.doc["error"]["message"].as_str().unwrap();
    assert!(!message.contains("fragile mode"), "{message}");
}

#[tokio::test]
async fn refused_runs_report_the_mode_too() {
    let stub = Stub::start().await;
    let out = run(
        &with(env_for(&stub), "REFPIPE_FRAGILE", "maybe"),
        json!({"prompt": "x"}),
    )
    .await;
    assert_eq!(out.code, 3);
    assert_eq!(out.doc["mode"], "resilient");
    let message = out.doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`REFPIPE_FRAGILE` has invalid value `maybe`"),
        "{message}"
    );

    let mut command = refpipe(&fragile(env_for(&stub)));
    command.arg("run");
    let out = run_command(command, json!({"prompt": " "})).await;
    assert_eq!(out.code, 2);
    assert_eq!(out.doc["mode"], "fragile");
}
