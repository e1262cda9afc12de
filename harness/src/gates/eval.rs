//! Measuring each gate's metric over a run's results and judging it.

use reports::{GateResult, Outcome, RunReport, ScenarioResult, Verdict};

use super::model::{Aggregate, Gate, Metric, Select};

/// Evaluates every gate over `report`; the results in order, and the verdict.
pub fn evaluate(gates: &[Gate], report: &RunReport) -> (Vec<GateResult>, Verdict) {
    let results: Vec<GateResult> = gates.iter().map(|g| evaluate_one(g, report)).collect();
    let verdict = if results.iter().any(|r| r.critical && !r.passed) {
        Verdict::Fail
    } else if results.iter().any(|r| !r.passed) {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    (results, verdict)
}

/// The policy without a gates file: every scenario that ran must pass.
pub fn verdict_without_gates(report: &RunReport) -> Verdict {
    if report
        .scenarios
        .iter()
        .any(|s| matches!(s.outcome, Outcome::Failed | Outcome::Error))
    {
        Verdict::Fail
    } else {
        Verdict::Pass
    }
}

fn selected<'a>(select: &Select, report: &'a RunReport) -> Vec<&'a ScenarioResult> {
    report
        .scenarios
        .iter()
        .filter(|s| s.outcome != Outcome::Skipped)
        .filter(|s| select.tag.as_ref().is_none_or(|t| s.tags.contains(t)))
        .filter(|s| {
            select.folder.as_ref().is_none_or(|f| {
                let f = f.trim_end_matches('/');
                s.path.starts_with(&format!("{f}/"))
            })
        })
        .collect()
}

fn describe_selection(select: &Select) -> String {
    match (&select.tag, &select.folder) {
        (None, None) => "all scenarios".into(),
        (Some(t), None) => format!("tag `{t}`"),
        (None, Some(f)) => format!("folder `{f}`"),
        (Some(t), Some(f)) => format!("tag `{t}` in folder `{f}`"),
    }
}

fn evaluate_one(gate: &Gate, report: &RunReport) -> GateResult {
    let chosen = selected(&gate.select, report);
    let scope = describe_selection(&gate.select);
    let (metric, measured): (String, Option<(f64, String, String)>) = match &gate.metric {
        Metric::PassRate => {
            let passed: Vec<_> = chosen
                .iter()
                .filter(|s| s.outcome == Outcome::Passed)
                .collect();
            let failed: Vec<String> = chosen
                .iter()
                .filter(|s| s.outcome != Outcome::Passed)
                .map(|s| s.path.clone())
                .collect();
            let measured = (!chosen.is_empty()).then(|| {
                let rate = 100.0 * passed.len() as f64 / chosen.len() as f64;
                let detail = if failed.is_empty() {
                    format!("{} scenarios, all passed", chosen.len())
                } else {
                    format!("did not pass: {}", failed.join(", "))
                };
                (
                    rate,
                    format!("{rate:.1}% ({}/{})", passed.len(), chosen.len()),
                    detail,
                )
            });
            (format!("pass rate of {scope}"), measured)
        }
        Metric::Duration { percentile } => {
            let mut secs: Vec<f64> = chosen.iter().map(|s| s.duration.as_secs_f64()).collect();
            secs.sort_by(f64::total_cmp);
            let measured = nearest_rank(&secs, *percentile).map(|v| {
                let slowest = chosen
                    .iter()
                    .max_by(|a, b| a.duration.cmp(&b.duration))
                    .map(|s| format!("; slowest: {} ({:.3}s)", s.path, s.duration.as_secs_f64()))
                    .unwrap_or_default();
                (
                    v,
                    format!("{v:.3}s"),
                    format!("over {} scenarios{slowest}", secs.len()),
                )
            });
            (
                format!(
                    "p{} of scenario duration over {scope}",
                    fmt_num(*percentile)
                ),
                measured,
            )
        }
        Metric::Output { pointer, aggregate } => {
            let values: Vec<f64> = chosen
                .iter()
                .filter_map(|s| s.output.as_ref()?.pointer(pointer)?.as_f64())
                .collect();
            let measured = aggregate_of(&values, *aggregate).map(|v| {
                (
                    v,
                    fmt_num(v),
                    format!(
                        "from {} of {} scenarios reporting `{pointer}`",
                        values.len(),
                        chosen.len()
                    ),
                )
            });
            let name = match aggregate {
                Aggregate::Sum => "sum",
                Aggregate::Mean => "mean",
                Aggregate::Max => "max",
                Aggregate::Min => "min",
            };
            (format!("{name} of `{pointer}` over {scope}"), measured)
        }
    };
    match measured {
        Some((value, actual, detail)) => GateResult {
            name: gate.name.clone(),
            critical: gate.critical,
            metric,
            target: gate.target_text.clone(),
            actual: Some(actual),
            value: Some(value),
            passed: gate.target.holds(value),
            detail,
        },
        // Nothing to measure is a failure: a gate over nothing guards nothing.
        None => GateResult {
            name: gate.name.clone(),
            critical: gate.critical,
            metric,
            target: gate.target_text.clone(),
            actual: None,
            value: None,
            passed: false,
            detail: "nothing to measure: no scenario was selected, or none reported the value"
                .into(),
        },
    }
}

