//! `cargo xtask bench`: the harness measured side by side, in one run, and reported as
//! ratios: these machines are shared and noisy, so absolute numbers say little and each
//! comparison alternates short rounds between its two sides, so that a busy neighbour
//! slows both alike.
//!
//! What runs: `benchkit` (crate `benches`, built in release because `cargo xtask` itself is
//! a debug build) serves the real LLM stub and the floor server and is the load client;
//! WireMock is the Java standalone started by `shared/tools/wiremock-java`; the suite is
//! run by `target/debug/harness`. Everything listens on 127.0.0.1 only, every load is
//! bounded in time or count, and every process started is stopped at the end, on an
//! error, and on Ctrl-C (see `bench/procs.rs`).

mod compare;
mod cost;
mod procs;
mod python;
mod stub;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use harness::exit_codes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Comparison {
    /// Our LLM stub vs WireMock (Java) serving the same ~600-byte completion: requests/s
    /// under the same closed-loop load (--connections keep-alive connections), after
    /// WireMock's JIT warm-up (--warmup); and server CPU per request. Goal: ≥ 2×.
    Throughput,
    /// Latency added per LLM call: sequential requests on one keep-alive connection to the
    /// stub and to a minimal hyper server sending the same bytes (the floor: client,
    /// loopback and HTTP); p50 and p99 of each. Goal: the stub adds < 100 µs at p99.
    Latency,
    /// The stub's RSS (VmRSS) every tenth of --requests requests (a million by default).
    /// Goal: flat from the first tenth to the end. --memory-wiremock adds WireMock's.
    Memory,
    /// The bundled suite run --runs times with --jobs: scenarios per second, the time per
    /// scenario the harness spends beyond the targets', and its own CPU per scenario.
    Scenarios,
    /// The Python example's pack (examples/pypipe) --runs times with --jobs, as a process
    /// per scenario, a fork worker (a first start and a learned one) and a reuse worker,
    /// beside the same checks as a pytest
    /// suite (benches/python); and the time the harness adds to a worker scenario. Goals:
    /// fork ≥ 5× process per scenario, ≥ 2× pytest; ≤ 15 ms added. Not in the default set.
    Python,
    /// Our LLM stub vs llmposter (Rust) answering the same content: requests/s for plain
    /// chat and for streamed chat, the streams both on keep-alive connections and on a
    /// fresh connection per request (llmposter stalls ~44 ms on a reused connection's
    /// streamed reply, so each is shown). Not in the default set.
    Llmposter,
    /// The LLM stub beside the bare hyper floor (same bytes, same threads), WireMock and
    /// llmposter in one run: req/s and p50/p99 at 1 connection and at --connections,
    /// plain and streamed. Goals at --connections, plain: ≥ 0.85× the floor, ≥ 4×
    /// WireMock, ≥ 2× llmposter; at 1 connection, p50 no worse than WireMock's. A tool
    /// that is not installed is left out with a hint. Not in the default set.
    Stub,
    /// The harness's own cost: functional scenarios/s (--suite-size of them, --jobs) with
    /// a release harness and with the gate's build against bare refpipe runs on one stub;
    /// sampler CPU per scenario, alone and with --idle extra idle processes; peak harness
    /// RSS over 1,000 and --memory-scenarios scenarios. Goals: ≥ 300/s and ≥ 0.65× the
    /// floor (release), ≥ 100/s (gate build); sampler ≤ 0.5 ms, unchanged with idle
    /// processes; ≤ 150 MiB and ±10 %. Not in the default set.
    Cost,
}

