//! The LLM stub's rule engine: the one wiremock responder that routes each request, applies
//! faults, picks the rule and reply, renders the body and journals the exchange.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos::{ApiError, FaultState, HttpFault};
use wiremock::{Request, Respond, ResponseTemplate};

use super::LlmStubConfig;
use super::openai::{Completion, Said, models_json};
use super::reply::LlmReplyBody;
use super::request::ChatRequest;
use super::route::{self, Endpoint, Route};
use super::rules::Subject;
use super::sse;
use crate::journal::{Exchange, Journal, Unmatched, closest, delayed, one_line};
use crate::recognise::Evidence;
use crate::sequence::Sequences;
use crate::server::{json_response, response};

/// `error.code` of the 404 for a request no rule matched.
pub(crate) const NO_MATCHING_RULE: &str = "harness_no_matching_rule";
/// `error.code` of the 404 for a path the stub does not serve.
pub(crate) const UNKNOWN_ENDPOINT: &str = "harness_unknown_endpoint";
/// The model listed when no rule names one.
pub(crate) const DEFAULT_MODEL: &str = "stub-model";

pub(crate) struct LlmEngine {
    config: LlmStubConfig,
    sequences: Sequences,
    faults: Mutex<FaultState>,
    completions: AtomicU64,
    journal: Arc<Journal>,
}

/// What the handler decided, before it becomes a journal entry.
struct Answer {
    template: ResponseTemplate,
    /// Applied when the answer is sent: the reply's delay plus delay faults.
    delay: Duration,
    status: u16,
    served: String,
    agent: Option<String>,
    summary: String,
    rule: Option<String>,
    fault: Option<String>,
    unmatched: Option<Unmatched>,
}

impl Answer {
    fn new(template: ResponseTemplate, status: u16, served: String, summary: String) -> Self {
        Self {
            template,
            delay: Duration::ZERO,
            status,
            served,
            agent: None,
            summary,
            rule: None,
            fault: None,
            unmatched: None,
        }
    }
}

impl Respond for LlmEngine {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let received = Instant::now();
        let method = request.method.as_str();
        let path = request.url.path();
        let route = Route::of(method, path);
        let mut answer = match route.endpoint {
            Endpoint::ChatCompletions => {
                self.chat(request, route.provider.as_deref().unwrap_or(route::PRIMARY))
            }
            Endpoint::Models => self.models(route.provider.as_deref().unwrap_or(route::PRIMARY)),
            Endpoint::Other => unknown_endpoint(method, path),
        };
        if !answer.delay.is_zero() {
            answer.served = delayed(&answer.served, answer.delay);
            answer.template = answer.template.set_delay(answer.delay);
        }
        self.journal.push(Exchange {
            at: received.saturating_duration_since(self.journal.started()),
            received,
            source: route::source(route.provider.as_deref()),
            agent: answer.agent,
            provider: route.provider,
            method: method.to_string(),
            path: path.to_string(),
            summary: answer.summary,
            rule: answer.rule,
            fault: answer.fault,
            status: answer.status,
            served: answer.served,
            unmatched: answer.unmatched,
        });
        answer.template
    }
}

impl LlmEngine {
    pub(crate) fn new(config: LlmStubConfig, journal: Arc<Journal>) -> Self {
        Self {
            sequences: Sequences::new(config.rules.len()),
            faults: Mutex::new(FaultState::new(config.seed)),
            completions: AtomicU64::new(0),
            journal,
            config,
        }
    }

    fn chat(&self, request: &Request, provider: &str) -> Answer {
        let chat = match ChatRequest::parse(&request.body) {
            Ok(chat) => chat,
            Err(message) => {
                let summary = format!("invalid request: {}", one_line(&message, 120));
                return error_answer(&ApiError::new(400, message), summary);
            }
        };
        let recognised = self
            .config
            .agents
            .recognise(&request.headers, chat.system_prompt());
        let subject = Subject {
            agent: recognised.as_ref().map(|(name, _)| name.as_str()),
            provider,
            request: &chat,
        };
        let summary = summary(&chat);
        let injected = self.faults_for(&subject);

        let mut answer = if let Some(fault) = injected.replacing {
            fault_answer(fault, summary)
        } else if let Some(index) = self
            .config
            .rules
            .iter()
            .position(|rule| rule.when.is_match(&subject))
        {
            self.reply(index, &chat, summary)
        } else {
            self.unmatched(
                request,
                &subject,
                recognised.as_ref().map(|(_, evidence)| *evidence),
                summary,
            )
        };
        answer.delay += injected.delay;
        if !injected.labels.is_empty() {
            answer.fault = Some(injected.labels.join(", "));
        }
        answer.agent = subject.agent.map(str::to_string);
        answer
    }

