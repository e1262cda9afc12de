//! HTTP-level faults: what a stub sends instead of (or around) its scripted reply.

use std::fmt;
use std::time::Duration;

use crate::api_error::ApiError;
use crate::errors::{FaultRuleError, ScheduleError};
use crate::schedule::Schedule;

/// A fault a stub applies to one HTTP exchange.
///
/// All but [`HttpFault::Delay`] replace the scripted reply; a delay holds the reply back and
/// then serves it as scripted.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpFault {
    /// An OpenAI-style error body (`{"error": {"message", "type", "param", "code"}}`, type and
    /// code by status as [`ApiError`] does it) with this status, and a `Retry-After` header
    /// in whole seconds (rounded up) when `retry_after` is set. An empty `message` is
    /// replaced by one that says the fault was injected.
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
    /// `200`, `content-type: application/json`, and a body that is not JSON (a truncated
    /// completion object).
    MalformedJson,
    /// `200`, `content-type: application/json`, and an empty body.
    EmptyBody,
}

/// The body a [`HttpFault::MalformedJson`] sends: a completion cut off mid-object.
pub const MALFORMED_JSON_BODY: &str =
    r#"{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": ["#;

/// The response a replacing fault sends, independent of any HTTP server library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultResponse {
    /// HTTP status.
    pub status: u16,
    /// `content-type`.
    pub content_type: &'static str,
    /// Further headers, e.g. `("retry-after", "1")`.
    pub headers: Vec<(&'static str, String)>,
    /// The body, sent as is.
    pub body: Vec<u8>,
}

impl HttpFault {
    /// How long the fault holds the reply back, if it is a delay.
    pub fn delay(&self) -> Option<Duration> {
        match self {
            HttpFault::Delay(delay) => Some(*delay),
            _ => None,
        }
    }

    /// Whether the fault replaces the scripted reply (everything but a delay does).
    pub fn replaces_reply(&self) -> bool {
        self.response().is_some()
    }

    /// The response that replaces the scripted reply; `None` for a delay.
    pub fn response(&self) -> Option<FaultResponse> {
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
                let error = ApiError {
                    retry_after: *retry_after,
                    ..ApiError::new(*status, message)
                };
                let headers = error
                    .retry_after_header()
                    .map(|value| vec![("retry-after", value)])
                    .unwrap_or_default();
                Some(FaultResponse {
                    status: *status,
                    content_type: "application/json",
                    headers,
                    body: error.body().to_string().into_bytes(),
                })
            }
            HttpFault::Delay(_) => None,
            HttpFault::MalformedJson => Some(FaultResponse {
                status: 200,
                content_type: "application/json",
                headers: Vec::new(),
                body: MALFORMED_JSON_BODY.as_bytes().to_vec(),
            }),
            HttpFault::EmptyBody => Some(FaultResponse {
                status: 200,
                content_type: "application/json",
                headers: Vec::new(),
                body: Vec::new(),
            }),
        }
    }
}

/// Short, one-line: `429 retry-after=1s`, `delay 1s 500ms`, `malformed json`, `empty body`.
impl fmt::Display for HttpFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
            HttpFault::Delay(delay) => write!(f, "delay {}", humantime::format_duration(*delay)),
            HttpFault::MalformedJson => f.write_str("malformed json"),
            HttpFault::EmptyBody => f.write_str("empty body"),
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
    /// Checks that the rule can be armed: a valid schedule and, for a status fault, a status
    /// between 100 and 599.
    pub fn validate(&self) -> Result<(), FaultRuleError> {
        self.schedule
            .validate()
            .map_err(|source: ScheduleError| FaultRuleError::Schedule {
                id: self.id.clone(),
                source,
            })?;
        if let HttpFault::Status { status, .. } = self.fault
            && !(100..=599).contains(&status)
        {
            return Err(FaultRuleError::Status {
                id: self.id.clone(),
                status,
            });
        }
        Ok(())
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

    #[test]
    fn status_fault_sends_an_openai_error_with_retry_after() {
        let response = status(429, Some(Duration::from_millis(1200)))
            .response()
            .unwrap();
        assert_eq!(response.status, 429);
        assert_eq!(response.headers, vec![("retry-after", "2".to_string())]);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["error"]["type"], "requests");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(
            body["error"]["message"],
            "agent-harness chaos: injected HTTP 429"
        );
    }

    #[test]
    fn malformed_json_is_not_json_and_empty_body_is_empty() {
        let malformed = HttpFault::MalformedJson.response().unwrap();
        assert_eq!(malformed.status, 200);
        assert!(serde_json::from_slice::<serde_json::Value>(&malformed.body).is_err());
        assert!(HttpFault::EmptyBody.response().unwrap().body.is_empty());
        assert!(
            HttpFault::Delay(Duration::from_secs(1))
                .response()
                .is_none()
        );
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
}
