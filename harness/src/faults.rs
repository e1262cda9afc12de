//! Faults a scenario injects below HTTP: TCP fault proxies in front of its dependencies,
//! and faults against the target's processes. Each injected fault is journaled, and every
//! one is undone when the run ends — normally, on failure, on timeout, or when the run is
//! dropped on Ctrl-C (a paused group is continued, a CPU hog stopped, a proxy closed).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos::process::{self, Signal};
use chaos::proxy::{FaultProxy, ProxyConfig, Upstream};
use futures_util::FutureExt;

use crate::errors::RunError;
use crate::scenario::{ProcessFaultSpec, ProxySpec};

/// One injected fault, for the scenario's journal.
#[derive(Debug, Clone)]
pub struct Injected {
    pub at: Instant,
    pub source: String,
    pub what: String,
    /// Why the fault named in `what` could not be applied (its system call failed, it
    /// panicked, or the run ended before its time); `None` when it was. A fault that was
    /// not applied fails its scenario: the scenario did not test what it says.
    pub not_applied: Option<String>,
}

impl Injected {
    fn applied(at: Instant, source: &str, what: String) -> Injected {
        Injected {
            at,
            source: source.into(),
            what,
            not_applied: None,
        }
    }
}

/// The running proxies of one scenario; dropping them closes every connection.
#[derive(Default)]
pub struct ScenarioProxies {
    proxies: Vec<(String, FaultProxy)>,
}

impl ScenarioProxies {
    /// Starts one proxy per spec; `stub_addr` resolves `llm` / `executor.NAME` upstreams,
    /// and `off_loopback_allowed` says whether an upstream beyond loopback is allowed
    /// (the network policy's answer, already checked when the scenario was planned).
    pub async fn start(
        specs: &[ProxySpec],
        stub_addr: impl Fn(&str) -> Option<String>,
        off_loopback_allowed: impl Fn(&str) -> bool,
        seed: u64,
    ) -> Result<ScenarioProxies, RunError> {
        let mut proxies = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let upstream_text = stub_addr(&spec.upstream).unwrap_or_else(|| spec.upstream.clone());
            let bad = |problem: String| RunError::Proxy {
                name: spec.name.clone(),
                problem,
            };
            let upstream: Upstream = upstream_text.parse().map_err(|e| {
                bad(format!(
                    "upstream `{}` is not a stub name or host:port: {e}",
                    spec.upstream
                ))
            })?;
            let mut config = ProxyConfig::new(upstream);
            config.name = spec.name.clone();
            config.toxics = spec.toxics.clone();
            config.allow_non_loopback = off_loopback_allowed(&upstream_text);
            // Each proxy its own stream of draws, all from the scenario's seed.
            let proxy = FaultProxy::start(config, seed.wrapping_add(i as u64 + 1))
                .await
                .map_err(|e| bad(crate::errors::error_chain(&e)))?;
            proxies.push((spec.name.clone(), proxy));
        }
        Ok(ScenarioProxies { proxies })
    }

    /// `name → 127.0.0.1:PORT`, for `{proxy.NAME}`.
    pub fn addrs(&self) -> BTreeMap<String, String> {
        self.proxies
            .iter()
            .map(|(n, p)| (n.clone(), p.local_addr().to_string()))
            .collect()
    }

    /// What the proxies did, as journal lines.
    pub fn injected(&self) -> Vec<Injected> {
        let mut out = Vec::new();
        for (name, proxy) in &self.proxies {
            for event in proxy.journal() {
                out.push(Injected::applied(
                    event.at,
                    &format!("proxy.{name}"),
                    event.to_string(),
                ));
            }
        }
        out
    }
}

/// The process faults of a scenario, armed against one run of its target.
pub struct ProcessFaults<'a> {
    specs: &'a [ProcessFaultSpec],
}

impl<'a> ProcessFaults<'a> {
    pub fn new(specs: &'a [ProcessFaultSpec]) -> Self {
        ProcessFaults { specs }
    }

