//! What the reports for people (`summary.md`, `report.html`) show the same way: the
//! headline that states the verdict, the counts, the order of the gates, and each
//! scenario's status. The strings are raw (cleaned to one line, not escaped): each format
//! escapes them where they land.

use crate::metrics::{Histo, LoadMetrics, MemoryMetrics, ScenarioMetrics, ThresholdResult};
use crate::model::{Failure, GateResult, Outcome, RunReport, ScenarioResult, Verdict};
use crate::svg::Unit;
use crate::text;

/// The verdict in words, e.g. `FAIL — critical gate "end-to-end success" failed`,
/// `PASS with warnings — gate "p95 duration" failed`, `PASS`.
///
/// A failing run names its failing critical gates; without any (no gates file: every
/// scenario must pass), it gives the scenario counts that failed it.
pub(crate) fn headline(report: &RunReport) -> String {
    let failing = |critical: bool| -> Vec<&GateResult> {
        report
            .gates
            .iter()
            .filter(|g| !g.passed && g.critical == critical)
            .collect()
    };
    match report.verdict {
        Verdict::Pass => "PASS".to_owned(),
        Verdict::Warn => match failing(false).as_slice() {
            [] => "PASS with warnings".to_owned(),
            gates => format!("PASS with warnings — {} failed", gate_list("gate", gates)),
        },
        Verdict::Fail => match failing(true).as_slice() {
            [] => {
                let (_, failed, errors, _) = report.counts();
                let parts =
                    plural_parts(&[(failed, "failed", "failed"), (errors, "error", "errors")]);
                if parts.is_empty() {
                    "FAIL".to_owned()
                } else {
                    format!("FAIL — {}", parts.join(", "))
                }
            }
            gates => format!("FAIL — {} failed", gate_list("critical gate", gates)),
        },
        Verdict::Interrupted => {
            let (_, failed, errors, _) = report.counts();
            let not_run = report.not_run();
            let mut parts = vec![format!(
                "{not_run} of {} {} not run",
                report.scenarios.len(),
                if report.scenarios.len() == 1 {
                    "scenario"
                } else {
                    "scenarios"
                }
            )];
            parts.extend(plural_parts(&[
                (failed, "failed", "failed"),
                (errors, "error", "errors"),
            ]));
            format!("INTERRUPTED — {}", parts.join(", "))
        }
    }
}

/// `critical gate "a"`, `critical gates "a" and "b"`, `gates "a", "b" and "c"`,
/// `gates "a", "b" and 3 more`.
fn gate_list(noun: &str, gates: &[&GateResult]) -> String {
    let quoted: Vec<String> = gates
        .iter()
        .map(|g| format!("\"{}\"", text::one_line(&g.name)))
        .collect();
    let names = match quoted.as_slice() {
        [] => String::new(),
        [one] => return format!("{noun} {one}"),
        [rest @ .., last] if quoted.len() <= 3 => format!("{} and {last}", rest.join(", ")),
        [a, b, ..] => format!("{a}, {b} and {} more", quoted.len() - 2),
    };
    format!("{noun}s {names}")
}

/// The scenario counts in words, flaky counted among the passed:
/// `2 passed (1 flaky), 1 failed, 1 error, 1 skipped`; `no scenarios`.
pub(crate) fn counts(report: &RunReport) -> String {
    let (passed, failed, errors, skipped) = report.counts();
    let flaky = report.flaky_count();
    let mut parts = plural_parts(&[(passed, "passed", "passed")]);
    if flaky > 0
        && let Some(passed) = parts.first_mut()
    {
        passed.push_str(&format!(" ({flaky} flaky)"));
    }
    parts.extend(plural_parts(&[
        (failed, "failed", "failed"),
        (errors, "error", "errors"),
        (skipped, "skipped", "skipped"),
    ]));
    if parts.is_empty() {
        "no scenarios".to_owned()
    } else {
        parts.join(", ")
    }
}

