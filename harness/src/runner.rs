//! The runner: plans scenarios (target, seed), runs each in isolation with its own stubs,
//! up to `jobs` at once, and emits events that reporters consume.
//!
//! ```text
//! Scenario ─▶ stubs on 127.0.0.1:0 ─▶ target process (env: stub URLs) ─▶ output, journal
//!          ─▶ expectations ─▶ ScenarioResult ─▶ RunEvent::Finished ─▶ reporters
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reports::metrics::{Histo, LoadMetrics};
use reports::{FailedAttempt, Failure, JournalEntry, Outcome, RunReport, ScenarioResult};
use tokio::task::JoinSet;

use crate::errors::{RunError, error_chain};
use crate::expect::{Observed, evaluate};
use crate::faults::ScenarioProxies;
use crate::load::ScenarioLoad;
use crate::sampler::Sampler;
use crate::scenario::LoadSpec;
use crate::scenario::Scenario;
use crate::service::ScenarioServices;
use crate::steady::{self, Phase};
use crate::stubs::ScenarioStubs;
use crate::target::{
    Exit, RunContext, RunOutcome, RunSetup, Session, StubUrls, TargetKind, expand, inherited_env,
    locate_program,
};

pub use crate::events::{NoopReporter, Reporter, RunEvent};
pub use crate::plan::{Planned, scenario_seed};
pub use crate::scenario::DEFAULT_TIMEOUT;

/// How a run proceeds.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Scenarios at once (at least 1).
    pub jobs: usize,
    /// The run's seed, recorded in the report.
    pub seed: u64,
    /// Reruns of a failed scenario; one that passes on a rerun is reported flaky.
    /// By default, 0.
    pub retries: u32,
    /// Stop launching scenarios after the first failure; the rest are reported as not
    /// run. By default, disabled.
    pub fail_fast: bool,
    /// Stop injecting (abort the running scenarios, rolling their faults back) once the
    /// share of failed scenarios passes a bound. By default, none.
    pub abort: Option<AbortRule>,
}

/// A drill's abort condition: more than `error_rate` of the finished scenarios failed,
/// once at least `min_scenarios` have finished.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbortRule {
    pub error_rate: f64,
    pub min_scenarios: usize,
}

impl RunConfig {
    /// `jobs` at once, no retries, no fail-fast.
    pub fn new(jobs: usize, seed: u64) -> Self {
        RunConfig {
            jobs,
            seed,
            retries: 0,
            fail_fast: false,
            abort: None,
        }
    }
}

/// Runs every planned scenario, `config.jobs` at a time, until all finish or `interrupt`
/// resolves; on interruption the running ones are stopped (their process groups killed)
/// and the rest are reported as skipped.
pub async fn run_all(
    planned: Vec<Planned>,
    config: &RunConfig,
    reporter: &mut dyn Reporter,
    interrupt: impl std::future::Future<Output = ()>,
) -> RunReport {
    let ctx = Arc::new(RunContext::new(config.jobs));
    run_all_in(ctx, planned, config, reporter, interrupt).await
}

