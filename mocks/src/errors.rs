//! Errors of the `mocks` crate.

use thiserror::Error;

/// A stub could not be started: its configuration is invalid, or no loopback port could be
/// bound.
///
/// Returned by [`LlmStub::start`](crate::LlmStub::start) and
/// [`ExecutorStub::start`](crate::ExecutorStub::start). Configuration is checked before
/// anything is bound, so a bad rule never becomes a stub that answers wrongly.
#[derive(Debug, Error)]
pub enum StubError {
    /// Binding `127.0.0.1:0` (or reading the bound address) failed.
    #[error("failed to bind a loopback port for the `{stub}` stub")]
    Bind {
        /// `llm` or `executor.NAME`.
        stub: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The stub's server thread (or its runtime) could not be started.
    #[error("failed to start the server thread of the `{stub}` stub")]
    Spawn {
        /// `llm`.
        stub: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A fault that needs the socket (truncated, reset, stream faults) armed on a stub whose
    /// server sends responses whole (the executor stubs, on wiremock).
    #[error(
        "fault rule `{rule}` (`{fault}`) cannot be injected by the `{stub}` stub: it runs on wiremock, which sends a response whole and never touches the socket (hint: arm it on the LLM stub, or put a chaos TCP proxy with a `reset_peer`, `limit_data` or `timeout` toxic in front of the executor)"
    )]
    UnsupportedFault {
        /// `executor.NAME`.
        stub: String,
        /// The fault rule's id.
        rule: String,
        /// The fault, as journals show it.
        fault: String,
    },
    /// A rule has no replies, so a matching call would have nothing to answer.
    #[error("rule `{rule}` has no replies (hint: give it at least one)")]
    NoReplies {
        /// The rule's id, e.g. `llm[2]`.
        rule: String,
    },
    /// A reply's status is not an HTTP status.
    #[error(
        "rule `{rule}` replies with status `{status}`, which is not an HTTP status (hint: use 100 to 599)"
    )]
    InvalidStatus {
        /// The rule's id.
        rule: String,
        /// The offending status.
        status: u16,
    },
    /// A fault rule cannot be armed.
    #[error("invalid fault rule")]
    Fault {
        /// What is wrong with it.
        #[source]
        source: chaos::FaultRuleError,
    },
    /// The agent recognition header is not a valid HTTP header name.
    #[error("`{header}` is not a valid HTTP header name for agent recognition")]
    InvalidAgentHeader {
        /// The configured header name.
        header: String,
    },
    /// `when.api` names no API the stub serves.
    #[error(
        "rule `{rule}` has `when.api = \"{api}\"`, which is not an API the LLM stub serves (hint: use one of `{known}`)"
    )]
    UnknownApi {
        /// The rule's id.
        rule: String,
        /// The name given.
        api: String,
        /// The names the stub knows, joined.
        known: String,
    },
    /// A rate limit with a zero window or no limit at all.
    #[error(
        "rate limit {index} limits nothing (hint: give it `requests` or `tokens`, and a `per` window above zero)"
    )]
    InvalidRateLimit {
        /// 1-based position among the stub's rate limits.
        index: usize,
    },
}
