//! `cargo xtask test`: the test suite on any machine. Installs what the tests need beyond
//! Rust when it is missing (each step says what it does), then runs
//! `cargo test --workspace` with any extra arguments.

use std::process::{Command, ExitCode};

use harness::exit_codes;

#[derive(Debug, clap::Args)]
pub struct Test {
    /// Do not install anything; fail if a prerequisite is missing.
    #[arg(long)]
    no_install: bool,
    /// Passed on to `cargo test --workspace` (e.g. `-- --nocapture`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cargo_args: Vec<String>,
}

/// A prerequisite: how to tell it is there, and how to install it.
struct Prerequisite {
    what: &'static str,
    why: &'static str,
    check: &'static [&'static str],
    install: &'static [&'static str],
}

const PREREQUISITES: &[Prerequisite] = &[Prerequisite {
    what: "the `openai` Python package",
    why: "the stub-compatibility test drives the LLM stub with the official SDK",
    check: &["python3", "-c", "import openai"],
    install: &[
        "python3",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--root-user-action=ignore",
        "openai>=1.40,<4",
    ],
}];

impl Test {
    pub fn run(self) -> ExitCode {
        for p in PREREQUISITES {
            if succeeds(p.check) {
                continue;
            }
            if self.no_install {
                eprintln!(
                    "error: {} is missing ({}); install it with `{}`",
                    p.what,
                    p.why,
                    p.install.join(" ")
                );
                return ExitCode::from(exit_codes::INVALID_INPUT);
            }
            eprintln!(
                "  Installing {} ({}): {}",
                p.what,
                p.why,
                p.install.join(" ")
            );
            if !succeeds(p.install) || !succeeds(p.check) {
                eprintln!(
                    "error: could not install {}; run `{}` yourself",
                    p.what,
                    p.install.join(" ")
                );
                return ExitCode::from(exit_codes::HARNESS_ERROR);
            }
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        match Command::new(cargo)
            .args(["test", "--workspace"])
            .args(&self.cargo_args)
            .status()
        {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: cannot run cargo: {e}");
                ExitCode::from(exit_codes::HARNESS_ERROR)
            }
        }
    }
}

fn succeeds(argv: &[&str]) -> bool {
    Command::new(argv[0])
        .args(&argv[1..])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