fn plural_parts(counts: &[(usize, &str, &str)]) -> Vec<String> {
    counts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|&(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
        .collect()
}

/// Where a gate stands, in the order a reader wants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum GateStatus {
    /// A critical gate failed: the run fails.
    Failed,
    /// A non-critical gate failed: the run warns.
    Warning,
    Passed,
}

impl GateStatus {
    pub(crate) fn of(gate: &GateResult) -> GateStatus {
        match (gate.passed, gate.critical) {
            (true, _) => GateStatus::Passed,
            (false, true) => GateStatus::Failed,
            (false, false) => GateStatus::Warning,
        }
    }
}

/// Failing critical gates, then failing non-critical ones, then those that held; the
/// order they are defined in within each.
pub(crate) fn gates_in_order(report: &RunReport) -> Vec<&GateResult> {
    let mut gates: Vec<&GateResult> = report.gates.iter().collect();
    gates.sort_by_key(|g| GateStatus::of(g));
    gates
}

/// The measured value, or `not measured`.
pub(crate) fn actual(gate: &GateResult) -> &str {
    gate.actual.as_deref().unwrap_or("not measured")
}

/// A scenario's outcome as a reader sorts and filters it: a pass after failed attempts
/// is flaky, not passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    Failed,
    Error,
    Flaky,
    Passed,
    Skipped,
}

impl Status {
    /// Every status, in display order.
    pub(crate) const ALL: [Status; 5] = [
        Status::Failed,
        Status::Error,
        Status::Flaky,
        Status::Passed,
        Status::Skipped,
    ];

    pub(crate) fn of(s: &ScenarioResult) -> Status {
        match s.outcome {
            Outcome::Passed if s.is_flaky() => Status::Flaky,
            Outcome::Passed => Status::Passed,
            Outcome::Failed => Status::Failed,
            Outcome::Error => Status::Error,
            Outcome::Skipped => Status::Skipped,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Flaky => "flaky",
            Status::Passed => "passed",
            Status::Skipped => "skipped",
        }
    }

    pub(crate) fn icon(self) -> &'static str {
        match self {
            Status::Failed => "❌",
            Status::Error => "💥",
            Status::Flaky => "🔁",
            Status::Passed => "✅",
            Status::Skipped => "⏭️",
        }
    }
}

/// Failed, error, flaky, passed, skipped; discovery order within each.
pub(crate) fn scenarios_in_order(report: &RunReport) -> Vec<&ScenarioResult> {
    let mut scenarios: Vec<&ScenarioResult> = report.scenarios.iter().collect();
    scenarios.sort_by_key(|s| Status::of(s));
    scenarios
}

/// One latency histogram of a scenario, as every report lists them.
pub(crate) struct Latency<'a> {
    /// For people: `end to end`, `llm planner`, `time to first token`, `inter-token`,
    /// `executor sandbox`.
    pub label: String,
    /// For machines (JUnit property names): `end_to_end`, `llm.planner`,
    /// `time_to_first_token`, `inter_token`, `executor.sandbox`.
    pub key: String,
    pub histo: &'a Histo,
}

/// A scenario's latency histograms in the order the reports show them: end to end, the
/// LLM calls per agent, time to first token, inter-token gaps, the executors; empty ones
/// left out.
pub(crate) fn latencies(m: &ScenarioMetrics) -> Vec<Latency<'_>> {
    fn one(label: String, key: String, histo: &Histo) -> Latency<'_> {
        Latency { label, key, histo }
    }
    let mut out = Vec::new();
    if let Some(h) = &m.end_to_end {
        out.push(one("end to end".into(), "end_to_end".into(), h));
    }
    for (agent, h) in &m.llm {
        out.push(one(format!("llm {agent}"), format!("llm.{agent}"), h));
    }
    if let Some(h) = &m.time_to_first_token {
        out.push(one(
            "time to first token".into(),
            "time_to_first_token".into(),
            h,
        ));
    }
    if let Some(h) = &m.inter_token {
        out.push(one("inter-token".into(), "inter_token".into(), h));
    }
    for (executor, h) in &m.executor {
        out.push(one(
            format!("executor {executor}"),
            format!("executor.{executor}"),
            h,
        ));
    }
    out.retain(|l| !l.histo.is_empty());
    out
}

