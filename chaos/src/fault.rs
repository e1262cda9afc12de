//! HTTP-level faults: what a stub sends instead of (or around) its scripted reply, and how it
//! sends it.

use std::fmt;
use std::time::Duration;

use crate::api_error::ApiError;
use crate::errors::{FaultRuleError, ScheduleError};
use crate::schedule::Schedule;

/// A fault a stub applies to one HTTP exchange.
///
/// Faults act at one of five [`FaultStage`]s of the exchange ([`HttpFault::stage`]): they
/// hold the reply back (delays), replace it (a status, a malformed or empty body, a hang, a
/// reset before the response), pace or stall a streamed reply, or end the response early
/// (truncated, reset after some bytes, a cut stream).
///
/// The wire-level faults ([`HttpFault::needs_socket`]: truncated, reset, the stream faults)
/// need a server that writes the response itself, frame by frame, and controls the socket;
/// the LLM stub in `mocks` is such a server, the executor stubs (on wiremock) are not and
/// refuse them. The stream faults apply to streamed (`text/event-stream`) replies only.
///
/// Durations and sizes are what the stub does, not what the client observes: the network
/// (loopback here) adds its own, small, latency.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpFault {
    /// An error with this status ([`HttpFault::api_error`]), in the error shape of the API
    /// the request was for (OpenAI's `{"error": {"message", "type", "param", "code"}}`,
    /// Anthropic's `overloaded_error`, Gemini's `RESOURCE_EXHAUSTED`, …), and a
    /// `Retry-After` header in whole seconds (rounded up) when `retry_after` is set. An
    /// empty `message` is replaced by one that says the fault was injected.
    Status {
        /// HTTP status, e.g. 429 or 503.
        status: u16,
        /// `error.message`.
        message: String,
        /// Sent as `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Wait this long, then serve the normal reply.
    Delay(Duration),
    /// Wait a time drawn uniformly from `min..=max`, then serve the normal reply. Drawn from
    /// the scenario's seeded RNG ([`FaultState::draw_delay`](crate::FaultState::draw_delay)),
    /// rounded to whole microseconds.
    DelayUniform {
        /// The shortest wait.
        min: Duration,
        /// The longest wait.
        max: Duration,
    },
    /// Wait a time drawn from a log-normal distribution, then serve the normal reply: half
    /// the draws are below `median`, and `sigma` is the standard deviation of the log of the
    /// wait (0.5 is a realistic spread of LLM latencies; 0 is always the median). Drawn from
    /// the scenario's seeded RNG, rounded to whole microseconds and capped at
    /// [`MAX_DRAWN_DELAY`] so one unlucky draw cannot hold a scenario for days.
    DelayLogNormal {
        /// The median wait.
        median: Duration,
        /// The standard deviation of `ln(wait)`; finite, at least 0.
        sigma: f64,
    },
    /// `200`, `content-type: application/json`, and a body that is not JSON: the stub's
    /// reply in the request's API, cut off mid-object.
    MalformedJson,
    /// `200`, `content-type: application/json`, and an empty body.
    EmptyBody,
    /// Read the request and never answer: no status line, no byte. The connection stays
    /// open until the client closes it (its timeout fired: the stub records when and after
    /// how long) or the stub shuts down. On a server that sends responses whole (wiremock)
    /// this is a very long delay instead, and the client's leaving is not seen.
    Hang,
    /// Send the status line and headers with the full `Content-Length` of the reply, then
    /// only a prefix of its body, then close the connection normally (FIN): the client sees
    /// an incomplete body (fewer bytes than `Content-Length`, or for a streamed reply, a
    /// chunked body without its last chunk). The prefix is never the whole body: at most
    /// its length minus one byte.
    Truncated(Truncation),
    /// Reset the connection: `SO_LINGER` 0 and close, so the client receives a TCP RST
    /// (`ECONNRESET`) instead of a FIN. With `after_bytes: None` before any byte of the
    /// response; with `Some(n)` after the status line, the headers (with the full
    /// `Content-Length`) and `n` bytes of the body (the whole body if it is shorter; the
    /// reset then follows the complete response).
    Reset {
        /// Body bytes sent before the reset; `None` resets before the response starts.
        after_bytes: Option<u64>,
    },
    /// A slow token rate for a streamed reply: the headers go out at once, the first chunk
    /// (the role chunk, and with it the first content chunk) after `first_token`, and each
    /// later chunk `gap` after the one before. `[DONE]` follows the last chunk at once.
    StreamPace {
        /// Time to the first chunk, after the headers.
        first_token: Duration,
        /// Time between consecutive chunks.
        gap: Duration,
    },
    /// A streamed reply pauses once: after `after_chunks` chunks (`chat.completion.chunk`
    /// events, the role chunk counts) nothing is sent for `stall`, then the stream goes on.
    /// If the stream has no more chunks than that, the pause comes before `[DONE]`.
    StreamStall {
        /// Chunks sent before the pause (0: right after the headers).
        after_chunks: u32,
        /// How long nothing is sent.
        stall: Duration,
    },
    /// A streamed reply breaks off: `after_chunks` chunks are sent, then the first half of
    /// the next event's bytes (the next chunk, or `[DONE]` when none is left), then the
    /// connection is closed (FIN) without the chunked body's end: no `[DONE]`, the last
    /// event incomplete.
    StreamCut {
        /// Complete chunks sent before the cut.
        after_chunks: u32,
    },
}

