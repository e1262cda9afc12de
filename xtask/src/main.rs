//! `cargo xtask`: the project's task runner. Thin: each command is one module over the
//! harness library.

mod bench;
mod chaos;
mod examples;
mod gate;
mod interrupt;
mod perf;
mod test;

use std::process::ExitCode;

use clap::Parser;

/// The project's tasks (`cargo xtask <task> --help` for each).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", after_help = harness::cli::EXIT_CODES)]
enum Task {
    /// Build the reference pipeline, run the scenarios against it, write the reports.
    Gate(gate::Gate),
    /// Run a chaos drill (default: the bundled refpipe drill); `--dry-run` prints its plan.
    Chaos(chaos::Chaos),
    /// Run the performance scenarios; save a baseline or compare with one (exit 4 on a
    /// regression).
    Perf(perf::Perf),
    /// Install what the tests need beyond Rust (when missing), then `cargo test --workspace`.
    Test(test::Test),
    /// Measure the harness side by side (stub vs WireMock, added latency, memory, suite
    /// speed) and print the ratios.
    Bench(bench::Bench),
    /// Run the example pipelines' packs, then prove each fragile build fails their
    /// `resilience` scenarios.
    Examples(examples::Examples),
    /// Interrupt runs at random moments (SIGINT, SIGTERM, SIGKILL) and count what each
    /// left behind: processes, listening sockets, scratch directories, reports.
    Interrupt(interrupt::Interrupt),
}

fn main() -> ExitCode {
    match Task::parse() {
        Task::Gate(cmd) => cmd.run(),
        Task::Test(cmd) => cmd.run(),
        Task::Chaos(cmd) => cmd.run(),
        Task::Perf(cmd) => cmd.run(),
        Task::Bench(cmd) => cmd.run(),
        Task::Examples(cmd) => cmd.run(),
        Task::Interrupt(cmd) => cmd.run(),
    }
}
