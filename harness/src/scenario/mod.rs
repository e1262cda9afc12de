//! Scenario files: discovery, loading with positioned diagnostics, and the validated model.
//!
//! A scenario is one TOML file (format reference: the README's "Scenario format"). Loading
//! reads it, deserializes it with unknown keys as errors, resolves reply bodies that live
//! in files next to it, and checks the JSONPath expressions, so that everything a run needs
//! is known to be valid before anything starts.
//!
//! ```text
//! file ─▶ [matrix] cases (matrix.rs) ─▶ {matrix.NAME} filled in the TOML text (template.rs,
//!         positions kept) ─▶ ScenarioFile ─▶ reply and input files (files.rs)
//!      ─▶ defaults.toml of its folder and above (defaults.rs) ─▶ Scenario, id `file.toml[k=v]`
//! ```

mod adversarial;
mod defaults;
mod files;
mod id;
mod load;
mod matrix;
mod model;
mod predicate;
pub(crate) mod serde_util;
mod service;
mod steps;
mod thresholds;

use std::path::{Path, PathBuf};

pub use adversarial::{AdversarialSpec, Invariants, VariantKind, VaryTarget};
pub use defaults::{DEFAULTS_FILE, DefaultsFile};
pub use files::MAX_FILE_BYTES;
pub use id::ScenarioId;
pub(crate) use id::fnv1a;
pub use load::{LoadModel, LoadSpec};
pub use matrix::MAX_CASES;
pub use service::{DEFAULT_READY_TIMEOUT, Ready, ServiceSpec};
pub use steps::{PollSpec, StepSpec};

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
use crate::template::SourceMap;

/// Files in scenario folders that are not scenarios.
const NOT_SCENARIOS: &[&str] = &[
    "targets.toml",
    "gates.toml",
    "drill.toml",
    defaults::DEFAULTS_FILE,
];

/// A loaded, validated scenario (one case of a matrix file).
#[derive(Debug)]
pub struct Scenario {
    /// The file as found on disk (as the user named it).
    pub file_path: PathBuf,
    /// The file's folder, absolute: where targets, defaults and input files are found
    /// from, whatever the working directory.
    pub dir: PathBuf,
    /// The scenario's id in reports, seeds, filters and shards.
    pub id: ScenarioId,
    pub spec: ScenarioFile,
    /// Compiled JSONPath expressions of `expect.output`, in the same order.
    pub output_paths: Vec<(String, serde_json_path::JsonPath, Predicate)>,
}

impl Scenario {
    /// The target named by the scenario or its defaults (the plan fills in the one it
    /// resolved); `refpipe` when none is.
    pub fn target_name(&self) -> &str {
        self.spec
            .target
            .as_ref()
            .map_or("refpipe", |t| t.get_ref().as_str())
    }

