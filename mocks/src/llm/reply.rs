//! Scripted LLM replies.

use std::time::Duration;

use serde_json::Value;

/// One tool call in a scripted reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// `tool_calls[].id`; by default `call_<completion>_<index>`, deterministic per stub.
    pub id: Option<String>,
    /// `function.name`.
    pub name: String,
    /// `function.arguments`, sent as its JSON serialization. A JSON string is sent as is
    /// (not serialized again), so a scenario can script arguments that are not valid JSON.
    pub arguments: Value,
}

/// What a scripted reply says.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmReplyBody {
    /// The assistant's content is this JSON, serialized (compact).
    Json(Value),
    /// The assistant's content is this text.
    Text(String),
    /// The assistant calls tools; its content is `null` and `finish_reason` `tool_calls`.
    ToolCalls(Vec<ToolCall>),
    /// A vector for an embeddings call (`when.api = "embeddings"`), sent for each input;
    /// to a completion call it is the content, as a JSON array.
    Embedding(Vec<f32>),
    /// An error in the dialect of the request's API (see [`chaos::ApiError`]): `type` and
    /// `code` default by status, and `Retry-After` is sent in whole seconds, rounded up,
    /// with `retry-after-ms` exact.
    Error {
        /// HTTP status.
        status: u16,
        /// `error.message`.
        message: String,
        /// `error.type`; by default by status.
        error_type: Option<String>,
        /// `error.code`; by default by status.
        code: Option<String>,
        /// Sent as `Retry-After`.
        retry_after: Option<Duration>,
    },
}

/// One scripted reply.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmReply {
    /// What to answer.
    pub body: LlmReplyBody,
    /// Wait this long before answering. By default, no delay.
    pub delay: Option<Duration>,
    /// Overrides `finish_reason` (e.g. `length`). By default `stop`, or `tool_calls` for
    /// tool calls.
    pub finish_reason: Option<String>,
}

impl LlmReply {
    /// A reply with this body, no delay and the default finish reason.
    pub fn new(body: LlmReplyBody) -> Self {
        Self {
            body,
            delay: None,
            finish_reason: None,
        }
    }

    /// A reply whose content is this JSON, serialized.
    pub fn json(value: Value) -> Self {
        Self::new(LlmReplyBody::Json(value))
    }

    /// A reply whose content is this text.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(LlmReplyBody::Text(text.into()))
    }

    /// An error reply with this status and message, default type and code.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::new(LlmReplyBody::Error {
            status,
            message: message.into(),
            error_type: None,
            code: None,
            retry_after: None,
        })
    }

    /// This reply, answered after `delay`.
    pub fn with_delay(self, delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            ..self
        }
    }
}

impl ToolCall {
    /// A call of `name` with these arguments and a generated id.
    pub fn new(name: impl Into<String>, arguments: Value) -> Self {
        Self {
            id: None,
            name: name.into(),
            arguments,
        }
    }

    /// The arguments as `function.arguments` carries them.
    pub(crate) fn arguments_string(&self) -> String {
        match &self.arguments {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        }
    }
}
