//! `harness run` / `cargo xtask gate`: plan, run, report, and map the outcome to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::console::ConsoleReporter;
use crate::errors::error_chain;
use crate::exit_codes;
use crate::gates::{self, Gate};
use crate::plan::{Selection, plan};
use crate::runner::{RunConfig, run_all_in};

/// How a drill changes a run: hosts it may reach, when to abort, or only print the plan.
#[derive(Debug, Default)]
pub struct DrillSettings<'a> {
    pub drill: Option<&'a crate::drill::Drill>,
    pub dry_run: bool,
}

pub fn execute(args: &RunArgs) -> ExitCode {
    execute_with(args, &DrillSettings::default())
}

pub fn execute_with(args: &RunArgs, drill: &DrillSettings) -> ExitCode {
    match run(args, drill) {
        Ok((report, gates)) => finish(report, gates.as_deref(), &args.out),
        Err(code) => code,
    }
}

/// Plans and runs the scenarios: the report (not yet judged) and the gates to judge it
/// by, or the exit code when nothing could run.
pub(crate) fn run(
    args: &RunArgs,
    drill: &DrillSettings,
) -> Result<(reports::RunReport, Option<Vec<Gate>>), ExitCode> {
    let runtime = crate::run_cmd::runtime()?;
    let seed = args.seed.unwrap_or_else(random_seed);
    let selection = Selection {
        paths: args.paths.clone(),
        filter: args.filter.clone(),
        tags: args.tags.clone(),
        partition: args.partition,
        target: args.target.clone(),
        allow_hosts: drill
            .drill
            .map(|d| d.allow_hosts.clone())
            .unwrap_or_default(),
        env: args.env.clone(),
    };
    let gates_file = gates::find(args.gates.as_deref(), &args.paths);
    let loaded_gates = gates_file.as_deref().map(gates::load).transpose();
    let (plan, gates) = match (plan(&selection, seed), loaded_gates) {
        (Ok(plan), Ok(gates)) => (plan, gates),
        (plan, gates) => {
            let mut errors = plan.err().unwrap_or_default();
            errors.extend(gates.err());
            for e in &errors {
                eprintln!("{}\n", crate::console::render_load_error(e));
            }
            eprintln!(
                "error: {} invalid file{}; nothing was run",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return Err(ExitCode::from(exit_codes::INVALID_INPUT));
        }
    };
    if let (true, Some(d)) = (drill.dry_run, drill.drill) {
        print!("{}", crate::drill::describe(d, &plan.scenarios));
        eprintln!("dry run: nothing was run");
        return Err(ExitCode::from(exit_codes::OK));
    }
    if plan.filtered_out > 0 {
        eprintln!("    Filtered out {} scenario(s)", plan.filtered_out);
    }
    if let Some(partition) = args.partition {
        eprintln!(
            "   Partition {partition}: {} scenario(s) here, {} in other shards",
            plan.scenarios.len(),
            plan.other_shards
        );
    }
    if let Some(file) = &gates_file {
        eprintln!(
            "       Gates {} from {}",
            gates.as_ref().map_or(0, Vec::len),
            file.display()
        );
    }
    if plan.scenarios.is_empty() && args.partition.is_none() {
        eprintln!(
            "error: no scenario to run in {:?} (hint: check the paths, --filter and --tag)",
            args.paths
        );
        return Err(ExitCode::from(exit_codes::INVALID_INPUT));
    }
    // Found now, not after every scenario ran and the results had nowhere to go.
    if let Err(e) = reports::check_writable(&args.out) {
        eprintln!(
            "error: {} (hint: give `--out` a folder you can write to); nothing was run",
            error_chain(&e)
        );
        return Err(ExitCode::from(exit_codes::INVALID_INPUT));
    }
    let jobs = args
        .jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));

    let config = RunConfig {
        jobs,
        seed,
        retries: args.retries,
        fail_fast: args.fail_fast,
        abort: drill.drill.and_then(crate::drill::Drill::abort_rule),
    };
    // Warm workers start before anything runs: a pipeline that cannot be imported stops
    // the run here, with its traceback, as invalid input.
    let ctx = std::sync::Arc::new(crate::target::RunContext::new(jobs));
    let mut console = ConsoleReporter::new();
    let ran: Result<_, crate::errors::WorkerStartError> = runtime.block_on(async {
        // Registered before the warm-up (a worker's imports can take seconds), so a signal
        // that arrives early is not lost: the run then reports every scenario not run.
        let (fire, fired) = tokio::sync::watch::channel(false);
        let signal = interrupt_signal();
        tokio::spawn(async move {
            signal.await;
            let _ = fire.send(true);
        });
        let interrupted = |mut fired: tokio::sync::watch::Receiver<bool>| async move {
            if fired.wait_for(|f| *f).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let warm = ctx.warm_up(
            plan.scenarios
                .iter()
                .map(|p| (p.scenario.target_name(), &p.target)),
        );
        tokio::select! {
            warm = warm => warm?,
            () = interrupted(fired.clone()) => {}
        }
        Ok(run_all_in(
            ctx,
            plan.scenarios,
            &config,
            &mut console,
            interrupted(fired),
        )
        .await)
    });
    let mut report = match ran {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            return Err(ExitCode::from(exit_codes::INVALID_INPUT));
        }
    };
    report.partition = args.partition.map(|p| p.to_string());
    // Stop stray tasks (stub servers) before the runtime goes away.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));

    Ok((report, gates))
}

