//! Positioned diagnostics for files users write: the file, line and column, the source
//! line with a caret, and a hint (the nearest valid key for a misspelt one), rendered the
//! way rustc and Hurl render theirs.
//!
//! ```text
//! error: unknown key `tgt`
//!  --> scenarios/refpipe/happy_path.toml:3:1
//!   |
//! 3 | tgt = "refpipe"
//!   | ^^^ unknown key
//!   |
//!   = help: did you mean `target`?
//! ```

use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

/// An error at a place in a file the user wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The file as the user named it (relative paths stay relative).
    pub path: String,
    /// The whole file, for the excerpt.
    pub source: String,
    /// Byte range of the offending text; empty ranges point between characters.
    pub span: Range<usize>,
    /// The headline: what is wrong.
    pub message: String,
    /// A short label under the caret.
    pub label: String,
    /// How to fix it, when known.
    pub help: Option<String>,
}

impl Diagnostic {
    /// The 1-based line and column (in characters) where the span starts.
    pub fn line_column(&self) -> (usize, usize) {
        let start = self.span.start.min(self.source.len());
        let before = &self.source[..floor_char_boundary(&self.source, start)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// Builds a diagnostic from a TOML parse or deserialization error.
    pub fn from_toml(path: &str, source: &str, err: &toml::de::Error) -> Diagnostic {
        let raw = err.message().trim().to_string();
        // An error without a span is a limit (nesting too deep): point at the deepest
        // place rather than at 1:1.
        let span = err.span().unwrap_or_else(|| deepest_nesting(source));
        let span = narrow(source, span, &raw);
        let mut d = Diagnostic {
            path: path.to_string(),
            source: source.to_string(),
            span,
            message: raw.clone(),
            label: String::new(),
            help: None,
        };
        if let Some(caps) = UNKNOWN_FIELD.captures(&raw) {
            let key = caps[1].to_string();
            let expected: Vec<String> = BACKTICKED
                .captures_iter(&caps[2])
                .map(|c| c[1].to_string())
                .collect();
            d.message = format!("unknown key `{key}`");
            d.label = "unknown key".into();
            let names: Vec<&str> = expected.iter().map(String::as_str).collect();
            d.help = Some(match did_you_mean(&key, &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("expected one of {}", quoted_list(&names)),
            });
        } else if let Some(caps) = MISSING_FIELD.captures(&raw) {
            d.message = format!("missing key `{}`", &caps[1]);
            d.label = "in this table".into();
            d.help = Some(format!("add `{} = …`", &caps[1]));
        } else if let Some((message, hint)) = raw.split_once(" (hint: ") {
            d.message = message.to_string();
            d.help = Some(hint.trim_end_matches(')').to_string());
        }
        d
    }

    /// A file that is not UTF-8: the first invalid byte, with its line and column.
    ///
    /// `source` in the diagnostic is the file with invalid bytes replaced (U+FFFD); the
    /// text before the first one is unchanged, so the span's offset holds.
    pub fn invalid_utf8(path: &str, bytes: &[u8], err: &std::str::Utf8Error) -> Diagnostic {
        let at = err.valid_up_to();
        let byte = bytes.get(at).copied().unwrap_or_default();
        Diagnostic {
            path: path.to_string(),
            source: String::from_utf8_lossy(bytes).into_owned(),
            span: at..at + char::REPLACEMENT_CHARACTER.len_utf8(),
            message: "the file is not valid UTF-8".into(),
            label: format!("byte `0x{byte:02X}` here"),
            help: Some("scenario files are UTF-8 text: save it as UTF-8".into()),
        }
    }

    /// The rendered text, without colour.
    pub fn render(&self) -> String {
        let (line, column) = self.line_column();
        let span = clamp_span(&self.source, self.span.clone());
        let title = Level::ERROR.primary_title(&self.message);
        let snippet = Snippet::source(&self.source)
            .path(&self.path)
            .annotation(AnnotationKind::Primary.span(span).label(&self.label));
        let mut group = title.element(snippet);
        if let Some(help) = &self.help {
            group = group.element(Level::HELP.message(help));
        }
        let rendered = Renderer::plain().render(&[group]);
        // Keep the position visible even when the renderer elides it (empty files).
        if rendered.contains(&format!("{}:{line}:{column}", self.path)) {
            rendered
        } else {
            format!("{rendered}\n --> {}:{line}:{column}", self.path)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

static UNKNOWN_FIELD: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"unknown (?:field|variant) `([^`]*)`, (?:expected|there are no) (.*)")
        .expect("static regex")
});
static MISSING_FIELD: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"missing field `([^`]*)`").expect("static regex"));
static BACKTICKED: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"`([^`]*)`").expect("static regex"));

