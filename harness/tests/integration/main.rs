//! Integration tests of the `harness` binary, built as one test binary.
//!
//! - `cli`: exit codes, diagnostics, reports and the console explanation, end to end;
//! - `chaos`: the pack bites, drills (allowlist, abort, dry run), rollback on SIGINT,
//!   the standalone proxy;
//! - `fuzz`: `harness fuzz` finds planted bugs in refpipe, shrinks and writes them, and
//!   keeps quiet about correct refpipe; the same seed finds the same file;
//! - `gates`: gates and verdicts, shards and merge, retries, fail-fast, exit codes;
//! - `netpolicy`: every address a scenario names is checked before anything runs;
//! - `perf`: histograms merge exactly across shards; baselines catch a slowdown;
//! - `services`: `[[service]]`s started, faulted and stopped; leftovers found; SIGKILL;
//! - `stubs`: `harness stubs` serves a scenario's stubs until interrupted;
//! - `suites`: matrices, folder defaults, paths from any working directory, implied gates,
//!   `[[step]]`s against http targets, and the JSON Schemas of every file kind.
//! - `worker`: warm workers: growth per run under reuse, a worker dying mid-run, an
//!   import error before anything runs, the printed adapter.

mod chaos;
mod cli;
mod fuzz;
mod gates;
mod netpolicy;
mod perf;
mod services;
mod stubs;
mod suites;
mod support;
mod worker;
