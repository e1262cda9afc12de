//! `refpipe serve`: runs over HTTP, state in memory, or also on disk with a state directory.
//!
//! | Route             | Answer                                                          |
//! |-------------------|-----------------------------------------------------------------|
//! | `POST /runs`      | 202 `{"id"}`; 400 with the result document if invalid; 503 if   |
//! |                   | the run cannot be saved in the state directory                  |
//! | `GET /runs/{id}`  | 200 `{"id", "state", "result", "resumed", "resume_count"}`; 404 |
//! |                   | for an unknown id                                               |
//! | `GET /health`     | 200 `{"status": "ok"}`                                          |
//!
//! With an API token configured, `/runs` routes answer 401 without
//! `Authorization: Bearer <token>`.
//!
//! With a state directory ([`crate::store`]), every run is saved when it is queued, when it
//! starts, after each step, and when it is done. At start, finished runs are served as they
//! were, and runs that were queued or running are resumed at the step after their last
//! finished one (`resumed: true`, `resume_count` counting the takeovers).
//!
//! With `REFPIPE_LEAK_BYTES_PER_RUN` set (a benchmark/test knob, unset in production),
//! every finished run leaves that many bytes behind in a [`Ballast`] that is never freed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::config::Mode;
use crate::errors::{ServeError, chain};
use crate::flow::{Checkpoint, Journal, Pipeline};
use crate::output::RunResult;
use crate::progress::Progress;
use crate::request::{RunRequest, parse_request};
use crate::retry::lock;
use crate::store::{Opened, RunRecord, RunState, Store, run_id};

/// How to serve.
pub(crate) struct ServeOptions {
    pub(crate) listen: SocketAddr,
    /// Runs executed at once; later ones wait in state `queued`.
    pub(crate) max_concurrent_runs: usize,
    pub(crate) api_token: Option<String>,
    pub(crate) max_prompt_chars: usize,
    /// The opened state directory, if runs are persisted.
    pub(crate) state: Option<Opened>,
    /// `REFPIPE_LEAK_BYTES_PER_RUN`, a benchmark/test knob: bytes each finished run leaks.
    pub(crate) leak_bytes_per_run: usize,
}

struct App {
    pipeline: Pipeline,
    runs: Mutex<HashMap<String, Entry>>,
    /// The number of the next run id.
    next_number: AtomicU64,
    slots: Semaphore,
    api_token: Option<String>,
    max_prompt_chars: usize,
    store: Option<Store>,
    log: Progress,
    /// What finished runs leaked, with `REFPIPE_LEAK_BYTES_PER_RUN` set.
    ballast: Ballast,
    leak_bytes_per_run: usize,
}

/// Memory that is never given back: a deliberate leak for `REFPIPE_LEAK_BYTES_PER_RUN`, so
/// that a harness sampling the process's memory can show that it catches a real leak.
#[derive(Default)]
struct Ballast(Mutex<Vec<Box<[u8]>>>);

impl Ballast {
    /// Keeps `bytes` more bytes for as long as the process lives. They are written (not
    /// zero, so that no page can stay shared with the zero page), so resident memory
    /// really grows by about that much.
    fn retain(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let block = vec![0xA5_u8; bytes].into_boxed_slice();
        lock(&self.0).push(block);
    }

    /// The bytes retained so far.
    #[cfg(test)]
    fn retained(&self) -> usize {
        lock(&self.0).iter().map(|block| block.len()).sum()
    }
}

struct Entry {
    state: EntryState,
    resume_count: u32,
}

enum EntryState {
    Queued,
    Running,
    Done(Arc<Value>),
}

/// `GET /runs/{id}`.
#[derive(Serialize)]
struct RunStatus<'a> {
    id: &'a str,
    state: &'static str,
    result: Option<&'a Value>,
    resumed: bool,
    resume_count: u32,
}

