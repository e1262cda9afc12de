//! Integration tests of the `reports` crate, built as one binary.
//!
//! Modules:
//! - `fixture`: the shared fixture report (passing, failing after a retry, error, flaky,
//!   skipped; two suites; three gates, one critical failing; partitioned).
//! - `golden`: compares rendered output with files in `tests/fixtures/`
//!   (`BLESS=1 cargo test -p reports` rewrites them).
//! - `junit`: the JUnit golden file; the document parses back and its counts add up.
//! - `junit_schema`: the JUnit document validates against a JUnit XSD with `xmllint`.
//! - `junitparser`: Python's junitparser reads the JUnit document back.
//! - `markdown`: the Markdown golden file.
//! - `json`: `results.json` deserializes back to the same report.
//! - `schema`: `results.json` validates against `schema/results.schema.json`, and the
//!   schema rejects what it should.
//! - `html`: `report.html` parses cleanly as HTML5, loads nothing, escapes everything.
//! - `browser`: `report.html` in headless Chromium: its script runs, nothing is logged.
//! - `write_all`: files land in a directory, rewrites replace them atomically.
//! - `hostile`: a proptest property: reports full of control characters, ANSI and markup,
//!   with any outcome, metric, verdict or interruption, never break the XML, the Markdown
//!   table, the HTML or the JSON schema (`PROPTEST_CASES` sets the count, 300 by default).
//! - `tools`: finding and running the external programs the tests above need.
//!
//! External programs (each test fails, saying how to install it, when it is missing;
//! `cargo xtask test` installs them): `chromium` and `xmllint` (Debian packages
//! `chromium`, `libxml2-utils`), and Python 3 with `junitparser` (PyPI).

mod browser;
mod fixture;
mod golden;
mod hostile;
mod html;
mod json;
mod junit;
mod junit_schema;
mod junitparser;
mod markdown;
mod schema;
mod tools;
mod write_all;
