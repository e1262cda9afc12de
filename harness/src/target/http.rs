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
    pub timeout: Duration,
}

/// Runs one scenario against a service; the result document is the outcome's stdout.
pub async fn run_http(run: HttpRun<'_>) -> std::io::Result<RunOutcome> {
    let started = Instant::now();
    let deadline = started + run.timeout;
    let mut service = None;
    let mut stderr_task = None;
    let base = match (&run.spec.base_url, run.program) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(program)) => {
            let (mut child, guard) = spawn_in_group(program, run.args, run.env, run.cwd)?;
            drop(child.stdin.take());
            stderr_task = Some(tokio::spawn(read_capped(
                child.stderr.take(),
                64 * 1024,
                true,
            )));
            let ready = regex::Regex::new(&run.spec.ready)
                .map_err(|e| std::io::Error::other(format!("`ready` is not a valid regex: {e}")))?;
            let stdout = child.stdout.take().expect("stdout is piped");
            let found =
                tokio::time::timeout(READY_TIMEOUT.min(run.timeout), wait_ready(stdout, ready))
                    .await;
            let url = match found {
                Ok(Some(url)) => url,
                _ => {
                    // Died or never said where it listens: report what it left.
                    let exit = match tokio::time::timeout(Duration::from_millis(200), child.wait())
                        .await
                    {
                        Ok(Ok(status)) => exit_of(status),
                        _ => Exit::TimedOut,
                    };
                    drop(guard);
                    let stderr = collect(stderr_task).await;
                    return Ok(outcome(
                        exit,
                        Vec::new(),
                        stderr,
                        started,
                        "the service never printed its ready line",
                    ));
                }
            };
            service = Some((child, guard));
            url.trim_end_matches('/').to_string()
        }
        (None, None) => {
            return Err(std::io::Error::other(
                "an http target needs `program` or `http.base_url`",
            ));
        }
    };

    let client = reqwest::Client::new();
    let (exit, body) = drive(&client, &base, &run, deadline, &mut service).await;
    if let Some((mut child, guard)) = service {
        drop(guard);
        let _ = child.wait().await;
    }
    let stderr = collect(stderr_task).await;
    Ok(outcome(exit, body, stderr, started, ""))
}

async fn drive(
    client: &reqwest::Client,
    base: &str,
    run: &HttpRun<'_>,
    deadline: Instant,
    service: &mut Option<(tokio::process::Child, super::command::GroupGuard)>,
) -> (Exit, Vec<u8>) {
    let (method, path) = split_request(&run.spec.submit);
    let submitted = request(
        client,
        method,
        &format!("{base}{path}"),
        &run.headers,
        Some(run.input),
        deadline,
    )
    .await;
    let (status, body) = match submitted {
        Ok(r) => r,
        Err(e) => {
            return (
                died_or(service, Exit::Code(-1)).await,
                format!("{{\"harness_error\": {:?}}}", format!("submit failed: {e}")).into_bytes(),
            );
        }
    };
    if !(200..300).contains(&status) {
        // The service refused the run (validation, auth): its answer is the document.
        return (Exit::Code(0), body);
    }
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = match doc.pointer(&run.spec.id) {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Number(_)) => v.to_string(),
        _ => return (Exit::Code(0), body),
    };
    let (method, path) = split_request(&run.spec.poll);
    let url = format!("{base}{}", path.replace("{id}", &id));
    let interval = run.spec.interval.unwrap_or(Duration::from_millis(50));
    loop {
        if Instant::now() >= deadline {
            return (Exit::TimedOut, Vec::new());
        }
        if let Some((child, _)) = service.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return (exit_of(status), Vec::new());
            }
        }
        if let Ok((200..=299, body)) =
            request(client, method, &url, &run.headers, None, deadline).await
        {
            let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if doc.pointer(&run.spec.done.pointer) == Some(&run.spec.done.equals) {
                let result = doc
                    .pointer(&run.spec.result)
                    .cloned()
                    .unwrap_or(Value::Null);
                return (
                    Exit::Code(0),
                    serde_json::to_vec(&result).unwrap_or_default(),
                );
            }
        }
        // Polling is the protocol here, not a stand-in for synchronisation.
        tokio::time::sleep(interval.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

async fn died_or(
    service: &mut Option<(tokio::process::Child, super::command::GroupGuard)>,
    otherwise: Exit,
) -> Exit {
    match service.as_mut().map(|(c, _)| c.try_wait()) {
        Some(Ok(Some(status))) => exit_of(status),
        _ => otherwise,
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
