//! `[[service]]`: a real server a scenario needs beside its stubs (redis-server,
//! PostgreSQL), as the scenario file writes it. `service.rs` at the crate root runs it.
//!
//! ```toml
//! [[service]]
//! name = "redis"
//! program = "redis-server"
//! args = ["--port", "{port}", "--save", "", "--dir", "{scratch}"]
//! ready = { command = ["redis-cli", "-p", "{port}", "ping"] }   # default: { tcp = true }
//! ready_timeout = "10s"                                          # the default
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::serde_util::deserialize_opt_duration;

/// How long a service may take to be ready when its spec says nothing.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// One `[[service]]` of a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Names it in `{service.NAME}` and in messages.
    pub name: String,
    /// The program: a name on `PATH` or a path.
    pub program: String,
    /// Its arguments; `{port}` and `{scratch}` are replaced.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment; values take the same placeholders.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How to tell it is ready. By default, a TCP connection to its port succeeds.
    #[serde(default)]
    pub ready: Ready,
    /// How long it may take to be ready. By default, [`DEFAULT_READY_TIMEOUT`].
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    pub ready_timeout: Option<Duration>,
}

/// How a service shows it is ready.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// A TCP connection to `127.0.0.1:{port}` succeeds. By default, this is the check.
    #[serde(default)]
    pub tcp: Option<bool>,
    /// This command exits 0 (placeholders are replaced); tried until it does.
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

impl Default for Ready {
    fn default() -> Self {
        Ready {
            tcp: Some(true),
            command: None,
        }
    }
}

/// What is wrong with a scenario's services or what refers to them: the text to point
/// at, the message, and the fix.
pub(crate) struct ServiceProblem {
    pub needle: String,
    pub message: String,
    pub help: Option<String>,
}

/// Checks the `[[service]]`s of a scenario (after its defaults are applied) and every
/// reference to them: `upstream = "service.NAME"`, `[[process]] service = "NAME"`,
/// `{service.NAME}`. A relative program path (`./server.py`) is made absolute against the
/// scenario's folder `dir` (a service runs in the scratch directory).
pub(crate) fn check(
    spec: &mut super::ScenarioFile,
    dir: &std::path::Path,
) -> Result<(), ServiceProblem> {
    let resolve = |program: &str| {
        if program.contains('/') && !program.starts_with('/') {
            dir.join(program).to_string_lossy().into_owned()
        } else {
            program.to_string()
        }
    };
    check_resolved(spec, &resolve)?;
    for s in &mut spec.service {
        s.program = resolve(&s.program);
    }
    Ok(())
}

fn check_resolved(
    spec: &super::ScenarioFile,
    resolve: &dyn Fn(&str) -> String,
) -> Result<(), ServiceProblem> {
    let problem = |needle: &str, message: String, help: Option<&str>| ServiceProblem {
        needle: needle.to_string(),
        message,
        help: help.map(str::to_string),
    };
    let mut names = Vec::new();
    for s in &spec.service {
        let valid = !s.name.is_empty()
            && s.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(problem(
                &format!("\"{}\"", s.name),
                format!("`{}` is not a service name", s.name),
                Some("a name is letters, digits, `_` and `-`, e.g. `redis`"),
            ));
        }
        if names.contains(&s.name.as_str()) {
            return Err(problem(
                &format!("\"{}\"", s.name),
                format!("two services are named `{}`", s.name),
                Some("give each `[[service]]` its own name"),
            ));
        }
        names.push(&s.name);
        if which(&resolve(&s.program)).is_none() {
            return Err(problem(
                &format!("\"{}\"", s.program),
                format!(
                    "service `{}`: program `{}` is not on PATH nor an executable file",
                    s.name, s.program
                ),
                Some("install it (e.g. `apt-get install redis-server`) or give its path"),
            ));
        }
        if let Some(c) = &s.ready.command
            && c.first().is_none_or(String::is_empty)
        {
            return Err(problem(
                "command",
                format!("service `{}`: `ready.command` is empty", s.name),
                Some("e.g. `ready = { command = [\"redis-cli\", \"-p\", \"{port}\", \"ping\"] }`"),
            ));
        }
    }
    let known = |name: &str| names.contains(&name);
    let declared = || {
        if names.is_empty() {
            "the scenario declares no `[[service]]`".to_string()
        } else {
            format!(
                "services: {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    for p in &spec.proxy {
        if let Some(name) = p.upstream.strip_prefix("service.")
            && !known(name)
        {
            return Err(ServiceProblem {
                needle: format!("\"{}\"", p.upstream),
                message: format!("proxy `{}`: no `[[service]]` is named `{name}`", p.name),
                help: Some(declared()),
            });
        }
    }
    for f in &spec.process {
        if let super::ProcessFaultSpec::KillService { service, .. }
        | super::ProcessFaultSpec::PauseService { service, .. } = f
            && !known(service)
        {
            return Err(ServiceProblem {
                needle: format!("\"{service}\""),
                message: format!(
                    "a `[[process]]` fault aims at service `{service}`, which the scenario does not declare"
                ),
                help: Some(declared()),
            });
        }
    }
    for value in spec.env.values() {
        for key in crate::template::keys_with_prefix(value, "service.") {
            if !known(key) {
                return Err(ServiceProblem {
                    needle: format!("{{service.{key}}}"),
                    message: format!("`{{service.{key}}}` names no `[[service]]` of the scenario"),
                    help: Some(declared()),
                });
            }
        }
    }
    Ok(())
}

/// Where `program` is: a path (with a `/`) to an executable file, or a name on `PATH`.
fn which(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    if program.is_empty() {
        return None;
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| executable(p))
    })
}
