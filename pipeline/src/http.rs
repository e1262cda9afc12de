//! HTTP plumbing shared by the LLM and executor clients.

use std::future::Future;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use serde_json::Value;

use crate::errors::{AttemptError, ConfigError};
use crate::retry::parse_retry_after;

/// The one HTTP client of the process. Plain HTTP; proxies come from the usual
/// `HTTP_PROXY`/`NO_PROXY` variables.
pub(crate) fn client() -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .user_agent(concat!("refpipe/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ConfigError::HttpClient)
}

/// Runs one exchange with `url`, bounded by `timeout` from connect to the last byte.
pub(crate) async fn with_timeout<T>(
    url: &str,
    timeout: Duration,
    exchange: impl Future<Output = Result<T, AttemptError>>,
) -> Result<T, AttemptError> {
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(AttemptError::Timeout {
                url: url.to_owned(),
                timeout,
            })
        })
}

pub(crate) fn transport(url: &str, source: reqwest::Error) -> AttemptError {
    AttemptError::Transport {
        url: url.to_owned(),
        source,
    }
}

/// The error for a non-2xx `response`, with its body's message and `Retry-After`.
pub(crate) async fn status_error(url: &str, response: reqwest::Response) -> AttemptError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.text().await.unwrap_or_default();
    AttemptError::Status {
        url: url.to_owned(),
        status,
        message: error_message(&body),
        retry_after,
    }
}

/// The message of an error body: OpenAI's `error.message` (or a string `error`), else the
/// body itself, shortened.
pub(crate) fn error_message(body: &str) -> String {
    const LIMIT: usize = 500;
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let error = v.get("error")?;
        error
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| error.as_str())
            .map(str::to_owned)
    });
    let message = from_json.unwrap_or_else(|| body.trim().to_owned());
    if message.is_empty() {
        return "(empty body)".to_owned();
    }
    match message.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(
                r#"{"error":{"message":"no stub rule matches","type":"invalid_request_error"}}"#
            ),
            "no stub rule matches"
        );
        assert_eq!(error_message(r#"{"error":"rate limited"}"#), "rate limited");
        assert_eq!(error_message("  upstream down \n"), "upstream down");
        assert_eq!(error_message(""), "(empty body)");
        assert_eq!(error_message(&"x".repeat(600)).chars().count(), 501);
    }
}
