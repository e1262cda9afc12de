//! The LLM stub's HTTP server: hyper 1, HTTP/1.1 with keep-alive, written for faults.
//!
//! ```text
//!  std TcpListener on 127.0.0.1:0 (bound by the caller: a bind error is a StubError)
//!        │   N threads (StubOptions::threads), each with a current-thread Tokio runtime
//!        ▼   and an accept loop of its own on the one socket
//!  accept loop ──▶ one task per connection: ConnIo (the socket, counted and killable)
//!        │              └─ hyper http1 connection ──▶ service: collect the body,
//!        │                   Handler::handle (route, faults, rules, journal) ──▶ Reply:
//!        │                   delay, then Respond (whole, or shaped frame by frame) | Hang | Reset
//!        │                   └─ timed on the socket: token chunks and last byte (timing.rs)
//!        ▼
//!  shutdown (the stub dropped): stop accepting, close idle connections, end hangs,
//!  let in-flight responses finish for up to GRACE, then drop the rest
//! ```
//!
//! Why one accept loop per thread rather than a multi-thread runtime: a connection stays on
//! the thread that accepted it, so its requests, bodies and timers never hop threads (no
//! work stealing, no cross-thread wake-up per request), while the threads together use
//! every core. The handler is shared: sequences, faults, quotas and the journal are the
//! same state whichever thread serves a request, and the journal stays in the order the
//! requests were handled.
//!
//! Wire-level faults need the socket while hyper owns it. A connection's [`conn::ConnShared`]
//! is shared by its [`conn::ConnIo`], its service and the bodies it sends: a body that must
//! end early arms an ending when it hands hyper its last bytes; the next flush of the socket
//! (which hyper only does after writing everything it buffered) kills the connection, and
//! dropping the socket then closes it with a FIN, or, for a reset, with `SO_LINGER` 0 set
//! first, an RST.
//!
//! Timing works the same way: a body marks a token chunk or its last bytes when it hands
//! them to hyper, and the next flush stamps the marks ([`timing`]). A response is timed from
//! the moment its request was fully read to the moment its last byte was handed to the
//! socket: delays and pacing included, the client's reading not.
//!
//! # Adding a wire-level fault
//!
//! 1. In `chaos`: the [`chaos::HttpFault`] variant, its [`chaos::FaultStage`], `true` from
//!    `needs_socket` (so executor stubs refuse it), its validation and its journal line.
//! 2. In `llm/engine.rs`: the stage slot it takes in `decide` (first fault of a stage wins).
//! 3. A body fault: pieces, waits and a [`Finish`] in `llm/wire.rs`. A connection fault
//!    that is not about a body: an [`Action`] here, carried out in `conn.rs`.
//! 4. A test that observes it from outside (a raw TCP client or reqwest), with lower
//!    bounds on time only, and the journal line it leaves.

mod body;
mod conn;
mod timing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub(crate) use body::StubBody;
pub(crate) use timing::{OnSent, Timings};

use crate::errors::StubError;

/// How long in-flight responses may go on after the stub is dropped.
const GRACE: Duration = Duration::from_secs(5);

/// What the server hands the handler: one request, its body read whole.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
    /// When the request was fully read: responses are timed from here.
    pub(crate) received: Instant,
}

/// The answer to one request.
pub(crate) struct Reply {
    /// Held back this long before acting.
    pub(crate) delay: Duration,
    pub(crate) action: Action,
}

/// What to do once the delay is over.
pub(crate) enum Action {
    /// Send this response.
    Respond(Response),
    /// Send nothing, keep the connection open; call back when the client closes it or the
    /// stub shuts down.
    Hang(Box<dyn FnOnce(HangEnd) + Send>),
    /// Reset the connection before any byte of a response.
    Reset,
}

/// How a hang ended, and after how long since the request was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HangEnd {
    ClientGone(Duration),
    ShutDown(Duration),
}

/// A response, before hyper frames it.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body,
    /// Called once with the response's [`Timings`], when its last byte is on the socket
    /// (or, without a service time, when it is dropped before that).
    pub(crate) on_sent: Option<OnSent>,
}

/// A response body.
pub(crate) enum Body {
    /// Sent whole, with its `Content-Length`.
    Whole(Bytes),
    /// Sent piece by piece, each after its wait, and ended as `finish` says.
    Shaped(Shaped),
}

/// A body sent piece by piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shaped {
    /// Sent as `Content-Length` (the full length, even when fewer bytes follow); `None`
    /// sends the body chunked.
    pub(crate) content_length: Option<u64>,
    pub(crate) pieces: Vec<Piece>,
    pub(crate) finish: Finish,
}

/// One frame of a shaped body: sent (and flushed) `wait` after everything before it was
/// flushed, so consecutive frames are at least `wait` apart on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) wait: Duration,
    pub(crate) bytes: Bytes,
    /// A whole token chunk (content or tool-call arguments) of a stream: timed when it is
    /// flushed (time to first token, gaps between tokens).
    pub(crate) token: bool,
}

/// How a shaped body ends, once its last piece is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// As a body should: the connection stays open for the next request.
    Complete,
    /// The connection is closed (FIN), whatever the framing still promised.
    Close,
    /// The connection is reset (RST).
    Reset,
}

/// Answers the requests of one stub.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, request: Request<'_>) -> Reply;
}

/// A running server; dropping it shuts the server down.
pub(crate) struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl Server {
    /// Binds `127.0.0.1:0` and serves with `handler` on `threads` threads of its own (at
    /// least one), each accepting on the same socket.
    pub(crate) fn start(
        stub: &str,
        handler: Arc<dyn Handler>,
        threads: usize,
    ) -> Result<Server, StubError> {
        let bind_error = |source| StubError::Bind {
            stub: stub.to_string(),
            source,
        };
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let spawn_error = |source| StubError::Spawn {
            stub: stub.to_string(),
            source,
        };
        // a current-thread runtime per thread: the stub serves whatever the caller's runtime
        // does (a blocking test, a busy scenario runner); each thread accepts on a clone of
        // the one socket, and the kernel hands each connection to one of them
        let (shutdown, stopping) = watch::channel(false);
        for n in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(spawn_error)?;
            let listener = {
                let _entered = runtime.enter();
                let own = listener.try_clone().map_err(bind_error)?;
                tokio::net::TcpListener::from_std(own).map_err(bind_error)?
            };
            let (handler, stopping) = (handler.clone(), stopping.clone());
            std::thread::Builder::new()
                .name(format!("stub-{stub}-{n}"))
                .spawn(move || runtime.block_on(serve(listener, handler, stopping)))
                .map_err(spawn_error)?;
        }
        drop(listener);
        Ok(Server { addr, shutdown })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    handler: Arc<dyn Handler>,
    stopping: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let mut stop = stopping.clone();
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // SSE chunks go out as they are written, not when Nagle allows
                    let _ = stream.set_nodelay(true);
                    connections.spawn(conn::serve(stream, handler.clone(), stopping.clone()));
                }
                // out of file descriptors and the like: the client sees a refused or
                // dropped connection; do not spin on the error
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
        // finished connections leave the set at once: memory stays flat
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    // every connection saw `stopping`: idle ones close, hangs end; the rest may finish
    let deadline = Instant::now() + GRACE;
    let _ = tokio::time::timeout_at(deadline.into(), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}