/// Judges the run by its gates, prints them, writes every report and returns the exit
/// code: shared by `run` and `report merge`.
pub(crate) fn finish(
    report: reports::RunReport,
    gates: Option<&[Gate]>,
    out: &std::path::Path,
) -> ExitCode {
    finish_with(report, gates, out, Vec::new()).0
}

/// [`finish`], with gates judged elsewhere (a baseline comparison) added to the file's.
/// Also returns the verdict the run had before those were added.
pub(crate) fn finish_with(
    mut report: reports::RunReport,
    gates: Option<&[Gate]>,
    out: &std::path::Path,
    extra: Vec<reports::GateResult>,
) -> (ExitCode, reports::Verdict) {
    match gates {
        Some(gates) => (report.gates, report.verdict) = gates::evaluate(gates, &report),
        None => report.verdict = gates::verdict_without_gates(&report),
    }
    let own_verdict = report.verdict;
    if !extra.is_empty() {
        report.gates.extend(extra);
        if report.gates.iter().any(|g| g.critical && !g.passed) {
            report.verdict = reports::Verdict::Fail;
        } else if report.verdict == reports::Verdict::Pass && report.gates.iter().any(|g| !g.passed)
        {
            report.verdict = reports::Verdict::Warn;
        }
    }
    if report.interrupted {
        // What was not run was not tested: an interrupted run neither passes nor fails,
        // whatever the gates said of the scenarios that finished (they stay in the report).
        report.verdict = reports::Verdict::Interrupted;
    }
    crate::console::print_gates(&report);
    match reports::write_all(&report, out) {
        Ok(written) => eprintln!(
            "     Reports {}, {}, {}",
            written.junit.display(),
            written.results.display(),
            written.summary.display()
        ),
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            return (ExitCode::from(exit_codes::HARNESS_ERROR), own_verdict);
        }
    }
    let code = ExitCode::from(if report.interrupted {
        exit_codes::INTERRUPTED
    } else if report.verdict == reports::Verdict::Fail {
        exit_codes::VERDICT_FAIL
    } else {
        exit_codes::OK
    });
    (code, own_verdict)
}

/// The async runtime every command runs on; a harness error (exit 3) when it cannot start.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::from(exit_codes::HARNESS_ERROR)
    })
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (a CI job being cancelled). The
/// handlers are installed when this is called, not when it is first polled.
pub(crate) fn interrupt_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            // If no handler can be installed, the run just can't be interrupted cleanly.
            _ => std::future::pending::<()>().await,
        }
    }
}

pub(crate) fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Mix in the pid so two runs started in the same instant differ.
    (nanos ^ (u64::from(std::process::id()) << 32)) % 1_000_000_000
}

/// Which scenarios to run and where to write the reports.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Scenario files or folders (searched recursively for *.toml).
    #[arg(default_value = "scenarios")]
    pub paths: Vec<PathBuf>,
    /// Where to write junit.xml, results.json, summary.md, report.html and the journals.
    #[arg(long, default_value = "target/harness")]
    pub out: PathBuf,
    /// How many scenarios run at once [default: the number of cores].
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Run only scenarios whose id (path) or name contains this text.
    #[arg(long, short = 'E')]
    pub filter: Option<String>,
    /// Run only scenarios with this tag (repeat for any of several).
    #[arg(long = "tag", short = 't')]
    pub tags: Vec<String>,
    /// The run's seed; each scenario derives its own from it. Printed at the start, so a
    /// run can be replayed exactly [default: random].
    #[arg(long)]
    pub seed: Option<u64>,
    /// The quality gates to evaluate after the scenarios [default: gates.toml in the first
    /// PATH, when it is a folder that has one; without gates every scenario must pass].
    #[arg(long)]
    pub gates: Option<PathBuf>,
    /// Run only shard K of N (`hash:K/N`, K from 1): scenarios are assigned by a hash of
    /// their path, so adding a scenario moves no other. Merge shards with `report merge`.
    #[arg(long, value_parser = crate::plan::Partition::parse)]
    pub partition: Option<crate::plan::Partition>,
    /// Set an environment variable for every target, over the target's and the
    /// scenario's own (e.g. `--env REFPIPE_FRAGILE=1`). Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Run every scenario against this target instead of the one it names (e.g. the
    /// same pack against a fragile build, or a staging service).
    #[arg(long)]
    pub target: Option<String>,
    /// Rerun a failed scenario up to N times; one that passes on a rerun is reported flaky.
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Stop launching scenarios after the first failure (running ones finish); the rest
    /// are reported as not run.
    #[arg(long)]
    pub fail_fast: bool,
}

/// `KEY=VALUE`, for `--env`.
pub(crate) fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}
