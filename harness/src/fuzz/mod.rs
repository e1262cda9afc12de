//! `harness fuzz SCENARIO`: adversarial replies with shrinking.
//!
//! Starting from a scenario that passes, each case replaces one scripted reply (an LLM
//! rule's or an executor's) with a variant drawn from proptest strategies, runs the
//! scenario with the runner as any other, and checks it:
//!
//! ```text
//! Scenario ─▶ Base (slots: the replies to vary) ─▶ strategies ─▶ Case ─▶ scenario file
//!          ─▶ runner::run_scenario ─▶ ScenarioResult ─▶ invariants ─▶ violation?
//!          ─▶ shrink (proptest ValueTree) ─▶ minimal case ─▶ written as a scenario
//! ```
//!
//! Hostile variants (broken JSON, odd types, protocol faults, error statuses, slow or
//! failing executors) must keep the invariants; tolerable ones (the same meaning written
//! differently) must keep the scenario's own `[expect]`. The same seed draws the same
//! cases; the first violation (in case order, whatever `--jobs`) is shrunk and written.

mod case;
mod invariants;
mod render;
mod shrink;
mod strategies;
mod write;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reports::{Outcome, ScenarioResult};

use self::case::Base;
use self::invariants::{Invariants, Violation};
use self::strategies::{Case, Settings};
use crate::exit_codes;
use crate::plan::{Selection, plan};
use crate::runner::{Planned, run_scenario};
use crate::scenario::VariantKind;

/// Cases when neither `--cases`, PROPTEST_CASES nor `[adversarial].cases` says.
pub const DEFAULT_CASES: u32 = 256;
/// The most cases run while shrinking one failure.
const MAX_SHRINK_RUNS: u32 = 400;
/// The longest shrinking may take.
const MAX_SHRINK_TIME: Duration = Duration::from_secs(300);

