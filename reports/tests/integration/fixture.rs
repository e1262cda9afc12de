//! One report that exercises every outcome and most fields.

use std::time::Duration;

use std::collections::BTreeMap;

use reports::metrics::{Histo, LoadMetrics, MemoryMetrics, ScenarioMetrics, ThresholdResult};
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

/// A histogram of `n` samples from a log-logistic distribution (median `median_ms`,
/// shape `shape`: the larger, the thinner the tail), its quantiles evenly spaced so the
/// fixture needs no random numbers.
fn histo(n: u64, median_ms: f64, shape: f64) -> Histo {
    let mut h = Histo::new();
    for i in 0..n {
        let u = (i as f64 + 0.5) / n as f64;
        let ms = median_ms * (u / (1.0 - u)).powf(1.0 / shape);
        h.record(Duration::from_micros((ms * 1000.0).round() as u64));
    }
    h
}

/// A percentile of `h` as a threshold's observed value: `324.1ms`.
fn observed(h: &Histo, p: f64) -> String {
    format!("{:.1}ms", h.percentile_us(p) as f64 / 1000.0)
}

/// The load scenario's metrics: 1000 runs at 40/s; three agents, streamed coder replies,
/// a sandbox executor; memory creeping up over 25 s; five thresholds, the planner's p95
/// failing.
fn load_metrics() -> ScenarioMetrics {
    let end_to_end = histo(1000, 1100.0, 6.0);
    let planner = histo(1000, 180.0, 5.0);
    let coder = histo(1180, 420.0, 4.0);
    let critic = histo(1180, 150.0, 5.0);
    let ttft = histo(1180, 45.0, 3.0);
    let mib = 1024.0 * 1024.0;
    let timeline: Vec<(f64, u64)> = (0..=100)
        .map(|i| {
            let t = f64::from(i) * 0.25;
            // A slow climb with a garbage collector's sawtooth on top.
            let rss = 120.0 * mib + 1.6 * mib * t + 6.0 * mib * ((i % 20) as f64 / 20.0);
            (t, rss as u64)
        })
        .collect();
    let peak = timeline.iter().map(|&(_, rss)| rss).max().unwrap();
    let thresholds = vec![
        ThresholdResult {
            name: "end_to_end: p95 < 2s".into(),
            passed: true,
            observed: observed(&end_to_end, 95.0),
        },
        ThresholdResult {
            name: "latency{agent=planner}: p95 < 300ms".into(),
            passed: false,
            observed: observed(&planner, 95.0),
        },
        ThresholdResult {
            name: "time_to_first_token: p99 < 250ms".into(),
            passed: true,
            observed: observed(&ttft, 99.0),
        },
        ThresholdResult {
            name: "memory: growth_per_run < 64KiB".into(),
            passed: true,
            observed: "12.5KiB".into(),
        },
        ThresholdResult {
            name: "load: achieved_rate >= 38/s".into(),
            passed: true,
            observed: "39.5/s".into(),
        },
    ];
    ScenarioMetrics {
        end_to_end: Some(end_to_end),
        llm: BTreeMap::from([
            ("coder".into(), coder),
            ("critic".into(), critic),
            ("planner".into(), planner),
        ]),
        time_to_first_token: Some(ttft),
        inter_token: Some(histo(10_620, 12.0, 4.0)),
        executor: BTreeMap::from([("sandbox".into(), histo(1180, 90.0, 6.0))]),
        memory: Some(MemoryMetrics {
            peak_rss_bytes: peak,
            cpu_seconds: 61.8,
            runs: 1000,
            growth_per_run_bytes: Some(12_800.0),
            timeline,
            harness_peak_rss_bytes: Some(38 * 1024 * 1024),
            sampler_cpu_seconds: None,
        }),
        load: Some(LoadMetrics {
            model: "constant_rate".into(),
            intended_rate: Some(40.0),
            achieved_rate: 39.5,
            started: 1000,
            succeeded: 994,
            failed: 6,
            dropped: 4,
            seconds: 25.3,
        }),
        tokens_per_run: Some(2430.5),
        cost_per_run: Some(0.0187),
        thresholds,
    }
}

/// The happy path's metrics: one run, so one sample each; memory without a timeline.
fn single_run_metrics() -> ScenarioMetrics {
    let one = |ms| {
        let mut h = Histo::new();
        h.record(Duration::from_millis(ms));
        h
    };
    ScenarioMetrics {
        end_to_end: Some(one(812)),
        llm: BTreeMap::from([("coder".into(), one(262)), ("planner".into(), one(128))]),
        executor: BTreeMap::from([("sandbox".into(), one(96))]),
        memory: Some(MemoryMetrics {
            peak_rss_bytes: 48 * 1024 * 1024,
            cpu_seconds: 0.42,
            runs: 1,
            growth_per_run_bytes: None,
            timeline: Vec::new(),
            harness_peak_rss_bytes: None,
            sampler_cpu_seconds: None,
        }),
        ..ScenarioMetrics::default()
    }
}

/// Six scenarios in three suites (`refpipe`, `refpipe/chaos`, `refpipe/perf`): passed
/// (with one run's metrics); failed with two failures (ANSI and a U+0001 in its stderr)
/// after a failed retry; error; flaky (passed on its second attempt, after 503s);
/// skipped; and a load run with full metrics that failed one of its five thresholds
/// (a threshold verdict, and a failure of kind `threshold`, as the harness reports it).
/// Three gates in this order: a
/// critical one that held, a critical one that failed, a non-critical one that failed;
/// so the verdict is fail. The run was interrupted, and is partition `hash:1/3`.
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
        metrics: single_run_metrics(),
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
        metrics: Default::default(),
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
        metrics: Default::default(),
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
        metrics: Default::default(),
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
        metrics: Default::default(),
        failed_attempts: Vec::new(),
    };

    let load = ScenarioResult {
        name: "planner holds p95 under load".into(),
        path: "refpipe/perf/load_smoke.toml".into(),
        suite: "refpipe/perf".into(),
        target: "refpipe".into(),
        tags: vec!["perf".into(), "load".into()],
        seed: 1006,
        outcome: Outcome::Failed,
        duration: ms(25_640),
        // As the harness reports a failed threshold: the reports show it once.
        failures: vec![Failure {
            kind: "threshold".into(),
            message: "threshold `latency{agent=planner}: p95 < 300ms` failed: observed 323.8ms"
                .into(),
            detail: String::new(),
        }],
        journal: Vec::new(),
        exit_code: None,
        stderr_tail: String::new(),
        output: None,
        metrics: load_metrics(),
        failed_attempts: Vec::new(),
    };

    RunReport {
        tool: "agent-harness 0.1.0".into(),
        started_at: "2025-06-01T12:00:00Z".into(),
        duration: ms(29_160),
        seed: 42,
        interrupted: true,
        scenarios: vec![passed, failed, error, flaky, skipped, load],
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
