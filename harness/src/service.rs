//! Services a scenario needs beside its stubs: a real database or broker from the
//! machine's packages (redis-server, PostgreSQL), started for the scenario, checked
//! ready before the target starts, and always stopped after it — passed, failed, timed
//! out or interrupted — leaving no process and no listening socket. Its format is
//! `scenario/service.rs`.
//!
//! `{port}` is a free loopback port the harness picks for the service; `{scratch}` the
//! scenario's scratch directory. The target reaches the service at `{service.NAME}`
//! (`127.0.0.1:PORT`), through a `[[proxy]]` when faults must sit between them. One
//! scenario, one instance of each of its services: the runs of a `[load]` share them.
//!
//! A service runs in its own process group, carries a [`Tag`] of its own (so a
//! daemonising service is still found) and dies with the harness (`PR_SET_PDEATHSIG`).
//! Stopping sends SIGTERM to its group, waits [`STOP_GRACE`], then sends SIGKILL, then
//! sweeps its tag. `[[process]]` faults with `service = "NAME"` kill (and restart, on the
//! same port) or pause it; their `at` counts from when the runs begin.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos::process::{self, Target};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::errors::ServiceError;
use crate::faults::Injected;
use crate::reaper::Tag;
use crate::scenario::{ProcessFaultSpec, ServiceSpec};

/// How long a stopping service has between SIGTERM and SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);

/// How much of a service's stderr a failure shows.
const STDERR_TAIL: usize = 2048;

/// A running service. Dropping it kills its process group at once; [`Service::stop`]
/// stops it gently first.
#[derive(Debug)]
pub(crate) struct Service {
    spec: ServiceSpec,
    scratch: PathBuf,
    tag: Tag,
    addr: SocketAddr,
    child: Option<Child>,
    pgid: i32,
}

/// How a service ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stopped {
    pub name: String,
    /// SIGTERM sufficed (within [`STOP_GRACE`]); otherwise SIGKILL was needed.
    pub graceful: bool,
    /// Processes of its tag still running after its group was killed (a daemonised
    /// child), killed by the sweep.
    pub swept: usize,
}

