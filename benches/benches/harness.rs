//! Benchmarks of the harness itself (not of the pipelines it tests).
//!
//! - `load/bundled_scenarios`: discover, parse and validate every file in `scenarios/`,
//!   and resolve its target: what each `cargo xtask gate` pays before running anything;
//! - `load/one_scenario`: read, parse and validate one file
//!   (`refpipe/flow/refinement_cycle.toml`) with `harness::scenario::load`;
//! - `stub/chat_completion`: one chat completion through the LLM stub over loopback with
//!   a keep-alive client, the rule engine choosing among several rules: the harness's
//!   cost per LLM call a target makes;
//! - `stub/match_rule`: which of five rules answers a request (body parsed, agent
//!   recognised by header, rules tried in order), as the stub decides it, no socket;
//! - `stub/handle`: all the stub does for a request once it is read (route, match,
//!   render the completion, journal it), no socket: the stub's share of `chat_completion`;
//! - `histogram/record`: one latency into an HDR histogram (`reports::metrics::Histo`);
//! - `histogram/merge`: adding one histogram of 10,000 samples into another;
//! - `junit/render_200`: `reports::junit::render` of a 200-scenario report with failures,
//!   journals and stderr tails.
//!
//! `cargo bench -p benches`; criterion compares each run with the previous one. For a
//! quick run: `cargo bench -p benches -- --warm-up-time 1 --measurement-time 2`.

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use harness::plan::{Selection, plan};
use mocks::bench_support::LlmHandler;
use mocks::{
    AgentRecognition, LlmMatch, LlmReply, LlmReplyBody, LlmRule, LlmStub, LlmStubConfig,
    StubOptions,
};
use reports::metrics::Histo;
use serde_json::json;

fn scenarios_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn load(c: &mut Criterion) {
    let root = scenarios_root();
    let selection = Selection {
        paths: vec![root.clone()],
        ..Selection::default()
    };
    let n = plan(&selection, 1)
        .expect("the bundled scenarios load")
        .scenarios
        .len();
    c.bench_function(&format!("load/bundled_scenarios ({n} files)"), |b| {
        b.iter(|| plan(&selection, 1).expect("the bundled scenarios load"))
    });

    let file = root.join("refpipe/flow/refinement_cycle.toml");
    harness::scenario::load(&root, &file).expect("the scenario loads");
    c.bench_function("load/one_scenario", |b| {
        b.iter(|| harness::scenario::load(&root, &file).expect("the scenario loads"))
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

/// Five rules, one per agent; the requests are the critic's, so every rule is tried.
fn five_rules() -> LlmStubConfig {
    LlmStubConfig {
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
        rate_limits: Vec::new(),
    }
}

fn critic_request() -> serde_json::Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are the critic agent. Judge the code."},
            {"role": "user", "content": "Here is the code: def add(a, b): return a + b"}
        ]
    })
}

fn stub(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let stub = rt
        .block_on(LlmStub::start(five_rules()))
        .expect("the stub starts");
    let url = format!("{}/chat/completions", stub.base_url("primary"));
    let client = reqwest::Client::new();
    let body = critic_request();
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

    // the same work without the socket, through the stub's own handler
    let handler = LlmHandler::new(five_rules(), StubOptions::default()).expect("a valid config");
    let mut headers = hyper::HeaderMap::new();
    headers.insert(
        "x-agent-role",
        hyper::header::HeaderValue::from_static("critic"),
    );
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    let bytes = serde_json::to_vec(&body).expect("serializable");
    assert_eq!(handler.first_match(&headers, &bytes), Some(4));
    c.bench_function("stub/match_rule", |b| {
        b.iter(|| handler.first_match(&headers, &bytes))
    });
    let post = hyper::Method::POST;
    assert_eq!(
        handler.handle(&post, "/v1/chat/completions", &headers, &bytes),
        200
    );
    c.bench_function("stub/handle", |b| {
        b.iter(|| handler.handle(&post, "/v1/chat/completions", &headers, &bytes))
    });
}

fn histogram(c: &mut Criterion) {
    let mut histo = Histo::new();
    let mut us = 1u64;
    c.bench_function("histogram/record", |b| {
        b.iter(|| {
            // a spread of values, so the buckets written vary as in a real run
            us = us * 7 % 1_000_003 + 1;
            histo.record(Duration::from_micros(us));
        })
    });

    let mut sample = Histo::new();
    for i in 0..10_000u64 {
        sample.record(Duration::from_micros(100 + i * 37 % 250_000));
    }
    c.bench_function("histogram/merge (10k samples)", |b| {
        b.iter_batched_ref(
            Histo::new,
            |into| into.merge(&sample),
            BatchSize::SmallInput,
        )
    });
}

/// A 200-scenario report as `results.json` holds it: one in ten failed (with a failure
/// and a stderr tail), every one with a short journal.
fn report_of_200() -> reports::RunReport {
    let scenarios: Vec<serde_json::Value> = (0..200)
        .map(|i| {
            let failed = i % 10 == 3;
            let journal: Vec<serde_json::Value> = ["planner", "coder", "critic"]
                .iter()
                .enumerate()
                .map(|(k, agent)| {
                    json!({
                        "at": 0.01 * (k + 1) as f64,
                        "source": "llm",
                        "agent": agent,
                        "request": format!("POST /v1/chat/completions model=gpt-4o stream=false tools=0 messages=2 last[user]=\"step {k} of scenario {i}\""),
                        "rule": format!("llm[{}] reply 1/1", k + 1),
                        "served": "200 json (412 bytes)",
                    })
                })
                .collect();
            json!({
                "name": format!("scenario {i}: critic asks for one refinement, then accepts"),
                "path": format!("refpipe/suite{}/scenario_{i}.toml", i % 5),
                "suite": format!("refpipe/suite{}", i % 5),
                "target": "refpipe",
                "tags": ["flow", "bench"],
                "seed": i,
                "outcome": if failed { "failed" } else { "passed" },
                "duration": 0.25 + (i % 7) as f64 * 0.01,
                "failures": if failed {
                    json!([{
                        "kind": "expectation",
                        "message": "expected status `completed`, got `failed` <&> \"quoted\"",
                        "detail": "output.status: expected \"completed\"\n  actual \"failed\"",
                    }])
                } else {
                    json!([])
                },
                "journal": journal,
                "exit_code": if failed { 1 } else { 0 },
                "stderr_tail": if failed { "Traceback (most recent call last):\n  ValueError: bad JSON\n" } else { "" },
                "output": {"status": if failed { "failed" } else { "completed" }},
            })
        })
        .collect();
    serde_json::from_value(json!({
        "tool": "agent-harness 0.1.0",
        "started_at": "2025-01-01T00:00:00Z",
        "duration": 12.5,
        "seed": 42,
        "interrupted": false,
        "scenarios": scenarios,
    }))
    .expect("a report as results.json holds it")
}

fn junit(c: &mut Criterion) {
    let report = report_of_200();
    assert!(reports::junit::render(&report).contains("<testsuites"));
    c.bench_function("junit/render_200", |b| {
        b.iter(|| reports::junit::render(&report))
    });
}

criterion_group!(benches, load, stub, histogram, junit);
criterion_main!(benches);
