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
        Metric::SuccessRate { .. } => {
            let (succeeded, runs) = runs_of(&chosen);
            let measured = (runs > 0).then(|| {
                let rate = 100.0 * succeeded as f64 / runs as f64;
                (
                    rate,
                    format!("{rate:.1}% ({succeeded}/{runs} runs)"),
                    format!("{runs} runs over {} scenarios", chosen.len()),
                )
            });
            (format!("run success rate of {scope}"), measured)
        }
        Metric::Latency { percentile } => {
            let mut merged = reports::metrics::Histo::new();
            for s in &chosen {
                if let Some(h) = &s.metrics.end_to_end {
                    merged.merge(h);
                }
            }
            let measured = (!merged.is_empty()).then(|| {
                let v = merged.percentile_us(*percentile) as f64 / 1e6;
                (
                    v,
                    format!("{v:.3}s"),
                    format!(
                        "over {} runs of {} scenarios; max {:.3}s",
                        merged.len(),
                        chosen.len(),
                        merged.max_us() as f64 / 1e6
                    ),
                )
            });
            (
                format!("p{} of run latency over {scope}", fmt_num(*percentile)),
                measured,
            )
        }
    };
    // Too few runs is a failure whatever they measured: the gate promises a sample size.
    let too_few = match (&gate.metric, &measured) {
        (Metric::SuccessRate { min_runs }, Some(_)) => {
            let (_, runs) = runs_of(&chosen);
            (runs < *min_runs).then(|| {
                format!(
                    "; only {runs} runs were measured, and the gate needs at least {min_runs} (hint: a `[load]` or a `[matrix]` makes more runs)"
                )
            })
        }
        _ => None,
    };
    match measured {
        Some((value, actual, detail)) => GateResult {
            passed: gate.target.holds(value) && too_few.is_none(),
            detail: detail + too_few.as_deref().unwrap_or(""),
            name: gate.name.clone(),
            critical: gate.critical,
            metric,
            target: gate.target_text.clone(),
            actual: Some(actual),
            value: Some(value),
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

/// (runs that succeeded, runs): each run of a load, and a scenario without one as one run.
fn runs_of(chosen: &[&ScenarioResult]) -> (u64, u64) {
    chosen
        .iter()
        .fold((0, 0), |(ok, all), s| match &s.metrics.load {
            Some(l) => (ok + l.succeeded, all + l.succeeded + l.failed),
            None => (ok + u64::from(s.outcome == Outcome::Passed), all + 1),
        })
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

    /// A load of `runs` runs, `failed` of them failed, each run taking `millis`.
    fn load(path: &str, runs: u64, failed: u64, millis: u64) -> ScenarioResult {
        let mut s = scenario(path, &["load"], Outcome::Passed, 5000, None);
        let mut h = reports::metrics::Histo::new();
        for _ in 0..runs {
            h.record(Duration::from_millis(millis));
        }
        s.metrics.end_to_end = Some(h);
        s.metrics.load = Some(reports::metrics::LoadMetrics {
            started: runs,
            succeeded: runs - failed,
            failed,
            ..Default::default()
        });
        s
    }

    #[test]
    fn success_rate_counts_every_run_of_a_load_and_needs_its_sample() {
        let r = report(vec![
            load("perf/load.toml", 40, 4, 100),
            scenario("flow/one.toml", &[], Outcome::Passed, 100, None),
            scenario("flow/two.toml", &[], Outcome::Failed, 100, None),
        ]);
        let rate = |min_runs| {
            evaluate(
                &[gate(
                    "e2e",
                    true,
                    Select::default(),
                    Metric::SuccessRate { min_runs },
                    Cmp::Gt,
                    80.0,
                )],
                &r,
            )
            .0
            .remove(0)
        };
        let g = rate(42);
        assert_eq!(g.value, Some(100.0 * 37.0 / 42.0));
        assert_eq!(g.actual.as_deref(), Some("88.1% (37/42 runs)"));
        assert!(g.passed, "{g:?}");
        let g = rate(50);
        assert!(!g.passed, "42 runs are fewer than 50");
        assert!(
            g.detail.contains("only 42 runs were measured") && g.detail.contains("at least 50"),
            "{}",
            g.detail
        );
    }

    #[test]
    fn latency_merges_the_runs_of_every_selected_scenario() {
        // 90 runs at 100ms and 10 at 2s: p95 is 2s, p50 100ms.
        let r = report(vec![
            load("perf/a.toml", 90, 0, 100),
            load("perf/b.toml", 10, 0, 2000),
            scenario("flow/x.toml", &[], Outcome::Passed, 100, None),
        ]);
        let p = |percentile| {
            evaluate(
                &[gate(
                    "lat",
                    false,
                    Select {
                        tag: Some("load".into()),
                        folder: None,
                    },
                    Metric::Latency { percentile },
                    Cmp::Lt,
                    1.0,
                )],
                &r,
            )
            .0
            .remove(0)
        };
        let g = p(95.0);
        assert!((g.value.unwrap() - 2.0).abs() < 0.01, "{g:?}");
        assert!(!g.passed && g.detail.contains("over 100 runs of 2 scenarios"));
        let g = p(50.0);
        assert!((g.value.unwrap() - 0.1).abs() < 0.001, "{g:?}");
        assert!(g.passed);
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
