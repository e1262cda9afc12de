//! The load engine: runs the target many times on a `[load]` schedule against one set of
//! stubs, and measures each run's latency.
//!
//! Open models (`constant_rate`, `ramping_rate`) start each run at its intended time,
//! whatever is still running; latency is measured from that intended time (as wrk2 does),
//! and an arrival that finds `max_in_flight` runs going is dropped and counted, not
//! delayed. The closed model (`constant_concurrency`) keeps N runs going. Either stops by
//! itself: at the schedule's end, after `iterations`, and within hard bounds.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reports::metrics::Histo;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::scenario::{LoadModel, LoadSpec, load_bounds};
use crate::target::{Isolation, RunOutcome, Session, TargetKind};

/// One finished run, as the engine saw it.
pub struct Finished<T> {
    /// Since the load began: when the run should have started (open) or did (closed).
    pub intended: Duration,
    pub value: T,
}

/// What a load produced.
pub struct LoadOutcome<T> {
    pub runs: Vec<Finished<T>>,
    pub dropped: u64,
    pub seconds: f64,
    pub end_to_end: Histo,
}

/// Runs `run_once` on the schedule; `keep` decides which runs' values are kept (all
/// latencies go into the histogram either way, so memory stays bounded when `keep`
/// keeps few).
pub async fn run<T, F, Fut>(
    spec: &LoadSpec,
    run_once: F,
    keep: impl Fn(&T, usize) -> bool,
) -> LoadOutcome<T>
where
    T: Send + 'static,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let run_once = Arc::new(run_once);
    let began = Instant::now();
    let (max_runs, max_duration) = load_bounds();
    let cap = spec.iterations.unwrap_or(max_runs).min(max_runs);
    let mut tasks: JoinSet<(Duration, Duration, T)> = JoinSet::new();
    let mut dropped = 0;
    let mut runs = Vec::new();
    let mut histo = Histo::new();
    let mut finished = 0usize;
    let mut collect = |(intended, latency, value): (Duration, Duration, T),
                       runs: &mut Vec<Finished<T>>| {
        histo.record(latency);
        if keep(&value, finished) {
            runs.push(Finished { intended, value });
        }
        finished += 1;
    };

    match (&spec.model, spec.schedule()) {
        (_, Some(schedule)) => {
            let slots = Arc::new(Semaphore::new(spec.max_in_flight));
            for intended in schedule {
                tokio::time::sleep_until((began + intended).into()).await;
                while let Some(Ok(done)) = tasks.try_join_next() {
                    collect(done, &mut runs);
                }
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    dropped += 1;
                    continue;
                };
                let run_once = Arc::clone(&run_once);
                tasks.spawn(async move {
                    let value = run_once().await;
                    drop(permit);
                    (intended, (began + intended).elapsed(), value)
                });
            }
        }
        (
            LoadModel::ConstantConcurrency {
                concurrency,
                duration,
            },
            None,
        ) => {
            let until = began + duration.unwrap_or(max_duration).min(max_duration);
            let mut started = 0u64;
            loop {
                while tasks.len() < *concurrency && started < cap && Instant::now() < until {
                    started += 1;
                    let run_once = Arc::clone(&run_once);
                    tasks.spawn(async move {
                        let intended = began.elapsed();
                        let at = Instant::now();
                        let value = run_once().await;
                        (intended, at.elapsed(), value)
                    });
                }
                match tasks.join_next().await {
                    Some(Ok(done)) => collect(done, &mut runs),
                    Some(Err(_)) => {}
                    None => break,
                }
            }
        }
        _ => {}
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok(done) = joined {
            collect(done, &mut runs);
        }
    }
    runs.sort_by_key(|r| r.intended);
    LoadOutcome {
        runs,
        dropped,
        seconds: began.elapsed().as_secs_f64(),
        end_to_end: histo,
    }
}

/// Judges one run (its exit, status, output): the failures, none when it held.
pub type Judge = Arc<dyn Fn(&RunOutcome) -> Vec<reports::Failure> + Send + Sync>;

/// Everything a load run of one scenario needs, owned (runs happen on spawned tasks).
pub struct ScenarioLoad {
    pub spec: LoadSpec,
    /// The scenario's open session: every run goes through it.
    pub session: Arc<dyn Session>,
    pub judge: Judge,
    /// What the target is, to say why memory growth could not be measured.
    pub kind: TargetKind,
    pub isolation: Isolation,
    /// An http target the harness did not start (`http.base_url`).
    pub external: bool,
}

/// What a scenario's load produced.
pub struct ScenarioLoadOutcome {
    /// The first failed run, else the last run: what the report shows as the target's.
    pub representative: Option<RunOutcome>,
    pub first_failures: Vec<reports::Failure>,
    /// The failures of the last failed run, when it is not the first: a load whose runs
    /// fail in two ways shows both.
    pub last_failures: Vec<reports::Failure>,
    pub succeeded: u64,
    pub total: u64,
    pub dropped: u64,
    pub seconds: f64,
    pub end_to_end: Histo,
    /// The outputs of the first thousand runs (tokens, cost).
    pub outputs: Vec<serde_json::Value>,
    /// Resident-set growth per run of the process that outlives the runs (bytes), or why
    /// it could not be measured.
    pub rss_growth: Result<f64, String>,
}

