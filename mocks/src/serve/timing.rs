//! Timing a response as it goes on the wire: when its token chunks and its last byte were
//! handed to the socket, measured from the moment its request was fully received.
//!
//! A body tells its connection when it hands hyper a token chunk or its last bytes
//! ([`Flight::token_handed`], [`Flight::last_handed`]); hyper writes what it was handed to
//! the socket and then flushes it, and the flush stamps the marks with the time
//! ([`Flight::flushed`]). Chunks handed together go out in one flush and share its time (the
//! gaps between them are 0). A flight dropped before its last byte went out (the client
//! left, the connection was killed) still reports the tokens that did.

use std::time::{Duration, Instant};

/// What the server measured of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Timings {
    /// Request fully received → last response byte handed to the socket; `None` when the
    /// last byte never went out.
    pub(crate) service: Option<Duration>,
    /// Request fully received → first token chunk handed to the socket (streams only).
    pub(crate) first_token: Option<Duration>,
    /// Between the flushes of consecutive token chunks (streams only).
    pub(crate) gaps: Vec<Duration>,
}

/// Called once per response with what was measured.
pub(crate) type OnSent = Box<dyn FnOnce(Timings) + Send>;

/// One response in flight on a connection.
pub(crate) struct Flight {
    received: Instant,
    /// Token chunks handed to hyper since the last flush.
    unflushed_tokens: u32,
    last_handed: bool,
    last_token: Option<Instant>,
    timings: Timings,
    on_sent: Option<OnSent>,
}

impl Flight {
    pub(crate) fn new(received: Instant, on_sent: OnSent) -> Self {
        Self {
            received,
            unflushed_tokens: 0,
            last_handed: false,
            last_token: None,
            timings: Timings::default(),
            on_sent: Some(on_sent),
        }
    }

    pub(crate) fn token_handed(&mut self) {
        self.unflushed_tokens += 1;
    }

    pub(crate) fn last_handed(&mut self) {
        self.last_handed = true;
    }

    /// Everything handed so far is on the socket at `now`; true when the response is
    /// complete (then [`Flight::finish`] reports it).
    pub(crate) fn flushed(&mut self, now: Instant) -> bool {
        for _ in 0..std::mem::take(&mut self.unflushed_tokens) {
            match self.last_token {
                None => {
                    self.timings.first_token = Some(now.saturating_duration_since(self.received))
                }
                Some(last) => self.timings.gaps.push(now.saturating_duration_since(last)),
            }
            self.last_token = Some(now);
        }
        if self.last_handed {
            self.timings.service = Some(now.saturating_duration_since(self.received));
        }
        self.last_handed
    }

    /// Reports what was measured (once).
    pub(crate) fn finish(mut self) {
        self.report();
    }

    fn report(&mut self) {
        if let Some(on_sent) = self.on_sent.take() {
            on_sent(std::mem::take(&mut self.timings));
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        // never finished: what went out is still worth reporting, without a service time
        self.report();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn flight(received: Instant) -> (Flight, Arc<Mutex<Option<Timings>>>) {
        let seen = Arc::new(Mutex::new(None));
        let sink = seen.clone();
        let flight = Flight::new(
            received,
            Box::new(move |timings| *sink.lock().unwrap() = Some(timings)),
        );
        (flight, seen)
    }

    #[test]
    fn tokens_and_the_last_byte_are_stamped_at_their_flush() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (mut flight, seen) = flight(t0);
        assert!(
            !flight.flushed(t0 + ms(1)),
            "nothing handed, nothing stamped"
        );
        flight.token_handed();
        assert!(!flight.flushed(t0 + ms(200)));
        flight.token_handed();
        flight.token_handed();
        assert!(!flight.flushed(t0 + ms(220)));
        flight.token_handed();
        flight.last_handed();
        assert!(flight.flushed(t0 + ms(250)));
        flight.finish();
        assert_eq!(
            seen.lock().unwrap().take(),
            Some(Timings {
                service: Some(ms(250)),
                first_token: Some(ms(200)),
                // two chunks in one flush: the second went out with the first
                gaps: vec![ms(20), ms(0), ms(30)],
            })
        );
    }

    #[test]
    fn a_flight_dropped_early_reports_what_went_out_without_a_service_time() {
        let t0 = Instant::now();
        let (mut flight, seen) = flight(t0);
        flight.token_handed();
        flight.flushed(t0 + Duration::from_millis(5));
        flight.last_handed();
        drop(flight);
        let timings = seen.lock().unwrap().take().expect("reported on drop");
        assert_eq!(timings.service, None);
        assert_eq!(timings.first_token, Some(Duration::from_millis(5)));
    }
}
