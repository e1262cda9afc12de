//! The official clients of every API the LLM stub serves, driven against it as pipelines
//! drive them (`tests/clients/python_clients.py`, `tests/node/clients.mjs`): openai Python
//! (chat, parse, Responses plain, streamed and with a tool call, embeddings, a model,
//! retries honouring `retry-after-ms`, the Azure path shape), openai Node (chat,
//! Responses plain and streamed), anthropic (create, stream, tool use, 429 and 529 retried
//! by the SDK, `overloaded_error`), google-genai (generate, stream, a function call,
//! `RESOURCE_EXHAUSTED`), langchain-openai with `use_responses_api=True`, and
//! openai-agents with its default (Responses) model.
//!
//! `cargo xtask test` installs the clients. A client that is not installed skips its test
//! with the install command, except in CI (`CI=true`), where it fails.

use std::time::Duration;

use mocks::{LlmMatch, LlmReply, LlmReplyBody, LlmRule, LlmStub, LlmStubConfig, ToolCall};
use serde_json::{Value, json};

use crate::support::{agent, refpipe_agents, rule};

const VERDICT: &str = "The sword is well balanced; the grip needs a leather wrap.";
/// The exit code of the scripts when their client is not installed.
const NOT_INSTALLED: i32 = 3;

fn error(status: u16, retry_after_ms: u64) -> LlmReply {
    LlmReply::new(LlmReplyBody::Error {
        status,
        message: format!("scripted {status}"),
        error_type: None,
        code: None,
        retry_after: Some(Duration::from_millis(retry_after_ms)),
    })
}

async fn stub() -> LlmStub {
    let embeddings = LlmMatch {
        api: Some("embeddings".into()),
        ..LlmMatch::default()
    };
    LlmStub::start(LlmStubConfig {
        rules: vec![
            rule(
                "llm[1]",
                agent("planner"),
                vec![LlmReply::json(json!({"subtasks": ["blade", "hilt"]}))],
            ),
            rule("llm[2]", agent("critic"), vec![LlmReply::text(VERDICT)]),
            rule(
                "llm[3]",
                agent("coder"),
                vec![LlmReply::new(LlmReplyBody::ToolCalls(vec![ToolCall::new(
                    "write_code",
                    json!({"code": "def add(a, b):\n    return a + b"}),
                )]))],
            ),
            rule(
                "llm[4]",
                agent("limited"),
                vec![error(429, 400), LlmReply::text("recovered")],
            ),
            rule(
                "llm[5]",
                agent("overloaded"),
                vec![error(429, 50), error(529, 50), LlmReply::text("recovered")],
            ),
            LlmRule {
                id: "llm[6]".into(),
                when: LlmMatch {
                    agent: Some("busy".into()),
                    api: Some("gemini".into()),
                    ..LlmMatch::default()
                },
                replies: vec![error(429, 0)],
            },
            rule("llm[7]", agent("busy"), vec![error(529, 0)]),
            // embeddings are derived from their inputs unless a rule pins them: none here
            rule(
                "llm[8]",
                LlmMatch {
                    contains: Some("never sent".into()),
                    ..embeddings
                },
                vec![LlmReply::text("x")],
            ),
        ],
        agents: refpipe_agents(),
        ..LlmStubConfig::default()
    })
    .await
    .unwrap()
}

/// Runs a client script; `None` when its client is not installed (outside CI).
async fn run(program: &str, args: &[&str], install: &str) -> Option<Vec<Value>> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await;
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    let out = match out {
        Ok(out) => out,
        Err(error) if !in_ci => {
            eprintln!("skipped: `{program}` cannot be run ({error}); {install}");
            return None;
        }
        Err(error) => panic!("`{program}` cannot be run in CI: {error} ({install})"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(NOT_INSTALLED) && !in_ci {
        eprintln!("skipped: {stderr}");
        return None;
    }
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    Some(
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect(),
    )
}

async fn python(family: &str, uri: &str, install: &str) -> Option<Vec<String>> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/python_clients.py"
    );
    let checks = run("python3", &[script, family, uri], install).await?;
    Some(
        checks
            .iter()
            .map(|c| c["check"].as_str().unwrap().to_string())
            .collect(),
    )
}