/// [`run_all`] within a run-scoped context made beforehand (e.g. with its workers
/// already warm, see [`RunContext::warm_up`]).
pub async fn run_all_in(
    ctx: Arc<RunContext>,
    planned: Vec<Planned>,
    config: &RunConfig,
    reporter: &mut dyn Reporter,
    interrupt: impl std::future::Future<Output = ()>,
) -> RunReport {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let started = Instant::now();
    let total = planned.len();
    let jobs = config.jobs.max(1);
    let seed = config.seed;
    // What an earlier harness killed with SIGKILL left behind: its tagged processes (a
    // daemonised descendant, a service whose parent-death signal could not reach it) and
    // its scratch directories.
    let orphans = crate::reaper::sweep_orphans();
    let scratch_dirs = crate::reaper::sweep_stale_scratch();
    if !orphans.is_empty() || scratch_dirs > 0 {
        eprintln!(
            "harness: ended {} process(es) and removed {scratch_dirs} scratch directorie(s) left by a harness run that was killed{}",
            orphans.len(),
            orphans
                .iter()
                .map(|o| format!("\n  pid {} `{}`", o.pid, o.command))
                .collect::<String>()
        );
    }
    reporter.event(RunEvent::Started { total, jobs, seed });

    let mut results: Vec<Option<ScenarioResult>> = vec![None; total];
    let mut queue = planned.iter().enumerate();
    let mut running: JoinSet<(usize, ScenarioResult)> = JoinSet::new();
    // Which scenario each task runs, so a task that panics is that scenario's failure.
    let mut task_of: std::collections::HashMap<tokio::task::Id, usize> =
        std::collections::HashMap::new();
    let mut interrupted = false;
    let mut stopped_by: Option<String> = None;
    let mut aborted: Option<String> = None;
    let mut failed_so_far = 0;
    let mut done = 0;
    tokio::pin!(interrupt);

    loop {
        while running.len() < jobs && stopped_by.is_none() {
            let Some((index, p)) = queue.next() else {
                break;
            };
            reporter.event(RunEvent::ScenarioStarted { planned: p });
            let p = p.clone();
            let retries = config.retries;
            let ctx = Arc::clone(&ctx);
            let task =
                running.spawn(async move { (index, run_with_retries(&ctx, &p, retries).await) });
            task_of.insert(task.id(), index);
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next_with_id() => {
                let Some(joined) = joined else { break };
                let (index, result) = match joined {
                    Ok((id, pair)) => {
                        task_of.remove(&id);
                        pair
                    }
                    // A task panicked: a harness bug, reported as an error of that scenario
                    // rather than taking the run down.
                    Err(e) => {
                        let Some(index) = task_of.remove(&e.id()) else { continue };
                        (index, errored(&planned[index], "panic", format!("the harness failed while running this scenario: {e}")))
                    }
                };
                done += 1;
                let failed = matches!(result.outcome, Outcome::Failed | Outcome::Error);
                failed_so_far += usize::from(failed);
                if config.fail_fast && stopped_by.is_none() && failed {
                    stopped_by = Some(result.path.clone());
                }
                reporter.event(RunEvent::ScenarioFinished { result: &result, done, total });
                results[index] = Some(result);
                if let Some(rule) = config.abort {
                    let rate = failed_so_far as f64 / done as f64;
                    if aborted.is_none() && done >= rule.min_scenarios && rate > rule.error_rate {
                        let why = format!(
                            "aborted: {failed_so_far} of {done} scenarios failed ({:.0}%), above the drill's bound of {:.0}%",
                            rate * 100.0,
                            rule.error_rate * 100.0
                        );
                        reporter.event(RunEvent::Aborted { reason: &why, running: running.len() });
                        // Dropping the running scenarios rolls their faults back.
                        running.abort_all();
                        while running.join_next().await.is_some() {}
                        aborted = Some(why);
                        break;
                    }
                }
            }
            () = &mut interrupt => {
                interrupted = true;
                reporter.event(RunEvent::Interrupted { running: running.len() });
                running.abort_all();
                while running.join_next().await.is_some() {}
                break;
            }
        }
    }

    let scenarios = results
        .into_iter()
        .zip(&planned)
        .map(|(r, p)| {
            r.unwrap_or_else(|| match &aborted {
                Some(why) => skipped_because(p, "aborted", why.clone()),
                None => skipped(p, interrupted, stopped_by.as_deref()),
            })
        })
        .collect();
    let report = RunReport {
        tool: format!("agent-harness {}", env!("CARGO_PKG_VERSION")),
        started_at,
        duration: started.elapsed(),
        seed,
        interrupted,
        scenarios,
        gates: Vec::new(),
        verdict: reports::Verdict::Pass,
        partition: None,
    };
    reporter.event(RunEvent::Finished { report: &report });
    report
}

/// Runs a scenario, and reruns it up to `retries` times while it fails; earlier failed
/// attempts are kept in the result (a pass after them is flaky). Each attempt uses the
/// same seed: a rerun that passes shows nondeterminism the seed does not control.
pub async fn run_with_retries(ctx: &RunContext, p: &Planned, retries: u32) -> ScenarioResult {
    let mut failed_attempts = Vec::new();
    loop {
        let mut result = run_scenario_in(ctx, p).await;
        let failed = matches!(result.outcome, Outcome::Failed | Outcome::Error);
        if !failed || failed_attempts.len() as u32 >= retries {
            result.failed_attempts = failed_attempts;
            return result;
        }
        failed_attempts.push(FailedAttempt {
            duration: result.duration,
            failures: result.failures,
        });
    }
}