    /// The folder part of the id (`.` at the root).
    pub fn suite(&self) -> &str {
        self.id.suite()
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

/// Reads and validates one scenario file: one scenario, or one per case of its `[matrix]`.
pub fn load(root: &Path, file: &Path) -> Result<Vec<Scenario>, LoadError> {
    let shown = file.display().to_string();
    let read_err = |source| LoadError::Read {
        path: file.to_path_buf(),
        source,
    };
    let source = crate::source::read(file)?;
    let abs = file.canonicalize().map_err(read_err)?;
    let dir = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let file_id = id_of(root, &abs);
    let invalid = |span: std::ops::Range<usize>, message: String, help: Option<String>| {
        LoadError::Invalid(Box::new(Diagnostic {
            path: shown.clone(),
            source: source.clone(),
            span,
            message,
            label: "here".into(),
            help,
        }))
    };
    let Some(cases) = matrix::cases(&source).map_err(|e| invalid(e.span, e.message, e.help))?
    else {
        let id = ScenarioId::new(file_id, Vec::new());
        let one = build(
            &shown,
            &source,
            &source,
            &SourceMap::default(),
            file,
            &dir,
            id,
        )?;
        return Ok(vec![one]);
    };
    let mut out = Vec::with_capacity(cases.len());
    for case in cases {
        let (rendered, map) = crate::template::render_toml(&source, &case.values).map_err(|e| {
            invalid(
                e.at,
                format!("`{{matrix.{}}}` names no dimension of the matrix", e.name),
                Some(format!(
                    "dimensions: {}",
                    case.values
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            )
        })?;
        let id = ScenarioId::new(file_id.clone(), case.ordered);
        out.push(build(&shown, &source, &rendered, &map, file, &dir, id)?);
    }
    // Cases whose names do not tell them apart are told apart by their values.
    let mut names: Vec<&str> = out.iter().map(|s| s.spec.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() < out.len() {
        for s in &mut out {
            if let Some(case) = s.id.case() {
                s.spec.name = format!("{} [{case}]", s.spec.name);
            }
        }
    }
    Ok(out)
}

/// Reads a file that must make exactly one scenario (one without a `[matrix]`).
pub fn load_one(root: &Path, file: &Path) -> Result<Scenario, LoadError> {
    let mut all = load(root, file)?;
    if all.len() == 1 {
        return Ok(all.remove(0));
    }
    Err(LoadError::Read {
        path: file.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "it makes {} scenarios (a `[matrix]`), and one is needed here",
                all.len()
            ),
        ),
    })
}

/// `file` relative to `root`, `/`-separated (both made absolute first, so the id does not
/// depend on the working directory).
fn id_of(root: &Path, abs_file: &Path) -> String {
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    abs_file
        .strip_prefix(&root)
        .unwrap_or(abs_file)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// One scenario from the (rendered) text of its file.
fn build(
    shown: &str,
    original: &str,
    rendered: &str,
    map: &SourceMap,
    file: &Path,
    dir: &Path,
    id: ScenarioId,
) -> Result<Scenario, LoadError> {
    let in_case = || {
        id.case()
            .map(|c| format!(" (in matrix case `{c}`)"))
            .unwrap_or_default()
    };
    let mut spec: ScenarioFile = toml::from_str(rendered).map_err(|e| {
        let mut d = Diagnostic::from_toml(shown, rendered, &e);
        d.span = map.original_span(&d.span);
        d.source = original.to_string();
        d.message.push_str(&in_case());
        LoadError::Invalid(Box::new(d))
    })?;
    let at = |needle: &str, message: String, label: &str, help: Option<String>| {
        LoadError::Invalid(Box::new(Diagnostic {
            path: shown.to_string(),
            span: find_span(original, needle),
            source: original.to_string(),
            message: format!("{message}{}", in_case()),
            label: label.to_string(),
            help,
        }))
    };

    resolve_reply_files(dir, &mut spec.llm, &mut spec.executor, shown, original)?;
    read_inputs(dir, &mut spec, &at)?;
    check_expect(&spec.expect, shown, original)?;
    for step in &spec.step {
        if let Some(both) = step.conflicting_bodies() {
            return Err(at(
                &step.request,
                format!(
                    "the step `{}` gives {both}: a request has one body",
                    step.request
                ),
                "this step",
                Some("keep one of `input = true`, `json = { … }` and `body = \"…\"`".into()),
            ));
        }
        for expr in step.json_paths() {
            serde_json_path::JsonPath::parse(expr).map_err(|e| {
                at(
                    expr,
                    format!("invalid JSONPath `{expr}` in a step: {e}"),
                    "here",
                    Some("JSONPath starts with `$`, e.g. `\"$.id\"`".into()),
                )
            })?;
        }
    }
    for defaults_file in defaults::chain(dir) {
        defaults::apply(&mut spec, defaults::load(&defaults_file)?);
    }
    service::check(&mut spec, dir).map_err(|p| at(&p.needle, p.message, "here", p.help))?;

    let mut output_paths = Vec::new();
    for (expr, pred) in &spec.expect.output {
        // Checked above, or in the defaults file that gave it.
        let path = serde_json_path::JsonPath::parse(expr).map_err(|e| {
            at(
                expr,
                format!("invalid JSONPath `{expr}`: {e}"),
                "in this key",
                None,
            )
        })?;
        output_paths.push((expr.clone(), path, pred.clone()));
    }
    Ok(Scenario {
        file_path: file.to_path_buf(),
        dir: dir.to_path_buf(),
        id,
        spec,
        output_paths,
    })
}

/// Builds the error at the first occurrence of a text: (needle, message, label, help).
type PositionedError<'a> = dyn Fn(&str, String, &str, Option<String>) -> LoadError + 'a;

/// `input_file`, then `[input_files]`, then `[input]`: later keys win.
fn read_inputs(
    dir: &Path,
    spec: &mut ScenarioFile,
    at: &PositionedError<'_>,
) -> Result<(), LoadError> {
    if spec.input_file.is_none() && spec.input_files.is_empty() {
        return Ok(());
    }
    let refused = |name: &str, e: String| {
        at(
            name,
            format!("cannot use input file `{name}`: {e}"),
            "referenced here",
            Some(format!(
                "input files are regular files of at most {MAX_FILE_BYTES} bytes in the scenario's folder or below; the path is relative to the scenario file"
            )),
        )
    };
    let mut input = serde_json::Map::new();
    if let Some(name) = &spec.input_file {
        match files::read_json(dir, name).map_err(|e| refused(name, e))? {
            serde_json::Value::Object(map) => input = map,
            other => {
                return Err(refused(
                    name,
                    format!("its JSON is not an object (found `{}`)", type_name(&other)),
                ));
            }
        }
    }
    for (key, name) in &spec.input_files {
        let text = files::read_text(dir, name).map_err(|e| refused(name, e))?;
        input.insert(key.clone(), serde_json::Value::String(text));
    }
    input.extend(spec.input.take().unwrap_or_default());
    spec.input = Some(input);
    Ok(())
}

fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Replaces `json_file` and `text_file` reply bodies by the files' contents (relative to
/// `dir`, the folder of the file that names them, and inside it).
pub(crate) fn resolve_reply_files(
    dir: &Path,
    llm: &mut [LlmRuleSpec],
    executor: &mut std::collections::BTreeMap<String, Vec<ExecRuleSpec>>,
    shown: &str,
    source: &str,
) -> Result<(), LoadError> {
    let at = |name: &str, e: String| {
        LoadError::Invalid(Box::new(Diagnostic {
            path: shown.to_string(),
            span: find_span(source, name),
            source: source.to_string(),
            message: format!("cannot read reply file `{name}`: {e}"),
            label: "referenced here".into(),
            help: Some("the path is relative to the scenario file".into()),
        }))
    };
    for rule in llm {
        for reply in &mut rule.reply.0 {
            match &reply.body {
                LlmBodySpec::JsonFile(name) => {
                    let value = files::read_json(dir, name).map_err(|e| at(name, e))?;
                    reply.body = LlmBodySpec::Json(value);
                }
                LlmBodySpec::TextFile(name) => {
                    let text = files::read_text(dir, name).map_err(|e| at(name, e))?;
                    reply.body = LlmBodySpec::Text(text);
                }
                _ => {}
            }
        }
    }
    for rules in executor.values_mut() {
        for rule in rules {
            for reply in &mut rule.reply.0 {
                if let ExecBodySpec::JsonFile(name) = &reply.body {
                    let value = files::read_json(dir, name).map_err(|e| at(name, e))?;
                    reply.body = ExecBodySpec::Json(value);
                }
            }
        }
    }
    Ok(())
}

/// Checks what `[expect]` holds that serde could not: the signal name, the JSONPaths.
pub(crate) fn check_expect(
    expect: &ExpectSpec,
    shown: &str,
    source: &str,
) -> Result<(), LoadError> {
    let at = |needle: &str, message: String, label: &str, help: Option<String>| {
        LoadError::Invalid(Box::new(Diagnostic {
            path: shown.to_string(),
            span: find_span(source, needle),
            source: source.to_string(),
            message,
            label: label.to_string(),
            help,
        }))
    };
    if let Some(signal) = &expect.signal
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
    for expr in expect.output.keys() {
        serde_json_path::JsonPath::parse(expr).map_err(|e| {
            at(
                expr,
                format!("invalid JSONPath `{expr}`: {e}"),
                "in this key",
                Some("JSONPath starts with `$`, e.g. `output.\"$.critic.score\"`".into()),
            )
        })?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_nearest_defaults_win_and_the_scenario_wins_over_all() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "defaults.toml",
            "target = \"far\"\ntimeout = \"9s\"\ntags = [\"far\"]\nenv = { A = \"far\", B = \"far\" }\n\
             [[llm]]\nwhen.agent = \"critic\"\nreply = { text = \"far\" }\n\
             [expect]\nstatus = \"far\"\nexit_code = 3\n",
        );
        write(
            root.path(),
            "sub/defaults.toml",
            "timeout = \"5s\"\ntags = [\"near\"]\nenv = { A = \"near\" }\n\
             [[llm]]\nwhen.agent = \"critic\"\nreply = { text = \"near\" }\n",
        );
        let file = write(
            root.path(),
            "sub/s.toml",
            "name = \"s\"\ntags = [\"own\"]\n[expect]\nstatus = \"own\"\n\
             [[llm]]\nwhen.agent = \"critic\"\nreply = { text = \"own\" }\n",
        );
        let [s] = load(root.path(), &file).unwrap().try_into().unwrap();
        assert_eq!(s.target_name(), "far");
        assert_eq!(s.spec.timeout, Some(std::time::Duration::from_secs(5)));
        assert_eq!(s.spec.tags, ["own", "near", "far"]);
        assert_eq!(
            (s.spec.env["A"].as_str(), s.spec.env["B"].as_str()),
            ("near", "far")
        );
        assert_eq!(s.spec.expect.status.as_deref(), Some("own"));
        assert_eq!(s.spec.expect.exit_code, Some(3));
        let replies: Vec<String> = s
            .spec
            .llm
            .iter()
            .map(|r| match &r.reply.0[0].body {
                LlmBodySpec::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            replies,
            ["own", "near", "far"],
            "own rules first, nearest next"
        );
        assert_eq!(s.id.to_string(), "sub/s.toml");
    }

    #[test]
    fn a_whole_placeholder_is_typed_where_values_are_and_text_where_text_is() {
        let root = tempfile::tempdir().unwrap();
        let file = write(
            root.path(),
            "n.toml",
            "name = \"{matrix.n}\"\ntags = [\"{matrix.n}\"]\nenv = { N = \"{matrix.n}\" }\n\
             [matrix]\nn = [5]\n[input]\nn = \"{matrix.n}\"\n",
        );
        let [s] = load(root.path(), &file).unwrap().try_into().unwrap();
        assert_eq!((s.spec.name.as_str(), s.spec.tags[0].as_str()), ("5", "5"));
        assert_eq!(s.spec.env["N"], "5");
        assert_eq!(s.spec.input.unwrap()["n"], 5);
        assert_eq!(s.id.to_string(), "n.toml[n=5]");
    }

    #[test]
    fn matrix_values_keep_their_text_through_toml_escapes() {
        let root = tempfile::tempdir().unwrap();
        let file = write(
            root.path(),
            "m.toml",
            "name = \"m {matrix.v}\"\n[matrix]\nv = ['say \"hi\"', 'back\\slash', \"tab\\tand\\nnewline\", 'ünï']\n\
             [input]\nwhole = \"{matrix.v}\"\nmixed = \"<{matrix.v}>\"\nlit = '{matrix.v}'\n",
        );
        let cases = load(root.path(), &file).unwrap();
        assert_eq!(cases.len(), 4);
        for (s, v) in cases
            .iter()
            .zip(["say \"hi\"", "back\\slash", "tab\tand\nnewline", "ünï"])
        {
            let input = s.spec.input.as_ref().unwrap();
            assert_eq!(input["whole"], v);
            assert_eq!(input["mixed"], format!("<{v}>"));
            assert_eq!(s.spec.name, format!("m {v}"));
            if !v.contains('\n') {
                assert_eq!(input["lit"], v, "a literal string takes the text as is");
            }
        }
    }
}
