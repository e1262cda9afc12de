//! The `http` target kind, for pipelines that are services: submit a run over HTTP, poll
//! its status until it is done, and take the result document from the status response.
//!
//! The service is either spawned per scenario (`program`, with the stub URLs in its
//! environment, like a `command` target; its base URL is read from its stdout by the
//! `ready` pattern) or already running (`http.base_url`). `refpipe serve` is the bundled
//! example (the `refpipe-serve` target).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::command::{Exit, RunOutcome, exit_of, read_capped, spawn_in_group, tail};

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

/// What `run_http` needs beyond the spec.
pub struct HttpRun<'a> {
    pub spec: &'a HttpSpec,
    pub program: Option<&'a Path>,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
    /// Headers, already expanded.
    pub headers: Vec<(String, String)>,
    pub input: &'a Value,
    /// The scenario's `[[step]]`s: when there are any, they run instead of submit-and-poll.
    pub steps: &'a [crate::scenario::StepSpec],
    pub timeout: Duration,
    /// Faults against the service's processes (armed on the first instance).
    pub faults: &'a crate::faults::ProcessFaults<'a>,
    /// Probes checked once the service is ready, before anything is submitted, and again
    /// when the run is done.
    pub probes: &'a [crate::steady::Probe],
    /// Watches the service's memory, when set.
    pub sampler: Option<&'a crate::sampler::Sampler>,
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