/// Runs one scenario on its own: stubs up, target run, expectations checked, stubs down.
pub async fn run_scenario(p: &Planned) -> ScenarioResult {
    run_scenario_in(&RunContext::new(1), p).await
}

/// Runs one scenario within a run's context (its warm workers).
pub async fn run_scenario_in(ctx: &RunContext, p: &Planned) -> ScenarioResult {
    #[cfg(test)]
    tests::failpoint(p);
    let started = Instant::now();
    match try_run(ctx, p, started).await {
        Ok(result) => result,
        Err(e) => {
            let mut r = errored(p, error_kind(&e), error_chain(&e));
            r.duration = started.elapsed();
            r
        }
    }
}

async fn try_run(
    ctx: &RunContext,
    p: &Planned,
    started: Instant,
) -> Result<ScenarioResult, RunError> {
    let scenario = &p.scenario;
    let target = &p.target;
    let stubs = ScenarioStubs::start(scenario, target, p.seed).await?;

    let not_found = || RunError::Spawn {
        target: scenario.target_name().into(),
        program: target.program.clone().unwrap_or_default(),
        problem: crate::target::why_no_program(target),
    };
    let program = match (&target.program, target.kind) {
        (Some(_), _) => Some(locate_program(target).ok_or_else(not_found)?),
        (None, TargetKind::Http) => None,
        (None, _) => return Err(not_found()),
    };
    let executor_urls = stubs.executor_urls();
    let scratch = tempfile::Builder::new()
        .prefix(&crate::reaper::scratch_prefix())
        .tempdir()
        .map_err(|e| RunError::Spawn {
            target: scenario.target_name().into(),
            program: "{scratch}".into(),
            problem: format!("could not create the scenario's scratch directory: {e}"),
        })?;
    let scratch_path = scratch.path().display().to_string();
    // Services first: proxies may stand in front of them.
    let mut services = ScenarioServices::start(&scenario.spec.service, scratch.path()).await?;
    let stub_addr = |name: &str| {
        let url = match name.split_once('.') {
            None if name == "llm" => stubs.llm.uri(),
            Some(("executor", exec)) => executor_urls.get(exec)?.clone(),
            Some(("service", svc)) => return services.addrs().get(svc).cloned(),
            _ => return None,
        };
        Some(url.trim_start_matches("http://").to_string())
    };
    let proxies = ScenarioProxies::start(
        &scenario.spec.proxy,
        stub_addr,
        |upstream| crate::netpolicy::allowed_off_loopback(&p.allow_hosts, upstream),
        p.seed,
    )
    .await?;
    let proxy_addrs = proxies.addrs();
    let llm = |provider: &str| stubs.llm.base_url(provider);
    let disk_faults = crate::faults::DiskFaults::make(&scenario.spec.process, scratch.path())?;
    let urls = StubUrls {
        llm: &llm,
        executors: &executor_urls,
        proxies: &proxy_addrs,
        services: services.addrs(),
        scratch: &scratch_path,
        seed: p.seed,
    };
    let mut env = inherited_env(&target.inherit_env);
    for (key, value) in target.env.iter().chain(&scenario.spec.env) {
        env.retain(|(k, _): &(String, String)| k != key);
        env.push((key.clone(), expand(scenario.target_name(), value, &urls)?));
    }
    for (key, value) in p.env.iter() {
        env.retain(|(k, _): &(String, String)| k != key);
        env.push((key.clone(), value.clone()));
    }
    let input = serde_json::Value::Object(scenario.spec.input.clone().unwrap_or_default());
    let shown = program.as_ref().map_or_else(
        || target.kind_name().to_string(),
        |p| p.display().to_string(),
    );
    let spawn_error = |problem: String| RunError::Spawn {
        target: scenario.target_name().into(),
        program: shown.clone(),
        problem,
    };
    let headers = match &target.http {
        Some(http) => http
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), expand(scenario.target_name(), v, &urls)?)))
            .collect::<Result<Vec<_>, RunError>>()?,
        None => Vec::new(),
    };
    let sampler = Arc::new(Sampler::start(started));
    let setup = Arc::new(RunSetup {
        target_name: scenario.target_name().into(),
        spec: target.clone(),
        program,
        env,
        headers,
        stdin: serde_json::to_vec(&input).unwrap_or_else(|_| b"{}".to_vec()),
        input,
        timeout: scenario.spec.timeout.unwrap_or(DEFAULT_TIMEOUT),
        process: scenario.spec.process.clone(),
        sampler: Arc::clone(&sampler),
        scratch: scratch_path.clone(),
        seed: p.seed,
        under_load: scenario.spec.load.is_some(),
        steps: scenario.spec.step.clone(),
    });
    let kind = ctx
        .target(scenario.target_name(), target)
        .map_err(|e| spawn_error(format!("could not be started: {}", error_chain(&e))))?;
    let session = match kind
        .open(Arc::clone(&setup))
        .await
        .map_err(|e| spawn_error(format!("could not be started: {e}")))?
    {
        Ok(session) => session,
        Err(not_started) => {
            services.stop().await;
            return Ok(finish(
                p,
                started,
                not_started,
                Vec::new(),
                &stubs,
                (&proxies, &services),
                &disk_faults,
                None,
            ));
        }
    };

    // The steady state, in one place for every kind: before the first run, after the last.
    let probes = &scenario.spec.steady_state;
    let before = steady::check(probes, session.base_url().as_deref(), Phase::Before).await;
    if !before.is_empty() {
        let closed = session.close().await;
        services.stop().await;
        let mut outcome = RunOutcome::not_run(before);
        outcome.stderr_tail = closed.stderr;
        outcome.injected = closed.injected;
        return Ok(finish(
            p,
            started,
            outcome,
            Vec::new(),
            &stubs,
            (&proxies, &services),
            &disk_faults,
            None,
        ));
    }

    // Faults on services start with the runs, once the system was seen healthy.
    let armed_services = services.arm(&scenario.spec.process, Instant::now());
    let mut load_failures = Vec::new();
    let mut load_report = None;
    let mut outcome = match &scenario.spec.load {
        None => Arc::clone(&session).run().await,
        Some(load) => {
            let report = run_load(p, load, &session).await;
            load_failures = load_failures_of(scenario, &report);
            let mut report = report;
            let outcome = report
                .representative
                .take()
                .unwrap_or_else(|| RunOutcome::not_run(Vec::new()));
            load_report = Some(report);
            outcome
        }
    };
    let died = session.died();
    if died.is_none() && outcome.exit != Exit::TimedOut {
        let after = steady::check(probes, session.base_url().as_deref(), Phase::After).await;
        outcome.probes.extend(after);
    }
    let closed = session.close().await;
    armed_services.disarm().await;
    services.stop().await;
    if !closed.stderr.is_empty() {
        outcome.stderr_tail = if outcome.stderr_tail.is_empty() {
            closed.stderr
        } else {
            format!("{}\n{}", closed.stderr, outcome.stderr_tail)
        };
    }
    outcome.injected.extend(closed.injected);
    if let (Some(exit), Some(_)) = (died, &scenario.spec.load) {
        load_failures.push(Failure {
            kind: "crashed".into(),
            message: format!("the service died during the load ({exit:?})"),
            detail: String::new(),
        });
    }

    let observation = Arc::try_unwrap(sampler).map_or_else(|s| s.snapshot(), |s| s.stop());
    drop(setup);
    let mut result = finish(
        p,
        started,
        outcome,
        load_failures,
        &stubs,
        (&proxies, &services),
        &disk_faults,
        load_report.as_ref(),
    );
    let growth = match &load_report {
        Some(r) => r.rss_growth.clone(),
        None => Err(crate::metrics::NO_LOAD_FOR_GROWTH.to_string()),
    };
    let (end_to_end, load_metrics, outputs, runs, success) = match &load_report {
        Some(r) => (
            r.end_to_end.clone(),
            Some(LoadMetrics {
                model: scenario
                    .spec
                    .load
                    .as_ref()
                    .map_or("", |l| l.model.name())
                    .to_string(),
                intended_rate: scenario
                    .spec
                    .load
                    .as_ref()
                    .and_then(LoadSpec::intended_rate),
                achieved_rate: if r.seconds > 0.0 {
                    r.total as f64 / r.seconds
                } else {
                    0.0
                },
                started: r.total,
                succeeded: r.succeeded,
                failed: r.total - r.succeeded,
                dropped: r.dropped,
                seconds: r.seconds,
            }),
            r.outputs.clone(),
            r.total,
            (r.succeeded, r.total),
        ),
        None => {
            let mut h = Histo::new();
            h.record(result.duration);
            let ok = u64::from(result.failures.is_empty());
            (
                h,
                None,
                result.output.clone().into_iter().collect(),
                1,
                (ok, 1),
            )
        }
    };
    let mut metrics = crate::metrics::assemble(crate::metrics::Parts {
        end_to_end,
        stubs: &stubs,
        memory: observation,
        runs,
        growth_per_run: growth.as_ref().ok().copied(),
        outputs,
        tokens_pointer: target.tokens.as_deref(),
        cost_pointer: target.cost.as_deref(),
        load: load_metrics,
        succeeded: success.0,
        total: success.1,
    });
    let why_runs_failed = load_report
        .as_ref()
        .filter(|r| r.succeeded < r.total)
        .map(failed_runs);
    let threshold_failures = crate::metrics::judge(
        &scenario.spec.thresholds.0,
        &mut metrics,
        success,
        growth.err().as_deref(),
        why_runs_failed.as_deref(),
    );
    result.failures.extend(threshold_failures);
    result.metrics = metrics;
    if !result.failures.is_empty() {
        result.outcome = Outcome::Failed;
    }
    drop(proxies);
    drop(stubs);
    Ok(result)
}

