//! `refpipe run`: exit codes, the result document, and resilience against a scripted stub.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

fn request(prompt: &str) -> Value {
    json!({"prompt": prompt})
}

fn env_without(env: Vec<(String, String)>, var: &str) -> Vec<(String, String)> {
    env.into_iter().filter(|(k, _)| k != var).collect()
}

fn with(mut env: Vec<(String, String)>, var: &str, value: &str) -> Vec<(String, String)> {
    env.push((var.to_owned(), value.to_owned()));
    env
}

#[tokio::test]
async fn empty_prompt_exits_2_with_a_validation_error() {
    let stub = Stub::start().await;
    let out = run(&env_for(&stub), request("   ")).await;
    assert_eq!(out.code, 2);
    assert_eq!(out.doc["status"], "failed");
    assert_eq!(out.doc["error"]["kind"], "validation");
    assert_eq!(out.doc["error"]["message"], "`prompt` is empty");
    assert!(out.stderr.contains("`prompt` is empty"), "{}", out.stderr);
    assert!(stub.calls("planner").is_empty());
}

#[tokio::test]
async fn oversized_prompt_exits_2() {
    let stub = Stub::start().await;
    let env = with(env_for(&stub), "REFPIPE_MAX_PROMPT_CHARS", "10");
    let out = run(&env, request("a prompt of more than ten characters")).await;
    assert_eq!(out.code, 2);
    assert_eq!(out.doc["error"]["kind"], "validation");
}

#[tokio::test]
async fn missing_openai_base_url_exits_3_with_a_config_error() {
    let stub = Stub::start().await;
    let out = run(
        &env_without(env_for(&stub), "OPENAI_BASE_URL"),
        request("sword"),
    )
    .await;
    assert_eq!(out.code, 3);
    assert_eq!(out.doc["status"], "failed");
    assert_eq!(out.doc["error"]["kind"], "config");
    let message = out.doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`OPENAI_BASE_URL` is not set"),
        "{message}"
    );
}

#[tokio::test]
async fn invalid_duration_names_variable_and_value() {
    let stub = Stub::start().await;
    let env = with(env_for(&stub), "REFPIPE_LLM_TIMEOUT", "soon");
    let out = run(&env, request("sword")).await;
    assert_eq!(out.code, 3);
    let message = out.doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`REFPIPE_LLM_TIMEOUT` has invalid value `soon`"),
        "{message}"
    );
}

#[tokio::test]
async fn happy_path_with_one_refinement() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on(
        "critic",
        vec![
            completion(json!({"score": 5, "needs_refinement": true, "issues": ["poor lighting"]})),
            completion(json!({"score": 8.5, "needs_refinement": false})),
        ],
    );
    let out = run(&env_for(&stub), request("Create a detailed medieval sword")).await;
    let doc = &out.doc;
    assert_eq!(out.code, 0, "{doc:#}\n{}", out.stderr);
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["subtasks"], json!(["blade", "hilt"]));
    assert_eq!(doc["code"], "print('sword')");
    assert_eq!(doc["language"], "python");
    assert_eq!(
        doc["execution"],
        json!({"success": true, "artifacts": ["out.txt"], "logs": "ran", "errors": []})
    );
    assert_eq!(
        doc["critic"],
        json!({"score": 8.5, "needs_refinement": false, "issues": []})
    );
    assert_eq!(doc["refinement_iterations"], 1);
    assert_eq!(doc["execution_attempts"], 2);
    assert_eq!(
        doc["llm_requests"],
        json!({"planner": 1, "coder": 2, "critic": 2})
    );
    assert_eq!(doc["provider_calls"], json!({"primary": 5, "fallback": 0}));
    assert_eq!(
        doc["usage"],
        json!({"prompt_tokens": 50, "completion_tokens": 25, "total_tokens": 75})
    );
    let cost = doc["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - (0.05 * 0.00015 + 0.025 * 0.0006)).abs() < 1e-12,
        "{cost}"
    );
    assert_eq!(doc["degraded_reason"], Value::Null);
    assert_eq!(doc["error"], Value::Null);

    // what the agents were sent
    for role in ["planner", "coder", "critic"] {
        for call in stub.calls(role) {
            assert_eq!(call.headers["x-agent-role"], role);
            assert_eq!(call.headers["authorization"], "Bearer sk-test");
            assert_eq!(call.body["model"], "gpt-4o-mini");
            assert_eq!(call.body["response_format"], json!({"type": "json_object"}));
            let system = call.body["messages"][0]["content"].as_str().unwrap();
            assert!(
                system.starts_with(&format!("You are the {role} agent")),
                "{system}"
            );
            assert_eq!(call.body.get("tools").is_some(), role == "coder");
            assert!(call.body.get("stream").is_none());
        }
    }
    let coder = stub.calls("coder");
    assert_eq!(coder[0].body["tools"][0]["function"]["name"], "write_code");
    let second_draft_prompt = coder[1].body["messages"][1]["content"].as_str().unwrap();
    assert!(
        second_draft_prompt.contains("poor lighting"),
        "{second_draft_prompt}"
    );
    let attempts: Vec<_> = stub
        .calls("executor")
        .iter()
        .map(|c| c.body["attempt"].clone())
        .collect();
    assert_eq!(attempts, [json!(1), json!(2)]);
    assert_eq!(stub.calls("executor")[0].body["language"], "python");
    assert!(
        out.stderr.contains("refpipe: planner: calling http://"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn critic_still_wanting_refinement_when_the_budget_is_spent_completes() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on(
        "critic",
        vec![completion(
            json!({"score": 3, "needs_refinement": true, "issues": ["dull"]}),
        )],
    );
    let out = run(
        &env_for(&stub),
        json!({"prompt": "sword", "max_iterations": 1}),
    )
    .await;
    assert_eq!(out.code, 0);
    assert_eq!(out.doc["status"], "completed");
    assert_eq!(out.doc["refinement_iterations"], 1);
    assert_eq!(out.doc["critic"]["needs_refinement"], true);
    assert_eq!(out.doc["llm_requests"]["critic"], 2);
}

#[tokio::test]
async fn honours_retry_after_on_429_then_succeeds() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on(
        "planner",
        vec![
            status(429, Some("0.2")),
            completion(json!({"subtasks": ["blade"]})),
        ],
    );
    let out = run(&env_for(&stub), request("sword")).await;
    assert_eq!(out.code, 0, "{:#}", out.doc);
    assert_eq!(out.doc["status"], "completed");
    assert_eq!(out.doc["llm_requests"]["planner"], 2);
    let calls = stub.calls("planner");
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(200),
        "retried after {waited:?}"
    );
    assert!(out.stderr.contains("HTTP 429"), "{}", out.stderr);
}

