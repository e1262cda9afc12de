//! The OpenAI chat-completions client: providers, fallback, retries, streaming.
//!
//! [`LlmClient::complete`] sends one agent request to the primary provider with retries
//! behind its circuit breaker, then, if that fails for a retryable reason and a fallback is
//! configured, to the fallback provider the same way. In fragile mode there is one attempt
//! at the primary, without a breaker, and no fallback. Each HTTP attempt is counted in
//! [`LlmStats`] and every `usage` received is added to it.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::agents::{Message, Role};
use crate::config::{Config, Mode, ProviderConfig};
use crate::errors::{AttemptError, CallError, chain};
use crate::http;
use crate::output::{LlmStats, ProviderKind, Usage};
use crate::progress::Progress;
use crate::retry::{CircuitBreaker, Jitter, RetryPolicy, with_retries};
use crate::sse::{ChunkError, Event, SseLines, StreamAccumulator};

/// What the assistant said, before it is parsed as an agent payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// `message.content`.
    Content(String),
    /// The first of `message.tool_calls`.
    ToolCall { name: String, arguments: String },
    /// Neither content nor tool calls.
    Empty,
    /// A 2xx body that is not a chat completion; the text says why.
    Invalid(String),
}

impl Reply {
    /// The raw text an agent answered with, as it is echoed back in a re-ask.
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            Self::Content(text) => Some(text),
            Self::ToolCall { arguments, .. } => Some(arguments),
            Self::Empty | Self::Invalid(_) => None,
        }
    }
}

/// A successful response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Completion {
    pub(crate) reply: Reply,
    pub(crate) usage: Option<Usage>,
}

/// One agent request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChatRequest<'a> {
    pub(crate) role: Role,
    pub(crate) messages: &'a [Message],
    /// OpenAI `tools`, for agents that may answer with a tool call.
    pub(crate) tools: Option<&'a Value>,
    pub(crate) stream: bool,
}

struct Provider {
    kind: ProviderKind,
    /// `{base}/chat/completions`.
    url: String,
    api_key: String,
    /// `None` in fragile mode.
    breaker: Option<Mutex<CircuitBreaker>>,
}

impl Provider {
    fn new(kind: ProviderKind, config: &ProviderConfig, breaker: Option<&CircuitBreaker>) -> Self {
        Self {
            kind,
            url: format!("{}/chat/completions", config.base_url),
            api_key: config.api_key.clone(),
            breaker: breaker.map(|b| Mutex::new(b.clone())),
        }
    }

    fn name(&self) -> &'static str {
        match self.kind {
            ProviderKind::Primary => "primary provider",
            ProviderKind::Fallback => "fallback provider",
        }
    }
}

/// The LLM client of a refpipe process; its breakers are shared by every run it serves.
pub(crate) struct LlmClient {
    http: reqwest::Client,
    model: String,
    timeout: Duration,
    retry: RetryPolicy,
    /// The primary, then the fallback if configured (and not in fragile mode).
    providers: Vec<Provider>,
}

impl LlmClient {
    /// The client `config` describes; in fragile mode without retries, breakers, fallback.
    pub(crate) fn new(config: &Config, http: reqwest::Client) -> Self {
        let resilient = config.mode == Mode::Resilient;
        let breaker = CircuitBreaker::new(config.breaker_threshold, config.breaker_cooldown);
        let breaker = resilient.then_some(&breaker);
        let mut providers = vec![Provider::new(
            ProviderKind::Primary,
            &config.primary,
            breaker,
        )];
        if let Some(fallback) = config.fallback.as_ref().filter(|_| resilient) {
            providers.push(Provider::new(ProviderKind::Fallback, fallback, breaker));
        }
        let retry = RetryPolicy {
            max_retries: if resilient {
                config.retry.max_retries
            } else {
                0
            },
            ..config.retry
        };
        Self {
            http,
            model: config.model.clone(),
            timeout: config.llm_timeout,
            retry,
            providers,
        }
    }

    /// Sends `request`, trying the fallback provider when the primary is unavailable.
    /// On failure, returns one error per provider tried. A provider that refuses the
    /// request (a 4xx other than 429) ends the call: the fallback would refuse it too.
    pub(crate) async fn complete(
        &self,
        request: &ChatRequest<'_>,
        jitter: &Jitter,
        stats: &mut LlmStats,
        log: &Progress,
    ) -> Result<Completion, Vec<CallError>> {
        let body = request_body(&self.model, request);
        let mut failures: Vec<CallError> = Vec::new();
        for provider in &self.providers {
            if let Some(previous) = failures.last() {
                log.say(format_args!(
                    "{}; trying the {}",
                    chain(previous),
                    provider.name()
                ));
            }
            let result = with_retries(
                provider.name(),
                &self.retry,
                jitter,
                provider.breaker.as_ref(),
                log,
                |number| {
                    stats.count_attempt(request.role, provider.kind);
                    log.say(format_args!(
                        "calling {} ({}, attempt {number})",
                        provider.url,
                        provider.name()
                    ));
                    self.attempt(provider, request, &body)
                },
            )
            .await;
            match result {
                Ok(completion) => {
                    if let Some(usage) = completion.usage {
                        stats.usage.add(usage);
                    }
                    return Ok(completion);
                }
                Err(failure) => {
                    let refused = matches!(&failure, CallError::Failed { source, .. } if !source.is_retryable());
                    failures.push(failure);
                    if refused {
                        break;
                    }
                }
            }
        }
        Err(failures)
    }

