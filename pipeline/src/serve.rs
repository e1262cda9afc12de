//! `refpipe serve`: runs over HTTP, state in memory.
//!
//! | Route             | Answer                                                          |
//! |-------------------|-----------------------------------------------------------------|
//! | `POST /runs`      | 202 `{"id"}`; 400 with the result document if invalid          |
//! | `GET /runs/{id}`  | 200 `{"id", "state", "result"}`; 404 for an unknown id          |
//! | `GET /health`     | 200 `{"status": "ok"}`                                          |
//!
//! With an API token configured, `/runs` routes answer 401 without
//! `Authorization: Bearer <token>`.

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
use serde_json::json;
use tokio::sync::Semaphore;

use crate::errors::ServeError;
use crate::flow::Pipeline;
use crate::output::RunResult;
use crate::progress::Progress;
use crate::request::parse_request;
use crate::retry::lock;

/// How to serve.
pub(crate) struct ServeOptions {
    pub(crate) listen: SocketAddr,
    /// Runs executed at once; later ones wait in state `queued`.
    pub(crate) max_concurrent_runs: usize,
    pub(crate) api_token: Option<String>,
    pub(crate) max_prompt_chars: usize,
}

struct App {
    pipeline: Pipeline,
    runs: Mutex<HashMap<String, Entry>>,
    next_id: AtomicU64,
    slots: Semaphore,
    api_token: Option<String>,
    max_prompt_chars: usize,
    log: Progress,
}

enum Entry {
    Queued,
    Running,
    Done(Box<RunResult>),
}

/// `GET /runs/{id}`.
#[derive(Serialize)]
struct RunStatus<'a> {
    id: &'a str,
    state: &'static str,
    result: Option<&'a RunResult>,
}

/// Binds, prints `listening on http://ADDR` as the first line on stdout, and serves until
/// SIGINT or SIGTERM.
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

    let app = Arc::new(App {
        pipeline,
        runs: Mutex::default(),
        next_id: AtomicU64::new(1),
        slots: Semaphore::new(options.max_concurrent_runs),
        api_token: options.api_token,
        max_prompt_chars: options.max_prompt_chars,
        log: log.clone(),
    });
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
            let result = RunResult::refused("validation", &error);
            return (StatusCode::BAD_REQUEST, Json(result)).into_response();
        }
    };
    let id = format!("run-{}", app.next_id.fetch_add(1, Ordering::Relaxed));
    lock(&app.runs).insert(id.clone(), Entry::Queued);
    app.log.say(format_args!("{id}: queued"));
    tokio::spawn({
        let app = Arc::clone(&app);
        let id = id.clone();
        async move {
            // never closed, so acquiring only waits
            let _slot = app.slots.acquire().await;
            app.set(&id, Entry::Running);
            let result = app.pipeline.run(&request, &app.log.scoped(&id)).await;
            app.log
                .say(format_args!("{id}: {}", result.status.as_str()));
            app.set(&id, Entry::Done(Box::new(result)));
        }
    });
    (StatusCode::ACCEPTED, Json(json!({"id": id}))).into_response()
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
        let message = format!("no run with id `{id}`");
        return error_response(StatusCode::NOT_FOUND, "not_found", &message);
    };
    let (state, result) = match entry {
        Entry::Queued => ("queued", None),
        Entry::Running => ("running", None),
        Entry::Done(result) => ("done", Some(&**result)),
    };
    Json(RunStatus {
        id: &id,
        state,
        result,
    })
    .into_response()
}

impl App {
    fn set(&self, id: &str, entry: Entry) {
        lock(&self.runs).insert(id.to_owned(), entry);
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
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
