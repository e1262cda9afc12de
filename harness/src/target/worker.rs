//! The `worker` target kind: the user's program is started once per job slot and kept
//! warm; each run is one request to it over its stdin and stdout (JSON lines).
//!
//! ```toml
//! [pypipe]
//! kind = "worker"
//! program = "python3"
//! entry = "pypipe:main"   # module:function, run by the bundled adapter (worker.py)
//! isolation = "fork"      # or "reuse"
//! ```
//!
//! With `entry`, the harness runs its Python adapter (`harness worker python` prints it):
//! `program [args…] adapter.py --entry E --isolation I`. Without `entry`, `program` itself
//! speaks the protocol the adapter documents.
//!
//! A fork worker is one process per target, a zygote: it takes any number of requests at
//! once and forks a child for each, so every run finds it warm whatever the concurrency
//! (a load, `--jobs` above the cores). Its answers come back in the order children end;
//! a reader routes each to its run by id. A reuse worker runs one request at a time, so
//! there is one per job slot.
//!
//! Failures are the scenario's, never the run's: a child that crashes, hangs past the
//! timeout (its process group is killed), prints no JSON or raises is a failed scenario
//! with its stderr tail; a worker that dies mid-run fails that scenario with what it left
//! and is replaced for the next. A worker that cannot start (an import error) fails the
//! run before anything runs (see [`super::RunContext::warm_up`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

use super::command::{Exit, GroupGuard, RunOutcome, exit_of, spawn_in_group, tail};
use super::session::{BoxFuture, Closed, Opened, RunSetup, Session, Target};
use super::{TargetSpec, inherited_env, locate_program};
use crate::errors::WorkerStartError;
use crate::scenario::ProcessFaultSpec;

/// The Python adapter, standard library only.
pub const PYTHON_ADAPTER: &str = include_str!("worker.py");

/// How long a worker may take to import the pipeline and say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for a worker's answer once its child was killed at the timeout.
const GRACE: Duration = Duration::from_secs(2);
/// The worker's own stderr kept (import tracebacks, a dying worker's last words).
const STDERR_KEEP: usize = 64 * 1024;

/// How a worker isolates one run from the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// A child forked per run from the warm worker: nothing a run changes survives it.
    #[default]
    Fork,
    /// The worker runs one scenario after another, as a long-lived service would.
    Reuse,
}

impl Isolation {
    fn name(self) -> &'static str {
        match self {
            Isolation::Fork => "fork",
            Isolation::Reuse => "reuse",
        }
    }
}

/// The warm workers of one target, shared by the run's scenarios.
pub(crate) struct WorkerPool {
    name: String,
    program: PathBuf,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    isolation: Isolation,
    /// Reuse workers not running a scenario.
    idle: Mutex<Vec<Worker>>,
    /// Idle reuse workers kept: the run's job slots.
    keep: usize,
    /// The fork worker, started on first use and again after it died.
    zygote: tokio::sync::Mutex<Option<Arc<Zygote>>>,
    warnings: Mutex<Vec<String>>,
    warned: AtomicBool,
}

impl WorkerPool {
    pub fn new(name: &str, spec: &TargetSpec, jobs: usize) -> Result<Self, WorkerStartError> {
        let program_name = spec.program.clone().unwrap_or_default();
        let program = locate_program(spec).ok_or_else(|| WorkerStartError::NotFound {
            target: name.into(),
            program: program_name.clone(),
        })?;
        let isolation = spec.isolation.unwrap_or_default();
        let mut argv = spec.args.clone();
        if let Some(entry) = &spec.entry {
            let adapter = adapter_file().map_err(|source| WorkerStartError::Spawn {
                target: name.into(),
                program: program_name,
                source,
            })?;
            argv.push(adapter.display().to_string());
            argv.extend(["--entry".into(), entry.clone()]);
            argv.extend(["--isolation".into(), isolation.name().into()]);
        }
        // The worker starts before any scenario: only what needs no scenario goes in.
        let mut env = inherited_env(&spec.inherit_env);
        for (k, v) in &spec.env {
            if !v.contains('{') {
                env.retain(|(key, _)| key != k);
                env.push((k.clone(), v.clone()));
            }
        }
        Ok(WorkerPool {
            name: name.into(),
            program,
            argv,
            env,
            cwd: spec.defined_in.clone(),
            isolation,
            idle: Mutex::new(Vec::new()),
            keep: jobs.max(1),
            zygote: tokio::sync::Mutex::new(None),
            warnings: Mutex::new(Vec::new()),
            warned: AtomicBool::new(false),
        })
    }

