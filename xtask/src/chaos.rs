//! `cargo xtask chaos`: run a chaos drill. Builds refpipe (the default target), then runs
//! the drill's scenarios with its allowlist and abort condition; `--dry-run` prints every
//! fault and host of the plan and runs nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use harness::cli::RunArgs;

#[derive(Debug, clap::Args)]
pub struct Chaos {
    /// The drill file [default: scenarios/refpipe/chaos/drill.toml].
    #[arg(long)]
    drill: Option<PathBuf>,
    /// Print the plan (scenarios, faults, hosts, abort condition) and run nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    run: RunArgs,
}

impl Chaos {
    pub fn run(self) -> ExitCode {
        if let Err(code) = crate::gate::prepare() {
            return code;
        }
        let drill = self.drill.unwrap_or_else(|| {
            Path::new("scenarios/refpipe/chaos").join(harness::drill::DRILL_FILE)
        });
        harness::cli::run_drill(&drill, &self.run, self.dry_run)
    }
}