#[tokio::test]
async fn malformed_twice_fails_naming_the_agent() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on(
        "coder",
        vec![raw_completion("Sure! Here is your sword: print('sword')")],
    );
    let out = run(&env_for(&stub), request("sword")).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.doc["status"], "failed");
    assert_eq!(out.doc["error"]["kind"], "malformed_llm_output");
    assert_eq!(out.doc["error"]["agent"], "coder");
    let message = out.doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("content is not JSON"), "{message}");
    assert_eq!(out.doc["llm_requests"]["coder"], 2);
    let reask = &stub.calls("coder")[1].body["messages"];
    assert_eq!(reask[2]["role"], "assistant");
    assert_eq!(
        reask[2]["content"],
        "Sure! Here is your sword: print('sword')"
    );
    assert_eq!(reask[3]["role"], "user");
}

#[tokio::test]
async fn one_malformed_reply_is_re_asked() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on(
        "planner",
        vec![
            raw_completion("{\"subtasks\": "),
            completion(json!({"subtasks": ["blade"]})),
        ],
    );
    let out = run(&env_for(&stub), request("sword")).await;
    assert_eq!(out.doc["status"], "completed");
    assert_eq!(out.doc["llm_requests"]["planner"], 2);
}

#[tokio::test]
async fn critic_500_degrades() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on("critic", vec![status(500, None)]);
    let out = run(&env_for(&stub), request("sword")).await;
    assert_eq!(out.code, 0);
    assert_eq!(out.doc["status"], "degraded");
    assert_eq!(out.doc["critic"], Value::Null);
    assert_eq!(out.doc["error"], Value::Null);
    assert_eq!(out.doc["code"], "print('sword')");
    assert_eq!(
        out.doc["llm_requests"]["critic"], 4,
        "one attempt and three retries"
    );
    let reason = out.doc["degraded_reason"].as_str().unwrap();
    assert!(reason.starts_with("critic unavailable"), "{reason}");
    assert!(reason.contains("HTTP 500"), "{reason}");
}

#[tokio::test]
async fn unmatched_request_fails_at_once_with_the_servers_message() {
    let stub = Stub::start().await; // nothing scripted: every LLM call gets 404
    let out = run(&env_for(&stub), request("sword")).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.doc["error"]["kind"], "llm_error");
    assert_eq!(out.doc["error"]["agent"], "planner");
    assert_eq!(
        out.doc["llm_requests"]["planner"], 1,
        "a 404 is not retried"
    );
    let message = out.doc["error"]["message"].as_str().unwrap();
    for needle in ["404", "no rule matches this request"] {
        assert!(message.contains(needle), "{message}");
        assert!(out.stderr.contains(needle), "{}", out.stderr);
    }
}

