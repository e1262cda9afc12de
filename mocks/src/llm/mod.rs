//! The LLM stub: the LLM APIs pipelines call, scripted by rules.
//!
//! ```text
//! request ─▶ route.rs (provider, endpoint, API) ─▶ dialect: parse into the neutral view
//!   (ChatRequest: model, messages, tools, stream) ─▶ engine.rs: agent recognised, quota
//!   (quota.rs), faults, first matching rule ─▶ neutral Completion or ApiError ─▶ dialect:
//!   whole body, stream events or error body ─▶ wire.rs: shaped by stream and ending
//!   faults ─▶ journal
//! ```
//!
//! It serves, for the primary provider at the root and for any other provider `NAME`
//! under `/NAME` (paths in `route.rs`):
//!
//! - LLM calls in each API's dialect (`dialect/`): OpenAI Chat Completions (also on Azure
//!   OpenAI's deployments path), OpenAI Responses, Anthropic Messages and Gemini. The
//!   request's agent is recognised ([`AgentRecognition`](crate::AgentRecognition)) from a
//!   header or the system prompt wherever the API puts it, the quotas ([`RateLimit`]) and
//!   fault rules ([`LlmFaultRule`]) are consulted first, then the first [`LlmRule`] whose
//!   conditions all hold answers with the next reply of its sequence, whole or streamed as
//!   the request asked. A body the API would refuse gets a 400.
//! - Embeddings (`embeddings.rs`): deterministic vectors, or a rule's pinned one.
//! - `GET …/models`: the distinct `when.model`s of the rules for that provider, or
//!   `stub-model` when none names one; `GET …/models/{id}`: one of them.
//!
//! Anything else, and any completion request no rule matches, gets a 404 with an
//! OpenAI-style error whose `code` is `harness_no_matching_rule` (or
//! `harness_unknown_endpoint`), so a pipeline cannot mistake it for success, and the
//! journal records which rule came closest and why it failed.
//!
//! Faults: every fault rule whose filter matches a request counts it (see
//! [`chaos::FaultState::decide_at`]; stream faults count streamed requests only, and a
//! windowed schedule only requests inside its window, timed from the stub's start). Of
//! those that fire, delays add up (random ones drawn per request from the seeded state),
//! and of every other [`chaos::FaultStage`] the first applies: a replacing fault replaces
//! the reply (the rule's sequence does not advance, so a retried call gets the reply the
//! faulted one would have), a pace and a stall shape a streamed reply, and an ending fault
//! ends the response early. Faults apply to LLM and embeddings calls, rendered in their
//! API's dialect. What each does on the wire is documented on [`chaos::HttpFault`]; the
//! journal records each fault injected (`chaos[2]: reset after 120 bytes`) and how the
//! response ended (`served`).

mod dialect;
mod embeddings;
pub(crate) mod engine;
mod openai;
mod quota;
mod reply;
mod request;
mod route;
mod rules;
mod sse;
mod tokens;
mod wire;

use std::sync::Arc;
use std::time::Instant;

pub(crate) use openai::{MALFORMED_JSON_BODY, error_json};
pub use quota::RateLimit;
pub use reply::{LlmReply, LlmReplyBody, ToolCall};
pub use rules::{LlmFaultRule, LlmMatch, LlmRule};

use crate::errors::StubError;
use crate::journal::{Counters, Exchange, Journal, StubOptions};
use crate::latency::StubLatencies;
use crate::recognise::AgentRecognition;
use crate::serve::Server;
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
    /// Seeds the fault schedules' RNG and the derived embedding vectors: the scenario seed.
    pub seed: u64,
    /// Stateful quotas (requests and tokens per window), checked before faults and rules.
    /// By default, none.
    pub rate_limits: Vec<RateLimit>,
}

/// A running LLM stub: an HTTP/1.1 server on `127.0.0.1`, on a free port, on a thread of
/// its own. Stops when dropped: it stops accepting at once, closes idle connections, ends
/// hung requests, and lets responses in flight finish for a few seconds.
pub struct LlmStub {
    server: Server,
    journal: Arc<Journal>,
}

impl LlmStub {
    /// Checks the configuration and starts the stub with the default [`StubOptions`] (a
    /// journal of the last [`DEFAULT_JOURNAL_LIMIT`](crate::DEFAULT_JOURNAL_LIMIT)
    /// exchanges).
    pub async fn start(config: LlmStubConfig) -> Result<LlmStub, StubError> {
        Self::start_with(config, StubOptions::default()).await
    }

    /// Checks the configuration and starts the stub. The server runs on threads of its
    /// own ([`StubOptions::threads`]), so it needs no particular runtime from the caller,
    /// and answers even while the caller's runtime is blocked.
    pub async fn start_with(
        config: LlmStubConfig,
        options: StubOptions,
    ) -> Result<LlmStub, StubError> {
        validate(&config)?;
        let journal = Journal::for_stub(
            options.journal_limit,
            config.rules.iter().map(|rule| &rule.id),
            config.faults.iter().map(|fault| &fault.rule.id),
        );
        let engine = LlmEngine::new(config, journal.clone());
        let server = Server::start("llm", Arc::new(engine), options.threads)?;
        Ok(LlmStub { server, journal })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn uri(&self) -> String {
        format!("http://{}", self.server.addr())
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

    /// The requests received so far, in order: all of them, or the most recent
    /// [`StubOptions::journal_limit`] when more came ([`LlmStub::counters`] counts them all).
    pub fn journal(&self) -> Vec<Exchange> {
        self.journal.snapshot()
    }

    /// Exact counts of everything received so far, however long the journal is.
    pub fn counters(&self) -> Counters {
        self.journal.counters()
    }

    /// The latency histograms of everything served so far (microseconds; what is measured
    /// is documented on [`StubLatencies`]), however long the journal is.
    pub fn latencies(&self) -> StubLatencies {
        self.journal.latencies()
    }

    /// Waits until `done` holds for the journal, checking it now and after every change (a
    /// request journaled, a hung request's client giving up); returns that journal. For
    /// events the stub learns after answering, such as a client giving up on a hang. It
    /// waits for ever if `done` never holds: put a timeout around it.
    pub async fn wait_for_journal(&self, done: impl FnMut(&[Exchange]) -> bool) -> Vec<Exchange> {
        self.journal.wait_for(done).await
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

pub(crate) fn validate(config: &LlmStubConfig) -> Result<(), StubError> {
    config.agents.validate()?;
    let whens = config
        .rules
        .iter()
        .map(|rule| (&rule.id, &rule.when))
        .chain(
            config
                .faults
                .iter()
                .map(|fault| (&fault.rule.id, &fault.when)),
        );
    for (id, when) in whens {
        if let Some(api) = &when.api
            && !dialect::API_NAMES.contains(&api.as_str())
        {
            return Err(StubError::UnknownApi {
                rule: id.clone(),
                api: api.clone(),
                known: dialect::API_NAMES.join("`, `"),
            });
        }
    }
    for (index, limit) in config.rate_limits.iter().enumerate() {
        if limit.per.is_zero() || (limit.requests.is_none() && limit.tokens.is_none()) {
            return Err(StubError::InvalidRateLimit { index: index + 1 });
        }
    }
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