struct RunRecord {
    outcome: RunOutcome,
    failures: Vec<reports::Failure>,
}

/// How many runs of a load keep their whole outcome (output, stderr, memory sample).
const KEPT_RUNS: usize = 1000;

/// Every run a load finished, and how many held.
#[derive(Default)]
struct RunCounts {
    finished: AtomicU64,
    succeeded: AtomicU64,
}

pub async fn run_scenario_load(load: ScenarioLoad) -> ScenarioLoadOutcome {
    let session = Arc::clone(&load.session);
    let judge = Arc::clone(&load.judge);
    // Every finished run is counted, whichever are kept: the totals and the success rate
    // are exact however long the load.
    let counts = Arc::new(RunCounts::default());
    let counted = Arc::clone(&counts);
    let run_once = move || {
        let (session, judge, counts) = (
            Arc::clone(&session),
            Arc::clone(&judge),
            Arc::clone(&counted),
        );
        async move {
            let outcome = session.run().await;
            let failures = judge(&outcome);
            counts.finished.fetch_add(1, Ordering::Relaxed);
            if failures.is_empty() {
                counts.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            RunRecord { outcome, failures }
        }
    };
    // The full outcome is kept of the first KEPT_RUNS runs and of the first failure,
    // wherever it comes, so a long load keeps its memory bounded and still shows why it
    // failed.
    let failure_kept = AtomicBool::new(false);
    let out = run(&load.spec, run_once, |r: &RunRecord, index| {
        let first_failure = !r.failures.is_empty() && !failure_kept.swap(true, Ordering::Relaxed);
        index < KEPT_RUNS || first_failure
    })
    .await;
    let total = counts.finished.load(Ordering::Relaxed);
    let succeeded = counts.succeeded.load(Ordering::Relaxed);
    let outputs = out
        .runs
        .iter()
        .filter_map(|r| serde_json::from_slice(&r.value.outcome.stdout).ok())
        .collect();
    let kept: Vec<(u32, u64)> = out
        .runs
        .iter()
        .filter_map(|r| r.value.outcome.kept_rss)
        .collect();
    let rss_growth = growth_per_run(&kept).ok_or_else(|| why_no_growth(&load, kept.len()));
    let mut runs = out.runs;
    let failed_at = runs.iter().position(|r| !r.value.failures.is_empty());
    let last_failures = runs
        .iter()
        .rposition(|r| !r.value.failures.is_empty())
        .filter(|&last| Some(last) != failed_at)
        .map(|last| runs[last].value.failures.clone())
        .unwrap_or_default();
    let (representative, first_failures) = match failed_at {
        Some(i) => {
            let r = runs.swap_remove(i).value;
            (Some(r.outcome), r.failures)
        }
        None => (runs.pop().map(|r| r.value.outcome), Vec::new()),
    };
    ScenarioLoadOutcome {
        representative,
        first_failures,
        last_failures,
        succeeded,
        total,
        dropped: out.dropped,
        seconds: out.seconds,
        end_to_end: out.end_to_end,
        outputs,
        rss_growth,
    }
}

/// Growth per run: the slope of each long-lived process's resident set over its own runs
/// (in run order), averaged over the processes weighted by their runs. Runs spread over
/// several reuse workers are fitted per worker, so one worker's start-up does not read as
/// another's growth. The first fifth of each process's runs are its warm-up (first-use
/// imports, allocator arenas, caches filling) and are left out of the fit.
pub fn growth_per_run(kept: &[(u32, u64)]) -> Option<f64> {
    let mut by_pid: Vec<(u32, Vec<f64>)> = Vec::new();
    for (pid, bytes) in kept {
        match by_pid.iter_mut().find(|(p, _)| p == pid) {
            Some((_, ys)) => ys.push(*bytes as f64),
            None => by_pid.push((*pid, vec![*bytes as f64])),
        }
    }
    let (mut sum, mut weight) = (0.0, 0.0);
    for (_, ys) in &by_pid {
        let settled = &ys[ys.len() / 5..];
        if let Some(s) = crate::sampler::slope(settled) {
            sum += s * settled.len() as f64;
            weight += settled.len() as f64;
        }
    }
    (weight > 0.0).then(|| sum / weight)
}

/// Why a load gave no growth figure, and what to use instead.
fn why_no_growth(load: &ScenarioLoad, kept: usize) -> String {
    let instead = "use a `worker` target with `isolation = \"reuse\"` (or an `http` target the harness starts), whose process outlives each run";
    match (load.kind, load.isolation) {
        (TargetKind::Command, _) => format!(
            "each run of a `command` target is a new process, so nothing outlives a run to grow (hint: {instead})"
        ),
        (TargetKind::Worker, Isolation::Fork) => format!(
            "each run of a `worker` with `isolation = \"fork\"` is a new child, so nothing outlives a run to grow (hint: {instead})"
        ),
        (TargetKind::Http, _) if load.external => format!(
            "the service was not started by the harness (`http.base_url`), so its memory cannot be read (hint: {instead})"
        ),
        _ => format!(
            "the growth is fitted over at least 3 runs of one process, and {kept} run(s) were measured (hint: raise `iterations` or the load's duration)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::LoadModel;

    #[tokio::test]
    async fn an_open_model_drops_what_exceeds_the_in_flight_cap_and_times_from_intent() {
        // 50 arrivals over 0.5 s, each taking 300 ms, at most 5 in flight.
        let spec = LoadSpec {
            model: LoadModel::ConstantRate {
                rate: 100.0,
                duration: Duration::from_millis(500),
            },
            max_in_flight: 5,
            iterations: None,
        };
        let out = run(
            &spec,
            || async { tokio::time::sleep(Duration::from_millis(300)).await },
            |_, _| true,
        )
        .await;
        assert!(out.dropped > 0, "arrivals beyond the cap are dropped");
        assert_eq!(out.runs.len() as u64 + out.dropped, 50);
        assert!(
            out.end_to_end.min_us() >= 300_000,
            "latency counts from the intended start"
        );
        assert_eq!(out.end_to_end.len(), out.runs.len() as u64);
    }

    #[test]
    fn growth_is_fitted_per_process_and_needs_three_runs() {
        // Two workers, interleaved: one grows 5 MB per run, the other not at all.
        let mb = 1_000_000;
        let kept = [
            (1, 100 * mb),
            (2, 200 * mb),
            (1, 105 * mb),
            (2, 200 * mb),
            (1, 110 * mb),
            (2, 200 * mb),
        ];
        let g = growth_per_run(&kept).unwrap();
        assert!((g - 2.5e6).abs() < 1.0, "{g}");
        assert_eq!(growth_per_run(&[(1, 1), (1, 2)]), None);
        // A warm-up jump in the first fifth is not growth.
        let warm: Vec<(u32, u64)> = (0..10)
            .map(|i| (7, if i < 2 { 50 * mb } else { 80 * mb }))
            .collect();
        assert!(growth_per_run(&warm).unwrap().abs() < 1.0);
        assert_eq!(growth_per_run(&[]), None);
    }

    #[tokio::test]
    async fn a_closed_model_keeps_n_going_and_stops_at_its_iterations() {
        let spec = LoadSpec {
            model: LoadModel::ConstantConcurrency {
                concurrency: 3,
                duration: None,
            },
            max_in_flight: 64,
            iterations: Some(10),
        };
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (f, p) = (Arc::clone(&in_flight), Arc::clone(&peak));
        let out = run(
            &spec,
            move || {
                let (f, p) = (Arc::clone(&f), Arc::clone(&p));
                async move {
                    let now = f.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    p.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    f.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
            },
            |_, _| true,
        )
        .await;
        assert_eq!(out.runs.len(), 10);
        assert_eq!(out.dropped, 0);
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= 3);
    }

    /// A session whose runs succeed until `fail_after`, then fail.
    struct Counting {
        runs: AtomicU64,
        fail_after: u64,
    }

    impl Session for Counting {
        fn run(self: Arc<Self>) -> crate::target::session::BoxFuture<'static, RunOutcome> {
            Box::pin(async move {
                let n = self.runs.fetch_add(1, Ordering::SeqCst);
                let mut outcome = RunOutcome::not_run(Vec::new());
                outcome.exit = crate::target::Exit::Code(i32::from(n >= self.fail_after));
                outcome
            })
        }

        fn close(
            self: Arc<Self>,
        ) -> crate::target::session::BoxFuture<'static, crate::target::session::Closed> {
            Box::pin(async { crate::target::session::Closed::default() })
        }
    }

    // Regression: loads kept only the first 1,000 runs and computed totals, success rate
    // and achieved rate from them, so failures after run 1,000 went unseen.
    #[tokio::test]
    async fn a_load_counts_every_run_and_keeps_a_late_first_failure() {
        let session = Arc::new(Counting {
            runs: AtomicU64::new(0),
            fail_after: 1100,
        });
        let judge: Judge = Arc::new(|o: &RunOutcome| match o.exit {
            crate::target::Exit::Code(0) => Vec::new(),
            _ => vec![reports::Failure {
                kind: "exit".into(),
                message: "exit 1".into(),
                detail: String::new(),
            }],
        });
        let out = run_scenario_load(ScenarioLoad {
            spec: LoadSpec {
                model: LoadModel::ConstantConcurrency {
                    concurrency: 4,
                    duration: None,
                },
                max_in_flight: 64,
                iterations: Some(1200),
            },
            session,
            judge,
            kind: TargetKind::Command,
            isolation: Isolation::default(),
            external: false,
        })
        .await;
        assert_eq!(out.total, 1200);
        assert_eq!(
            out.succeeded, 1100,
            "the 100 failures after run 1,000 count"
        );
        assert_eq!(
            out.first_failures.len(),
            1,
            "the late first failure is shown"
        );
        assert_eq!(out.end_to_end.len(), 1200);
    }
}
