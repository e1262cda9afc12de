//! What the reports for people (`summary.md`, `report.html`) show the same way: the
//! headline that states the verdict, the counts, the order of the gates, and each
//! scenario's status. The strings are raw (cleaned to one line, not escaped): each format
//! escapes them where they land.

use crate::model::{GateResult, Outcome, RunReport, ScenarioResult, Verdict};
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
