//! What a fuzz run leaves behind: the minimal failing case as an ordinary scenario file,
//! and `fuzz.json`, the run's figures.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::invariants::Violation;
use super::strategies::{Case, Replacement};
use crate::scenario::VariantKind;

/// The minimal failing case and how it was found.
#[derive(Debug)]
pub(crate) struct Found<'a> {
    pub(crate) scenario_file: &'a Path,
    pub(crate) scenario_name: &'a str,
    pub(crate) tags: &'a [String],
    pub(crate) fuzz_seed: u64,
    pub(crate) scenario_seed: u64,
    /// 1-based, of `cases`.
    pub(crate) case_number: usize,
    pub(crate) cases: u32,
    pub(crate) first: &'a Case,
    pub(crate) minimal: &'a Case,
    pub(crate) place: String,
    pub(crate) violation: &'a Violation,
    pub(crate) shrink_steps: u32,
    pub(crate) shrink_runs: u32,
}

/// The reply a case sends, as people read it: the text, the tool call arguments, the
/// error status, the executor's body.
pub(crate) fn shown_reply(case: &Case) -> String {
    match &case.reply {
        Replacement::Original => "(the scripted reply)".into(),
        Replacement::Text { text, .. } => text.clone(),
        Replacement::ToolCalls(calls) => calls
            .iter()
            .map(|(_, args)| args.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        Replacement::Error { status, message } => format!("HTTP {status}: {message}"),
        Replacement::Executor {
            status,
            body,
            delay_ms,
        } => {
            let mut s = body.to_string();
            if *status != 200 {
                s = format!("HTTP {status}: {s}");
            }
            if *delay_ms > 0 {
                s.push_str(&format!(" after {delay_ms}ms"));
            }
            s
        }
    }
}

fn kind_name(kind: VariantKind) -> &'static str {
    match kind {
        VariantKind::Hostile => "hostile",
        VariantKind::Tolerable => "tolerable",
    }
}

/// The scenario file of the minimal case: `table` (the case, its `[expect]` chosen), named
/// and seeded, with a header saying how it was found and how to replay the search.
pub(crate) fn scenario_text(found: &Found, mut table: toml::Table) -> Result<String, String> {
    table.insert(
        "name".into(),
        format!("{} (minimal failing case)", found.scenario_name).into(),
    );
    table.insert(
        "description".into(),
        format!(
            "Found by `harness fuzz` (seed {}): {}. Breaks: {}.",
            found.fuzz_seed, found.place, found.violation.invariant
        )
        .into(),
    );
    let mut tags: Vec<toml::Value> = found.tags.iter().map(|t| t.as_str().into()).collect();
    tags.push("fuzz-regression".into());
    table.insert("tags".into(), toml::Value::Array(tags));
    table.insert(
        "seed".into(),
        toml::Value::Integer(found.scenario_seed as i64),
    );
    let body = toml::to_string(&table).map_err(|e| e.to_string())?;
    let comment = |s: &str| -> String { s.lines().map(|l| format!("# {l}\n")).collect() };
    let header = format!(
        "Minimal failing case found by `harness fuzz {}` (seed {}).\n\
         Case {} of {} ({}), shrunk in {} steps ({} runs).\n\
         Varied: {}: {}\n\
         Invariant: {}\n\
         Replay the search: harness fuzz {} --seed {}\n\
         Run this case: harness run <this file>",
        found.scenario_file.display(),
        found.fuzz_seed,
        found.case_number,
        found.cases,
        kind_name(found.minimal.kind),
        found.shrink_steps,
        found.shrink_runs,
        found.place,
        found.minimal.what,
        found.violation.invariant,
        found.scenario_file.display(),
        found.fuzz_seed,
    );
    Ok(format!("{}\n{body}", comment(&header)))
}

/// The run's figures, as `fuzz.json`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn summary(
    scenario: &Path,
    seed: u64,
    fingerprint: u64,
    tried: usize,
    hostile: usize,
    tolerable: usize,
    seconds: f64,
    found: Option<(&Found, &Path)>,
) -> serde_json::Value {
    json!({
        "scenario": scenario.display().to_string(),
        "seed": seed,
        "cases": tried,
        "cases_fingerprint": format!("{fingerprint:016x}"),
        "hostile_cases": hostile,
        "tolerable_cases": tolerable,
        "violations": usize::from(found.is_some()),
        "seconds": seconds,
        "found": found.map(|(f, file)| json!({
            "invariant": f.violation.invariant,
            "message": f.violation.message,
            "kind": kind_name(f.minimal.kind),
            "case": f.case_number,
            "varied": f.place,
            "first": {"what": f.first.what, "reply": shown_reply(f.first)},
            "minimal": {"what": f.minimal.what, "reply": shown_reply(f.minimal)},
            "shrink_steps": f.shrink_steps,
            "shrink_runs": f.shrink_runs,
            "written": file.display().to_string(),
        })),
    })
}

/// Writes `text` to `path` atomically (a temporary file in the same folder, renamed).
pub(crate) fn atomically(path: &Path, text: &str) -> std::io::Result<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(path.to_path_buf())
}
