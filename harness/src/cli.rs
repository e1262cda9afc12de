//! The command line, defined once: `harness` and `cargo xtask gate` share these flags.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::exit_codes;
pub use crate::merge_cmd::MergeArgs;
pub use crate::run_cmd::RunArgs;
pub use crate::stubs_cmd::StubsArgs;

/// agent-harness: runs declarative scenarios against multi-agent LLM pipelines, with LLM
/// stubs and fake executors on loopback, injects faults, measures latency and memory, and
/// reports JUnit XML, JSON, Markdown and HTML.
#[derive(Debug, Parser)]
#[command(name = "harness", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios and write reports.
    Run(RunArgs),
    /// Start one scenario's stubs and serve until interrupted, to point your own pipeline,
    /// curl or an SDK at them.
    Stubs(StubsArgs),
    /// Run a chaos drill: its scenarios, target, allowlist of hosts beyond loopback, and
    /// abort condition; `--dry-run` prints the plan and runs nothing.
    Drill(DrillArgs),
    /// Run performance scenarios and save their latency as a baseline, or compare with
    /// one (a regression beyond the bound exits 4).
    Perf(crate::perf_cmd::PerfArgs),
    /// Run a TCP fault proxy (latency, bandwidth, resets, blackholes…) in front of a
    /// loopback service until interrupted.
    Proxy(crate::proxy_cmd::ProxyArgs),
    /// Vary what the stubs answer (hostile and tolerable replies, proptest strategies)
    /// until an invariant breaks, then shrink the case and write it as a scenario file.
    Fuzz(crate::fuzz::FuzzArgs),
    /// Work with reports of earlier runs.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Print the adapter a `worker` target runs (`harness worker python >
    /// harness_worker.py`), to read it or run it yourself.
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The language of the pipeline.
    #[arg(value_enum)]
    pub language: WorkerLanguage,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WorkerLanguage {
    /// Python 3.8 or newer, standard library only.
    Python,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the outputs of shards (`--partition hash:K/N` runs) into one set of reports
    /// and evaluate the gates over all of them.
    Merge(MergeArgs),
}

pub const EXIT_CODES: &str = "\
Exit codes:
  0    the verdict is pass: every gate held (or only non-critical ones failed, with a
       warning); without gates, every scenario passed
  1    the verdict is fail: a critical gate failed; without gates, a scenario failed
  2    invalid scenario, target definition or command line (nothing was run)
  3    the harness itself failed (e.g. reports could not be written)
  4    `perf --baseline`: a scenario's latency regressed beyond the bound
       (`fuzz`: 1 when a case broke an invariant; the minimal case is written)
  130  interrupted (reports are still written)";

#[derive(Debug, Clone, Args)]
pub struct DrillArgs {
    /// The drill file.
    pub drill: PathBuf,
    /// Print every fault and host of the plan; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Parses `args` and runs the command; the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command()
        .try_get_matches_from(args)
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit_codes::INVALID_INPUT
            } else {
                exit_codes::OK
            });
        }
    };
    if let Some(drill) = matches.subcommand_matches("drill")
        && drill.value_source("paths") == Some(clap::parser::ValueSource::CommandLine)
    {
        // A drill runs the scenarios its file names; taking PATHS and ignoring them would
        // run something other than what the user asked for.
        eprintln!(
            "error: `harness drill` runs the scenarios its drill file lists and takes no PATHS (hint: list them under `scenarios` in the drill file, or use `harness run PATHS`)"
        );
        return ExitCode::from(exit_codes::INVALID_INPUT);
    }
    match cli.command {
        Command::Run(args) => crate::run_cmd::execute(&args),
        Command::Stubs(args) => crate::stubs_cmd::execute(&args),
        Command::Report(ReportCommand::Merge(args)) => crate::merge_cmd::execute(&args),
        Command::Proxy(args) => crate::proxy_cmd::execute(&args),
        Command::Perf(args) => crate::perf_cmd::execute(&args),
        Command::Fuzz(args) => crate::fuzz::execute(&args),
        Command::Drill(args) => run_drill(&args.drill, &args.run, args.dry_run),
        Command::Worker(args) => match args.language {
            WorkerLanguage::Python => {
                print!("{}", crate::target::PYTHON_ADAPTER);
                ExitCode::from(exit_codes::OK)
            }
        },
    }
}

/// Runs scenarios as `harness run` does (for `cargo xtask gate`).
pub fn run(args: &RunArgs) -> ExitCode {
    crate::run_cmd::execute(args)
}

/// Runs a chaos drill (for `cargo xtask chaos`): the drill's scenarios, target, allowlist
/// and abort condition over `args`; with `dry_run`, prints the plan and runs nothing.
pub fn run_drill(drill_file: &std::path::Path, args: &RunArgs, dry_run: bool) -> ExitCode {
    let drill = match crate::drill::Drill::load(drill_file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}", crate::console::render_load_error(&e));
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
    };
    let mut args = args.clone();
    args.paths = drill.scenario_paths();
    if args.target.is_none() {
        args.target = drill.target.clone();
    }
    let settings = crate::run_cmd::DrillSettings {
        drill: Some(&drill),
        dry_run,
    };
    crate::run_cmd::execute_with(&args, &settings)
}

/// Runs `harness perf` (for `cargo xtask perf`).
pub fn perf(args: &crate::perf_cmd::PerfArgs) -> ExitCode {
    crate::perf_cmd::execute(args)
}