    /// Starts the fork worker, or a reuse worker per job slot side by side, now, so that
    /// scenarios find them warm and a pipeline that cannot be imported is reported before
    /// anything runs.
    pub async fn warm_up(self: &Arc<Self>) -> Result<(), WorkerStartError> {
        if self.isolation == Isolation::Fork {
            return self.zygote().await.map(drop);
        }
        let missing = self.keep.saturating_sub(lock(&self.idle).len());
        let mut starting = tokio::task::JoinSet::new();
        for _ in 0..missing {
            let pool = Arc::clone(self);
            starting.spawn(async move { pool.start().await });
        }
        let mut first_error = None;
        while let Some(started) = starting.join_next().await {
            match started {
                Ok(Ok(worker)) => self.release(worker),
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => {}
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn acquire(&self) -> Result<Worker, WorkerStartError> {
        let idle = lock(&self.idle).pop();
        match idle {
            Some(w) => Ok(w),
            None => self.start().await,
        }
    }

    /// The running fork worker, started (again) when there is none.
    async fn zygote(&self) -> Result<Arc<Zygote>, WorkerStartError> {
        let mut current = self.zygote.lock().await;
        if let Some(z) = current.as_ref().filter(|z| !z.gone()) {
            return Ok(Arc::clone(z));
        }
        let z = Zygote::new(self.start().await?);
        *current = Some(Arc::clone(&z));
        Ok(z)
    }

    fn release(&self, worker: Worker) {
        let mut idle = lock(&self.idle);
        if idle.len() < self.keep {
            idle.push(worker);
        }
    }

    async fn start(&self) -> Result<Worker, WorkerStartError> {
        let spawn_error = |source| WorkerStartError::Spawn {
            target: self.name.clone(),
            program: self.program.display().to_string(),
            source,
        };
        let (mut child, guard) = spawn_in_group(
            &self.program,
            &self.argv,
            &self.env,
            self.cwd.as_deref(),
            &|_| {},
        )
        .map_err(spawn_error)?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take().expect("stdin is piped");
        let lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let drain = tokio::spawn(drain(child.stderr.take(), Arc::clone(&stderr)));
        let mut worker = Worker {
            child,
            _guard: guard,
            stdin,
            lines,
            stderr,
            drain: Some(drain),
            pid,
            next_id: 0,
            running_stderr: None,
            workdir: None,
        };
        let ready = tokio::time::timeout(READY_TIMEOUT, worker.ready()).await;
        match ready {
            Ok(Some(warnings)) => {
                if !warnings.is_empty() && !self.warned.swap(true, Ordering::Relaxed) {
                    for w in &warnings {
                        eprintln!("warning: target `{}`: {w}", self.name);
                    }
                    *lock(&self.warnings) = warnings;
                }
                Ok(worker)
            }
            not_ready => {
                let how = match &not_ready {
                    Err(_) => format!(
                        "not ready after {}",
                        humantime::format_duration(READY_TIMEOUT)
                    ),
                    Ok(_) => String::new(),
                };
                let exit = worker.end().await;
                let how = if how.is_empty() {
                    describe_exit(exit)
                } else {
                    how
                };
                let stderr = worker.stderr_tail().await;
                let hint = if stderr.contains("importing") {
                    " (hint: the traceback below says why the entry point's module could not be imported)"
                } else {
                    ""
                };
                Err(WorkerStartError::NotReady {
                    target: self.name.clone(),
                    how,
                    hint,
                    stderr,
                })
            }
        }
    }
}

/// A `worker` target: its pool.
pub(crate) struct WorkerTarget(pub Arc<WorkerPool>);

struct WorkerSession {
    pool: Arc<WorkerPool>,
    setup: Arc<RunSetup>,
}

impl Target for WorkerTarget {
    fn open(&self, setup: Arc<RunSetup>) -> BoxFuture<'_, std::io::Result<Opened>> {
        let pool = Arc::clone(&self.0);
        Box::pin(async move {
            let session: Arc<dyn Session> = Arc::new(WorkerSession { pool, setup });
            Ok(Ok(session))
        })
    }
}

impl Session for WorkerSession {
    fn run(self: Arc<Self>) -> BoxFuture<'static, RunOutcome> {
        Box::pin(async move {
            let mut outcome = match self.pool.isolation {
                Isolation::Fork => match self.pool.zygote().await {
                    Ok(zygote) => zygote.run(&self.setup).await,
                    Err(e) => RunOutcome::failed_to_start(crate::errors::error_chain(&e)),
                },
                Isolation::Reuse => match self.pool.acquire().await {
                    Ok(mut worker) => {
                        let (outcome, alive) = worker.run(&self.setup).await;
                        if alive {
                            self.pool.release(worker);
                        }
                        outcome
                    }
                    Err(e) => RunOutcome::failed_to_start(crate::errors::error_chain(&e)),
                },
            };
            let failed = !matches!(outcome.exit, Exit::Code(0));
            let warnings = lock(&self.pool.warnings).clone();
            if failed && !warnings.is_empty() {
                for w in warnings {
                    outcome
                        .stderr_tail
                        .push_str(&format!("\n(harness: the worker warned at start: {w})"));
                }
            }
            outcome
        })
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, Closed> {
        Box::pin(async { Closed::default() })
    }
}

/// One warm worker process: a reuse worker, or the start of a zygote.
struct Worker {
    child: Child,
    _guard: GroupGuard,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    drain: Option<tokio::task::JoinHandle<()>>,
    pid: u32,
    next_id: u64,
    /// Where the run in progress writes its stderr (read if the worker dies under it).
    running_stderr: Option<PathBuf>,
    /// The folder of the runs' files (`ID.err` and so on), from the ready line.
    workdir: Option<PathBuf>,
}

/// What a worker says.
#[derive(Deserialize)]
struct Answer {
    ready: Option<Ready>,
    id: Option<u64>,
    started: Option<u32>,
    stderr_path: Option<PathBuf>,
    exit: Option<i32>,
    signal: Option<i32>,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
    maxrss_kb: Option<u64>,
}

#[derive(Deserialize)]
struct Ready {
    #[serde(default)]
    warnings: Vec<String>,
    workdir: Option<PathBuf>,
}

impl Worker {
    /// Waits for the ready line; its warnings, or None when the worker ended first.
    async fn ready(&mut self) -> Option<Vec<String>> {
        while let Ok(Some(line)) = self.lines.next_line().await {
            if let Ok(Answer {
                ready: Some(ready), ..
            }) = serde_json::from_str(&line)
            {
                self.workdir = ready.workdir;
                return Some(ready.warnings);
            }
        }
        None
    }

    /// Kills the worker's group and waits for it; how it ended.
    async fn end(&mut self) -> Option<Exit> {
        let exit = match tokio::time::timeout(Duration::from_millis(200), self.child.wait()).await {
            Ok(Ok(status)) => Some(exit_of(status)),
            _ => None,
        };
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        match exit {
            Some(e) => Some(e),
            None => self.child.wait().await.ok().map(exit_of),
        }
    }

    async fn stderr_tail(&mut self) -> String {
        if let Some(d) = self.drain.take() {
            let _ = tokio::time::timeout(GRACE, d).await;
        }
        tail(&lock(&self.stderr))
    }

    /// One run of a reuse worker; the outcome, and whether the worker can take another.
    async fn run(&mut self, setup: &RunSetup) -> (RunOutcome, bool) {
        let started = Instant::now();
        let deadline = started + setup.timeout;
        self.next_id += 1;
        let id = self.next_id;
        let request = request(id, setup);
        if self.stdin.write_all(request.as_bytes()).await.is_err()
            || self.stdin.flush().await.is_err()
        {
            return (self.died(started, None).await, false);
        }
        let faults = process_faults(setup);
        let mut armed = None;
        loop {
            let line = match tokio::time::timeout_at(deadline.into(), self.lines.next_line()).await
            {
                Err(_) => {
                    // The worker is itself the run: it is killed and replaced.
                    let injected = armed.map(|a: crate::faults::Armed| a.injected());
                    let mut outcome = self.died(started, Some(injected.unwrap_or_default())).await;
                    stopped_at_timeout(&mut outcome);
                    return (outcome, false);
                }
                Ok(Ok(Some(line))) => line,
                Ok(_) => {
                    let injected = armed.map(|a: crate::faults::Armed| a.injected());
                    return (self.died(started, injected).await, false);
                }
            };
            let Ok(answer) = serde_json::from_str::<Answer>(&line) else {
                continue; // not the protocol: a stray print of a custom worker
            };
            if answer.id != Some(id) {
                continue;
            }
            if let Some(pid) = answer.started {
                self.running_stderr = answer.stderr_path;
                setup.sampler.watch(pid);
                armed = Some(faults.arm(pid, started));
                continue;
            }
            self.running_stderr = None;
            let mut outcome = outcome_of(answer, started);
            outcome.injected = armed.map(|a| a.injected()).unwrap_or_default();
            outcome.kept_rss = Some((self.pid, crate::sampler::rss_of(self.pid)));
            return (outcome, true);
        }
    }

    /// The worker ended (or was ended) during a run: the run fails with what it left.
    async fn died(
        &mut self,
        started: Instant,
        injected: Option<Vec<crate::faults::Injected>>,
    ) -> RunOutcome {
        let exit = self.end().await;
        let stderr = self.stderr_tail().await;
        died_outcome(
            self.pid,
            exit,
            stderr,
            self.running_stderr.take(),
            injected,
            started,
        )
    }
}

/// The fork worker: one warm process that forks a child per request, any number at once.
struct Zygote {
    pid: u32,
    /// Where each run's files are (`ID.err`): known before the zygote says it forked, so
    /// a child that kills the zygote at once still has its stderr read.
    workdir: Option<PathBuf>,
    stdin: tokio::sync::Mutex<ChildStdin>,
    /// The runs waiting for answers, by request id.
    waiting: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Answer>>>>,
    next_id: AtomicU64,
    /// Set once the zygote is known to be gone (its output ended, or it was killed).
    gone: Arc<AtomicBool>,
    /// How it ended and its stderr tail, once its output has ended.
    ended: watch::Receiver<Option<Arc<Ended>>>,
    _guard: GroupGuard,
    _reader: AbortOnDrop,
}

struct Ended {
    exit: Option<Exit>,
    stderr: String,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Kills a forked child's process group when dropped before its answer came: the run
/// timed out, or was dropped (Ctrl-C, the end of a load).
struct RunningChild(Option<u32>);

impl Drop for RunningChild {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

impl Zygote {
    fn new(worker: Worker) -> Arc<Zygote> {
        let Worker {
            child,
            _guard,
            stdin,
            lines,
            stderr,
            drain,
            pid,
            workdir,
            ..
        } = worker;
        let waiting = Arc::new(Mutex::new(HashMap::new()));
        let gone = Arc::new(AtomicBool::new(false));
        let (tell, ended) = watch::channel(None);
        let reader = tokio::spawn(route(
            lines,
            child,
            pid,
            Arc::clone(&waiting),
            Arc::clone(&gone),
            tell,
            (stderr, drain),
        ));
        Arc::new(Zygote {
            pid,
            workdir,
            stdin: tokio::sync::Mutex::new(stdin),
            waiting,
            next_id: AtomicU64::new(0),
            gone,
            ended,
            _guard,
            _reader: AbortOnDrop(reader),
        })
    }

    fn gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// One run: a request, the child's pid, then its answer.
    async fn run(&self, setup: &RunSetup) -> RunOutcome {
        let started = Instant::now();
        let deadline = started + setup.timeout;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, mut answers) = mpsc::unbounded_channel();
        lock(&self.waiting).insert(id, tx);
        let _unregister = Unregister(&self.waiting, id);
        if self.gone() {
            // Gone before this run was registered: no answer will ever come for it.
            return self.died(started, None, None).await;
        }
        let request = request(id, setup);
        let sent = {
            let mut stdin = self.stdin.lock().await;
            stdin.write_all(request.as_bytes()).await.is_ok() && stdin.flush().await.is_ok()
        };
        if !sent {
            return self.died(started, None, None).await;
        }
        let faults = process_faults(setup);
        let mut armed = None;
        let mut running = RunningChild(None);
        let mut stderr_path = self.workdir.as_ref().map(|w| w.join(format!("{id}.err")));
        loop {
            let answer = match tokio::time::timeout_at(deadline.into(), answers.recv()).await {
                Ok(Some(answer)) => answer,
                Ok(None) => {
                    let injected = armed.map(|a: crate::faults::Armed| a.injected());
                    running.0 = None; // gone with the zygote's group, or to be killed below
                    return self.died(started, injected, stderr_path).await;
                }
                Err(_) => {
                    let injected = armed.map(|a| a.injected()).unwrap_or_default();
                    return self
                        .timed_out(started, running, &mut answers, injected, stderr_path)
                        .await;
                }
            };
            if let Some(pid) = answer.started {
                running.0 = Some(pid);
                stderr_path = answer.stderr_path.or(stderr_path);
                setup.sampler.watch(pid);
                armed = Some(faults.arm(pid, started));
                continue;
            }
            running.0 = None;
            if let Some(kb) = answer.maxrss_kb {
                setup.sampler.report_peak(kb * 1024);
            }
            let mut outcome = outcome_of(answer, started);
            outcome.injected = armed.map(|a| a.injected()).unwrap_or_default();
            return outcome;
        }
    }

    /// The run passed its timeout: the child's group is killed and the zygote answers for
    /// it; a zygote that did not even fork it in time is stuck, and is killed.
    async fn timed_out(
        &self,
        started: Instant,
        mut running: RunningChild,
        answers: &mut mpsc::UnboundedReceiver<Answer>,
        injected: Vec<crate::faults::Injected>,
        stderr_path: Option<PathBuf>,
    ) -> RunOutcome {
        if let Some(child) = running.0.take() {
            let _ = killpg(Pid::from_raw(child as i32), Signal::SIGKILL);
            if let Ok(Some(answer)) = tokio::time::timeout(GRACE, answers.recv()).await {
                let mut outcome = outcome_of(answer, started);
                outcome.exit = Exit::TimedOut;
                outcome.injected = injected;
                return outcome;
            }
        }
        self.gone.store(true, Ordering::Release);
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        let mut outcome = self.died(started, Some(injected), stderr_path).await;
        stopped_at_timeout(&mut outcome);
        outcome
    }

    /// The zygote ended during a run: the run fails with what both left.
    async fn died(
        &self,
        started: Instant,
        injected: Option<Vec<crate::faults::Injected>>,
        stderr_path: Option<PathBuf>,
    ) -> RunOutcome {
        self.gone.store(true, Ordering::Release);
        let mut ended = self.ended.clone();
        let how = tokio::time::timeout(GRACE * 2, ended.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|e| e.clone()));
        let (exit, stderr) = how.map_or((None, String::new()), |e| (e.exit, e.stderr.clone()));
        died_outcome(self.pid, exit, stderr, stderr_path, injected, started)
    }
}

/// Takes a run's entry out of the routing table when the run ends, however it ends.
struct Unregister<'a>(&'a Mutex<HashMap<u64, mpsc::UnboundedSender<Answer>>>, u64);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        lock(self.0).remove(&self.1);
    }
}

