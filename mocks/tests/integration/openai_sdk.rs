//! The official `openai` Python SDK against the LLM stub: a plain call, a streamed call with
//! usage, a tool call, a 429 and a stream cut by a fault, each parsed by the SDK itself
//! (`tests/openai_sdk_client.py`). Runs whenever `python3` is on PATH; `.ci/run` installs
//! the package, and without it the test fails saying how to install it.

use std::process::Command;
use std::time::Duration;

use chaos::{FaultRule, HttpFault, Schedule};
use mocks::{
    LlmFaultRule, LlmMatch, LlmReply, LlmReplyBody, LlmRule, LlmStub, LlmStubConfig, ToolCall,
};
use serde_json::json;

use crate::support::refpipe_agents;

fn rule(id: &str, agent: &str, reply: LlmReply) -> LlmRule {
    LlmRule {
        id: id.into(),
        when: LlmMatch {
            agent: Some(agent.into()),
            ..LlmMatch::default()
        },
        replies: vec![reply],
    }
}

#[tokio::test]
async fn the_official_python_sdk_parses_every_reply_shape() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: no python3 on PATH, so the official SDK cannot be run here");
        return;
    }
    let stub = LlmStub::start(LlmStubConfig {
        rules: vec![
            rule(
                "llm[1]",
                "planner",
                LlmReply::json(json!({"subtasks": ["blade", "hilt"]})),
            ),
            rule(
                "llm[2]",
                "critic",
                LlmReply::json(json!({"score": 8.5, "needs_refinement": false, "issues": []})),
            ),
            rule(
                "llm[3]",
                "coder",
                LlmReply::new(LlmReplyBody::ToolCalls(vec![ToolCall::new(
                    "write_code",
                    json!({"code": "def add(a, b):\n    return a + b"}),
                )])),
            ),
            rule(
                "llm[4]",
                "limited",
                LlmReply::new(LlmReplyBody::Error {
                    status: 429,
                    message: "Rate limit reached".into(),
                    error_type: None,
                    code: None,
                    retry_after: Some(Duration::from_secs(2)),
                }),
            ),
            rule(
                "llm[5]",
                "cut",
                LlmReply::text("A long steel blade with a fuller and a leather grip."),
            ),
        ],
        faults: vec![LlmFaultRule {
            when: LlmMatch {
                agent: Some("cut".into()),
                ..LlmMatch::default()
            },
            rule: FaultRule {
                id: "chaos[1]".into(),
                fault: HttpFault::StreamCut { after_chunks: 2 },
                schedule: Schedule::Always,
            },
        }],
        agents: refpipe_agents(),
        ..LlmStubConfig::default()
    })
    .await
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_sdk_client.py");
    let base = stub.base_url("primary");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&base)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK client failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let calls: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = calls.iter().map(|c| c["call"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["plain", "stream", "tool", "rate_limited", "cut_stream"]
    );
    // the SDK saw the first content chunk, then the broken stream
    assert_eq!(calls[4]["pieces"], 1, "{}", calls[4]);

    let journal = stub.journal();
    let agents: Vec<Option<&str>> = journal.iter().map(|e| e.agent.as_deref()).collect();
    assert_eq!(
        agents,
        [
            Some("planner"),
            Some("critic"),
            Some("coder"),
            Some("limited"),
            Some("cut")
        ]
    );
    assert!(journal[1].served.contains("sse"), "{}", journal[1].served);
    assert!(journal.iter().all(|e| e.unmatched.is_none()));
}
