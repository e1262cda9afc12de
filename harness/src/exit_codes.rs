//! The exit codes of `harness` and `cargo xtask gate`: a contract CI jobs rely on, defined
//! here once and documented in the README.

/// The verdict is pass: every gate held, or only non-critical gates failed (a warning).
/// Without a gates file: every scenario passed.
pub const OK: u8 = 0;
/// The verdict is fail: a critical gate failed. Without a gates file: a scenario failed
/// (an expectation did not hold, the target crashed, hung or printed invalid output, a
/// request matched no stub rule) or could not be run. `fuzz`: a case broke an
/// invariant (the minimal case is written).
pub const VERDICT_FAIL: u8 = 1;
/// Invalid scenario, target definition or command line: nothing was run.
pub const INVALID_INPUT: u8 = 2;
/// `harness perf --baseline`: a scenario's latency regressed beyond the bound.
pub const REGRESSION: u8 = 4;
/// The harness itself failed (for example, the reports could not be written).
pub const HARNESS_ERROR: u8 = 3;
/// The run was interrupted (Ctrl-C); the reports were still written. 128 + SIGINT.
pub const INTERRUPTED: u8 = 130;