    /// Applies the resource limits to the command before it is spawned.
    pub fn configure(&self, cmd: &mut tokio::process::Command) {
        for spec in self.specs {
            match spec {
                ProcessFaultSpec::MemoryLimit { bytes } => process::memory_limit(cmd, *bytes),
                ProcessFaultSpec::FileSizeLimit { bytes } => process::file_size_limit(cmd, *bytes),
                _ => {}
            }
        }
    }

    /// The limits, as journal lines (they hold from the start).
    pub fn limits(&self, started: Instant) -> Vec<Injected> {
        self.specs
            .iter()
            .filter_map(|spec| {
                let what = match spec {
                    ProcessFaultSpec::MemoryLimit { bytes } => {
                        format!("address space limited to {bytes} bytes (RLIMIT_AS)")
                    }
                    ProcessFaultSpec::FileSizeLimit { bytes } => {
                        format!("file size limited to {bytes} bytes (RLIMIT_FSIZE)")
                    }
                    _ => return None,
                };
                Some(Injected::applied(started, "chaos.process", what))
            })
            .collect()
    }

    /// Whether a killed service is to be started again.
    pub fn restarts(&self) -> bool {
        self.specs
            .iter()
            .any(|s| matches!(s, ProcessFaultSpec::Kill { restart: true, .. }))
    }

    /// Starts the timed faults against the process group `pgid`; they run until the
    /// returned handle is dropped, which undoes whatever is still in force.
    pub fn arm(&self, pgid: u32, started: Instant) -> Armed {
        let log = Arc::new(Mutex::new(self.limits(started)));
        let mut due = Vec::new();
        let mut tasks = Vec::new();
        for spec in self.specs.iter().filter(|s| timed(s).is_some()) {
            let reached = Arc::new(AtomicBool::new(false));
            due.push(Due {
                what: describe(spec),
                reached: Arc::clone(&reached),
            });
            let log = Arc::clone(&log);
            let spec = spec.clone();
            tasks.push(tokio::spawn(async move {
                let what = describe(&spec);
                let applying = run_timed(spec, pgid, started, Arc::clone(&log), reached.clone());
                // A panic while applying a fault is that fault's failure, caught here where
                // it happens rather than lost with the task.
                if let Err(panic) = std::panic::AssertUnwindSafe(applying).catch_unwind().await {
                    reached.store(true, Ordering::SeqCst);
                    not_applied(
                        &log,
                        what,
                        format!("it panicked: {}", panic_message(&*panic)),
                    );
                }
            }));
        }
        Armed {
            tasks,
            log,
            due,
            started,
        }
    }
}

/// The time a timed fault (`kill`, `pause`, `cpu_hog`) is due; `None` for the others.
fn timed(spec: &ProcessFaultSpec) -> Option<Duration> {
    match spec {
        ProcessFaultSpec::Kill { at, .. }
        | ProcessFaultSpec::Pause { at, .. }
        | ProcessFaultSpec::CpuHog { at, .. }
        | ProcessFaultSpec::KillDescendant { at, .. } => Some(*at),
        // Applied to the scenario's services, by `service.rs`.
        ProcessFaultSpec::KillService { .. } | ProcessFaultSpec::PauseService { .. } => None,
        ProcessFaultSpec::MemoryLimit { .. }
        | ProcessFaultSpec::FileSizeLimit { .. }
        | ProcessFaultSpec::DiskFull { .. } => None,
    }
}

