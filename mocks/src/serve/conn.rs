//! One connection: the socket hyper reads and writes ([`ConnIo`]), the state its service and
//! bodies share with it ([`ConnShared`]), and the task that serves it.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};

use super::timing::Flight;
use super::{Action, Finish, Handler, HangEnd, Request, StubBody};

const NONE: u8 = 0;
const CLOSE: u8 = 1;
const RESET: u8 = 2;

fn code(finish: Finish) -> u8 {
    match finish {
        Finish::Complete => NONE,
        Finish::Close => CLOSE,
        Finish::Reset => RESET,
    }
}

/// What a connection's socket, service and bodies share.
#[derive(Default)]
pub(crate) struct ConnShared {
    /// An ending armed by a body that handed hyper its last bytes: done at the next flush.
    armed: AtomicU8,
    /// How the connection was killed, if it was: `CLOSE` or `RESET`.
    killed: AtomicU8,
    kill: Notify,
    /// The response being sent, timed (HTTP/1.1: one at a time per connection).
    flight: Mutex<Option<Flight>>,
    /// A body handed hyper bytes since the last flush.
    unflushed: AtomicBool,
    /// A body waiting for them to be flushed.
    flush_waiter: Mutex<Option<Waker>>,
}

impl ConnShared {
    /// Ends the connection at the next flush of the socket, that is once every byte hyper
    /// has been handed so far is written.
    pub(crate) fn arm(&self, finish: Finish) {
        self.armed.store(code(finish), Ordering::SeqCst);
    }

    /// Ends the connection now: its task drops it, and the socket closes with a FIN or, for
    /// a reset, an RST.
    pub(crate) fn kill(&self, finish: Finish) {
        let _ =
            self.killed
                .compare_exchange(NONE, code(finish), Ordering::SeqCst, Ordering::SeqCst);
        // a stored permit: the task sees it even if it is not waiting yet
        self.kill.notify_one();
    }

    fn killed(&self) -> u8 {
        self.killed.load(Ordering::SeqCst)
    }

    /// Times the response about to be sent (a previous one never finished: it reports).
    pub(crate) fn take_off(&self, flight: Flight) {
        let previous = lock(&self.flight).replace(flight);
        drop(previous);
    }

    /// A body handed hyper bytes: they are on the socket at the next flush.
    pub(crate) fn handed(&self) {
        self.unflushed.store(true, Ordering::Release);
    }

    /// A body handed hyper a token chunk: timed at the next flush.
    pub(crate) fn token_handed(&self) {
        if let Some(flight) = lock(&self.flight).as_mut() {
            flight.token_handed();
        }
        self.handed();
    }

    /// A body handed hyper its last bytes: the response is timed, and reported, at the
    /// next flush.
    pub(crate) fn last_handed(&self) {
        if let Some(flight) = lock(&self.flight).as_mut() {
            flight.last_handed();
        }
        self.handed();
    }

    /// True when everything handed to hyper is on the socket; otherwise the task is woken
    /// when it is.
    pub(crate) fn poll_flushed(&self, cx: &mut Context<'_>) -> bool {
        if !self.unflushed.load(Ordering::Acquire) {
            return true;
        }
        *lock(&self.flush_waiter) = Some(cx.waker().clone());
        // a flush between the check and the registration woke nobody: check again
        !self.unflushed.load(Ordering::Acquire)
    }

    /// Everything hyper was handed is on the socket now.
    fn flushed(&self) {
        if !self.unflushed.swap(false, Ordering::AcqRel) {
            return;
        }
        let now = Instant::now();
        let landed = {
            let mut slot = lock(&self.flight);
            let complete = slot.as_mut().is_some_and(|flight| flight.flushed(now));
            if complete { slot.take() } else { None }
        };
        // reported outside the lock: the report takes the journal's
        if let Some(flight) = landed {
            flight.finish();
        }
        if let Some(waiter) = lock(&self.flush_waiter).take() {
            waiter.wake();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panic while holding it cannot leave a slot half-written: keep going
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The socket as hyper sees it: it carries out armed endings on flush, refuses IO once the
/// connection is killed, and on drop sets `SO_LINGER` 0 first if it was reset.
struct ConnIo {
    stream: TcpStream,
    shared: Arc<ConnShared>,
}

fn killed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection ended by a fault",
    )
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.shared.killed() != NONE {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.shared.killed() != NONE {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.shared.killed() != NONE {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
        if flushed.is_ready() {
            // stamped before an armed ending kills the connection: those bytes went out
            self.shared.flushed();
            let armed = self.shared.armed.swap(NONE, Ordering::SeqCst);
            match armed {
                CLOSE => self.shared.kill(Finish::Close),
                RESET => self.shared.kill(Finish::Reset),
                _ => {}
            }
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shared.killed() == RESET {
            // hyper closes a `Connection: close` exchange right after the flush that
            // killed it: a FIN now would reach the client before the RST
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.shared.killed() == RESET {
            // closing a socket that lingers 0 seconds discards what is unsent and sends RST
            let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
    }
}

/// Serves one connection until the client closes it, a fault kills it, or the stub shuts
/// down (then idle keep-alive connections close at once and in-flight responses finish).
pub(super) async fn serve(
    stream: TcpStream,
    handler: Arc<dyn Handler>,
    mut stopping: watch::Receiver<bool>,
) {
    let shared = Arc::new(ConnShared::default());
    let io = TokioIo::new(ConnIo {
        stream,
        shared: shared.clone(),
    });
    let service = {
        let shared = shared.clone();
        let stopping = stopping.clone();
        service_fn(move |request| {
            respond(request, handler.clone(), shared.clone(), stopping.clone())
        })
    };
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shared.kill.notified() => return,
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = shared.kill.notified() => {}
    }
}

async fn respond(
    request: hyper::Request<Incoming>,
    handler: Arc<dyn Handler>,
    shared: Arc<ConnShared>,
    mut stopping: watch::Receiver<bool>,
) -> Result<hyper::Response<StubBody>, Infallible> {
    let (head, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|collected| collected.to_bytes()) else {
        // the client went away mid-body; hyper ends the connection, this is never sent
        return Ok(StubBody::error_response());
    };
    let handled = Instant::now();
    let reply = handler.handle(Request {
        method: &head.method,
        path: head.uri.path(),
        headers: &head.headers,
        body: &body,
        received: handled,
    });
    match reply.action {
        Action::Hang(on_end) => {
            // created before the delay: a client that gives up during it gave up on a hang
            let mut hang = HangGuard {
                on_end: Some(on_end),
                since: handled,
            };
            let _ = stopping.wait_for(|stop| *stop).await;
            hang.end(HangEnd::ShutDown(handled.elapsed()));
            shared.kill(Finish::Close);
            std::future::pending().await
        }
        Action::Reset => {
            sleep(reply.delay).await;
            shared.kill(Finish::Reset);
            std::future::pending().await
        }
        Action::Respond(response) => {
            sleep(reply.delay).await;
            Ok(StubBody::response(response, shared, handled))
        }
    }
}

async fn sleep(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Reports how a hang ended: the client left (the service future is dropped with the
/// connection) or the stub shut down.
struct HangGuard {
    on_end: Option<Box<dyn FnOnce(HangEnd) + Send>>,
    since: Instant,
}

impl HangGuard {
    fn end(&mut self, how: HangEnd) {
        if let Some(on_end) = self.on_end.take() {
            on_end(how);
        }
    }
}

impl Drop for HangGuard {
    fn drop(&mut self) {
        let after = self.since.elapsed();
        self.end(HangEnd::ClientGone(after));
    }
}