/// Microseconds as milliseconds with one decimal: `812.3`.
/// Seconds with three decimals, as every report writes a duration.
pub(crate) fn secs(d: std::time::Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// A wall time for people: `3s 500ms`, `2m 5s 12ms`.
pub(crate) fn human(d: std::time::Duration) -> String {
    let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    humantime::format_duration(std::time::Duration::from_millis(millis)).to_string()
}

pub(crate) fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

/// `count=2000 p50=812.3ms p95=990.1ms p99=1020.4ms max=1100.0ms`: a histogram on one line.
pub(crate) fn latency_summary(h: &Histo) -> String {
    format!(
        "count={} p50={}ms p95={}ms p99={}ms max={}ms",
        h.len(),
        ms(h.percentile_us(50.0)),
        ms(h.percentile_us(95.0)),
        ms(h.percentile_us(99.0)),
        ms(h.max_us())
    )
}

/// `peak RSS 61.2 MiB · growth +12 KiB/run over 20 runs · CPU 14.2s · harness peak 30 MiB`.
pub(crate) fn memory_summary(m: &MemoryMetrics) -> String {
    let mut parts = vec![format!(
        "peak RSS {}",
        Unit::Bytes.format(m.peak_rss_bytes as f64)
    )];
    if let Some(growth) = m.growth_per_run_bytes {
        let sign = if growth > 0.0 { "+" } else { "" };
        parts.push(format!(
            "growth {sign}{}/run over {} {}",
            Unit::Bytes.format(growth),
            m.runs,
            if m.runs == 1 { "run" } else { "runs" }
        ));
    } else {
        parts.push(format!(
            "{} {}",
            m.runs,
            if m.runs == 1 { "run" } else { "runs" }
        ));
    }
    parts.push(format!("CPU {}", Unit::Seconds.format(m.cpu_seconds)));
    if let Some(harness) = m.harness_peak_rss_bytes {
        parts.push(format!(
            "harness peak {}",
            Unit::Bytes.format(harness as f64)
        ));
    }
    parts.join(" · ")
}

/// `constant_rate: 49.7/s achieved of 50/s intended · 2000 started, 1994 succeeded,
/// 2 failed, 4 dropped · 40.2s`.
pub(crate) fn load_summary(l: &LoadMetrics) -> String {
    let rate = |r: f64| format!("{}/s", trim1(r));
    let rates = match l.intended_rate {
        Some(intended) => format!(
            "{} achieved of {} intended",
            rate(l.achieved_rate),
            rate(intended)
        ),
        None => format!("{} achieved", rate(l.achieved_rate)),
    };
    format!(
        "{}: {rates} · {} started, {} succeeded, {} failed, {} dropped · {}",
        text::one_line(&l.model),
        l.started,
        l.succeeded,
        l.failed,
        l.dropped,
        Unit::Seconds.format(l.seconds)
    )
}

/// One decimal, trailing `.0` dropped.
fn trim1(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// A threshold judged, in words: `latency{agent=planner}: p95 < 800ms: observed 912.4ms`.
pub(crate) fn threshold_statement(t: &ThresholdResult) -> String {
    format!("{}: observed {}", t.name, t.observed)
}

/// The failed thresholds of `s` as failures of kind `threshold`, leaving out those the
/// harness already reported as one (a failure of kind `threshold` whose message names
/// the threshold), so each is shown once.
pub(crate) fn threshold_failures(s: &ScenarioResult) -> Vec<Failure> {
    s.metrics
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .filter(|t| {
            !s.failures
                .iter()
                .any(|f| f.kind == "threshold" && f.message.contains(&t.name))
        })
        .map(|t| Failure {
            kind: "threshold".to_owned(),
            message: threshold_statement(t),
            detail: String::new(),
        })
        .collect()
}

/// Every reason `s` did not pass: its failures, then its failed thresholds.
pub(crate) fn all_failures(s: &ScenarioResult) -> Vec<Failure> {
    let mut all = s.failures.clone();
    all.extend(threshold_failures(s));
    all
}

/// Failed or error, or (should the harness not have failed it) a threshold failed.
pub(crate) fn is_failing(s: &ScenarioResult) -> bool {
    matches!(s.outcome, Outcome::Failed | Outcome::Error)
        || s.metrics.thresholds.iter().any(|t| !t.passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FailedAttempt;
    use crate::test_support::{gate, report, scenario};

    #[test]
    fn headline_names_failing_critical_gates() {
        let mut r = report(Vec::new());
        r.verdict = Verdict::Fail;
        r.gates = vec![
            gate("ok", true, true),
            gate("e2e", true, false),
            gate("soft", false, false),
        ];
        assert_eq!(headline(&r), r#"FAIL — critical gate "e2e" failed"#);
        r.gates.push(gate("smoke", true, false));
        assert_eq!(
            headline(&r),
            r#"FAIL — critical gates "e2e" and "smoke" failed"#
        );
        r.gates.push(gate("c", true, false));
        assert_eq!(
            headline(&r),
            r#"FAIL — critical gates "e2e", "smoke" and "c" failed"#
        );
        r.gates.push(gate("d", true, false));
        assert_eq!(
            headline(&r),
            r#"FAIL — critical gates "e2e", "smoke" and 2 more failed"#
        );
    }

    #[test]
    fn headline_without_gates_gives_the_failing_counts() {
        let mut r = report(vec![
            scenario("a", Outcome::Failed),
            scenario("b", Outcome::Error),
            scenario("c", Outcome::Error),
        ]);
        r.verdict = Verdict::Fail;
        assert_eq!(headline(&r), "FAIL — 1 failed, 2 errors");
        r.scenarios.clear();
        assert_eq!(headline(&r), "FAIL");
    }

    #[test]
    fn headline_warns_and_passes() {
        let mut r = report(Vec::new());
        r.verdict = Verdict::Warn;
        r.gates = vec![gate("p95\nduration", false, false)];
        assert_eq!(
            headline(&r),
            r#"PASS with warnings — gate "p95 duration" failed"#
        );
        r.verdict = Verdict::Pass;
        assert_eq!(headline(&r), "PASS");
    }

    // Regression: an interrupted run with nothing finished was headed `PASS`.
    #[test]
    fn headline_of_an_interrupted_run_counts_what_was_not_run() {
        let interrupted = |name: &str| {
            let mut s = scenario(name, Outcome::Skipped);
            s.failures.push(crate::model::Failure {
                kind: "interrupted".into(),
                message: "not run to the end: the run was interrupted".into(),
                detail: String::new(),
            });
            s
        };
        let mut r = report(vec![interrupted("a"), interrupted("b")]);
        r.interrupted = true;
        r.verdict = Verdict::Interrupted;
        assert_eq!(headline(&r), "INTERRUPTED — 2 of 2 scenarios not run");
        r.scenarios.push(scenario("c", Outcome::Failed));
        r.scenarios.push(scenario("d", Outcome::Skipped));
        assert_eq!(
            headline(&r),
            "INTERRUPTED — 2 of 4 scenarios not run, 1 failed",
            "a scenario skipped by a filter is not counted as not run"
        );
    }

    #[test]
    fn counts_put_flaky_among_passed() {
        let mut flaky = scenario("f", Outcome::Passed);
        flaky.failed_attempts.push(FailedAttempt {
            duration: std::time::Duration::ZERO,
            failures: Vec::new(),
        });
        let r = report(vec![
            scenario("a", Outcome::Passed),
            flaky,
            scenario("b", Outcome::Skipped),
        ]);
        assert_eq!(counts(&r), "2 passed (1 flaky), 1 skipped");
        assert_eq!(counts(&report(Vec::new())), "no scenarios");
    }

    fn threshold(name: &str, passed: bool) -> ThresholdResult {
        ThresholdResult {
            name: name.into(),
            passed,
            observed: "912.4ms".into(),
        }
    }

    #[test]
    fn failed_thresholds_are_failures_once() {
        let mut s = scenario("load", Outcome::Failed);
        s.metrics.thresholds = vec![
            threshold("p95 < 800ms", false),
            threshold("p99 < 1s", false),
            threshold("max < 1h", true),
        ];
        // The harness reported one of them itself.
        s.failures.push(Failure {
            kind: "threshold".into(),
            message: "`p99 < 1s` failed: 1.2s".into(),
            detail: String::new(),
        });
        let messages: Vec<String> = all_failures(&s).into_iter().map(|f| f.message).collect();
        assert_eq!(
            messages,
            ["`p99 < 1s` failed: 1.2s", "p95 < 800ms: observed 912.4ms"]
        );
        // A failed threshold makes a scenario failing, whatever its outcome says.
        s.outcome = Outcome::Passed;
        assert!(is_failing(&s));
        s.metrics.thresholds.retain(|t| t.passed);
        assert!(!is_failing(&s));
    }

    #[test]
    fn latencies_come_in_report_order_without_empty_ones() {
        let one = || {
            let mut h = Histo::new();
            h.record(std::time::Duration::from_millis(3));
            h
        };
        let m = ScenarioMetrics {
            executor: [("sandbox".to_owned(), one())].into(),
            inter_token: Some(Histo::new()),
            llm: [("planner".to_owned(), one()), ("coder".to_owned(), one())].into(),
            end_to_end: Some(one()),
            ..ScenarioMetrics::default()
        };
        let keys: Vec<String> = latencies(&m).into_iter().map(|l| l.key).collect();
        assert_eq!(
            keys,
            ["end_to_end", "llm.coder", "llm.planner", "executor.sandbox"]
        );
        assert_eq!(
            latency_summary(m.end_to_end.as_ref().unwrap()),
            "count=1 p50=3.0ms p95=3.0ms p99=3.0ms max=3.0ms"
        );
    }

    #[test]
    fn memory_and_load_read_as_words() {
        let memory = MemoryMetrics {
            peak_rss_bytes: 3 * 1024 * 1024,
            cpu_seconds: 1.5,
            runs: 20,
            growth_per_run_bytes: Some(-2048.0),
            timeline: Vec::new(),
            harness_peak_rss_bytes: None,
            sampler_cpu_seconds: None,
        };
        assert_eq!(
            memory_summary(&memory),
            "peak RSS 3 MiB · growth -2 KiB/run over 20 runs · CPU 1.5s"
        );
        let load = LoadMetrics {
            model: "constant_concurrency".into(),
            intended_rate: None,
            achieved_rate: 12.0,
            started: 120,
            succeeded: 119,
            failed: 1,
            dropped: 0,
            seconds: 10.0,
        };
        assert_eq!(
            load_summary(&load),
            "constant_concurrency: 12/s achieved · 120 started, 119 succeeded, 1 failed, 0 dropped · 10s"
        );
    }

    #[test]
    fn gates_sort_failing_critical_first() {
        let mut r = report(Vec::new());
        r.gates = vec![
            gate("held", true, true),
            gate("warned", false, false),
            gate("failed", true, false),
            gate("held too", false, true),
        ];
        let names: Vec<&str> = gates_in_order(&r).iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["failed", "warned", "held", "held too"]);
    }
}
