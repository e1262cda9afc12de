//! How a response goes on the wire when stream or ending faults fired: from the reply's
//! payload to the pieces the server sends, each after its wait, and how the response ends.
//!
//! - A whole body (JSON) with no ending fault is sent whole. With one, it is sent with its
//!   full `Content-Length` and only a prefix of its bytes, then the connection is closed
//!   (truncated) or reset (reset after n bytes; the whole body when it is shorter).
//! - A stream is sent event by event, chunked, as OpenAI sends it. Pacing delays the first
//!   chunk (with the role chunk, the first content chunk) by `first_token` and each later
//!   chunk by `gap`; a stall adds its pause before the event after `after_chunks` chunks;
//!   a cut sends `after_chunks` whole chunks and half of the next event, then closes; a
//!   truncation or reset counts bytes over the concatenated events.
//!
//! The events that carry tokens (content, or tool-call arguments) are marked as such, so
//! the server times them; an event cut short is not a token.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use chaos::Truncation;

use crate::serve::{Body, Finish, Piece, Shaped};

/// A reply's body, before shaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    /// One body, sent with its `Content-Length`.
    Whole(Vec<u8>),
    /// SSE events, the last one `[DONE]`.
    Events {
        events: Vec<String>,
        /// The indices of the events that carry tokens.
        tokens: Range<usize>,
    },
}

/// The stream and ending faults that act on one response.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Shape {
    /// `(first_token, gap)`.
    pub(crate) pace: Option<(Duration, Duration)>,
    /// `(after_chunks, stall)`.
    pub(crate) stall: Option<(u32, Duration)>,
    pub(crate) end: Option<End>,
}

/// An ending fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum End {
    Truncate(Truncation),
    ResetAfter(u64),
    /// After this many chunks; streams only.
    Cut(u32),
}

/// The body to send, and what to add to the journal's `served` about how it ends (e.g.
/// `, truncated to 206 of 412 bytes`).
pub(crate) fn shape(payload: Payload, shape: &Shape) -> (Body, Option<String>) {
    match payload {
        Payload::Whole(bytes) => {
            let len = bytes.len();
            let (prefix, finish, note) = match shape.end {
                Some(End::Truncate(truncation)) => {
                    let prefix = truncation.prefix(len);
                    (prefix, Finish::Close, truncated_note(prefix, len))
                }
                Some(End::ResetAfter(after)) => {
                    let prefix = usize::try_from(after).unwrap_or(usize::MAX).min(len);
                    (prefix, Finish::Reset, reset_note(prefix, len))
                }
                // streams only: the engine does not apply it to a whole body
                Some(End::Cut(_)) | None => return (Body::Whole(Bytes::from(bytes)), None),
            };
            let mut bytes = Bytes::from(bytes);
            let pieces = if prefix == 0 {
                Vec::new()
            } else {
                vec![Piece {
                    wait: Duration::ZERO,
                    bytes: bytes.split_to(prefix),
                    token: false,
                }]
            };
            let shaped = Shaped {
                content_length: Some(len as u64),
                pieces,
                finish,
            };
            (Body::Shaped(shaped), Some(note))
        }
        Payload::Events { events, tokens } => {
            let waits = waits(events.len(), shape);
            let mut pieces: Vec<Piece> = events
                .into_iter()
                .zip(waits)
                .enumerate()
                .map(|(index, (event, wait))| Piece {
                    wait,
                    bytes: Bytes::from(event),
                    token: tokens.contains(&index),
                })
                .collect();
            let total: usize = pieces.iter().map(|piece| piece.bytes.len()).sum();
            let (finish, note) = match shape.end {
                None => (Finish::Complete, None),
                Some(End::Cut(after)) => {
                    let whole = usize::try_from(after)
                        .unwrap_or(usize::MAX)
                        .min(pieces.len().saturating_sub(1));
                    pieces.truncate(whole + 1);
                    if let Some(last) = pieces.last_mut() {
                        let half = last.bytes.len() / 2;
                        last.bytes.truncate(half);
                        last.token = false;
                    }
                    (Finish::Close, Some(format!(", cut after {whole} chunks")))
                }
                Some(End::Truncate(truncation)) => {
                    let prefix = truncation.prefix(total);
                    keep_bytes(&mut pieces, prefix);
                    (Finish::Close, Some(truncated_note(prefix, total)))
                }
                Some(End::ResetAfter(after)) => {
                    let prefix = usize::try_from(after).unwrap_or(usize::MAX).min(total);
                    keep_bytes(&mut pieces, prefix);
                    (Finish::Reset, Some(reset_note(prefix, total)))
                }
            };
            // an emptied piece would still wait: drop it, unless it is what a cut leaves
            pieces.retain(|piece| !piece.bytes.is_empty());
            let shaped = Shaped {
                content_length: None,
                pieces,
                finish,
            };
            (Body::Shaped(shaped), note)
        }
    }
}

