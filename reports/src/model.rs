//! The plain result types a run produces. `harness` fills them; every writer in this crate
//! reads them. They know nothing of scenarios, stubs or targets beyond what a report shows.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything one run of the harness produced: the input to every report writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The tool and its version, e.g. `agent-harness 0.1.0`.
    pub tool: String,
    /// When the run started, RFC 3339 in UTC (second precision).
    pub started_at: String,
    /// Wall time of the whole run.
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    /// The run's base seed; each scenario derives its own and records it.
    pub seed: u64,
    /// True when the run was interrupted (Ctrl-C) before every scenario finished.
    pub interrupted: bool,
    /// One entry per scenario, in the order the scenarios were discovered.
    pub scenarios: Vec<ScenarioResult>,
    /// The quality gates evaluated over the scenarios, in the order they are defined.
    #[serde(default)]
    pub gates: Vec<GateResult>,
    /// The run's verdict: fail when a critical gate failed, warn when only non-critical
    /// ones did.
    #[serde(default)]
    pub verdict: Verdict,
    /// The shard this run was, as `hash:K/N`, when the suite was partitioned.
    #[serde(default)]
    pub partition: Option<String>,
}

/// The verdict of a run, from its gates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every gate held.
    #[default]
    Pass,
    /// Only non-critical gates failed: the run passes, with warnings.
    Warn,
    /// A critical gate failed: the run fails.
    Fail,
    /// The run was interrupted before every scenario finished: neither a pass nor a fail,
    /// because what was not run was not tested. Whatever the gates said of the scenarios
    /// that did finish is in the gates; the verdict does not claim more.
    Interrupted,
}

/// One quality gate, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate's name, e.g. `end-to-end success`.
    pub name: String,
    /// A critical gate that fails fails the run; a non-critical one warns.
    pub critical: bool,
    /// What is measured, in words, e.g. "pass rate of tag smoke", "p95 of scenario duration".
    pub metric: String,
    /// The target as written, e.g. `>= 80%`, `< 5s`.
    pub target: String,
    /// The measured value, formatted with its unit (`75.0% (3/4)`); none when nothing
    /// could be measured (no scenario selected).
    pub actual: Option<String>,
    /// The measured value as a number, in the target's unit (percent, seconds, …).
    pub value: Option<f64>,
    /// Whether the measured value met the target. A gate with nothing to measure fails.
    pub passed: bool,
    /// Why it failed, or what it covered: the scenarios that failed, how many were selected.
    pub detail: String,
}

/// The outcome of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// The scenario's `name`.
    pub name: String,
    /// The scenario file, relative to the scenario root, with `/` separators,
    /// e.g. `refpipe/happy_path.toml`. Unique within a run.
    pub path: String,
    /// The folder the file is in, relative to the scenario root (`refpipe`, `refpipe/chaos`);
    /// `.` for files at the root. JUnit makes one testsuite per suite.
    pub suite: String,
    /// The target the scenario ran against.
    pub target: String,
    pub tags: Vec<String>,
    /// The scenario's seed: rerunning with it replays the same choices.
    pub seed: u64,
    pub outcome: Outcome,
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    /// Why it did not pass; empty when it passed. Each is one expectation or one problem.
    pub failures: Vec<Failure>,
    /// What the stubs saw and served, in time order.
    pub journal: Vec<JournalEntry>,
    /// The target's exit code, when it exited by itself.
    pub exit_code: Option<i32>,
    /// The last lines of the target's stderr (at most a few KiB).
    pub stderr_tail: String,
    /// The JSON document the target produced, when it produced one.
    pub output: Option<serde_json::Value>,
    /// Latency histograms, memory, load rates and thresholds, where measured.
    #[serde(
        default,
        skip_serializing_if = "crate::metrics::ScenarioMetrics::is_empty"
    )]
    pub metrics: crate::metrics::ScenarioMetrics,
    /// Attempts that failed before the reported one (with `--retries`); a scenario that
    /// passed after failed attempts is flaky.
    #[serde(default)]
    pub failed_attempts: Vec<FailedAttempt>,
}

/// An attempt of a scenario that failed and was retried: how long it took, why it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedAttempt {
    /// How long the attempt took.
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    /// Why the attempt did not pass, as in [`ScenarioResult::failures`].
    pub failures: Vec<Failure>,
}