/// How much of a body a [`HttpFault::Truncated`] sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Truncation {
    /// This many bytes (at most the body's length minus one).
    Bytes(u64),
    /// This fraction of the body's bytes, rounded down; in `0..1`.
    Fraction(f64),
}

impl Truncation {
    /// How many bytes of a `len`-byte body are sent: always fewer than `len` (for a
    /// non-empty body).
    pub fn prefix(&self, len: usize) -> usize {
        let wanted = match *self {
            Truncation::Bytes(n) => usize::try_from(n).unwrap_or(usize::MAX),
            // NaN and negatives are refused by validate; as f64 -> usize saturates at 0
            Truncation::Fraction(fraction) => (len as f64 * fraction) as usize,
        };
        wanted.min(len.saturating_sub(1))
    }
}

/// Where in one exchange a fault acts. A server applies at most one fault per stage to an
/// exchange (the first rule, in configuration order, whose schedule fires), except delays,
/// which add up; a later fault of a stage already taken is shadowed and not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultStage {
    /// Holds the reply back: [`HttpFault::Delay`], [`HttpFault::DelayUniform`],
    /// [`HttpFault::DelayLogNormal`].
    Delay,
    /// Replaces the reply: [`HttpFault::Status`], [`HttpFault::MalformedJson`],
    /// [`HttpFault::EmptyBody`], [`HttpFault::Hang`], [`HttpFault::Reset`] before the
    /// response.
    Reply,
    /// Paces a streamed reply: [`HttpFault::StreamPace`].
    Pace,
    /// Stalls a streamed reply once: [`HttpFault::StreamStall`].
    Stall,
    /// Ends the response early: [`HttpFault::Truncated`], [`HttpFault::Reset`] after some
    /// bytes, [`HttpFault::StreamCut`].
    End,
}

/// The longest wait a random delay ([`HttpFault::DelayUniform`],
/// [`HttpFault::DelayLogNormal`]) draws: one hour.
pub const MAX_DRAWN_DELAY: Duration = Duration::from_secs(3600);

impl HttpFault {
    /// A wait drawn uniformly from `min..=max`.
    pub fn uniform(min: Duration, max: Duration) -> Self {
        HttpFault::DelayUniform { min, max }
    }

    /// A wait drawn from a log-normal distribution with this median and `sigma`.
    pub fn lognormal(median: Duration, sigma: f64) -> Self {
        HttpFault::DelayLogNormal { median, sigma }
    }

    /// Where in the exchange the fault acts.
    pub fn stage(&self) -> FaultStage {
        match self {
            HttpFault::Delay(_)
            | HttpFault::DelayUniform { .. }
            | HttpFault::DelayLogNormal { .. } => FaultStage::Delay,
            HttpFault::Status { .. }
            | HttpFault::MalformedJson
            | HttpFault::EmptyBody
            | HttpFault::Hang
            | HttpFault::Reset { after_bytes: None } => FaultStage::Reply,
            HttpFault::StreamPace { .. } => FaultStage::Pace,
            HttpFault::StreamStall { .. } => FaultStage::Stall,
            HttpFault::Truncated(_)
            | HttpFault::Reset {
                after_bytes: Some(_),
            }
            | HttpFault::StreamCut { .. } => FaultStage::End,
        }
    }

    /// Whether the fault is a delay (fixed or drawn).
    pub fn is_delay(&self) -> bool {
        self.stage() == FaultStage::Delay
    }

