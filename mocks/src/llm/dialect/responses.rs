//! OpenAI Responses (`POST /v1/responses`): a `response` object whose `output` holds a
//! `message` item (`output_text`) or `function_call` items, and, streamed, the typed
//! events in OpenAI's order, each with its `sequence_number`:
//!
//! `response.created`, `response.in_progress`, then per output item
//! `response.output_item.added`, (for a message) `response.content_part.added`,
//! `response.output_text.delta`…, `response.output_text.done`,
//! `response.content_part.done`, (for a function call)
//! `response.function_call_arguments.delta`…, `response.function_call_arguments.done`,
//! then `response.output_item.done`; last `response.completed` (or
//! `response.incomplete` when the finish reason is `length`). No `[DONE]`.

use serde_json::{Map, Value, json};

use chaos::ApiError;

use super::{Dialect, named_event, object, pieces, request_of, text_of};
use crate::llm::openai::Completion;
use crate::llm::request::{ChatRequest, Message};
use crate::llm::route::Call;
use crate::llm::sse::EventStream;

pub(crate) struct Responses;

impl Dialect for Responses {
    fn parse(&self, body: &[u8], call: &Call) -> Result<ChatRequest, String> {
        let object = object(body)?;
        let Some(model) = object.get("model").and_then(Value::as_str) else {
            return Err("Missing required parameter: 'model'.".to_string());
        };
        let mut messages = Vec::new();
        if let Some(instructions) = object.get("instructions").and_then(Value::as_str) {
            messages.push(message("system", instructions.to_string()));
        }
        match object.get("input") {
            Some(Value::String(text)) => messages.push(message("user", text.clone())),
            Some(Value::Array(items)) => messages.extend(items.iter().map(item_message)),
            _ => return Err("Missing required parameter: 'input'.".to_string()),
        }
        Ok(request_of(&object, model, call, messages))
    }

    fn whole(&self, completion: &Completion) -> Vec<u8> {
        let output: Vec<Value> = items(completion)
            .into_iter()
            .map(|item| item.done())
            .collect();
        response(completion, status(completion), output)
            .to_string()
            .into_bytes()
    }

    fn stream(&self, completion: &Completion, _: &ChatRequest) -> EventStream {
        let mut events = Events::default();
        let pending = response(completion, "in_progress", Vec::new());
        events.push("response.created", json!({"response": pending}));
        events.push("response.in_progress", json!({"response": pending}));
        let first_token = events.list.len();
        let mut output = Vec::new();
        for (index, item) in items(completion).into_iter().enumerate() {
            let id = item.id();
            events.push(
                "response.output_item.added",
                json!({"output_index": index, "item": item.started()}),
            );
            match &item {
                Item::Message { text, .. } => {
                    let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
                    let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                    events.push("response.content_part.added", with(&at, "part", part("")));
                    for piece in pieces(text) {
                        let mut delta = with(&at, "delta", json!(piece));
                        delta["logprobs"] = json!([]);
                        events.push("response.output_text.delta", delta);
                    }
                    let mut done = with(&at, "text", json!(text));
                    done["logprobs"] = json!([]);
                    events.push("response.output_text.done", done);
                    events.push("response.content_part.done", with(&at, "part", part(text)));
                }
                Item::FunctionCall { arguments, .. } => {
                    let at = json!({"item_id": id, "output_index": index});
                    for piece in pieces(arguments) {
                        events.push(
                            "response.function_call_arguments.delta",
                            with(&at, "delta", json!(piece)),
                        );
                    }
                    events.push(
                        "response.function_call_arguments.done",
                        with(&at, "arguments", json!(arguments)),
                    );
                }
            }
            let done = item.done();
            events.push(
                "response.output_item.done",
                json!({"output_index": index, "item": done}),
            );
            output.push(done);
        }
        let last_token = events.list.len();
        let status = status(completion);
        let end = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        events.push(
            end,
            json!({"response": response(completion, status, output)}),
        );
        let chunks = events.list.len();
        EventStream {
            events: events.list,
            chunks,
            tokens: first_token..last_token,
        }
    }

    fn error_body(&self, error: &ApiError) -> Vec<u8> {
        crate::llm::openai::error_json(error)
            .to_string()
            .into_bytes()
    }

    fn malformed_body(&self) -> &'static str {
        r#"{"id": "resp_malformed", "object": "response", "output": ["#
    }
}

/// Events numbered by `sequence_number` from 0.
#[derive(Default)]
struct Events {
    list: Vec<String>,
}

impl Events {
    fn push(&mut self, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.list.len());
        self.list.push(named_event(kind, &data));
    }
}

fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut out = base.clone();
    out[key] = value;
    out
}

fn message(role: &str, content: String) -> Message {
    Message {
        role: role.to_string(),
        content,
    }
}

