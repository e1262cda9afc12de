use mocks::{LlmMatch, LlmReply, LlmReplyBody, LlmStub, LlmStubConfig, ToolCall};
use serde_json::{Value, json};

use crate::support::{agent, body, chat, content, llm, rule, send};

#[tokio::test]
async fn nth_call_gets_nth_reply_and_the_last_repeats() {
    let stub = llm(vec![rule(
        "llm[1]",
        agent("critic"),
        vec![
            LlmReply::json(json!({"overall_score": 5.0, "needs_refinement": true})),
            LlmReply::json(json!({"overall_score": 8.5, "needs_refinement": false})),
        ],
    )])
    .await;
    let request = body("gpt-4o", "You are the critic agent", "Rate it");
    let mut scores = Vec::new();
    for _ in 0..4 {
        let response = chat(&stub.base_url("primary"), &[], &request).await;
        let verdict: Value = serde_json::from_str(content(&response.json())).unwrap();
        scores.push(verdict["overall_score"].as_f64().unwrap());
    }
    assert_eq!(scores, [5.0, 8.5, 8.5, 8.5]);
    let rules: Vec<_> = stub
        .journal()
        .into_iter()
        .map(|e| e.rule.unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "llm[1] reply 1/2",
            "llm[1] reply 2/2",
            "llm[1] reply 2/2",
            "llm[1] reply 2/2"
        ]
    );
}

#[tokio::test]
async fn json_reply_is_a_chat_completion() {
    let stub = llm(vec![rule(
        "llm[1]",
        LlmMatch::default(),
        vec![LlmReply::json(json!({"subtasks": ["blade", "hilt"]}))],
    )])
    .await;
    let request = body("gpt-4o-mini", "You are the planner agent", "Create a sword");
    let response = chat(&stub.base_url("primary"), &[], &request).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let completion = response.json();
    assert!(completion["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(completion["object"], "chat.completion");
    assert!(completion["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(completion["model"], "gpt-4o-mini");
    let choice = &completion["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(content(&completion), r#"{"subtasks":["blade","hilt"]}"#);
    assert_eq!(choice["finish_reason"], "stop");
    // prompt: (ceil(25/4) + 4) + (ceil(14/4) + 4) + 2 = 11 + 8 + 2; completion: ceil(29/4)
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 21, "completion_tokens": 8, "total_tokens": 29})
    );
    let served = &stub.journal()[0].served;
    assert_eq!(*served, format!("200 json ({} bytes)", response.text.len()));
}

#[tokio::test]
async fn text_reply_with_finish_reason_override() {
    let reply = LlmReply {
        finish_reason: Some("length".into()),
        ..LlmReply::text("The blade is forged from")
    };
    let stub = llm(vec![rule("llm[1]", LlmMatch::default(), vec![reply])]).await;
    let response = chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    let completion = response.json();
    assert_eq!(content(&completion), "The blade is forged from");
    assert_eq!(completion["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn tool_call_reply_shape() {
    let reply = LlmReply::new(LlmReplyBody::ToolCalls(vec![
        ToolCall::new("search_assets", json!({"query": "sword", "limit": 3})),
        ToolCall {
            id: Some("call_fixed".into()),
            ..ToolCall::new("noop", json!({}))
        },
    ]));
    let stub = llm(vec![rule("llm[1]", LlmMatch::default(), vec![reply])]).await;
    let response = chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    let completion = response.json();
    let message = &completion["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "search_assets");
    let arguments: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"query": "sword", "limit": 3}));
    assert_eq!(calls[1]["id"], "call_fixed");
    assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn provider_prefix_selects_rules() {
    let only = |provider: &str| LlmMatch {
        provider: Some(provider.to_string()),
        ..Default::default()
    };
    let stub = llm(vec![
        rule(
            "llm[1]",
            only("fallback"),
            vec![LlmReply::text("from fallback")],
        ),
        rule(
            "llm[2]",
            only("primary"),
            vec![LlmReply::text("from primary")],
        ),
    ])
    .await;
    assert_eq!(stub.base_url("primary"), format!("{}/v1", stub.uri()));
    assert_eq!(
        stub.base_url("fallback"),
        format!("{}/fallback/v1", stub.uri())
    );
    assert!(!stub.uri().ends_with('/'));

    let request = body("m", "s", "u");
    let primary = chat(&stub.base_url("primary"), &[], &request).await;
    let fallback = chat(&stub.base_url("fallback"), &[], &request).await;
    assert_eq!(content(&primary.json()), "from primary");
    assert_eq!(content(&fallback.json()), "from fallback");

    let journal = stub.journal();
    assert_eq!(
        (journal[0].source.as_str(), journal[0].provider.as_deref()),
        ("llm", Some("primary"))
    );
    assert_eq!(
        (journal[1].source.as_str(), journal[1].provider.as_deref()),
        ("llm.fallback", Some("fallback"))
    );
    assert_eq!(journal[1].path, "/fallback/v1/chat/completions");
}

#[tokio::test]
async fn models_lists_the_models_rules_name() {
    let model = |model: &str, provider: Option<&str>| LlmMatch {
        model: Some(model.to_string()),
        provider: provider.map(str::to_string),
        ..Default::default()
    };
    let stub = llm(vec![
        rule("llm[1]", model("gpt-4o", None), vec![LlmReply::text("a")]),
        rule("llm[2]", model("gpt-4o", None), vec![LlmReply::text("b")]),
        rule(
            "llm[3]",
            model("claude-compatible", Some("fallback")),
            vec![LlmReply::text("c")],
        ),
    ])
    .await;
    let list = |provider: &'static str| {
        let url = format!("{}/models", stub.base_url(provider));
        async move { send(reqwest::Client::new().get(url)).await.json() }
    };
    let primary = list("primary").await;
    assert_eq!(
        primary,
        json!({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "agent-harness"}]})
    );
    let ids: Vec<Value> = list("fallback").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].clone())
        .collect();
    assert_eq!(ids, [json!("gpt-4o"), json!("claude-compatible")]);
    assert_eq!(stub.journal()[0].summary, "list models");
}

#[tokio::test]
async fn models_without_named_models_lists_stub_model() {
    let stub = LlmStub::start(LlmStubConfig::default()).await.unwrap();
    let url = format!("{}/models", stub.base_url("primary"));
    let models = send(reqwest::Client::new().get(url)).await.json();
    assert_eq!(models["data"][0]["id"], "stub-model");
}

#[tokio::test]
async fn reply_delay_is_journaled() {
    let reply = LlmReply::text("slow").with_delay(std::time::Duration::from_millis(20));
    let stub = llm(vec![rule("llm[1]", LlmMatch::default(), vec![reply])]).await;
    let response = chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    assert_eq!(content(&response.json()), "slow");
    assert!(
        stub.journal()[0].served.ends_with(" after 20ms"),
        "{}",
        stub.journal()[0].served
    );
}

#[tokio::test]
async fn concurrent_calls_each_get_their_own_reply_and_entry() {
    let replies = (1..=16).map(|n| LlmReply::text(n.to_string())).collect();
    let stub = llm(vec![rule("llm[1]", LlmMatch::default(), replies)]).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let base_url = stub.base_url("primary");
        calls.spawn(async move {
            let response = chat(&base_url, &[], &body("m", "s", "u")).await;
            content(&response.json()).parse::<u32>().unwrap()
        });
    }
    let mut got = calls.join_all().await;
    got.sort_unstable();
    assert_eq!(got, (1..=16).collect::<Vec<_>>());
    assert_eq!(stub.journal().len(), 16);
}