    /// The wait of a fixed [`HttpFault::Delay`]; `None` for every other fault, including the
    /// random delays, whose waits are drawn per exchange with
    /// [`FaultState::draw_delay`](crate::FaultState::draw_delay).
    pub fn delay(&self) -> Option<Duration> {
        match self {
            HttpFault::Delay(delay) => Some(*delay),
            _ => None,
        }
    }

    /// Whether the fault replaces the scripted reply ([`FaultStage::Reply`]).
    pub fn replaces_reply(&self) -> bool {
        self.stage() == FaultStage::Reply
    }

    /// Whether the fault applies to streamed replies only (the stream faults).
    pub fn stream_only(&self) -> bool {
        matches!(
            self,
            HttpFault::StreamPace { .. }
                | HttpFault::StreamStall { .. }
                | HttpFault::StreamCut { .. }
        )
    }

    /// Whether the fault needs a server that writes responses frame by frame and controls
    /// the socket (truncated, reset, the stream faults): a server that sends a response
    /// whole, such as wiremock, cannot inject it.
    pub fn needs_socket(&self) -> bool {
        matches!(self, HttpFault::Truncated(_) | HttpFault::Reset { .. }) || self.stream_only()
    }

    /// The neutral error a status fault stands for (status, message, retry-after), for a
    /// stub to render in the shape of the API it serves; `None` for every other fault. An
    /// empty message becomes one that says the fault was injected.
    pub fn api_error(&self) -> Option<ApiError> {
        match self {
            HttpFault::Status {
                status,
                message,
                retry_after,
            } => {
                let message = if message.is_empty() {
                    format!("agent-harness chaos: injected HTTP {status}")
                } else {
                    message.clone()
                };
                Some(ApiError {
                    retry_after: *retry_after,
                    ..ApiError::new(*status, message)
                })
            }
            _ => None,
        }
    }

