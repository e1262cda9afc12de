//! A neutral API error: what a stub answers with instead of a reply, before it is written
//! in the shape of the API the request was for.
//!
//! Status faults ([`HttpFault::api_error`](crate::HttpFault::api_error)) and the stubs'
//! scripted errors are this, so every error a pipeline sees from the harness is written
//! once and rendered per API by the stub (OpenAI's `{"error": {"message", "type", "param",
//! "code"}}`, Anthropic's `{"type": "error", "error": {"type", "message"}}`, Gemini's
//! `{"error": {"code", "message", "status"}}`). The wait, when there is one, goes out as
//! `Retry-After` in whole seconds, rounded up ([`ApiError::retry_after_header`]).

use std::time::Duration;

/// One error response, independent of any API's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The message.
    pub message: String,
    /// The API's error type (OpenAI's `error.type`, Anthropic's `error.type`, Gemini's
    /// `error.status`); `None`: the API's own for the status.
    pub error_type: Option<String>,
    /// OpenAI's `error.code`; `None`: OpenAI's own for the status.
    pub code: Option<String>,
    /// How long the client should wait before retrying.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with the given status and message, default type and code, no wait.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            error_type: None,
            code: None,
            retry_after: None,
        }
    }

    /// The value of the `Retry-After` header, if any: whole seconds, rounded up.
    pub fn retry_after_header(&self) -> Option<String> {
        self.retry_after
            .map(|after| retry_after_secs(after).to_string())
    }
}

/// A duration in whole seconds, rounded up, as a `Retry-After` header carries it.
pub fn retry_after_secs(after: Duration) -> u64 {
    after.as_secs() + u64::from(after.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 0);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        let error = ApiError {
            retry_after: Some(Duration::from_millis(200)),
            ..ApiError::new(429, "m")
        };
        assert_eq!(error.retry_after_header().as_deref(), Some("1"));
        assert_eq!(ApiError::new(503, "x").retry_after_header(), None);
    }
}