/// `harness fuzz`: vary what the stubs answer until an invariant breaks.
#[derive(Debug, Clone, Args)]
pub struct FuzzArgs {
    /// The scenario to start from; it must pass as written. Its `[adversarial]` table,
    /// if any, says what to vary and what must hold.
    pub scenario: PathBuf,
    /// Cases to try [default: PROPTEST_CASES when set, else `[adversarial].cases`, else
    /// 256].
    #[arg(long)]
    pub cases: Option<u32>,
    /// The seed of the cases: the same seed tries the same cases and finds the same
    /// minimal one [default: random, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cases run at once [default: the number of cores].
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Stop trying new cases after this long, e.g. `2m` [default:
    /// `[adversarial].time_budget`, else none]. A found case is still shrunk.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub time_budget: Option<Duration>,
    /// Where to write `fuzz/fuzz.json` and, when a case fails, the minimal scenario.
    #[arg(long, default_value = "target/harness")]
    pub out: PathBuf,
    /// The minimal failing scenario's file [default: OUT/fuzz/<scenario>.min.toml].
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Run against this target instead of the one the scenario names.
    #[arg(long)]
    pub target: Option<String>,
    /// Set an environment variable for the target (e.g. `--env REFPIPE_PLANTED_BUG=…`),
    /// over the target's and the scenario's own. Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = crate::run_cmd::parse_env)]
    pub env: Vec<(String, String)>,
}

/// Runs `harness fuzz`: 0 when no case broke an invariant, 1 when one did (the minimal
/// case is written), 2 for a bad scenario or one that fails as written, 3 when the
/// harness could not run a case, 130 when interrupted (Ctrl-C, SIGTERM) while drawing
/// cases.
pub fn execute(args: &FuzzArgs) -> ExitCode {
    match fuzz(args) {
        Ok(code) => ExitCode::from(code),
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

type Failed = (u8, String);

/// Everything one case needs, shared by the running cases.
struct Ctx {
    base: Base,
    planned: Planned,
    invariants: Invariants,
    stream_input: Option<String>,
    dir: tempfile::TempDir,
}

/// A case run: its result and what it broke.
type Ran = (ScenarioResult, Vec<Violation>);

fn fuzz(args: &FuzzArgs) -> Result<u8, Failed> {
    let invalid = |m: String| (exit_codes::INVALID_INPUT, m);
    let broken = |m: String| (exit_codes::HARNESS_ERROR, m);
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(crate::run_cmd::random_seed);
    let selection = Selection {
        paths: vec![args.scenario.clone()],
        target: args.target.clone(),
        env: args.env.clone(),
        ..Selection::default()
    };
    let planned = match plan(&selection, seed) {
        Ok(p) if p.scenarios.len() == 1 => p.scenarios.into_iter().next().expect("one"),
        Ok(p) => {
            return Err(invalid(format!(
                "`{}` holds {} scenarios; fuzz takes one scenario file",
                args.scenario.display(),
                p.scenarios.len()
            )));
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{}\n", crate::console::render_load_error(e));
            }
            return Err(invalid("the scenario is invalid; nothing was run".into()));
        }
    };
    let mut planned = planned;
    // TOML integers are signed: a seed the minimal file can pin.
    planned.seed &= i64::MAX as u64;
    let scenario = Arc::clone(&planned.scenario);
    let adversarial = scenario.spec.adversarial.as_ref();
    let source = std::fs::read_to_string(&scenario.file_path).map_err(|e| {
        invalid(format!(
            "cannot read `{}`: {e}",
            scenario.file_path.display()
        ))
    })?;
    let vary = adversarial.map_or(&[][..], |a| &a.vary[..]);
    let base = Base::new(&scenario, &source, vary)
        .map_err(|e| invalid(format!("`{}`: {e}", args.scenario.display())))?;
    let settings = Settings {
        hostile: adversarial.is_none_or(|a| a.tries(VariantKind::Hostile)),
        tolerable: adversarial.is_none_or(|a| a.tries(VariantKind::Tolerable)),
        streamable: adversarial.and_then(|a| a.stream_input.as_ref()).is_some(),
        max_delay_ms: adversarial
            .and_then(|a| a.max_delay)
            .unwrap_or(Duration::from_millis(200))
            .as_millis() as u64,
    };
    let Some(strategy) = strategies::cases(&base.slots, &settings) else {
        return Err(invalid(format!(
            "`{}` has no reply to vary (hint: `[adversarial].vary` names rules by `llm.AGENT` or `executor.NAME`; check it matches the file's rules)",
            args.scenario.display()
        )));
    };
    let cases = args
        .cases
        .or_else(|| {
            std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.trim().parse().ok())
        })
        .or(adversarial.and_then(|a| a.cases))
        .unwrap_or(DEFAULT_CASES);
    let budget = args.time_budget.or(adversarial.and_then(|a| a.time_budget));
    let jobs = args
        .jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime =
        crate::run_cmd::runtime().map_err(|_| broken("cannot start the async runtime".into()))?;
    let dir = tempfile::Builder::new()
        .prefix("agent-harness-fuzz-")
        .tempdir()
        .map_err(|e| broken(format!("cannot create a folder for the cases: {e}")))?;
    let ctx = Arc::new(Ctx {
        base,
        invariants: Invariants::new(adversarial, &planned.target.status),
        stream_input: adversarial.and_then(|a| a.stream_input.clone()),
        planned,
        dir,
    });

    eprintln!(
        "     Fuzzing {} ({} replies to vary, {cases} cases, {jobs} at a time, seed {seed})",
        args.scenario.display(),
        ctx.base.slots.len()
    );
    // The scenario must pass as written: a failure then is the variation's doing.
    let as_written = runtime.block_on(run_scenario(&ctx.planned));
    if as_written.outcome != Outcome::Passed {
        for f in &as_written.failures {
            eprintln!("  ✗ {}", f.message);
        }
        return Err(invalid(format!(
            "`{}` does not pass as written; fuzzing starts from a passing scenario (hint: run it with `harness run` first)",
            args.scenario.display()
        )));
    }

    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)),
    );
    let progress = Progress::new(cases);
    // Registered before any case starts, so an early Ctrl-C is not lost.
    let mut interrupt = {
        let _guard = runtime.enter();
        Box::pin(crate::run_cmd::interrupt_signal())
    };
    let (mut tried, mut hostile, mut tolerable) = (0usize, 0usize, 0usize);
    // A hash of every case drawn, in order: the same seed draws the same cases.
    let mut fingerprint = 0u64;
    while tried < cases as usize && budget.is_none_or(|b| started.elapsed() < b) {
        let n = jobs.min(cases as usize - tried);
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            let tree = strategy
                .new_tree(&mut runner)
                .map_err(|e| broken(format!("cannot draw a case: {e}")))?;
            batch.push(tree);
        }
        let drawn: Vec<Case> = batch.iter().map(|t| t.current()).collect();
        for case in &drawn {
            fingerprint = fingerprint_of(fingerprint, case);
        }
        let results = runtime.block_on(async {
            tokio::select! {
                results = run_batch(&ctx, &drawn, tried) => Some(results),
                () = &mut interrupt => None,
            }
        });
        // Interrupted: the running cases were dropped, which kills their targets.
        let Some(results) = results else {
            progress.done();
            eprintln!("  Interrupted after {tried} cases, no violation so far");
            let summary = write::summary(
                &args.scenario,
                seed,
                fingerprint,
                tried,
                hostile,
                tolerable,
                started.elapsed().as_secs_f64(),
                None,
            );
            write_summary(&args.out, &summary).map_err(broken)?;
            return Ok(exit_codes::INTERRUPTED);
        };
        for (i, (case, ran)) in drawn.iter().zip(results).enumerate() {
            let (result, violations) = ran.map_err(broken)?;
            match case.kind {
                VariantKind::Hostile => hostile += 1,
                VariantKind::Tolerable => tolerable += 1,
            }
            let Some(first) = violations.into_iter().next() else {
                continue;
            };
            progress.done();
            let number = tried + i + 1;
            eprintln!(
                "   Violation {} in case {number} ({}): {}: {}",
                first.invariant,
                kind_word(case.kind),
                ctx.base.slots[case.slot].place.label(),
                case.what
            );
            eprintln!("             {}", first.message);
            let mut tree = batch.swap_remove(i);
            let deadline = Instant::now() + MAX_SHRINK_TIME;
            let invariant = first.invariant.clone();
            let (minimal, (violation, result), done) = shrink::shrink(
                &mut *tree,
                (first, result),
                MAX_SHRINK_RUNS,
                deadline,
                |c: &Case| {
                    let (result, violations) =
                        runtime.block_on(run_case(Arc::clone(&ctx), c.clone(), 0))?;
                    Ok::<_, String>(
                        violations
                            .into_iter()
                            .find(|v| v.invariant == invariant)
                            .map(|v| (v, result)),
                    )
                },
            )
            .map_err(broken)?;
            let found = write::Found {
                scenario_file: &args.scenario,
                scenario_name: &scenario.spec.name,
                tags: &scenario.spec.tags,
                fuzz_seed: seed,
                scenario_seed: ctx.planned.seed,
                case_number: number,
                cases,
                first: case,
                minimal: &minimal,
                place: ctx.base.slots[minimal.slot].place.label(),
                violation: &violation,
                shrink_steps: done.steps,
                shrink_runs: done.runs,
            };
            let expect = match minimal.kind {
                VariantKind::Hostile => ctx.invariants.written_expect(&violation, &result),
                VariantKind::Tolerable => ctx.base.expect.clone(),
            };
            let table = ctx
                .base
                .with_case(&minimal, ctx.stream_input.as_deref(), expect)
                .map_err(broken)?;
            let mut table = table;
            // `--env` is part of what failed: the file carries it, so it fails on its own.
            if !args.env.is_empty() {
                let env = table
                    .entry("env")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let Some(env) = env.as_table_mut() {
                    for (k, v) in &args.env {
                        env.insert(k.clone(), v.as_str().into());
                    }
                }
            }
            let text = write::scenario_text(&found, table).map_err(broken)?;
            let stem = args
                .scenario
                .file_stem()
                .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
            let file = args
                .write
                .clone()
                .unwrap_or_else(|| args.out.join("fuzz").join(format!("{stem}.min.toml")));
            write::atomically(&file, &text)
                .map_err(|e| broken(format!("cannot write `{}`: {e}", file.display())))?;
            let reply = write::shown_reply(&minimal);
            eprintln!(
                "      Shrunk in {} steps ({} runs) to: {}: {}",
                done.steps, done.runs, found.place, minimal.what
            );
            eprintln!(
                "       Reply {reply:?} ({} characters)",
                reply.chars().count()
            );
            eprintln!("   Invariant {}", violation.invariant);
            eprintln!("             {}", violation.message);
            eprintln!(
                "     Written {} (run it with `harness run`)",
                file.display()
            );
            let summary = write::summary(
                &args.scenario,
                seed,
                fingerprint,
                number,
                hostile,
                tolerable,
                started.elapsed().as_secs_f64(),
                Some((&found, &file)),
            );
            write_summary(&args.out, &summary).map_err(broken)?;
            return Ok(exit_codes::VERDICT_FAIL);
        }
        tried += n;
        progress.advance(tried, started.elapsed());
    }
    progress.done();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "  No violation in {tried} cases ({hostile} hostile, {tolerable} tolerable) in {seconds:.1}s{}",
        if tried < cases as usize {
            " (the time budget ran out)"
        } else {
            ""
        }
    );
    let summary = write::summary(
        &args.scenario,
        seed,
        fingerprint,
        tried,
        hostile,
        tolerable,
        seconds,
        None,
    );
    write_summary(&args.out, &summary).map_err(broken)?;
    Ok(exit_codes::OK)
}

