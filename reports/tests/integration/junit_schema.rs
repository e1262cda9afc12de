//! `junit.xml` against a JUnit XSD (`tests/fixtures/junit.xsd`: the Jenkins/Ant schema
//! with Surefire's rerun elements, written by hand), validated by `xmllint`. The fixture
//! report validates; documents that break the schema in the ways a writer could are
//! rejected, so the check can fail.
//!
//! Needs `xmllint` (`apt-get install libxml2-utils`; `cargo xtask test` installs it).

use std::process::Command;
use std::time::Duration;

use crate::fixture::basic_report;
use crate::tools;

/// Validates the JUnit document `xml` with xmllint; the error output when it is invalid.
fn validate(xml: &str) -> Result<(), String> {
    let xmllint = tools::require(
        "xmllint",
        &["/usr/bin/xmllint"],
        "xmllint (libxml2)",
        "apt-get install libxml2-utils",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(reports::JUNIT_FILE);
    std::fs::write(&path, xml).unwrap();
    let mut cmd = Command::new(xmllint);
    cmd.arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(tools::crate_file("tests/fixtures/junit.xsd"))
        .arg(&path);
    let ran = tools::run(cmd, Duration::from_secs(30));
    if ran.success() {
        Ok(())
    } else {
        Err(format!("{:?}\n{}", ran.status, ran.stderr))
    }
}

#[test]
fn the_fixture_validates() {
    let xml = reports::junit::render(&basic_report());
    if let Err(e) = validate(&xml) {
        panic!("{e}\n{xml}");
    }
}

#[test]
fn a_report_without_gates_or_partition_validates() {
    let mut report = basic_report();
    report.gates.clear();
    report.partition = None;
    validate(&reports::junit::render(&report)).unwrap();
}

#[test]
fn documents_that_break_the_schema_are_rejected() {
    let xml = reports::junit::render(&basic_report());
    let broken = [
        (
            "a testcase without a name",
            xml.replacen("<testcase name=\"smoke stays green\"", "<testcase", 1),
        ),
        (
            "an element JUnit does not have",
            xml.replacen("<flakyFailure ", "<flaky ", 1)
                .replacen("</flakyFailure>", "</flaky>", 1),
        ),
        (
            "a negative count",
            xml.replacen("tests=\"15\"", "tests=\"-15\"", 1),
        ),
        (
            "a time that is not a number",
            xml.replacen("time=\"29.160\"", "time=\"29.2s\"", 1),
        ),
        (
            "a failure after the output",
            xml.replacen(
                "<system-err>WARN coder call failed",
                "<failure message=\"late\"/><system-err>WARN coder call failed",
                1,
            ),
        ),
        ("not even XML", xml.replacen("</testsuites>", "", 1)),
    ];
    for (what, doc) in broken {
        assert_ne!(
            doc, xml,
            "{what}: the fixture changed, the edit did nothing"
        );
        assert!(validate(&doc).is_err(), "{what} was accepted");
    }
}
