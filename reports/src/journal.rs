//! Per-scenario journals: `journal/<name>.json`, what one scenario's stubs saw and served,
//! with the seed that replays it. The file for `refpipe/chaos/retry.toml` is
//! `journal/refpipe__chaos__retry.json`.

use serde::Serialize;

use crate::json::SCHEMA_VERSION;
use crate::model::{Failure, JournalEntry, Outcome, ScenarioResult};

/// The longest file stem we make, in bytes; file systems allow 255 and a suffix follows.
const MAX_STEM: usize = 200;

#[derive(Serialize)]
struct ScenarioJournal<'a> {
    schema_version: u32,
    name: &'a str,
    path: &'a str,
    target: &'a str,
    seed: u64,
    outcome: Outcome,
    journal: &'a [JournalEntry],
    failures: &'a [Failure],
}

/// The journal document for one scenario, pretty JSON ending with a newline. Strings are
/// kept as they are, as in `results.json`.
pub(crate) fn render(s: &ScenarioResult) -> String {
    let doc = ScenarioJournal {
        schema_version: SCHEMA_VERSION,
        name: &s.name,
        path: &s.path,
        target: &s.target,
        seed: s.seed,
        outcome: s.outcome,
        journal: &s.journal,
        failures: &s.failures,
    };
    let mut json = serde_json::to_string_pretty(&doc)
        .expect("a journal has only string keys, so it always serializes");
    json.push('\n');
    json
}

/// The file stem for a scenario path: `.toml` stripped, `/` replaced by `__`, and any
/// character a file system might refuse (`\ : * ? " < > |`, controls) replaced by `_`.
/// Never empty and never longer than [`MAX_STEM`] bytes. Distinct paths can still meet
/// (`a/b.toml` and `a__b.toml`); the caller makes the final names unique.
pub(crate) fn file_stem(path: &str) -> String {
    // A matrix case's id is `file.toml[k=v,…]`: its journal is `file[k=v,…].json`.
    let path = path.replacen(".toml[", "[", 1);
    let path = path.strip_suffix(".toml").unwrap_or(&path);
    let mut stem = String::with_capacity(path.len());
    for c in path.chars() {
        let replacement = match c {
            '/' => "__",
            '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => "_",
            c if c.is_control() => "_",
            _ => {
                if stem.len() + c.len_utf8() > MAX_STEM {
                    break;
                }
                stem.push(c);
                continue;
            }
        };
        if stem.len() + replacement.len() > MAX_STEM {
            break;
        }
        stem.push_str(replacement);
    }
    if stem.is_empty() || stem.chars().all(|c| c == '.') {
        stem.insert(0, '_');
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::scenario;

    #[test]
    fn stem_flattens_folders_and_drops_toml() {
        assert_eq!(
            file_stem("refpipe/chaos/retry.toml"),
            "refpipe__chaos__retry"
        );
        assert_eq!(file_stem("top.toml"), "top");
        assert_eq!(file_stem("notes.txt"), "notes.txt");
    }

    #[test]
    fn stem_is_a_plain_file_name_whatever_the_path() {
        assert_eq!(file_stem(""), "_");
        assert_eq!(file_stem(".toml"), "_");
        assert_eq!(file_stem(".."), "_..");
        assert_eq!(file_stem("../x.toml"), "..__x");
        assert_eq!(file_stem("a\\b:c*?\"<>|\u{0}\n.toml"), "a_b_c________");
        let long = "\u{e9}".repeat(300);
        let stem = file_stem(&long);
        assert!(stem.len() <= MAX_STEM && !stem.is_empty());
    }

    #[test]
    fn journal_has_seed_target_entries_and_failures() {
        let json = render(&scenario("a", Outcome::Passed));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for key in ["seed", "target", "journal", "failures", "path", "outcome"] {
            assert!(value.get(key).is_some(), "{key} missing in {json}");
        }
    }
}
