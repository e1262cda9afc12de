//! Streamed chat completions: server-sent events in, one [`Completion`] out.
//!
//! [`SseLines`] cuts a byte stream into `data:` payloads wherever the chunk boundaries
//! fall; [`StreamAccumulator`] folds OpenAI's `chat.completion.chunk` objects into the
//! reply and usage. Both are pure, so arbitrary splits are tested without a network.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::llm::{Completion, Reply};
use crate::output::Usage;

/// What one `data:` line carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// A JSON chunk (not yet parsed).
    Data(String),
    /// `data: [DONE]`: the stream is complete.
    Done,
}

/// Splits bytes into SSE `data:` payloads. Lines end in `\n` or `\r\n`; comments and the
/// fields `event:`, `id:`, `retry:` are skipped, as are blank lines.
#[derive(Debug, Default)]
pub(crate) struct SseLines {
    pending: Vec<u8>,
}

impl SseLines {
    /// Feeds `bytes` and returns the events whose lines are now complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + offset;
            events.extend(parse_line(&self.pending[start..end]));
            start = end + 1;
        }
        self.pending.drain(..start);
        events
    }

    /// The event of a last line that has no line ending, if any.
    pub(crate) fn finish(&mut self) -> Option<Event> {
        let line = std::mem::take(&mut self.pending);
        parse_line(&line)
    }
}

fn parse_line(line: &[u8]) -> Option<Event> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let data = line.strip_prefix(b"data:")?;
    let data = data.strip_prefix(b" ").unwrap_or(data);
    let data = String::from_utf8_lossy(data).into_owned();
    Some(if data.trim() == "[DONE]" {
        Event::Done
    } else {
        Event::Data(data)
    })
}

/// One `chat.completion.chunk`.
#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<Usage>,
    /// Some servers report a failure mid-stream as `{"error": {...}}`.
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Why a chunk could not be used.
#[derive(Debug)]
pub(crate) enum ChunkError {
    NotJson(serde_json::Error),
    /// The chunk is an error report; the text is its message.
    Reported(String),
}

/// Folds chunks of choice 0 into content, tool calls (by index) and the last usage seen.
#[derive(Debug, Default)]
pub(crate) struct StreamAccumulator {
    content: String,
    tool_calls: BTreeMap<u32, (String, String)>,
    usage: Option<Usage>,
}

impl StreamAccumulator {
    pub(crate) fn push(&mut self, data: &str) -> Result<(), ChunkError> {
        let chunk: Chunk = serde_json::from_str(data).map_err(ChunkError::NotJson)?;
        if let Some(error) = chunk.error {
            let message = error
                .get("message")
                .and_then(|m| m.as_str())
                .map_or_else(|| error.to_string(), str::to_owned);
            return Err(ChunkError::Reported(message));
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let deltas = chunk.choices.into_iter().flatten().filter(|c| c.index == 0);
        for delta in deltas.filter_map(|c| c.delta) {
            if let Some(text) = delta.content {
                self.content.push_str(&text);
            }
            for call in delta.tool_calls.into_iter().flatten() {
                let (name, arguments) = self.tool_calls.entry(call.index).or_default();
                if let Some(function) = call.function {
                    name.push_str(function.name.as_deref().unwrap_or_default());
                    arguments.push_str(function.arguments.as_deref().unwrap_or_default());
                }
            }
        }
        Ok(())
    }

    /// The reply: the first tool call if there was one, the content otherwise.
    pub(crate) fn finish(self) -> Completion {
        let reply = match self.tool_calls.into_values().next() {
            Some((name, arguments)) => Reply::ToolCall { name, arguments },
            None if self.content.is_empty() => Reply::Empty,
            None => Reply::Content(self.content),
        };
        Completion {
            reply,
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        ": keep-alive\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"{\\\"subt\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"asks\\\": [\\\"é\\\"]}\"}}]}\r\n\r\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    fn decode(pieces: &[&[u8]]) -> (Vec<Event>, Completion) {
        let mut lines = SseLines::default();
        let mut events: Vec<Event> = pieces.iter().flat_map(|p| lines.push(p)).collect();
        events.extend(lines.finish());
        let mut acc = StreamAccumulator::default();
        for event in &events {
            if let Event::Data(data) = event {
                acc.push(data).unwrap();
            }
        }
        (events, acc.finish())
    }

    #[test]
    fn assembles_content_and_usage() {
        let (events, completion) = decode(&[STREAM.as_bytes()]);
        assert_eq!(events.last(), Some(&Event::Done));
        assert_eq!(
            completion.reply,
            Reply::Content("{\"subtasks\": [\"é\"]}".into())
        );
        assert_eq!(completion.usage.unwrap().total_tokens, 7);
    }

    #[test]
    fn chunk_boundaries_anywhere() {
        let bytes = STREAM.as_bytes();
        let (whole, expected) = decode(&[bytes]);
        // every split point, including inside the two-byte `é`
        for at in 0..=bytes.len() {
            let (events, completion) = decode(&[&bytes[..at], &bytes[at..]]);
            assert_eq!(events, whole, "split at {at}");
            assert_eq!(completion.reply, expected.reply, "split at {at}");
        }
        let single_bytes: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode(&single_bytes).0, whole);
    }

    #[test]
    fn done_without_final_newline() {
        let (events, _) = decode(&[b"data: [DONE]"]);
        assert_eq!(events, [Event::Done]);
    }

    #[test]
    fn tool_call_arguments_accumulate_by_index() {
        let mut acc = StreamAccumulator::default();
        for data in [
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"write_code","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"name":"other","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"code\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" \"x\"}"}}]}}]}"#,
        ] {
            acc.push(data).unwrap();
        }
        assert_eq!(
            acc.finish().reply,
            Reply::ToolCall {
                name: "write_code".into(),
                arguments: r#"{"code": "x"}"#.into()
            }
        );
    }

    #[test]
    fn bad_and_error_chunks() {
        let mut acc = StreamAccumulator::default();
        assert!(matches!(
            acc.push("{\"choices\": [{"),
            Err(ChunkError::NotJson(_))
        ));
        let reported = acc.push(r#"{"error": {"message": "overloaded"}}"#);
        assert!(matches!(reported, Err(ChunkError::Reported(m)) if m == "overloaded"));
        assert_eq!(StreamAccumulator::default().finish().reply, Reply::Empty);
    }
}