/// Runs a scenario's `[load]` against its session, each run judged as it finishes.
async fn run_load(
    p: &Planned,
    load: &LoadSpec,
    session: &Arc<dyn Session>,
) -> crate::load::ScenarioLoadOutcome {
    let judge_planned = p.clone();
    let judge: crate::load::Judge = Arc::new(move |o: &RunOutcome| {
        let output = parse_output(&o.stdout);
        evaluate(
            &judge_planned.scenario,
            &judge_planned.target,
            &Observed {
                outcome: o,
                output: output.as_ref(),
                journal: &[],
                per_run: true,
            },
        )
    });
    crate::load::run_scenario_load(ScenarioLoad {
        spec: load.clone(),
        session: Arc::clone(session),
        judge,
        kind: p.target.kind,
        isolation: p.target.isolation.unwrap_or_default(),
        external: p.target.program.is_none(),
    })
    .await
}

/// Why runs of a load failed: the first failing run's failures, and the last one's when it
/// failed otherwise.
fn failed_runs(report: &crate::load::ScenarioLoadOutcome) -> String {
    let mut detail = String::new();
    for (which, failures) in [
        ("the first failing run", &report.first_failures),
        ("the last failing run", &report.last_failures),
    ] {
        if failures.is_empty() {
            continue;
        }
        detail.push_str(&format!("{which}:\n"));
        for f in failures {
            detail.push_str(&format!("  ✗ {}\n", f.message));
            for line in f.detail.lines() {
                detail.push_str(&format!("      {line}\n"));
            }
        }
    }
    detail
}

