//! Small reports for unit tests. The full fixture lives in `tests/integration/fixture.rs`.

use std::time::Duration;

use crate::model::{GateResult, Outcome, RunReport, ScenarioResult, Verdict};

pub(crate) fn report(scenarios: Vec<ScenarioResult>) -> RunReport {
    RunReport {
        tool: "agent-harness 0.1.0".into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        duration: Duration::from_millis(1500),
        seed: 7,
        interrupted: false,
        scenarios,
        gates: Vec::new(),
        verdict: Verdict::Pass,
        partition: None,
    }
}

pub(crate) fn scenario(name: &str, outcome: Outcome) -> ScenarioResult {
    ScenarioResult {
        name: name.into(),
        path: format!("suite/{name}.toml"),
        suite: "suite".into(),
        target: "refpipe".into(),
        tags: Vec::new(),
        seed: 7,
        outcome,
        duration: Duration::from_millis(250),
        failures: Vec::new(),
        journal: Vec::new(),
        exit_code: None,
        stderr_tail: String::new(),
        output: None,
        metrics: Default::default(),
        failed_attempts: Vec::new(),
    }
}

/// A pass-rate gate over tag `smoke` with a target of `>= 80%`.
pub(crate) fn gate(name: &str, critical: bool, passed: bool) -> GateResult {
    let value = if passed { 100.0 } else { 50.0 };
    GateResult {
        name: name.into(),
        critical,
        metric: "pass rate of tag `smoke`".into(),
        target: ">= 80%".into(),
        actual: Some(format!("{value:.1}%")),
        value: Some(value),
        passed,
        detail: String::new(),
    }
}
