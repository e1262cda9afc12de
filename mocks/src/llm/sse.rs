//! Streaming: a completion as `text/event-stream` frames of `chat.completion.chunk`s.
//!
//! The frames, as OpenAI sends them and the official SDKs parse them:
//!
//! 1. `delta: {role: "assistant", content: ""}` (`content: null` when tool calls follow);
//! 2. the content in pieces of up to [`PIECE_CHARS`] characters, `delta: {content}`;
//!    or, per tool call, `delta.tool_calls: [{index, id, type, function: {name,
//!    arguments: ""}}]` and then its arguments in pieces, `[{index, function: {arguments}}]`;
//! 3. `delta: {}` with the `finish_reason`;
//! 4. when the request set `stream_options.include_usage`: `choices: []` with `usage`
//!    (and every earlier chunk carries `usage: null`, as OpenAI does);
//! 5. `data: [DONE]`.
//!
//! Each frame is `data: <json>\n\n`, and each is its own piece of the response body, sent
//! (and flushed) as soon as its time comes: at once, or paced and stalled by stream faults
//! (see `wire.rs`).

use serde_json::{Value, json};

use super::openai::Completion;

/// Content and arguments are split into pieces of at most this many characters.
pub(crate) const PIECE_CHARS: usize = 16;

/// The `[DONE]` event that ends a stream.
pub(crate) const DONE: &str = "data: [DONE]\n\n";

/// A rendered stream: its events in order, each a complete `data: …\n\n` frame, the last
/// one [`DONE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventStream {
    pub(crate) events: Vec<String>,
    /// The number of `chat.completion.chunk` frames (not counting `[DONE]`).
    pub(crate) chunks: usize,
    /// The indices of the events that carry tokens: the content pieces, or the tool calls'
    /// openings and argument pieces (between the role chunk and the finish chunk).
    pub(crate) tokens: std::ops::Range<usize>,
}

impl EventStream {
    /// The whole body.
    #[cfg(test)]
    pub(crate) fn body(&self) -> String {
        self.events.concat()
    }
}

pub(crate) fn render(completion: &Completion, include_usage: bool) -> EventStream {
    let mut stream = EventStream {
        events: Vec::new(),
        chunks: 0,
        tokens: 0..0,
    };
    let mut frame = |choices: Value, usage: Option<Value>| {
        let mut chunk = json!({
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if include_usage {
            chunk["usage"] = usage.unwrap_or(Value::Null);
        }
        stream.events.push(format!("data: {chunk}\n\n"));
        stream.chunks += 1;
    };
    let choice = |delta: Value, finish_reason: Option<&str>| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]);

    frame(
        choice(
            json!({"role": "assistant", "content": completion.content.as_ref().map(|_| ""), "refusal": null}),
            None,
        ),
        None,
    );
    // the role chunk is event 0; the token chunks follow it
    let mut token_chunks = 0;
    if let Some(content) = &completion.content {
        for piece in pieces(content) {
            frame(choice(json!({"content": piece}), None), None);
            token_chunks += 1;
        }
    }
    for (index, call) in completion.tool_calls.iter().enumerate() {
        let opening = json!([{
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }]);
        frame(choice(json!({"tool_calls": opening}), None), None);
        token_chunks += 1;
        for piece in pieces(&call.arguments) {
            let fragment = json!([{"index": index, "function": {"arguments": piece}}]);
            frame(choice(json!({"tool_calls": fragment}), None), None);
            token_chunks += 1;
        }
    }
    frame(choice(json!({}), Some(&completion.finish_reason)), None);
    if include_usage {
        frame(json!([]), Some(completion.usage.to_json()));
    }
    stream.events.push(DONE.to_string());
    stream.tokens = 1..1 + token_chunks;
    stream
}