/// Measure the harness side by side with what users would otherwise pick (ratios from one
/// run, loopback only): see each comparison below.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Bench {
    /// What to measure [default: all four, in this order].
    #[arg(value_enum)]
    comparisons: Vec<Comparison>,
    /// Measured time of each two-sided comparison (throughput, latency), split evenly
    /// between the sides in alternating rounds (e.g. 16s, 30s, 500ms).
    #[arg(long, default_value = "16s", value_parser = parse_duration)]
    duration: Duration,
    /// The longest WireMock is loaded, unmeasured, before the throughput rounds: its JIT
    /// needs it (it is several times slower cold). The warm-up goes in 5-s slices and ends
    /// early, after 10 s at least, once a slice is no more than 5% faster than the last.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    warmup: Duration,
    /// Keep-alive connections of the throughput and memory loads.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    connections: u16,
    /// Requests of the memory comparison.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10..))]
    requests: u64,
    /// Also measure WireMock's RSS over the same requests, for contrast (slower).
    #[arg(long)]
    memory_wiremock: bool,
    /// Scenarios run at once in the scenarios comparison.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// Runs of the suite in the scenarios comparison.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// The wiremock-java script [default: $WIREMOCK_JAVA, else
    /// ../shared/tools/wiremock-java beside the workspace].
    #[arg(long, value_name = "PATH")]
    wiremock: Option<PathBuf>,
    /// The llmposter script [default: $LLMPOSTER, else ../shared/tools/llmposter beside
    /// the workspace].
    #[arg(long, value_name = "PATH")]
    llmposter: Option<PathBuf>,
    /// A `benchkit` binary built from an earlier commit: the throughput comparison loads
    /// its LLM stub too, in the same rounds, and reports ours against it (a refactor must
    /// stay within 5%).
    #[arg(long, value_name = "PATH")]
    baseline_benchkit: Option<PathBuf>,
    /// Scenarios of the cost comparison's pack (functional: the happy path as a matrix).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    suite_size: u32,
    /// Extra idle processes the cost comparison starts to show the sampler's cost does
    /// not follow the machine's process count.
    #[arg(long, default_value_t = 300)]
    idle: u32,
    /// Scenarios of the cost comparison's large memory run (the small one is 1,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    memory_scenarios: u32,
    /// Exit with 1 when a goal is missed (by default the table says so, and the exit code
    /// is 0 once everything was measured).
    #[arg(long)]
    fail_on_miss: bool,
}

const AFTER_HELP: &str = "\
Reading the results: each comparison prints its details, then one table gives the ratios
and whether each goal was met. Exit codes: 0 everything was measured (and, with
--fail-on-miss, every goal met); 1 a goal was missed (--fail-on-miss); 3 something could
not be measured (a build failed, a server did not start); 130 interrupted.

Examples:
  cargo xtask bench                          all four, about three minutes
  cargo xtask bench throughput --duration 30s
  cargo xtask bench throughput --baseline-benchkit /tmp/benchkit-before
  cargo xtask bench llmposter --duration 8s
  cargo xtask bench memory --requests 200000 --memory-wiremock
  cargo xtask bench python --runs 2          the Python example five ways, ~3 minutes
  cargo xtask bench stub --duration 60s      the stub vs floor, WireMock, llmposter
  cargo xtask bench cost                     scenarios/s, sampler CPU, memory (~10 min)";

/// One line of the final table.
pub struct Row {
    what: String,
    ours: String,
    reference: String,
    ratio: String,
    goal: String,
    /// `None` when there is no goal.
    met: Option<bool>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| Duration::from_secs_f64(n * scale))
        .ok_or_else(|| format!("`{text}` is not a duration like 16s, 500ms or 1m"))
}

/// Threads the stub and the floor serve on in the stub comparison: one per core, up to 4
/// (the stub's own default, `mocks::DEFAULT_MAX_THREADS`).
fn serving_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(4)
}

/// Runs cargo with `args` in the workspace root.
fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("    Building: cargo {}", args.join(" "));
    match Command::new(cargo).args(args).status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("cargo {} failed ({status})", args.join(" "))),
        Err(e) => Err(format!("cannot run cargo: {e}")),
    }
}