    fn validate(&self, id: &str) -> Result<(), FaultRuleError> {
        let invalid = |problem: String| {
            Err(FaultRuleError::Parameter {
                id: id.to_string(),
                fault: self.to_string(),
                problem,
            })
        };
        match *self {
            HttpFault::Status { status, .. } if !(100..=599).contains(&status) => {
                Err(FaultRuleError::Status {
                    id: id.to_string(),
                    status,
                })
            }
            HttpFault::DelayUniform { min, max } if min > max => invalid(format!(
                "`min` ({}) is above `max` ({})",
                humantime::format_duration(min),
                humantime::format_duration(max)
            )),
            HttpFault::DelayLogNormal { sigma, .. } if !(sigma.is_finite() && sigma >= 0.0) => {
                invalid(format!(
                    "`sigma` must be a finite number of at least `0`, got `{sigma}`"
                ))
            }
            HttpFault::Truncated(Truncation::Fraction(fraction))
                if !(0.0..1.0).contains(&fraction) =>
            {
                invalid(format!(
                    "the fraction must be at least `0` and below `1`, got `{fraction}` (hint: 0.5 sends half the body)"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Short, one-line: `429 retry-after=1s`, `delay 1s 500ms`, `delay uniform 10ms..50ms`,
/// `malformed json`, `hang`, `reset after 120 bytes`, `stream cut after 3 chunks`, ….
impl fmt::Display for HttpFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let human = humantime::format_duration;
        match self {
            HttpFault::Status {
                status,
                retry_after,
                ..
            } => {
                write!(f, "{status}")?;
                if let Some(after) = retry_after {
                    write!(
                        f,
                        " retry-after={}s",
                        crate::api_error::retry_after_secs(*after)
                    )?;
                }
                Ok(())
            }
            HttpFault::Delay(delay) => write!(f, "delay {}", human(*delay)),
            HttpFault::DelayUniform { min, max } => {
                write!(f, "delay uniform {}..{}", human(*min), human(*max))
            }
            HttpFault::DelayLogNormal { median, sigma } => {
                write!(f, "delay lognormal median={} sigma={sigma}", human(*median))
            }
            HttpFault::MalformedJson => f.write_str("malformed json"),
            HttpFault::EmptyBody => f.write_str("empty body"),
            HttpFault::Hang => f.write_str("hang"),
            HttpFault::Truncated(Truncation::Bytes(n)) => write!(f, "truncated to {n} bytes"),
            HttpFault::Truncated(Truncation::Fraction(fraction)) => {
                write!(f, "truncated to fraction {fraction}")
            }
            HttpFault::Reset { after_bytes: None } => f.write_str("reset before response"),
            HttpFault::Reset {
                after_bytes: Some(n),
            } => write!(f, "reset after {n} bytes"),
            HttpFault::StreamPace { first_token, gap } => write!(
                f,
                "stream pace first_token={} gap={}",
                human(*first_token),
                human(*gap)
            ),
            HttpFault::StreamStall {
                after_chunks,
                stall,
            } => write!(
                f,
                "stream stall {} after {after_chunks} chunks",
                human(*stall)
            ),
            HttpFault::StreamCut { after_chunks } => {
                write!(f, "stream cut after {after_chunks} chunks")
            }
        }
    }
}

/// A fault armed with a schedule: which of the events its filter matches it applies to.
///
/// The filter itself belongs to whoever arms the rule (an LLM stub filters by agent, model,
/// provider, …), and the counters to a per-scenario [`FaultState`](crate::FaultState).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Names the rule in journals and reports, e.g. `chaos[1]`.
    pub id: String,
    /// What to inject.
    pub fault: HttpFault,
    /// When to inject it.
    pub schedule: Schedule,
}

impl FaultRule {
    /// Checks that the rule can be armed: a valid schedule, a status between 100 and 599,
    /// `min <= max` for a uniform delay, a finite `sigma >= 0` for a log-normal one, and a
    /// truncation fraction in `0..1`.
    pub fn validate(&self) -> Result<(), FaultRuleError> {
        self.schedule
            .validate()
            .map_err(|source: ScheduleError| FaultRuleError::Schedule {
                id: self.id.clone(),
                source,
            })?;
        self.fault.validate(&self.id)
    }
}

/// `chaos[1]: 429 retry-after=1s`, as journals record an injected fault.
impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.id, self.fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry_after: Option<Duration>) -> HttpFault {
        HttpFault::Status {
            status,
            message: String::new(),
            retry_after,
        }
    }

    fn rule(fault: HttpFault) -> FaultRule {
        FaultRule {
            id: "chaos[3]".into(),
            fault,
            schedule: Schedule::Always,
        }
    }

    #[test]
    fn a_status_fault_is_a_neutral_error_with_its_wait() {
        let error = status(429, Some(Duration::from_millis(1200)))
            .api_error()
            .unwrap();
        assert_eq!(
            (error.status, error.retry_after_header().as_deref()),
            (429, Some("2"))
        );
        assert_eq!(error.message, "agent-harness chaos: injected HTTP 429");
        assert_eq!((error.error_type, error.code), (None, None));
        let named = HttpFault::Status {
            status: 503,
            message: "down".into(),
            retry_after: None,
        };
        assert_eq!(named.api_error().unwrap().message, "down");
        assert!(HttpFault::MalformedJson.api_error().is_none());
        assert!(HttpFault::MalformedJson.replaces_reply());
        assert!(HttpFault::EmptyBody.replaces_reply());
        assert!(!HttpFault::Delay(Duration::from_secs(1)).replaces_reply());
    }

    #[test]
    fn display_is_one_short_line() {
        let rule = FaultRule {
            id: "chaos[1]".into(),
            fault: status(429, Some(Duration::from_secs(1))),
            schedule: Schedule::First(2),
        };
        assert_eq!(rule.to_string(), "chaos[1]: 429 retry-after=1s");
        assert_eq!(status(503, None).to_string(), "503");
        assert_eq!(
            HttpFault::Delay(Duration::from_millis(1500)).to_string(),
            "delay 1s 500ms"
        );
        let ms = Duration::from_millis;
        let shown = [
            (
                HttpFault::uniform(ms(10), ms(50)),
                "delay uniform 10ms..50ms",
            ),
            (
                HttpFault::lognormal(ms(200), 0.5),
                "delay lognormal median=200ms sigma=0.5",
            ),
            (HttpFault::Hang, "hang"),
            (
                HttpFault::Truncated(Truncation::Bytes(120)),
                "truncated to 120 bytes",
            ),
            (
                HttpFault::Truncated(Truncation::Fraction(0.5)),
                "truncated to fraction 0.5",
            ),
            (
                HttpFault::Reset { after_bytes: None },
                "reset before response",
            ),
            (
                HttpFault::Reset {
                    after_bytes: Some(120),
                },
                "reset after 120 bytes",
            ),
            (
                HttpFault::StreamPace {
                    first_token: ms(500),
                    gap: ms(50),
                },
                "stream pace first_token=500ms gap=50ms",
            ),
            (
                HttpFault::StreamStall {
                    after_chunks: 3,
                    stall: Duration::from_secs(2),
                },
                "stream stall 2s after 3 chunks",
            ),
            (
                HttpFault::StreamCut { after_chunks: 3 },
                "stream cut after 3 chunks",
            ),
        ];
        for (fault, text) in shown {
            assert_eq!(fault.to_string(), text);
        }
    }

    #[test]
    fn stages_and_capabilities() {
        let ms = Duration::from_millis;
        assert_eq!(HttpFault::uniform(ms(1), ms(2)).stage(), FaultStage::Delay);
        assert!(HttpFault::lognormal(ms(1), 0.1).is_delay());
        assert_eq!(HttpFault::uniform(ms(1), ms(2)).delay(), None);
        assert_eq!(HttpFault::Hang.stage(), FaultStage::Reply);
        assert!(HttpFault::Reset { after_bytes: None }.replaces_reply());
        assert_eq!(
            HttpFault::Reset {
                after_bytes: Some(0)
            }
            .stage(),
            FaultStage::End
        );
        assert_eq!(
            HttpFault::StreamCut { after_chunks: 1 }.stage(),
            FaultStage::End
        );
        assert!(HttpFault::StreamCut { after_chunks: 1 }.stream_only());
        assert!(!HttpFault::Truncated(Truncation::Bytes(1)).stream_only());
        assert!(HttpFault::Truncated(Truncation::Bytes(1)).needs_socket());
        assert!(!HttpFault::Hang.needs_socket());
        assert!(!HttpFault::MalformedJson.needs_socket());
        assert!(HttpFault::Hang.api_error().is_none());
    }

    #[test]
    fn truncation_never_sends_the_whole_body() {
        assert_eq!(Truncation::Bytes(120).prefix(412), 120);
        assert_eq!(Truncation::Bytes(1000).prefix(412), 411);
        assert_eq!(Truncation::Fraction(0.5).prefix(412), 206);
        assert_eq!(Truncation::Fraction(0.0).prefix(412), 0);
        assert_eq!(Truncation::Fraction(0.999_999).prefix(10), 9);
        assert_eq!(Truncation::Bytes(5).prefix(0), 0);
    }

    #[test]
    fn validate_rejects_bad_status_and_schedule() {
        let mut rule = FaultRule {
            id: "chaos[2]".into(),
            fault: status(1000, None),
            schedule: Schedule::Always,
        };
        assert_eq!(
            rule.validate().unwrap_err().to_string(),
            "fault rule `chaos[2]` injects status `1000`, which is not an HTTP status (hint: use 100 to 599)"
        );
        rule.fault = HttpFault::EmptyBody;
        rule.schedule = Schedule::Probability(1.5);
        assert!(matches!(
            rule.validate(),
            Err(FaultRuleError::Schedule {
                source: ScheduleError::ProbabilityOutOfRange(_),
                ..
            })
        ));
    }

    #[test]
    fn validate_rejects_bad_parameters() {
        let ms = Duration::from_millis;
        assert_eq!(
            rule(HttpFault::uniform(ms(50), ms(10)))
                .validate()
                .unwrap_err()
                .to_string(),
            "fault rule `chaos[3]` (`delay uniform 50ms..10ms`): `min` (50ms) is above `max` (10ms)"
        );
        assert!(rule(HttpFault::uniform(ms(10), ms(10))).validate().is_ok());
        for sigma in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(
                rule(HttpFault::lognormal(ms(10), sigma))
                    .validate()
                    .is_err()
            );
        }
        assert!(rule(HttpFault::lognormal(ms(10), 0.0)).validate().is_ok());
        assert_eq!(
            rule(HttpFault::Truncated(Truncation::Fraction(1.0)))
                .validate()
                .unwrap_err()
                .to_string(),
            "fault rule `chaos[3]` (`truncated to fraction 1`): the fraction must be at least `0` and below `1`, got `1` (hint: 0.5 sends half the body)"
        );
        assert!(
            rule(HttpFault::Truncated(Truncation::Fraction(f64::NAN)))
                .validate()
                .is_err()
        );
        assert!(
            rule(HttpFault::Truncated(Truncation::Fraction(0.0)))
                .validate()
                .is_ok()
        );
    }
}
