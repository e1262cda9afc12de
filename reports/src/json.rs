//! `results.json`: the whole run, for tools. The [`RunReport`] as it is, plus a schema
//! version and the counts a dashboard reads first:
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "summary": { "total": 4, "passed": 1, "failed": 1, "errors": 1, "skipped": 1 },
//!   "tool": "agent-harness 0.1.0",
//!   "started_at": "2025-01-01T00:00:00Z",
//!   "duration": 3.5,
//!   "seed": 42,
//!   "interrupted": false,
//!   "scenarios": [ … ]
//! }
//! ```
//!
//! Strings are kept exactly as the report holds them (no ANSI stripping): this is the data,
//! the other formats are views of it. Durations are fractional seconds. A reader that only
//! knows [`RunReport`] can deserialize the file directly; the extra keys are ignored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::model::RunReport;

/// The `schema_version` this crate writes. Bumped when a field changes meaning or goes away;
/// adding a field does not bump it.
pub const SCHEMA_VERSION: u32 = 1;

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

/// How many scenarios ended how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
}

impl Summary {
    /// Counts `report`'s scenarios by outcome.
    pub fn of(report: &RunReport) -> Summary {
        let (passed, failed, errors, skipped) = report.counts();
        Summary {
            total: report.scenarios.len(),
            passed,
            failed,
            errors,
            skipped,
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
            json.starts_with("{\n  \"schema_version\": 1,\n  \"summary\": {"),
            "{json}"
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["summary"],
            serde_json::json!({"total": 2, "passed": 1, "failed": 0, "errors": 0, "skipped": 1})
        );
    }

    #[test]
    fn results_round_trip_owned() {
        let input = report(vec![scenario("a", Outcome::Failed)]);
        let back: Results<'static> = serde_json::from_str(&render(&input)).unwrap();
        assert_eq!(back, Results::new(&input));
    }
}
