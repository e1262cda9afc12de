//! What the runner tells reporters ([`RunEvent`]), in order, and the [`Reporter`] trait
//! they implement (the console's progress, a no-op for tests).

use reports::{RunReport, ScenarioResult};

use crate::plan::Planned;

/// What the runner tells reporters, in order.
#[derive(Debug)]
pub enum RunEvent<'a> {
    Started {
        total: usize,
        jobs: usize,
        seed: u64,
    },
    ScenarioStarted {
        planned: &'a Planned,
    },
    ScenarioFinished {
        result: &'a ScenarioResult,
        done: usize,
        total: usize,
    },
    Interrupted {
        running: usize,
    },
    /// A drill's abort condition held: the running scenarios were stopped.
    Aborted {
        reason: &'a str,
        running: usize,
    },
    Finished {
        report: &'a RunReport,
    },
}

/// Consumes the runner's events (console output, progress).
pub trait Reporter {
    fn event(&mut self, event: RunEvent<'_>);
}

/// A reporter that ignores everything; useful for tests and library use.
pub struct NoopReporter;

impl Reporter for NoopReporter {
    fn event(&mut self, _: RunEvent<'_>) {}
}