    /// One HTTP attempt, bounded by the timeout from connect to the last byte.
    async fn attempt(
        &self,
        provider: &Provider,
        request: &ChatRequest<'_>,
        body: &Value,
    ) -> Result<Completion, AttemptError> {
        let url = &provider.url;
        http::with_timeout(url, self.timeout, async {
            let response = self
                .http
                .post(url)
                .bearer_auth(&provider.api_key)
                .header("X-Agent-Role", request.role.as_str())
                .json(body)
                .send()
                .await
                .map_err(|source| http::transport(url, source))?;
            if !response.status().is_success() {
                return Err(http::status_error(url, response).await);
            }
            if request.stream && !is_json(response.headers()) {
                read_stream(url, response).await
            } else {
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|source| http::transport(url, source))?;
                Ok(decode_completion(&bytes))
            }
        })
        .await
    }
}

/// The JSON body of a chat-completions request.
fn request_body(model: &str, request: &ChatRequest<'_>) -> Value {
    let mut body = json!({
        "model": model,
        "messages": request.messages,
        "response_format": {"type": "json_object"},
    });
    if let Some(tools) = request.tools {
        body["tools"] = tools.clone();
    }
    if request.stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ResponseMessage,
}

#[derive(Deserialize)]
struct ResponseMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Deserialize)]
struct ToolCall {
    function: FunctionCall,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: String,
}

/// Decodes a non-streamed response body.
fn decode_completion(body: &[u8]) -> Completion {
    let response: ChatResponse = match serde_json::from_slice(body) {
        Ok(response) => response,
        Err(e) => {
            return Completion {
                reply: Reply::Invalid(format!("the response is not a chat completion ({e})")),
                usage: None,
            };
        }
    };
    let reply = match response.choices.into_iter().next() {
        None => Reply::Invalid("the response has no choices".to_owned()),
        Some(Choice { message }) => match message.tool_calls.and_then(|c| c.into_iter().next()) {
            Some(ToolCall { function }) => Reply::ToolCall {
                name: function.name,
                arguments: function.arguments,
            },
            None => match message.content {
                Some(text) if !text.is_empty() => Reply::Content(text),
                _ => Reply::Empty,
            },
        },
    };
    Completion {
        reply,
        usage: response.usage,
    }
}

/// Reads an SSE body incrementally until `data: [DONE]`.
async fn read_stream(url: &str, response: reqwest::Response) -> Result<Completion, AttemptError> {
    let mut lines = SseLines::default();
    let mut accumulator = StreamAccumulator::default();
    let mut body = response.bytes_stream();
    let feed = |events: Vec<Event>, acc: &mut StreamAccumulator| -> Result<bool, AttemptError> {
        for event in events {
            match event {
                Event::Done => return Ok(true),
                Event::Data(data) => acc.push(&data).map_err(|e| match e {
                    ChunkError::NotJson(source) => AttemptError::BadChunk {
                        url: url.to_owned(),
                        source,
                    },
                    ChunkError::Reported(message) => AttemptError::StreamError {
                        url: url.to_owned(),
                        message,
                    },
                })?,
            }
        }
        Ok(false)
    };
    while let Some(bytes) = body.next().await {
        let bytes = bytes.map_err(|source| http::transport(url, source))?;
        if feed(lines.push(&bytes), &mut accumulator)? {
            return Ok(accumulator.finish());
        }
    }
    if feed(lines.finish().into_iter().collect(), &mut accumulator)? {
        return Ok(accumulator.finish());
    }
    Err(AttemptError::Truncated {
        url: url.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::planner_messages;

    #[test]
    fn body_carries_model_messages_format_tools_and_stream() {
        let messages = planner_messages("p");
        let tools = json!([{"type": "function"}]);
        let request = ChatRequest {
            role: Role::Coder,
            messages: &messages,
            tools: Some(&tools),
            stream: true,
        };
        let body = request_body("m", &request);
        assert_eq!(body["model"], "m");
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        assert_eq!(body["tools"], tools);
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));

        let plain = request_body(
            "m",
            &ChatRequest {
                tools: None,
                stream: false,
                ..request
            },
        );
        assert!(plain.get("tools").is_none() && plain.get("stream").is_none());
    }

    #[test]
    fn decodes_content_tool_calls_and_usage() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"{}"}}],
                        "usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        let completion = decode_completion(body);
        assert_eq!(completion.reply, Reply::Content("{}".into()));
        assert_eq!(completion.usage.unwrap().total_tokens, 3);

        let body = br#"{"choices":[{"message":{"content":null,"tool_calls":[
            {"id":"c","type":"function","function":{"name":"write_code","arguments":"{\"code\":\"x\"}"}}]}}]}"#;
        assert_eq!(
            decode_completion(body).reply,
            Reply::ToolCall {
                name: "write_code".into(),
                arguments: r#"{"code":"x"}"#.into()
            }
        );
    }

    #[test]
    fn undecodable_bodies_are_invalid_replies() {
        assert!(
            matches!(decode_completion(b"<html>").reply, Reply::Invalid(m) if m.starts_with("the response is not a chat completion"))
        );
        assert_eq!(
            decode_completion(br#"{"choices":[]}"#).reply,
            Reply::Invalid("the response has no choices".into())
        );
        assert_eq!(
            decode_completion(br#"{"choices":[{"message":{"content":""}}]}"#).reply,
            Reply::Empty
        );
    }
}