fn kind_word(kind: VariantKind) -> &'static str {
    match kind {
        VariantKind::Hostile => "hostile",
        VariantKind::Tolerable => "tolerable",
    }
}

/// Writes `fuzz/fuzz.json` and `fuzz/summary.md` under `out`.
fn write_summary(out: &std::path::Path, summary: &serde_json::Value) -> Result<(), String> {
    let json = serde_json::to_string_pretty(summary).unwrap_or_default();
    for (name, text) in [
        ("fuzz.json", json),
        ("summary.md", write::markdown(summary)),
    ] {
        let file = out.join("fuzz").join(name);
        write::atomically(&file, &text)
            .map_err(|e| format!("cannot write `{}`: {e}", file.display()))?;
    }
    Ok(())
}

/// `so_far` extended with `case` (FNV-1a over its debug form).
fn fingerprint_of(so_far: u64, case: &Case) -> u64 {
    crate::plan::id_hash(&format!("{so_far:016x}{case:?}"))
}

/// A 32-byte ChaCha seed from the run's seed.
fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    bytes
}

/// Runs `cases` at once; their results in the same order.
async fn run_batch(ctx: &Arc<Ctx>, cases: &[Case], offset: usize) -> Vec<Result<Ran, String>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, case) in cases.iter().enumerate() {
        let (ctx, case) = (Arc::clone(ctx), case.clone());
        set.spawn(async move { (i, run_case(ctx, case, offset + i + 1).await) });
    }
    let mut out: Vec<Option<Result<Ran, String>>> = (0..cases.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, ran)) => out[i] = Some(ran),
            Err(e) => return vec![Err(format!("a case failed inside the harness: {e}"))],
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err("a case did not finish".into())))
        .collect()
}

