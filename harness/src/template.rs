//! `{…}` placeholders, parsed in one place.
//!
//! Two things fill them, at two times:
//!
//! - when a scenario file is loaded, `{matrix.NAME}` becomes the value of one matrix case
//!   ([`render_toml`], which works on the TOML text and keeps a map back to the positions
//!   the user wrote, so diagnostics still name the original line and column);
//! - when a scenario runs, `{llm}`, `{executor.NAME}`, `{seed}`, `{scratch}`, `{vars.NAME}`
//!   and `${VAR}` become URLs and values of that run (`target::expand`, steps).
//!
//! A placeholder is `{` + a name of letters, digits and `_ . - +` + `}`; any other `{` is
//! text (so JSON bodies in strings need no escaping).
//!
//! ```text
//! "--size={matrix.size} ${HOME}"  →  Text("--size="), Key("matrix.size"), Text(" "), Env("HOME")
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    /// `{key}`; `at` is the byte range of the whole placeholder, braces included.
    Key {
        key: &'a str,
        at: Range<usize>,
    },
    /// `${NAME}`, from the harness's environment.
    Env {
        name: &'a str,
        at: Range<usize>,
    },
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+')
}

/// Splits `s` into text and placeholders.
pub(crate) fn pieces(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while let Some(rel) = s[i..].find('{') {
        let open = i + rel;
        let rest = &s[open + 1..];
        let len = rest.find(|c: char| !is_key_char(c)).unwrap_or(rest.len());
        if len > 0 && rest[len..].starts_with('}') {
            let key = &rest[..len];
            let env = open > 0 && s.as_bytes()[open - 1] == b'$';
            let start = if env { open - 1 } else { open };
            let end = open + 1 + len + 1;
            if start > text_start {
                out.push(Piece::Text(&s[text_start..start]));
            }
            out.push(if env {
                Piece::Env {
                    name: key,
                    at: start..end,
                }
            } else {
                Piece::Key {
                    key,
                    at: start..end,
                }
            });
            text_start = end;
            i = end;
        } else {
            i = open + 1;
        }
    }
    if text_start < s.len() {
        out.push(Piece::Text(&s[text_start..]));
    }
    out
}

/// The keys of the placeholders in `s` that start with `prefix` (e.g. `executor.`).
pub(crate) fn keys_with_prefix<'a>(s: &'a str, prefix: &str) -> Vec<&'a str> {
    pieces(s)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Key { key, .. } => key.strip_prefix(prefix),
            _ => None,
        })
        .collect()
}

/// Replaces each `{key}` for which `fill` returns a value; leaves the others as written.
pub(crate) fn fill_known(s: &str, fill: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    for p in pieces(s) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Key { key, at } => match fill(key) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&s[at]),
            },
            Piece::Env { at, .. } => out.push_str(&s[at]),
        }
    }
    out
}

/// A value of a matrix dimension.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MatrixValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl MatrixValue {
    /// As text inside a string.
    pub(crate) fn text(&self) -> String {
        match self {
            MatrixValue::Str(s) => s.clone(),
            MatrixValue::Int(i) => i.to_string(),
            MatrixValue::Float(f) => f.to_string(),
            MatrixValue::Bool(b) => b.to_string(),
        }
    }

    /// As a TOML value of its own type.
    fn toml(&self) -> String {
        match self {
            MatrixValue::Str(s) => basic_string(s),
            MatrixValue::Float(f) if f.fract() == 0.0 && f.is_finite() => format!("{f:.1}"),
            other => other.text(),
        }
    }

    pub(crate) fn from_toml(v: &toml::Value) -> Option<MatrixValue> {
        Some(match v {
            toml::Value::String(s) => MatrixValue::Str(s.clone()),
            toml::Value::Integer(i) => MatrixValue::Int(*i),
            toml::Value::Float(f) => MatrixValue::Float(*f),
            toml::Value::Boolean(b) => MatrixValue::Bool(*b),
            _ => return None,
        })
    }
}

