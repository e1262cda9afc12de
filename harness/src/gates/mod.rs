//! Quality gates: named checks over a whole run's results — a pass rate over a tag or
//! folder, a percentile of scenario durations, a budget on a number the targets report
//! (tokens, cost) — each with a target and a criticality. A critical gate that fails
//! fails the run; a non-critical one warns.
//!
//! Gates live in a `gates.toml` (by default the one in the scenario folder given on the
//! command line, e.g. `scenarios/gates.toml`; or `--gates FILE`). Without a gates file the
//! policy is the obvious one: every scenario must pass. A gates file keeps that policy as
//! an implied critical gate ([`IMPLIED_GATE`], shown in every report) unless one of its
//! `pass_rate` gates looks at all scenarios, or it says `every_scenario_must_pass = false`.
//!
//! ```toml
//! [[gate]]
//! name = "end-to-end success"
//! metric = "pass_rate"
//! select.tag = "integration"
//! target = ">= 80%"
//!
//! [[gate]]
//! name = "p95 scenario duration"
//! critical = false
//! metric = "duration"
//! percentile = 95
//! target = "< 5s"
//! ```
//!
//! Adding a metric: a variant of [`Metric`], its parsing in `RawGate`'s `TryFrom` (with
//! the unit its target takes), its measurement in `eval.rs`, a row in the README's gate
//! table, and a fixture in `tests/fixtures/gates/`.

mod eval;
mod model;

use std::path::{Path, PathBuf};

pub use eval::{evaluate, verdict_without_gates};
pub use model::{Aggregate, Gate, IMPLIED_GATE, Metric, Select};

use crate::diagnostic::Diagnostic;
use crate::errors::LoadError;

/// The file name looked for in a scenario folder.
pub const GATES_FILE: &str = "gates.toml";

/// Reads and validates a gates file.
pub fn load(path: &Path) -> Result<Vec<Gate>, LoadError> {
    let source = crate::source::read(path)?;
    let shown = path.display().to_string();
    let file: model::GatesFile = toml::from_str(&source)
        .map_err(|e| LoadError::Invalid(Box::new(Diagnostic::from_toml(&shown, &source, &e))))?;
    let mut seen = std::collections::HashSet::new();
    for gate in &file.gate {
        if !seen.insert(gate.name.as_str()) {
            let needle = format!("\"{}\"", gate.name);
            let start = source.rfind(&needle).unwrap_or(0);
            return Err(LoadError::Invalid(Box::new(Diagnostic {
                path: shown,
                span: start..start + needle.len(),
                source: source.clone(),
                message: format!("two gates are named `{}`", gate.name),
                label: "the second one".into(),
                help: Some("gate names identify gates in reports; make them unique".into()),
            })));
        }
    }
    Ok(file.into_gates())
}

/// The gates file for a run: `explicit` if given, else `gates.toml` in the first path
/// when it is a folder, else none.
pub fn find(explicit: Option<&Path>, paths: &[PathBuf]) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let first = paths.first()?;
    let candidate = first.join(GATES_FILE);
    (first.is_dir() && candidate.is_file()).then_some(candidate)
}
