//! One report that exercises every outcome and most fields.

use std::time::Duration;

use reports::{
    FailedAttempt, Failure, GateResult, JournalEntry, Outcome, RunReport, ScenarioResult, Verdict,
};

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

fn gate(
    name: &str,
    critical: bool,
    metric: &str,
    target: &str,
    actual: (&str, f64),
    passed: bool,
    detail: &str,
) -> GateResult {
    GateResult {
        name: name.into(),
        critical,
        metric: metric.into(),
        target: target.into(),
        actual: Some(actual.0.into()),
        value: Some(actual.1),
        passed,
        detail: detail.into(),
    }
}

/// Five scenarios in two suites (`refpipe`, `refpipe/chaos`): passed; failed with two
/// failures (ANSI and a U+0001 in its stderr) after a failed retry; error; flaky (passed
/// on its second attempt, after 503s); skipped. Three gates in this order: a critical one
/// that held, a critical one that failed, a non-critical one that failed; so the verdict
/// is fail. The run was interrupted, and is partition `hash:1/3`.
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
        failed_attempts: Vec::new(),
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
        failed_attempts: vec![FailedAttempt {
            duration: ms(2210),
            failures: vec![Failure {
                kind: "expectation".into(),
                message: "output.\"$.refinement_iterations\": expected >= 1, got 0".into(),
                detail: "expected: { ge = 1 }\nactual:   0".into(),
            }],
        }],
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
        failed_attempts: Vec::new(),
    };

    let flaky = ScenarioResult {
        name: "coder retries through a 5xx burst".into(),
        path: "refpipe/chaos/coder_5xx.toml".into(),
        suite: "refpipe/chaos".into(),
        target: "refpipe".into(),
        tags: vec!["chaos".into()],
        seed: 1005,
        outcome: Outcome::Passed,
        duration: ms(1480),
        failures: Vec::new(),
        journal: vec![
            entry(
                15,
                "llm",
                Some("planner"),
                "POST /v1/chat/completions model=gpt-4o-mini",
                Some("llm[1] reply 1/1"),
                "200 json (298 bytes)",
            ),
            entry(
                160,
                "llm",
                Some("coder"),
                "POST /v1/chat/completions model=gpt-4o-mini stream",
                Some("chaos[1] 1/2"),
                "503 error",
            ),
            entry(
                420,
                "llm",
                Some("coder"),
                "POST /v1/chat/completions model=gpt-4o-mini stream",
                Some("chaos[1] 2/2"),
                "503 error",
            ),
            entry(
                980,
                "llm",
                Some("coder"),
                "POST /v1/chat/completions model=gpt-4o-mini stream",
                Some("llm[2] reply 1/1"),
                "200 sse (9 chunks)",
            ),
            entry(
                1210,
                "executor.sandbox",
                None,
                "POST /run",
                Some("executor.sandbox[1]"),
                "200 json (88 bytes)",
            ),
            entry(
                1350,
                "llm",
                Some("critic"),
                "POST /v1/chat/completions model=gpt-4o-mini",
                Some("llm[3] reply 1/1"),
                "200 json (140 bytes)",
            ),
        ],
        exit_code: Some(0),
        stderr_tail: "WARN coder call failed: 503, retrying in 0.25s\n".into(),
        output: Some(serde_json::json!({"status": "completed", "refinement_iterations": 0})),
        failed_attempts: vec![FailedAttempt {
            duration: ms(1000),
            failures: vec![Failure {
                kind: "timeout".into(),
                message: "the target did not finish within 1s".into(),
                detail: String::new(),
            }],
        }],
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
        failed_attempts: Vec::new(),
    };

    RunReport {
        tool: "agent-harness 0.1.0".into(),
        started_at: "2025-06-01T12:00:00Z".into(),
        duration: ms(3512),
        seed: 42,
        interrupted: true,
        scenarios: vec![passed, failed, error, flaky, skipped],
        gates: vec![
            gate(
                "smoke stays green",
                true,
                "pass rate of tag `smoke`",
                ">= 100%",
                ("100.0% (1/1)", 100.0),
                true,
                "1 scenario, all passed",
            ),
            gate(
                "end-to-end success",
                true,
                "pass rate of all scenarios",
                ">= 90%",
                ("50.0% (2/4)", 50.0),
                false,
                "did not pass: refpipe/critic_refinement.toml, refpipe/chaos/rate_limit.toml",
            ),
            gate(
                "p95 duration",
                false,
                "p95 of scenario duration over all scenarios",
                "< 2s",
                ("2.345s", 2.345),
                false,
                "over 4 scenarios; slowest: refpipe/critic_refinement.toml (2.345s)",
            ),
        ],
        verdict: Verdict::Fail,
        partition: Some("hash:1/3".into()),
    }
}
