//! `cargo xtask perf`: the nightly performance run. Builds refpipe, runs the performance
//! scenarios (default: `scenarios/refpipe/perf`), and saves or compares a baseline.
//!
//! ```text
//! cargo xtask perf --save-baseline main     # on the reference commit
//! cargo xtask perf --baseline main          # later: exits 4 on a regression beyond 20%
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use harness::perf_cmd::PerfArgs;

#[derive(Debug, clap::Args)]
pub struct Perf {
    #[command(flatten)]
    args: PerfArgs,
}

impl Perf {
    pub fn run(mut self) -> ExitCode {
        if let Err(code) = crate::gate::prepare() {
            return code;
        }
        // Without paths, the performance pack (not the whole suite).
        if self.args.run.paths == [PathBuf::from("scenarios")] {
            self.args.run.paths = vec![PathBuf::from("scenarios/refpipe/perf")];
        }
        harness::cli::perf(&self.args)
    }
}
