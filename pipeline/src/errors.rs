//! Every error refpipe can report, one type per operation.
//!
//! Messages are lowercase and name values in backticks; a cause sits in `#[source]` and is
//! rendered with [`chain`] where the whole story is needed (the result document, stderr).

use std::error::Error;
use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use thiserror::Error;

use crate::agents::Role;

/// A missing or invalid environment variable (exit code 3, `error.kind` `config`).
#[derive(Debug, Error)]
pub(crate) enum ConfigError {
    #[error("environment variable `{var}` is not set (hint: {hint})")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    #[error("environment variable `{var}` has invalid value `{value}`: {reason}")]
    Invalid {
        var: &'static str,
        /// The offending value, or `<redacted>` for secrets.
        value: String,
        reason: String,
    },
    #[error("cannot build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

/// A run request that cannot be run (exit code 2, `error.kind` `validation`).
#[derive(Debug, Error)]
pub(crate) enum RequestError {
    #[error("cannot read the request")]
    Read(#[source] std::io::Error),
    #[error("the request is not valid JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("the request does not have the expected shape (hint: send {{\"prompt\": \"…\"}})")]
    Shape(#[source] serde_json::Error),
    #[error("`prompt` is empty")]
    EmptyPrompt,
    #[error(
        "`prompt` is {chars} characters long, more than the limit of {limit} \
         (hint: shorten it or raise `REFPIPE_MAX_PROMPT_CHARS`)"
    )]
    PromptTooLong { chars: usize, limit: usize },
    #[error("`language` is empty")]
    EmptyLanguage,
}

/// One failed HTTP attempt, to an LLM provider or to the executor.
#[derive(Debug, Error)]
pub(crate) enum AttemptError {
    #[error("HTTP {status} from `{url}`: {message}")]
    Status {
        url: String,
        status: StatusCode,
        /// The OpenAI-style `error.message` of the body, else the body itself (shortened).
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("request to `{url}` failed")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("no complete response from `{url}` within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("stream from `{url}` ended before `data: [DONE]`")]
    Truncated { url: String },
    #[error("stream from `{url}` carries an error: {message}")]
    StreamError { url: String, message: String },
    #[error("stream from `{url}` has a chunk that is not valid JSON")]
    BadChunk {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("response from `{url}` does not have the expected shape")]
    BadBody {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

impl AttemptError {
    /// Whether another attempt may succeed: 429, 5xx, connection errors, timeouts and
    /// broken streams are retried; other 4xx and unreadable bodies are not.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            Self::Transport { .. }
            | Self::Timeout { .. }
            | Self::Truncated { .. }
            | Self::StreamError { .. }
            | Self::BadChunk { .. } => true,
            Self::BadBody { .. } => false,
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A call to one target (an LLM provider or the executor) that failed for good.
#[derive(Debug, Error)]
pub(crate) enum CallError {
    #[error("{target} failed{}", after_attempts(*.attempts))]
    Failed {
        target: &'static str,
        attempts: u32,
        #[source]
        source: AttemptError,
    },
    #[error("{target} is not called: its circuit breaker is open")]
    BreakerOpen {
        target: &'static str,
        /// The failure of this call's previous attempt, if it had one.
        #[source]
        last: Option<AttemptError>,
    },
}

fn after_attempts(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

/// An agent that gave no usable answer.
#[derive(Debug, Error)]
pub(crate) enum AgentError {
    /// Every provider tried failed; one entry per provider, in the order tried.
    #[error("{role} agent's LLM call failed: {}", chain_all(.failures))]
    Llm {
        role: Role,
        failures: Vec<CallError>,
    },
    #[error("{role} agent's reply is malformed{}: {problem}", after_reask(.reasked))]
    Malformed {
        role: Role,
        problem: String,
        /// Whether the agent was asked once more (always, but in fragile mode).
        reasked: bool,
    },
}

fn after_reask(reasked: &bool) -> &'static str {
    if *reasked {
        ", also after one re-ask"
    } else {
        ""
    }
}

/// Why a run failed (exit code 1).
#[derive(Debug, Error)]
pub(crate) enum RunError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("the code could not be executed")]
    Executor(#[source] CallError),
    #[error(
        "execution attempt {attempts} failed and the refinement budget of {budget} is spent: {}",
        summary(.errors)
    )]
    ExecutionFailed {
        attempts: u32,
        budget: u32,
        errors: Vec<String>,
    },
    /// Fragile mode: the failed execution was not fed back to the coder.
    #[error("execution attempt {attempts} failed: {}", summary(.errors))]
    ExecutionNotRefined { attempts: u32, errors: Vec<String> },
    /// Fragile mode: `failure` is what the switched-off resilience (`missing`) would have
    /// handled. Rendered as the failure's whole chain, then `(fragile mode: <missing>)`.
    #[error("{} (fragile mode: {missing})", chain(.failure.as_ref()))]
    Fragile {
        failure: Box<RunError>,
        missing: String,
    },
}

impl RunError {
    /// `error.kind` in the result document.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Agent(AgentError::Llm { .. }) => "llm_error",
            Self::Agent(AgentError::Malformed { .. }) => "malformed_llm_output",
            Self::Executor(_) => "executor_error",
            Self::ExecutionFailed { .. } | Self::ExecutionNotRefined { .. } => "executor_failed",
            Self::Fragile { failure, .. } => failure.kind(),
        }
    }

