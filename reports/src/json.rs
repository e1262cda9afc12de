//! `results.json`: the whole run, for tools. The [`RunReport`] as it is, plus a schema
//! version and the counts a dashboard reads first:
//!
//! ```json
//! {
//!   "schema_version": 4,
//!   "summary": { "verdict": "fail", "total": 5, "passed": 2, "failed": 1, "errors": 1,
//!                "skipped": 1, "flaky": 1, "not_run": 0 },
//!   "tool": "agent-harness 0.1.0",
//!   "started_at": "2025-01-01T00:00:00Z",
//!   "duration": 3.5,
//!   "seed": 42,
//!   "interrupted": false,
//!   "scenarios": [ … ],
//!   "gates": [ … ],
//!   "verdict": "fail",
//!   "partition": "hash:1/3"
//! }
//! ```
//!
//! The document is described precisely by the JSON Schema (draft 2020-12) in
//! `reports/schema/results.schema.json`; the tests hold every rendered report to it.
//!
//! Strings are kept exactly as the report holds them (no ANSI stripping): this is the data,
//! the other formats are views of it. Durations are fractional seconds. A reader that only
//! knows [`RunReport`] can deserialize the file directly; the extra keys are ignored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::model::{RunReport, Verdict};

/// The `schema_version` this crate writes (and the journals carry). Bumped when a field
/// changes meaning or goes away, or when the schema file changes in a way an old
/// validator would reject.
///
/// - 1: the first version.
/// - 2: `gates`, `verdict`, `partition`, each scenario's `failed_attempts`, and
///   `summary.verdict` and `summary.flaky`.
/// - 3: each scenario's `metrics` (left out when nothing was measured): latency
///   histograms, each a readable summary in microseconds beside its HdrHistogram
///   encoding (`hdr`, V2+deflate, base64), which is what a reader decodes; memory; load;
///   tokens and cost per run; thresholds.
/// - 4: the verdict `interrupted` (the run stopped before every scenario finished) and
///   `summary.not_run`, the number of scenarios the interruption left unrun.
pub const SCHEMA_VERSION: u32 = 4;

/// The document `results.json` holds: the report's fields at the top level, next to
/// `schema_version` and `summary`.
///
/// Serializing borrows the report; deserializing owns it (`Results<'static>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results<'a> {
    pub schema_version: u32,
    pub summary: Summary,
    #[serde(flatten)]
    pub report: Cow<'a, RunReport>,
}

/// The verdict, and how many scenarios ended how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The run's verdict, as in the report.
    pub verdict: Verdict,
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
    /// Passed only after failed attempts; counted in `passed` too.
    pub flaky: usize,
    /// Not run to the end because the run was interrupted; counted in `skipped` too.
    #[serde(default)]
    pub not_run: usize,
}

impl Summary {
    /// Counts `report`'s scenarios by outcome.
    pub fn of(report: &RunReport) -> Summary {
        let (passed, failed, errors, skipped) = report.counts();
        Summary {
            verdict: report.verdict,
            total: report.scenarios.len(),
            passed,
            failed,
            errors,
            skipped,
            flaky: report.flaky_count(),
            not_run: report.not_run(),
        }
    }
}

impl<'a> Results<'a> {
    /// The document for `report`, borrowing it.
    pub fn new(report: &'a RunReport) -> Results<'a> {
        Results {
            schema_version: SCHEMA_VERSION,
            summary: Summary::of(report),
            report: Cow::Borrowed(report),
        }
    }
}

/// Renders `report` as the pretty-printed `results.json` document, ending with a newline.
pub fn render(report: &RunReport) -> String {
    let mut json = serde_json::to_string_pretty(&Results::new(report))
        .expect("a report has only string keys, so it always serializes");
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;
    use crate::test_support::{report, scenario};

    #[test]
    fn schema_version_and_summary_come_first() {
        let json = render(&report(vec![
            scenario("a", Outcome::Passed),
            scenario("b", Outcome::Skipped),
        ]));
        assert!(
            json.starts_with("{\n  \"schema_version\": 4,\n  \"summary\": {"),
            "{json}"
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["summary"],
            serde_json::json!({
                "verdict": "pass", "total": 2, "passed": 1, "failed": 0, "errors": 0,
                "skipped": 1, "flaky": 0, "not_run": 0
            })
        );
    }

    #[test]
    fn results_round_trip_owned() {
        let input = report(vec![scenario("a", Outcome::Failed)]);
        let back: Results<'static> = serde_json::from_str(&render(&input)).unwrap();
        assert_eq!(back, Results::new(&input));
    }
}
