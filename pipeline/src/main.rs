//! `refpipe`: see the `pipeline` library docs, or `refpipe --help`.

use std::process::ExitCode;

use clap::Parser;
use pipeline::Cli;

fn main() -> ExitCode {
    Cli::parse().run()
}
