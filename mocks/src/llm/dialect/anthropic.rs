//! Anthropic Messages (`POST /v1/messages`): a `message` with `text` or `tool_use` content
//! blocks, `stop_reason` (`end_turn`, `tool_use`, `max_tokens`) and `usage`; streamed, the
//! events `message_start`, then per block `content_block_start`, `content_block_delta`…
//! (`text_delta` or `input_json_delta`), `content_block_stop`, then `message_delta`
//! (stop reason, output tokens) and `message_stop`. Errors are
//! `{"type": "error", "error": {"type", "message"}}` with Anthropic's types by status
//! (`rate_limit_error` for 429, `overloaded_error` for 529, …). The top-level `system`
//! is the system prompt agents are recognised by; `x-api-key` and `anthropic-version` are
//! accepted and not checked.

use serde_json::{Value, json};

use chaos::ApiError;

use super::{Dialect, named_event, object, pieces, request_of, text_of};
use crate::llm::openai::{Completion, SentToolCall};
use crate::llm::request::{ChatRequest, Message};
use crate::llm::route::Call;
use crate::llm::sse::EventStream;

pub(crate) struct Anthropic;

impl Dialect for Anthropic {
    fn parse(&self, body: &[u8], call: &Call) -> Result<ChatRequest, String> {
        let object = object(body)?;
        let Some(model) = object.get("model").and_then(Value::as_str) else {
            return Err("model: Field required".to_string());
        };
        let Some(Value::Array(input)) = object.get("messages") else {
            return Err("messages: Field required".to_string());
        };
        let mut messages = Vec::with_capacity(input.len() + 1);
        if let Some(system) = object.get("system") {
            messages.push(Message {
                role: "system".to_string(),
                content: text_of(system),
            });
        }
        messages.extend(input.iter().map(|message| {
            Message {
                role: message
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                content: message.get("content").map(text_of).unwrap_or_default(),
            }
        }));
        Ok(request_of(&object, model, call, messages))
    }

    fn whole(&self, completion: &Completion) -> Vec<u8> {
        let content: Vec<Value> = match &completion.content {
            Some(text) => vec![json!({"type": "text", "text": text})],
            None => completion.tool_calls.iter().map(|call| {
                json!({"type": "tool_use", "id": tool_use_id(call), "name": call.name, "input": input_of(call)})
            }).collect(),
        };
        json!({
            "id": message_id(completion),
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": content,
            "stop_reason": stop_reason(completion),
            "stop_sequence": null,
            "usage": {"input_tokens": completion.usage.prompt, "output_tokens": completion.usage.completion},
        })
        .to_string()
        .into_bytes()
    }

    fn stream(&self, completion: &Completion, _: &ChatRequest) -> EventStream {
        let mut events = vec![named_event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(completion), "type": "message", "role": "assistant",
                "model": completion.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": completion.usage.prompt, "output_tokens": 1},
            }}),
        )];
        let block = |events: &mut Vec<String>, index: usize, start: Value, deltas: Vec<Value>| {
            events.push(named_event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index, "content_block": start}),
            ));
            for delta in deltas {
                events.push(named_event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index, "delta": delta}),
                ));
            }
            events.push(named_event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        };
        match &completion.content {
            Some(text) => {
                let deltas = pieces(text)
                    .into_iter()
                    .map(|piece| json!({"type": "text_delta", "text": piece}))
                    .collect();
                block(&mut events, 0, json!({"type": "text", "text": ""}), deltas);
            }
            None => {
                for (index, call) in completion.tool_calls.iter().enumerate() {
                    let deltas = pieces(&call.arguments)
                        .into_iter()
                        .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
                        .collect();
                    let start = json!({"type": "tool_use", "id": tool_use_id(call), "name": call.name, "input": {}});
                    block(&mut events, index, start, deltas);
                }
            }
        }
        let last_token = events.len();
        events.push(named_event(
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(completion), "stop_sequence": null},
                    "usage": {"output_tokens": completion.usage.completion}}),
        ));
        events.push(named_event(
            "message_stop",
            &json!({"type": "message_stop"}),
        ));
        EventStream {
            chunks: events.len(),
            events,
            tokens: 1..last_token,
        }
    }

    fn error_body(&self, error: &ApiError) -> Vec<u8> {
        let kind = error
            .error_type
            .as_deref()
            .unwrap_or_else(|| error_type(error.status));
        json!({"type": "error", "error": {"type": kind, "message": error.message}})
            .to_string()
            .into_bytes()
    }

    fn malformed_body(&self) -> &'static str {
        r#"{"id": "msg_malformed", "type": "message", "content": ["#
    }

    fn request_id_headers(&self) -> &'static [&'static str] {
        &["request-id", "x-request-id"]
    }
}

