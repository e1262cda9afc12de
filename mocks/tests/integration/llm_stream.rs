use mocks::{LlmMatch, LlmReply, LlmReplyBody, ToolCall};
use serde_json::{Value, json};

use crate::support::{Response, chat, llm, rule};

/// Parses an SSE body: the JSON of each `data:` event, and whether `[DONE]` ended it.
fn events(response: &Response) -> (Vec<Value>, bool) {
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    let mut chunks = Vec::new();
    let mut done = false;
    for event in response
        .text
        .split("\n\n")
        .filter(|event| !event.is_empty())
    {
        assert!(!done, "nothing may follow [DONE]");
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not a data event: {event:?}"));
        if data == "[DONE]" {
            done = true;
        } else {
            chunks.push(serde_json::from_str(data).unwrap());
        }
    }
    assert!(response.text.ends_with("data: [DONE]\n\n"));
    (chunks, done)
}

fn stream_request(include_usage: bool) -> Value {
    json!({
        "model": "gpt-4o",
        "stream": true,
        "stream_options": {"include_usage": include_usage},
        "messages": [{"role": "user", "content": "Describe the sword"}],
    })
}

#[tokio::test]
async fn streamed_text_is_framed_with_usage_and_done() {
    let text = "A long steel blade with a fuller, a cross-guard and a leather grip.";
    let stub = llm(vec![rule(
        "llm[1]",
        LlmMatch::default(),
        vec![LlmReply::text(text)],
    )])
    .await;
    let response = chat(&stub.base_url("primary"), &[], &stream_request(true)).await;
    assert_eq!(response.status, 200);
    let (chunks, done) = events(&response);
    assert!(done);

    let first = &chunks[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let id = first["id"].as_str().unwrap();
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["id"] == id && chunk["model"] == "gpt-4o")
    );

    let streamed: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text);
    let content_chunks = chunks
        .iter()
        .filter(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .count();
    assert!(
        content_chunks > 1,
        "the content is split into several chunks"
    );

    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    // prompt: ceil(18/4) + 4 + 2; completion: ceil(67/4)
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 11, "completion_tokens": 17, "total_tokens": 28})
    );

    let journal = stub.journal();
    assert_eq!(
        journal[0].served,
        format!("200 sse ({} chunks)", chunks.len())
    );
    assert!(journal[0].summary.contains("stream=true"));
}

#[tokio::test]
async fn without_include_usage_no_usage_chunk() {
    let stub = llm(vec![rule(
        "llm[1]",
        LlmMatch::default(),
        vec![LlmReply::text("short")],
    )])
    .await;
    let response = chat(&stub.base_url("primary"), &[], &stream_request(false)).await;
    let (chunks, done) = events(&response);
    assert!(done);
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["choices"].as_array().unwrap().len() == 1)
    );
    assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
}

#[tokio::test]
async fn streamed_tool_calls_open_then_carry_arguments() {
    let arguments = json!({"code": "import bpy\nbpy.ops.mesh.primitive_cube_add()"});
    let reply = LlmReply::new(LlmReplyBody::ToolCalls(vec![ToolCall::new(
        "run_blender",
        arguments.clone(),
    )]));
    let stub = llm(vec![rule("llm[1]", LlmMatch::default(), vec![reply])]).await;
    let response = chat(&stub.base_url("primary"), &[], &stream_request(true)).await;
    let (chunks, done) = events(&response);
    assert!(done);
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(deltas[0]["index"], 0);
    assert_eq!(deltas[0]["type"], "function");
    assert_eq!(deltas[0]["function"]["name"], "run_blender");
    assert!(deltas[0]["id"].as_str().unwrap().starts_with("call_"));
    let streamed: String = deltas
        .iter()
        .filter_map(|delta| delta["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), arguments);
    assert!(deltas.len() > 2, "arguments arrive in fragments");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn errors_are_not_streamed() {
    let stub = llm(vec![rule(
        "llm[1]",
        LlmMatch::default(),
        vec![LlmReply::error(503, "overloaded")],
    )])
    .await;
    let response = chat(&stub.base_url("primary"), &[], &stream_request(true)).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.json()["error"]["type"], "server_error");
}
