//! Faults a scenario injects below HTTP: TCP fault proxies in front of its dependencies,
//! and faults against the target's processes. Each injected fault is journaled, and every
//! one is undone when the run ends — normally, on failure, on timeout, or when the run is
//! dropped on Ctrl-C (a paused group is continued, a CPU hog stopped, a proxy closed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos::process::{self, Signal};
use chaos::proxy::{FaultProxy, ProxyConfig, Upstream};

use crate::errors::RunError;
use crate::scenario::{ProcessFaultSpec, ProxySpec};

/// One injected fault, for the scenario's journal.
#[derive(Debug, Clone)]
pub struct Injected {
    pub at: Instant,
    pub source: String,
    pub what: String,
}

/// The running proxies of one scenario; dropping them closes every connection.
#[derive(Default)]
pub struct ScenarioProxies {
    proxies: Vec<(String, FaultProxy)>,
}

impl ScenarioProxies {
    /// Starts one proxy per spec; `stub_addr` resolves `llm` / `executor.NAME` upstreams.
    pub async fn start(
        specs: &[ProxySpec],
        stub_addr: impl Fn(&str) -> Option<String>,
        allow_hosts: &[String],
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
            // The plan already refused hosts off loopback that the drill did not allow.
            config.allow_non_loopback = !allow_hosts.is_empty()
                && allow_hosts.iter().any(|a| {
                    crate::netpolicy::host_of(a) == crate::netpolicy::host_of(&upstream_text)
                });
            // Each proxy its own stream of draws, all from the scenario's seed.
            let proxy = FaultProxy::start(config, seed.wrapping_add(i as u64 + 1))
                .await
                .map_err(|e| bad(crate::runner::error_chain(&e)))?;
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
                out.push(Injected {
                    at: event.at,
                    source: format!("proxy.{name}"),
                    what: event.to_string(),
                });
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
                Some(Injected {
                    at: started,
                    source: "chaos.process".into(),
                    what,
                })
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
        let timed: Vec<ProcessFaultSpec> = self
            .specs
            .iter()
            .filter(|s| {
                matches!(
                    s,
                    ProcessFaultSpec::Kill { .. }
                        | ProcessFaultSpec::Pause { .. }
                        | ProcessFaultSpec::CpuHog { .. }
                        | ProcessFaultSpec::KillDescendant { .. }
                )
            })
            .cloned()
            .collect();
        let tasks = timed
            .into_iter()
            .map(|spec| {
                let log = Arc::clone(&log);
                tokio::spawn(async move { run_timed(spec, pgid, started, log).await })
            })
            .collect();
        Armed { tasks, log }
    }
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
                injected.push(Injected {
                    at: Instant::now(),
                    source: "chaos.process".into(),
                    what: format!("{} is a full disk: writes fail with ENOSPC", full.display()),
                });
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
}

impl Armed {
    pub fn injected(&self) -> Vec<Injected> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
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
) {
    let record = |what: String| {
        if let Ok(mut l) = log.lock() {
            l.push(Injected {
                at: Instant::now(),
                source: "chaos.process".into(),
                what,
            });
        }
    };
    // A time too far for the clock never comes: wait until the run ends (which aborts
    // this task) instead of panicking on the addition.
    let wait_until = |at: Duration| async move {
        match started.checked_add(at) {
            Some(when) => tokio::time::sleep_until(when.into()).await,
            None => std::future::pending().await,
        }
    };
    let group = process::Target::Group(pgid);
    match spec {
        ProcessFaultSpec::Kill { at, signal, .. } => {
            wait_until(at).await;
            let sig = parse_signal(&signal);
            match process::kill(group, sig) {
                Ok(()) => record(format!("sent {signal} to the target's process group")),
                Err(e) => record(format!("{signal} not sent: {e}")),
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
                Err(e) => record(format!("pause failed: {e}")),
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
                Err(e) => record(format!("cpu hog failed: {e}")),
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
                record(format!(
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
