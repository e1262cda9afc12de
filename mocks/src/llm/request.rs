//! The parts of a chat-completion request the stub looks at, read leniently from JSON.
//!
//! Only what OpenAI itself requires is required (a JSON object with a string `model` and a
//! `messages` array); anything else of the wrong type is read as absent, never a panic.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

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
    ///
    /// The body is read in one pass, straight into the fields the rules need (no JSON tree
    /// is built): what is not needed is skipped, a field of the wrong type is absent, and
    /// when a key repeats the last one counts, as with any JSON object.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        Self::parse_model_or(body, None)
    }

    /// As [`ChatRequest::parse`], with `model` for a body that names none (Azure OpenAI,
    /// whose path names the deployment).
    pub(crate) fn parse_with_model(body: &[u8], model: &str) -> Result<Self, String> {
        Self::parse_model_or(body, Some(model))
    }

    fn parse_model_or(body: &[u8], default_model: Option<&str>) -> Result<Self, String> {
        let top: Option<Top> = serde_json::from_slice::<TopSeed>(body)
            .map_err(|error| format!("agent-harness: the request body is not valid JSON: {error}"))?
            .0;
        let Some(top) = top else {
            return Err("agent-harness: the request body must be a JSON object".to_string());
        };
        let Some(model) = top.model.or_else(|| default_model.map(str::to_string)) else {
            return Err("you must provide a model parameter".to_string());
        };
        let Some(messages) = top.messages else {
            return Err("'messages' is a required property".to_string());
        };
        Ok(Self {
            model,
            stream: top.stream.unwrap_or(false),
            include_usage: top.include_usage.unwrap_or(false),
            tools: top.tools.unwrap_or(0),
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

// The one-pass reader. Each visitor reads one JSON value as the type it wants and anything
// else as absent (consuming it, so the parse goes on): the same leniency as reading a
// `serde_json::Value` and looking at it, without building the tree.

/// The top-level object's fields of interest; `None` when the body is not an object.
#[derive(Default)]
struct Top {
    model: Option<String>,
    stream: Option<bool>,
    include_usage: Option<bool>,
    tools: Option<usize>,
    messages: Option<Vec<Message>>,
}

/// The methods of a visitor that make a value of every other JSON type "absent".
macro_rules! otherwise {
    ($absent:expr => $($kind:ident)*) => { $(otherwise!(@$kind $absent);)* };
    (@bool $absent:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> { Ok($absent) }
    };
    (@number $absent:expr) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> { Ok($absent) }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> { Ok($absent) }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> { Ok($absent) }
    };
    (@str $absent:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> { Ok($absent) }
    };
    (@unit $absent:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> { Ok($absent) }
    };
    (@seq $absent:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($absent)
        }
    };
    (@map $absent:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($absent)
        }
    };
}

/// Deserializes with a visitor that takes any JSON value.
macro_rules! any_value {
    ($name:ident) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(Visit::<$name>(PhantomData))
            }
        }
    };
}

/// A visitor producing `T`.
struct Visit<T>(PhantomData<T>);

/// A key of an object: the index of the known name it is, if any.
struct Key<const N: usize>(Option<usize>);

struct KeyVisitor<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> Visitor<'de> for KeyVisitor<N> {
    type Value = Key<N>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<N>, E> {
        Ok(Key(self.0.iter().position(|name| *name == key)))
    }
}