    /// Counts the request for every fault rule whose filter matches it, and collects the
    /// ones that fire: their delays add up, and the first replacing fault replaces the reply
    /// (later replacing faults that fire are shadowed and not recorded).
    fn faults_for(&self, subject: &Subject<'_>) -> Injected<'_> {
        let mut injected = Injected {
            delay: Duration::ZERO,
            replacing: None,
            labels: Vec::new(),
        };
        let mut state = self
            .faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (index, fault) in self.config.faults.iter().enumerate() {
            if !fault.when.is_match(subject) || !state.decide(index, &fault.rule.schedule) {
                continue;
            }
            match fault.rule.fault.delay() {
                Some(delay) => injected.delay += delay,
                None if injected.replacing.is_some() => continue,
                None => injected.replacing = Some(&fault.rule.fault),
            }
            injected.labels.push(fault.rule.to_string());
        }
        injected
    }

    fn reply(&self, index: usize, chat: &ChatRequest, summary: String) -> Answer {
        let rule = &self.config.rules[index];
        let Some(pick) = self.sequences.next(index, rule.replies.len()) else {
            // start() rejects rules without replies
            let error = ApiError::new(
                500,
                format!("agent-harness: rule `{}` has no replies", rule.id),
            );
            return error_answer(&error, summary);
        };
        let reply = &rule.replies[pick.index];
        let finish_reason = reply.finish_reason.as_deref();
        let mut answer = match &reply.body {
            LlmReplyBody::Json(value) => self.completion(
                chat,
                Said::Content(&value.to_string()),
                finish_reason,
                summary,
            ),
            LlmReplyBody::Text(text) => {
                self.completion(chat, Said::Content(text), finish_reason, summary)
            }
            LlmReplyBody::ToolCalls(calls) => {
                self.completion(chat, Said::ToolCalls(calls), finish_reason, summary)
            }
            LlmReplyBody::Error {
                status,
                message,
                error_type,
                code,
                retry_after,
            } => {
                let error = ApiError {
                    status: *status,
                    message: message.clone(),
                    error_type: error_type.clone(),
                    code: code.clone(),
                    retry_after: *retry_after,
                };
                error_answer(&error, summary)
            }
        };
        answer.rule = Some(pick.label(&rule.id));
        answer.delay = reply.delay.unwrap_or_default();
        answer
    }

    /// A completion, whole or streamed as the request asked.
    fn completion(
        &self,
        chat: &ChatRequest,
        said: Said<'_>,
        finish_reason: Option<&str>,
        summary: String,
    ) -> Answer {
        let number = self.completions.fetch_add(1, Ordering::Relaxed) + 1;
        let completion = Completion::new(number, chat, said, finish_reason);
        if chat.stream {
            let stream = sse::render(&completion, chat.include_usage);
            let served = format!("200 sse ({} chunks)", stream.chunks);
            let template =
                response(200).set_body_raw(stream.body.into_bytes(), "text/event-stream");
            Answer::new(template, 200, served, summary)
        } else {
            let (template, size) = json_response(200, &completion.to_json());
            Answer::new(template, 200, format!("200 json ({size} bytes)"), summary)
        }
    }

    fn unmatched(
        &self,
        request: &Request,
        subject: &Subject<'_>,
        evidence: Option<Evidence>,
        summary: String,
    ) -> Answer {
        let closest = closest(
            self.config
                .rules
                .iter()
                .map(|rule| (rule.id.as_str(), rule.when.failures(subject))),
        );
        let message = match &closest {
            Some(closest) => {
                format!("agent-harness: no stub rule matched this request (closest: {closest})")
            }
            None => "agent-harness: no stub rule matched this request (no LLM rules are scripted)"
                .to_string(),
        };
        let error = ApiError {
            code: Some(NO_MATCHING_RULE.to_string()),
            error_type: Some("invalid_request_error".to_string()),
            ..ApiError::new(404, message)
        };
        let mut answer = error_answer(&error, summary);
        answer.served = "404 unmatched".to_string();
        answer.unmatched = Some(Unmatched {
            request: self.describe(request, subject, evidence),
            closest,
        });
        answer
    }

    /// Method, path, provider, agent (and whence), model, the recognition header, messages.
    fn describe(
        &self,
        request: &Request,
        subject: &Subject<'_>,
        evidence: Option<Evidence>,
    ) -> String {
        let chat = subject.request;
        let mut out = format!("{} {}\n", request.method, request.url.path());
        let _ = writeln!(out, "provider: {}", subject.provider);
        let _ = match (subject.agent, evidence) {
            (Some(agent), Some(Evidence::Header)) => {
                writeln!(out, "agent: {agent} (from the header)")
            }
            (Some(agent), _) => writeln!(out, "agent: {agent} (from the system prompt)"),
            (None, _) => writeln!(out, "agent: none recognised"),
        };
        let _ = writeln!(
            out,
            "model: {}, stream: {}, tools: {}",
            chat.model, chat.stream, chat.tools
        );
        if let Some((name, value)) = self.config.agents.header_value(&request.headers) {
            let _ = writeln!(out, "header {name}: {}", one_line(value, 80));
        }
        let _ = writeln!(out, "messages ({}):", chat.messages.len());
        const SHOWN: usize = 12;
        for message in chat.messages.iter().take(SHOWN) {
            let _ = writeln!(
                out,
                "  {}: {}",
                message.role,
                one_line(&message.content, 160)
            );
        }
        if chat.messages.len() > SHOWN {
            let _ = writeln!(out, "  … {} more", chat.messages.len() - SHOWN);
        }
        out.truncate(out.trim_end().len());
        out
    }

    fn models(&self, provider: &str) -> Answer {
        let mut models: Vec<&str> = Vec::new();
        for rule in &self.config.rules {
            let for_provider = rule
                .when
                .provider
                .as_deref()
                .is_none_or(|only| only == provider);
            if let Some(model) = rule.when.model.as_deref()
                && for_provider
                && !models.contains(&model)
            {
                models.push(model);
            }
        }
        if models.is_empty() {
            models.push(DEFAULT_MODEL);
        }
        let (template, size) = json_response(200, &models_json(models));
        Answer::new(
            template,
            200,
            format!("200 json ({size} bytes)"),
            "list models".to_string(),
        )
    }
}

/// The faults that fired for one request.
struct Injected<'a> {
    delay: Duration,
    replacing: Option<&'a HttpFault>,
    labels: Vec<String>,
}