fn basic_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where rendered text came from: each replaced range, in the rendered and the original text.
#[derive(Debug, Default, Clone)]
pub(crate) struct SourceMap {
    edits: Vec<(Range<usize>, Range<usize>)>,
}

impl SourceMap {
    /// The original offset of a rendered one (a place inside a replacement maps to the
    /// placeholder that made it).
    pub(crate) fn original(&self, rendered: usize) -> usize {
        let mut delta: isize = 0;
        for (orig, out) in &self.edits {
            if rendered < out.start {
                break;
            }
            if rendered < out.end {
                return orig.start;
            }
            delta = orig.end as isize - out.end as isize;
        }
        (rendered as isize + delta).max(0) as usize
    }

    pub(crate) fn original_span(&self, span: &Range<usize>) -> Range<usize> {
        let start = self.original(span.start);
        let end = self.original(span.end).max(start);
        start..end
    }
}

/// A `{matrix.NAME}` that names no dimension: its range in the original text.
#[derive(Debug, PartialEq)]
pub(crate) struct UnknownName {
    pub name: String,
    pub at: Range<usize>,
}

/// Fills `{matrix.NAME}` in the string literals of a TOML text. A string that is exactly
/// one placeholder becomes the value in its own type (`rate = "{matrix.rate}"` →
/// `rate = 20`), except where it is a key; elsewhere the value's text goes into the string.
pub(crate) fn render_toml(
    source: &str,
    values: &BTreeMap<String, MatrixValue>,
) -> Result<(String, SourceMap), UnknownName> {
    let mut out = String::with_capacity(source.len());
    let mut map = SourceMap::default();
    let mut copied = 0;
    for lit in string_literals(source) {
        let inner = &source[lit.content.clone()];
        let found: Vec<Piece> = pieces(inner)
            .into_iter()
            .filter(|p| matches!(p, Piece::Key { key, .. } if key.starts_with("matrix.")))
            .collect();
        if found.is_empty() {
            continue;
        }
        let lookup = |key: &str, at: &Range<usize>| {
            let name = &key["matrix.".len()..];
            values.get(name).ok_or_else(|| UnknownName {
                name: name.to_string(),
                at: lit.content.start + at.start..lit.content.start + at.end,
            })
        };
        let whole = match found.as_slice() {
            [Piece::Key { key, at }] if at.start == 0 && at.end == inner.len() => {
                Some(lookup(key, at)?)
            }
            _ => None,
        };
        let followed_by = source[lit.whole.end..].trim_start_matches([' ', '\t']);
        let is_key = followed_by.starts_with('=')
            || followed_by.starts_with('.')
            || followed_by.starts_with(']');
        match whole {
            Some(value) if !is_key => {
                out.push_str(&source[copied..lit.whole.start]);
                let start = out.len();
                out.push_str(&value.toml());
                map.edits.push((lit.whole.clone(), start..out.len()));
                copied = lit.whole.end;
            }
            _ => {
                for p in found {
                    let Piece::Key { key, at } = p else { continue };
                    let value = lookup(key, &at)?;
                    let at = lit.content.start + at.start..lit.content.start + at.end;
                    out.push_str(&source[copied..at.start]);
                    let start = out.len();
                    let text = value.text();
                    if lit.basic {
                        let quoted = basic_string(&text);
                        out.push_str(&quoted[1..quoted.len() - 1]);
                    } else {
                        out.push_str(&text);
                    }
                    map.edits.push((at.clone(), start..out.len()));
                    copied = at.end;
                }
            }
        }
    }
    out.push_str(&source[copied..]);
    Ok((out, map))
}

/// A string literal in TOML text.
struct Literal {
    /// Quotes included.
    whole: Range<usize>,
    content: Range<usize>,
    /// `"…"` or `"""…"""` (escapes apply), not `'…'`.
    basic: bool,
}

