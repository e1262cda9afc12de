//! Where a key or a value is in a TOML file the user wrote, from the TOML parser's own
//! spans rather than a search of the text: what the checks after parsing point at.
//!
//! ```text
//! [[llm]]                                  llm[0].reply.json_file
//! reply = { json_file = "gone.json" }  ─▶  the span of "gone.json", even when the same
//!                                          text appears earlier in the file
//! ```

use std::ops::Range;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a path into the file: a key of a table, or an index into an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// A parsed file with the span of every key and value.
pub(crate) struct Spans<'i> {
    root: Spanned<DeTable<'i>>,
}

impl<'i> Spans<'i> {
    /// `None` when the file does not parse (then the parse error has its own span).
    pub(crate) fn parse(source: &'i str) -> Option<Spans<'i>> {
        DeTable::parse(source).ok().map(|root| Spans { root })
    }

    /// The span of the value at `path`. An index into something that is not an array is
    /// the thing itself when the index is 0 (a field that takes one table or a list of
    /// them, written as one). `None` when the path is not in the file.
    pub(crate) fn value(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        self.entry(path).map(|(_, v)| v)
    }

    /// The span of the last key of `path` as written (for a check on the key itself,
    /// e.g. a JSONPath written as a key), else of its value.
    pub(crate) fn key(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        self.entry(path).map(|(k, v)| k.unwrap_or(v))
    }

    /// Within the value at `path`, the entries of an array whose table has `key` equal to
    /// the string `value`: the span of that string (for values a merge may have moved).
    pub(crate) fn string_in_array(
        &self,
        path: &[Seg<'_>],
        key: &str,
        value: &str,
    ) -> Option<Range<usize>> {
        let (_, array) = walk(&self.root, path)?;
        let DeValue::Array(items) = array.get_ref() else {
            return None;
        };
        items.iter().find_map(|item| {
            let DeValue::Table(t) = item.get_ref() else {
                return None;
            };
            let (_, v) = get(t, key)?;
            matches!(v.get_ref(), DeValue::String(s) if s == value).then(|| v.span())
        })
    }

    /// Narrows `span` (an error's span: a table, as serde reports errors raised while
    /// building a table) to the value of `key` inside that table or a table nested in
    /// it. `None` when no table has that span or no such key is in it.
    pub(crate) fn narrow_to_key(&self, span: &Range<usize>, key: &str) -> Option<Range<usize>> {
        let table = find_table(&self.root, span)?;
        find_key(table, key)
    }

    /// Narrows `span` to a string value equal to `text` inside the table with that span.
    pub(crate) fn narrow_to_string(&self, span: &Range<usize>, text: &str) -> Option<Range<usize>> {
        let table = find_table(&self.root, span)?;
        find_string(table, text)
    }

    fn entry(&self, path: &[Seg<'_>]) -> Option<(Option<Range<usize>>, Range<usize>)> {
        walk(&self.root, path).map(|(k, v)| (k, v.span()))
    }
}

/// The value at `path` and the span of the key that leads to it (if the last step is a
/// key).
fn walk<'a, 'i>(
    root: &'a Spanned<DeTable<'i>>,
    path: &[Seg<'_>],
) -> Option<(Option<Range<usize>>, &'a Spanned<DeValue<'i>>)> {
    let mut table: &DeTable<'i> = root.get_ref();
    let mut current: Option<(Option<Range<usize>>, &Spanned<DeValue<'i>>)> = None;
    for seg in path {
        current = Some(match (seg, current) {
            (Seg::Key(k), None) => {
                let (key, value) = get(table, k)?;
                (Some(key), value)
            }
            (Seg::Key(k), Some((_, v))) => {
                let DeValue::Table(t) = v.get_ref() else {
                    return None;
                };
                table = t;
                let (key, value) = get(table, k)?;
                (Some(key), value)
            }
            (Seg::Index(i), Some((key, v))) => match v.get_ref() {
                DeValue::Array(items) => (None, items.get(*i)?),
                _ if *i == 0 => (key, v),
                _ => return None,
            },
            (Seg::Index(_), None) => return None,
        });
    }
    current
}

fn get<'a, 'i>(
    table: &'a DeTable<'i>,
    key: &str,
) -> Option<(Range<usize>, &'a Spanned<DeValue<'i>>)> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(k, v)| (k.span(), v))
}

/// The table (or inline table) whose span is exactly `span`, anywhere in the file.
fn find_table<'a, 'i>(
    root: &'a Spanned<DeTable<'i>>,
    span: &Range<usize>,
) -> Option<&'a DeTable<'i>> {
    if root.span() == *span {
        return Some(root.get_ref());
    }
    root.get_ref().values().find_map(|v| find_table_in(v, span))
}

fn find_table_in<'a, 'i>(
    v: &'a Spanned<DeValue<'i>>,
    span: &Range<usize>,
) -> Option<&'a DeTable<'i>> {
    match v.get_ref() {
        DeValue::Table(t) if v.span() == *span => Some(t),
        DeValue::Table(t) => t.values().find_map(|v| find_table_in(v, span)),
        DeValue::Array(items) => items.iter().find_map(|v| find_table_in(v, span)),
        _ => None,
    }
}

/// The value of `key` in `table`, else in the tables nested in it (depth first).
fn find_key(table: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    if let Some((_, v)) = get(table, key) {
        return Some(v.span());
    }
    table.values().find_map(|v| match v.get_ref() {
        DeValue::Table(t) => find_key(t, key),
        _ => None,
    })
}

fn find_string(table: &DeTable<'_>, text: &str) -> Option<Range<usize>> {
    table.values().find_map(|v| match v.get_ref() {
        DeValue::String(s) if s == text => Some(v.span()),
        DeValue::Table(t) => find_string(t, text),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"name = "reads gone.json"

[input]
prompt = "gone.json"

[[llm]]
reply = { text = "ok" }

[[llm]]
reply = [{ text = "a" }, { json_file = "gone.json" }]

[expect.output]
"$.a" = 1
"#;

    fn text(range: Option<Range<usize>>) -> &'static str {
        &FILE[range.unwrap()]
    }

    #[test]
    fn a_value_is_found_by_its_path_not_by_its_text() {
        let spans = Spans::parse(FILE).unwrap();
        let path = [
            Seg::Key("llm"),
            Seg::Index(1),
            Seg::Key("reply"),
            Seg::Index(1),
            Seg::Key("json_file"),
        ];
        let at = spans.value(&path).unwrap();
        assert_eq!(&FILE[at.clone()], "\"gone.json\"");
        // The first `"gone.json"` in the text is the prompt's, on line 4.
        assert_eq!(FILE[..at.start].matches('\n').count() + 1, 10);
    }

    #[test]
    fn one_table_is_index_0_of_a_list_written_as_one() {
        let spans = Spans::parse(FILE).unwrap();
        let one = [
            Seg::Key("llm"),
            Seg::Index(0),
            Seg::Key("reply"),
            Seg::Index(0),
        ];
        assert_eq!(text(spans.value(&one)), "{ text = \"ok\" }");
        let two = [
            Seg::Key("llm"),
            Seg::Index(0),
            Seg::Key("reply"),
            Seg::Index(1),
        ];
        assert_eq!(spans.value(&two), None);
    }

    #[test]
    fn keys_are_found_as_written() {
        let spans = Spans::parse(FILE).unwrap();
        let path = [Seg::Key("expect"), Seg::Key("output"), Seg::Key("$.a")];
        assert_eq!(text(spans.key(&path)), "\"$.a\"");
        assert_eq!(spans.key(&[Seg::Key("nothing")]), None);
    }

    #[test]
    fn an_error_at_a_table_narrows_to_the_key_it_names() {
        let source = "name = \"x\"\n\n[[process]]\nfault = \"cpu_hog\"\nthreads = 100000\n";
        let spans = Spans::parse(source).unwrap();
        let table = source.find("fault").unwrap()..source.len();
        let whole = spans.value(&[Seg::Key("process"), Seg::Index(0)]).unwrap();
        assert!(whole.start <= table.start, "{whole:?}");
        let at = spans.narrow_to_key(&whole, "threads").unwrap();
        assert_eq!(&source[at], "100000");
        assert_eq!(spans.narrow_to_key(&whole, "nothing"), None);
        let at = spans.narrow_to_string(&whole, "cpu_hog").unwrap();
        assert_eq!(&source[at], "\"cpu_hog\"");
    }
}
