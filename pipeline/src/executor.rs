//! The executor client: `POST {EXECUTOR_URL}/execute`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use crate::config::{Config, Mode};
use crate::errors::{AttemptError, CallError};
use crate::http;
use crate::progress::Progress;
use crate::retry::{Jitter, RetryPolicy, with_retries};

/// What the executor reports, as it appears in the result document. Every field but
/// `success` may be missing or `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Execution {
    pub(crate) success: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) artifacts: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) logs: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) errors: Vec<String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Sends code to the executor, retrying as the LLM client does (without a breaker); in
/// fragile mode, once.
pub(crate) struct ExecutorClient {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
    retry: RetryPolicy,
}

impl ExecutorClient {
    pub(crate) fn new(config: &Config, http: reqwest::Client) -> Self {
        Self {
            http,
            url: format!("{}/execute", config.executor_url),
            timeout: config.executor_timeout,
            retry: RetryPolicy {
                max_retries: match config.mode {
                    Mode::Resilient => config.retry.max_retries,
                    Mode::Fragile => 0,
                },
                ..config.retry
            },
        }
    }

    /// Executes `code`; `attempt` numbers the executions of one run, from 1.
    pub(crate) async fn execute(
        &self,
        language: &str,
        code: &str,
        attempt: u32,
        jitter: &Jitter,
        log: &Progress,
    ) -> Result<Execution, CallError> {
        let body = json!({"language": language, "code": code, "attempt": attempt});
        with_retries("executor", &self.retry, jitter, None, log, |number| {
            log.say(format_args!("calling {} (attempt {number})", self.url));
            self.post(&body)
        })
        .await
    }

    async fn post(&self, body: &serde_json::Value) -> Result<Execution, AttemptError> {
        let url = &self.url;
        http::with_timeout(url, self.timeout, async {
            let response = self
                .http
                .post(url)
                .json(body)
                .send()
                .await
                .map_err(|source| http::transport(url, source))?;
            if !response.status().is_success() {
                return Err(http::status_error(url, response).await);
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|source| http::transport(url, source))?;
            serde_json::from_slice(&bytes).map_err(|source| AttemptError::BadBody {
                url: url.clone(),
                source,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_null_fields_default() {
        let e: Execution = serde_json::from_str(r#"{"success": true, "logs": null}"#).unwrap();
        assert_eq!(
            e,
            Execution {
                success: true,
                artifacts: vec![],
                logs: String::new(),
                errors: vec![],
            }
        );
        assert!(serde_json::from_str::<Execution>(r#"{"artifacts": []}"#).is_err());
    }
}
