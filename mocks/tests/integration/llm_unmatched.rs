use mocks::{LlmMatch, LlmReply, LlmStub, LlmStubConfig};

use crate::support::{agent, body, chat, llm, rule, send};

#[tokio::test]
async fn unmatched_request_is_a_404_naming_the_closest_rule() {
    let stub = llm(vec![
        rule(
            "llm[1]",
            LlmMatch {
                agent: Some("coder".into()),
                model: Some("gpt-4o".into()),
                ..Default::default()
            },
            vec![LlmReply::text("code")],
        ),
        rule("llm[2]", agent("critic"), vec![LlmReply::text("verdict")]),
    ])
    .await;
    let request = body("gpt-4o-mini", "You are the planner agent", "Plan a sword");
    let response = chat(&stub.base_url("primary"), &[], &request).await;
    assert_eq!(response.status, 404);
    let error = response.json();
    assert_eq!(error["error"]["code"], "harness_no_matching_rule");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let closest = r#"llm[2] (when.agent = "critic" but the request's agent is "planner")"#;
    assert_eq!(
        error["error"]["message"],
        format!("agent-harness: no stub rule matched this request (closest: {closest})")
    );

    let journal = stub.journal();
    let entry = &journal[0];
    assert_eq!(
        (entry.status, entry.served.as_str()),
        (404, "404 unmatched")
    );
    assert_eq!(entry.rule, None);
    assert_eq!(entry.agent.as_deref(), Some("planner"));
    let unmatched = entry.unmatched.as_ref().expect("recorded as unmatched");
    assert_eq!(unmatched.closest.as_deref(), Some(closest));
    assert_eq!(
        unmatched.request,
        "POST /v1/chat/completions\n\
         provider: primary\n\
         agent: planner (from the system prompt)\n\
         model: gpt-4o-mini, stream: false, tools: 0\n\
         messages (2):\n  \
         system: You are the planner agent\n  \
         user: Plan a sword"
    );
}

#[tokio::test]
async fn with_no_rules_nothing_is_closest() {
    let stub = LlmStub::start(LlmStubConfig::default()).await.unwrap();
    let response = chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    assert_eq!(response.status, 404);
    assert!(
        response.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no LLM rules are scripted")
    );
    let journal = stub.journal();
    assert_eq!(journal[0].unmatched.as_ref().unwrap().closest, None);
    assert_eq!(journal[0].agent, None);
}

#[tokio::test]
async fn other_paths_are_journaled_404s() {
    let stub = llm(vec![rule(
        "llm[1]",
        LlmMatch::default(),
        vec![LlmReply::text("ok")],
    )])
    .await;
    let client = reqwest::Client::new();
    let get = send(client.get(format!("{}/v1/chat/completions", stub.uri()))).await;
    let legacy = send(
        client
            .post(format!("{}/v1/completions", stub.uri()))
            .body("{}"),
    )
    .await;
    let root = send(client.get(stub.uri())).await;
    for response in [&get, &legacy, &root] {
        assert_eq!(response.status, 404);
        assert_eq!(response.json()["error"]["code"], "harness_unknown_endpoint");
    }
    let journal = stub.journal();
    let seen: Vec<(&str, &str, &str)> = journal
        .iter()
        .map(|e| (e.method.as_str(), e.path.as_str(), e.served.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/v1/chat/completions", "404 unmatched"),
            ("POST", "/v1/completions", "404 unmatched"),
            ("GET", "/", "404 unmatched"),
        ]
    );
    assert!(journal.iter().all(|e| e.unmatched.is_some()));
    assert!(journal.windows(2).all(|pair| pair[0].at <= pair[1].at));
}
