//! `harness perf` / `cargo xtask perf`: run the performance scenarios, then save their
//! latency as a named baseline or compare with one (see [`crate::baseline`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::baseline::{self, Baseline, Verdict};
use crate::exit_codes;
use crate::run_cmd::RunArgs;

/// The flags of `harness perf` and `cargo xtask perf`.
#[derive(Debug, Clone, Args)]
pub struct PerfArgs {
    /// Save this run's latencies as the baseline NAME.
    #[arg(long, value_name = "NAME")]
    pub save_baseline: Option<String>,
    /// Compare this run with the baseline NAME; a regression exits 4.
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// The largest rise of a scenario's median latency that is not a regression.
    #[arg(long, default_value = "20%", value_parser = parse_percent)]
    pub max_regression: f64,
    /// Where baselines are kept.
    #[arg(long, default_value = "target/harness/baselines")]
    pub baselines: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    s.trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|v| *v >= 0.0)
        .map(|v| v / 100.0)
        .ok_or_else(|| format!("`{s}` is not a percentage like `20%`"))
}

pub fn execute(args: &PerfArgs) -> ExitCode {
    // Read the baseline first: a missing one is a usage error before anything runs.
    let base = match &args.baseline {
        Some(name) => match Baseline::load(&baseline_file(args, name)) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit_codes::INVALID_INPUT);
            }
        },
        None => None,
    };
    let (report, gates) = match crate::run_cmd::run(&args.run, &Default::default()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // The comparison is a gate of its own, so it heads every report like the others.
    let deltas = base
        .as_ref()
        .map(|b| baseline::compare(b, &report, args.max_regression));
    let regression_gate = match (&base, &deltas) {
        (Some(base), Some(deltas)) => {
            print_deltas(&base.name, deltas, args.max_regression);
            vec![regression_gate(&base.name, deltas, args.max_regression)]
        }
        _ => Vec::new(),
    };
    let regressed = regression_gate.iter().any(|g| !g.passed);
    let (mut code, own_verdict) = crate::run_cmd::finish_with(
        report.clone(),
        gates.as_deref(),
        &args.run.out,
        regression_gate,
    );
    if let Some(name) = &args.save_baseline {
        let file = baseline_file(args, name);
        match Baseline::of(name, &report).save(&file) {
            Ok(()) => eprintln!("    Baseline `{name}` saved to {}", file.display()),
            Err(e) => {
                eprintln!("error: cannot save baseline `{}`: {e}", file.display());
                return ExitCode::from(exit_codes::HARNESS_ERROR);
            }
        }
    }
    if regressed
        && own_verdict != reports::Verdict::Fail
        && code == ExitCode::from(exit_codes::VERDICT_FAIL)
    {
        // Everything else held: the documented code for a regression.
        code = ExitCode::from(exit_codes::REGRESSION);
    }
    code
}

/// The comparison with a baseline, as a gate: critical, passed when nothing regressed.
fn regression_gate(name: &str, deltas: &[baseline::Delta], bound: f64) -> reports::GateResult {
    let regressed: Vec<&baseline::Delta> = deltas
        .iter()
        .filter(|d| d.verdict == Verdict::Regressed)
        .collect();
    let worst = regressed
        .iter()
        .map(|d| d.change)
        .fold(f64::NEG_INFINITY, f64::max);
    reports::GateResult {
        name: format!("no regression against baseline `{name}`"),
        critical: true,
        metric: "scenarios whose median latency rose beyond the bound (KS p < 0.001)".into(),
        target: format!("0 above +{:.0}%", bound * 100.0),
        actual: Some(if regressed.is_empty() {
            format!("0 of {}", deltas.len())
        } else {
            format!(
                "{} of {} (worst +{:.1}%)",
                regressed.len(),
                deltas.len(),
                worst * 100.0
            )
        }),
        value: Some(regressed.len() as f64),
        passed: regressed.is_empty(),
        detail: regressed
            .iter()
            .map(|d| {
                format!(
                    "{}: p50 {:.1}ms -> {:.1}ms",
                    d.scenario,
                    d.base_p50_us / 1000.0,
                    d.new_p50_us / 1000.0
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn baseline_file(args: &PerfArgs, name: &str) -> PathBuf {
    args.baselines.join(format!("{name}.json"))
}

fn print_deltas(name: &str, deltas: &[baseline::Delta], bound: f64) {
    eprintln!(
        "\n    Baseline `{name}` (regression: median up > {:.0}% and KS p < 0.001)",
        bound * 100.0
    );
    eprintln!(
        "    {:<44} {:>10} {:>10} {:>8} {:>10} {:>9}  verdict",
        "scenario", "p50 before", "p50 now", "change", "p95 now", "KS p"
    );
    for d in deltas {
        let verdict = match d.verdict {
            Verdict::Regressed => "REGRESSED",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::NotCompared => "too few samples",
            Verdict::Exempt => "not judged (baseline-exempt)",
        };
        eprintln!(
            "    {:<44} {:>8.1}ms {:>8.1}ms {:>+7.1}% {:>8.1}ms {:>9.2e}  {verdict}",
            d.scenario,
            d.base_p50_us / 1000.0,
            d.new_p50_us / 1000.0,
            d.change * 100.0,
            d.new_p95_us / 1000.0,
            d.p_value
        );
    }
}
