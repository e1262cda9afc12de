//! Google Gemini (`POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`): candidates whose `content.parts` are `text` or
//! `functionCall` parts, `finishReason` (`STOP`, `MAX_TOKENS`) and `usageMetadata`;
//! streamed, `data: <GenerateContentResponse>` events, the text in pieces, the last with
//! the finish reason and usage. The model comes from the path. `systemInstruction` is the
//! system prompt agents are recognised by. Errors are `{"error": {"code", "message",
//! "status"}}` with the gRPC status name (`RESOURCE_EXHAUSTED` for 429, `UNAVAILABLE` for
//! 503, …).

use serde_json::{Value, json};

use chaos::ApiError;

use super::{Dialect, object, pieces, text_of};
use crate::llm::openai::Completion;
use crate::llm::request::{ChatRequest, Message};
use crate::llm::route::Call;
use crate::llm::sse::EventStream;

pub(crate) struct Gemini;

impl Dialect for Gemini {
    fn parse(&self, body: &[u8], call: &Call) -> Result<ChatRequest, String> {
        let object = object(body)?;
        let Some(Value::Array(contents)) = object.get("contents") else {
            return Err("* GenerateContentRequest.contents: contents is not specified".to_string());
        };
        let mut messages = Vec::with_capacity(contents.len() + 1);
        if let Some(system) = object
            .get("systemInstruction")
            .or_else(|| object.get("system_instruction"))
        {
            messages.push(Message {
                role: "system".to_string(),
                content: parts_text(system),
            });
        }
        messages.extend(contents.iter().map(|content| {
            Message {
                role: content
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or("user")
                    .to_string(),
                content: parts_text(content),
            }
        }));
        let tools = object
            .get("tools")
            .and_then(Value::as_array)
            .map_or(0, |tools| {
                tools
                    .iter()
                    .map(|tool| {
                        tool.get("functionDeclarations")
                            .or_else(|| tool.get("function_declarations"))
                            .and_then(Value::as_array)
                            .map_or(1, Vec::len)
                    })
                    .sum()
            });
        Ok(ChatRequest {
            model: call.model.clone().unwrap_or_default(),
            stream: call.stream,
            include_usage: true,
            tools,
            messages,
        })
    }

    fn whole(&self, completion: &Completion) -> Vec<u8> {
        let parts: Vec<Value> = match &completion.content {
            Some(text) => vec![json!({"text": text})],
            None => completion
                .tool_calls
                .iter()
                .map(|call| json!({"functionCall": {"name": call.name, "args": args_of(&call.arguments)}}))
                .collect(),
        };
        chunk(completion, parts, true).to_string().into_bytes()
    }

    fn stream(&self, completion: &Completion, _: &ChatRequest) -> EventStream {
        let mut events = Vec::new();
        match &completion.content {
            Some(text) => {
                let pieces = pieces(text);
                let last = pieces.len().saturating_sub(1);
                for (index, piece) in pieces.iter().enumerate() {
                    events.push(frame(&chunk(completion, vec![json!({"text": piece})], index == last)));
                }
                if pieces.is_empty() {
                    events.push(frame(&chunk(completion, vec![json!({"text": ""})], true)));
                }
            }
            // function calls come whole, in one chunk, as Gemini sends them
            None => events.push(frame(&chunk(
                completion,
                completion
                    .tool_calls
                    .iter()
                    .map(|call| json!({"functionCall": {"name": call.name, "args": args_of(&call.arguments)}}))
                    .collect(),
                true,
            ))),
        }
        EventStream {
            chunks: events.len(),
            tokens: 0..events.len(),
            events,
        }
    }

    fn error_body(&self, error: &ApiError) -> Vec<u8> {
        let status = error
            .error_type
            .as_deref()
            .unwrap_or_else(|| grpc_status(error.status));
        json!({"error": {"code": error.status, "message": error.message, "status": status}})
            .to_string()
            .into_bytes()
    }

    fn malformed_body(&self) -> &'static str {
        r#"{"candidates": [{"content": {"parts": ["#
    }
}

fn frame(chunk: &Value) -> String {
    format!("data: {chunk}\r\n\r\n")
}

/// One `GenerateContentResponse`; the last carries the finish reason and the usage.
fn chunk(completion: &Completion, parts: Vec<Value>, last: bool) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    let mut out = json!({"candidates": [], "modelVersion": completion.model, "responseId": format!("harness{:06}", completion.number)});
    let usage = &completion.usage;
    if last {
        candidate["finishReason"] = json!(finish_reason(completion));
        out["usageMetadata"] = json!({
            "promptTokenCount": usage.prompt,
            "candidatesTokenCount": usage.completion,
            "totalTokenCount": usage.prompt + usage.completion,
        });
    }
    out["candidates"] = json!([candidate]);
    out
}

/// The text parts of a `Content` (`{"parts": [{"text"}]}`), or of a string.
fn parts_text(content: &Value) -> String {
    match content.get("parts") {
        Some(parts) => text_of(parts),
        None => text_of(content),
    }
}

fn args_of(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| json!({"arguments": arguments}))
}

fn finish_reason(completion: &Completion) -> String {
    match completion.finish_reason.as_str() {
        "stop" | "tool_calls" => "STOP".to_string(),
        "length" => "MAX_TOKENS".to_string(),
        other => other.to_uppercase(),
    }
}

/// The gRPC status Google APIs name an HTTP status by.
fn grpc_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::dialect::Api;
    use crate::llm::openai::Said;

    #[test]
    fn system_instruction_contents_and_the_model_from_the_path() {
        let call = Call {
            api: Api::Gemini,
            model: Some("gemini-2.0-flash".into()),
            stream: true,
        };
        let request = Gemini
            .parse(
                br#"{"systemInstruction": {"parts": [{"text": "You are the planner agent"}]},
                     "contents": [{"role": "user", "parts": [{"text": "plan"}]}],
                     "tools": [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}]}"#,
                &call,
            )
            .unwrap();
        assert_eq!(
            (request.model.as_str(), request.stream, request.tools),
            ("gemini-2.0-flash", true, 2)
        );
        assert_eq!(request.system_prompt(), Some("You are the planner agent"));
        assert!(Gemini.parse(b"{}", &call).is_err());
    }

    #[test]
    fn the_last_chunk_has_finish_reason_and_usage() {
        let call = Call {
            api: Api::Gemini,
            model: Some("g".into()),
            stream: true,
        };
        let request = Gemini.parse(br#"{"contents": []}"#, &call).unwrap();
        let completion = Completion::new(
            1,
            &request,
            Said::Content("a text of more than sixteen chars"),
            None,
        );
        let stream = Gemini.stream(&completion, &request);
        assert_eq!(stream.events.len(), 3);
        let last: Value =
            serde_json::from_str(stream.events[2].trim().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert!(last["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);
        let error: Value =
            serde_json::from_slice(&Gemini.error_body(&ApiError::new(429, "quota"))).unwrap();
        assert_eq!(
            error,
            json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
        );
    }
}