/// The wait before each of `events` events (the last is `[DONE]`).
fn waits(events: usize, shape: &Shape) -> Vec<Duration> {
    let mut waits = vec![Duration::ZERO; events];
    let done = events.saturating_sub(1);
    if let Some((first_token, gap)) = shape.pace {
        for (index, wait) in waits.iter_mut().enumerate().take(done) {
            *wait = match index {
                0 => first_token,
                // the first content chunk comes with the role chunk
                1 => Duration::ZERO,
                _ => gap,
            };
        }
    }
    if let Some((after, stall)) = shape.stall
        && let Some(wait) = waits.get_mut(usize::try_from(after).unwrap_or(usize::MAX).min(done))
    {
        *wait += stall;
    }
    waits
}

/// Keeps the first `prefix` bytes of `pieces`.
fn keep_bytes(pieces: &mut Vec<Piece>, prefix: usize) {
    let mut left = prefix;
    let mut keep = 0;
    for piece in pieces.iter_mut() {
        if left == 0 {
            break;
        }
        if piece.bytes.len() > left {
            piece.bytes.truncate(left);
            piece.token = false;
        }
        left -= piece.bytes.len();
        keep += 1;
    }
    pieces.truncate(keep);
}

fn truncated_note(prefix: usize, len: usize) -> String {
    format!(", truncated to {prefix} of {len} bytes")
}

