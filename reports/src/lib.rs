//! The result model of an agent-harness run and the writers that turn it into reports.
//!
//! The harness fills one [`RunReport`]: the run's seed, start time and wall time, a
//! [`ScenarioResult`] per scenario with its [`Outcome`], its [`Failure`]s, its earlier
//! [`FailedAttempt`]s, what its stubs saw ([`JournalEntry`]), the target's exit code
//! and stderr tail, and what was measured ([`metrics::ScenarioMetrics`]: latency
//! histograms, memory, load, thresholds); then the [`GateResult`]s and the [`Verdict`]
//! they give. This crate knows nothing of scenarios, stubs, targets or gate definitions
//! beyond that; it only reads the model. Shards of a partitioned run put their metrics
//! back together with [`metrics::merge_metrics`], exactly: the histograms in
//! `results.json` carry their HdrHistogram encoding.
//!
//! ```text
//! harness ──fills──▶ RunReport ──▶ junit::render     ─▶ junit.xml      CI test reporters
//!                                ├▶ json::render      ─▶ results.json   tools, baselines
//!                                ├▶ markdown::render  ─▶ summary.md     a CI job summary
//!                                ├▶ html::render      ─▶ report.html    a person, in a browser
//!                                └▶ (per scenario)    ─▶ journal/<scenario>.json
//! ```
//!
//! Each format module has one entry point, a pure `render(&RunReport) -> String`, used
//! directly by golden tests. [`write_all`] renders every format and writes each file
//! atomically (a temporary file beside it, then a rename), so a report on disk is never
//! half-written, even when the run is interrupted.
//!
//! The renderers accept any strings: ANSI colour codes and control characters in a
//! target's stderr are removed from the XML, Markdown and HTML, and everything is escaped
//! for where it lands. `results.json` and the journals keep the strings as they are;
//! `schema/results.schema.json` describes `results.json`.
//!
//! # Adding a report format
//!
//! 1. A module with one entry point, `pub fn render(report: &RunReport) -> String`, pure.
//!    Pass every string from the report through `text::clean` (or `text::one_line`)
//!    unless the format is a faithful data dump, then escape for the format.
//! 2. A file name constant and a line in [`write_all`], and a field in [`Written`].
//! 3. A golden file rendered from `tests/integration/fixture.rs` (or, for a format too
//!    big to review as a golden file, as HTML, tests of what it must contain), and a
//!    well-formedness check in `tests/integration/hostile.rs`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use reports::{Outcome, RunReport, ScenarioResult, Verdict};
//!
//! let report = RunReport {
//!     tool: "agent-harness 0.1.0".into(),
//!     started_at: "2025-06-01T12:00:00Z".into(),
//!     duration: Duration::from_millis(840),
//!     seed: 42,
//!     interrupted: false,
//!     scenarios: vec![ScenarioResult {
//!         name: "happy path".into(),
//!         path: "refpipe/happy_path.toml".into(),
//!         suite: "refpipe".into(),
//!         target: "refpipe".into(),
//!         tags: vec!["smoke".into()],
//!         seed: 42,
//!         outcome: Outcome::Passed,
//!         duration: Duration::from_millis(812),
//!         failures: Vec::new(),
//!         journal: Vec::new(),
//!         exit_code: Some(0),
//!         stderr_tail: String::new(),
//!         output: None,
//!         metrics: Default::default(),
//!         failed_attempts: Vec::new(),
//!     }],
//!     gates: Vec::new(),
//!     verdict: Verdict::Pass,
//!     partition: None,
//! };
//!
//! // Pure rendering, e.g. for a golden test or to print.
//! assert!(reports::markdown::render(&report).starts_with("## ✅ agent-harness: PASS"));
//!
//! // Everything, atomically, into one directory.
//! let out = tempfile::tempdir()?;
//! let written = reports::write_all(&report, out.path())?;
//! assert_eq!(written.journals, [out.path().join("journal/refpipe__happy_path.json")]);
//! assert!(std::fs::read_to_string(&written.junit)?.contains(r#"<testcase name="happy path""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod metrics;
pub mod model;

mod atomic;
mod errors;
mod journal;
mod svg;
mod text;
mod view;
mod write;

#[cfg(test)]
mod test_support;

pub use errors::WriteError;
pub use model::*;
pub use write::{
    HTML_FILE, JOURNAL_DIR, JUNIT_FILE, RESULTS_FILE, SUMMARY_FILE, Written, check_writable,
    write_all,
};
