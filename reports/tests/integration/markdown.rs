use crate::fixture::basic_report;
use crate::golden::assert_golden;

#[test]
fn basic_report_matches_golden_file() {
    assert_golden(
        "basic_summary.md",
        &reports::markdown::render(&basic_report()),
    );
}