/// What only a whole load shows: runs that failed without a `success_rate` threshold to
/// allow them, or no run at all.
fn load_failures_of(
    scenario: &Scenario,
    report: &crate::load::ScenarioLoadOutcome,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let has_success_threshold = scenario
        .spec
        .thresholds
        .0
        .iter()
        .any(|t| t.metric == crate::scenario::ThresholdMetric::SuccessRate);
    if report.succeeded < report.total && !has_success_threshold {
        let detail = failed_runs(report);
        failures.push(Failure {
            kind: "load".into(),
            message: format!(
                "{} of {} runs failed (without a `success_rate` threshold, every run must pass)",
                report.total - report.succeeded,
                report.total
            ),
            detail,
        });
    }
    if report.total == 0 {
        failures.push(Failure {
            kind: "load".into(),
            message: format!("no run completed ({} arrivals dropped)", report.dropped),
            detail: String::new(),
        });
    }
    failures
}

/// The scenario's result from its (representative) outcome: expectations, journal,
/// extra failures.
#[allow(clippy::too_many_arguments)]
fn finish(
    p: &Planned,
    started: Instant,
    outcome: RunOutcome,
    extra: Vec<Failure>,
    stubs: &ScenarioStubs,
    (proxies, services): (&ScenarioProxies, &ScenarioServices),
    disk_faults: &crate::faults::DiskFaults,
    load: Option<&crate::load::ScenarioLoadOutcome>,
) -> ScenarioResult {
    let scenario = &p.scenario;
    let target = &p.target;
    let exchanges = stubs.journal();
    let mut injected = proxies.injected();
    injected.extend(services.injected());
    injected.extend(disk_faults.injected.iter().cloned());
    injected.extend(outcome.injected.iter().cloned());
    let output = parse_output(&outcome.stdout);
    let mut failures = match load {
        // Under load, each run was judged as it finished; the scenario adds what only
        // the whole shows: requests no rule matched, the steady state.
        Some(_) => {
            let mut f: Vec<Failure> = outcome
                .probes
                .iter()
                .map(|pr| Failure {
                    kind: "steady_state".into(),
                    message: format!(
                        "steady state `{}` did not hold ({:?} the load)",
                        pr.name, pr.phase
                    ),
                    detail: pr.why.clone(),
                })
                .collect();
            f.extend(crate::expect::unmatched(&exchanges));
            f
        }
        None => evaluate(
            scenario,
            target,
            &Observed {
                outcome: &outcome,
                output: output.as_ref(),
                journal: &exchanges,
                per_run: false,
            },
        ),
    };
    failures.extend(extra);
    // A fault that was not applied: the scenario did not test what it says.
    failures.extend(injected.iter().filter_map(|i| {
        i.not_applied.as_ref().map(|why| Failure {
            kind: "fault".into(),
            message: format!("{} was not applied: {why}", i.what),
            detail: String::new(),
        })
    }));
    let mut journal: Vec<JournalEntry> = exchanges
        .iter()
        .map(|e| JournalEntry {
            at: e.received.saturating_duration_since(started),
            source: e.source.clone(),
            agent: e.agent.clone(),
            request: format!("{} {} {}", e.method, e.path, e.summary),
            rule: match (&e.rule, &e.fault) {
                (_, Some(fault)) => Some(fault.clone()),
                (Some(rule), None) => Some(rule.clone()),
                (None, None) => None,
            },
            served: e.served.clone(),
        })
        .collect();
    journal.extend(injected.iter().map(|i| JournalEntry {
        at: i.at.saturating_duration_since(started),
        source: i.source.clone(),
        agent: None,
        request: String::new(),
        rule: None,
        served: match &i.not_applied {
            Some(why) => format!("{} not applied: {why}", i.what),
            None => i.what.clone(),
        },
    }));
    journal.sort_by_key(|e| e.at);
    let exit_code = match outcome.exit {
        crate::target::Exit::Code(c) => Some(c),
        _ => None,
    };
    ScenarioResult {
        outcome: if failures.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        failures,
        journal,
        exit_code,
        stderr_tail: outcome.stderr_tail,
        output,
        duration: started.elapsed(),
        ..base_result(p)
    }
}

