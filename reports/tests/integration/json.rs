use reports::json::{Results, SCHEMA_VERSION, Summary};
use reports::{RunReport, Verdict};

use crate::fixture::basic_report;

#[test]
fn results_deserialize_back_to_the_same_report() {
    let report = basic_report();
    let json = reports::json::render(&report);
    let back: RunReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn results_carry_schema_version_and_summary() {
    let report = basic_report();
    let back: Results<'static> = serde_json::from_str(&reports::json::render(&report)).unwrap();
    assert_eq!(back.schema_version, SCHEMA_VERSION);
    assert_eq!(
        back.summary,
        Summary {
            verdict: Verdict::Fail,
            total: 6,
            passed: 2,
            failed: 2,
            errors: 1,
            skipped: 1,
            flaky: 1,
            not_run: 1,
        }
    );
    assert_eq!(back.report.into_owned(), report);
}

#[test]
fn strings_are_kept_raw() {
    let json = reports::json::render(&basic_report());
    // ANSI and U+0001 survive in results.json, escaped as JSON requires.
    assert!(
        json.contains(r"\u001b[31mERROR\u001b[0m critic call failed: 404\u0001"),
        "{json}"
    );
}
