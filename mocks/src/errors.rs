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
}
