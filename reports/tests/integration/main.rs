//! Integration tests of the `reports` crate, built as one binary.
//!
//! Modules:
//! - `fixture`: the shared fixture report (passing, failing, error, skipped; two suites).
//! - `golden`: compares rendered output with files in `tests/fixtures/`
//!   (`BLESS=1 cargo test -p reports` rewrites them).
//! - `junit`: the JUnit golden file; the document parses back and its counts add up.
//! - `markdown`: the Markdown golden file.
//! - `json`: `results.json` deserializes back to the same report.
//! - `write_all`: files land in a directory, rewrites replace them atomically.
//! - `hostile`: generated strings full of control characters, ANSI and markup never
//!   break the XML or the Markdown table.

mod fixture;
mod golden;
mod hostile;
mod json;
mod junit;
mod markdown;
mod write_all;
