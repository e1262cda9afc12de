//! The scenario file format, v1, as serde types. Validation that needs only the value
//! being read happens inside deserialization, so the TOML deserializer attaches the span
//! of the offending value to the error and the diagnostic can point at it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::predicate::{Bound, Predicate};
use super::serde_util::{OneOrMany, deserialize_opt_duration};

/// One scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(deserialize_with = "super::serde_util::text")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "super::serde_util::text_list")]
    pub tags: Vec<String>,
    /// The target to run against; `refpipe` when absent.
    #[serde(default)]
    pub target: Option<Spanned<String>>,
    /// Wall-time bound for one run of the target; 30s when absent.
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    pub timeout: Option<Duration>,
    /// A fixed seed for this scenario; derived from the run's seed when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// What the target receives (for `command` targets: as JSON on stdin).
    #[serde(default)]
    pub input: Option<serde_json::Map<String, serde_json::Value>>,
    /// Extra environment for the target, over the target's own; `{llm}` etc. are expanded.
    #[serde(default, deserialize_with = "super::serde_util::text_map")]
    pub env: BTreeMap<String, String>,
    /// LLM stub rules, first match wins.
    #[serde(default)]
    pub llm: Vec<LlmRuleSpec>,
    /// Fake executors by name, each a list of rules.
    #[serde(default)]
    pub executor: BTreeMap<String, Vec<ExecRuleSpec>>,
    /// Faults injected at the stubs.
    #[serde(default)]
    pub chaos: Vec<ChaosSpec>,
    /// Stateful quotas at the LLM stub.
    #[serde(default)]
    pub rate_limit: Option<OneOrMany<RateLimitSpec>>,
    /// TCP fault proxies between the target and a dependency (a stub, or a real service
    /// on loopback); `{proxy.NAME}` is the proxy's `127.0.0.1:PORT`.
    #[serde(default)]
    pub proxy: Vec<ProxySpec>,
    /// Faults against the target's processes, one of its descendants, or a service.
    #[serde(default)]
    pub process: Vec<ProcessFaultSpec>,
    /// Real servers the scenario needs (redis-server, PostgreSQL): started before the
    /// target, checked ready, stopped after it; `{service.NAME}` is `127.0.0.1:PORT`.
    #[serde(default)]
    pub service: Vec<super::ServiceSpec>,
    /// Probes of the system's health, checked before the faults and after them.
    #[serde(default)]
    pub steady_state: Vec<crate::steady::Probe>,
    /// Run the target many times on a schedule (see the README's "Load").
    #[serde(default)]
    pub load: Option<super::LoadSpec>,
    /// Conditions on the scenario's metrics; a failed one fails the scenario.
    #[serde(default)]
    pub thresholds: super::Thresholds,
    #[serde(default)]
    pub expect: ExpectSpec,
    /// What `harness fuzz` varies and what must hold for any reply; `harness run`
    /// ignores it.
    #[serde(default)]
    pub adversarial: Option<super::AdversarialSpec>,

    // Suites that scale (see `matrix.rs`, `defaults.rs`, `files.rs`, `steps.rs`).
    /// Expands the file into cases; read by `matrix.rs` before this model is.
    #[serde(default)]
    pub matrix: Option<toml::Value>,
    /// A JSON file (relative to the scenario, inside its folder) whose object is the
    /// input; `[input]` keys override its keys.
    #[serde(default)]
    pub input_file: Option<String>,
    /// Input fields whose text is read from files: `prompt = "big_prompt.txt"`.
    #[serde(default)]
    pub input_files: BTreeMap<String, String>,
    /// A multi-step interaction with an `http` target, instead of submit-and-poll.
    #[serde(default)]
    pub step: Vec<super::steps::StepSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmMatchSpec {
    pub agent: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub contains: Option<String>,
    pub matches: Option<RegexSpec>,
    /// The request's wire API.
    pub api: Option<ApiSpec>,
}

/// The wire APIs the LLM stub serves, as `when.api` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiSpec {
    Chat,
    Responses,
    Anthropic,
    Gemini,
    Embeddings,
}

impl ApiSpec {
    pub fn name(self) -> &'static str {
        match self {
            ApiSpec::Chat => "chat",
            ApiSpec::Responses => "responses",
            ApiSpec::Anthropic => "anthropic",
            ApiSpec::Gemini => "gemini",
            ApiSpec::Embeddings => "embeddings",
        }
    }
}

