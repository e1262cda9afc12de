//! The console reporter: a progress bar while scenarios run (on a terminal), one line per
//! finished scenario, and a summary that explains every failure.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reports::{Outcome, ScenarioResult};

use crate::events::{Reporter, RunEvent};

/// Writes to stderr; stdout stays free for machine-readable output.
pub struct ConsoleReporter {
    bar: ProgressBar,
}

impl ConsoleReporter {
    pub fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        ConsoleReporter { bar }
    }

    fn line(&self, text: String) {
        self.bar.suspend(|| eprintln!("{text}"));
    }
}

impl Default for ConsoleReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for ConsoleReporter {
    fn event(&mut self, event: RunEvent<'_>) {
        match event {
            RunEvent::Started { total, jobs, seed } => {
                self.bar.set_length(total as u64);
                self.line(format!(
                    "    Starting {total} scenario{} ({jobs} at a time, seed {seed})",
                    plural(total)
                ));
            }
            RunEvent::ScenarioStarted { planned } => {
                self.bar.set_message(planned.scenario.id.to_string());
            }
            RunEvent::ScenarioFinished { result, .. } => {
                self.bar.inc(1);
                let attempts = if result.attempts() > 1 {
                    format!(" ({} attempts)", result.attempts())
                } else {
                    String::new()
                };
                self.line(format!(
                    "{:>12} [{:>7.3}s] {}  {}  (target `{}`){attempts}",
                    label(result),
                    result.duration.as_secs_f64(),
                    result.path,
                    result.name,
                    result.target
                ));
            }
            RunEvent::Aborted { reason, running } => {
                self.line(format!(
                    "     Aborted {reason}; stopping {running} running scenario(s) and rolling back"
                ));
            }
            RunEvent::Interrupted { running } => {
                self.line(format!(
                    " Interrupted: stopping {running} running scenario{} and writing reports",
                    plural(running)
                ));
            }
            RunEvent::Finished { report } => {
                self.bar.finish_and_clear();
                let failed: Vec<&ScenarioResult> = report
                    .scenarios
                    .iter()
                    .filter(|s| {
                        matches!(s.outcome, Outcome::Failed | Outcome::Error) || s.is_flaky()
                    })
                    .collect();
                for s in &failed {
                    eprint!("\n--- {}", explain(s));
                    eprintln!(
                        "    (replay the same choices with `--seed {}`)",
                        report.seed
                    );
                }
                let (passed, failed_n, errors, skipped) = report.counts();
                let flaky = report.scenarios.iter().filter(|s| s.is_flaky()).count();
                eprintln!(
                    "\n     Summary [{:>7.3}s] {} scenario{}: {passed} passed ({flaky} flaky), {failed_n} failed, {errors} errors, {skipped} skipped{}",
                    report.duration.as_secs_f64(),
                    report.scenarios.len(),
                    plural(report.scenarios.len()),
                    if report.interrupted {
                        " (interrupted)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
}

fn label(result: &ScenarioResult) -> &'static str {
    match result.outcome {
        Outcome::Passed if result.is_flaky() => "FLAKY",
        Outcome::Passed => "PASS",
        Outcome::Failed => "FAIL",
        Outcome::Error => "ERROR",
        Outcome::Skipped => "SKIP",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A scenario's failures as a person reads them: each message, then its detail indented.
pub fn explain(result: &ScenarioResult) -> String {
    let mut out = format!(
        "{} {} ({}), target `{}`, seed {}\n",
        label(result),
        result.path,
        result.name,
        result.target,
        result.seed
    );
    push_failures(&mut out, &result.failures);
    for (i, attempt) in result.failed_attempts.iter().enumerate() {
        out.push_str(&format!(
            "  attempt {} of {} failed:\n",
            i + 1,
            result.attempts()
        ));
        push_failures(&mut out, &attempt.failures);
    }
    out
}

fn push_failures(out: &mut String, list: &[reports::Failure]) {
    for f in list {
        out.push_str(&format!("  ✗ {}\n", f.message));
        for line in f.detail.lines().filter(|l| !l.is_empty()) {
            out.push_str(&format!("      {line}\n"));
        }
    }
}

/// The gates and the verdict, after the summary.
pub fn print_gates(report: &reports::RunReport) {
    if !report.gates.is_empty() {
        eprintln!("\n       Gates");
    }
    for g in &report.gates {
        let status = match (g.passed, g.critical) {
            (true, _) => "PASS",
            (false, true) => "FAIL",
            (false, false) => "WARN",
        };
        eprintln!(
            "{status:>12} {}{}: {} {}, target {}",
            g.name,
            if g.critical { "" } else { " (non-critical)" },
            g.metric,
            g.actual.as_deref().unwrap_or("(nothing measured)"),
            g.target
        );
        if !g.passed {
            eprintln!("             {}", g.detail);
        }
    }
    let verdict = match report.verdict {
        reports::Verdict::Pass => "PASS".to_owned(),
        reports::Verdict::Warn => "PASS with warnings (a non-critical gate failed)".to_owned(),
        reports::Verdict::Fail if report.gates.is_empty() => {
            "FAIL (a scenario did not pass)".to_owned()
        }
        reports::Verdict::Fail => "FAIL (a critical gate failed)".to_owned(),
        reports::Verdict::Interrupted => format!(
            "INTERRUPTED ({} of {} scenarios not run; neither pass nor fail)",
            report.not_run(),
            report.scenarios.len()
        ),
    };
    eprintln!("     Verdict {verdict}");
}

/// A load error as the user sees it: a diagnostic with its excerpt, or one line.
pub fn render_load_error(e: &crate::errors::LoadError) -> String {
    match e {
        crate::errors::LoadError::Invalid(d) => d.render(),
        other => format!("error: {}", crate::errors::error_chain(other)),
    }
}