/// The target's document: all of stdout, or else its last non-empty line (for targets
/// that log to stdout before printing their result).
fn parse_output(stdout: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice(stdout).ok().or_else(|| {
        let text = String::from_utf8_lossy(stdout);
        let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
        serde_json::from_str(last).ok()
    })
}

fn base_result(p: &Planned) -> ScenarioResult {
    ScenarioResult {
        name: p.scenario.spec.name.clone(),
        path: p.scenario.id.to_string(),
        suite: p.scenario.suite().to_string(),
        target: p.scenario.target_name().to_string(),
        tags: p.scenario.spec.tags.clone(),
        seed: p.seed,
        outcome: Outcome::Skipped,
        duration: Duration::ZERO,
        failures: Vec::new(),
        journal: Vec::new(),
        exit_code: None,
        stderr_tail: String::new(),
        output: None,
        failed_attempts: Vec::new(),
        metrics: Default::default(),
    }
}

fn errored(p: &Planned, kind: &str, message: String) -> ScenarioResult {
    let (message, detail) = match message.split_once('\n') {
        Some((m, d)) => (m.to_string(), d.to_string()),
        None => (message, String::new()),
    };
    ScenarioResult {
        outcome: Outcome::Error,
        failures: vec![Failure {
            kind: kind.into(),
            message,
            detail,
        }],
        ..base_result(p)
    }
}

fn skipped_because(p: &Planned, kind: &str, message: String) -> ScenarioResult {
    let mut r = base_result(p);
    r.failures.push(Failure {
        kind: kind.into(),
        message,
        detail: String::new(),
    });
    r
}