/// `text` in pieces of at most [`PIECE_CHARS`] characters (never splitting a character).
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (count, (offset, _)) in text.char_indices().enumerate() {
        if count > 0 && count % PIECE_CHARS == 0 {
            pieces.push(&text[start..offset]);
            start = offset;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::openai::{Said, SentToolCall};
    use crate::llm::request::ChatRequest;
    use crate::llm::tokens::Usage;

    fn completion(content: Option<&str>, tool_calls: Vec<SentToolCall>) -> Completion {
        Completion {
            number: 1,
            id: "chatcmpl-1".into(),
            created: 7,
            model: "m".into(),
            content: content.map(str::to_string),
            finish_reason: if tool_calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            }
            .into(),
            tool_calls,
            usage: Usage {
                prompt: 10,
                completion: 3,
            },
        }
    }

    /// The JSON of each frame, and whether the stream ends with `[DONE]`.
    fn frames(body: &str) -> (Vec<Value>, bool) {
        assert!(body.ends_with("\n\n"), "every frame ends with a blank line");
        let events: Vec<&str> = body.trim_end().split("\n\n").collect();
        let done = events.last() == Some(&"data: [DONE]");
        let chunks = events[..events.len() - usize::from(done)]
            .iter()
            .map(|event| serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap())
            .collect();
        (chunks, done)
    }

    #[test]
    fn pieces_split_on_characters() {
        assert_eq!(pieces(""), Vec::<&str>::new());
        assert_eq!(pieces("0123456789abcdef"), ["0123456789abcdef"]);
        assert_eq!(pieces("0123456789abcdefé"), ["0123456789abcdef", "é"]);
        assert_eq!(pieces(&"é".repeat(17)).len(), 2);
    }

    #[test]
    fn content_stream_is_role_pieces_finish_usage_done() {
        let content = "The sword has a fuller and a leather grip.";
        let stream = render(&completion(Some(content), Vec::new()), true);
        let (chunks, done) = frames(&stream.body());
        assert!(done);
        assert_eq!(stream.chunks, chunks.len());
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "chatcmpl-1")
        );
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, content);
        assert_eq!(chunks.len(), 1 + 3 + 1 + 1);
        assert_eq!(stream.tokens, 1..4, "the three content pieces");
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        assert_eq!(finish["usage"], Value::Null);
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 13);
    }

    #[test]
    fn without_include_usage_there_is_no_usage_at_all() {
        let stream = render(&completion(Some("hi"), Vec::new()), false);
        let (chunks, done) = frames(&stream.body());
        assert!(done);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    }

    #[test]
    fn tool_calls_open_then_stream_arguments() {
        let arguments = r#"{"query":"medieval sword lore"}"#;
        let calls = vec![
            SentToolCall {
                id: "call_a".into(),
                generated: false,
                name: "search".into(),
                arguments: arguments.into(),
            },
            SentToolCall {
                id: "call_b".into(),
                generated: false,
                name: "noop".into(),
                arguments: "{}".into(),
            },
        ];
        let stream = render(&completion(None, calls), false);
        let (chunks, _) = frames(&stream.body());
        // per call: its opening and its argument pieces (2 and 1), between role and finish
        assert_eq!(stream.tokens, 1..1 + (1 + 2) + (1 + 1));
        assert_eq!(stream.tokens.end, chunks.len() - 1);
        assert_eq!(chunks[0]["choices"][0]["delta"]["content"], Value::Null);
        let deltas: Vec<&Value> = chunks
            .iter()
            .map(|c| &c["choices"][0]["delta"]["tool_calls"][0])
            .collect();
        assert_eq!(
            *deltas[1],
            json!({"index": 0, "id": "call_a", "type": "function", "function": {"name": "search", "arguments": ""}})
        );
        let streamed: String = deltas
            .iter()
            .filter(|d| d["index"] == 0)
            .filter_map(|d| d["function"]["arguments"].as_str())
            .collect();
        assert_eq!(streamed, arguments);
        assert!(
            deltas
                .iter()
                .any(|d| d["id"] == "call_b" && d["index"] == 1)
        );
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
    }

    #[test]
    fn streamed_and_whole_completions_agree() {
        let request = ChatRequest::parse(
            br#"{"model": "m", "messages": [{"role": "user", "content": "hello there"}]}"#,
        )
        .unwrap();
        let completion = Completion::new(1, &request, Said::Content("General Kenobi"), None);
        let (chunks, _) = frames(&render(&completion, true).body());
        assert_eq!(
            chunks.last().unwrap()["usage"],
            completion.to_json()["usage"]
        );
    }
}
