//! The `http` target kind, for pipelines that are services: submit a run over HTTP, poll
//! its status until it is done, and take the result document from the status response.
//!
//! The service is either spawned per scenario (`program`, with the stub URLs in its
//! environment, like a `command` target; its base URL is read from its stdout by the
//! `ready` pattern) or already running (`http.base_url`). `refpipe serve` is the bundled
//! example (the `refpipe-serve` target).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::command::{Exit, RunOutcome, exit_of, read_capped, spawn_in_group, tail};
use super::session::{BoxFuture, Closed, Opened, RunSetup, Session, Target};

/// How to talk to a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// A service that is already running; without it, the target's `program` is started.
    pub base_url: Option<String>,
    /// A regex over the started program's stdout lines; capture group 1 is its base URL.
    #[serde(default = "default_ready")]
    pub ready: String,
    /// How to submit a run: `"METHOD /path"`; the body is the scenario's input as JSON.
    pub submit: String,
    /// JSON pointer to the run's id in the submit response.
    #[serde(default = "default_id")]
    pub id: String,
    /// How to poll a run: `"METHOD /path/{id}"`.
    pub poll: String,
    /// When a poll response says the run is done.
    pub done: DoneSpec,
    /// JSON pointer to the result document in the final poll response.
    pub result: String,
    /// Time between polls; 50ms when absent.
    #[serde(
        default,
        deserialize_with = "crate::scenario::deserialize_opt_duration"
    )]
    pub interval: Option<Duration>,
    /// Headers on every request (e.g. `Authorization`); `{seed}` and `${VAR}` (from the
    /// harness's environment) expand.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoneSpec {
    pub pointer: String,
    pub equals: Value,
}

fn default_ready() -> String {
    r"listening on (https?://\S+)".into()
}

fn default_id() -> String {
    "/id".into()
}

/// How long to wait for a started service to print its ready line, at most.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// What reaching the service needs beyond the spec.
struct HttpRun<'a> {
    spec: &'a HttpSpec,
    program: Option<&'a Path>,
    args: &'a [String],
    env: &'a [(String, String)],
    cwd: Option<&'a Path>,
    /// Headers, already expanded.
    headers: Vec<(String, String)>,
    input: &'a Value,
    /// The scenario's `[[step]]`s: when there are any, a single run takes them instead of
    /// submit-and-poll (steps under `[load]` are refused when the run is planned).
    steps: &'a [crate::scenario::StepSpec],
    timeout: Duration,
    /// Faults against the service's processes (armed on the first instance).
    faults: &'a crate::faults::ProcessFaults<'a>,
    /// Watches the service's memory, when set.
    sampler: Option<&'a crate::sampler::Sampler>,
}

impl<'a> HttpRun<'a> {
    fn of(setup: &'a RunSetup, faults: &'a crate::faults::ProcessFaults<'a>) -> Option<Self> {
        Some(HttpRun {
            spec: setup.spec.http.as_ref()?,
            program: setup.program.as_deref(),
            args: &setup.spec.args,
            env: &setup.env,
            cwd: setup.spec.defined_in.as_deref(),
            headers: setup.headers.clone(),
            input: &setup.input,
            steps: &setup.steps,
            timeout: setup.timeout,
            faults,
            sampler: Some(&setup.sampler),
        })
    }
}

/// A started service: the child, its group guard, its stderr, its armed faults.
struct Service {
    /// Where it listens (a restarted service listens elsewhere).
    base: String,
    child: tokio::process::Child,
    guard: super::command::GroupGuard,
    stderr: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>,
    armed: Option<crate::faults::Armed>,
}

/// The `http` kind: a service started (or reached) once per scenario.
pub(crate) struct HttpTarget;

