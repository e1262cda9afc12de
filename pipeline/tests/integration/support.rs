//! A scripted LLM + executor server on 127.0.0.1:0, and helpers to run the real binary.
//!
//! Each route (`planner`, `coder`, `critic` by `X-Agent-Role`, and `executor`) has a list
//! of replies: the nth call gets the nth reply, the last one repeats. A route without a
//! script answers 404 with an OpenAI error body, as the harness's stub does. A reply can be
//! held back behind a [`Gate`] until the test opens it.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Upper bound for anything a test waits on; reached only when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with a JSON body.
    Json(Value),
    /// A non-2xx status with a JSON body and an optional `Retry-After`.
    Status {
        status: u16,
        retry_after: Option<&'static str>,
        body: Value,
    },
    /// 200 `text/event-stream`, the body sent as these pieces.
    Sse(Vec<String>),
    /// No answer at all, until the client gives up.
    Hang,
    /// The reply, once the gate is open.
    Held(Gate, Box<Reply>),
}

/// Holds replies back until the test opens it; opening releases every held reply.
#[derive(Clone, Debug)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    pub fn new() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn opened(&self) {
        let mut open = self.0.subscribe();
        open.wait_for(|open| *open).await.unwrap();
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Call {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Script {
    replies: HashMap<String, Vec<Reply>>,
    calls: HashMap<String, Vec<Call>>,
}

struct Shared {
    script: Mutex<Script>,
    /// Bumped after every call, for [`Stub::wait_for_calls`].
    calls_seen: watch::Sender<usize>,
}

/// The server; it stops when dropped.
pub struct Stub {
    pub base: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Stub {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            script: Mutex::default(),
            calls_seen: watch::channel(0).0,
        });
        let router = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/execute", post(execute))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base,
            shared,
            server,
        }
    }

    /// Scripts `route`: the nth call gets `replies[n]`, the last one repeats.
    pub fn on(&self, route: &str, replies: Vec<Reply>) -> &Self {
        assert!(!replies.is_empty());
        let mut script = self.shared.script.lock().unwrap();
        script.replies.insert(route.to_owned(), replies);
        self
    }

    pub fn calls(&self, route: &str) -> Vec<Call> {
        let script = self.shared.script.lock().unwrap();
        script.calls.get(route).cloned().unwrap_or_default()
    }

    /// Returns once `route` has received `n` calls (a held reply counts when it arrives).
    pub async fn wait_for_calls(&self, route: &str, n: usize) {
        let mut seen = self.shared.calls_seen.subscribe();
        tokio::time::timeout(PATIENCE, seen.wait_for(|_| self.calls(route).len() >= n))
            .await
            .unwrap_or_else(|_| panic!("`{route}` never received {n} calls"))
            .unwrap();
    }

    pub fn llm_url(&self) -> String {
        format!("{}/v1", self.base)
    }
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let role = headers
        .get("x-agent-role")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_owned();
    let reply = answer(&shared, &role, headers, &body);
    respond(reply).await
}

async fn execute(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = answer(&shared, "executor", headers, &body);
    respond(reply).await
}

/// Records the call, picks its reply, and tells [`Stub::wait_for_calls`].
fn answer(shared: &Shared, route: &str, headers: HeaderMap, body: &[u8]) -> Reply {
    let reply = pick(&shared.script, route, headers, body);
    // after the script's lock is released: a waiter reads the script while it holds this
    shared.calls_seen.send_modify(|n| *n += 1);
    reply
}

fn pick(script: &Mutex<Script>, route: &str, headers: HeaderMap, body: &[u8]) -> Reply {
    let mut script = script.lock().unwrap();
    let call = Call {
        at: Instant::now(),
        headers,
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    };
    let calls = script.calls.entry(route.to_owned()).or_default();
    calls.push(call);
    let n = calls.len();
    let Some(replies) = script.replies.get(route) else {
        let message = format!("no rule matches this request (route `{route}`)");
        let body = json!({"error": {"message": message, "type": "invalid_request_error"}});
        return Reply::Status {
            status: 404,
            retry_after: None,
            body,
        };
    };
    replies[(n - 1).min(replies.len() - 1)].clone()
}

async fn respond(reply: Reply) -> Response {
    match reply {
        Reply::Held(gate, reply) => {
            gate.opened().await;
            Box::pin(respond(*reply)).await
        }
        Reply::Json(body) => axum::Json(body).into_response(),
        Reply::Status {
            status,
            retry_after,
            body,
        } => {
            let mut response =
                (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            if let Some(seconds) = retry_after {
                let value = header::HeaderValue::from_static(seconds);
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Reply::Sse(pieces) => {
            let stream = futures_util::stream::iter(
                pieces
                    .into_iter()
                    .map(|piece| Ok::<_, std::convert::Infallible>(Bytes::from(piece))),
            );
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Reply::Hang => std::future::pending().await,
    }
}

fn usage() -> Value {
    json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
}

/// A chat completion whose content is `content` serialised.
pub fn completion(content: Value) -> Reply {
    raw_completion(&content.to_string())
}

/// A chat completion with this exact content.
pub fn raw_completion(content: &str) -> Reply {
    Reply::Json(json!({
        "id": "c", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": usage(),
    }))
}

/// A chat completion calling `write_code` with `arguments` serialised.
pub fn tool_call(arguments: Value) -> Reply {
    Reply::Json(json!({
        "id": "c", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "write_code", "arguments": arguments.to_string()}}]}}],
        "usage": usage(),
    }))
}

pub fn status(status: u16, retry_after: Option<&'static str>) -> Reply {
    Reply::Status {
        status,
        retry_after,
        body: json!({"error": {"message": format!("scripted {status}")}}),
    }
}

