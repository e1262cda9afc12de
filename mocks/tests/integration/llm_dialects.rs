//! The same rules and faults, rendered in each API's dialect: error bodies and statuses
//! by API, request ids, `retry-after-ms`, `when.api`, stream faults on another API's
//! events, rate-limit quotas under concurrency, `/v1/models/{id}`, embeddings.

use std::time::Duration;

use chaos::{HttpFault, Schedule};
use mocks::{LlmMatch, LlmReply, LlmStub, LlmStubConfig, RateLimit, StubError};
use serde_json::{Value, json};

use crate::support::{agent, fault, llm_with_faults, raw_post, refpipe_agents, rule, send};

fn anthropic(system: &str, stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "system": system, "stream": stream,
           "messages": [{"role": "user", "content": "Rate the sword"}]})
}

fn gemini() -> Value {
    json!({"systemInstruction": {"parts": [{"text": "You are the critic agent."}]},
           "contents": [{"role": "user", "parts": [{"text": "Rate the sword"}]}]})
}

async fn post(url: String, body: &Value) -> crate::support::Response {
    send(reqwest::Client::new().post(url).json(body)).await
}

#[tokio::test]
async fn one_fault_is_an_error_in_each_apis_own_shape() {
    let stub = llm_with_faults(
        vec![rule(
            "llm[1]",
            LlmMatch::default(),
            vec![LlmReply::text("fine")],
        )],
        vec![fault(
            "chaos[1]",
            agent("critic"),
            HttpFault::Status {
                status: 529,
                message: "Overloaded".into(),
                retry_after: Some(Duration::from_millis(1250)),
            },
            Schedule::Always,
        )],
        0,
    )
    .await;
    let uri = stub.uri();
    let claude = post(
        format!("{uri}/v1/messages"),
        &anthropic("You are the critic agent.", false),
    )
    .await;
    assert_eq!(claude.status, 529);
    assert_eq!(
        claude.json(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(claude.header("retry-after"), Some("2"));
    assert_eq!(claude.header("retry-after-ms"), Some("1250"));
    let request_id = claude.header("request-id").expect("anthropic's request-id");
    assert!(request_id.starts_with("req_"), "{request_id}");

    let gemini = post(
        format!("{uri}/v1beta/models/gemini-2.0-flash:generateContent"),
        &gemini(),
    )
    .await;
    assert_eq!(gemini.status, 529);
    assert_eq!(gemini.json()["error"]["status"], "INTERNAL");
    assert_eq!(gemini.json()["error"]["code"], 529);

    let responses = post(
        format!("{uri}/v1/responses"),
        &json!({"model": "gpt-4o", "instructions": "You are the critic agent.", "input": "Rate"}),
    )
    .await;
    assert_eq!(responses.status, 529);
    assert_eq!(responses.json()["error"]["message"], "Overloaded");
    assert_ne!(
        responses.header("x-request-id"),
        Some(request_id),
        "ids are per request"
    );

    // anyone else gets the rule's reply, in the dialect of the call
    let fine = post(
        format!("{uri}/v1/messages"),
        &anthropic("You are the planner agent.", false),
    )
    .await;
    assert_eq!(fine.status, 200);
    assert_eq!(fine.json()["content"][0]["text"], "fine");
    assert_eq!(fine.json()["stop_reason"], "end_turn");
}

#[tokio::test]
async fn when_api_selects_by_api_and_says_why_it_did_not_match() {
    let only_gemini = LlmMatch {
        api: Some("gemini".into()),
        ..LlmMatch::default()
    };
    let stub = llm_with_faults(
        vec![rule(
            "llm[1]",
            only_gemini,
            vec![LlmReply::text("from gemini")],
        )],
        Vec::new(),
        0,
    )
    .await;
    let uri = stub.uri();
    let ok = post(
        format!("{uri}/v1beta/models/gemini-2.0-flash:generateContent"),
        &gemini(),
    )
    .await;
    assert_eq!(
        ok.json()["candidates"][0]["content"]["parts"][0]["text"],
        "from gemini"
    );
    assert_eq!(ok.json()["candidates"][0]["finishReason"], "STOP");
    let missed = post(
        format!("{uri}/v1/messages"),
        &anthropic("You are the critic agent.", false),
    )
    .await;
    assert_eq!(missed.status, 404);
    assert_eq!(missed.json()["error"]["type"], "not_found_error");
    let journal = stub.journal();
    let unmatched = journal[1].unmatched.as_ref().unwrap();
    assert_eq!(
        unmatched.closest.as_deref(),
        Some(r#"llm[1] (when.api = "gemini" but the request is for the anthropic API)"#)
    );
    assert!(
        unmatched.request.contains("api: anthropic"),
        "{}",
        unmatched.request
    );
}

#[tokio::test]
async fn an_unknown_api_name_is_refused_at_start() {
    let error = LlmStub::start(LlmStubConfig {
        rules: vec![rule(
            "llm[1]",
            LlmMatch {
                api: Some("claude".into()),
                ..LlmMatch::default()
            },
            vec![LlmReply::text("x")],
        )],
        ..LlmStubConfig::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, StubError::UnknownApi { .. }));
    assert!(
        error
            .to_string()
            .contains("hint: use one of `chat`, `responses`, `anthropic`, `gemini`, `embeddings`"),
        "{error}"
    );
}

#[tokio::test]
async fn a_stream_cut_cuts_anthropic_events_too() {
    let stub = llm_with_faults(
        vec![rule(
            "llm[1]",
            LlmMatch::default(),
            vec![LlmReply::text(
                "A long steel blade with a fuller and a leather grip.",
            )],
        )],
        vec![fault(
            "chaos[1]",
            LlmMatch::default(),
            HttpFault::StreamCut { after_chunks: 3 },
            Schedule::Always,
        )],
        0,
    )
    .await;
    let raw = raw_post(
        &stub.uri(),
        "/v1/messages",
        &anthropic("You are the critic agent.", true),
    )
    .await;
    let body = String::from_utf8_lossy(raw.body());
    assert!(body.contains("event: message_start"), "{body}");
    assert!(!body.contains("message_stop"), "the stream was cut: {body}");
    assert!(
        stub.journal()[0].served.contains("cut after 3 chunks"),
        "{}",
        stub.journal()[0].served
    );
}

#[tokio::test]
async fn a_quota_answers_429_with_headers_a_client_can_act_on() {
    let stub = LlmStub::start(LlmStubConfig {
        rules: vec![rule(
            "llm[1]",
            LlmMatch::default(),
            vec![LlmReply::text("ok")],
        )],
        agents: refpipe_agents(),
        rate_limits: vec![RateLimit {
            provider: None,
            requests: Some(10),
            tokens: None,
            per: Duration::from_secs(60),
        }],
        ..LlmStubConfig::default()
    })
    .await
    .unwrap();
    let base = stub.base_url("primary");
    let calls = (0..20).map(|_| {
        let url = format!("{base}/chat/completions");
        tokio::spawn(async move {
            post(
                url,
                &crate::support::body("gpt-4o", "You are the critic agent", "hi"),
            )
            .await
        })
    });
    let mut statuses = Vec::new();
    for call in calls {
        let response = call.await.unwrap();
        assert_eq!(response.header("x-ratelimit-limit-requests"), Some("10"));
        if response.status == 429 {
            assert_eq!(response.header("x-ratelimit-remaining-requests"), Some("0"));
            assert_eq!(response.json()["error"]["code"], "rate_limit_exceeded");
            let ms: u64 = response.header("retry-after-ms").unwrap().parse().unwrap();
            assert!(ms > 0 && ms <= 60_000, "{ms}");
            let secs: u64 = response.header("retry-after").unwrap().parse().unwrap();
            assert_eq!(secs, ms.div_ceil(1000));
            assert!(response.header("x-ratelimit-reset-requests").is_some());
        }
        statuses.push(response.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        10,
        "{statuses:?}"
    );
    let limited = stub
        .journal()
        .iter()
        .filter(|e| e.served == "429 rate limited")
        .count();
    assert_eq!(limited, 10);
}

#[tokio::test]
async fn models_by_id_and_embeddings_pinned_or_derived() {
    let pinned = LlmMatch {
        api: Some("embeddings".into()),
        contains: Some("pinned".into()),
        ..LlmMatch::default()
    };
    let stub = llm_with_faults(
        vec![
            rule(
                "llm[1]",
                pinned,
                vec![LlmReply::new(mocks::LlmReplyBody::Embedding(vec![
                    1.0, 0.0,
                ]))],
            ),
            rule(
                "llm[2]",
                LlmMatch {
                    model: Some("gpt-4o".into()),
                    ..LlmMatch::default()
                },
                vec![LlmReply::text("x")],
            ),
        ],
        Vec::new(),
        3,
    )
    .await;
    let base = stub.base_url("primary");
    let model = send(reqwest::Client::new().get(format!("{base}/models/gpt-4o"))).await;
    assert_eq!(model.json()["id"], "gpt-4o");
    let missing = send(reqwest::Client::new().get(format!("{base}/models/gpt-5"))).await;
    assert_eq!(
        (missing.status, missing.json()["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
    let vectors = post(
        format!("{base}/embeddings"),
        &json!({"model": "e", "input": ["pinned", "free"], "dimensions": 4}),
    )
    .await;
    let vectors = vectors.json();
    assert_eq!(
        vectors["data"][0]["embedding"],
        json!([1.0, 0.0]),
        "the rule pins the batch it matches"
    );
    let free = post(
        format!("{base}/embeddings"),
        &json!({"model": "e", "input": "free", "dimensions": 4}),
    )
    .await;
    assert_eq!(
        free.json()["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let again = post(
        format!("{base}/embeddings"),
        &json!({"model": "e", "input": "free", "dimensions": 4}),
    )
    .await;
    assert_eq!(
        free.json()["data"],
        again.json()["data"],
        "deterministic per input and seed"
    );
}