/// A scenario's service. A single run may restart it (a `kill` fault with `restart`);
/// the runs of a load share it as it is.
struct HttpSession {
    setup: Arc<RunSetup>,
    calls: Calls,
    client: reqwest::Client,
    service: tokio::sync::Mutex<Option<Service>>,
    /// Where the current instance listens.
    base: std::sync::Mutex<String>,
    pid: Option<u32>,
    stderr: std::sync::Mutex<String>,
    injected: std::sync::Mutex<Vec<crate::faults::Injected>>,
}

/// The process faults a run arms: the scenario's on a single run, none under load.
fn faults_of(setup: &RunSetup) -> crate::faults::ProcessFaults<'_> {
    crate::faults::ProcessFaults::new(if setup.under_load {
        &[]
    } else {
        &setup.process
    })
}

impl Target for HttpTarget {
    fn open(&self, setup: Arc<RunSetup>) -> BoxFuture<'_, std::io::Result<Opened>> {
        Box::pin(async move {
            let started = Instant::now();
            let faults = faults_of(&setup);
            let run = HttpRun::of(&setup, &faults).ok_or_else(|| {
                std::io::Error::other("an http target needs an `[NAME.http]` table")
            })?;
            let (base, service) = match reach(&run, started, !setup.under_load).await? {
                Ok(reached) => reached,
                Err(not_started) => return Ok(Err(not_started)),
            };
            let calls = Calls {
                spec: run.spec.clone(),
                headers: run.headers.clone(),
            };
            let pid = service.as_ref().and_then(|s| s.child.id());
            let session: Arc<dyn Session> = Arc::new(HttpSession {
                calls,
                client: reqwest::Client::new(),
                service: tokio::sync::Mutex::new(service),
                base: std::sync::Mutex::new(base),
                pid,
                stderr: Default::default(),
                injected: Default::default(),
                setup: Arc::clone(&setup),
            });
            Ok(Ok(session))
        })
    }
}

