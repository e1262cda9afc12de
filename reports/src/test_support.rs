//! Small reports for unit tests. The full fixture lives in `tests/integration/fixture.rs`.

use std::time::Duration;

use crate::model::{Outcome, RunReport, ScenarioResult};

pub(crate) fn report(scenarios: Vec<ScenarioResult>) -> RunReport {
    RunReport {
        tool: "agent-harness 0.1.0".into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        duration: Duration::from_millis(1500),
        seed: 7,
        interrupted: false,
        scenarios,
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
    }
}
