//! Response bodies: whole, or shaped (piece by piece, each after its wait, ended early on
//! purpose).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Sleep;

use super::conn::ConnShared;
use super::timing::Flight;
use super::{Body, Finish, Piece, Response, Shaped};

/// The body of every response the server sends.
pub(crate) struct StubBody {
    inner: Inner,
}

enum Inner {
    /// `None` once sent; the connection, to mark the last bytes handed over.
    Whole(Option<Bytes>, Option<Arc<ConnShared>>),
    Shaped(Box<ShapedBody>),
}

struct ShapedBody {
    pieces: std::vec::IntoIter<Piece>,
    /// The piece whose wait is running, or about to.
    waiting: Option<Waiting>,
    finish: Finish,
    armed: bool,
    shared: Arc<ConnShared>,
}

impl StubBody {
    /// The hyper response for `response`, on the connection `shared`, to the request
    /// fully read at `received` (the response is timed from there).
    pub(crate) fn response(
        response: Response,
        shared: Arc<ConnShared>,
        received: Instant,
    ) -> hyper::Response<StubBody> {
        let status = http::StatusCode::from_u16(response.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(on_sent) = response.on_sent {
            shared.take_off(Flight::new(received, on_sent));
        }
        let (inner, content_length) = match response.body {
            Body::Whole(bytes) if bytes.is_empty() => {
                // hyper never polls an empty body: its last byte is the headers'
                shared.last_handed();
                (Inner::Whole(None, None), None)
            }
            Body::Whole(bytes) => (Inner::Whole(Some(bytes), Some(shared)), None),
            Body::Shaped(Shaped {
                content_length,
                pieces,
                finish,
            }) => (
                Inner::Shaped(Box::new(ShapedBody {
                    pieces: pieces.into_iter(),
                    waiting: None,
                    finish,
                    armed: false,
                    shared,
                })),
                content_length,
            ),
        };
        let mut built = hyper::Response::new(StubBody { inner });
        *built.status_mut() = status;
        let headers = built.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(response.content_type),
        );
        if let Some(length) = content_length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        for (name, value) in response.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
        built
    }

    /// A 400 for a request whose body could not be read (the client is gone: nobody reads
    /// it).
    pub(crate) fn error_response() -> hyper::Response<StubBody> {
        let mut response = hyper::Response::new(StubBody {
            inner: Inner::Whole(None, None),
        });
        *response.status_mut() = http::StatusCode::BAD_REQUEST;
        response
    }
}

impl HttpBody for StubBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.inner {
            Inner::Whole(bytes, shared) => {
                if let Some(shared) = shared.take() {
                    shared.last_handed();
                }
                Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes))))
            }
            Inner::Shaped(shaped) => shaped
                .poll_piece(cx)
                .map(|piece| piece.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.inner, Inner::Whole(None, _))
            || matches!(&self.inner, Inner::Whole(Some(bytes), _) if bytes.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Whole(Some(bytes), _) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Whole(None, _) => SizeHint::with_exact(0),
            // unknown: hyper sends the Content-Length we set, or chunks
            Inner::Shaped(_) => SizeHint::default(),
        }
    }
}

/// A piece held back: its wait starts once everything before it is on the socket, so the
/// gap between two pieces on the wire is at least the wait, however long a write took.
struct Waiting {
    piece: Piece,
    /// `None` until the earlier pieces are flushed.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl ShapedBody {
    fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if let Some(waiting) = &mut self.waiting {
                let sleep = match &mut waiting.sleep {
                    Some(sleep) => sleep,
                    // returning Pending makes hyper flush what it has; the flush wakes us
                    None if !self.shared.poll_flushed(cx) => return Poll::Pending,
                    None => waiting
                        .sleep
                        .insert(Box::pin(tokio::time::sleep(waiting.piece.wait))),
                };
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let piece = self.waiting.take().expect("a waiting piece").piece;
                return Poll::Ready(Some(self.hand_over(piece.bytes, piece.token)));
            }
            let Some(piece) = self.pieces.next() else {
                return match self.finish {
                    Finish::Complete => {
                        // hyper writes the chunked terminator next, then flushes
                        self.shared.last_handed();
                        Poll::Ready(None)
                    }
                    // no piece at all (a reset after 0 bytes): end at the next flush, which
                    // hyper does next, having nothing else to write
                    _ => {
                        if !self.armed {
                            self.armed = true;
                            self.shared.last_handed();
                            self.shared.arm(self.finish);
                        }
                        // never more: the connection ends at the next flush
                        Poll::Pending
                    }
                };
            };
            if piece.wait.is_zero() {
                return Poll::Ready(Some(self.hand_over(piece.bytes, piece.token)));
            }
            self.waiting = Some(Waiting { piece, sleep: None });
        }
    }

    /// A piece for hyper; the last one of a body that ends early arms its ending, which
    /// the connection carries out once hyper has written it. Token chunks and the last
    /// bytes are marked for timing.
    fn hand_over(&mut self, bytes: Bytes, token: bool) -> Bytes {
        if token {
            self.shared.token_handed();
        } else {
            self.shared.handed();
        }
        if self.pieces.len() == 0 && self.finish != Finish::Complete && !self.armed {
            self.armed = true;
            self.shared.last_handed();
            self.shared.arm(self.finish);
        }
        bytes
    }
}
