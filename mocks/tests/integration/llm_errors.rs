use std::time::Duration;

use mocks::{LlmMatch, LlmReply, LlmReplyBody};
use serde_json::json;

use crate::support::{body, chat, llm, rule, send};

#[tokio::test]
async fn error_reply_with_retry_after_rounded_up() {
    let reply = LlmReply::new(LlmReplyBody::Error {
        status: 429,
        message: "Rate limit reached for gpt-4o".into(),
        error_type: None,
        code: None,
        retry_after: Some(Duration::from_millis(1500)),
    });
    let stub = llm(vec![rule(
        "llm[1]",
        LlmMatch::default(),
        vec![reply, LlmReply::text("ok")],
    )])
    .await;
    let response = chat(&stub.base_url("primary"), &[], &body("gpt-4o", "s", "u")).await;
    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after"), Some("2"));
    assert_eq!(
        response.json(),
        json!({"error": {"message": "Rate limit reached for gpt-4o", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
    );
    let retried = chat(&stub.base_url("primary"), &[], &body("gpt-4o", "s", "u")).await;
    assert_eq!(retried.status, 200);

    let journal = stub.journal();
    assert_eq!(journal[0].status, 429);
    assert_eq!(journal[0].served, "429 error");
    assert_eq!(journal[0].rule.as_deref(), Some("llm[1] reply 1/2"));
    assert_eq!(journal[1].rule.as_deref(), Some("llm[1] reply 2/2"));
}

#[tokio::test]
async fn error_reply_with_explicit_type_and_code() {
    let reply = LlmReply::new(LlmReplyBody::Error {
        status: 400,
        message: "context too long".into(),
        error_type: Some("invalid_request_error".into()),
        code: Some("context_length_exceeded".into()),
        retry_after: None,
    });
    let stub = llm(vec![rule("llm[1]", LlmMatch::default(), vec![reply])]).await;
    let response = chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.header("retry-after"), None);
    assert_eq!(response.json()["error"]["code"], "context_length_exceeded");
}

#[tokio::test]
async fn invalid_json_is_a_journaled_400() {
    let stub = llm(vec![rule(
        "llm[1]",
        LlmMatch::default(),
        vec![LlmReply::text("ok")],
    )])
    .await;
    let request = reqwest::Client::new()
        .post(format!("{}/chat/completions", stub.base_url("primary")))
        .header("content-type", "application/json")
        .body("{\"model\": \"gpt-4o\", \"messages\": [");
    let response = send(request).await;
    assert_eq!(response.status, 400);
    let error = response.json();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let journal = stub.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(
        (journal[0].status, journal[0].served.as_str()),
        (400, "400 error")
    );
    assert!(journal[0].summary.starts_with("invalid request: "));
    assert_eq!(journal[0].rule, None);
}

#[tokio::test]
async fn wrong_types_get_a_400_not_a_crash() {
    let stub = llm(vec![rule(
        "llm[1]",
        LlmMatch::default(),
        vec![LlmReply::text("ok")],
    )])
    .await;
    for (request, message) in [
        (
            json!({"messages": []}),
            "you must provide a model parameter",
        ),
        (
            json!({"model": 4, "messages": []}),
            "you must provide a model parameter",
        ),
        (
            json!({"model": "m", "messages": "hi"}),
            "'messages' is a required property",
        ),
    ] {
        let response = chat(&stub.base_url("primary"), &[], &request).await;
        assert_eq!(response.status, 400);
        assert_eq!(response.json()["error"]["message"], message);
    }
    // odd but valid: served
    let odd = json!({"model": "m", "stream": "yes", "messages": [1, {"role": null, "content": {"x": 1}}]});
    assert_eq!(chat(&stub.base_url("primary"), &[], &odd).await.status, 200);
}