impl Service {
    /// Starts `spec` with `scratch` as its `{scratch}` on a free loopback port, and waits
    /// until it is ready.
    pub(crate) async fn start(spec: &ServiceSpec, scratch: &Path) -> Result<Service, ServiceError> {
        let port = free_port().map_err(|source| ServiceError::Port {
            name: spec.name.clone(),
            source,
        })?;
        let mut service = Service {
            spec: spec.clone(),
            scratch: scratch.to_path_buf(),
            tag: Tag::new(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child: None,
            pgid: 0,
        };
        service.launch().await?;
        Ok(service)
    }

    /// Starts the program (again, after a kill) on the service's port and waits until it
    /// is ready.
    async fn launch(&mut self) -> Result<(), ServiceError> {
        let spec = &self.spec;
        let port = self.addr.port().to_string();
        let scratch = self.scratch.to_string_lossy().into_owned();
        let fill = |s: &str| s.replace("{port}", &port).replace("{scratch}", &scratch);
        let mut cmd = Command::new(&spec.program);
        cmd.args(spec.args.iter().map(|a| fill(a)))
            .envs(spec.env.iter().map(|(k, v)| (k, fill(v))))
            .current_dir(&self.scratch)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        self.tag.apply(&mut cmd);
        let child = cmd.spawn().map_err(|source| ServiceError::Spawn {
            name: spec.name.clone(),
            program: spec.program.clone(),
            source,
        })?;
        self.pgid = child.id().map_or(0, |id| id as i32);
        // Held by the service from now on, so that a launch cut short (the scenario
        // interrupted) still leaves it to `Drop`.
        self.child = Some(child);
        let timeout = spec
            .ready_timeout
            .unwrap_or(crate::scenario::DEFAULT_READY_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let command: Option<Vec<String>> = spec
            .ready
            .command
            .as_ref()
            .map(|c| c.iter().map(|a| fill(a)).collect());
        let mut pause = Duration::from_millis(5);
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(ServiceError::Exited {
                    name: spec.name.clone(),
                    status: status.to_string(),
                    stderr: self.end_with_tail().await,
                });
            }
            if is_ready(self.addr, command.as_deref()).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ServiceError::NotReady {
                    name: spec.name.clone(),
                    timeout: humantime::format_duration(timeout).to_string(),
                    stderr: self.end_with_tail().await,
                });
            }
            // Polling readiness: the service gives no event to wait on. Backs off to
            // 100 ms so a slow start costs little CPU.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Kills the group, reaps the process and returns the tail of its stderr.
    async fn end_with_tail(&mut self) -> String {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        self.tag.sweep();
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let _ = child.wait().await;
        let mut all = Vec::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_end(&mut all).await;
        }
        let start = all.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&all[start..])
            .trim_end()
            .to_string()
    }

    /// `127.0.0.1:PORT`, what `{service.NAME}` becomes.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `signal` to the service's process group and, unless it is `SIGSTOP`-like,
    /// waits for the service to end (SIGKILL after [`STOP_GRACE`]).
    async fn kill(&mut self, signal: Signal) -> Result<(), String> {
        process::kill(Target::Group(self.pgid as u32), signal).map_err(|e| e.to_string())?;
        if let Some(mut child) = self.child.take()
            && tokio::time::timeout(STOP_GRACE, child.wait())
                .await
                .is_err()
        {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
            let _ = child.wait().await;
        }
        Ok(())
    }

    /// Stops the service: SIGTERM to its group, SIGKILL after [`STOP_GRACE`], then
    /// whatever still carries its tag.
    pub(crate) async fn stop(mut self) -> Stopped {
        let graceful = match self.child.take() {
            Some(mut child) => {
                let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGTERM);
                match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                    Ok(_) => true,
                    Err(_) => {
                        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
                        let _ = child.wait().await;
                        false
                    }
                }
            }
            None => true,
        };
        // Whatever is left of its group (a forked worker) goes too.
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        let swept = self.tag.sweep().len();
        Stopped {
            name: self.spec.name.clone(),
            graceful,
            swept,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.is_some() && self.pgid > 0 {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
            self.tag.sweep();
        }
    }
}

/// The services of one scenario, by name.
#[derive(Default)]
pub(crate) struct ScenarioServices {
    running: Vec<(String, Arc<tokio::sync::Mutex<Service>>)>,
    addrs: BTreeMap<String, String>,
    /// What was done to the services; a fault that could not be applied is an entry
    /// with `not_applied`, which fails the scenario like any fault's (runner.rs).
    log: Arc<Mutex<Vec<Injected>>>,
}

impl ScenarioServices {
    /// Starts every service, in order; the first that cannot start is the error (those
    /// started before it are stopped when the result is dropped).
    pub(crate) async fn start(
        specs: &[ServiceSpec],
        scratch: &Path,
    ) -> Result<ScenarioServices, ServiceError> {
        let mut out = ScenarioServices::default();
        for spec in specs {
            let began = Instant::now();
            let service = Service::start(spec, scratch).await?;
            let addr = service.addr().to_string();
            out.record(
                &spec.name,
                format!(
                    "`{}` ready on {addr} in {} ms",
                    spec.program,
                    began.elapsed().as_millis()
                ),
            );
            out.addrs.insert(spec.name.clone(), addr);
            out.running.push((
                spec.name.clone(),
                Arc::new(tokio::sync::Mutex::new(service)),
            ));
        }
        Ok(out)
    }

    /// `name → 127.0.0.1:PORT`, for `{service.NAME}` and `upstream = "service.NAME"`.
    pub(crate) fn addrs(&self) -> &BTreeMap<String, String> {
        &self.addrs
    }

