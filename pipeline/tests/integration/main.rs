//! Integration tests: the real `refpipe` binary against an in-test LLM and executor.
//!
//! One binary for all of them; the modules:

/// The scripted stub server and helpers that spawn `refpipe`.
mod support;

/// `refpipe run`: exit codes, the result document, retries, fallback, degradation, streaming.
mod run;

/// `refpipe serve`: listening line, submit and poll, auth, clean shutdown on SIGTERM; runs
/// that survive a restart (even SIGKILL) with a state directory.
mod serve;

/// Fragile mode: each fault resilient refpipe rides out fails the run, naming what is off.
mod fragile;

/// The benchmark/test knobs: a known slowdown per agent step, a known leak per served run.
mod knobs;