/// Reads the zygote's answers and hands each to its run; when the output ends, records
/// how the zygote ended and closes every run's channel.
async fn route(
    mut lines: Lines<BufReader<ChildStdout>>,
    mut child: Child,
    pid: u32,
    waiting: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Answer>>>>,
    gone: Arc<AtomicBool>,
    tell: watch::Sender<Option<Arc<Ended>>>,
    (stderr, drain): (Arc<Mutex<Vec<u8>>>, Option<tokio::task::JoinHandle<()>>),
) {
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(answer) = serde_json::from_str::<Answer>(&line) else {
            continue; // not the protocol: a stray print of a custom worker
        };
        let Some(id) = answer.id else { continue };
        let fin = answer.started.is_none();
        let mut waiting = lock(&waiting);
        if let Some(run) = waiting.get(&id) {
            let _ = run.send(answer);
        }
        if fin {
            waiting.remove(&id);
        }
    }
    gone.store(true, Ordering::Release);
    let exit = match tokio::time::timeout(Duration::from_millis(200), child.wait()).await {
        Ok(Ok(status)) => Some(exit_of(status)),
        _ => {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            child.wait().await.ok().map(exit_of)
        }
    };
    if let Some(d) = drain {
        let _ = tokio::time::timeout(GRACE, d).await;
    }
    let stderr = tail(&lock(&stderr));
    let _ = tell.send(Some(Arc::new(Ended { exit, stderr })));
    lock(&waiting).clear();
}

