//! Targets: the systems under test, and how a scenario reaches them.
//!
//! A target is defined in a `targets.toml` (looked up next to the scenario and in the
//! folders above it) or built in (`refpipe`, see `builtin.toml`). Three kinds, each one
//! file behind the seam in `session.rs`: `command` (a process per run: the stub URLs in
//! its environment, the scenario's `[input]` as JSON on its stdin, one JSON document on
//! its stdout), `http` (a service: submit and poll) and `worker` (a warm process per job
//! slot, one request per run).

mod command;
mod http;
pub(crate) mod session;
mod steps;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub(crate) use command::{Exit, RunOutcome};
pub use http::{DoneSpec, HttpSpec};
pub use session::RunContext;
pub(crate) use session::{RunSetup, Session};
pub(crate) use steps::FAILED as STEP_FAILED;
pub use worker::{Isolation, PYTHON_ADAPTER};

use crate::diagnostic::Diagnostic;
use crate::errors::{LoadError, RunError};

const BUILTIN: &str = include_str!("builtin.toml");

/// One target definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub kind: TargetKind,
    /// The executable: a bare name (next to the harness, then PATH) or a path relative to
    /// the targets file. Required for `command`; for `http`, the service to start.
    pub program: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// JSON pointer to the status in the output document.
    #[serde(default = "default_status")]
    pub status: String,
    #[serde(default)]
    pub agents: AgentsSpec,
    /// Environment for the target; `{llm}`, `{llm.NAME}`, `{executor.NAME}`, `{seed}` expand.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables the target inherits from the harness's environment: names, or prefixes
    /// ending in `*`. Nothing else leaks in, so a stray variable in a CI job cannot change
    /// what a scenario tests. By default, [`DEFAULT_INHERIT`].
    #[serde(default = "default_inherit")]
    pub inherit_env: Vec<String>,
    /// JSON pointers to the tokens and the cost a run reports in its output, for the
    /// `tokens_per_run` and `cost_per_run` metrics.
    #[serde(default)]
    pub tokens: Option<String>,
    #[serde(default)]
    pub cost: Option<String>,
    /// For `kind = "http"`: how to submit a run and poll it.
    #[serde(default)]
    pub http: Option<HttpSpec>,
    /// For `kind = "worker"`: the `module:function` the bundled Python adapter runs;
    /// without it, `program` speaks the worker protocol itself.
    #[serde(default)]
    pub entry: Option<String>,
    /// For `kind = "worker"`: a child forked per run (`fork`, the default) or one process
    /// running run after run (`reuse`).
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// The folder of the file that defined it (relative programs resolve from there).
    #[serde(skip)]
    pub defined_in: Option<PathBuf>,
}

/// What every target inherits unless its definition says otherwise: what a process needs
/// to find programs, its home, its locale and a scratch directory.
pub const DEFAULT_INHERIT: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_*", "TZ", "TMPDIR", "TERM",
];

fn default_inherit() -> Vec<String> {
    DEFAULT_INHERIT.iter().map(|s| s.to_string()).collect()
}

/// The harness's variables whose names `patterns` allow.
pub fn inherited_env(patterns: &[String]) -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| {
            patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == p,
            })
        })
        .collect()
}

fn default_status() -> String {
    "/status".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A process per run: input on stdin, the result document on stdout.
    Command,
    /// A service: submit a run over HTTP and poll it until it is done.
    Http,
    /// A warm process per job slot; each run is one request to it.
    Worker,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsSpec {
    pub header: Option<String>,
    pub system_prompt: Option<AgentPattern>,
}

/// `agents.system_prompt`: the regex as written, compiled once when the targets file is
/// read (every scenario of the target shares it), so a bad pattern is an error at its
/// place in the file before anything runs.
#[derive(Debug, Clone)]
pub struct AgentPattern(pub regex::Regex);

impl AgentPattern {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl<'de> Deserialize<'de> for AgentPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(d)?;
        regex::Regex::new(&pattern).map(AgentPattern).map_err(|e| {
            serde::de::Error::custom(format!(
                "`agents.system_prompt` is not a valid regex: {e} (hint: capture group 1 is the agent's name, e.g. `^You are the (\\w+) agent`)"
            ))
        })
    }
}