impl Session for HttpSession {
    fn run(self: Arc<Self>) -> BoxFuture<'static, RunOutcome> {
        Box::pin(async move {
            let started = Instant::now();
            let deadline = started + self.setup.timeout;
            let base = self.base_url().unwrap_or_default();
            let faults = faults_of(&self.setup);
            let (exit, body) = if self.setup.under_load {
                // Runs of a load share the service as it is.
                submit_and_poll(
                    &self.client,
                    &base,
                    &self.calls,
                    &self.setup.input,
                    deadline,
                )
                .await
            } else {
                let Some(run) = HttpRun::of(&self.setup, &faults) else {
                    return RunOutcome::failed_to_start("no `http` table".into());
                };
                let mut service = self.service.lock().await;
                let mut stderr = String::new();
                let mut injected = Vec::new();
                let driven = drive(
                    &self.client,
                    &base,
                    &run,
                    &self.calls,
                    started,
                    deadline,
                    &mut service,
                    &mut stderr,
                    &mut injected,
                )
                .await;
                if let Some(s) = service.as_ref() {
                    *lock(&self.base) = s.base.clone();
                }
                lock(&self.stderr).push_str(&stderr);
                lock(&self.injected).extend(injected);
                match driven {
                    Ok(done) => done,
                    Err(e) => return RunOutcome::failed_to_start(e.to_string()),
                }
            };
            let mut out = outcome(exit, body, String::new(), Vec::new(), started, "");
            if let (Some(pid), true) = (self.pid, self.setup.under_load) {
                out.kept_rss = Some((pid, self.setup.sampler.snapshot().last_rss_bytes));
            }
            out
        })
    }

    fn base_url(&self) -> Option<String> {
        Some(lock(&self.base).clone())
    }

    fn died(&self) -> Option<Exit> {
        let mut service = self.service.try_lock().ok()?;
        died(&mut service)
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, Closed> {
        Box::pin(async move {
            let mut stderr = std::mem::take(&mut *lock(&self.stderr));
            let mut injected = std::mem::take(&mut *lock(&self.injected));
            if let Some(s) = self.service.lock().await.take() {
                stop_service(s, &mut stderr, &mut injected).await;
            }
            Closed { stderr, injected }
        })
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The service's base URL: `base_url`, or the program started (with the timed faults
/// armed when `arm_faults`); the outcome instead when it never became ready.
async fn reach(
    run: &HttpRun<'_>,
    started: Instant,
    arm_faults: bool,
) -> std::io::Result<Result<(String, Option<Service>), RunOutcome>> {
    match (&run.spec.base_url, run.program) {
        (Some(url), _) => Ok(Ok((url.trim_end_matches('/').to_string(), None))),
        (None, Some(_)) => Ok(match start_service(run, started, arm_faults).await? {
            Ok((url, service)) => Ok((url, Some(service))),
            Err((exit, tail)) => Err(outcome(
                exit,
                Vec::new(),
                tail,
                Vec::new(),
                started,
                "the service never printed its ready line",
            )),
        }),
        (None, None) => Err(std::io::Error::other(
            "an http target needs `program` or `http.base_url`",
        )),
    }
}

/// Starts the target's program and waits for its ready line: its base URL and the
/// service, or how it ended and its stderr.
async fn start_service(
    run: &HttpRun<'_>,
    started: Instant,
    arm_faults: bool,
) -> std::io::Result<Result<(String, Service), (Exit, String)>> {
    let program = run
        .program
        .ok_or_else(|| std::io::Error::other("no program to start"))?;
    let (mut child, guard) = spawn_in_group(program, run.args, run.env, run.cwd, &|cmd| {
        run.faults.configure(cmd)
    })?;
    drop(child.stdin.take());
    let stderr = tokio::spawn(read_capped(child.stderr.take(), 64 * 1024, true));
    if let (Some(sampler), Some(pid)) = (run.sampler, child.id()) {
        sampler.watch(pid);
    }
    let ready = regex::Regex::new(&run.spec.ready)
        .map_err(|e| std::io::Error::other(format!("`ready` is not a valid regex: {e}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let found =
        tokio::time::timeout(READY_TIMEOUT.min(run.timeout), wait_ready(stdout, ready)).await;
    match found {
        Ok(Some(url)) => {
            let armed = if arm_faults {
                child.id().map(|pgid| run.faults.arm(pgid, started))
            } else {
                None
            };
            let base = url.trim_end_matches('/').to_string();
            let service = Service {
                base: base.clone(),
                child,
                guard,
                stderr: Some(stderr),
                armed,
            };
            Ok(Ok((url.trim_end_matches('/').to_string(), service)))
        }
        _ => {
            // Died or never said where it listens: report what it left.
            let exit = match tokio::time::timeout(Duration::from_millis(200), child.wait()).await {
                Ok(Ok(status)) => exit_of(status),
                _ => Exit::TimedOut,
            };
            drop(guard);
            Ok(Err((exit, collect(Some(stderr)).await)))
        }
    }
}

/// Stops a service (its whole group) and keeps its stderr tail and injected faults.
async fn stop_service(
    mut s: Service,
    stderr: &mut String,
    injected: &mut Vec<crate::faults::Injected>,
) {
    if let Some(armed) = s.armed.take() {
        injected.extend(armed.injected());
    }
    drop(s.guard);
    let _ = s.child.wait().await;
    let tail = collect(s.stderr.take()).await;
    if !tail.is_empty() {
        if !stderr.is_empty() {
            stderr.push_str("\n(harness: the service was started again)\n");
        }
        stderr.push_str(&tail);
    }
}

/// How a submit went.
enum Submitted {
    /// Accepted: the run's id.
    Id(String),
    /// Refused or answered without an id: the answer is the document.
    Answer(Vec<u8>),
    /// No answer at all.
    Failed(String),
}

async fn submit(
    client: &reqwest::Client,
    base: &str,
    c: &Calls,
    input: &Value,
    deadline: Instant,
) -> Submitted {
    let (method, path) = split_request(&c.spec.submit);
    match request(
        client,
        method,
        &format!("{base}{path}"),
        &c.headers,
        Some(input),
        deadline,
    )
    .await
    {
        Err(e) => Submitted::Failed(format!("submit failed: {e}")),
        // The service refused the run (validation, auth): its answer is the document.
        Ok((status, body)) if !(200..300).contains(&status) => Submitted::Answer(body),
        Ok((_, body)) => {
            let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            match doc.pointer(&c.spec.id) {
                Some(Value::String(s)) => Submitted::Id(s.clone()),
                Some(v @ Value::Number(_)) => Submitted::Id(v.to_string()),
                _ => Submitted::Answer(body),
            }
        }
    }
}

/// What one poll said.
enum Polled {
    Done(Vec<u8>),
    /// The service no longer knows the run (e.g. lost in a restart): its answer is the
    /// document; waiting longer cannot help.
    Gone(Vec<u8>),
    /// Not done, not up yet, or a passing error: poll again.
    Pending,
}

async fn poll_once(
    client: &reqwest::Client,
    base: &str,
    c: &Calls,
    id: &str,
    deadline: Instant,
) -> Polled {
    let (method, path) = split_request(&c.spec.poll);
    let url = format!(
        "{base}{}",
        crate::template::fill_known(path, |k| (k == "id").then(|| id.to_string()))
    );
    match request(client, method, &url, &c.headers, None, deadline).await {
        Ok((200..=299, body)) => {
            let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if doc.pointer(&c.spec.done.pointer) == Some(&c.spec.done.equals) {
                let result = doc.pointer(&c.spec.result).cloned().unwrap_or(Value::Null);
                Polled::Done(serde_json::to_vec(&result).unwrap_or_default())
            } else {
                Polled::Pending
            }
        }
        Ok((404 | 410, body)) => Polled::Gone(body),
        _ => Polled::Pending,
    }
}

/// What every request to the service needs.
#[derive(Clone)]
struct Calls {
    spec: HttpSpec,
    headers: Vec<(String, String)>,
}

impl Calls {
    fn interval(&self) -> Duration {
        self.spec.interval.unwrap_or(Duration::from_millis(50))
    }
}

/// One exchange with the service: submit the input, poll until done or `deadline`. The
/// one place a run talks to an http target; another exchange (e.g. scripted steps) goes
/// here instead.
async fn submit_and_poll(
    client: &reqwest::Client,
    base: &str,
    calls: &Calls,
    input: &Value,
    deadline: Instant,
) -> (Exit, Vec<u8>) {
    let id = match submit(client, base, calls, input, deadline).await {
        Submitted::Id(id) => id,
        Submitted::Answer(body) => return (Exit::Code(0), body),
        Submitted::Failed(why) => return (Exit::Code(-1), harness_error(&why)),
    };
    loop {
        if Instant::now() >= deadline {
            return (Exit::TimedOut, Vec::new());
        }
        match poll_once(client, base, calls, &id, deadline).await {
            Polled::Done(body) | Polled::Gone(body) => return (Exit::Code(0), body),
            Polled::Pending => {}
        }
        sleep_between_polls(calls, deadline).await;
    }
}

fn harness_error(why: &str) -> Vec<u8> {
    serde_json::json!({ "harness_error": why })
        .to_string()
        .into_bytes()
}

async fn sleep_between_polls(calls: &Calls, deadline: Instant) {
    // Polling is the protocol here, not a stand-in for synchronisation.
    tokio::time::sleep(
        calls
            .interval()
            .min(deadline.saturating_duration_since(Instant::now())),
    )
    .await;
}

/// A single run's exchange, watching the service: one that dies is reported, or started
/// again when a `kill` fault asks for it, and polling goes on against the new instance.
#[allow(clippy::too_many_arguments)]
async fn drive(
    client: &reqwest::Client,
    base: &str,
    run: &HttpRun<'_>,
    calls: &Calls,
    started: Instant,
    deadline: Instant,
    service: &mut Option<Service>,
    stderr: &mut String,
    injected: &mut Vec<crate::faults::Injected>,
) -> std::io::Result<(Exit, Vec<u8>)> {
    if !run.steps.is_empty() {
        let done =
            super::steps::run(client, base, &run.headers, run.steps, run.input, deadline).await;
        let exit = died(service).unwrap_or(Exit::Code(0));
        return Ok((exit, done.document.to_string().into_bytes()));
    }
    let id = match submit(client, base, calls, run.input, deadline).await {
        Submitted::Id(id) => id,
        Submitted::Answer(body) => return Ok((Exit::Code(0), body)),
        Submitted::Failed(why) => {
            let exit = died(service).unwrap_or(Exit::Code(-1));
            return Ok((exit, harness_error(&why)));
        }
    };
    let mut url_base = base.to_string();
    let mut restarts_left = u32::from(run.faults.restarts());
    loop {
        if Instant::now() >= deadline {
            return Ok((Exit::TimedOut, Vec::new()));
        }
        if let Some(exit) = died(service) {
            if restarts_left == 0 {
                return Ok((exit, Vec::new()));
            }
            restarts_left -= 1;
            if let Some(old) = service.take() {
                stop_service(old, stderr, injected).await;
            }
            match start_service(run, started, false).await? {
                Ok((url, new)) => {
                    url_base = url;
                    *service = Some(new);
                }
                Err((exit, tail)) => {
                    stderr.push_str(&tail);
                    return Ok((exit, Vec::new()));
                }
            }
        }
        match poll_once(client, &url_base, calls, &id, deadline).await {
            Polled::Done(body) | Polled::Gone(body) => return Ok((Exit::Code(0), body)),
            Polled::Pending => {}
        }
        sleep_between_polls(calls, deadline).await;
    }
}

/// How the service ended, if it has.
fn died(service: &mut Option<Service>) -> Option<Exit> {
    match service.as_mut().map(|s| s.child.try_wait()) {
        Some(Ok(Some(status))) => Some(exit_of(status)),
        _ => None,
    }
}

async fn request(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&Value>,
    deadline: Instant,
) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(method, url).timeout(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    );
    for (k, v) in headers {
        req = req.header(k, v);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.bytes().await?.to_vec()))
}

/// `"POST /runs"` → `("POST", "/runs")`; a bare path means GET.
fn split_request(spec: &str) -> (&str, &str) {
    spec.trim()
        .split_once(' ')
        .map_or(("GET", spec.trim()), |(m, p)| (m, p.trim()))
}

async fn wait_ready(stdout: tokio::process::ChildStdout, ready: regex::Regex) -> Option<String> {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(url) = ready.captures(&line).and_then(|c| c.get(1)) {
            let url = url.as_str().to_string();
            // Keep draining stdout so a chatty service never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Some(url);
        }
    }
    None
}

async fn collect(task: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>) -> String {
    let Some(task) = task else {
        return String::new();
    };
    match tokio::time::timeout(Duration::from_secs(2), task).await {
        Ok(Ok((bytes, _))) => tail(&bytes),
        _ => String::new(),
    }
}

fn outcome(
    exit: Exit,
    stdout: Vec<u8>,
    stderr_tail: String,
    injected: Vec<crate::faults::Injected>,
    started: Instant,
    note: &str,
) -> RunOutcome {
    let stderr_tail = if note.is_empty() {
        stderr_tail
    } else {
        format!("{stderr_tail}\n(harness: {note})")
            .trim()
            .to_string()
    };
    RunOutcome {
        exit,
        injected,
        probes: Vec::new(),
        stdout,
        stdout_truncated: false,
        stderr_tail,
        duration: started.elapsed(),
        kept_rss: None,
        outlived: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_split_into_method_and_path() {
        assert_eq!(split_request("POST /runs"), ("POST", "/runs"));
        assert_eq!(split_request("/runs/{id}"), ("GET", "/runs/{id}"));
    }
}