pub fn executed(success: bool, errors: &[&str]) -> Reply {
    Reply::Json(
        json!({"success": success, "artifacts": ["out.txt"], "logs": "ran", "errors": errors}),
    )
}

fn sse_event(chunk: Value) -> String {
    format!("data: {chunk}\n\n")
}

/// A streamed completion: `content` in three deltas, then usage, then `[DONE]` (unless
/// `done` is false), cut into pieces that do not respect line boundaries.
pub fn streamed(content: Value, done: bool) -> Reply {
    let text = content.to_string();
    let third = text.len() / 3;
    let mut body = String::new();
    for part in [&text[..third], &text[third..2 * third], &text[2 * third..]] {
        body += &sse_event(json!({"choices": [{"index": 0, "delta": {"content": part}}]}));
    }
    finish_stream(body, done)
}

/// A streamed `write_code` call, its arguments in two deltas.
pub fn streamed_tool_call(arguments: Value) -> Reply {
    let text = arguments.to_string();
    let half = text.len() / 2;
    let mut body = sse_event(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "type": "function",
         "function": {"name": "write_code", "arguments": &text[..half]}}]}}]}));
    body += &sse_event(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": &text[half..]}}]}}]}));
    finish_stream(body, true)
}

fn finish_stream(mut body: String, done: bool) -> Reply {
    body += &sse_event(json!({"choices": [], "usage": usage()}));
    if done {
        body += "data: [DONE]\n\n";
    }
    let cut: Vec<usize> = (1..4).map(|i| body.len() * i / 4).collect();
    let bytes = body.as_bytes();
    let pieces = [0, cut[0], cut[1], cut[2], bytes.len()]
        .windows(2)
        .map(|w| String::from_utf8(bytes[w[0]..w[1]].to_vec()).unwrap())
        .collect();
    Reply::Sse(pieces)
}

/// The environment refpipe needs to talk to `stub`, with fast retries.
pub fn env_for(stub: &Stub) -> Vec<(String, String)> {
    [
        ("OPENAI_BASE_URL", stub.llm_url()),
        ("OPENAI_API_KEY", "sk-test".to_owned()),
        ("EXECUTOR_URL", stub.base.clone()),
        ("REFPIPE_BACKOFF_BASE", "1ms".to_owned()),
        ("REFPIPE_BACKOFF_MAX", "4ms".to_owned()),
        ("REFPIPE_SEED", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The outcome of `refpipe run`.
pub struct RunOutput {
    pub code: i32,
    pub doc: Value,
    pub stderr: String,
}

/// A `refpipe` command with exactly the environment `env`. Its process is killed if the
/// handle is dropped, so a failing test leaves nothing behind.
pub fn refpipe(env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_refpipe"));
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `refpipe run` with `request` on stdin.
pub async fn run(env: &[(String, String)], request: Value) -> RunOutput {
    let mut command = refpipe(env);
    command.arg("run");
    run_command(command, request).await
}

/// Runs `command`, a `refpipe run`, with `request` on stdin.
pub async fn run_command(mut command: Command, request: Value) -> RunOutput {
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let written = stdin.write_all(request.to_string().as_bytes()).await;
    // refpipe stops before reading stdin when its configuration is invalid
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    drop(stdin);
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("refpipe run did not finish")
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{stderr}")
    });
    RunOutput {
        code: output.status.code().unwrap(),
        doc,
        stderr,
    }
}

/// The standard script: a plan, a draft, a successful execution, a satisfied critic.
pub fn script_happy_path(stub: &Stub) {
    stub.on(
        "planner",
        vec![completion(json!({"subtasks": ["blade", "hilt"]}))],
    )
    .on(
        "coder",
        vec![tool_call(
            json!({"code": "print('sword')", "language": "python"}),
        )],
    )
    .on("executor", vec![executed(true, &[])])
    .on(
        "critic",
        vec![completion(json!({"score": 9, "needs_refinement": false}))],
    );
}

/// A running `refpipe serve`: its address, and its stderr as it comes.
pub struct Served {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Kept open, so that refpipe can still write to its stdout.
    _stdout: Lines<BufReader<ChildStdout>>,
    stderr: JoinHandle<String>,
}

impl Served {
    /// Starts `refpipe serve` with `args` and waits for its listening line.
    pub async fn start(env: &[(String, String)], args: &[&str]) -> Self {
        let mut child = refpipe(env).arg("serve").args(args).spawn().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            stderr.read_to_string(&mut text).await.unwrap();
            text
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(PATIENCE, stdout.next_line()).await;
        let Ok(Ok(Some(first))) = first else {
            let status = child.wait().await.unwrap();
            let stderr = stderr.await.unwrap();
            panic!("no listening line; refpipe exited with {status}, stderr:\n{stderr}");
        };
        let base = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {first}"))
            .to_owned();
        Self {
            child,
            base,
            _stdout: stdout,
            stderr,
        }
    }

    /// Sends `signal`; returns how refpipe exited and everything it wrote to stderr.
    pub async fn stop(mut self, signal: Signal) -> (std::process::ExitStatus, String) {
        let pid = Pid::from_raw(self.child.id().unwrap().try_into().unwrap());
        kill(pid, signal).unwrap();
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("refpipe did not exit")
            .unwrap();
        (status, self.stderr.await.unwrap())
    }

    /// Submits `request`; returns the run's id.
    pub async fn submit(&self, request: Value) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/runs", self.base))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `GET /runs/{id}`: the status code and the body.
    pub async fn get(&self, id: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}/runs/{id}", self.base))
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Polls run `id` until it is done; returns its last status.
    pub async fn wait_done(&self, id: &str) -> Value {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let (code, status) = self.get(id).await;
                assert_eq!(code, 200, "{status}");
                if status["state"] == "done" {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("run `{id}` never finished"))
    }
}
