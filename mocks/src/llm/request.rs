//! The parts of a chat-completion request the stub looks at, read leniently from JSON.
//!
//! Only what OpenAI itself requires is required (a JSON object with a string `model` and a
//! `messages` array); anything else of the wrong type is read as absent, never a panic.

use serde_json::Value;

/// One message: its role and the text of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) role: String,
    pub(crate) content: String,
}

/// A chat-completion request as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatRequest {
    pub(crate) model: String,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) tools: usize,
    pub(crate) messages: Vec<Message>,
}

impl ChatRequest {
    /// Reads a request body; the error is the message of the 400 the stub answers with.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(body).map_err(|error| {
            format!("agent-harness: the request body is not valid JSON: {error}")
        })?;
        let Value::Object(object) = value else {
            return Err("agent-harness: the request body must be a JSON object".to_string());
        };
        let model = match object.get("model") {
            Some(Value::String(model)) => model.clone(),
            _ => return Err("you must provide a model parameter".to_string()),
        };
        let Some(Value::Array(messages)) = object.get("messages") else {
            return Err("'messages' is a required property".to_string());
        };
        let messages = messages
            .iter()
            .map(|message| Message {
                role: message
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                content: message.get("content").map(content_text).unwrap_or_default(),
            })
            .collect();
        Ok(Self {
            model,
            stream: object
                .get("stream")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            include_usage: object
                .get("stream_options")
                .and_then(|options| options.get("include_usage"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            tools: object
                .get("tools")
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
            messages,
        })
    }

    /// The content of the first system (or developer) message.
    pub(crate) fn system_prompt(&self) -> Option<&str> {
        self.messages
            .iter()
            .find(|message| message.role == "system" || message.role == "developer")
            .map(|message| message.content.as_str())
    }

    pub(crate) fn contents(&self) -> impl Iterator<Item = &str> {
        self.messages.iter().map(|message| message.content.as_str())
    }
}

/// A string content as is; a content array as its text parts joined by newlines; anything
/// else (null, images only) as empty.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_rules_need() {
        let request = ChatRequest::parse(
            br#"{"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
                 "tools": [{}, {}],
                 "messages": [{"role": "system", "content": "You are the critic agent"},
                              {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]},
                              {"role": "assistant", "content": null}]}"#,
        )
        .unwrap();
        assert_eq!(request.model, "gpt-4o");
        assert!(request.stream && request.include_usage);
        assert_eq!(request.tools, 2);
        assert_eq!(request.system_prompt(), Some("You are the critic agent"));
        assert_eq!(
            request.contents().collect::<Vec<_>>(),
            ["You are the critic agent", "a\nb", ""]
        );
    }

    #[test]
    fn wrong_types_are_absent_not_panics() {
        let request = ChatRequest::parse(
            br#"{"model": "m", "stream": "yes", "stream_options": 3, "tools": {}, "messages": [1, {"role": 2, "content": {}}]}"#,
        )
        .unwrap();
        assert!(!request.stream && !request.include_usage);
        assert_eq!(request.tools, 0);
        assert_eq!(
            request.messages[0],
            Message {
                role: "?".into(),
                content: String::new()
            }
        );
        assert_eq!(request.system_prompt(), None);
    }

    #[test]
    fn rejects_what_openai_rejects() {
        assert!(
            ChatRequest::parse(b"{not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            ChatRequest::parse(b"[]")
                .unwrap_err()
                .contains("JSON object")
        );
        assert_eq!(
            ChatRequest::parse(br#"{"messages": []}"#).unwrap_err(),
            "you must provide a model parameter"
        );
        assert_eq!(
            ChatRequest::parse(br#"{"model": "m"}"#).unwrap_err(),
            "'messages' is a required property"
        );
    }
}