impl Bench {
    pub fn run(self) -> ExitCode {
        procs::stop_all_on_signal();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."));
        if let Err(e) = std::env::set_current_dir(root) {
            eprintln!(
                "error: cannot enter the workspace root `{}`: {e}",
                root.display()
            );
            return ExitCode::from(exit_codes::HARNESS_ERROR);
        }
        let comparisons = if self.comparisons.is_empty() {
            vec![
                Comparison::Throughput,
                Comparison::Latency,
                Comparison::Memory,
                Comparison::Scenarios,
            ]
        } else {
            self.comparisons.clone()
        };
        let target_dir =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let needs_benchkit = comparisons
            .iter()
            .any(|c| !matches!(c, Comparison::Scenarios | Comparison::Python));
        if needs_benchkit
            && let Err(e) = cargo(&[
                "build",
                "--quiet",
                "--release",
                "-p",
                "benches",
                "--bin",
                "benchkit",
            ])
        {
            eprintln!("error: {e}");
            return ExitCode::from(exit_codes::HARNESS_ERROR);
        }
        let work = match tempfile::Builder::new().prefix("xtask-bench-").tempdir() {
            Ok(work) => work,
            Err(e) => {
                eprintln!("error: cannot create a scratch directory: {e}");
                return ExitCode::from(exit_codes::HARNESS_ERROR);
            }
        };
        let ctx = compare::Ctx {
            args: &self,
            benchkit: target_dir.join("release/benchkit"),
            target_dir,
            work: work.path().to_path_buf(),
        };
        let mut rows = Vec::new();
        let mut unmeasured = false;
        for comparison in comparisons {
            let (title, result) = match comparison {
                Comparison::Throughput => (
                    "throughput: LLM stub vs WireMock",
                    compare::throughput(&ctx),
                ),
                Comparison::Latency => (
                    "latency added per LLM call: LLM stub vs floor",
                    compare::latency(&ctx),
                ),
                Comparison::Memory => ("memory over many requests", compare::memory(&ctx)),
                Comparison::Scenarios => ("scenarios per second", compare::scenarios(&ctx)),
                Comparison::Python => (
                    "Python pipelines: worker vs process per scenario vs pytest",
                    python::python(&ctx),
                ),
                Comparison::Llmposter => (
                    "throughput: LLM stub vs llmposter, plain and streamed chat",
                    compare::llmposter(&ctx),
                ),
                Comparison::Stub => (
                    "LLM stub vs the floor, WireMock and llmposter: 1 and many connections, plain and streamed",
                    stub::stub(&ctx),
                ),
                Comparison::Cost => (
                    "the harness's own cost: scenarios/s, sampler CPU, memory",
                    cost::cost(&ctx),
                ),
            };
            if procs::interrupted() {
                // the signal's thread stops everything and exits; this is no result
                procs::stop_all();
                return ExitCode::from(exit_codes::INTERRUPTED);
            }
            println!("\n== {title}");
            match result {
                Ok(found) => {
                    for line in &found.lines {
                        println!("  {line}");
                    }
                    rows.extend(found.rows);
                }
                Err(e) => {
                    println!("  not measured: {e}");
                    unmeasured = true;
                    rows.push(Row {
                        what: title.to_string(),
                        ours: "not measured".into(),
                        reference: String::new(),
                        ratio: String::new(),
                        goal: String::new(),
                        met: None,
                    });
                }
            }
        }
        print_table(&rows);
        // every process is stopped by now; stop_all is for what an early exit left
        procs::stop_all();
        let missed = rows.iter().any(|row| row.met == Some(false));
        if unmeasured {
            ExitCode::from(exit_codes::HARNESS_ERROR)
        } else if missed && self.fail_on_miss {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

fn print_table(rows: &[Row]) {
    let header = Row {
        what: "comparison".into(),
        ours: "ours".into(),
        reference: "reference".into(),
        ratio: "ratio / diff".into(),
        goal: "goal".into(),
        met: None,
    };
    let cells = |row: &Row| -> [String; 6] {
        [
            row.what.clone(),
            row.ours.clone(),
            row.reference.clone(),
            row.ratio.clone(),
            row.goal.clone(),
            match row.met {
                Some(true) => "met".into(),
                Some(false) => "MISSED".into(),
                None if std::ptr::eq(row, &header) => "result".into(),
                None => String::new(),
            },
        ]
    };
    let all: Vec<[String; 6]> = std::iter::once(&header).chain(rows).map(cells).collect();
    let mut widths = [0; 6];
    for line in &all {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    println!();
    for (n, line) in all.iter().enumerate() {
        let text: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        println!("{}", text.join("  ").trim_end());
        if n == 0 {
            println!("{}", widths.map(|w| "-".repeat(w)).join("  "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds_milliseconds_and_minutes() {
        assert_eq!(parse_duration("16s"), Ok(Duration::from_secs(16)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-3s").is_err());
    }
}
