//! Builders of OpenAI response bodies: `chat.completion` objects, the model list, and
//! OpenAI's error body (which the executor stubs use too).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Value, json};

use chaos::ApiError;

use super::reply::ToolCall;
use super::request::ChatRequest;
use super::tokens::Usage;

/// One completion, before it is rendered whole ([`Completion::to_json`]) or as a stream of
/// chunks ([`super::sse`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Completion {
    /// The stub's count of completions, this one included: other dialects' ids derive
    /// from it.
    pub(crate) number: u64,
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) model: String,
    /// `None` for tool calls.
    pub(crate) content: Option<String>,
    pub(crate) tool_calls: Vec<SentToolCall>,
    pub(crate) finish_reason: String,
    pub(crate) usage: Usage,
}

/// A tool call as sent: id assigned, arguments serialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentToolCall {
    pub(crate) id: String,
    /// The id was generated (`call_…`), not scripted: other dialects use their own prefix.
    pub(crate) generated: bool,
    pub(crate) name: String,
    pub(crate) arguments: String,
}

/// What the assistant says in a completion.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Said<'a> {
    Content(&'a str),
    ToolCalls(&'a [ToolCall]),
}

impl Completion {
    /// The `number`th completion of a stub (ids are deterministic per stub), answering
    /// `request`.
    pub(crate) fn new(
        number: u64,
        request: &ChatRequest,
        said: Said<'_>,
        finish_reason: Option<&str>,
    ) -> Self {
        let (content, tool_calls) = match said {
            Said::Content(content) => (Some(content.to_string()), Vec::new()),
            Said::ToolCalls(calls) => (
                None,
                calls
                    .iter()
                    .enumerate()
                    .map(|(index, call)| SentToolCall {
                        generated: call.id.is_none(),
                        id: call
                            .id
                            .clone()
                            .unwrap_or_else(|| format!("call_{number:06}_{index}")),
                        name: call.name.clone(),
                        arguments: call.arguments_string(),
                    })
                    .collect(),
            ),
        };
        let completion_texts: Vec<&str> = match &content {
            Some(content) => vec![content.as_str()],
            None => tool_calls
                .iter()
                .map(|call| call.arguments.as_str())
                .collect(),
        };
        let usage = Usage::estimate(request.contents(), completion_texts);
        let default_finish = if tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        };
        Self {
            number,
            id: format!("chatcmpl-harness{number:06}"),
            created: unix_now(),
            model: request.model.clone(),
            content,
            tool_calls,
            finish_reason: finish_reason.unwrap_or(default_finish).to_string(),
            usage,
        }
    }

    /// The `chat.completion` object, serialized: the bytes of
    /// `to_json().to_string()` (keys in the same, sorted, order), written directly rather
    /// than through a `Value` tree, as every whole reply is.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let completion = CompletionOut {
            choices: [ChoiceOut {
                finish_reason: &self.finish_reason,
                index: 0,
                logprobs: None,
                message: MessageOut {
                    content: self.content.as_deref(),
                    refusal: None,
                    role: "assistant",
                    tool_calls: self
                        .tool_calls
                        .iter()
                        .map(|call| ToolCallOut {
                            function: FunctionOut {
                                arguments: &call.arguments,
                                name: &call.name,
                            },
                            id: &call.id,
                            kind: "function",
                        })
                        .collect(),
                },
            }],
            created: self.created,
            id: &self.id,
            model: &self.model,
            object: "chat.completion",
            system_fingerprint: None,
            usage: UsageOut {
                completion_tokens: self.usage.completion,
                prompt_tokens: self.usage.prompt,
                total_tokens: self.usage.prompt + self.usage.completion,
            },
        };
        let mut bytes = Vec::with_capacity(512);
        // writing plain structs into a Vec cannot fail
        let _ = serde_json::to_writer(&mut bytes, &completion);
        bytes
    }

    /// The `chat.completion` object.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Value {
        let mut message = json!({
            "role": "assistant",
            "content": self.content,
            "refusal": null,
        });
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    })
                })
                .collect();
        }
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": self.finish_reason,
            }],
            "usage": self.usage.to_json(),
        })
    }
}

// The wire shape of a completion, fields in sorted order as a `serde_json::Value` writes
// them (so both renderings give the same bytes); `Option<()>` fields are always `null`.

#[derive(Serialize)]
struct CompletionOut<'a> {
    choices: [ChoiceOut<'a>; 1],
    created: u64,
    id: &'a str,
    model: &'a str,
    object: &'static str,
    system_fingerprint: Option<()>,
    usage: UsageOut,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    finish_reason: &'a str,
    index: u32,
    logprobs: Option<()>,
    message: MessageOut<'a>,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    content: Option<&'a str>,
    refusal: Option<()>,
    role: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    function: FunctionOut<'a>,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    arguments: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct UsageOut {
    completion_tokens: u64,
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The model list: `{"object": "list", "data": [{"id", "object": "model", "created": 0,
/// "owned_by": "agent-harness"}]}`.
pub(crate) fn models_json<'a>(models: impl IntoIterator<Item = &'a str>) -> Value {
    let data: Vec<Value> = models.into_iter().map(model_json).collect();
    json!({"object": "list", "data": data})
}

/// One model: `{"id", "object": "model", "created": 0, "owned_by": "agent-harness"}`.
pub(crate) fn model_json(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "agent-harness"})
}

