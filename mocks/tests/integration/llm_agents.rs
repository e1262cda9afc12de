use mocks::LlmReply;

use crate::support::{agent, body, chat, content, llm, rule};

#[tokio::test]
async fn agent_by_header_any_case() {
    let stub = llm(vec![
        rule(
            "llm[1]",
            agent("critic"),
            vec![LlmReply::text("critic reply")],
        ),
        rule(
            "llm[2]",
            agent("planner"),
            vec![LlmReply::text("planner reply")],
        ),
    ])
    .await;
    let request = body("gpt-4o", "You are a helpful assistant", "Plan it");
    let response = chat(
        &stub.base_url("primary"),
        &[("x-agent-role", "planner")],
        &request,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(content(&response.json()), "planner reply");

    let journal = stub.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].agent.as_deref(), Some("planner"));
    assert_eq!(journal[0].rule.as_deref(), Some("llm[2] reply 1/1"));
}

#[tokio::test]
async fn agent_by_system_prompt() {
    let stub = llm(vec![
        rule(
            "llm[1]",
            agent("planner"),
            vec![LlmReply::text("planner reply")],
        ),
        rule(
            "llm[2]",
            agent("critic"),
            vec![LlmReply::text("critic reply")],
        ),
    ])
    .await;
    let request = body(
        "gpt-4o",
        "You are the critic agent. Judge the asset.",
        "Rate it",
    );
    let response = chat(&stub.base_url("primary"), &[], &request).await;
    assert_eq!(content(&response.json()), "critic reply");
    assert_eq!(stub.journal()[0].agent.as_deref(), Some("critic"));
}

#[tokio::test]
async fn header_wins_over_system_prompt() {
    let stub = llm(vec![
        rule(
            "llm[1]",
            agent("planner"),
            vec![LlmReply::text("planner reply")],
        ),
        rule(
            "llm[2]",
            agent("critic"),
            vec![LlmReply::text("critic reply")],
        ),
    ])
    .await;
    let request = body("gpt-4o", "You are the planner agent.", "Rate it");
    let response = chat(
        &stub.base_url("primary"),
        &[("X-Agent-Role", "critic")],
        &request,
    )
    .await;
    assert_eq!(content(&response.json()), "critic reply");
}