/// Binds, prints `listening on http://ADDR` as the first line on stdout, resumes the runs
/// of the state directory that had not finished, and serves until SIGINT or SIGTERM.
pub(crate) async fn serve(
    options: ServeOptions,
    pipeline: Pipeline,
    log: Progress,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    announce(addr)?;
    log.say(format_args!("serving on http://{addr}"));

    let (store, saved, next_number) = match options.state {
        Some(opened) => (Some(opened.store), opened.runs, opened.next_number),
        None => (None, Vec::new(), 1),
    };
    let app = Arc::new(App {
        pipeline,
        runs: Mutex::default(),
        next_number: AtomicU64::new(next_number),
        slots: Semaphore::new(options.max_concurrent_runs),
        api_token: options.api_token,
        max_prompt_chars: options.max_prompt_chars,
        store,
        log: log.clone(),
        ballast: Ballast::default(),
        leak_bytes_per_run: options.leak_bytes_per_run,
    });
    app.take_over(saved);
    let router = Router::new()
        .route("/health", get(health))
        .route("/runs", post(submit))
        .route("/runs/{id}", get(status))
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal(log))
        .await
        .map_err(ServeError::Serve)
}

fn announce(addr: SocketAddr) -> Result<(), ServeError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .map_err(ServeError::Serve)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn submit(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = app.deny(&headers) {
        return denied;
    }
    let request = match parse_request(&body, app.max_prompt_chars) {
        Ok(request) => request,
        Err(error) => {
            let result = RunResult::refused(app.pipeline.mode(), "validation", &error);
            return (StatusCode::BAD_REQUEST, Json(result)).into_response();
        }
    };
    let id = run_id(app.next_number.fetch_add(1, Ordering::Relaxed));
    if let Some(store) = &app.store {
        let record = RunRecord::new(&id, &request, RunState::Queued, 0);
        if let Err(error) = store.save(&record).await {
            let message = chain(&error);
            app.log.say(format_args!("{id}: refused: {message}"));
            return error_response(StatusCode::SERVICE_UNAVAILABLE, "storage", &message);
        }
    }
    app.insert(&id, EntryState::Queued, 0);
    app.log.say(format_args!("{id}: queued"));
    tokio::spawn(execute(
        Arc::clone(&app),
        id.clone(),
        request,
        Checkpoint::start(),
        0,
    ));
    (StatusCode::ACCEPTED, Json(json!({"id": id}))).into_response()
}

/// Runs one run from `checkpoint` to the end, once a slot is free, saving it as it goes.
async fn execute(
    app: Arc<App>,
    id: String,
    request: RunRequest,
    checkpoint: Checkpoint,
    resume_count: u32,
) {
    // never closed, so acquiring only waits
    let _slot = app.slots.acquire().await;
    app.set(&id, EntryState::Running);
    let journal = RunJournal {
        app: &app,
        id: &id,
        request: &request,
        resume_count,
    };
    journal
        .save(RunState::Running, Some(checkpoint.clone()), None)
        .await;
    let result = app
        .pipeline
        .run(&request, checkpoint, &journal, &app.log.scoped(&id))
        .await;
    app.log
        .say(format_args!("{id}: {}", result.status.as_str()));
    let result = Arc::new(
        serde_json::to_value(&result).expect("a result document is plain JSON, always valid"),
    );
    // saved before it is shown, so that no client sees a result that a restart would lose
    journal
        .save(RunState::Done, None, Some(Value::clone(&result)))
        .await;
    // before the run shows as done, so that a client that saw it done sees its leak too
    app.ballast.retain(app.leak_bytes_per_run);
    app.set(&id, EntryState::Done(result));
}

/// Saves a run's progress in the state directory, if there is one.
struct RunJournal<'a> {
    app: &'a App,
    id: &'a str,
    request: &'a RunRequest,
    resume_count: u32,
}

impl RunJournal<'_> {
    /// A failed save is reported and the run goes on: it is still served from memory, and
    /// a restart would resume it from its last saved step.
    async fn save(&self, state: RunState, checkpoint: Option<Checkpoint>, result: Option<Value>) {
        let Some(store) = &self.app.store else {
            return;
        };
        let record = RunRecord {
            checkpoint,
            result,
            ..RunRecord::new(self.id, self.request, state, self.resume_count)
        };
        if let Err(error) = store.save(&record).await {
            self.app.log.say(format_args!(
                "{}: {}; the run goes on",
                self.id,
                chain(&error)
            ));
        }
    }
}

