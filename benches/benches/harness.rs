//! Benchmarks of the harness itself (not of the pipelines it tests).
//!
//! - `load/bundled_scenarios`: discover, parse and validate every file in `scenarios/`,
//!   and resolve its target: what each `cargo xtask gate` pays before running anything;
//! - `stub/chat_completion`: one chat completion through the LLM stub over loopback with
//!   a keep-alive client, the rule engine choosing among several rules: the harness's
//!   cost per LLM call a target makes.
//!
//! `cargo bench -p benches`; criterion compares each run with the previous one.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use harness::plan::{Selection, plan};
use mocks::{AgentRecognition, LlmMatch, LlmReply, LlmReplyBody, LlmRule, LlmStub, LlmStubConfig};
use serde_json::json;

fn load(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let selection = Selection {
        paths: vec![root],
        ..Selection::default()
    };
    let n = plan(&selection, 1)
        .expect("the bundled scenarios load")
        .scenarios
        .len();
    c.bench_function(&format!("load/bundled_scenarios ({n} files)"), |b| {
        b.iter(|| plan(&selection, 1).expect("the bundled scenarios load"))
    });
}

fn rule(i: usize, agent: &str) -> LlmRule {
    LlmRule {
        id: format!("llm[{i}]"),
        when: LlmMatch {
            agent: Some(agent.to_string()),
            ..LlmMatch::default()
        },
        replies: vec![LlmReply {
            body: LlmReplyBody::Json(
                json!({"score": 8.5, "needs_refinement": false, "issues": []}),
            ),
            delay: None,
            finish_reason: None,
        }],
    }
}

fn stub(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let config = LlmStubConfig {
        // The request is for the last rule, so every rule is tried.
        rules: ["planner", "coder", "retriever", "reviewer", "critic"]
            .iter()
            .enumerate()
            .map(|(i, a)| rule(i + 1, a))
            .collect(),
        faults: Vec::new(),
        agents: AgentRecognition {
            header: Some("X-Agent-Role".into()),
            system_prompt: None,
        },
        seed: 0,
    };
    let stub = rt
        .block_on(LlmStub::start(config))
        .expect("the stub starts");
    let url = format!("{}/chat/completions", stub.base_url("primary"));
    let client = reqwest::Client::new();
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are the critic agent. Judge the code."},
            {"role": "user", "content": "Here is the code: def add(a, b): return a + b"}
        ]
    });
    c.bench_function("stub/chat_completion", |b| {
        b.to_async(&rt).iter(|| async {
            let resp = client
                .post(&url)
                .header("X-Agent-Role", "critic")
                .json(&body)
                .send()
                .await
                .expect("the stub answers");
            assert!(resp.status().is_success());
            resp.bytes().await.expect("a body")
        })
    });
}

criterion_group!(benches, load, stub);
criterion_main!(benches);