/// A stateful quota at the LLM stub: `rate_limit = { requests = 60, per = "1m", tokens =
/// 40000 }` (or an array of them); calls over it get a 429 with `retry-after` and
/// `x-ratelimit-*` headers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawRateLimit")]
pub struct RateLimitSpec {
    /// The provider it limits; by default each provider, counted on its own.
    pub provider: Option<String>,
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
    pub per: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    provider: Option<String>,
    requests: Option<u64>,
    tokens: Option<u64>,
    #[serde(deserialize_with = "deserialize_duration")]
    per: Duration,
}

impl TryFrom<RawRateLimit> for RateLimitSpec {
    type Error = String;

    fn try_from(raw: RawRateLimit) -> Result<Self, String> {
        if raw.requests.is_none() && raw.tokens.is_none() {
            return Err("a rate limit needs `requests`, `tokens` or both (hint: `rate_limit = { requests = 60, per = \"1m\" }`)".into());
        }
        if raw.per.is_zero() {
            return Err("`per` must be above zero (hint: `per = \"1s\"`)".into());
        }
        Ok(RateLimitSpec {
            provider: raw.provider,
            requests: raw.requests,
            tokens: raw.tokens,
            per: raw.per,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmRuleSpec {
    #[serde(default)]
    pub when: LlmMatchSpec,
    pub reply: OneOrMany<LlmReplySpec>,
}

/// One scripted LLM reply; exactly one of `json`, `json_file`, `text`, `text_file`,
/// `tool_calls`, `error`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawLlmReply")]
pub struct LlmReplySpec {
    pub body: LlmBodySpec,
    pub delay: Option<Duration>,
    pub finish_reason: Option<String>,
}

#[derive(Debug)]
pub enum LlmBodySpec {
    Json(serde_json::Value),
    JsonFile(String),
    Text(String),
    TextFile(String),
    ToolCalls(Vec<ToolCallSpec>),
    Error(ErrorReplySpec),
    /// A vector pinned for embeddings calls.
    Embedding(Vec<f32>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLlmReply {
    json: Option<serde_json::Value>,
    json_file: Option<String>,
    text: Option<String>,
    text_file: Option<String>,
    tool_calls: Option<Vec<ToolCallSpec>>,
    error: Option<ErrorReplySpec>,
    embedding: Option<Vec<f32>>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    delay: Option<Duration>,
    finish_reason: Option<String>,
}

impl TryFrom<RawLlmReply> for LlmReplySpec {
    type Error = String;

    fn try_from(raw: RawLlmReply) -> Result<Self, String> {
        let mut bodies = Vec::new();
        if let Some(v) = raw.json {
            bodies.push(("json", LlmBodySpec::Json(v)));
        }
        if let Some(v) = raw.json_file {
            bodies.push(("json_file", LlmBodySpec::JsonFile(v)));
        }
        if let Some(v) = raw.text {
            bodies.push(("text", LlmBodySpec::Text(v)));
        }
        if let Some(v) = raw.text_file {
            bodies.push(("text_file", LlmBodySpec::TextFile(v)));
        }
        if let Some(v) = raw.tool_calls {
            bodies.push(("tool_calls", LlmBodySpec::ToolCalls(v)));
        }
        if let Some(v) = raw.error {
            bodies.push(("error", LlmBodySpec::Error(v)));
        }
        if let Some(v) = raw.embedding {
            bodies.push(("embedding", LlmBodySpec::Embedding(v)));
        }
        let body = exactly_one(
            bodies,
            "a reply needs exactly one of `json`, `json_file`, `text`, `text_file`, `tool_calls`, `error`, `embedding`",
        )?;
        Ok(LlmReplySpec {
            body,
            delay: raw.delay,
            finish_reason: raw.finish_reason,
        })
    }
}

fn exactly_one<T>(mut found: Vec<(&str, T)>, what: &str) -> Result<T, String> {
    match found.len() {
        1 => Ok(found.pop().expect("one element").1),
        0 => Err(format!("{what}; found none")),
        _ => {
            let names: Vec<String> = found.iter().map(|(n, _)| format!("`{n}`")).collect();
            Err(format!("{what}; found {}", names.join(" and ")))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallSpec {
    pub id: Option<String>,
    pub name: String,
    #[serde(default = "empty_object")]
    pub arguments: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReplySpec {
    pub status: u16,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecMatchSpec {
    pub path: Option<String>,
    pub contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRuleSpec {
    #[serde(default)]
    pub when: ExecMatchSpec,
    pub reply: OneOrMany<ExecReplySpec>,
}

/// A scripted executor reply: an outcome (`success`, `artifacts`, `logs`, `errors`) or a
/// raw `json`/`json_file` body; `status` and `delay` apply to either.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawExecReply")]
pub struct ExecReplySpec {
    pub status: u16,
    pub delay: Option<Duration>,
    pub body: ExecBodySpec,
}

#[derive(Debug)]
pub enum ExecBodySpec {
    Outcome {
        success: bool,
        artifacts: Vec<String>,
        logs: String,
        errors: Vec<String>,
    },
    Json(serde_json::Value),
    JsonFile(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExecReply {
    success: Option<bool>,
    artifacts: Option<Vec<String>>,
    logs: Option<String>,
    errors: Option<Vec<String>>,
    json: Option<serde_json::Value>,
    json_file: Option<String>,
    status: Option<u16>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    delay: Option<Duration>,
}

impl TryFrom<RawExecReply> for ExecReplySpec {
    type Error = String;

    fn try_from(raw: RawExecReply) -> Result<Self, String> {
        let outcome_given = raw.success.is_some()
            || raw.artifacts.is_some()
            || raw.logs.is_some()
            || raw.errors.is_some();
        let mut bodies = Vec::new();
        if outcome_given {
            let Some(success) = raw.success else {
                return Err(
                    "an executor outcome needs `success = true` or `success = false`".into(),
                );
            };
            bodies.push((
                "success",
                ExecBodySpec::Outcome {
                    success,
                    artifacts: raw.artifacts.unwrap_or_default(),
                    logs: raw.logs.unwrap_or_default(),
                    errors: raw.errors.unwrap_or_default(),
                },
            ));
        }
        if let Some(v) = raw.json {
            bodies.push(("json", ExecBodySpec::Json(v)));
        }
        if let Some(v) = raw.json_file {
            bodies.push(("json_file", ExecBodySpec::JsonFile(v)));
        }
        let body = exactly_one(
            bodies,
            "an executor reply needs one of `success` (with optional `artifacts`, `logs`, `errors`), `json`, `json_file`",
        )?;
        Ok(ExecReplySpec {
            status: raw.status.unwrap_or(200),
            delay: raw.delay,
            body,
        })
    }
}

/// A fault injected at a stub.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawChaos")]
pub struct ChaosSpec {
    /// `llm`, or `executor.NAME`.
    pub at: FaultPoint,
    pub when: LlmMatchSpec,
    pub fault: FaultSpec,
    pub schedule: ScheduleSpec,
    /// Only between these times since the stub started.
    pub window: Option<(Duration, Option<Duration>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultPoint {
    Llm,
    Executor(String),
}

#[derive(Debug, Clone)]
pub enum FaultSpec {
    Status {
        status: u16,
        message: Option<String>,
        retry_after: Option<Duration>,
    },
    Delay(Duration),
    DelayUniform(Duration, Duration),
    DelayLogNormal {
        median: Duration,
        sigma: f64,
    },
    MalformedJson,
    EmptyBody,
    Hang,
    TruncateFraction(f64),
    TruncateBytes(u64),
    Reset {
        after_bytes: Option<u64>,
    },
    StreamPace {
        first_token: Duration,
        gap: Duration,
    },
    StreamStall {
        after_chunks: u32,
        stall: Duration,
    },
    StreamCut {
        after_chunks: u32,
    },
}

impl FaultSpec {
    /// Faults that need the socket (only the LLM stub, which owns its connections, can).
    fn needs_socket(&self) -> bool {
        matches!(
            self,
            FaultSpec::TruncateFraction(_)
                | FaultSpec::TruncateBytes(_)
                | FaultSpec::Reset { .. }
                | FaultSpec::StreamPace { .. }
                | FaultSpec::StreamStall { .. }
                | FaultSpec::StreamCut { .. }
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub enum ScheduleSpec {
    Always,
    First(u32),
    EveryNth(u32),
    Probability(f64),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChaos {
    at: Option<String>,
    #[serde(default)]
    when: LlmMatchSpec,
    fault: RawFault,
    times: Option<u32>,
    every: Option<u32>,
    probability: Option<f64>,
    window: Option<RawWindow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    after: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    until: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    status: Option<u16>,
    message: Option<String>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    retry_after: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    delay: Option<Duration>,
    delay_uniform: Option<[String; 2]>,
    delay_lognormal: Option<RawLogNormal>,
    #[serde(default)]
    malformed_json: bool,
    #[serde(default)]
    empty_body: bool,
    #[serde(default)]
    hang: bool,
    truncate: Option<f64>,
    truncate_bytes: Option<u64>,
    #[serde(default)]
    reset: bool,
    reset_after_bytes: Option<u64>,
    stream_pace: Option<RawPace>,
    stream_stall: Option<RawStall>,
    stream_cut_after: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogNormal {
    #[serde(deserialize_with = "deserialize_duration")]
    median: Duration,
    sigma: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPace {
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    first_token: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    gap: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStall {
    after_chunks: u32,
    #[serde(deserialize_with = "deserialize_duration")]
    stall: Duration,
}

fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    super::serde_util::parse_duration(&s).map_err(serde::de::Error::custom)
}

const FAULT_KEYS: &str = "`status`, `delay`, `delay_uniform`, `delay_lognormal`, `malformed_json = true`, `empty_body = true`, `hang = true`, `truncate`, `truncate_bytes`, `reset = true`, `reset_after_bytes`, `stream_pace`, `stream_stall`, `stream_cut_after`";

impl TryFrom<RawFault> for FaultSpec {
    type Error = String;

    fn try_from(f: RawFault) -> Result<Self, String> {
        let mut faults = Vec::new();
        if let Some(status) = f.status {
            if !(100..=599).contains(&status) {
                return Err(format!(
                    "`status = {status}` is not an HTTP status (hint: use 100 to 599, e.g. 429 or 503)"
                ));
            }
            faults.push((
                "status",
                FaultSpec::Status {
                    status,
                    message: f.message,
                    retry_after: f.retry_after,
                },
            ));
        } else if f.message.is_some() || f.retry_after.is_some() {
            return Err("`message` and `retry_after` go with `status`".into());
        }
        if let Some(d) = f.delay {
            faults.push(("delay", FaultSpec::Delay(d)));
        }
        if let Some([min, max]) = f.delay_uniform {
            let (min, max) = (
                super::serde_util::parse_duration(&min)?,
                super::serde_util::parse_duration(&max)?,
            );
            if min > max {
                return Err("`delay_uniform = [min, max]` needs min <= max".into());
            }
            faults.push(("delay_uniform", FaultSpec::DelayUniform(min, max)));
        }
        if let Some(l) = f.delay_lognormal {
            if !(l.sigma >= 0.0 && l.sigma.is_finite()) {
                return Err(format!(
                    "`sigma = {}` must be a finite number >= 0",
                    l.sigma
                ));
            }
            faults.push((
                "delay_lognormal",
                FaultSpec::DelayLogNormal {
                    median: l.median,
                    sigma: l.sigma,
                },
            ));
        }
        if f.malformed_json {
            faults.push(("malformed_json", FaultSpec::MalformedJson));
        }
        if f.empty_body {
            faults.push(("empty_body", FaultSpec::EmptyBody));
        }
        if f.hang {
            faults.push(("hang", FaultSpec::Hang));
        }
        if let Some(x) = f.truncate {
            if !(0.0..1.0).contains(&x) {
                return Err(format!(
                    "`truncate = {x}` is the fraction of the body sent: from 0 up to (not including) 1"
                ));
            }
            faults.push(("truncate", FaultSpec::TruncateFraction(x)));
        }
        if let Some(n) = f.truncate_bytes {
            faults.push(("truncate_bytes", FaultSpec::TruncateBytes(n)));
        }
        if f.reset {
            faults.push(("reset", FaultSpec::Reset { after_bytes: None }));
        }
        if let Some(n) = f.reset_after_bytes {
            faults.push((
                "reset_after_bytes",
                FaultSpec::Reset {
                    after_bytes: Some(n),
                },
            ));
        }
        if let Some(p) = f.stream_pace {
            faults.push((
                "stream_pace",
                FaultSpec::StreamPace {
                    first_token: p.first_token.unwrap_or_default(),
                    gap: p.gap.unwrap_or_default(),
                },
            ));
        }
        if let Some(s) = f.stream_stall {
            faults.push((
                "stream_stall",
                FaultSpec::StreamStall {
                    after_chunks: s.after_chunks,
                    stall: s.stall,
                },
            ));
        }
        if let Some(n) = f.stream_cut_after {
            faults.push(("stream_cut_after", FaultSpec::StreamCut { after_chunks: n }));
        }
        exactly_one(
            faults,
            &format!("a fault needs exactly one of {FAULT_KEYS}"),
        )
    }
}

impl TryFrom<RawChaos> for ChaosSpec {
    type Error = String;

    fn try_from(raw: RawChaos) -> Result<Self, String> {
        let at = match raw.at.as_deref() {
            None | Some("llm") => FaultPoint::Llm,
            Some(other) => match other.strip_prefix("executor.") {
                Some(name) if !name.is_empty() => FaultPoint::Executor(name.to_string()),
                _ => {
                    return Err(format!(
                        "`at = \"{other}\"` is not a fault point; use `llm` or `executor.NAME`"
                    ));
                }
            },
        };
        let fault = FaultSpec::try_from(raw.fault)?;
        if let FaultPoint::Executor(name) = &at {
            if fault.needs_socket() {
                return Err(format!(
                    "executor `{name}` cannot truncate, reset or pace its responses (hint: put a `[[proxy]]` with a `limit_data` or `reset_peer` toxic in front of it)"
                ));
            }
            let w = &raw.when;
            if w.agent.is_some() || w.model.is_some() || w.provider.is_some() || w.matches.is_some()
            {
                return Err(
                    "a fault at an executor filters requests by `when.contains` only".into(),
                );
            }
        }
        let mut schedules = Vec::new();
        if let Some(n) = raw.times {
            if n == 0 {
                return Err(
                    "`times = 0` injects nothing (hint: `times` is at least 1; remove the fault to inject none)".into(),
                );
            }
            schedules.push(("times", ScheduleSpec::First(n)));
        }
        if let Some(n) = raw.every {
            if n == 0 {
                return Err("`every` must be at least 1".into());
            }
            schedules.push(("every", ScheduleSpec::EveryNth(n)));
        }
        if let Some(p) = raw.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("`probability = {p}` must be between 0 and 1"));
            }
            schedules.push(("probability", ScheduleSpec::Probability(p)));
        }
        let schedule = if schedules.is_empty() {
            ScheduleSpec::Always
        } else {
            exactly_one(
                schedules,
                "a fault takes at most one of `times`, `every`, `probability`",
            )?
        };
        let window = match raw.window {
            None => None,
            Some(w) => {
                let after = w.after.unwrap_or_default();
                if w.until.is_some_and(|u| u <= after) {
                    return Err("`window.until` must come after `window.after`".into());
                }
                Some((after, w.until))
            }
        };
        Ok(ChaosSpec {
            at,
            when: raw.when,
            fault,
            schedule,
            window,
        })
    }
}

/// What must hold after the run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// The target's reported status (the output field the target names, `/status` for refpipe).
    pub status: Option<String>,
    pub exit_code: Option<i32>,
    /// The target is expected to die of this signal (e.g. a `[[process]]` kill): then that
    /// death is the expected outcome, not a crash.
    pub signal: Option<String>,
    /// A lower bound on the time between consecutive LLM requests of an agent, as the stub
    /// saw them (`"*"`: any two consecutive requests), e.g. `{ planner = ">= 1s" }` to show
    /// that retries honoured Retry-After.
    #[serde(default)]
    pub min_gap: BTreeMap<String, Bound>,
    /// A bound on the run's wall time, e.g. `"< 5s"`.
    pub duration: Option<Bound>,
    /// Predicates on the output by JSONPath.
    #[serde(default)]
    pub output: BTreeMap<String, Predicate>,
    /// Predicates on the target's stderr text.
    pub stderr: Option<Predicate>,
    /// LLM requests per agent (`"*"` counts all).
    #[serde(default)]
    pub llm_calls: BTreeMap<String, Predicate>,
    /// Requests per executor.
    #[serde(default)]
    pub executor_calls: BTreeMap<String, Predicate>,
    /// The order of recognised agents across the LLM requests.
    pub agent_order: Option<AgentOrder>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum AgentOrder {
    /// Exactly this sequence, no more, no less.
    Exact(Vec<String>),
    /// These agents in this order, others allowed in between.
    Subsequence(Vec<String>),
}

/// A regex compiled when the file is read, so a bad pattern is reported with its position.
#[derive(Debug, Clone)]
pub struct RegexSpec(pub regex::Regex);

impl<'de> Deserialize<'de> for RegexSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex::Regex::new(&s)
            .map(RegexSpec)
            .map_err(|e| serde::de::Error::custom(format!("invalid regex: {e}")))
    }
}

/// A TCP fault proxy in front of a dependency.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// How the scenario refers to it: `{proxy.NAME}`.
    pub name: String,
    /// What it forwards to: `llm`, `executor.NAME` (a stub of this scenario),
    /// `service.NAME` (a `[[service]]` of this scenario), or a loopback `host:port` (a
    /// real service the target uses, e.g. `127.0.0.1:6379`).
    pub upstream: String,
    /// The Toxiproxy-style faults it applies (see the README's "TCP faults").
    #[serde(default)]
    pub toxics: Vec<chaos::proxy::Toxic>,
}

/// A fault against the target's process group, or its resources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawProcessFault")]
pub enum ProcessFaultSpec {
    /// Send `signal` to the target's process group `at` after it started; with
    /// `restart`, an `http` target's service is started again (same environment) and the
    /// run is polled to its end on the new instance.
    Kill {
        at: Duration,
        signal: String,
        restart: bool,
    },
    /// SIGSTOP the group `at` after start, SIGCONT it `duration` later.
    Pause { at: Duration, duration: Duration },
    /// Limit the target's address space (RLIMIT_AS) to `bytes`.
    MemoryLimit { bytes: u64 },
    /// Limit the size of any file the target writes (RLIMIT_FSIZE) to `bytes`.
    FileSizeLimit { bytes: u64 },
    /// Saturate `threads` cores (in the harness) from `at` for `duration`.
    CpuHog {
        at: Duration,
        duration: Duration,
        threads: usize,
    },
    /// `path` (relative to the scenario's `{scratch}`) is a full disk: writes to it fail
    /// with ENOSPC ("No space left on device").
    DiskFull { path: String },
    /// Send `signal` `at` after the target started to each process of its group whose
    /// command line contains `descendant` (one agent of a pipeline, say).
    KillDescendant {
        descendant: String,
        at: Duration,
        signal: String,
    },
    /// Send `signal` to the `[[service]]` named `service` `at` after the target started;
    /// with `restart`, start it again (same port) `restart_after` later.
    KillService {
        service: String,
        at: Duration,
        signal: String,
        restart: Option<Duration>,
    },
    /// SIGSTOP the service `at` after the target started, SIGCONT it `duration` later.
    PauseService {
        service: String,
        at: Duration,
        duration: Duration,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcessFault {
    fault: String,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    at: Option<Duration>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    duration: Option<Duration>,
    signal: Option<String>,
    bytes: Option<u64>,
    threads: Option<usize>,
    #[serde(default)]
    restart: bool,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    restart_after: Option<Duration>,
    path: Option<String>,
    /// Aims `kill` / `pause` at a `[[service]]` instead of the target.
    service: Option<String>,
    /// Aims `kill` at the target's processes whose command line contains this.
    descendant: Option<String>,
}

const PROCESS_FAULTS: &[&str] = &[
    "kill",
    "pause",
    "memory_limit",
    "file_size_limit",
    "cpu_hog",
    "disk_full",
];
pub(crate) const SIGNALS: &[&str] = &[
    "SIGKILL", "SIGTERM", "SIGINT", "SIGSEGV", "SIGABRT", "SIGHUP",
];

impl TryFrom<RawProcessFault> for ProcessFaultSpec {
    type Error = String;

    fn try_from(raw: RawProcessFault) -> Result<Self, String> {
        let need = |what: &str, v: Option<Duration>| {
            v.ok_or_else(|| {
                format!(
                    "`fault = \"{}\"` needs `{what}` (a duration, e.g. `\"300ms\"`)",
                    raw.fault
                )
            })
        };
        let bytes = || {
            raw.bytes.filter(|b| *b > 0).ok_or_else(|| {
                format!(
                    "`fault = \"{}\"` needs `bytes`, a positive number",
                    raw.fault
                )
            })
        };
        if raw.restart && raw.fault != "kill" {
            return Err("`restart` goes with `fault = \"kill\"`".into());
        }
        if raw.restart_after.is_some() && !(raw.restart && raw.service.is_some()) {
            return Err(
                "`restart_after` goes with `restart = true` on a service's `kill` (`service = \"NAME\"`)".into(),
            );
        }
        if raw.service.is_some() && raw.descendant.is_some() {
            return Err("a fault aims at a `service` or at a `descendant`, not both".into());
        }
        let signal = || {
            let signal = raw.signal.clone().unwrap_or_else(|| "SIGKILL".into());
            if SIGNALS.contains(&signal.as_str()) {
                Ok(signal)
            } else {
                Err(format!(
                    "`signal = \"{signal}\"` is not one the harness sends; use one of {}",
                    crate::diagnostic::quoted_list(SIGNALS)
                ))
            }
        };
        if let Some(service) = raw.service.clone() {
            if service.is_empty() {
                return Err("`service` names a `[[service]]` of the scenario".into());
            }
            return match raw.fault.as_str() {
                "kill" => Ok(ProcessFaultSpec::KillService {
                    service,
                    at: need("at", raw.at)?,
                    signal: signal()?,
                    restart: raw.restart.then(|| raw.restart_after.unwrap_or_default()),
                }),
                "pause" => Ok(ProcessFaultSpec::PauseService {
                    service,
                    at: need("at", raw.at)?,
                    duration: need("duration", raw.duration)?,
                }),
                other => Err(format!(
                    "`fault = \"{other}\"` cannot aim at a service; `kill` and `pause` can"
                )),
            };
        }
        if let Some(descendant) = raw.descendant.clone() {
            if descendant.trim().is_empty() {
                return Err("`descendant` is text of the command line of the process to kill, e.g. `\"agent analysis\"`".into());
            }
            if raw.fault != "kill" || raw.restart {
                return Err("`descendant` goes with `fault = \"kill\"` (without `restart`)".into());
            }
            return Ok(ProcessFaultSpec::KillDescendant {
                descendant,
                at: need("at", raw.at)?,
                signal: signal()?,
            });
        }
        Ok(match raw.fault.as_str() {
            "kill" => ProcessFaultSpec::Kill {
                at: need("at", raw.at)?,
                signal: signal()?,
                restart: raw.restart,
            },
            "pause" => ProcessFaultSpec::Pause {
                at: need("at", raw.at)?,
                duration: need("duration", raw.duration)?,
            },
            "memory_limit" => ProcessFaultSpec::MemoryLimit { bytes: bytes()? },
            "file_size_limit" => ProcessFaultSpec::FileSizeLimit { bytes: bytes()? },
            "cpu_hog" => ProcessFaultSpec::CpuHog {
                at: raw.at.unwrap_or_default(),
                duration: need("duration", raw.duration)?,
                threads: match raw.threads.unwrap_or(1) {
                    n @ 1..=chaos::process::CpuHog::MAX_THREADS => n,
                    n => {
                        return Err(format!(
                            "`threads = {n}` is out of range: a CPU hog spins `1` to `{}` threads (hint: a few more than the machine has cores saturate it)",
                            chaos::process::CpuHog::MAX_THREADS
                        ));
                    }
                },
            },
            "disk_full" => {
                let path = raw.path.clone().filter(|p| !p.is_empty()).ok_or(
                    "`fault = \"disk_full\"` needs `path`, a file in the scenario's scratch directory (e.g. `\"out/render.png\"`)",
                )?;
                if path.starts_with('/') || path.split('/').any(|c| c == "..") {
                    return Err(format!(
                        "`path = \"{path}\"` must stay inside the scenario's scratch directory"
                    ));
                }
                ProcessFaultSpec::DiskFull { path }
            }
            other => {
                let hint = crate::diagnostic::did_you_mean(other, PROCESS_FAULTS)
                    .map(|s| format!(" (hint: did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown process fault `{other}`, expected one of {}{hint}",
                    crate::diagnostic::quoted_list(PROCESS_FAULTS)
                ));
            }
        })
    }
}
