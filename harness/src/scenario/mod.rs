//! Scenario files: discovery, loading with positioned diagnostics, and the validated model.
//!
//! A scenario is one TOML file (format reference: the README's "Scenario format"). Loading
//! reads it, deserializes it with unknown keys as errors, resolves reply bodies that live
//! in files next to it, and checks the JSONPath expressions, so that everything a run needs
//! is known to be valid before anything starts.

mod adversarial;
mod load;
mod model;
mod predicate;
mod serde_util;
mod thresholds;

use std::path::{Path, PathBuf};

pub use adversarial::{AdversarialSpec, Invariants, VariantKind, VaryTarget};
pub use load::{LoadModel, LoadSpec};

/// The hard bounds of any load: at most this many runs, for at most this long.
pub fn load_bounds() -> (u64, std::time::Duration) {
    (load::MAX_RUNS, load::MAX_DURATION)
}
pub use model::*;
pub use predicate::{Bound, Check, Predicate};
pub(crate) use serde_util::{deserialize_opt_duration, parse_duration};
pub use thresholds::{LatencyOf, Stat, Threshold, ThresholdMetric, Thresholds};

use crate::diagnostic::Diagnostic;
use crate::errors::LoadError;

/// Files in scenario folders that are not scenarios.
const NOT_SCENARIOS: &[&str] = &["targets.toml", "gates.toml", "drill.toml"];

/// A loaded, validated scenario.
#[derive(Debug)]
pub struct Scenario {
    /// The file as found on disk.
    pub file_path: PathBuf,
    /// Relative to the scenario root, `/`-separated: the scenario's id in reports.
    pub id: String,
    /// The folder part of `id` (`.` at the root).
    pub suite: String,
    pub spec: ScenarioFile,
    /// Compiled JSONPath expressions of `expect.output`, in the same order.
    pub output_paths: Vec<(String, serde_json_path::JsonPath, Predicate)>,
}

impl Scenario {
    pub fn target_name(&self) -> &str {
        self.spec
            .target
            .as_ref()
            .map_or("refpipe", |t| t.get_ref().as_str())
    }
}

/// Finds scenario files: each path is a file, or a folder searched recursively for
/// `*.toml` (sorted; `targets.toml`, `gates.toml` and `drill.toml` left out). Returns `(root, file)`
/// pairs, the root being what ids are relative to.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, LoadError> {
    let mut found = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            files.sort();
            found.extend(files.into_iter().map(|f| (path.clone(), f)));
        } else {
            let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
            found.push((root, path.clone()));
        }
    }
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let read_err = |source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml")
            && !path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| NOT_SCENARIOS.contains(&n))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads and validates one scenario file.
pub fn load(root: &Path, file: &Path) -> Result<Scenario, LoadError> {
    let shown = file.display().to_string();
    let source = crate::source::read(file)?;
    let mut spec: ScenarioFile = toml::from_str(&source)
        .map_err(|e| LoadError::Invalid(Box::new(Diagnostic::from_toml(&shown, &source, &e))))?;
    let at = |needle: &str, message: String, label: &str, help: Option<String>| {
        LoadError::Invalid(Box::new(Diagnostic {
            path: shown.clone(),
            span: find_span(&source, needle),
            source: source.clone(),
            message,
            label: label.to_string(),
            help,
        }))
    };

    let dir = file.parent().unwrap_or(Path::new("."));
    for rule in &mut spec.llm {
        for reply in &mut rule.reply.0 {
            resolve_llm_body(dir, &mut reply.body).map_err(|(name, e)| {
                at(
                    &name,
                    format!("cannot read reply file `{name}`: {e}"),
                    "referenced here",
                    Some("the path is relative to the scenario file".into()),
                )
            })?;
        }
    }
    for rules in spec.executor.values_mut() {
        for rule in rules {
            for reply in &mut rule.reply.0 {
                if let ExecBodySpec::JsonFile(name) = &reply.body {
                    let value = read_json(dir, name).map_err(|e| {
                        at(
                            name,
                            format!("cannot read reply file `{name}`: {e}"),
                            "referenced here",
                            Some("the path is relative to the scenario file".into()),
                        )
                    })?;
                    reply.body = ExecBodySpec::Json(value);
                }
            }
        }
    }

    if let Some(signal) = &spec.expect.signal
        && !model::SIGNALS.contains(&signal.as_str())
    {
        return Err(at(
            signal,
            format!("`signal = \"{signal}\"` is not a signal the harness knows"),
            "here",
            Some(format!(
                "use one of {}",
                crate::diagnostic::quoted_list(model::SIGNALS)
            )),
        ));
    }

    let mut output_paths = Vec::new();
    for (expr, pred) in &spec.expect.output {
        let path = serde_json_path::JsonPath::parse(expr).map_err(|e| {
            at(
                expr,
                format!("invalid JSONPath `{expr}`: {e}"),
                "in this key",
                Some("JSONPath starts with `$`, e.g. `output.\"$.critic.score\"`".into()),
            )
        })?;
        output_paths.push((expr.clone(), path, pred.clone()));
    }

    let id = file
        .strip_prefix(root)
        .unwrap_or(file)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let suite = match id.rsplit_once('/') {
        Some((folder, _)) => folder.to_string(),
        None => ".".to_string(),
    };
    Ok(Scenario {
        file_path: file.to_path_buf(),
        id,
        suite,
        spec,
        output_paths,
    })
}

fn resolve_llm_body(dir: &Path, body: &mut LlmBodySpec) -> Result<(), (String, String)> {
    match body {
        LlmBodySpec::JsonFile(name) => {
            let value = read_json(dir, name).map_err(|e| (name.clone(), e))?;
            *body = LlmBodySpec::Json(value);
        }
        LlmBodySpec::TextFile(name) => {
            let text = std::fs::read_to_string(dir.join(&*name))
                .map_err(|e| (name.clone(), e.to_string()))?;
            *body = LlmBodySpec::Text(text);
        }
        _ => {}
    }
    Ok(())
}

fn read_json(dir: &Path, name: &str) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))
}

/// The span of the first quoted occurrence of `needle` (the key or value the user wrote).
fn find_span(source: &str, needle: &str) -> std::ops::Range<usize> {
    let quoted = format!("\"{needle}\"");
    source
        .find(&quoted)
        .map(|i| i..i + quoted.len())
        .or_else(|| source.find(needle).map(|i| i..i + needle.len()))
        .unwrap_or(0..0)
}