/// `error.type` as Anthropic sends it for a status.
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn message_id(completion: &Completion) -> String {
    format!("msg_harness{:06}", completion.number)
}

fn tool_use_id(call: &SentToolCall) -> String {
    match call.id.strip_prefix("call_") {
        Some(rest) if call.generated => format!("toolu_{rest}"),
        _ => call.id.clone(),
    }
}

/// A tool call's arguments as `input`: the JSON object they are; arguments that are not
/// JSON go as a string (a deviation: Anthropic always sends an object).
fn input_of(call: &SentToolCall) -> Value {
    serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!(call.arguments))
}

fn stop_reason(completion: &Completion) -> &str {
    match completion.finish_reason.as_str() {
        "stop" => "end_turn",
        "tool_calls" => "tool_use",
        "length" => "max_tokens",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::dialect::Api;
    use crate::llm::openai::Said;
    use crate::llm::reply::ToolCall;

    fn parse(body: &str) -> Result<ChatRequest, String> {
        Anthropic.parse(
            body.as_bytes(),
            &Call {
                api: Api::Anthropic,
                model: None,
                stream: false,
            },
        )
    }

    #[test]
    fn the_top_level_system_is_the_system_prompt() {
        let request = parse(
            r#"{"model": "claude-sonnet-4-5", "max_tokens": 100, "system": [{"type": "text", "text": "You are the critic agent"}],
                "messages": [{"role": "user", "content": "rate"}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "42"}]}]}"#,
        )
        .unwrap();
        assert_eq!(request.system_prompt(), Some("You are the critic agent"));
        assert_eq!(request.messages.len(), 3);
        assert_eq!(request.messages[2].content, "42");
        assert!(parse(r#"{"model": "m"}"#).unwrap_err().contains("messages"));
    }

    #[test]
    fn errors_have_anthropic_types_by_status() {
        let body: Value =
            serde_json::from_slice(&Anthropic.error_body(&ApiError::new(529, "Overloaded")))
                .unwrap();
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        );
        assert_eq!(error_type(429), "rate_limit_error");
        assert_eq!(error_type(400), "invalid_request_error");
    }

    #[test]
    fn tool_use_blocks_and_stream_events() {
        let request = parse(r#"{"model": "m", "messages": []}"#).unwrap();
        let calls = [ToolCall::new("search", json!({"q": "a long query text"}))];
        let completion = Completion::new(2, &request, Said::ToolCalls(&calls), None);
        let whole: Value = serde_json::from_slice(&Anthropic.whole(&completion)).unwrap();
        assert_eq!(whole["stop_reason"], "tool_use");
        assert_eq!(
            whole["content"][0],
            json!({"type": "tool_use", "id": "toolu_000002_0", "name": "search", "input": {"q": "a long query text"}})
        );
        let stream = Anthropic.stream(&completion, &request);
        let names: Vec<&str> = stream
            .events
            .iter()
            .map(|e| e.lines().next().unwrap().trim_start_matches("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let json: String = stream.events[2..4]
            .iter()
            .map(|e| {
                serde_json::from_str::<Value>(e.split_once("data: ").unwrap().1.trim()).unwrap()
                        ["delta"]["partial_json"]
                        .as_str()
                        .unwrap()
                        .to_string()
            })
            .collect();
        assert_eq!(json, completion.tool_calls[0].arguments);
    }
}
