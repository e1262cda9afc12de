//! JSON written the ways a model writes it: keys in another order, spaced out, with
//! `\uXXXX` escapes; and the text a model puts around it (fences, prose, a BOM, stray
//! commas, truncation). Pure functions over strings; the strategies choose which.

use serde_json::Value;

/// How to write a JSON value. The default is compact, keys in their order, no escapes:
/// the bytes the stub sends for a `json` reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Style {
    /// Rotate the keys of every object left by this many places.
    pub(crate) rotate: usize,
    /// Newlines and two-space indents, `": "` and `", "`.
    pub(crate) pretty: bool,
    /// Every non-ASCII and every alphabetic character of strings as `\uXXXX`.
    pub(crate) escapes: bool,
}

pub(crate) fn write(value: &Value, style: Style) -> String {
    let mut out = String::new();
    write_into(&mut out, value, style, 0);
    out
}

fn write_into(out: &mut String, value: &Value, style: Style, depth: usize) {
    let newline = |out: &mut String, depth: usize| {
        if style.pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            let n = entries.len();
            entries.rotate_left(style.rotate % n);
            out.push('{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_string(out, key, style.escapes);
                out.push_str(if style.pretty { ": " } else { ":" });
                write_into(out, v, style, depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_into(out, v, style, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::String(s) => write_string(out, s, style.escapes),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(out: &mut String, s: &str, escapes: bool) {
    if !escapes {
        out.push_str(&Value::String(s.to_string()).to_string());
        return;
    }
    out.push('"');
    for c in s.chars() {
        if c.is_alphabetic() || !c.is_ascii() {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            let escaped = Value::String(c.to_string()).to_string();
            out.push_str(&escaped[1..escaped.len() - 1]);
        }
    }
    out.push('"');
}

/// Text a model puts around (or instead of) the JSON it was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrap {
    Raw,
    Fenced {
        tag: bool,
    },
    ProseBefore,
    ProseAfter,
    Bom,
    TrailingComma,
    SingleQuotes,
    /// Cut after this many thousandths of the text.
    Truncated(u16),
    TwoDocuments,
}

impl Wrap {
    pub(crate) fn apply(self, json: &str) -> String {
        match self {
            Wrap::Raw => json.to_string(),
            Wrap::Fenced { tag } => fence(json, tag),
            Wrap::ProseBefore => format!("Sure! Here is the JSON:\n{json}"),
            Wrap::ProseAfter => format!("{json}\nLet me know if you need anything else."),
            Wrap::Bom => format!("\u{feff}{json}"),
            Wrap::TrailingComma => match json.char_indices().last() {
                Some((i, '}' | ']')) if i > 1 => format!("{},{}", &json[..i], &json[i..]),
                _ => format!("{json},"),
            },
            Wrap::SingleQuotes => json.replace('"', "'"),
            Wrap::Truncated(permille) => truncate(json, permille),
            Wrap::TwoDocuments => format!("{json}\n{json}"),
        }
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Wrap::Raw => String::new(),
            Wrap::Fenced { tag: true } => "in a ```json fence".into(),
            Wrap::Fenced { tag: false } => "in a ``` fence".into(),
            Wrap::ProseBefore => "with prose before".into(),
            Wrap::ProseAfter => "with prose after".into(),
            Wrap::Bom => "after a byte-order mark".into(),
            Wrap::TrailingComma => "with a trailing comma".into(),
            Wrap::SingleQuotes => "in single quotes".into(),
            Wrap::Truncated(p) => format!("cut at {:.1}%", f64::from(p.min(1000)) / 10.0),
            Wrap::TwoDocuments => "twice".into(),
        }
    }
}

pub(crate) fn fence(text: &str, tag: bool) -> String {
    format!("```{}\n{text}\n```", if tag { "json" } else { "" })
}

/// The first `permille` thousandths of `text`, on a character boundary.
pub(crate) fn truncate(text: &str, permille: u16) -> String {
    let want = text.len() * usize::from(permille.min(1000)) / 1000;
    let mut end = want;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_style_keeps_the_meaning() {
        let v = json!({"b": [1, {"x": "é\"\n"}], "a": null, "c": "sword"});
        for rotate in 0..4 {
            for pretty in [false, true] {
                for escapes in [false, true] {
                    let style = Style {
                        rotate,
                        pretty,
                        escapes,
                    };
                    let text = write(&v, style);
                    let back: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(back, v, "{style:?}: {text}");
                }
            }
        }
        assert_eq!(write(&v, Style::default()), v.to_string());
        assert!(
            write(
                &v,
                Style {
                    rotate: 1,
                    ..Style::default()
                }
            )
            .starts_with("{\"b\"")
        );
        assert!(
            write(
                &json!("sé"),
                Style {
                    escapes: true,
                    ..Style::default()
                }
            ) == "\"\\u0073\\u00e9\""
        );
    }

    #[test]
    fn wraps() {
        let j = r#"{"a":[1]}"#;
        assert_eq!(
            Wrap::Fenced { tag: true }.apply(j),
            "```json\n{\"a\":[1]}\n```"
        );
        assert_eq!(Wrap::TrailingComma.apply(j), r#"{"a":[1],}"#);
        assert_eq!(Wrap::SingleQuotes.apply(j), "{'a':[1]}");
        assert_eq!(Wrap::Truncated(500).apply(j), r#"{"a""#);
        assert_eq!(Wrap::Truncated(0).apply(j), "");
        assert_eq!(truncate("éé", 750), "é");
        for w in [Wrap::Bom, Wrap::TwoDocuments, Wrap::ProseAfter] {
            assert!(serde_json::from_str::<Value>(&w.apply(j)).is_err(), "{w:?}");
        }
    }
}