/// The string literals of a TOML text, outside comments (a scanner, not a parser: the
/// text is parsed for real afterwards).
fn string_literals(s: &str) -> Vec<Literal> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let triple = b[i..].starts_with(if q == b'"' { b"\"\"\"" } else { b"'''" });
                let open = if triple { 3 } else { 1 };
                let start = i;
                let mut j = i + open;
                let close = loop {
                    if j >= b.len() {
                        break b.len();
                    }
                    if q == b'"' && b[j] == b'\\' {
                        j += 2;
                        continue;
                    }
                    if triple {
                        // Bytes, not `str`: `j` may sit inside a multi-byte character.
                        if b[j..].starts_with(if q == b'"' { b"\"\"\"" } else { b"'''" }) {
                            // A closing run may carry up to two extra quotes of content.
                            let mut k = j + 3;
                            while k < b.len() && b[k] == q && k < j + 5 {
                                k += 1;
                            }
                            break k - 3;
                        }
                    } else if b[j] == q || b[j] == b'\n' {
                        break j;
                    }
                    j += 1;
                };
                let end = (close + open).min(b.len());
                out.push(Literal {
                    whole: start..end,
                    content: start + open..close.min(b.len()),
                    basic: q == b'"',
                });
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_names_in_braces_and_other_braces_are_text() {
        assert_eq!(
            pieces("a{llm}b${HOME}{\"json\": 1}{x"),
            vec![
                Piece::Text("a"),
                Piece::Key {
                    key: "llm",
                    at: 1..6
                },
                Piece::Text("b"),
                Piece::Env {
                    name: "HOME",
                    at: 7..14
                },
                Piece::Text("{\"json\": 1}{x"),
            ]
        );
        assert_eq!(
            keys_with_prefix("{executor.a} {executor.b}", "executor."),
            ["a", "b"]
        );
        assert_eq!(
            fill_known("{a}-{b}", |k| (k == "a").then(|| "1".into())),
            "1-{b}"
        );
    }

    fn values(pairs: &[(&str, MatrixValue)]) -> BTreeMap<String, MatrixValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_whole_string_placeholder_takes_the_type_of_its_value() {
        let v = values(&[
            ("n", MatrixValue::Int(5)),
            ("who", MatrixValue::Str("say \"hi\"".into())),
        ]);
        let src = "rate = \"{matrix.n}\" # {matrix.zzz}\nname = \"n={matrix.n} {matrix.who}\"\n'{matrix.who}' = 1\n";
        let (out, map) = render_toml(src, &v).unwrap();
        assert_eq!(
            out,
            "rate = 5 # {matrix.zzz}\nname = \"n=5 say \\\"hi\\\"\"\n'say \"hi\"' = 1\n"
        );
        // Text after a replacement maps back to where it was written.
        let rendered_name = out.find("name").unwrap();
        assert_eq!(map.original(rendered_name), src.find("name").unwrap());
        // Inside a replacement: the placeholder's start.
        assert_eq!(map.original(7), src.find("\"{matrix.n}\"").unwrap());
        toml::from_str::<toml::Table>(&out).expect("still TOML");
    }

    // A multi-byte character in a multi-line string once made the scanner slice inside it
    // and panic, for any matrix file with, say, `5 × 3` in its description.
    #[test]
    fn multi_byte_text_in_any_kind_of_string_is_scanned_whole() {
        let v = values(&[("a", MatrixValue::Int(1))]);
        let src = "name = \"x {matrix.a} ×\"\nd = \"\"\"\n5 × 3 = 15 é\"\"\"\ne = '''漢字 {matrix.a}'''\n";
        let (out, _) = render_toml(src, &v).unwrap();
        assert_eq!(
            out,
            "name = \"x 1 ×\"\nd = \"\"\"\n5 × 3 = 15 é\"\"\"\ne = '''漢字 1'''\n"
        );
    }

    #[test]
    fn an_unknown_name_is_reported_where_it_was_written() {
        let src = "a = \"x {matrix.sise}\"";
        let err = render_toml(src, &values(&[("size", MatrixValue::Int(1))])).unwrap_err();
        assert_eq!(err.name, "sise");
        assert_eq!(&src[err.at], "{matrix.sise}");
    }
}