impl TargetSpec {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            TargetKind::Command => "command",
            TargetKind::Http => "http",
            TargetKind::Worker => "worker",
        }
    }
}

/// Target definitions by the file they came from, read once each.
#[derive(Debug, Default)]
pub struct Targets {
    files: HashMap<PathBuf, BTreeMap<String, TargetSpec>>,
}

impl Targets {
    /// The definition of `name` for a scenario in the folder `dir` (absolute): the nearest
    /// `targets.toml` that defines it, else the built-in one.
    pub fn resolve(&mut self, name: &str, dir: &Path) -> Result<TargetSpec, LoadError> {
        let mut known: Vec<String> = Vec::new();
        for candidate in targets_files(dir) {
            let defs = self.read(&candidate)?;
            if let Some(t) = defs.get(name) {
                return Ok(t.clone());
            }
            known.extend(defs.keys().cloned());
        }
        let builtin = builtin();
        if let Some(t) = builtin.get(name) {
            return Ok(t.clone());
        }
        known.extend(builtin.keys().cloned());
        known.sort();
        known.dedup();
        Err(LoadError::UnknownTarget {
            name: name.to_string(),
            scenario: dir.to_path_buf(),
            known: known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The target of a scenario that names none (nor do its defaults): the only target of
    /// the nearest `targets.toml`; `refpipe` only where no `targets.toml` applies.
    pub fn folder_default(
        &mut self,
        dir: &Path,
        scenario: &Path,
    ) -> Result<(String, TargetSpec), LoadError> {
        let Some(nearest) = targets_files(dir).next() else {
            let name = "refpipe".to_string();
            let t = self.resolve(&name, dir)?;
            return Ok((name, t));
        };
        let defs = self.read(&nearest)?;
        let mut names = defs.keys();
        match (names.next(), names.next()) {
            (Some(name), None) => Ok((name.clone(), defs[name].clone())),
            _ => Err(LoadError::NoDefaultTarget {
                scenario: scenario.to_path_buf(),
                targets: nearest.clone(),
                names: defs
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    fn read(&mut self, file: &Path) -> Result<&BTreeMap<String, TargetSpec>, LoadError> {
        if !self.files.contains_key(file) {
            let source = crate::source::read(file)?;
            let shown = file.display().to_string();
            let defs = parse(&source, &shown, file.parent())?;
            self.files.insert(file.to_path_buf(), defs);
        }
        Ok(&self.files[file])
    }
}

/// The `targets.toml` files in `dir` and the folders above it, nearest first.
fn targets_files(dir: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    dir.ancestors()
        .map(|d| d.join("targets.toml"))
        .filter(|f| f.is_file())
}

fn parse(
    source: &str,
    shown: &str,
    dir: Option<&Path>,
) -> Result<BTreeMap<String, TargetSpec>, LoadError> {
    let mut defs: BTreeMap<String, TargetSpec> = toml::from_str(source)
        .map_err(|e| LoadError::Invalid(Box::new(Diagnostic::from_toml(shown, source, &e))))?;
    for (name, def) in defs.iter_mut() {
        def.defined_in = dir.map(Path::to_path_buf);
        let worker_only = def.entry.is_some() || def.isolation.is_some();
        let problem = match (def.kind, &def.program, &def.http) {
            (TargetKind::Worker, None, _) => {
                Some("a `worker` target needs `program` (e.g. `python3`, with `entry`)")
            }
            (TargetKind::Worker, _, Some(_)) => {
                Some("`http` settings apply to `kind = \"http\"` targets only")
            }
            (TargetKind::Worker, _, _)
                if def.entry.as_deref().is_some_and(|e| {
                    !e.split_once(':')
                        .is_some_and(|(m, f)| !m.is_empty() && !f.is_empty())
                }) =>
            {
                Some("`entry` is `module:function`, e.g. `pypipe:main`")
            }
            (TargetKind::Command | TargetKind::Http, _, _) if worker_only => {
                Some("`entry` and `isolation` apply to `kind = \"worker\"` targets only")
            }
            (TargetKind::Command, None, _) => Some("a `command` target needs `program`"),
            (TargetKind::Command, _, Some(_)) => {
                Some("`http` settings apply to `kind = \"http\"` targets only")
            }
            (TargetKind::Http, _, None) => {
                Some("an `http` target needs an `[NAME.http]` table (submit, poll, done, result)")
            }
            (TargetKind::Http, None, Some(h)) if h.base_url.is_none() => {
                Some("an `http` target needs `program` (a service to start) or `http.base_url`")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            let needle = format!("[{name}]");
            let start = source.find(&needle).unwrap_or(0);
            return Err(LoadError::Invalid(Box::new(Diagnostic {
                path: shown.to_string(),
                source: source.to_string(),
                span: start..start + needle.len().min(source.len() - start),
                message: format!("target `{name}`: {problem}"),
                label: "this target".into(),
                help: None,
            })));
        }
    }
    Ok(defs)
}

/// The built-in targets, parsed once per process (every scenario without a
/// `targets.toml` resolves here).
fn builtin() -> &'static BTreeMap<String, TargetSpec> {
    static PARSED: std::sync::LazyLock<BTreeMap<String, TargetSpec>> =
        std::sync::LazyLock::new(|| {
            parse(BUILTIN, "builtin.toml", None)
                .expect("the built-in targets parse (a unit test checks)")
        });
    &PARSED
}

/// The URLs of a scenario's stubs, for expanding `{…}` in target environments.
pub struct StubUrls<'a> {
    pub llm: &'a (dyn Fn(&str) -> String + Sync),
    pub executors: &'a BTreeMap<String, String>,
    /// `name → 127.0.0.1:PORT` of the scenario's TCP fault proxies.
    pub proxies: &'a BTreeMap<String, String>,
    /// `name → 127.0.0.1:PORT` of the scenario's `[[service]]`s.
    pub services: &'a BTreeMap<String, String>,
    /// A directory of the scenario's own, removed when it ends (`{scratch}`).
    pub scratch: &'a str,
    pub seed: u64,
}

/// `http://127.0.0.1:PORT/NAME/v1` without its `/v1`.
fn root_of(base_url: String) -> String {
    match base_url.strip_suffix("/v1") {
        Some(root) => root.to_string(),
        None => base_url,
    }
}

/// Expands `{llm}`, `{llm.NAME}`, `{llm_root}`, `{llm_root.NAME}`, `{executor.NAME}`,
/// `{proxy.NAME}`, `{service.NAME}`, `{seed}`, `{scratch}` and `${VAR}` in `value` (placeholders as
/// `template.rs` reads them).
pub fn expand(target: &str, value: &str, urls: &StubUrls) -> Result<String, RunError> {
    use crate::template::Piece;
    let mut out = String::with_capacity(value.len());
    for piece in crate::template::pieces(value) {
        let key = match piece {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            // `${VAR}`: from the harness's own environment.
            Piece::Env { name, .. } => {
                let value = std::env::var(name).map_err(|_| RunError::Template {
                    target: target.into(),
                    template: format!("${{{name}}}"),
                    problem: format!("the harness's environment has no `{name}` (hint: export it, e.g. from your CI's secrets)"),
                })?;
                out.push_str(&value);
                continue;
            }
            Piece::Key { key, .. } => key,
        };
        let replacement = match key.split_once('.') {
            None if key == "llm" => (urls.llm)("primary"),
            None if key == "seed" => urls.seed.to_string(),
            None if key == "scratch" => urls.scratch.to_string(),
            Some(("llm", provider)) => (urls.llm)(provider),
            // the provider's root, for clients that add the API version themselves
            // (Anthropic, Gemini, Azure OpenAI)
            None if key == "llm_root" => root_of((urls.llm)("primary")),
            Some(("llm_root", provider)) => root_of((urls.llm)(provider)),
            Some(("proxy", name)) => {
                urls.proxies
                    .get(name)
                    .cloned()
                    .ok_or_else(|| RunError::Template {
                        target: target.into(),
                        template: format!("{{{key}}}"),
                        problem: format!("the scenario declares no `[[proxy]]` named `{name}`"),
                    })?
            }
            Some(("service", name)) => {
                urls.services
                    .get(name)
                    .cloned()
                    .ok_or_else(|| RunError::Template {
                        target: target.into(),
                        template: format!("{{{key}}}"),
                        problem: format!("the scenario declares no `[[service]]` named `{name}`"),
                    })?
            }
            Some(("executor", name)) => {
                urls.executors
                    .get(name)
                    .cloned()
                    .ok_or_else(|| RunError::Template {
                        target: target.into(),
                        template: format!("{{{key}}}"),
                        problem: format!("no executor `{name}` was started"),
                    })?
            }
            _ => {
                return Err(RunError::Template {
                    target: target.into(),
                    template: format!("{{{key}}}"),
                    problem: "unknown placeholder; use `{llm}`, `{llm.NAME}`, `{executor.NAME}`, `{proxy.NAME}`, `{service.NAME}`, `{seed}`, `{scratch}` or `${VAR}`".into(),
                });
            }
        };
        out.push_str(&replacement);
    }
    Ok(out)
}

/// The executor names a target's environment refers to (`{executor.NAME}`).
pub fn executors_in(env: &BTreeMap<String, String>) -> Vec<String> {
    env.values()
        .flat_map(|v| crate::template::keys_with_prefix(v, "executor."))
        .map(str::to_string)
        .collect()
}

/// Finds the program: a path with a `/` is relative to the targets file's folder; a bare
/// name is looked for next to the running executable (and one folder up, for test
/// binaries in `target/debug/deps`), then on PATH.
/// Why [`locate_program`] found nothing for `spec`, in words that name the fix.
pub(crate) fn why_no_program(spec: &TargetSpec) -> String {
    let Some(name) = spec.program.as_deref() else {
        return "is not set (hint: give the target a `program`)".into();
    };
    if name.contains('/') {
        let path = match &spec.defined_in {
            Some(dir) if Path::new(name).is_relative() => dir.join(name),
            _ => PathBuf::from(name),
        };
        return if path.is_dir() {
            format!(
                "is `{}`, a directory, not a program (hint: name the executable inside it)",
                path.display()
            )
        } else {
            format!(
                "was not found at `{}` (hint: a relative `program` is taken from the folder of the targets.toml that defines it)",
                path.display()
            )
        };
    }
    let hint = if name.starts_with("refpipe") {
        "run `cargo build -p pipeline`, or `cargo xtask gate`, which builds it"
    } else {
        "install it, put it on PATH, or give its path"
    };
    format!("was not found next to the harness executable or on PATH (hint: {hint})")
}

pub fn locate_program(spec: &TargetSpec) -> Option<PathBuf> {
    let name = spec.program.as_deref()?;
    let program = Path::new(name);
    if name.contains('/') {
        let path = match &spec.defined_in {
            Some(dir) if program.is_relative() => dir.join(program),
            _ => program.to_path_buf(),
        };
        return path.is_file().then_some(path);
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = exe_dir {
        if let Some(up) = d.parent() {
            dirs.push(d.clone());
            dirs.push(up.to_path_buf());
        } else {
            dirs.push(d);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_refpipe_target_parses() {
        let defs = builtin();
        let refpipe = &defs["refpipe"];
        assert_eq!(refpipe.args, ["run"]);
        assert_eq!(executors_in(&refpipe.env), ["sandbox"]);
    }

    #[test]
    fn the_agent_regex_is_compiled_when_read_and_a_bad_one_is_placed() {
        let good = "[t]\nkind = \"command\"\nprogram = \"t\"\nagents = { system_prompt = '^You are the (\\w+) agent' }\n";
        let defs = parse(good, "targets.toml", None).unwrap();
        let pattern = defs["t"].agents.system_prompt.as_ref().unwrap();
        assert_eq!(pattern.as_str(), r"^You are the (\w+) agent");
        assert!(pattern.0.is_match("You are the critic agent."));

        let bad = "[t]\nkind = \"command\"\nprogram = \"t\"\nagents = { system_prompt = '^You are the (\\w+ agent' }\n";
        let Err(LoadError::Invalid(d)) = parse(bad, "targets.toml", None) else {
            panic!("an unclosed group must not parse");
        };
        assert!(d.message.contains("is not a valid regex"), "{}", d.message);
        assert_eq!(&bad[d.span.clone()], "'^You are the (\\w+ agent'");
    }

    #[test]
    fn proxies_expand_to_their_address() {
        let llm = |p: &str| format!("http://127.0.0.1:1/{p}");
        let executors = BTreeMap::new();
        let proxies = BTreeMap::from([("llm".to_string(), "127.0.0.1:3".to_string())]);
        let urls = StubUrls {
            llm: &llm,
            executors: &executors,
            proxies: &proxies,
            services: &BTreeMap::new(),
            scratch: "",
            seed: 0,
        };
        assert_eq!(
            expand("t", "http://{proxy.llm}/v1", &urls).unwrap(),
            "http://127.0.0.1:3/v1"
        );
        assert!(expand("t", "{proxy.redis}", &urls).is_err());
    }

    #[test]
    fn only_listed_variables_are_inherited() {
        let names = |patterns: &[&str]| -> Vec<String> {
            let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
            inherited_env(&patterns)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert!(names(&["PAT*"]).contains(&"PATH".to_string()));
        assert_eq!(names(&["PATH"]), ["PATH"]);
        assert!(names(&["AGENT_HARNESS_NO_SUCH_VARIABLE"]).is_empty());
        assert!(names(&[]).is_empty());
    }

    #[test]
    fn placeholders_expand_and_unknown_ones_are_errors() {
        let llm = |p: &str| format!("http://127.0.0.1:1/{p}");
        let executors = BTreeMap::from([("sandbox".to_string(), "http://127.0.0.1:2".to_string())]);
        let proxies = BTreeMap::new();
        let urls = StubUrls {
            llm: &llm,
            executors: &executors,
            proxies: &proxies,
            services: &BTreeMap::new(),
            scratch: "/tmp/s",
            seed: 7,
        };
        assert_eq!(
            expand(
                "t",
                "{llm} {llm.fallback} {executor.sandbox} {seed} {scratch}",
                &urls
            )
            .unwrap(),
            "http://127.0.0.1:1/primary http://127.0.0.1:1/fallback http://127.0.0.1:2 7 /tmp/s"
        );
        let llm = |p: &str| format!("http://127.0.0.1:1/{p}/v1");
        let roots = StubUrls { llm: &llm, ..urls };
        assert_eq!(
            expand("t", "{llm_root} {llm_root.claude}", &roots).unwrap(),
            "http://127.0.0.1:1/primary http://127.0.0.1:1/claude"
        );
        assert!(expand("t", "{executor.blender}", &urls).is_err());
        assert!(expand("t", "{nope}", &urls).is_err());
        assert_eq!(expand("t", "a{b", &urls).unwrap(), "a{b");
        assert_eq!(
            expand("t", "${PATH}", &urls).unwrap(),
            std::env::var("PATH").unwrap()
        );
        assert!(expand("t", "Bearer ${AGENT_HARNESS_NO_SUCH_VARIABLE}", &urls).is_err());
    }
}
