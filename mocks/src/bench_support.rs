//! Not part of the API: hooks for the criterion benches in `benches/` to time the LLM
//! stub's request handling without a socket. Each runs the code the stub's server runs
//! for a request; nothing here is used by the stubs themselves.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, Method};

use crate::errors::StubError;
use crate::journal::{Journal, StubOptions};
use crate::llm::LlmStubConfig;
use crate::llm::engine::LlmEngine;
use crate::serve::{Handler, Request};

/// The LLM stub's handler (route, faults, rules, rendering, journal), without a server.
pub struct LlmHandler {
    engine: LlmEngine,
}

impl LlmHandler {
    /// Checks `config` as [`LlmStub::start`](crate::LlmStub::start) does; the journal keeps
    /// `options.journal_limit` exchanges.
    pub fn new(config: LlmStubConfig, options: StubOptions) -> Result<LlmHandler, StubError> {
        crate::llm::validate(&config)?;
        let journal = Arc::new(Journal::new(
            options.journal_limit,
            config.rules.iter().map(|rule| rule.id.clone()).collect(),
            config.faults.iter().map(|f| f.rule.id.clone()).collect(),
        ));
        Ok(LlmHandler {
            engine: LlmEngine::new(config, journal),
        })
    }

    /// The rule that answers a chat completion with these headers and body for the primary
    /// provider, decided as the stub decides it (the body read, the agent recognised, the
    /// rules tried in order, first match wins); `None` when none matches or the body is not
    /// a chat-completion request. Faults are not consulted.
    pub fn first_match(&self, headers: &HeaderMap, body: &[u8]) -> Option<usize> {
        self.engine.first_match(headers, body)
    }

    /// Handles one request as the stub's server does once it has read it, up to the
    /// response it would send (rendered, shaped and journaled); returns its status (0 for
    /// a hang or a reset).
    pub fn handle(&self, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> u16 {
        let reply = self.engine.handle(Request {
            method,
            path,
            headers,
            body,
            received: Instant::now(),
        });
        match reply.action {
            crate::serve::Action::Respond(response) => response.status,
            _ => 0,
        }
    }
}
