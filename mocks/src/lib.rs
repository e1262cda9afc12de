//! LLM stubs and fake executors for agent-harness: real HTTP servers on loopback that a
//! pipeline's own client code (the official SDKs, retries, timeouts, parsing) talks to.
//!
//! - [`LlmStub`] is an OpenAI-compatible chat-completions server scripted by [`LlmRule`]s
//!   (first match wins; the nth matching call gets the nth reply, the last repeats) and
//!   disturbed by [`LlmFaultRule`]s (the `chaos` crate's faults and schedules). One stub
//!   serves the primary provider under `/v1` and any other provider `NAME` under
//!   `/NAME/v1` ([`LlmStub::base_url`]).
//! - [`ExecutorStub`] is a fake executor (a sandbox, Blender, a test runner) answering
//!   `POST`s with scripted outcomes ([`ExecRule`]).
//! - Both keep a journal ([`Exchange`]): every request received, in order, with the rule
//!   and reply or fault that answered it, or, for a request nothing matched, a description
//!   of it and the rule that came closest ([`Unmatched`]). Unmatched requests get a 404
//!   that no client mistakes for success.
//!
//! Each stub is built from a plain config struct and started on `127.0.0.1` on a free port;
//! it stops when dropped. A scenario starts its own stubs, so scenarios run in parallel
//! without seeing each other's traffic.
//!
//! ```
//! use mocks::{AgentRecognition, LlmMatch, LlmReply, LlmRule, LlmStub, LlmStubConfig};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stub = LlmStub::start(LlmStubConfig {
//!     rules: vec![LlmRule {
//!         id: "llm[1]".into(),
//!         when: LlmMatch { agent: Some("critic".into()), ..Default::default() },
//!         replies: vec![
//!             LlmReply::json(json!({"overall_score": 5.0, "needs_refinement": true})),
//!             LlmReply::json(json!({"overall_score": 8.5, "needs_refinement": false})),
//!         ],
//!     }],
//!     agents: AgentRecognition::new(Some("X-Agent-Role"), None),
//!     ..Default::default()
//! })
//! .await?;
//!
//! // hand `stub.base_url("primary")` to the pipeline as OPENAI_BASE_URL; here, a plain client:
//! let completion: serde_json::Value = reqwest::Client::new()
//!     .post(format!("{}/chat/completions", stub.base_url("primary")))
//!     .header("X-Agent-Role", "critic")
//!     .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Rate the sword"}]}))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(completion["choices"][0]["message"]["content"], r#"{"needs_refinement":true,"overall_score":5.0}"#);
//!
//! let journal = stub.journal();
//! assert_eq!(journal[0].agent.as_deref(), Some("critic"));
//! assert_eq!(journal[0].rule.as_deref(), Some("llm[1] reply 1/2"));
//! # Ok(())
//! # }
//! ```
//!
//! # What the responses look like
//!
//! Completions are `chat.completion` objects as OpenAI sends them (ids `chatcmpl-…` and
//! `call_…` from a per-stub counter, `model` echoing the request). `usage` is a documented
//! estimate, not a tokenizer: `tokens(text) = ceil(chars / 4)`;
//! `prompt_tokens = Σ over messages (tokens(content) + 4) + 2`; `completion_tokens =
//! tokens(content)`, or the sum of `tokens(arguments)` over tool calls. Errors, scripted or
//! injected, have OpenAI's shape `{"error": {"message", "type", "param", "code"}}` and a
//! `Retry-After` in whole seconds when set (see [`chaos::ApiError`]).
//!
//! # Streaming, and what wiremock can and cannot do
//!
//! The stubs run on wiremock, with one catch-all mock whose responder is our rule engine.
//! Two consequences, by design:
//!
//! - **A stream is sent as one complete body.** wiremock sends a response body whole, so a
//!   `"stream": true` request gets a correctly framed `text/event-stream` body (role chunk,
//!   content chunks, finish chunk, the usage chunk when `stream_options.include_usage` is
//!   set, `data: [DONE]`) in one response. Clients still parse it incrementally, event by
//!   event, exactly as they parse OpenAI's; what cannot be tested this way is per-chunk
//!   timing (time between tokens, a stream that stalls or is cut mid-way). Those faults
//!   need a server that writes chunk by chunk, which is the chaos layer's concern (a TCP
//!   fault proxy), not the stubs'.
//! - **Our journal is the source of truth.** wiremock's request recording is disabled, and
//!   [`LlmStub::journal`] / [`ExecutorStub::journal`] are what a scenario asserts on. Note
//!   that wiremock still keeps every request its mock matched (bodies included) for its
//!   own verification, for the life of the stub: memory grows with traffic, which matters
//!   only for very long load runs against one stub.

mod errors;
mod executor;
mod journal;
mod llm;
mod recognise;
mod sequence;
mod server;

pub use errors::StubError;
pub use executor::{
    DEFAULT_EXECUTE_PATH, ExecMatch, ExecReply, ExecReplyBody, ExecRule, ExecutorStub,
    ExecutorStubConfig,
};
pub use journal::{Exchange, Unmatched};
pub use llm::{
    LlmFaultRule, LlmMatch, LlmReply, LlmReplyBody, LlmRule, LlmStub, LlmStubConfig, ToolCall,
};
pub use recognise::AgentRecognition;
