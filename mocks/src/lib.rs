//! LLM stubs and fake executors for agent-harness: real HTTP servers on loopback that a
//! pipeline's own client code (the official SDKs, retries, timeouts, parsing) talks to.
//!
//! - [`LlmStub`] is an LLM API server scripted by [`LlmRule`]s (first match wins; the nth
//!   matching call gets the nth reply, the last repeats), disturbed by [`LlmFaultRule`]s
//!   (the `chaos` crate's faults and schedules) and limited by [`RateLimit`] quotas. It
//!   speaks OpenAI Chat Completions (and Azure OpenAI's paths), OpenAI Responses,
//!   Anthropic Messages, Gemini and OpenAI embeddings: one provider-neutral rule engine,
//!   one dialect per API. One stub serves the primary provider under `/v1` and any other
//!   provider `NAME` under `/NAME/v1` ([`LlmStub::base_url`]).
//! - [`ExecutorStub`] is a fake executor (a sandbox, Blender, a test runner) answering
//!   `POST`s with scripted outcomes ([`ExecRule`]).
//! - Both keep a journal ([`Exchange`]): every request received, in order, with the rule
//!   and reply or fault that answered it, or, for a request nothing matched, a description
//!   of it and the rule that came closest ([`Unmatched`]). Unmatched requests get a 404
//!   that no client mistakes for success. The journal is a ring of the last
//!   [`StubOptions::journal_limit`] exchanges ([`DEFAULT_JOURNAL_LIMIT`] by default), and
//!   [`Counters`] count every request, per agent, per rule and per fault, exactly.
//! - Both time what they serve, at the stub ([`StubLatencies`] says what is measured): each
//!   [`Exchange`] carries its service time (and, for streams, time to first token and the
//!   gaps between tokens), and HDR histograms ([`LlmStub::latencies`],
//!   [`ExecutorStub::latencies`]) keep the exact distributions over the stub's whole life
//!   in fixed memory.
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
//! Chat completions are `chat.completion` objects as OpenAI sends them (ids `chatcmpl-…`
//! and `call_…` from a per-stub counter, `model` echoing the request); the other APIs'
//! replies are in their own shapes (the README's "Wire APIs" table says what each rule
//! becomes on each wire). `usage` is a documented estimate, not a tokenizer:
//! `tokens(text) = ceil(chars / 4)`; `prompt_tokens = Σ over messages (tokens(content) +
//! 4) + 2`; `completion_tokens = tokens(content)`, or the sum of `tokens(arguments)` over
//! tool calls. Errors, scripted or injected, are neutral ([`chaos::ApiError`]) and rendered
//! in the request's API (OpenAI's `{"error": {"message", "type", "param", "code"}}`,
//! Anthropic's `overloaded_error`, Gemini's `RESOURCE_EXHAUSTED`, …), with `retry-after`
//! in whole seconds and `retry-after-ms` when they carry a wait. Every response has a
//! request id (`x-request-id`; Anthropic's `request-id` too).
//!
//! # Streaming, and why the LLM stub is not on wiremock
//!
//! The LLM stub runs on a server of its own (hyper 1, HTTP/1.1 with keep-alive, one task
//! per connection, on threads of its own: one accept loop per core, see
//! [`StubOptions::threads`]). It was on wiremock, and wiremock could not do
//! two things it must:
//!
//! - **Faults on the wire.** wiremock sends a `ResponseTemplate` body whole, after an
//!   optional delay, and never lets the responder near the socket. So it cannot send an
//!   SSE stream chunk by chunk at a token rate, stall between chunks, cut a stream in the
//!   middle of an event, send fewer bytes than its `Content-Length`, reset the connection
//!   before or during a response, or keep a request unanswered and see when the client
//!   gives up. The LLM stub's server writes every body as frames, each flushed when its
//!   time comes, and holds each connection's socket, so it can close it (FIN) or reset it
//!   (`SO_LINGER` 0, RST) after exactly the bytes a fault says. A `"stream": true` request
//!   gets its `text/event-stream` (role chunk, content chunks, finish chunk, the usage
//!   chunk when `stream_options.include_usage` is set, `data: [DONE]`) as chunked
//!   transfer, event by event, as OpenAI sends it; unfaulted, the events go out at once.
//! - **Flat memory under load.** wiremock keeps every request a mock matched, bodies
//!   included, for its own verification, whether its request recording is on or off: a
//!   million requests against one stub are a million requests in memory. The LLM stub
//!   keeps only its bounded journal and fixed-size [`Counters`].
//!
//! wiremock still serves the [`ExecutorStub`]s: their faults are scripted outcomes,
//! statuses, malformed or empty bodies and delays, which a whole response after a delay
//! expresses honestly. There a hang is a very long delay ([`EXECUTOR_HANG`]), faults that
//! need the socket are refused when the stub starts ([`StubError::UnsupportedFault`]), and
//! wiremock's own retention of requests means an executor stub's memory grows with its
//! traffic (its [`journal`](ExecutorStub::journal) is bounded like the LLM stub's).
//!
//! Both stubs' journals are the source of truth: [`LlmStub::journal`] /
//! [`ExecutorStub::journal`] and the counters are what a scenario asserts on.

#[doc(hidden)]
pub mod bench_support;
mod errors;
mod executor;
mod journal;
mod latency;
mod llm;
mod recognise;
mod sequence;
mod serve;
mod server;

pub use errors::StubError;
pub use executor::{
    DEFAULT_EXECUTE_PATH, EXECUTOR_HANG, ExecFaultRule, ExecMatch, ExecReply, ExecReplyBody,
    ExecRule, ExecutorStub, ExecutorStubConfig,
};
pub use journal::{
    Counters, DEFAULT_JOURNAL_LIMIT, DEFAULT_MAX_THREADS, Exchange, MAX_COUNTED_AGENTS,
    StubOptions, Unmatched,
};
pub use latency::{OTHER_AGENTS, StubLatencies, UNRECOGNISED_AGENT, latency_histogram};
pub use llm::{
    LlmFaultRule, LlmMatch, LlmReply, LlmReplyBody, LlmRule, LlmStub, LlmStubConfig, RateLimit,
    ToolCall,
};
pub use recognise::AgentRecognition;