    fn record(&self, name: &str, what: String) {
        record(&self.log, name, what);
    }

    /// Starts the faults aimed at services (`service = "NAME"`), timed from `started`;
    /// they run until the returned handle is dropped, which undoes a pause in force.
    pub(crate) fn arm(&self, faults: &[ProcessFaultSpec], started: Instant) -> ArmedServices {
        let mut tasks = Vec::new();
        for fault in faults {
            let (name, at) = match fault {
                ProcessFaultSpec::KillService { service, at, .. }
                | ProcessFaultSpec::PauseService { service, at, .. } => (service, *at),
                _ => continue,
            };
            let Some((_, service)) = self.running.iter().find(|(n, _)| n == name) else {
                // The plan checks names; a service that is not running cannot be faulted.
                not_applied(&self.log, name, fault, "no such service runs".into());
                continue;
            };
            let (service, fault, log) = (Arc::clone(service), fault.clone(), Arc::clone(&self.log));
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                match started.checked_add(at) {
                    Some(when) => tokio::time::sleep_until(when.into()).await,
                    None => std::future::pending().await,
                }
                if let Err(why) = apply(&service, &fault, &name, &log).await {
                    not_applied(&log, &name, &fault, why);
                }
            }));
        }
        ArmedServices { tasks }
    }

    /// What was done to the services, as journal lines.
    pub(crate) fn injected(&self) -> Vec<Injected> {
        lock(&self.log).clone()
    }

    /// Stops every service, last started first (the journal keeps how).
    pub(crate) async fn stop(&mut self) -> Vec<Stopped> {
        let mut stopped = Vec::new();
        while let Some((name, service)) = self.running.pop() {
            let service = match Arc::try_unwrap(service) {
                Ok(s) => s.into_inner(),
                // A fault task still holds it (its handle not yet dropped): kill it hard.
                Err(shared) => {
                    let mut guard = shared.lock().await;
                    let _ = guard.kill(Signal::SIGKILL).await;
                    stopped.push(Stopped {
                        name,
                        graceful: false,
                        swept: guard.tag.sweep().len(),
                    });
                    continue;
                }
            };
            let s = service.stop().await;
            record(
                &self.log,
                &s.name,
                format!(
                    "stopped ({}{})",
                    if s.graceful {
                        "SIGTERM"
                    } else {
                        "SIGKILL after SIGTERM"
                    },
                    if s.swept > 0 {
                        format!(", {} leftover process(es) swept", s.swept)
                    } else {
                        String::new()
                    }
                ),
            );
            stopped.push(s);
        }
        stopped
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn record(log: &Mutex<Vec<Injected>>, name: &str, what: String) {
    lock(log).push(Injected {
        at: Instant::now(),
        source: format!("service.{name}"),
        what,
        not_applied: None,
    });
}

/// Records that `fault` could not be applied to the service `name`, and why.
fn not_applied(log: &Mutex<Vec<Injected>>, name: &str, fault: &ProcessFaultSpec, why: String) {
    lock(log).push(Injected {
        at: Instant::now(),
        source: format!("service.{name}"),
        what: crate::faults::describe(fault),
        not_applied: Some(why),
    });
}

/// Applies one fault to one service; `Err` says why it could not be.
async fn apply(
    service: &tokio::sync::Mutex<Service>,
    fault: &ProcessFaultSpec,
    name: &str,
    log: &Mutex<Vec<Injected>>,
) -> Result<(), String> {
    match fault {
        ProcessFaultSpec::KillService {
            signal, restart, ..
        } => {
            let sig = crate::faults::parse_signal(signal);
            let mut s = service.lock().await;
            s.kill(sig).await?;
            record(log, name, format!("sent {signal}; the service is down"));
            let Some(after) = restart else {
                return Ok(());
            };
            drop(s);
            tokio::time::sleep(*after).await;
            let mut s = service.lock().await;
            let began = Instant::now();
            record(log, name, format!("starting again on {}", s.addr()));
            s.launch().await.map_err(|e| {
                format!(
                    "service `{name}` could not be started again after its `kill`: {}",
                    crate::errors::error_chain(&e)
                )
            })?;
            record(
                log,
                name,
                format!("ready again in {} ms", began.elapsed().as_millis()),
            );
            Ok(())
        }
        ProcessFaultSpec::PauseService { duration, .. } => {
            let pgid = service.lock().await.pgid as u32;
            let pause = process::pause(Target::Group(pgid)).map_err(|e| e.to_string())?;
            record(
                log,
                name,
                format!(
                    "paused (SIGSTOP) for {}",
                    humantime::format_duration(*duration)
                ),
            );
            // If the scenario ends first, this task is aborted and dropping `pause`
            // continues the service: rollback.
            tokio::time::sleep(*duration).await;
            pause
                .resume()
                .map_err(|e| format!("service `{name}` could not be continued: {e}"))?;
            record(log, name, "continued (SIGCONT)".into());
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Service faults in force; dropping this aborts them (a pause is continued).
pub(crate) struct ArmedServices {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ArmedServices {
    /// Aborts the faults and waits until each has let go of its service.
    pub(crate) async fn disarm(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for ArmedServices {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A loopback port free at the moment of asking. Another process could take it before
/// the service binds it; the service then fails to start and says so.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

async fn is_ready(addr: SocketAddr, command: Option<&[String]>) -> bool {
    match command {
        Some([program, args @ ..]) => Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .is_ok_and(|s| s.success()),
        _ => tokio::net::TcpStream::connect(addr).await.is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> ServiceSpec {
        toml::from_str(toml_text).unwrap()
    }

    /// A service anyone has: Python's own HTTP server.
    fn python_http() -> ServiceSpec {
        spec(
            r#"
            name = "web"
            program = "python3"
            args = ["-m", "http.server", "--bind", "127.0.0.1", "{port}"]
            "#,
        )
    }

    #[tokio::test]
    async fn a_service_is_ready_before_start_returns_and_gone_after_stop() {
        let scratch = tempfile::tempdir().unwrap();
        let service = Service::start(&python_http(), scratch.path())
            .await
            .unwrap();
        let addr = service.addr();
        assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
        let stopped = service.stop().await;
        assert!(stopped.graceful, "python exits on SIGTERM");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "nothing listens on {addr} after stop"
        );
    }

    #[tokio::test]
    async fn a_service_that_exits_early_is_an_error_with_its_stderr() {
        let scratch = tempfile::tempdir().unwrap();
        let bad = spec(
            r#"
            name = "broken"
            program = "sh"
            args = ["-c", "echo 'config file not found' >&2; exit 3"]
            "#,
        );
        let err = Service::start(&bad, scratch.path()).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("service `broken` exited with exit status: 3"),
            "{text}"
        );
        assert!(text.contains("config file not found"), "{text}");
    }

    #[tokio::test]
    async fn a_service_never_ready_is_an_error_and_is_killed() {
        let scratch = tempfile::tempdir().unwrap();
        let silent = spec(
            r#"
            name = "silent"
            program = "sh"
            args = ["-c", "echo starting >&2; exec sleep 600"]
            ready_timeout = "300ms"
            "#,
        );
        let err = Service::start(&silent, scratch.path()).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("service `silent` was not ready within 300ms"),
            "{text}"
        );
        assert!(text.ends_with("starting"), "{text}");
    }

    #[tokio::test]
    async fn a_missing_program_says_how_to_get_it() {
        let scratch = tempfile::tempdir().unwrap();
        let missing = spec("name = \"db\"\nprogram = \"no-such-server-here\"\n");
        let err = Service::start(&missing, scratch.path()).await.unwrap_err();
        assert!(err.to_string().contains("(hint: install it"), "{err}");
    }
}