fn process_faults(setup: &RunSetup) -> crate::faults::ProcessFaults<'_> {
    if setup.under_load {
        crate::faults::ProcessFaults::new(&[])
    } else {
        crate::faults::ProcessFaults::new(&setup.process)
    }
}

fn stopped_at_timeout(outcome: &mut RunOutcome) {
    outcome.exit = Exit::TimedOut;
    outcome.stderr_tail = outcome.stderr_tail.replace(
        "died while running",
        "was stopped at the timeout while running",
    );
}

/// A run whose worker died under it: the worker's stderr tail, the run's own stderr
/// (which the dead worker can no longer pass on) and a note saying what happened.
fn died_outcome(
    pid: u32,
    exit: Option<Exit>,
    worker_stderr: String,
    run_stderr: Option<PathBuf>,
    injected: Option<Vec<crate::faults::Injected>>,
    started: Instant,
) -> RunOutcome {
    let mut stderr = worker_stderr;
    if let Some(path) = run_stderr {
        let run = std::fs::read(&path).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        stderr = format!("{stderr}\n{}", tail(&run)).trim().to_string();
    }
    let note = format!(
        "(harness: the worker (pid {pid}) died while running this scenario ({}); the next scenario gets a new worker)",
        describe_exit(exit)
    );
    let mut outcome = RunOutcome::not_run(Vec::new());
    outcome.exit = exit.unwrap_or(Exit::Signal(Signal::SIGKILL as i32));
    if outcome.exit == Exit::Code(0) {
        outcome.exit = Exit::Code(-1);
    }
    outcome.stderr_tail = format!("{stderr}\n{note}").trim().to_string();
    outcome.injected = injected.unwrap_or_default();
    outcome.duration = started.elapsed();
    outcome
}