/// Runs one scenario against a service; the result document is the outcome's stdout.
pub async fn run_http(run: HttpRun<'_>) -> std::io::Result<RunOutcome> {
    let started = Instant::now();
    let deadline = started + run.timeout;
    let mut stderr = String::new();
    let mut injected = Vec::new();
    let (base, mut service) = match reach(&run, started, true).await? {
        Ok(reached) => reached,
        Err(not_started) => return Ok(not_started),
    };

    let mut probe_failures =
        crate::steady::check(run.probes, Some(&base), crate::steady::Phase::Before).await;
    if !probe_failures.is_empty() {
        if let Some(s) = service {
            stop_service(s, &mut stderr, &mut injected).await;
        }
        let mut out = outcome(Exit::Code(0), Vec::new(), stderr, injected, started, "");
        out.probes = probe_failures;
        return Ok(out);
    }
    let client = reqwest::Client::new();
    let (exit, body) = drive(
        &client,
        &base,
        &run,
        started,
        deadline,
        &mut service,
        &mut stderr,
        &mut injected,
    )
    .await?;
    if exit == Exit::Code(0) {
        let url = service_base(&service, &base);
        probe_failures =
            crate::steady::check(run.probes, Some(&url), crate::steady::Phase::After).await;
    }
    if let Some(s) = service {
        stop_service(s, &mut stderr, &mut injected).await;
    }
    let mut out = outcome(exit, body, stderr, injected, started, "");
    out.probes = probe_failures;
    Ok(out)
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

#[allow(clippy::too_many_arguments)]
async fn drive(
    client: &reqwest::Client,
    base: &str,
    run: &HttpRun<'_>,
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
    let calls = Calls {
        spec: run.spec.clone(),
        headers: run.headers.clone(),
    };
    let id = match submit(client, base, &calls, run.input, deadline).await {
        Submitted::Id(id) => id,
        Submitted::Answer(body) => return Ok((Exit::Code(0), body)),
        Submitted::Failed(why) => {
            let exit = died(service).unwrap_or(Exit::Code(-1));
            return Ok((
                exit,
                serde_json::json!({ "harness_error": why })
                    .to_string()
                    .into_bytes(),
            ));
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
        match poll_once(client, &url_base, &calls, &id, deadline).await {
            Polled::Done(body) | Polled::Gone(body) => return Ok((Exit::Code(0), body)),
            Polled::Pending => {}
        }
        // Polling is the protocol here, not a stand-in for synchronisation.
        tokio::time::sleep(
            calls
                .interval()
                .min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
}

/// A service kept up for many runs (a `[load]`): started once, probed before and after.
pub struct Session {
    base: String,
    service: Option<Service>,
    calls: Calls,
    client: reqwest::Client,
    stderr: String,
    injected: Vec<crate::faults::Injected>,
}

/// A cheap handle that runs one submit-and-poll against a session's service.
#[derive(Clone)]
pub struct SessionRunner {
    base: String,
    calls: Calls,
    client: reqwest::Client,
}

impl Session {
    /// Starts the service (or uses `base_url`) and checks the steady state; an outcome
    /// instead when it could not be started or was not healthy.
    pub async fn open(run: &HttpRun<'_>) -> std::io::Result<Result<Session, RunOutcome>> {
        let started = Instant::now();
        let (base, service) = match reach(run, started, false).await? {
            Ok(reached) => reached,
            Err(not_started) => return Ok(Err(not_started)),
        };
        let mut session = Session {
            base,
            service,
            calls: Calls {
                spec: run.spec.clone(),
                headers: run.headers.clone(),
            },
            client: reqwest::Client::new(),
            stderr: String::new(),
            injected: Vec::new(),
        };
        let before = crate::steady::check(
            run.probes,
            Some(&session.base),
            crate::steady::Phase::Before,
        )
        .await;
        if !before.is_empty() {
            let (stderr, injected) = session.stop().await;
            let mut out = outcome(Exit::Code(0), Vec::new(), stderr, injected, started, "");
            out.probes = before;
            return Ok(Err(out));
        }
        Ok(Ok(session))
    }

    pub fn runner(&self) -> SessionRunner {
        SessionRunner {
            base: self.base.clone(),
            calls: self.calls.clone(),
            client: self.client.clone(),
        }
    }

    /// The service's pid, when the harness started it.
    pub fn pid(&self) -> Option<u32> {
        self.service.as_ref().and_then(|s| s.child.id())
    }

    /// Checks the steady state after the load, stops the service; its stderr tail and
    /// probe failures.
    pub async fn close(
        mut self,
        probes: &[crate::steady::Probe],
    ) -> (String, Vec<crate::steady::ProbeFailure>, Option<Exit>) {
        let died = died(&mut self.service);
        let after = if died.is_none() {
            crate::steady::check(probes, Some(&self.base), crate::steady::Phase::After).await
        } else {
            Vec::new()
        };
        let (stderr, _) = self.stop().await;
        (stderr, after, died)
    }

    async fn stop(&mut self) -> (String, Vec<crate::faults::Injected>) {
        if let Some(s) = self.service.take() {
            stop_service(s, &mut self.stderr, &mut self.injected).await;
        }
        (
            std::mem::take(&mut self.stderr),
            std::mem::take(&mut self.injected),
        )
    }
}

impl SessionRunner {
    /// One run: submit `input`, poll until done or `timeout`.
    pub async fn run(&self, input: &Value, timeout: Duration) -> RunOutcome {
        let started = Instant::now();
        let deadline = started + timeout;
        let (exit, body) =
            match submit(&self.client, &self.base, &self.calls, input, deadline).await {
                Submitted::Id(id) => loop {
                    if Instant::now() >= deadline {
                        break (Exit::TimedOut, Vec::new());
                    }
                    match poll_once(&self.client, &self.base, &self.calls, &id, deadline).await {
                        Polled::Done(body) | Polled::Gone(body) => break (Exit::Code(0), body),
                        Polled::Pending => {}
                    }
                    tokio::time::sleep(
                        self.calls
                            .interval()
                            .min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                },
                Submitted::Answer(body) => (Exit::Code(0), body),
                Submitted::Failed(why) => (
                    Exit::Code(-1),
                    serde_json::json!({ "harness_error": why })
                        .to_string()
                        .into_bytes(),
                ),
            };
        outcome(exit, body, String::new(), Vec::new(), started, "")
    }
}

/// Where the current instance of the service listens.
fn service_base(service: &Option<Service>, configured: &str) -> String {
    service
        .as_ref()
        .map_or_else(|| configured.to_string(), |s| s.base.clone())
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