/// The nearest-rank percentile of sorted values.
fn nearest_rank(sorted: &[f64], percentile: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((percentile / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn aggregate_of(values: &[f64], aggregate: Aggregate) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(match aggregate {
        Aggregate::Sum => values.iter().sum(),
        Aggregate::Mean => values.iter().sum::<f64>() / values.len() as f64,
        Aggregate::Max => values.iter().copied().fold(f64::MIN, f64::max),
        Aggregate::Min => values.iter().copied().fold(f64::MAX, f64::min),
    })
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}").trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::gates::model::{Cmp, Target};

    fn scenario(
        path: &str,
        tags: &[&str],
        outcome: Outcome,
        millis: u64,
        tokens: Option<f64>,
    ) -> ScenarioResult {
        ScenarioResult {
            name: path.into(),
            path: path.into(),
            suite: path.rsplit_once('/').map_or(".", |p| p.0).into(),
            target: "refpipe".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            seed: 1,
            outcome,
            duration: Duration::from_millis(millis),
            failures: Vec::new(),
            journal: Vec::new(),
            exit_code: Some(0),
            stderr_tail: String::new(),
            output: tokens.map(|t| serde_json::json!({"usage": {"total_tokens": t}})),
            failed_attempts: Vec::new(),
            metrics: Default::default(),
        }
    }

    fn report(scenarios: Vec<ScenarioResult>) -> RunReport {
        RunReport {
            tool: "t".into(),
            started_at: "x".into(),
            duration: Duration::ZERO,
            seed: 1,
            interrupted: false,
            scenarios,
            gates: Vec::new(),
            verdict: Verdict::Pass,
            partition: None,
        }
    }

    fn gate(
        name: &str,
        critical: bool,
        select: Select,
        metric: Metric,
        cmp: Cmp,
        value: f64,
    ) -> Gate {
        Gate {
            name: name.into(),
            critical,
            select,
            metric,
            target: Target { cmp, value },
            target_text: format!("{cmp} {value}"),
        }
    }

    fn sample() -> RunReport {
        report(vec![
            scenario("a/one.toml", &["smoke"], Outcome::Passed, 100, Some(100.0)),
            scenario("a/two.toml", &["smoke"], Outcome::Failed, 300, Some(300.0)),
            scenario("b/three.toml", &[], Outcome::Passed, 200, None),
            scenario("b/four.toml", &[], Outcome::Skipped, 0, None),
        ])
    }

    #[test]
    fn pass_rate_by_tag_and_folder_skipped_not_counted() {
        let r = sample();
        let by_tag = Select {
            tag: Some("smoke".into()),
            folder: None,
        };
        let (res, verdict) = evaluate(
            &[gate("g", true, by_tag, Metric::PassRate, Cmp::Ge, 80.0)],
            &r,
        );
        assert_eq!(res[0].value, Some(50.0));
        assert_eq!(res[0].actual.as_deref(), Some("50.0% (1/2)"));
        assert!(res[0].detail.contains("a/two.toml"));
        assert_eq!(verdict, Verdict::Fail);
        let by_folder = Select {
            tag: None,
            folder: Some("b".into()),
        };
        let (res, verdict) = evaluate(
            &[gate("g", true, by_folder, Metric::PassRate, Cmp::Ge, 100.0)],
            &r,
        );
        assert_eq!(
            res[0].value,
            Some(100.0),
            "the skipped scenario does not count"
        );
        assert_eq!(verdict, Verdict::Pass);
    }

    #[test]
    fn a_failing_non_critical_gate_only_warns() {
        let all = Select::default();
        let gates = [
            gate("rate", true, all.clone(), Metric::PassRate, Cmp::Ge, 50.0),
            gate(
                "p95",
                false,
                all,
                Metric::Duration { percentile: 95.0 },
                Cmp::Lt,
                0.25,
            ),
        ];
        let (res, verdict) = evaluate(&gates, &sample());
        assert!(res[0].passed);
        assert!(!res[1].passed);
        assert_eq!(res[1].value, Some(0.3));
        assert_eq!(verdict, Verdict::Warn);
    }

    #[test]
    fn output_aggregates_over_the_scenarios_that_report_the_value() {
        let metric = |aggregate| Metric::Output {
            pointer: "/usage/total_tokens".into(),
            aggregate,
        };
        let r = sample();
        let eval = |a| {
            evaluate(
                &[gate("t", true, Select::default(), metric(a), Cmp::Le, 1e9)],
                &r,
            )
            .0[0]
                .value
        };
        assert_eq!(eval(Aggregate::Sum), Some(400.0));
        assert_eq!(eval(Aggregate::Mean), Some(200.0));
        assert_eq!(eval(Aggregate::Max), Some(300.0));
        assert_eq!(eval(Aggregate::Min), Some(100.0));
    }

    #[test]
    fn a_gate_over_nothing_fails() {
        let none = Select {
            tag: Some("nope".into()),
            folder: None,
        };
        let (res, _) = evaluate(
            &[gate("g", true, none, Metric::PassRate, Cmp::Ge, 0.0)],
            &sample(),
        );
        assert!(!res[0].passed && res[0].actual.is_none());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(nearest_rank(&v, 95.0), Some(10.0));
        assert_eq!(nearest_rank(&v, 50.0), Some(5.0));
        assert_eq!(nearest_rank(&v, 10.0), Some(1.0));
        assert_eq!(nearest_rank(&[], 50.0), None);
    }
}