/// Runs one case as a scenario: written to a file, loaded as any scenario is, run by the
/// runner against the base's target, and checked.
async fn run_case(ctx: Arc<Ctx>, case: Case, number: usize) -> Result<Ran, String> {
    let expect = match case.kind {
        VariantKind::Hostile => ctx.invariants.hostile_expect(),
        VariantKind::Tolerable => ctx.base.expect.clone(),
    };
    let table = ctx
        .base
        .with_case(&case, ctx.stream_input.as_deref(), expect)?;
    let text = toml::to_string(&table).map_err(|e| format!("cannot write case {number}: {e}"))?;
    let file = ctx.dir.path().join(format!("case-{number}.toml"));
    std::fs::write(&file, &text).map_err(|e| format!("cannot write `{}`: {e}", file.display()))?;
    let scenario = crate::scenario::load_one(ctx.dir.path(), &file).map_err(|e| {
        format!(
            "case {number} is not a valid scenario (a harness bug):\n{}\n{text}",
            crate::console::render_load_error(&e)
        )
    })?;
    let _ = std::fs::remove_file(&file);
    let planned = Planned {
        scenario: Arc::new(scenario),
        ..ctx.planned.clone()
    };
    let result = run_scenario(&planned).await;
    if result.outcome == Outcome::Error {
        let why: Vec<&str> = result.failures.iter().map(|f| f.message.as_str()).collect();
        return Err(format!(
            "case {number} could not be run: {}",
            why.join("; ")
        ));
    }
    let violations = ctx.invariants.check(case.kind, &result);
    Ok((result, violations))
}

/// Progress on stderr: a bar on a terminal, a line every tenth of the cases otherwise.
struct Progress {
    bar: indicatif::ProgressBar,
    total: u32,
    terminal: bool,
}

impl Progress {
    fn new(total: u32) -> Progress {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            indicatif::ProgressBar::new(u64::from(total))
        } else {
            indicatif::ProgressBar::hidden()
        };
        Progress {
            bar,
            total,
            terminal,
        }
    }

    fn advance(&self, tried: usize, elapsed: Duration) {
        self.bar.set_position(tried as u64);
        let step = (self.total as usize / 10).max(1);
        if !self.terminal
            && (tried % step < (tried.saturating_sub(1) % step) + 1 || tried == self.total as usize)
        {
            eprintln!(
                "    Progress {tried}/{} cases, 0 violations ({:.1}s)",
                self.total,
                elapsed.as_secs_f64()
            );
        }
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}
