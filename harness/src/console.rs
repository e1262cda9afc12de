//! The console reporter: a progress bar while scenarios run (on a terminal), one line per
//! finished scenario, and a summary that explains every failure.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reports::{Outcome, ScenarioResult};

use crate::runner::{Reporter, RunEvent};

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
                self.bar.set_message(planned.scenario.id.clone());
            }
            RunEvent::ScenarioFinished { result, .. } => {
                self.bar.inc(1);
                self.line(format!(
                    "{:>12} [{:>7.3}s] {}  {}",
                    label(result.outcome),
                    result.duration.as_secs_f64(),
                    result.path,
                    result.name
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
                    .filter(|s| matches!(s.outcome, Outcome::Failed | Outcome::Error))
                    .collect();
                for s in &failed {
                    eprint!("\n--- {}", explain(s));
                    eprintln!(
                        "    (replay the same choices with `--seed {}`)",
                        report.seed
                    );
                }
                let (passed, failed_n, errors, skipped) = report.counts();
                eprintln!(
                    "\n     Summary [{:>7.3}s] {} scenario{}: {passed} passed, {failed_n} failed, {errors} errors, {skipped} skipped{}",
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

fn label(outcome: Outcome) -> &'static str {
    match outcome {
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
        label(result.outcome),
        result.path,
        result.name,
        result.target,
        result.seed
    );
    for f in &result.failures {
        out.push_str(&format!("  ✗ {}\n", f.message));
        for line in f.detail.lines().filter(|l| !l.is_empty()) {
            out.push_str(&format!("      {line}\n"));
        }
    }
    out
}

/// A load error as the user sees it: a diagnostic with its excerpt, or one line.
pub fn render_load_error(e: &crate::errors::LoadError) -> String {
    match e {
        crate::errors::LoadError::Invalid(d) => d.render(),
        other => format!("error: {}", crate::runner::error_chain(other)),
    }
}