#[tokio::test]
async fn openai_python_chat_parse_responses_embeddings_retries_and_azure() {
    let stub = stub().await;
    let Some(checks) = python(
        "openai",
        &stub.uri(),
        "pip install 'openai>=1.66,<4' pydantic",
    )
    .await
    else {
        return;
    };
    assert_eq!(
        checks,
        [
            "chat",
            "parse",
            "responses",
            "responses_stream",
            "responses_stream_helper",
            "responses_tool_call",
            "embeddings",
            "model",
            "retry_after",
            "azure"
        ]
    );
    let journal = stub.journal();
    let paths: Vec<&str> = journal.iter().map(|e| e.path.as_str()).collect();
    assert!(
        paths.contains(&"/openai/deployments/gpt4o-prod/chat/completions"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/openai/deployments/embeddings-prod/embeddings"),
        "{paths:?}"
    );
    // the retried call: a 429, then the reply
    let limited: Vec<u16> = journal
        .iter()
        .filter(|e| e.agent.as_deref() == Some("limited"))
        .map(|e| e.status)
        .collect();
    assert_eq!(limited, [429, 200]);
    assert!(
        journal.iter().all(|e| e.unmatched.is_none()),
        "{journal:#?}"
    );
}

#[tokio::test]
async fn openai_node_chat_and_responses() {
    let stub = stub().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    let install = "run `npm ci` in mocks/tests/node (cargo xtask test does)";
    if !std::path::Path::new(dir)
        .join("node_modules/openai")
        .exists()
        && !std::env::var("CI").is_ok_and(|ci| ci == "true")
    {
        eprintln!("skipped: the openai Node SDK is not installed; {install}");
        return;
    }
    let script = format!("{dir}/clients.mjs");
    let Some(checks) = run("node", &[&script, &stub.uri()], install).await else {
        return;
    };
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["chat", "responses", "responses_stream"]);
}

#[tokio::test]
async fn anthropic_python_create_stream_tool_use_and_retries() {
    let stub = stub().await;
    let Some(checks) = python("anthropic", &stub.uri(), "pip install 'anthropic>=0.40,<1'").await
    else {
        return;
    };
    assert_eq!(
        checks,
        [
            "create",
            "stream",
            "tool_use",
            "tool_use_stream",
            "retried_429_529",
            "overloaded_error"
        ]
    );
    let overloaded: Vec<u16> = stub
        .journal()
        .iter()
        .filter(|e| e.agent.as_deref() == Some("overloaded"))
        .map(|e| e.status)
        .collect();
    assert_eq!(overloaded, [429, 529, 200], "the SDK retried both");
}

#[tokio::test]
async fn google_genai_generate_stream_and_function_call() {
    let stub = stub().await;
    let Some(checks) = python("gemini", &stub.uri(), "pip install 'google-genai>=1,<2'").await
    else {
        return;
    };
    assert_eq!(
        checks,
        ["generate", "stream", "function_call", "resource_exhausted"]
    );
    let journal = stub.journal();
    assert!(
        journal[1].path.ends_with(":streamGenerateContent"),
        "{}",
        journal[1].path
    );
    assert!(journal[1].served.contains("sse"), "{}", journal[1].served);
}

#[tokio::test]
async fn langchain_openai_with_the_responses_api() {
    let stub = stub().await;
    let Some(checks) = python(
        "langchain",
        &stub.uri(),
        "pip install 'langchain-openai>=0.3,<2'",
    )
    .await
    else {
        return;
    };
    assert_eq!(checks, ["responses_invoke", "responses_stream"]);
    assert!(stub.journal().iter().all(|e| e.path == "/v1/responses"));
}

#[tokio::test]
async fn openai_agents_with_its_default_model() {
    let stub = stub().await;
    let Some(checks) = python("agents", &stub.uri(), "pip install 'openai-agents>=0.2,<1'").await
    else {
        return;
    };
    assert_eq!(checks, ["default_model_run"]);
    let journal = stub.journal();
    assert_eq!(
        journal[0].path, "/v1/responses",
        "the default model speaks Responses"
    );
    assert_eq!(journal[0].agent.as_deref(), Some("critic"));
}