/// A timed fault as a scenario's reader knows it: "the `kill` fault (SIGKILL at +300ms)".
pub(crate) fn describe(spec: &ProcessFaultSpec) -> String {
    let t = humantime::format_duration;
    match spec {
        ProcessFaultSpec::Kill { at, signal, .. } => {
            format!("the `kill` fault ({signal} at +{})", t(*at))
        }
        ProcessFaultSpec::Pause { at, duration } => {
            format!("the `pause` fault (at +{} for {})", t(*at), t(*duration))
        }
        ProcessFaultSpec::CpuHog {
            at,
            duration,
            threads,
        } => format!(
            "the `cpu_hog` fault ({threads} thread(s) at +{} for {})",
            t(*at),
            t(*duration)
        ),
        ProcessFaultSpec::KillDescendant {
            descendant,
            at,
            signal,
        } => format!(
            "the `kill` fault on `{descendant}` ({signal} at +{})",
            t(*at)
        ),
        ProcessFaultSpec::MemoryLimit { bytes } => {
            format!("the `memory_limit` fault ({bytes} bytes)")
        }
        ProcessFaultSpec::FileSizeLimit { bytes } => {
            format!("the `file_size_limit` fault ({bytes} bytes)")
        }
        ProcessFaultSpec::DiskFull { path } => format!("the `disk_full` fault (`{path}`)"),
        ProcessFaultSpec::KillService {
            service,
            at,
            signal,
            ..
        } => format!(
            "the `kill` fault on service `{service}` ({signal} at +{})",
            t(*at)
        ),
        ProcessFaultSpec::PauseService {
            service,
            at,
            duration,
        } => format!(
            "the `pause` fault on service `{service}` (at +{} for {})",
            t(*at),
            t(*duration)
        ),
    }
}

fn not_applied(log: &Mutex<Vec<Injected>>, what: String, why: String) {
    if let Ok(mut l) = log.lock() {
        l.push(Injected {
            at: Instant::now(),
            source: "chaos.process".into(),
            what,
            not_applied: Some(why),
        });
    }
}

/// An error and its causes on one line, for a failure's message.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// A timed fault and whether its time came (it was applied, or its application failed).
struct Due {
    what: String,
    reached: Arc<AtomicBool>,
}

/// Full-disk files made in the scenario's scratch directory; dropping them removes them.
pub struct DiskFaults {
    _files: Vec<process::FullFile>,
    pub injected: Vec<Injected>,
}

impl DiskFaults {
    pub fn make(
        specs: &[ProcessFaultSpec],
        scratch: &std::path::Path,
    ) -> Result<DiskFaults, RunError> {
        let mut files = Vec::new();
        let mut injected = Vec::new();
        for spec in specs {
            if let ProcessFaultSpec::DiskFull { path } = spec {
                let full = scratch.join(path);
                if let Some(dir) = full.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let file = process::full_file(&full).map_err(|e| RunError::Proxy {
                    name: "disk_full".into(),
                    problem: format!("cannot make `{}` a full disk: {e}", full.display()),
                })?;
                injected.push(Injected::applied(
                    Instant::now(),
                    "chaos.process",
                    format!("{} is a full disk: writes fail with ENOSPC", full.display()),
                ));
                files.push(file);
            }
        }
        Ok(DiskFaults {
            _files: files,
            injected,
        })
    }
}

/// Timed faults in force; dropping this aborts them, and their guards undo them.
pub struct Armed {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    log: Arc<Mutex<Vec<Injected>>>,
    due: Vec<Due>,
    started: Instant,
}

impl Armed {
    /// What was injected so far, and the faults whose time has not come: the run ended
    /// before them, so they were not applied (and fail the scenario).
    pub fn injected(&self) -> Vec<Injected> {
        let mut out = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        let ended = self.started.elapsed();
        for due in &self.due {
            if !due.reached.load(Ordering::SeqCst) {
                out.push(Injected {
                    at: Instant::now(),
                    source: "chaos.process".into(),
                    what: due.what.clone(),
                    not_applied: Some(format!(
                        "the run ended at +{} before its time (hint: make `at` earlier than the target takes)",
                        humantime::format_duration(Duration::from_millis(ended.as_millis() as u64))
                    )),
                });
            }
        }
        out
    }

