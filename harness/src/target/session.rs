//! The seam every target kind implements: a [`Target`] opens a [`Session`] for one
//! scenario, and a session runs the scenario's input once per call. A scenario without
//! `[load]` is a load of one run: open, run, close. Steady-state probes are the runner's
//! (before the first run, after the last), against the session's base URL when it has one.
//!
//! Adding a kind: one file with a `Target` and a `Session`, and one line in
//! [`RunContext::target`]. What a kind may keep across scenarios (a warm worker) lives in
//! the run-scoped [`RunContext`].

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::command::{Exit, RunOutcome};
use super::{TargetKind, TargetSpec};
use crate::faults::Injected;
use crate::sampler::Sampler;
use crate::scenario::ProcessFaultSpec;

/// A boxed future, as trait objects return them.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything one scenario's runs share, owned so that runs can go to spawned tasks.
pub(crate) struct RunSetup {
    /// The target's name, for messages.
    pub target_name: String,
    pub spec: TargetSpec,
    /// The located program, when the target names one.
    pub program: Option<PathBuf>,
    /// The target's whole environment (inherited, the target's, the scenario's, `--env`).
    pub env: Vec<(String, String)>,
    /// Headers of an http target, expanded.
    pub headers: Vec<(String, String)>,
    pub input: Value,
    /// The input as the bytes a process reads on stdin.
    pub stdin: Vec<u8>,
    pub timeout: Duration,
    /// The scenario's `[[process]]` faults, armed on a single run (not under `[load]`).
    pub process: Vec<ProcessFaultSpec>,
    pub sampler: Arc<Sampler>,
    pub scratch: String,
    pub seed: u64,
    /// Whether the runs are a `[load]`'s.
    pub under_load: bool,
    /// The scenario's `[[step]]`s, which an http target's single run takes instead of
    /// submit-and-poll.
    pub steps: Vec<crate::scenario::StepSpec>,
}

impl RunSetup {
    /// The program, or why there is none.
    pub fn program(&self) -> std::io::Result<&std::path::Path> {
        self.program.as_deref().ok_or_else(|| {
            std::io::Error::other(format!(
                "target `{}` names no program that could be found",
                self.target_name
            ))
        })
    }
}

/// A kind of target: how a scenario's session is opened.
pub(crate) trait Target: Send + Sync {
    /// Starts what the runs need (a service, a worker); an outcome instead when it could
    /// not be started (reported as the scenario's), an error when the harness could not
    /// even try.
    fn open(&self, setup: Arc<RunSetup>) -> BoxFuture<'_, std::io::Result<Opened>>;
}

/// What opening a session gave.
pub(crate) type Opened = Result<Arc<dyn Session>, RunOutcome>;

/// One scenario's connection to its target.
pub(crate) trait Session: Send + Sync {
    /// One run of the scenario's input.
    fn run(self: Arc<Self>) -> BoxFuture<'static, RunOutcome>;
    /// Where the target listens now, for relative steady-state probes.
    fn base_url(&self) -> Option<String> {
        None
    }
    /// How the target's long-lived process ended, if it has (a service that died).
    fn died(&self) -> Option<Exit> {
        None
    }
    /// Stops what `open` started; its stderr and the faults it injected.
    fn close(self: Arc<Self>) -> BoxFuture<'static, Closed>;
}

/// What a closed session leaves.
#[derive(Debug, Default)]
pub(crate) struct Closed {
    pub stderr: String,
    pub injected: Vec<Injected>,
}

/// What a whole run shares between its scenarios: warm workers, one pool per worker
/// target, kept until the run ends.
#[derive(Default)]
pub struct RunContext {
    /// Workers kept warm per pool: the run's job slots.
    jobs: usize,
    pools: Mutex<HashMap<String, Arc<super::worker::WorkerPool>>>,
}

impl RunContext {
    /// A context for a run of `jobs` scenarios at once; workers start when first needed.
    pub fn new(jobs: usize) -> RunContext {
        RunContext {
            jobs: jobs.max(1),
            pools: Mutex::new(HashMap::new()),
        }
    }

    /// Starts one worker of each worker target in `targets` before anything runs, so a
    /// pipeline that cannot even be imported stops the run at once, with its traceback.
    pub async fn warm_up<'a>(
        &self,
        targets: impl IntoIterator<Item = (&'a str, &'a TargetSpec)>,
    ) -> Result<(), crate::errors::WorkerStartError> {
        for (name, spec) in targets {
            if spec.kind == TargetKind::Worker {
                self.pool(name, spec)?.warm_up().await?;
            }
        }
        Ok(())
    }

    /// The target a scenario runs against: the one place a kind is chosen.
    pub(crate) fn target(
        &self,
        name: &str,
        spec: &TargetSpec,
    ) -> Result<Arc<dyn Target>, crate::errors::WorkerStartError> {
        Ok(match spec.kind {
            TargetKind::Command => Arc::new(super::command::CommandTarget),
            TargetKind::Http => Arc::new(super::http::HttpTarget),
            TargetKind::Worker => Arc::new(super::worker::WorkerTarget(self.pool(name, spec)?)),
        })
    }

    fn pool(
        &self,
        name: &str,
        spec: &TargetSpec,
    ) -> Result<Arc<super::worker::WorkerPool>, crate::errors::WorkerStartError> {
        // One pool per definition: the same name may be defined differently in two folders.
        let key = format!("{name}\u{0}{:?}", spec.defined_in);
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(&key) {
            return Ok(Arc::clone(pool));
        }
        let pool = Arc::new(super::worker::WorkerPool::new(name, spec, self.jobs)?);
        pools.insert(key, Arc::clone(&pool));
        Ok(pool)
    }
}