fn reset_note(prefix: usize, len: usize) -> String {
    if prefix == len {
        format!(", reset after {prefix} bytes (the whole body)")
    } else {
        format!(", reset after {prefix} of {len} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Payload {
        Payload::Events {
            events: event_texts(),
            tokens: 1..3,
        }
    }

    fn event_texts() -> Vec<String> {
        [
            "data: role\n\n",
            "data: one\n\n",
            "data: two\n\n",
            "data: finish\n\n",
            "data: [DONE]\n\n",
        ]
        .map(str::to_string)
        .to_vec()
    }

    fn shaped(body: Body) -> Shaped {
        match body {
            Body::Shaped(shaped) => shaped,
            Body::Whole(_) => panic!("expected a shaped body"),
        }
    }

    fn texts(shaped: &Shaped) -> Vec<(u64, String)> {
        shaped
            .pieces
            .iter()
            .map(|piece| {
                (
                    piece.wait.as_millis() as u64,
                    String::from_utf8(piece.bytes.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_whole_body_without_an_ending_is_sent_whole() {
        let (body, note) = shape(Payload::Whole(b"{}".to_vec()), &Shape::default());
        assert!(matches!(body, Body::Whole(bytes) if bytes == "{}"));
        assert_eq!(note, None);
    }

    #[test]
    fn truncated_and_reset_whole_bodies_promise_the_full_length() {
        let body = b"0123456789".to_vec();
        let truncate = Shape {
            end: Some(End::Truncate(Truncation::Fraction(0.5))),
            ..Shape::default()
        };
        let (sent, note) = shape(Payload::Whole(body.clone()), &truncate);
        let sent = shaped(sent);
        assert_eq!(
            (sent.content_length, sent.finish),
            (Some(10), Finish::Close)
        );
        assert_eq!(texts(&sent), [(0, "01234".to_string())]);
        assert_eq!(note.as_deref(), Some(", truncated to 5 of 10 bytes"));

        let reset = |after| Shape {
            end: Some(End::ResetAfter(after)),
            ..Shape::default()
        };
        let (sent, note) = shape(Payload::Whole(body.clone()), &reset(0));
        let sent = shaped(sent);
        assert!(sent.pieces.is_empty());
        assert_eq!(sent.finish, Finish::Reset);
        assert_eq!(note.as_deref(), Some(", reset after 0 of 10 bytes"));
        let (sent, note) = shape(Payload::Whole(body), &reset(99));
        assert_eq!(texts(&shaped(sent)), [(0, "0123456789".to_string())]);
        assert_eq!(
            note.as_deref(),
            Some(", reset after 10 bytes (the whole body)")
        );
    }

    #[test]
    fn an_unshaped_stream_goes_event_by_event_at_once() {
        let (sent, note) = shape(events(), &Shape::default());
        let sent = shaped(sent);
        assert_eq!(
            (sent.content_length, sent.finish, note),
            (None, Finish::Complete, None)
        );
        assert_eq!(sent.pieces.len(), 5);
        assert!(sent.pieces.iter().all(|piece| piece.wait.is_zero()));
    }

    #[test]
    fn pace_delays_the_first_chunk_then_spaces_the_rest() {
        let pace = Shape {
            pace: Some((ms(500), ms(50))),
            ..Shape::default()
        };
        let sent = shaped(shape(events(), &pace).0);
        let waits: Vec<u64> = texts(&sent).into_iter().map(|(wait, _)| wait).collect();
        assert_eq!(waits, [500, 0, 50, 50, 0]);
    }

    #[test]
    fn stall_pauses_before_the_event_after_n_chunks() {
        let stall = |after| Shape {
            stall: Some((after, ms(2000))),
            pace: Some((ms(10), ms(1))),
            ..Shape::default()
        };
        let waits = |after| -> Vec<u64> {
            texts(&shaped(shape(events(), &stall(after)).0))
                .into_iter()
                .map(|(wait, _)| wait)
                .collect()
        };
        assert_eq!(waits(0), [2010, 0, 1, 1, 0]);
        assert_eq!(waits(2), [10, 0, 2001, 1, 0]);
        // beyond the last chunk: before [DONE]
        assert_eq!(waits(9), [10, 0, 1, 1, 2000]);
    }

    #[test]
    fn a_cut_sends_whole_chunks_then_half_an_event() {
        let cut = |after| Shape {
            end: Some(End::Cut(after)),
            ..Shape::default()
        };
        let (sent, note) = shape(events(), &cut(2));
        let sent = shaped(sent);
        assert_eq!(sent.finish, Finish::Close);
        let sent: Vec<String> = texts(&sent).into_iter().map(|(_, text)| text).collect();
        assert_eq!(sent, ["data: role\n\n", "data: one\n\n", "data:"]);
        assert_eq!(note.as_deref(), Some(", cut after 2 chunks"));
        // nothing left but [DONE]: half of it
        let (sent, note) = shape(events(), &cut(40));
        let last = texts(&shaped(sent)).pop().unwrap().1;
        assert_eq!(last, "data: [");
        assert_eq!(note.as_deref(), Some(", cut after 4 chunks"));
    }

    #[test]
    fn token_events_are_marked_and_an_event_cut_short_is_no_token() {
        let tokens = |sent: &Shaped| -> Vec<bool> { sent.pieces.iter().map(|p| p.token).collect() };
        let (sent, _) = shape(events(), &Shape::default());
        assert_eq!(tokens(&shaped(sent)), [false, true, true, false, false]);
        let cut = Shape {
            end: Some(End::Cut(2)),
            ..Shape::default()
        };
        // role, one whole token, then half of the second
        assert_eq!(
            tokens(&shaped(shape(events(), &cut).0)),
            [false, true, false]
        );
        let truncate = Shape {
            end: Some(End::Truncate(Truncation::Bytes(15))),
            ..Shape::default()
        };
        assert_eq!(
            tokens(&shaped(shape(events(), &truncate).0)),
            [false, false]
        );
        let (whole, _) = shape(Payload::Whole(b"0123".to_vec()), &truncate);
        assert_eq!(tokens(&shaped(whole)), [false]);
    }

    #[test]
    fn truncating_a_stream_counts_bytes_over_its_events_and_keeps_their_waits() {
        let truncate = Shape {
            pace: Some((ms(30), ms(5))),
            end: Some(End::Truncate(Truncation::Bytes(15))),
            ..Shape::default()
        };
        let (sent, note) = shape(events(), &truncate);
        assert_eq!(
            texts(&shaped(sent)),
            [(30, "data: role\n\n".to_string()), (0, "dat".to_string())]
        );
        let total: usize = event_texts().iter().map(String::len).sum();
        assert_eq!(note, Some(format!(", truncated to 15 of {total} bytes")));
    }
}