fn skipped(p: &Planned, interrupted: bool, stopped_by: Option<&str>) -> ScenarioResult {
    let mut r = base_result(p);
    if interrupted {
        r.failures.push(Failure {
            kind: "interrupted".into(),
            message: "not run to the end: the run was interrupted".into(),
            detail: String::new(),
        });
    } else if let Some(first) = stopped_by {
        r.failures.push(Failure {
            kind: "not_run".into(),
            message: format!("not run: --fail-fast stopped the run after `{first}` failed"),
            detail: String::new(),
        });
    }
    r
}

fn error_kind(e: &RunError) -> &'static str {
    match e {
        RunError::Stub { .. } => "stub",
        RunError::Spawn { .. } => "spawn",
        RunError::Template { .. } => "config",
        RunError::Proxy { .. } => "proxy",
        RunError::Service(_) => "service",
        RunError::Reports { .. } => "reports",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenarios (by name) whose task panics as soon as it starts: a failpoint for the
    /// join loop's tests.
    static PANIC_IN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    pub(super) fn failpoint(p: &Planned) {
        let name = &p.scenario.spec.name;
        if PANIC_IN.lock().unwrap().contains(name) {
            panic!("failpoint: `{name}` panics");
        }
    }

    /// Creates a file once the first scenario has finished (been joined and reported).
    struct FlagOnFirstFinish(std::path::PathBuf);

    impl Reporter for FlagOnFirstFinish {
        fn event(&mut self, event: RunEvent<'_>) {
            if let RunEvent::ScenarioFinished { .. } = event {
                std::fs::write(&self.0, b"").unwrap();
            }
        }
    }

    // See: issue 13, "a panic in one scenario's task is given to the first unfilled
    // result slot, which may belong to another scenario still running".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_one_scenarios_task_is_that_scenarios_failure_not_anothers() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("first-finished");
        // The first scenario runs until another has finished: the second, which panics at
        // once, is joined while the first is still running.
        std::fs::write(
            dir.path().join("targets.toml"),
            r#"
[waits]
kind = "command"
program = "/bin/sh"
args = ["-c", "cat >/dev/null; while [ ! -e \"$FLAG\" ]; do sleep 0.01; done; echo '{\"status\": \"completed\"}'"]
"#,
        )
        .unwrap();
        for (file, name) in [("a.toml", "keeps running"), ("b.toml", "panics at once")] {
            std::fs::write(
                dir.path().join(file),
                format!(
                    "name = \"{name}\"\ntarget = \"waits\"\ntimeout = \"20s\"\n\n[expect]\nstatus = \"completed\"\n"
                ),
            )
            .unwrap();
        }
        PANIC_IN.lock().unwrap().push("panics at once".into());
        let selection = crate::plan::Selection {
            paths: vec![dir.path().to_path_buf()],
            env: vec![("FLAG".into(), flag.display().to_string())],
            ..Default::default()
        };
        let planned = crate::plan::plan(&selection, 1).unwrap().scenarios;
        let names: Vec<&str> = planned
            .iter()
            .map(|p| p.scenario.spec.name.as_str())
            .collect();
        assert_eq!(names, ["keeps running", "panics at once"]);

        let config = RunConfig::new(2, 1);
        let mut reporter = FlagOnFirstFinish(flag);
        let mut report = run_all(planned, &config, &mut reporter, std::future::pending()).await;

        let (kept, panicked) = (&report.scenarios[0], &report.scenarios[1]);
        assert_eq!(kept.outcome, Outcome::Passed, "{kept:?}");
        assert!(kept.failures.is_empty(), "{kept:?}");
        assert_eq!(panicked.outcome, Outcome::Error, "{panicked:?}");
        assert_eq!(panicked.failures[0].kind, "panic");
        assert!(
            panicked.failures[0]
                .message
                .contains("failpoint: `panics at once` panics"),
            "{panicked:?}"
        );
        report.verdict = crate::gates::verdict_without_gates(&report);
        assert_eq!(report.verdict, reports::Verdict::Fail);
    }

    #[test]
    fn output_is_the_whole_stdout_or_its_last_line() {
        assert_eq!(parse_output(b"{\"a\":1}\n").unwrap()["a"], 1);
        assert_eq!(parse_output(b"log line\n{\"a\":2}\n\n").unwrap()["a"], 2);
        assert!(parse_output(b"not json").is_none());
    }
}