fn fault_answer(fault: &HttpFault, summary: String) -> Answer {
    let Some(fault_response) = fault.response() else {
        // only replacing faults get here
        return error_answer(
            &ApiError::new(500, "agent-harness: a delay cannot replace a reply"),
            summary,
        );
    };
    let served = match fault {
        HttpFault::Status { status, .. } => format!("{status} error"),
        HttpFault::MalformedJson => {
            format!("200 malformed json ({} bytes)", fault_response.body.len())
        }
        HttpFault::EmptyBody => "200 empty body".to_string(),
        HttpFault::Delay(_) => String::new(),
    };
    let mut template = response(fault_response.status)
        .set_body_raw(fault_response.body, fault_response.content_type);
    for (name, value) in fault_response.headers {
        template = template.insert_header(name, value.as_str());
    }
    Answer::new(template, fault_response.status, served, summary)
}

fn error_answer(error: &ApiError, summary: String) -> Answer {
    let (mut template, _) = json_response(error.status, &error.body());
    if let Some(after) = error.retry_after_header() {
        template = template.insert_header("retry-after", after.as_str());
    }
    Answer::new(
        template,
        error.status,
        format!("{} error", error.status),
        summary,
    )
}

fn unknown_endpoint(method: &str, path: &str) -> Answer {
    let message = format!(
        "agent-harness: the LLM stub does not serve {method} {path} (it serves POST /v1/chat/completions \
         and GET /v1/models, and the same under /NAME/v1 for provider NAME)"
    );
    let error = ApiError {
        code: Some(UNKNOWN_ENDPOINT.to_string()),
        ..ApiError::new(404, message)
    };
    let mut answer = error_answer(
        &error,
        format!("{method} {path}: not an endpoint of the LLM stub"),
    );
    answer.served = "404 unmatched".to_string();
    answer.unmatched = Some(Unmatched {
        request: format!("{method} {path}\nnot an endpoint of the LLM stub"),
        closest: None,
    });
    answer
}

/// `model=gpt-4o stream=false tools=0 messages=3 last[user]="…"`.
fn summary(chat: &ChatRequest) -> String {
    let mut summary = format!(
        "model={} stream={} tools={} messages={}",
        one_line(&chat.model, 40),
        chat.stream,
        chat.tools,
        chat.messages.len()
    );
    if let Some(last) = chat.messages.last() {
        let _ = write!(
            summary,
            " last[{}]=\"{}\"",
            one_line(&last.role, 16),
            one_line(&last.content, 80)
        );
    }
    summary
}
