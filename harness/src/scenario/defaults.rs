//! `defaults.toml`: what every scenario in a folder and below shares.
//!
//! ```toml
//! target = "my-pipeline"
//! timeout = "20s"
//! tags = ["my-pipeline"]
//! env = { LOG_LEVEL = "debug" }
//!
//! [[llm]]                   # appended after each scenario's own rules
//! when.agent = "critic"
//! reply = { json = { overall_score = 9.0, needs_refinement = false } }
//!
//! [expect]                  # entries a scenario does not set itself
//! exit_code = 0
//!
//! [[service]]               # a real server every scenario here gets its own of
//! name = "redis"
//! program = "redis-server"
//! args = ["--port", "{port}", "--save", ""]
//!
//! [[proxy]]                 # and a fault proxy in front of it
//! name = "bus"
//! upstream = "service.redis"
//! ```
//!
//! The nearest `defaults.toml` wins over those further up, and the scenario wins over all
//! of them: a scalar (`target`, `timeout`, an `expect` entry, an `env` variable) is taken
//! from the nearest file that sets it; tags are added; `[[llm]]` and `[[executor.NAME]]`
//! rules come after the scenario's own, nearest file first (first match wins, so a
//! scenario's rule always comes first); a `[[service]]` or `[[proxy]]` is added unless the
//! scenario (or a nearer file) has one of the same name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::model::{ExecRuleSpec, ExpectSpec, LlmRuleSpec, ScenarioFile};
use super::serde_util::deserialize_opt_duration;
use crate::diagnostic::Diagnostic;
use crate::errors::LoadError;

/// The file name looked for in each folder.
pub const DEFAULTS_FILE: &str = "defaults.toml";

/// One `defaults.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsFile {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub llm: Vec<LlmRuleSpec>,
    #[serde(default)]
    pub executor: BTreeMap<String, Vec<ExecRuleSpec>>,
    #[serde(default)]
    pub expect: ExpectSpec,
    #[serde(default)]
    pub service: Vec<super::ServiceSpec>,
    #[serde(default)]
    pub proxy: Vec<super::ProxySpec>,
}

/// The `defaults.toml` files that apply to a scenario in `dir`, nearest first.
pub(crate) fn chain(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(DEFAULTS_FILE))
        .filter(|f| f.is_file())
        .collect()
}

/// Reads one defaults file, with its reply files resolved against its own folder.
pub(crate) fn load(file: &Path) -> Result<DefaultsFile, LoadError> {
    let source = crate::source::read(file)?;
    let shown = file.display().to_string();
    let mut defaults: DefaultsFile = toml::from_str(&source)
        .map_err(|e| LoadError::Invalid(Box::new(Diagnostic::from_toml(&shown, &source, &e))))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    super::resolve_reply_files(
        dir,
        &mut defaults.llm,
        &mut defaults.executor,
        &shown,
        &source,
    )?;
    super::check_expect(&defaults.expect, &shown, &source)?;
    Ok(defaults)
}

/// Applies `d` (one file of the chain, applied nearest first) to `spec`.
pub(crate) fn apply(spec: &mut ScenarioFile, d: DefaultsFile) {
    if spec.target.is_none()
        && let Some(t) = d.target
    {
        spec.target = Some(toml::Spanned::new(0..0, t));
    }
    spec.timeout = spec.timeout.or(d.timeout);
    for tag in d.tags {
        if !spec.tags.contains(&tag) {
            spec.tags.push(tag);
        }
    }
    for (k, v) in d.env {
        spec.env.entry(k).or_insert(v);
    }
    spec.llm.extend(d.llm);
    for (name, rules) in d.executor {
        spec.executor.entry(name).or_default().extend(rules);
    }
    merge_expect(&mut spec.expect, d.expect);
    for service in d.service {
        if !spec.service.iter().any(|s| s.name == service.name) {
            spec.service.push(service);
        }
    }
    for proxy in d.proxy {
        if !spec.proxy.iter().any(|p| p.name == proxy.name) {
            spec.proxy.push(proxy);
        }
    }
}

/// Fills the entries of `own` that it does not set from `shared`.
fn merge_expect(own: &mut ExpectSpec, shared: ExpectSpec) {
    let ExpectSpec {
        status,
        exit_code,
        signal,
        min_gap,
        duration,
        output,
        stderr,
        llm_calls,
        executor_calls,
        agent_order,
    } = shared;
    own.status = own.status.take().or(status);
    own.exit_code = own.exit_code.or(exit_code);
    own.signal = own.signal.take().or(signal);
    own.duration = own.duration.or(duration);
    own.stderr = own.stderr.take().or(stderr);
    own.agent_order = own.agent_order.take().or(agent_order);
    for (k, v) in min_gap {
        own.min_gap.entry(k).or_insert(v);
    }
    for (k, v) in output {
        own.output.entry(k).or_insert(v);
    }
    for (k, v) in llm_calls {
        own.llm_calls.entry(k).or_insert(v);
    }
    for (k, v) in executor_calls {
        own.executor_calls.entry(k).or_insert(v);
    }
}