fn outcome_of(answer: Answer, started: Instant) -> RunOutcome {
    let mut outcome = RunOutcome::not_run(Vec::new());
    outcome.exit = match (answer.exit, answer.signal) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Code(-1),
    };
    outcome.stdout = answer.stdout.into_bytes();
    outcome.stderr_tail = tail(answer.stderr.as_bytes());
    outcome.duration = started.elapsed();
    outcome
}

/// The request line for one run.
fn request(id: u64, setup: &RunSetup) -> String {
    let env: serde_json::Map<String, Value> = setup
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut limits = serde_json::Map::new();
    if !setup.under_load {
        for spec in &setup.process {
            match spec {
                ProcessFaultSpec::MemoryLimit { bytes } => {
                    limits.insert("as".into(), json!(bytes));
                }
                ProcessFaultSpec::FileSizeLimit { bytes } => {
                    limits.insert("fsize".into(), json!(bytes));
                }
                _ => {}
            }
        }
    }
    let mut line = json!({
        "id": id,
        "stdin": String::from_utf8_lossy(&setup.stdin),
        "env": env,
        "seed": setup.seed,
        "scratch": setup.scratch,
        "limits": limits,
    })
    .to_string();
    line.push('\n');
    line
}

fn describe_exit(exit: Option<Exit>) -> String {
    match exit {
        Some(Exit::Code(c)) => format!("exit code {c}"),
        Some(Exit::Signal(s)) => format!("killed by signal {s}"),
        Some(Exit::TimedOut) | None => "no exit status".into(),
    }
}

/// Keeps the last [`STDERR_KEEP`] bytes of the worker's stderr.
async fn drain(pipe: Option<tokio::process::ChildStderr>, kept: Arc<Mutex<Vec<u8>>>) {
    use tokio::io::AsyncReadExt;
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut k = lock(&kept);
        k.extend_from_slice(&buf[..n]);
        if k.len() > STDERR_KEEP {
            let cut = k.len() - STDERR_KEEP;
            k.drain(..cut);
        }
    }
}

/// The adapter, written once per content into the temporary directory.
fn adapter_file() -> std::io::Result<PathBuf> {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(p) = PATH.get() {
        return Ok(p.clone());
    }
    // FNV-1a of the source: a new version gets a new file, concurrent runs share one.
    let hash = PYTHON_ADAPTER.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let path = std::env::temp_dir().join(format!("agent-harness-worker-{hash:016x}.py"));
    if std::fs::read_to_string(&path).ok().as_deref() != Some(PYTHON_ADAPTER) {
        let dir = path.parent().unwrap_or(Path::new("/tmp"));
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::fs::write(tmp.path(), PYTHON_ADAPTER)?;
        tmp.persist(&path).map_err(|e| e.error)?;
    }
    Ok(PATH.get_or_init(|| path).clone())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
