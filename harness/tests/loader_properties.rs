//! Properties of the loader and planner over hostile input, with proptest:
//!
//! - any bytes, and any mutation of a bundled scenario (a value of the wrong type, out of
//!   range, huge or empty; a key dropped, duplicated or misspelt), never panic and never
//!   hang;
//! - an input that is refused is refused with a position inside the file (what exit 2
//!   prints), and one that is accepted plans.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default, as CI runs it); run it long
//! locally with e.g. `PROPTEST_CASES=1000000 cargo test -p harness --release --test
//! loader_properties`. A failing case shrinks and is kept in `loader_properties.proptest-
//! regressions` beside this file.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use harness::errors::LoadError;
use harness::plan::{Selection, plan};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};

/// How long one load may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(5);

/// Values that break expectations: wrong types, out of range, huge, empty, odd.
const HOSTILE_VALUES: &[&str] = &[
    "\"\"",
    "0",
    "-1",
    "18446744073709551616",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "-inf",
    "true",
    "[]",
    "{}",
    "[[]]",
    "{ a = { b = { c = 1 } } }",
    "\"99999999999999h\"",
    "\"-5s\"",
    "\"1.5.5s\"",
    "\"/dev/zero\"",
    "\"../../../../etc/shadow\"",
    "\"$..[?(@\"",
    "\"(\"",
    "\"\\u0000\"",
    "1979-05-27T07:32:00Z",
    "'''multi\nline'''",
];

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Every bundled scenario file's text, with its folder (whose other files it may name).
fn bundled() -> &'static [(String, PathBuf)] {
    use std::sync::OnceLock;
    static FILES: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "toml")
                    && !matches!(
                        path.file_name().and_then(|n| n.to_str()),
                        Some("targets.toml" | "gates.toml" | "defaults.toml" | "drill.toml")
                    )
                {
                    out.push((std::fs::read_to_string(&path).unwrap(), dir.clone()));
                }
            }
        }
        out.sort();
        out
    })
}

/// One edit of a scenario's text, at line `line` (modulo the file's lines).
#[derive(Debug, Clone)]
enum Mutation {
    /// The value of a `key = value` line becomes another.
    Value(usize, &'static str),
    /// The line goes.
    Drop(usize),
    /// The line appears twice.
    Duplicate(usize),
    /// Two adjacent characters of the line's key swap places.
    Misspell(usize, usize),
    /// The text is cut at a byte.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), select(HOSTILE_VALUES)).prop_map(|(l, v)| Mutation::Value(l, v)),
        any::<usize>().prop_map(Mutation::Drop),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(l, c)| Mutation::Misspell(l, c)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return String::new();
    }
    let n = lines.len();
    match *m {
        Mutation::Value(l, v) => {
            let line = &mut lines[l % n];
            if let Some((key, _)) = line.split_once(" = ") {
                *line = format!("{key} = {v}");
            }
        }
        Mutation::Drop(l) => {
            lines.remove(l % n);
        }
        Mutation::Duplicate(l) => {
            let line = lines[l % n].clone();
            lines.insert(l % n, line);
        }
        Mutation::Misspell(l, c) => {
            let line = &mut lines[l % n];
            let key_len = line.find(" = ").unwrap_or(0);
            let chars: Vec<char> = line.chars().collect();
            if key_len >= 2 && chars.len() > key_len {
                let i = c % (key_len - 1);
                let mut chars = chars;
                chars.swap(i, i + 1);
                *line = chars.into_iter().collect();
            }
        }
        Mutation::Truncate(at) => {
            let joined = lines.join("\n");
            let mut cut = at % (joined.len() + 1);
            while !joined.is_char_boundary(cut) {
                cut -= 1;
            }
            return joined[..cut].to_string();
        }
    }
    lines.join("\n") + "\n"
}

/// Plans `bytes` as a scenario file in a fresh folder, on a thread that must finish
/// within [`HANG`]; panics (a failed property) on a panic or a hang.
fn plan_bytes(
    bytes: Vec<u8>,
    beside: Option<&Path>,
) -> (PathBuf, Result<(), Vec<LoadError>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(from) = beside {
        copy_data_files(from, dir.path());
    }
    let file = dir.path().join("s.toml");
    std::fs::write(&file, &bytes).unwrap();
    let selection = Selection {
        paths: vec![file.clone()],
        ..Selection::default()
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| plan(&selection, 1).map(|_| ()));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(HANG) {
        Ok(Ok(result)) => (file, result, dir),
        Ok(Err(_)) => panic!(
            "the loader panicked on {:?}",
            String::from_utf8_lossy(&bytes)
        ),
        Err(_) => panic!("the loader hung on {:?}", String::from_utf8_lossy(&bytes)),
    }
}

/// The files other than scenarios under `from` (reply files, input files), copied to `to`.
fn copy_data_files(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_data_files(&path, &target);
        } else if path.extension().is_none_or(|e| e != "toml") {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A refusal must point inside the file: a diagnostic whose line is one of its lines.
fn positioned(file: &Path, bytes: &[u8], errors: &[LoadError]) -> Result<(), TestCaseError> {
    let lines = bytes.split(|&b| b == b'\n').count().max(1);
    for e in errors {
        match e {
            LoadError::Invalid(d) => {
                let (line, column) = d.line_column();
                prop_assert!(
                    (1..=lines).contains(&line) && column >= 1,
                    "{line}:{column} is outside the file's {lines} lines:\n{}",
                    d.render()
                );
            }
            other => {
                return Err(TestCaseError::fail(format!(
                    "refused without a position: {}\nin {}:\n{}",
                    harness::console::render_load_error(other),
                    file.display(),
                    String::from_utf8_lossy(bytes)
                )));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_are_refused_with_a_position_or_planned(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (file, result, _dir) = plan_bytes(bytes.clone(), None);
        if let Err(errors) = result {
            positioned(&file, &bytes, &errors)?;
        }
    }

    #[test]
    fn mutated_bundled_scenarios_are_refused_with_a_position_or_planned(
        index in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let files = bundled();
        let (original, folder) = &files[index % files.len()];
        let mut text = original.clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        let (file, result, _dir) = plan_bytes(text.clone().into_bytes(), Some(folder));
        if let Err(errors) = result {
            positioned(&file, text.as_bytes(), &errors)?;
        }
    }
}