/// Serde reports an error raised while a table is built (a range check, an unknown
/// kind) at the whole table. When the message names one of its keys
/// (`` `threads = 100000` is out of range ``) or one of its string values
/// (`` unknown process fault `pasue` ``), the error points there instead, by the parser's
/// spans.
fn narrow(source: &str, span: Range<usize>, message: &str) -> Range<usize> {
    let Some(spans) = crate::spans::Spans::parse(source) else {
        return span;
    };
    if let Some(caps) = KEY_IS.captures(message)
        && let Some(at) = spans.narrow_to_key(&span, &caps[1])
    {
        return at;
    }
    BACKTICKED
        .captures_iter(message)
        .find_map(|caps| spans.narrow_to_string(&span, &caps[1]))
        .unwrap_or(span)
}

static KEY_IS: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^`([A-Za-z_][A-Za-z0-9_]*) = ").expect("static regex"));

/// The candidate nearest to `word`, if it is near enough to be what was meant.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `a`, `b` or `c`
pub fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        None => "nothing".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn clamp_span(source: &str, span: Range<usize>) -> Range<usize> {
    let start = floor_char_boundary(source, span.start.min(source.len()));
    let end = floor_char_boundary(source, span.end.min(source.len())).max(start);
    start..end
}

/// The start of the line that nests deepest (tables, arrays, inline tables and dotted
/// keys counted alike), for errors TOML gives no span: the recursion limit.
fn deepest_nesting(source: &str) -> std::ops::Range<usize> {
    let mut best = (0, 0);
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let depth = line
            .chars()
            .filter(|c| matches!(c, '[' | '{' | '.'))
            .count();
        if depth > best.0 {
            let indent = line.len() - line.trim_start().len();
            best = (depth, offset + indent);
        }
        offset += line.len();
    }
    best.1..best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_pick_the_nearest_key_or_none() {
        let keys = ["name", "target", "timeout", "tags"];
        assert_eq!(did_you_mean("tagret", &keys), Some("target"));
        assert_eq!(did_you_mean("timout", &keys), Some("timeout"));
        assert_eq!(did_you_mean("zzzz", &keys), None);
    }

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let d = Diagnostic {
            path: "x.toml".into(),
            source: "a = 1\nbé = 2\n".into(),
            span: 9..10,
            message: String::new(),
            label: String::new(),
            help: None,
        };
        assert_eq!(d.line_column(), (2, 3));
    }

    // Regression: a file that is not UTF-8 got no position at all.
    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let bytes = b"name = \"ok\"\ntags = [\"caf\xe9\"]\n".to_vec();
        let err = std::str::from_utf8(&bytes).unwrap_err();
        let d = Diagnostic::invalid_utf8("x.toml", &bytes, &err);
        assert_eq!(d.line_column(), (2, 13));
        assert_eq!(d.label, "byte `0xE9` here");
        assert!(d.render().contains("x.toml:2:13"), "{}", d.render());
    }

    // Regression: the recursion limit, which TOML reports without a span, pointed at 1:1.
    #[test]
    fn an_error_without_a_span_points_at_the_deepest_line() {
        let source = format!("name = \"x\"\n\n  {}b = 1\n", "a.".repeat(400));
        assert_eq!(deepest_nesting(&source), 14..14);
        assert_eq!(deepest_nesting(""), 0..0);
    }

    #[test]
    fn lists_read_naturally() {
        assert_eq!(quoted_list(&["a"]), "`a`");
        assert_eq!(quoted_list(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