/// An input item as a message: a message's role and text; a function call's arguments
/// (as the assistant's); a function call's output (as a `tool` message).
fn item_message(item: &Value) -> Message {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    match kind {
        "function_call_output" => {
            message("tool", item.get("output").map(text_of).unwrap_or_default())
        }
        "function_call" => message(
            "assistant",
            item.get("arguments")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        _ => message(
            item.get("role").and_then(Value::as_str).unwrap_or("?"),
            item.get("content").map(text_of).unwrap_or_default(),
        ),
    }
}

enum Item {
    Message {
        id: String,
        text: String,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Item::Message { id, .. } | Item::FunctionCall { id, .. } => id,
        }
    }

    fn started(&self) -> Value {
        match self {
            Item::Message { id, .. } => {
                json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []})
            }
            Item::FunctionCall {
                id, call_id, name, ..
            } => {
                json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": "", "status": "in_progress"})
            }
        }
    }

    fn done(&self) -> Value {
        match self {
            Item::Message { id, text } => json!({
                "type": "message", "id": id, "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }),
            Item::FunctionCall {
                id,
                call_id,
                name,
                arguments,
            } => {
                json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": "completed"})
            }
        }
    }
}

fn items(completion: &Completion) -> Vec<Item> {
    let number = completion.number;
    match &completion.content {
        Some(text) => vec![Item::Message {
            id: format!("msg_harness{number:06}"),
            text: text.clone(),
        }],
        None => completion
            .tool_calls
            .iter()
            .enumerate()
            .map(|(index, call)| Item::FunctionCall {
                id: format!("fc_harness{number:06}_{index}"),
                call_id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
            })
            .collect(),
    }
}

fn status(completion: &Completion) -> &'static str {
    if completion.finish_reason == "length" {
        "incomplete"
    } else {
        "completed"
    }
}

fn response(completion: &Completion, status: &str, output: Vec<Value>) -> Value {
    let usage = &completion.usage;
    let done = status != "in_progress";
    let mut response = Map::new();
    let fields = [
        ("id", json!(format!("resp_harness{:06}", completion.number))),
        ("object", json!("response")),
        ("created_at", json!(completion.created)),
        ("status", json!(status)),
        ("error", Value::Null),
        (
            "incomplete_details",
            if status == "incomplete" {
                json!({"reason": "max_output_tokens"})
            } else {
                Value::Null
            },
        ),
        ("instructions", Value::Null),
        ("max_output_tokens", Value::Null),
        ("model", json!(completion.model)),
        ("output", json!(output)),
        ("parallel_tool_calls", json!(true)),
        ("previous_response_id", Value::Null),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("store", json!(false)),
        ("temperature", json!(1.0)),
        ("text", json!({"format": {"type": "text"}})),
        ("tool_choice", json!("auto")),
        ("tools", json!([])),
        ("top_p", json!(1.0)),
        ("truncation", json!("disabled")),
        (
            "usage",
            if done {
                json!({
                    "input_tokens": usage.prompt,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": usage.completion,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": usage.prompt + usage.completion,
                })
            } else {
                Value::Null
            },
        ),
        ("user", Value::Null),
        ("metadata", json!({})),
    ];
    for (key, value) in fields {
        response.insert(key.to_string(), value);
    }
    Value::Object(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::dialect::Api;
    use crate::llm::openai::Said;
    use crate::llm::reply::ToolCall;

    fn call() -> Call {
        Call {
            api: Api::Responses,
            model: None,
            stream: false,
        }
    }

    #[test]
    fn input_instructions_and_items_become_messages() {
        let request = Responses
            .parse(
                br#"{"model": "gpt-4o", "instructions": "You are the critic agent", "stream": true, "tools": [{}],
                     "input": [{"role": "user", "content": [{"type": "input_text", "text": "rate it"}]},
                               {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                               {"type": "function_call_output", "call_id": "c", "output": "42"}]}"#,
                &call(),
            )
            .unwrap();
        assert!(request.stream);
        assert_eq!(request.tools, 1);
        assert_eq!(request.system_prompt(), Some("You are the critic agent"));
        let roles: Vec<(&str, &str)> = request
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        assert_eq!(
            roles,
            [
                ("system", "You are the critic agent"),
                ("user", "rate it"),
                ("assistant", "{}"),
                ("tool", "42")
            ]
        );
        assert!(
            Responses
                .parse(br#"{"model": "m"}"#, &call())
                .unwrap_err()
                .contains("input")
        );
        assert!(
            Responses
                .parse(br#"{"input": "x"}"#, &call())
                .unwrap_err()
                .contains("model")
        );
    }

    #[test]
    fn streamed_events_are_numbered_in_order_and_end_completed() {
        let request = Responses
            .parse(br#"{"model": "m", "input": "hi"}"#, &call())
            .unwrap();
        let completion = Completion::new(
            3,
            &request,
            Said::Content("The blade is thirty inches long."),
            None,
        );
        let stream = Responses.stream(&completion, &request);
        let kinds: Vec<(String, u64)> = stream
            .events
            .iter()
            .map(|event| {
                let data: Value =
                    serde_json::from_str(event.split_once("data: ").unwrap().1.trim()).unwrap();
                assert!(event.starts_with(&format!("event: {}\n", data["type"].as_str().unwrap())));
                (
                    data["type"].as_str().unwrap().to_string(),
                    data["sequence_number"].as_u64().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = kinds.iter().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert!(
            kinds
                .iter()
                .enumerate()
                .all(|(index, (_, seq))| *seq == index as u64)
        );
        assert_eq!(stream.tokens, 2..9);
    }

    #[test]
    fn tool_calls_are_function_call_items() {
        let request = Responses
            .parse(br#"{"model": "m", "input": "hi"}"#, &call())
            .unwrap();
        let calls = [ToolCall::new("search", json!({"q": "x"}))];
        let completion = Completion::new(1, &request, Said::ToolCalls(&calls), None);
        let whole: Value = serde_json::from_slice(&Responses.whole(&completion)).unwrap();
        assert_eq!(whole["status"], "completed");
        assert_eq!(
            whole["output"][0],
            json!({"type": "function_call", "id": "fc_harness000001_0", "call_id": "call_000001_0", "name": "search", "arguments": "{\"q\":\"x\"}", "status": "completed"})
        );
        assert_eq!(
            whole["usage"]["total_tokens"],
            whole["usage"]["input_tokens"].as_u64().unwrap()
                + whole["usage"]["output_tokens"].as_u64().unwrap()
        );
    }
}