    /// `error.agent` in the result document.
    pub(crate) fn agent(&self) -> &'static str {
        match self {
            Self::Agent(AgentError::Llm { role, .. } | AgentError::Malformed { role, .. }) => {
                role.as_str()
            }
            Self::Executor(_) | Self::ExecutionFailed { .. } | Self::ExecutionNotRefined { .. } => {
                "executor"
            }
            Self::Fragile { failure, .. } => failure.agent(),
        }
    }
}

fn summary(errors: &[String]) -> String {
    if errors.is_empty() {
        "the executor reported no errors".to_owned()
    } else {
        errors.join("; ")
    }
}

/// `refpipe serve` could not serve.
#[derive(Debug, Error)]
pub(crate) enum ServeError {
    #[error("cannot listen on `{addr}`")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
}

/// The state directory of `serve` cannot be used, or a run cannot be saved in it.
#[derive(Debug, Error)]
pub(crate) enum StoreError {
    #[error("cannot use `{}` as the state directory", .dir.display())]
    Open {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot save run `{id}` in `{}`", .dir.display())]
    Save {
        id: String,
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `error`, then each of its sources, joined by `: `.
pub(crate) fn chain(error: &dyn Error) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

fn chain_all(failures: &[CallError]) -> impl fmt::Display {
    failures
        .iter()
        .map(|f| chain(f))
        .collect::<Vec<_>>()
        .join("; then ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> AttemptError {
        AttemptError::Status {
            url: "http://x/v1/chat/completions".into(),
            status: StatusCode::from_u16(code).unwrap(),
            message: "nope".into(),
            retry_after: None,
        }
    }

    #[test]
    fn retryable_statuses() {
        for code in [429, 500, 502, 503, 504] {
            assert!(status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(!status(code).is_retryable(), "{code}");
        }
        let truncated = AttemptError::Truncated { url: "u".into() };
        assert!(truncated.is_retryable());
    }

    #[test]
    fn chain_renders_status_and_body_message() {
        let failure = CallError::Failed {
            target: "primary provider",
            attempts: 1,
            source: status(404),
        };
        let error = AgentError::Llm {
            role: Role::Planner,
            failures: vec![failure],
        };
        assert_eq!(
            chain(&error),
            "planner agent's LLM call failed: primary provider failed: \
             HTTP 404 Not Found from `http://x/v1/chat/completions`: nope"
        );
    }

    #[test]
    fn fragile_failures_name_what_was_switched_off() {
        let failure = RunError::Agent(AgentError::Llm {
            role: Role::Planner,
            failures: vec![CallError::Failed {
                target: "primary provider",
                attempts: 1,
                source: status(429),
            }],
        });
        let error = RunError::Fragile {
            failure: Box::new(failure),
            missing: "no retries".into(),
        };
        assert_eq!(
            chain(&error),
            "planner agent's LLM call failed: primary provider failed: \
             HTTP 429 Too Many Requests from `http://x/v1/chat/completions`: nope \
             (fragile mode: no retries)"
        );
        assert_eq!((error.kind(), error.agent()), ("llm_error", "planner"));

        let malformed = |reasked| {
            AgentError::Malformed {
                role: Role::Coder,
                problem: "content is not JSON".into(),
                reasked,
            }
            .to_string()
        };
        assert_eq!(
            malformed(true),
            "coder agent's reply is malformed, also after one re-ask: content is not JSON"
        );
        assert_eq!(
            malformed(false),
            "coder agent's reply is malformed: content is not JSON"
        );
        let not_refined = RunError::ExecutionNotRefined {
            attempts: 1,
            errors: vec!["NameError".into()],
        };
        assert_eq!(
            not_refined.to_string(),
            "execution attempt 1 failed: NameError"
        );
        assert_eq!(
            (not_refined.kind(), not_refined.agent()),
            ("executor_failed", "executor")
        );
    }

    #[test]
    fn chain_lists_every_provider_tried() {
        let failures = vec![
            CallError::Failed {
                target: "primary provider",
                attempts: 4,
                source: status(503),
            },
            CallError::BreakerOpen {
                target: "fallback provider",
                last: None,
            },
        ];
        let error = AgentError::Llm {
            role: Role::Critic,
            failures,
        };
        assert_eq!(
            error.to_string(),
            "critic agent's LLM call failed: primary provider failed after 4 attempts: \
             HTTP 503 Service Unavailable from `http://x/v1/chat/completions`: nope; \
             then fallback provider is not called: its circuit breaker is open"
        );
    }
}
