//! `cargo xtask gate`: the CI quality gate. Builds `refpipe` (the default target) so the
//! harness finds it next to its own executable, then runs `harness run` with the same flags.

use std::path::Path;
use std::process::{Command, ExitCode};

use harness::cli::RunArgs;
use harness::exit_codes;

#[derive(Debug, clap::Args)]
pub struct Gate {
    #[command(flatten)]
    run: RunArgs,
}

impl Gate {
    pub fn run(self) -> ExitCode {
        if let Err(code) = prepare() {
            return code;
        }
        harness::cli::run(&self.run)
    }
}

/// Enters the workspace root (paths on the command line are relative to it, wherever
/// cargo was invoked from) and builds refpipe, so the harness finds it next to itself.
pub fn prepare() -> Result<(), ExitCode> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    if let Err(e) = std::env::set_current_dir(root) {
        eprintln!(
            "error: cannot enter the workspace root `{}`: {e}",
            root.display()
        );
        return Err(ExitCode::from(exit_codes::HARNESS_ERROR));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("    Building refpipe (cargo build -p pipeline)");
    match Command::new(cargo)
        .args(["build", "--quiet", "-p", "pipeline", "--bin", "refpipe"])
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => {
            eprintln!("error: building refpipe failed ({s})");
            Err(ExitCode::from(exit_codes::HARNESS_ERROR))
        }
        Err(e) => {
            eprintln!("error: cannot run cargo to build refpipe: {e}");
            Err(ExitCode::from(exit_codes::HARNESS_ERROR))
        }
    }
}