impl ScenarioResult {
    /// Passed, but only after failing: reported as flaky.
    pub fn is_flaky(&self) -> bool {
        self.outcome == Outcome::Passed && !self.failed_attempts.is_empty()
    }

    /// How many times the scenario ran.
    pub fn attempts(&self) -> usize {
        self.failed_attempts.len() + 1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every expectation held.
    Passed,
    /// The target ran and an expectation did not hold, or the target crashed, hung or
    /// produced invalid output. JUnit `<failure>`.
    Failed,
    /// The harness could not run the scenario (a stub failed to start, the target could not
    /// be spawned). JUnit `<error>`.
    Error,
    /// Not run: filtered out after discovery, or the run was interrupted first. JUnit `<skipped>`.
    Skipped,
}

/// One reason a scenario did not pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// A stable machine-readable kind: `expectation`, `unmatched_request`, `timeout`,
    /// `crashed`, `invalid_output`, `spawn`, `stub`, `interrupted`.
    pub kind: String,
    /// One line a person reads first: what was expected and what happened.
    pub message: String,
    /// More lines: expected vs actual, the request that matched nothing, a stderr tail.
    pub detail: String,
}

/// One request a stub received, and what it served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Since the scenario started.
    #[serde(with = "duration_secs")]
    pub at: Duration,
    /// Which stub: `llm`, `llm.fallback`, `executor.sandbox`.
    pub source: String,
    /// The agent the request was recognised as, when it was.
    pub agent: Option<String>,
    /// A one-line summary of the request (method, path, model, stream, last message).
    pub request: String,
    /// The rule that answered (`llm[2]`, reply 1 of 3), or `unmatched`.
    pub rule: Option<String>,
    /// What was served, e.g. `200 json (412 bytes)`, `429 error`, `404 unmatched`.
    pub served: String,
}

impl RunReport {
    /// How many scenarios passed only after failed attempts (counted among the passed).
    pub fn flaky_count(&self) -> usize {
        self.scenarios.iter().filter(|s| s.is_flaky()).count()
    }

    /// The end-to-end latency of every scenario that measured one, merged into one
    /// histogram (exactly, as [`Histo::merge`](crate::metrics::Histo::merge) does); none
    /// when no scenario did.
    pub fn merged_end_to_end(&self) -> Option<crate::metrics::Histo> {
        let mut histos = self
            .scenarios
            .iter()
            .filter_map(|s| s.metrics.end_to_end.as_ref());
        let mut merged = histos.next()?.clone();
        for h in histos {
            merged.merge(h);
        }
        Some(merged)
    }

    /// How many scenarios were not run to the end because the run was interrupted:
    /// skipped with a failure of kind `interrupted`.
    pub fn not_run(&self) -> usize {
        self.scenarios
            .iter()
            .filter(|s| {
                s.outcome == Outcome::Skipped && s.failures.iter().any(|f| f.kind == "interrupted")
            })
            .count()
    }

    /// Counts of scenarios by outcome: (passed, failed, errors, skipped).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |o: Outcome| self.scenarios.iter().filter(|s| s.outcome == o).count();
        (
            count(Outcome::Passed),
            count(Outcome::Failed),
            count(Outcome::Error),
            count(Outcome::Skipped),
        )
    }
}

impl Outcome {
    /// The outcome as `results.json` spells it: `passed`, `failed`, `error`, `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }
}

impl Verdict {
    /// The verdict as `results.json` spells it: `pass`, `warn`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
            Verdict::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One readable line, as the JUnit `<system-out>` shows it:
///
/// ```text
/// +0.012s llm planner POST /v1/chat/completions model=gpt-4o → llm[1] reply 1/1: 200 json (312 bytes)
/// +0.140s executor.sandbox POST /run → 404 unmatched
/// ```
///
/// Time since the scenario started, the stub, the agent when recognised, the request, then
/// after the arrow the rule that answered (when one did) and what was served. Fields are
/// written as they are: a field with a line break makes a line break.
impl fmt::Display for JournalEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{:.3}s {}", self.at.as_secs_f64(), self.source)?;
        if let Some(agent) = &self.agent {
            write!(f, " {agent}")?;
        }
        write!(f, " {} → ", self.request)?;
        if let Some(rule) = &self.rule {
            write!(f, "{rule}: ")?;
        }
        f.write_str(&self.served)
    }
}

/// Durations are written as fractional seconds in every format, as JUnit does.
pub(crate) mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}