/// The body a malformed-JSON fault sends for OpenAI: a completion cut off mid-object.
pub(crate) const MALFORMED_JSON_BODY: &str =
    r#"{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": ["#;

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`, `type` and
/// `code` by status as OpenAI sends them unless the error names its own.
pub(crate) fn error_json(error: &ApiError) -> Value {
    json!({
        "error": {
            "message": error.message,
            "type": error.error_type.as_deref().unwrap_or_else(|| default_error_type(error.status)),
            "param": null,
            "code": error.code.as_deref().or_else(|| default_error_code(error.status)),
        }
    })
}

/// `error.type` as OpenAI sends it for a status: `requests` for 429, `server_error` for 5xx,
/// `invalid_request_error` otherwise.
fn default_error_type(status: u16) -> &'static str {
    match status {
        429 => "requests",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

/// `error.code` as OpenAI sends it for a status: `rate_limit_exceeded` for 429,
/// `invalid_api_key` for 401, none otherwise.
fn default_error_code(status: u16) -> Option<&'static str> {
    match status {
        401 => Some("invalid_api_key"),
        429 => Some("rate_limit_exceeded"),
        _ => None,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::request::Message;

    fn request() -> ChatRequest {
        ChatRequest {
            model: "gpt-4o-mini".into(),
            stream: false,
            include_usage: false,
            tools: 1,
            messages: vec![Message {
                role: "user".into(),
                content: "Plan a sword".into(),
            }],
        }
    }

    #[test]
    fn content_completion_has_the_openai_shape() {
        let completion = Completion::new(3, &request(), Said::Content("{\"ok\":true}"), None);
        let json = completion.to_json();
        assert_eq!(json["id"], "chatcmpl-harness000003");
        assert_eq!(json["object"], "chat.completion");
        assert_eq!(json["model"], "gpt-4o-mini");
        assert_eq!(json["choices"][0]["message"]["role"], "assistant");
        assert_eq!(json["choices"][0]["message"]["content"], "{\"ok\":true}");
        assert!(json["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(json["choices"][0]["finish_reason"], "stop");
        // prompt: (3 + 4) + 2; completion: ceil(11 / 4)
        assert_eq!(
            json["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12})
        );
    }

    #[test]
    fn tool_calls_have_null_content_ids_and_serialized_arguments() {
        let calls = [
            ToolCall::new("search", json!({"q": "sword"})),
            ToolCall {
                id: Some("call_fixed".into()),
                ..ToolCall::new("raw", json!("{not json"))
            },
        ];
        let json = Completion::new(1, &request(), Said::ToolCalls(&calls), None).to_json();
        let message = &json["choices"][0]["message"];
        assert_eq!(message["content"], Value::Null);
        assert_eq!(
            message["tool_calls"],
            json!([
                {"id": "call_000001_0", "type": "function", "function": {"name": "search", "arguments": "{\"q\":\"sword\"}"}},
                {"id": "call_fixed", "type": "function", "function": {"name": "raw", "arguments": "{not json"}},
            ])
        );
        assert_eq!(json["choices"][0]["finish_reason"], "tool_calls");
        // ceil(13 / 4) + ceil(9 / 4)
        assert_eq!(json["usage"]["completion_tokens"], 7);
    }

    #[test]
    fn written_directly_the_bytes_are_those_of_the_json_value() {
        let calls = [
            ToolCall::new("search", json!({"q": "sword \"lore\"\n"})),
            ToolCall::new("noop", json!({})),
        ];
        let tricky = Completion::new(
            7,
            &ChatRequest {
                model: "mödel \"x\"".into(),
                ..request()
            },
            Said::Content("line\n\t\"quoted\" é \u{1}"),
            Some("length"),
        );
        for completion in [
            Completion::new(3, &request(), Said::Content("{\"ok\":true}"), None),
            Completion::new(1, &request(), Said::ToolCalls(&calls), None),
            tricky,
        ] {
            let direct = String::from_utf8(completion.to_bytes()).unwrap();
            assert_eq!(direct, completion.to_json().to_string());
        }
    }

    #[test]
    fn errors_default_type_and_code_by_status_as_openai_does() {
        assert_eq!(
            error_json(&ApiError::new(429, "slow down")),
            json!({"error": {"message": "slow down", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
        );
        assert_eq!(
            error_json(&ApiError::new(503, "x"))["error"]["type"],
            "server_error"
        );
        assert_eq!(
            error_json(&ApiError::new(503, "x"))["error"]["code"],
            Value::Null
        );
        assert_eq!(
            error_json(&ApiError::new(401, "x"))["error"]["code"],
            "invalid_api_key"
        );
        let named = ApiError {
            error_type: Some("tokens".into()),
            code: Some("quota".into()),
            ..ApiError::new(429, "m")
        };
        assert_eq!(error_json(&named)["error"]["type"], "tokens");
        assert_eq!(error_json(&named)["error"]["code"], "quota");
        assert!(serde_json::from_str::<Value>(MALFORMED_JSON_BODY).is_err());
    }

    #[test]
    fn finish_reason_override_and_models() {
        let json = Completion::new(1, &request(), Said::Content("x"), Some("length")).to_json();
        assert_eq!(json["choices"][0]["finish_reason"], "length");
        assert_eq!(
            models_json(["a"]),
            json!({"object": "list", "data": [{"id": "a", "object": "model", "created": 0, "owned_by": "agent-harness"}]})
        );
    }
}