    /// Waits until every timed fault has run its course (tests only: a real run ends
    /// when its target does).
    #[cfg(test)]
    async fn settled(&mut self) {
        for task in &mut self.tasks {
            let _ = task.await;
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn run_timed(
    spec: ProcessFaultSpec,
    pgid: u32,
    started: Instant,
    log: Arc<Mutex<Vec<Injected>>>,
    reached: Arc<AtomicBool>,
) {
    let what = describe(&spec);
    let record = |what: String| {
        if let Ok(mut l) = log.lock() {
            l.push(Injected::applied(Instant::now(), "chaos.process", what));
        }
    };
    let failed = |why: String| not_applied(&log, what.clone(), why);
    // A time too far for the clock never comes: wait until the run ends (which aborts
    // this task) instead of panicking on the addition.
    let wait_until = |at: Duration| {
        let reached = Arc::clone(&reached);
        async move {
            match started.checked_add(at) {
                Some(when) => tokio::time::sleep_until(when.into()).await,
                None => std::future::pending().await,
            }
            reached.store(true, Ordering::SeqCst);
        }
    };
    let group = process::Target::Group(pgid);
    match spec {
        ProcessFaultSpec::Kill { at, signal, .. } => {
            wait_until(at).await;
            let sig = parse_signal(&signal);
            match process::kill(group, sig) {
                Ok(()) => record(format!("sent {signal} to the target's process group")),
                Err(e) => failed(format!("{signal} could not be sent: {}", with_causes(&e))),
            }
        }
        ProcessFaultSpec::Pause { at, duration } => {
            wait_until(at).await;
            match process::pause(group) {
                Ok(pause) => {
                    record(format!(
                        "paused the target's process group (SIGSTOP) for {}",
                        humantime::format_duration(duration)
                    ));
                    // If the run ends first, this task is aborted and dropping `pause`
                    // continues the group: rollback.
                    tokio::time::sleep(duration).await;
                    match pause.resume() {
                        Ok(()) => record("continued the target's process group (SIGCONT)".into()),
                        Err(e) => record(format!("SIGCONT failed: {e}")),
                    }
                }
                Err(e) => failed(format!(
                    "the group could not be stopped: {}",
                    with_causes(&e)
                )),
            }
        }
        ProcessFaultSpec::CpuHog {
            at,
            duration,
            threads,
        } => {
            wait_until(at).await;
            match process::CpuHog::start(threads, duration) {
                Ok(hog) => {
                    record(format!(
                        "saturating {threads} core(s) for {}",
                        humantime::format_duration(duration)
                    ));
                    // Dropped (stopped) if the run ends first.
                    let hog = hog;
                    tokio::time::sleep(duration).await;
                    drop(hog);
                }
                Err(e) => failed(format!("the hog could not be started: {}", with_causes(&e))),
            }
        }
        ProcessFaultSpec::KillDescendant {
            descendant,
            at,
            signal,
        } => {
            wait_until(at).await;
            let sig = parse_signal(&signal);
            let hit = process::group_members(pgid)
                .into_iter()
                .filter(|p| p.command.contains(&descendant))
                .filter(|p| process::kill(process::Target::Process(p.pid), sig).is_ok())
                .map(|p| p.pid.to_string())
                .collect::<Vec<_>>();
            if hit.is_empty() {
                failed(format!(
                    "{signal} not sent: no process of the target's group has `{descendant}` in its command line"
                ));
            } else {
                record(format!(
                    "sent {signal} to the target's process(es) matching `{descendant}` (pid {})",
                    hit.join(", ")
                ));
            }
        }
        // A service's faults are the runner's (service.rs): services outlive one run.
        ProcessFaultSpec::KillService { .. }
        | ProcessFaultSpec::PauseService { .. }
        | ProcessFaultSpec::MemoryLimit { .. }
        | ProcessFaultSpec::FileSizeLimit { .. }
        | ProcessFaultSpec::DiskFull { .. } => {}
    }
}

pub(crate) fn parse_signal(name: &str) -> Signal {
    match name {
        "SIGTERM" => Signal::SIGTERM,
        "SIGINT" => Signal::SIGINT,
        "SIGSEGV" => Signal::SIGSEGV,
        "SIGABRT" => Signal::SIGABRT,
        "SIGHUP" => Signal::SIGHUP,
        _ => Signal::SIGKILL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process group that existed and is gone: its leader ran in a group of its own,
    /// exited and was reaped.
    fn vanished_group() -> u32 {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        child.wait().unwrap();
        pgid
    }

    fn kill_at(at: Duration) -> ProcessFaultSpec {
        ProcessFaultSpec::Kill {
            at,
            signal: "SIGTERM".into(),
            restart: false,
        }
    }

    // See: issue 13, "a fault that cannot be applied fails the scenario".
    #[tokio::test]
    async fn a_kill_that_cannot_be_sent_is_not_applied_and_says_why() {
        let specs = [kill_at(Duration::ZERO)];
        let mut armed = ProcessFaults::new(&specs).arm(vanished_group(), Instant::now());
        armed.settled().await;
        let injected = armed.injected();
        assert_eq!(injected.len(), 1, "{injected:?}");
        assert_eq!(injected[0].what, "the `kill` fault (SIGTERM at +0s)");
        let why = injected[0].not_applied.as_deref().unwrap();
        assert!(why.contains("SIGTERM could not be sent"), "{why}");
        assert!(why.contains("ESRCH"), "{why}");
    }

    #[tokio::test]
    async fn a_pause_of_a_vanished_group_is_not_applied() {
        let specs = [ProcessFaultSpec::Pause {
            at: Duration::ZERO,
            duration: Duration::from_secs(1),
        }];
        let mut armed = ProcessFaults::new(&specs).arm(vanished_group(), Instant::now());
        armed.settled().await;
        let injected = armed.injected();
        assert_eq!(injected.len(), 1, "{injected:?}");
        assert!(
            injected[0]
                .not_applied
                .as_deref()
                .unwrap()
                .contains("could not be stopped"),
            "{injected:?}"
        );
    }

    #[tokio::test]
    async fn a_fault_whose_time_never_came_is_not_applied() {
        let specs = [kill_at(Duration::from_secs(3600))];
        let armed = ProcessFaults::new(&specs).arm(vanished_group(), Instant::now());
        let injected = armed.injected();
        assert_eq!(injected.len(), 1, "{injected:?}");
        assert_eq!(injected[0].what, "the `kill` fault (SIGTERM at +1h)");
        let why = injected[0].not_applied.as_deref().unwrap();
        assert!(why.contains("the run ended at +"), "{why}");
        assert!(why.contains("before its time"), "{why}");
    }

    // See: issue 13, "`kill` / `pause` with a huge `at`" panicked the fault's task on
    // `Instant + Duration`: the fault was never injected and the scenario passed.
    #[tokio::test]
    async fn a_kill_or_pause_at_a_time_beyond_the_clock_is_not_applied_instead_of_panicking() {
        let specs = [
            kill_at(Duration::MAX),
            ProcessFaultSpec::Pause {
                at: Duration::MAX,
                duration: Duration::MAX,
            },
        ];
        let armed = ProcessFaults::new(&specs).arm(vanished_group(), Instant::now());
        tokio::task::yield_now().await;
        let injected = armed.injected();
        assert_eq!(injected.len(), 2, "{injected:?}");
        for i in &injected {
            let why = i.not_applied.as_deref().unwrap();
            assert!(why.contains("before its time"), "{i:?}");
            assert!(!why.contains("panicked"), "{i:?}");
        }
    }

    #[tokio::test]
    async fn a_fault_that_was_applied_is_journaled_as_applied() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let specs = [kill_at(Duration::ZERO)];
        let mut armed = ProcessFaults::new(&specs).arm(child.id(), Instant::now());
        armed.settled().await;
        let injected = armed.injected();
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert_eq!(injected.len(), 1, "{injected:?}");
        assert_eq!(injected[0].not_applied, None, "{injected:?}");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
    }
}
