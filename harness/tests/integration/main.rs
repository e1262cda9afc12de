//! Integration tests of the `harness` binary, built as one test binary.
//!
//! - `cli`: exit codes, diagnostics, reports and the console explanation, end to end;
//! - `gates`: gates and verdicts, shards and merge, retries, fail-fast, exit codes;
//! - `stubs`: `harness stubs` serves a scenario's stubs until interrupted.

mod cli;
mod gates;
mod stubs;
mod support;
