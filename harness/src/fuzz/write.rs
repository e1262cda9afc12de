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
    let body = readable(&table);
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

/// The sections of a scenario file in the order people write them; others follow.
const SECTIONS: &[&str] = &[
    "env",
    "input",
    "llm",
    "executor",
    "chaos",
    "proxy",
    "process",
    "steady_state",
    "load",
    "thresholds",
];

/// `table` written as people write scenarios: top-level values first, then one section
/// per table (`[input]`, `[[llm]]`, `[[executor.NAME]]`, …, `[expect]` last), each entry
/// on one line with its value inline.
pub(crate) fn readable(table: &toml::Table) -> String {
    let is_section = |v: &toml::Value| match v {
        toml::Value::Table(_) => true,
        toml::Value::Array(items) => !items.is_empty() && items.iter().all(toml::Value::is_table),
        _ => false,
    };
    let mut out = String::new();
    for (k, v) in table.iter().filter(|(_, v)| !is_section(v)) {
        out.push_str(&format!("{} = {v}\n", key(k)));
    }
    let mut names: Vec<&String> = table
        .keys()
        .filter(|k| is_section(&table[k.as_str()]))
        .collect();
    let rank = |k: &str| match k {
        "expect" => SECTIONS.len() + 1,
        other => SECTIONS
            .iter()
            .position(|s| *s == other)
            .unwrap_or(SECTIONS.len()),
    };
    names.sort_by_key(|k| rank(k));
    for name in names {
        section(&mut out, &key(name), &table[name.as_str()]);
    }
    out
}

fn section(out: &mut String, path: &str, value: &toml::Value) {
    let entries = |out: &mut String, t: &toml::Table| {
        for (k, v) in t {
            out.push_str(&format!("{} = {v}\n", key(k)));
        }
    };
    match value {
        toml::Value::Array(items) => {
            for item in items {
                if let toml::Value::Table(t) = item {
                    out.push_str(&format!("\n[[{path}]]\n"));
                    entries(out, t);
                }
            }
        }
        // `executor`: a table of lists of rules, `[[executor.NAME]]` each.
        toml::Value::Table(t)
            if !t.is_empty()
                && t.values().all(|v| {
                    v.as_array()
                        .is_some_and(|a| !a.is_empty() && a.iter().all(toml::Value::is_table))
                }) =>
        {
            for (k, v) in t {
                section(out, &format!("{path}.{}", key(k)), v);
            }
        }
        toml::Value::Table(t) => {
            out.push_str(&format!("\n[{path}]\n"));
            entries(out, t);
        }
        _ => {}
    }
}

/// A key, bare when it can be, quoted otherwise.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml::Value::String(k.to_string()).to_string()
    }
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

/// The run's figures as Markdown, fit for a CI job summary: `fuzz/summary.md`.
pub(crate) fn markdown(summary: &serde_json::Value) -> String {
    let mut md = String::new();
    let found = &summary["found"];
    let verdict = if found.is_null() {
        "no violation"
    } else {
        "a violation"
    };
    md.push_str(&format!(
        "# harness fuzz: {verdict}\n\n`{}`, seed {}: {} cases ({} hostile, {} tolerable) in {:.1}s.\n",
        summary["scenario"].as_str().unwrap_or_default(),
        summary["seed"],
        summary["cases"],
        summary["hostile_cases"],
        summary["tolerable_cases"],
        summary["seconds"].as_f64().unwrap_or_default(),
    ));
    if !found.is_null() {
        let reply = found["minimal"]["reply"].as_str().unwrap_or_default();
        let fence = if reply.contains("```") { "~~~~" } else { "```" };
        md.push_str(&format!(
            "\n| | |\n|---|---|\n| invariant | {} |\n| case | {} ({}) |\n| varied | {} |\n| first | {} |\n| minimal | {} |\n| shrink steps | {} ({} runs) |\n| written | `{}` |\n\nThe minimal reply ({} characters):\n\n{fence}\n{reply}\n{fence}\n",
            cell(found["invariant"].as_str().unwrap_or_default()),
            found["case"],
            found["kind"].as_str().unwrap_or_default(),
            cell(found["varied"].as_str().unwrap_or_default()),
            cell(found["first"]["what"].as_str().unwrap_or_default()),
            cell(found["minimal"]["what"].as_str().unwrap_or_default()),
            found["shrink_steps"],
            found["shrink_runs"],
            found["written"].as_str().unwrap_or_default(),
            reply.chars().count(),
        ));
    }
    md
}

/// Text safe in a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Writes `text` to `path` atomically (a temporary file in the same folder, renamed).
pub(crate) fn atomically(path: &Path, text: &str) -> std::io::Result<PathBuf> {
    crate::source::refuse_non_regular(path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_markdown_summary_shows_the_minimal_reply() {
        let s = serde_json::json!({
            "scenario": "s.toml", "seed": 1, "cases": 19, "hostile_cases": 9,
            "tolerable_cases": 10, "seconds": 2.5,
            "found": {
                "invariant": "the target prints a valid output document", "case": 19,
                "kind": "hostile", "varied": "llm[1] (planner), reply 1",
                "first": {"what": "`subtasks` is {} | x"}, "minimal": {"what": "an empty object instead", "reply": "{}"},
                "shrink_steps": 7, "shrink_runs": 7, "written": "out/s.min.toml",
            },
        });
        let md = markdown(&s);
        assert!(md.starts_with("# harness fuzz: a violation\n"), "{md}");
        assert!(md.contains("| first | `subtasks` is {} \\| x |"), "{md}");
        assert!(md.contains("| shrink steps | 7 (7 runs) |"), "{md}");
        assert!(md.contains("(2 characters):\n\n```\n{}\n```\n"), "{md}");
        let quiet = markdown(
            &serde_json::json!({"scenario": "s.toml", "seed": 1, "cases": 5, "hostile_cases": 2, "tolerable_cases": 3, "seconds": 1.0, "found": null}),
        );
        assert!(quiet.starts_with("# harness fuzz: no violation"), "{quiet}");
    }

    #[test]
    fn a_readable_file_reads_back_the_same() {
        let text = r#"
            name = "n"
            tags = ["a"]
            seed = 3
            env = { K = "v" }
            [input]
            prompt = "p"
            [[llm]]
            when.agent = "planner"
            reply = { text = "```json\n{}\n```\u0000'\"" }
            [[llm]]
            reply = [{ json = { code = "a\nb", "odd key" = [1, { x = 2.5 }] } }, { error = { status = 529 } }]
            [[executor.sandbox]]
            reply = { json = { success = false }, status = 503, delay = "5ms" }
            [[chaos]]
            at = "llm"
            fault = { stream_cut_after = 2 }
            [expect]
            exit_code = 0
            output."$['status']" = { matches = "^(?:a|b)$" }
            llm_calls = { "*" = { le = 4 } }
        "#;
        let table: toml::Table = toml::from_str(text).unwrap();
        let written = readable(&table);
        let back: toml::Table =
            toml::from_str(&written).unwrap_or_else(|e| panic!("{e}\n{written}"));
        assert_eq!(back, table, "{written}");
        let order: Vec<usize> = [
            "name =",
            "[input]",
            "[[llm]]",
            "[[executor.sandbox]]",
            "[[chaos]]",
            "[expect]",
        ]
        .iter()
        .map(|s| written.find(s).unwrap_or_else(|| panic!("{s}\n{written}")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{written}");
    }
}