impl Journal for RunJournal<'_> {
    async fn step_done(&self, checkpoint: &Checkpoint) {
        if self.app.store.is_some() {
            self.save(RunState::Running, Some(checkpoint.clone()), None)
                .await;
        }
    }
}

async fn status(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(denied) = app.deny(&headers) {
        return denied;
    }
    let runs = lock(&app.runs);
    let Some(entry) = runs.get(&id) else {
        let mut message = format!("no run with id `{id}`");
        if app.pipeline.mode() == Mode::Fragile {
            message.push_str(
                " (fragile mode: runs are kept in memory only, so a restart forgets them)",
            );
        }
        return error_response(StatusCode::NOT_FOUND, "not_found", &message);
    };
    let (state, result) = match &entry.state {
        EntryState::Queued => ("queued", None),
        EntryState::Running => ("running", None),
        EntryState::Done(result) => ("done", Some(&**result)),
    };
    Json(RunStatus {
        id: &id,
        state,
        result,
        resumed: entry.resume_count > 0,
        resume_count: entry.resume_count,
    })
    .into_response()
}

impl App {
    fn insert(&self, id: &str, state: EntryState, resume_count: u32) {
        let entry = Entry {
            state,
            resume_count,
        };
        lock(&self.runs).insert(id.to_owned(), entry);
    }

    fn set(&self, id: &str, state: EntryState) {
        if let Some(entry) = lock(&self.runs).get_mut(id) {
            entry.state = state;
        }
    }

    /// Serves the runs read from the state directory: finished ones as they were; the others
    /// are resumed at the step after their last finished one.
    fn take_over(self: &Arc<Self>, saved: Vec<RunRecord>) {
        for record in saved {
            let id = record.id;
            if let (RunState::Done, Some(result)) = (record.state, record.result) {
                self.insert(&id, EntryState::Done(Arc::new(result)), record.resume_count);
                continue;
            }
            let resume_count = record.resume_count.saturating_add(1);
            let checkpoint = record.checkpoint.unwrap_or_else(Checkpoint::start);
            self.log.say(format_args!(
                "{id}: resuming at step `{}` (resume {resume_count})",
                checkpoint.next
            ));
            self.insert(&id, EntryState::Queued, resume_count);
            let app = Arc::clone(self);
            let request = record.request;
            tokio::spawn(async move {
                let journal = RunJournal {
                    app: &app,
                    id: &id,
                    request: &request,
                    resume_count,
                };
                journal
                    .save(RunState::Queued, Some(checkpoint.clone()), None)
                    .await;
                execute(
                    Arc::clone(&app),
                    id.clone(),
                    request.clone(),
                    checkpoint,
                    resume_count,
                )
                .await;
            });
        }
    }

    /// The 401 response for a request without the right bearer token, if a token is set.
    fn deny(&self, headers: &HeaderMap) -> Option<Response> {
        let token = self.api_token.as_ref()?;
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        if presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
            return None;
        }
        let mut response = error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token (hint: send `Authorization: Bearer <REFPIPE_API_TOKEN>`)",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        Some(response)
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares without an early exit, so timing reveals only the length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"kind": kind, "message": message}});
    (status, Json(body)).into_response()
}

/// Resolves on SIGINT or SIGTERM. A signal whose handler cannot be installed is ignored.
async fn shutdown_signal(log: Progress) {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut signals) => {
                signals.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    log.say("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn ballast_keeps_written_bytes() {
        let ballast = Ballast::default();
        ballast.retain(0);
        assert_eq!(ballast.retained(), 0);
        assert!(lock(&ballast.0).is_empty());
        ballast.retain(4096);
        ballast.retain(10);
        assert_eq!(ballast.retained(), 4106);
        assert!(lock(&ballast.0).iter().flatten().all(|&byte| byte != 0));
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