#[tokio::test]
async fn streamed_run() {
    let stub = Stub::start().await;
    stub.on(
        "planner",
        vec![streamed(json!({"subtasks": ["blade", "hilt"]}), true)],
    )
    .on(
        "coder",
        vec![streamed_tool_call(json!({"code": "print('é')"}))],
    )
    .on("executor", vec![executed(true, &[])])
    .on(
        "critic",
        vec![streamed(
            json!({"score": 7, "needs_refinement": false}),
            true,
        )],
    );
    let out = run(&env_for(&stub), json!({"prompt": "sword", "stream": true})).await;
    assert_eq!(out.code, 0, "{:#}\n{}", out.doc, out.stderr);
    assert_eq!(out.doc["subtasks"], json!(["blade", "hilt"]));
    assert_eq!(out.doc["code"], "print('é')");
    assert_eq!(out.doc["critic"]["score"], 7.0);
    assert_eq!(out.doc["usage"]["total_tokens"], 45);
    for role in ["planner", "coder", "critic"] {
        let body = &stub.calls(role)[0].body;
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }
}

#[tokio::test]
async fn truncated_stream_is_retried() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on(
        "planner",
        vec![
            streamed(json!({"subtasks": ["blade"]}), false),
            streamed(json!({"subtasks": ["blade"]}), true),
        ],
    );
    let out = run(&env_for(&stub), json!({"prompt": "sword", "stream": true})).await;
    assert_eq!(out.doc["status"], "completed");
    assert_eq!(out.doc["llm_requests"]["planner"], 2);
    assert!(
        out.stderr.contains("ended before `data: [DONE]`"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn fallback_takes_over_and_the_breaker_spares_the_primary() {
    let primary = Stub::start().await;
    primary
        .on("planner", vec![status(503, None)])
        .on("coder", vec![status(503, None)])
        .on("critic", vec![status(503, None)]);
    let fallback = Stub::start().await;
    script_happy_path(&fallback);
    let env = with(
        env_for(&primary),
        "REFPIPE_FALLBACK_BASE_URL",
        &fallback.llm_url(),
    );
    let env = with(env, "REFPIPE_FALLBACK_API_KEY", "sk-fallback");
    let env = with(env, "EXECUTOR_URL", &fallback.base);
    let out = run(&env, request("sword")).await;
    assert_eq!(out.code, 0, "{:#}", out.doc);
    assert_eq!(out.doc["status"], "completed");
    // planner: 4 attempts at the primary, then the fallback; the coder's first failure is
    // the fifth in a row and opens the breaker, so the rest skip the primary
    assert_eq!(
        out.doc["provider_calls"],
        json!({"primary": 5, "fallback": 3})
    );
    assert_eq!(
        out.doc["llm_requests"],
        json!({"planner": 5, "coder": 2, "critic": 1})
    );
    assert!(primary.calls("critic").is_empty());
    assert_eq!(
        fallback.calls("planner")[0].headers["authorization"],
        "Bearer sk-fallback"
    );
}

#[tokio::test]
async fn failed_execution_refines_then_fails_when_the_budget_is_spent() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on("executor", vec![executed(false, &["NameError: swrod"])]);
    let out = run(
        &env_for(&stub),
        json!({"prompt": "sword", "max_iterations": 1}),
    )
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(out.doc["error"]["kind"], "executor_failed");
    assert_eq!(out.doc["error"]["agent"], "executor");
    assert_eq!(out.doc["execution_attempts"], 2);
    assert_eq!(out.doc["refinement_iterations"], 1);
    assert_eq!(out.doc["execution"]["success"], false);
    let second_draft_prompt = stub.calls("coder")[1].body["messages"][1]["content"].clone();
    assert!(
        second_draft_prompt
            .as_str()
            .unwrap()
            .contains("NameError: swrod")
    );
    assert!(stub.calls("critic").is_empty());
}

#[tokio::test]
async fn executor_5xx_is_retried() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on("executor", vec![status(503, None), executed(true, &[])]);
    let out = run(&env_for(&stub), request("sword")).await;
    assert_eq!(out.doc["status"], "completed");
    assert_eq!(out.doc["execution_attempts"], 1);
    let calls = stub.calls("executor");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1].body["attempt"], 1,
        "a retry repeats the same execution"
    );
}

#[tokio::test]
async fn timed_out_attempt_is_retried() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    stub.on(
        "planner",
        vec![Reply::Hang, completion(json!({"subtasks": ["blade"]}))],
    );
    let env = with(env_for(&stub), "REFPIPE_LLM_TIMEOUT", "100ms");
    let out = run(&env, request("sword")).await;
    assert_eq!(out.doc["status"], "completed");
    assert_eq!(out.doc["llm_requests"]["planner"], 2);
    assert!(out.stderr.contains("within 100ms"), "{}", out.stderr);
}
