//! OpenAI-style error responses: the body and headers an OpenAI-compatible API sends
//! with a 4xx or 5xx.
//!
//! Status faults use it, and so do the stubs for scripted errors and unmatched requests,
//! so that every error a pipeline sees from the harness has one shape:
//!
//! ```json
//! {"error": {"message": "…", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}
//! ```
//!
//! `type` and `code` default by status, as OpenAI sends them (see [`default_error_type`] and
//! [`default_error_code`]); `Retry-After` is sent in whole seconds, rounded up.

use std::time::Duration;

use serde_json::{Value, json};

/// One OpenAI-style error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.message`.
    pub message: String,
    /// `error.type`; `None` means [`default_error_type`] of the status.
    pub error_type: Option<String>,
    /// `error.code`; `None` means [`default_error_code`] of the status.
    pub code: Option<String>,
    /// Sent as a `Retry-After` header in whole seconds, rounded up.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with the given status and message, default type and code, no `Retry-After`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            error_type: None,
            code: None,
            retry_after: None,
        }
    }

    /// `error.type` as sent.
    pub fn error_type(&self) -> &str {
        self.error_type
            .as_deref()
            .unwrap_or_else(|| default_error_type(self.status))
    }

    /// `error.code` as sent.
    pub fn code(&self) -> Option<&str> {
        self.code
            .as_deref()
            .or_else(|| default_error_code(self.status))
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.error_type(),
                "param": null,
                "code": self.code(),
            }
        })
    }

    /// The value of the `Retry-After` header, if any: whole seconds, rounded up.
    pub fn retry_after_header(&self) -> Option<String> {
        self.retry_after
            .map(|after| retry_after_secs(after).to_string())
    }
}

/// `error.type` as OpenAI sends it for a status: `requests` for 429, `server_error` for 5xx,
/// `invalid_request_error` otherwise.
pub fn default_error_type(status: u16) -> &'static str {
    match status {
        429 => "requests",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

/// `error.code` as OpenAI sends it for a status: `rate_limit_exceeded` for 429,
/// `invalid_api_key` for 401, none otherwise.
pub fn default_error_code(status: u16) -> Option<&'static str> {
    match status {
        401 => Some("invalid_api_key"),
        429 => Some("rate_limit_exceeded"),
        _ => None,
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
    fn defaults_follow_openai() {
        let error = ApiError::new(429, "slow down");
        assert_eq!(
            error.body(),
            json!({"error": {"message": "slow down", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
        );
        assert_eq!(ApiError::new(503, "x").error_type(), "server_error");
        assert_eq!(ApiError::new(503, "x").code(), None);
        assert_eq!(
            ApiError::new(400, "x").error_type(),
            "invalid_request_error"
        );
    }

    #[test]
    fn explicit_type_and_code_win() {
        let error = ApiError {
            error_type: Some("tokens".into()),
            code: Some("quota".into()),
            ..ApiError::new(429, "m")
        };
        assert_eq!(error.body()["error"]["type"], "tokens");
        assert_eq!(error.body()["error"]["code"], "quota");
    }

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
    }
}
