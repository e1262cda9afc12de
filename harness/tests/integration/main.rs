//! Integration tests of the `harness` binary, built as one test binary.
//!
//! - `cli`: exit codes, diagnostics, reports and the console explanation, end to end;
//! - `stubs`: `harness stubs` serves a scenario's stubs until interrupted.

mod cli;
mod stubs;
mod support;
