//! The LLM stub: an OpenAI-compatible chat-completions server scripted by rules.
//!
//! It serves, for the primary provider under `/v1` and for any other provider `NAME`
//! under `/NAME/v1`:
//!
//! - `POST …/chat/completions`: the request's agent is recognised
//!   ([`AgentRecognition`](crate::AgentRecognition)), fault rules are consulted first
//!   ([`LlmFaultRule`]), then the first [`LlmRule`] whose conditions all hold answers with
//!   the next reply of its sequence, as a `chat.completion` object or, when the request
//!   sets `"stream": true`, as `text/event-stream` chunks. A body that is not a JSON object
//!   with a string `model` and a `messages` array gets a 400, as from OpenAI.
//! - `GET …/models`: the distinct `when.model`s of the rules for that provider, or
//!   `stub-model` when none names one.
//!
//! Anything else, and any completion request no rule matches, gets a 404 with an
//! OpenAI-style error whose `code` is `harness_no_matching_rule` (or
//! `harness_unknown_endpoint`), so a pipeline cannot mistake it for success, and the
//! journal records which rule came closest and why it failed.
//!
//! Faults: every fault rule whose filter matches a request counts it (see
//! [`chaos::FaultState::decide`]); of those that fire, delays add up, and the first
//! replacing fault replaces the reply (the rule's sequence does not advance, so a retried
//! call gets the reply the faulted one would have). Faults apply to chat completions only.

mod engine;
mod openai;
mod reply;
mod request;
mod route;
mod rules;
mod sse;
mod tokens;

use std::sync::Arc;
use std::time::Instant;

use wiremock::MockServer;

pub use reply::{LlmReply, LlmReplyBody, ToolCall};
pub use rules::{LlmFaultRule, LlmMatch, LlmRule};

use crate::errors::StubError;
use crate::journal::{Exchange, Journal};
use crate::recognise::AgentRecognition;
use engine::LlmEngine;

/// Everything an [`LlmStub`] answers with. By default: no rules (every completion request
/// is unmatched), no faults, no agent recognition, seed 0.
#[derive(Debug, Clone, Default)]
pub struct LlmStubConfig {
    /// Scripted rules, first match wins.
    pub rules: Vec<LlmRule>,
    /// Faults, consulted before the rules.
    pub faults: Vec<LlmFaultRule>,
    /// How the agent behind a request is recognised.
    pub agents: AgentRecognition,
    /// Seeds the fault schedules' RNG: the scenario seed.
    pub seed: u64,
}

/// A running LLM stub: a wiremock server on `127.0.0.1`, on a free port. Stops when
/// dropped.
pub struct LlmStub {
    server: MockServer,
    journal: Arc<Journal>,
}

impl LlmStub {
    /// Checks the configuration and starts the stub. Call it within a Tokio runtime (the
    /// server runs on a thread of its own and stops when the stub is dropped).
    pub async fn start(config: LlmStubConfig) -> Result<LlmStub, StubError> {
        validate(&config)?;
        let journal = Arc::new(Journal::new());
        let engine = LlmEngine::new(config, journal.clone());
        let server = crate::server::start("llm", engine).await?;
        Ok(LlmStub { server, journal })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The base URL an OpenAI client of `provider` should use: `{uri}/v1` for `primary`,
    /// `{uri}/{provider}/v1` otherwise.
    pub fn base_url(&self, provider: &str) -> String {
        if provider == route::PRIMARY {
            format!("{}/v1", self.uri())
        } else {
            format!("{}/{provider}/v1", self.uri())
        }
    }

    /// Every request received so far, in order.
    pub fn journal(&self) -> Vec<Exchange> {
        self.journal.snapshot()
    }

    /// When the stub started: [`Exchange::at`] counts from here.
    pub fn started_at(&self) -> Instant {
        self.journal.started()
    }
}

impl std::fmt::Debug for LlmStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmStub")
            .field("uri", &self.uri())
            .finish_non_exhaustive()
    }
}

fn validate(config: &LlmStubConfig) -> Result<(), StubError> {
    config.agents.validate()?;
    for rule in &config.rules {
        if rule.replies.is_empty() {
            return Err(StubError::NoReplies {
                rule: rule.id.clone(),
            });
        }
        for reply in &rule.replies {
            if let LlmReplyBody::Error { status, .. } = reply.body
                && !(100..=599).contains(&status)
            {
                return Err(StubError::InvalidStatus {
                    rule: rule.id.clone(),
                    status,
                });
            }
        }
    }
    for fault in &config.faults {
        fault
            .rule
            .validate()
            .map_err(|source| StubError::Fault { source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(replies: Vec<LlmReply>) -> LlmRule {
        LlmRule {
            id: "llm[1]".into(),
            when: LlmMatch::default(),
            replies,
        }
    }

    #[test]
    fn validate_rejects_what_could_only_answer_wrongly() {
        let config = |rules| LlmStubConfig {
            rules,
            ..Default::default()
        };
        assert_eq!(
            validate(&config(vec![rule(vec![])]))
                .unwrap_err()
                .to_string(),
            "rule `llm[1]` has no replies (hint: give it at least one)"
        );
        assert!(matches!(
            validate(&config(vec![rule(vec![LlmReply::error(42, "x")])])),
            Err(StubError::InvalidStatus { status: 42, .. })
        ));
        assert!(validate(&config(vec![rule(vec![LlmReply::text("ok")])])).is_ok());
        let bad_fault = LlmStubConfig {
            faults: vec![LlmFaultRule {
                when: LlmMatch::default(),
                rule: chaos::FaultRule {
                    id: "chaos[1]".into(),
                    fault: chaos::HttpFault::EmptyBody,
                    schedule: chaos::Schedule::EveryNth(0),
                },
            }],
            ..Default::default()
        };
        assert!(matches!(validate(&bad_fault), Err(StubError::Fault { .. })));
    }
}
