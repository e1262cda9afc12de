//! A scenario's identity: its file, relative to the scenario root, and for a case of a
//! `[matrix]` the values that make the case. One type, so seeds, `--filter`, shards,
//! journal names, JUnit, `report merge` and baselines all see the same id.
//!
//! ```text
//! perf/sweep.toml[size=5,agents=planner+coder]
//! ```

use std::fmt;

/// The stable id of one scenario (one case of a matrix file).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScenarioId {
    /// `/`-separated, relative to the scenario root.
    file: String,
    /// The matrix values of this case, in the order the `[matrix]` declares them.
    case: Vec<(String, String)>,
}

impl ScenarioId {
    pub fn new(file: impl Into<String>, case: Vec<(String, String)>) -> Self {
        ScenarioId {
            file: file.into(),
            case,
        }
    }

    /// The file part.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The folder part of the file (`.` at the root): the scenario's suite in reports.
    pub fn suite(&self) -> &str {
        self.file.rsplit_once('/').map_or(".", |(folder, _)| folder)
    }

    /// `size=5,agents=planner+coder`, or None for a file without a matrix.
    pub fn case(&self) -> Option<String> {
        (!self.case.is_empty()).then(|| {
            self.case
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// FNV-1a of the id's text: stable across runs, builds and Rust versions (unlike the
    /// standard library's hasher), so shards and seeds derived from ids never move.
    pub fn stable_hash(&self) -> u64 {
        fnv1a(&self.to_string())
    }
}

pub(crate) fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    h
}

impl fmt::Display for ScenarioId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.case() {
            Some(case) => write!(f, "{}[{case}]", self.file),
            None => f.write_str(&self.file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_id_names_its_file_and_values() {
        let id = ScenarioId::new(
            "perf/sweep.toml",
            vec![
                ("size".into(), "5".into()),
                ("agents".into(), "planner+coder".into()),
            ],
        );
        assert_eq!(
            id.to_string(),
            "perf/sweep.toml[size=5,agents=planner+coder]"
        );
        assert_eq!(id.suite(), "perf");
        let plain = ScenarioId::new("a.toml", vec![]);
        assert_eq!((plain.to_string().as_str(), plain.suite()), ("a.toml", "."));
        // The hash is of the text, pinned so that shards never move between versions.
        assert_eq!(plain.stable_hash(), fnv1a("a.toml"));
        assert_eq!(fnv1a(""), 0xcbf29ce484222325);
    }
}