impl<'de, const N: usize> de::DeserializeSeed<'de> for KeyVisitor<N> {
    type Value = Key<N>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key<N>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

struct TopSeed(Option<Top>);
any_value!(TopSeed);

const TOP_KEYS: [&str; 5] = ["model", "stream", "stream_options", "tools", "messages"];

impl<'de> Visitor<'de> for Visit<TopSeed> {
    type Value = TopSeed;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    otherwise!(TopSeed(None) => bool number str unit seq);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopSeed, A::Error> {
        let mut top = Top::default();
        while let Some(Key(index)) = map.next_key_seed(KeyVisitor(&TOP_KEYS))? {
            match index {
                Some(0) => top.model = map.next_value::<LenientString>()?.0,
                Some(1) => top.stream = map.next_value::<LenientBool>()?.0,
                Some(2) => top.include_usage = map.next_value::<StreamOptions>()?.0,
                Some(3) => top.tools = map.next_value::<ArrayLen>()?.0,
                Some(4) => top.messages = map.next_value::<Messages>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(TopSeed(Some(top)))
    }
}

/// A string, else absent.
struct LenientString(Option<String>);
any_value!(LenientString);

impl<'de> Visitor<'de> for Visit<LenientString> {
    type Value = LenientString;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    otherwise!(LenientString(None) => bool number unit seq map);
    fn visit_str<E: de::Error>(self, text: &str) -> Result<LenientString, E> {
        Ok(LenientString(Some(text.to_string())))
    }
    fn visit_string<E: de::Error>(self, text: String) -> Result<LenientString, E> {
        Ok(LenientString(Some(text)))
    }
}

/// A boolean, else absent.
struct LenientBool(Option<bool>);
any_value!(LenientBool);

impl<'de> Visitor<'de> for Visit<LenientBool> {
    type Value = LenientBool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    otherwise!(LenientBool(None) => number str unit seq map);
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<LenientBool, E> {
        Ok(LenientBool(Some(value)))
    }
}

/// The length of an array, else absent.
struct ArrayLen(Option<usize>);
any_value!(ArrayLen);

impl<'de> Visitor<'de> for Visit<ArrayLen> {
    type Value = ArrayLen;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    otherwise!(ArrayLen(None) => bool number str unit map);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArrayLen, A::Error> {
        let mut len = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            len += 1;
        }
        Ok(ArrayLen(Some(len)))
    }
}

/// `stream_options.include_usage`, when `stream_options` is an object and it is a boolean.
struct StreamOptions(Option<bool>);
any_value!(StreamOptions);

impl<'de> Visitor<'de> for Visit<StreamOptions> {
    type Value = StreamOptions;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    otherwise!(StreamOptions(None) => bool number str unit seq);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StreamOptions, A::Error> {
        let mut include_usage = None;
        while let Some(Key(index)) = map.next_key_seed(KeyVisitor(&["include_usage"]))? {
            match index {
                Some(_) => include_usage = map.next_value::<LenientBool>()?.0,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(StreamOptions(include_usage))
    }
}

/// The messages, when `messages` is an array.
struct Messages(Option<Vec<Message>>);
any_value!(Messages);

impl<'de> Visitor<'de> for Visit<Messages> {
    type Value = Messages;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    otherwise!(Messages(None) => bool number str unit map);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
        let mut messages = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
        while let Some(LenientMessage(message)) = seq.next_element()? {
            messages.push(message);
        }
        Ok(Messages(Some(messages)))
    }
}

/// One message: its `role` when it is a string (else `?`) and its content's text.
struct LenientMessage(Message);
any_value!(LenientMessage);

fn no_message() -> LenientMessage {
    LenientMessage(Message {
        role: "?".to_string(),
        content: String::new(),
    })
}

impl<'de> Visitor<'de> for Visit<LenientMessage> {
    type Value = LenientMessage;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    otherwise!(no_message() => bool number str unit seq);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LenientMessage, A::Error> {
        let (mut role, mut content) = (None, None);
        while let Some(Key(index)) = map.next_key_seed(KeyVisitor(&["role", "content"]))? {
            match index {
                Some(0) => role = map.next_value::<LenientString>()?.0,
                Some(_) => content = Some(map.next_value::<ContentText>()?.0),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(LenientMessage(Message {
            role: role.unwrap_or_else(|| "?".to_string()),
            content: content.unwrap_or_default(),
        }))
    }
}

/// A string content as is; a content array as its text parts joined by newlines; anything
/// else (null, images only) as empty.
struct ContentText(String);
any_value!(ContentText);

impl<'de> Visitor<'de> for Visit<ContentText> {
    type Value = ContentText;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    otherwise!(ContentText(String::new()) => bool number unit map);
    fn visit_str<E: de::Error>(self, text: &str) -> Result<ContentText, E> {
        Ok(ContentText(text.to_string()))
    }
    fn visit_string<E: de::Error>(self, text: String) -> Result<ContentText, E> {
        Ok(ContentText(text))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ContentText, A::Error> {
        let mut texts: Vec<String> = Vec::new();
        while let Some(TextPart(text)) = seq.next_element()? {
            texts.extend(text);
        }
        Ok(ContentText(texts.join("\n")))
    }
}

/// The `text` of a content part, when the part is an object and it is a string.
struct TextPart(Option<String>);
any_value!(TextPart);

impl<'de> Visitor<'de> for Visit<TextPart> {
    type Value = TextPart;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    otherwise!(TextPart(None) => bool number str unit seq);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TextPart, A::Error> {
        let mut text = None;
        while let Some(Key(index)) = map.next_key_seed(KeyVisitor(&["text"]))? {
            match index {
                Some(_) => text = map.next_value::<LenientString>()?.0,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(TextPart(text))
    }
}

/// What the one-pass reader replaces, kept to check it against: read the body as a
/// `serde_json::Value`, then look at it.
#[cfg(test)]
fn parse_via_value(body: &[u8]) -> Result<ChatRequest, String> {
    use serde_json::Value;
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| format!("agent-harness: the request body is not valid JSON: {error}"))?;
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
    let content_text = |content: &Value| match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
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
    Ok(ChatRequest {
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

    /// Every body here reads the same as through a `serde_json::Value`: fields of every
    /// type, repeated keys, escapes, nesting, and bodies that are not requests at all.
    #[test]
    fn the_one_pass_reader_agrees_with_reading_a_value() {
        let bodies: &[&str] = &[
            r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#,
            r#"{"model": "m", "stream": true, "stream_options": {"x": [1, {"y": 2}], "include_usage": true, "include_usage": false}, "messages": []}"#,
            r#"{"model": 5, "messages": []}"#,
            r#"{"model": "a", "model": "b\u00e9\n", "messages": [], "messages": [{"content": "c"}]}"#,
            r#"{"model": "m", "tools": [{"type": "function", "function": {"parameters": {"a": [[], {}]}}}], "messages": [{"role": null, "content": 1.5}, "x", [], null, {"content": [{"text": "a"}, {"text": 3}, "b", {"type": "x", "text": "c\"d"}, {"text": "e", "text": "f"}]}]}"#,
            r#"{"messages": [{"role": "system", "content": "You are the critic agent"}], "model": "late"}"#,
            r#"{"model": "m", "messages": {"role": "user"}}"#,
            r#"{"model": "m", "messages": [], "stream": null, "stream_options": null, "tools": "3"}"#,
            r#"{"model": "m", "messages": [], "stream_options": {"include_usage": "yes"}}"#,
            r#"{"model": "m", "messages": [], "other": {"deep": [[[["x"]]]]}, "n": -1e10}"#,
            r#"{"model": "m", "messages": [] } trailing"#,
            r#"{"model": "m", "messages": [{"role": "user", "content": "open"#,
            r#""a string""#,
            "null",
            "[1, 2]",
            "",
            r#"{"\u006dodel": "escaped key", "messages": []}"#,
        ];
        for body in bodies {
            assert_eq!(
                ChatRequest::parse(body.as_bytes()),
                parse_via_value(body.as_bytes()),
                "{body}"
            );
        }
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
