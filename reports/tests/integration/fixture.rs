//! One report that exercises every outcome and most fields.

use std::time::Duration;

use reports::{Failure, JournalEntry, Outcome, RunReport, ScenarioResult};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn entry(
    at: u64,
    source: &str,
    agent: Option<&str>,
    request: &str,
    rule: Option<&str>,
    served: &str,
) -> JournalEntry {
    JournalEntry {
        at: ms(at),
        source: source.into(),
        agent: agent.map(Into::into),
        request: request.into(),
        rule: rule.map(Into::into),
        served: served.into(),
    }
}

/// Four scenarios in two suites (`refpipe`, `refpipe/chaos`): passed, failed with two
/// failures (ANSI and a U+0001 in its stderr), error, skipped. The run was interrupted.
pub fn basic_report() -> RunReport {
    let passed = ScenarioResult {
        name: "happy path | planner → coder → critic".into(),
        path: "refpipe/happy_path.toml".into(),
        suite: "refpipe".into(),
        target: "refpipe".into(),
        tags: vec!["smoke".into(), "refpipe".into()],
        seed: 1001,
        outcome: Outcome::Passed,
        duration: ms(812),
        failures: Vec::new(),
        journal: vec![
            entry(
                12,
                "llm",
                Some("planner"),
                "POST /v1/chat/completions model=gpt-4o-mini",
                Some("llm[1] reply 1/1"),
                "200 json (312 bytes)",
            ),
            entry(
                140,
                "llm",
                Some("coder"),
                "POST /v1/chat/completions model=gpt-4o-mini stream",
                Some("llm[2] reply 1/1"),
                "200 sse (9 chunks)",
            ),
            entry(
                402,
                "executor.sandbox",
                None,
                "POST /run",
                Some("executor.sandbox[1]"),
                "200 json (88 bytes)",
            ),
        ],
        exit_code: Some(0),
        stderr_tail: String::new(),
        output: Some(serde_json::json!({"status": "completed", "refinement_iterations": 0})),
    };

    let failed = ScenarioResult {
        name: "critic asks for one refinement, then accepts".into(),
        path: "refpipe/critic_refinement.toml".into(),
        suite: "refpipe".into(),
        target: "refpipe".into(),
        tags: vec!["integration".into()],
        seed: 1002,
        outcome: Outcome::Failed,
        duration: ms(2345),
        failures: vec![
            Failure {
                kind: "expectation".into(),
                message: "output.\"$.refinement_iterations\": expected >= 1, got 0".into(),
                detail: "expected: { ge = 1 }\nactual:   0\n\x1b[2min output: {\"status\": \"completed\"}\x1b[0m".into(),
            },
            Failure {
                kind: "unmatched_request".into(),
                message: "a request to `llm` matched no rule <critic & friends>".into(),
                detail: "POST /v1/chat/completions\n```json\n{\"messages\": [{\"role\": \"system\", \"content\": \"You are the critic agent\"}]}\n```".into(),
            },
        ],
        journal: vec![
            entry(
                9,
                "llm",
                Some("planner"),
                "POST /v1/chat/completions model=gpt-4o-mini",
                Some("llm[1] reply 1/1"),
                "200 json (301 bytes)",
            ),
            entry(
                1290,
                "llm",
                Some("critic"),
                "POST /v1/chat/completions model=gpt-4o-mini",
                None,
                "404 unmatched",
            ),
        ],
        exit_code: Some(1),
        stderr_tail: "\x1b[31mERROR\x1b[0m critic call failed: 404\u{1}\nretrying in 0.5s\n".into(),
        output: Some(serde_json::json!({"status": "failed", "refinement_iterations": 0})),
    };

    let error = ScenarioResult {
        name: "planner survives a 429 storm".into(),
        path: "refpipe/chaos/rate_limit.toml".into(),
        suite: "refpipe/chaos".into(),
        target: "refpipe-serve".into(),
        tags: Vec::new(),
        seed: 1003,
        outcome: Outcome::Error,
        duration: ms(31),
        failures: vec![Failure {
            kind: "spawn".into(),
            message: "could not spawn the target `refpipe-serve`".into(),
            detail: "No such file or directory (os error 2)".into(),
        }],
        journal: Vec::new(),
        exit_code: None,
        stderr_tail: String::new(),
        output: None,
    };

    let skipped = ScenarioResult {
        name: "dead redis degrades gracefully".into(),
        path: "refpipe/chaos/dead_redis.toml".into(),
        suite: "refpipe/chaos".into(),
        target: "refpipe".into(),
        tags: vec!["chaos".into(), "slow".into()],
        seed: 1004,
        outcome: Outcome::Skipped,
        duration: Duration::ZERO,
        failures: vec![Failure {
            kind: "interrupted".into(),
            message: "the run was interrupted before this scenario started".into(),
            detail: String::new(),
        }],
        journal: Vec::new(),
        exit_code: None,
        stderr_tail: String::new(),
        output: None,
    };

    RunReport {
        tool: "agent-harness 0.1.0".into(),
        started_at: "2025-06-01T12:00:00Z".into(),
        duration: ms(3512),
        seed: 42,
        interrupted: true,
        scenarios: vec![passed, failed, error, skipped],
    }
}
