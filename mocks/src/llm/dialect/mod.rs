//! One dialect per wire API: each parses its API's request into the neutral view the rules
//! decide on ([`ChatRequest`]: model, messages, tools, streamed or not) and renders a
//! neutral [`Completion`] (whole or as stream events) and a neutral [`ApiError`] in its
//! API's own shapes. Rules and faults never learn which API they are rendered in.
//!
//! # Adding an API
//!
//! 1. A file here with a unit struct implementing [`Dialect`].
//! 2. A variant of [`Api`] (its `when.api` name) and one line in [`of`].
//! 3. Its path in `route.rs`.
//! 4. A test with the API's official client (see `tests/integration/clients.rs`).

mod anthropic;
mod chat;
mod gemini;
mod responses;

use chaos::ApiError;

use super::openai::Completion;
use super::request::ChatRequest;
use super::route::Call;
use super::sse::EventStream;

/// The wire APIs the stub speaks; `when.api` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// OpenAI Chat Completions (and Azure OpenAI's deployments path).
    Chat,
    /// OpenAI Responses.
    Responses,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
    /// OpenAI embeddings (not a completion: answered by `embeddings.rs`).
    Embeddings,
}

/// The names `when.api` accepts.
pub(crate) const API_NAMES: [&str; 5] = ["chat", "responses", "anthropic", "gemini", "embeddings"];

impl Api {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Responses => "responses",
            Api::Anthropic => "anthropic",
            Api::Gemini => "gemini",
            Api::Embeddings => "embeddings",
        }
    }
}

/// How one API reads calls and writes replies.
pub(crate) trait Dialect: Sync {
    /// The neutral view of a request body; the error is the message of the 400 answered.
    fn parse(&self, body: &[u8], call: &Call) -> Result<ChatRequest, String>;
    /// A whole (unstreamed) reply body.
    fn whole(&self, completion: &Completion) -> Vec<u8>;
    /// A streamed reply: its events, each a complete SSE frame.
    fn stream(&self, completion: &Completion, request: &ChatRequest) -> EventStream;
    /// The body of an error response with `error.status`.
    fn error_body(&self, error: &ApiError) -> Vec<u8>;
    /// The body of a malformed-JSON fault: this API's reply, cut off mid-object.
    fn malformed_body(&self) -> &'static str;
    /// The headers that carry the request id.
    fn request_id_headers(&self) -> &'static [&'static str] {
        &["x-request-id"]
    }
}

/// The dialect of an API (embeddings answer errors as OpenAI does).
pub(crate) fn of(api: Api) -> &'static dyn Dialect {
    match api {
        Api::Chat | Api::Embeddings => &chat::Chat,
        Api::Responses => &responses::Responses,
        Api::Anthropic => &anthropic::Anthropic,
        Api::Gemini => &gemini::Gemini,
    }
}

/// An SSE frame with an event name, as Responses and Anthropic send them.
pub(crate) fn named_event(name: &str, data: &serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The text of a JSON content value: a string as is, an array as the `text` of its parts
/// (and the string `content` of nested parts, such as tool results) joined by newlines.
pub(crate) fn text_of(content: &serde_json::Value) -> String {
    use serde_json::Value;
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part {
                Value::String(text) => Some(text.clone()),
                Value::Object(object) => object
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| object.get("content").map(text_of)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Reads a body as a JSON object, with OpenAI's wording for what is not one.
pub(crate) fn object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => Err("agent-harness: the request body must be a JSON object".to_string()),
        Err(error) => Err(format!(
            "agent-harness: the request body is not valid JSON: {error}"
        )),
    }
}

/// The neutral view of a body shaped as OpenAI Responses and Anthropic Messages shape
/// theirs: streamed when the route or the body's `stream` says so, its `tools` counted,
/// with the `messages` the dialect read. Both report usage on every reply.
pub(crate) fn request_of(
    object: &serde_json::Map<String, serde_json::Value>,
    model: &str,
    call: &Call,
    messages: Vec<super::request::Message>,
) -> ChatRequest {
    use serde_json::Value;
    ChatRequest {
        model: model.to_string(),
        stream: call.stream || object.get("stream").and_then(Value::as_bool) == Some(true),
        include_usage: true,
        tools: object
            .get("tools")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        messages,
    }
}

/// `text` in pieces of at most [`super::sse::PIECE_CHARS`] characters.
pub(crate) use super::sse::pieces;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_of_reads_strings_parts_and_tool_results() {
        assert_eq!(text_of(&json!("hi")), "hi");
        assert_eq!(
            text_of(
                &json!([{"type": "text", "text": "a"}, {"type": "image"}, {"type": "tool_result", "content": [{"text": "b"}]}])
            ),
            "a\nb"
        );
        assert_eq!(text_of(&json!(null)), "");
    }

    #[test]
    fn api_names_round_trip() {
        for api in [
            Api::Chat,
            Api::Responses,
            Api::Anthropic,
            Api::Gemini,
            Api::Embeddings,
        ] {
            assert!(API_NAMES.contains(&api.name()));
        }
    }
}
