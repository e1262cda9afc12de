//! The LLM stub's rule engine: the handler of its server that routes each request, applies
//! faults, picks the rule and reply, renders the body, shapes it for wire-level faults and
//! journals the exchange.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos::{ApiError, FaultStage, FaultState, HttpFault};

use super::LlmStubConfig;
use super::dialect::{self, Api, Dialect};
use super::embeddings::EmbeddingsRequest;
use super::openai::{Completion, Said, model_json, models_json};
use super::quota::{self, Quotas};
use super::reply::LlmReplyBody;
use super::request::ChatRequest;
use super::route::{self, Call, Endpoint, Route};
use super::rules::Subject;
use super::tokens;
use super::wire::{self, End, Payload, Shape};
use crate::journal::{Exchange, Journal, Tally, Unmatched, closest, delayed, one_line};
use crate::recognise::Evidence;
use crate::sequence::Sequences;
use crate::serve::{Action, Handler, HangEnd, Reply, Request, Response, Timings};

/// `error.code` of the 404 for a request no rule matched.
pub(crate) const NO_MATCHING_RULE: &str = "harness_no_matching_rule";
/// `error.code` of the 404 for a path the stub does not serve.
pub(crate) const UNKNOWN_ENDPOINT: &str = "harness_unknown_endpoint";
/// The model listed when no rule names one.
pub(crate) const DEFAULT_MODEL: &str = "stub-model";

pub(crate) struct LlmEngine {
    config: LlmStubConfig,
    /// Per rule, per reply: the content of a JSON reply, serialized once.
    json_contents: Vec<Vec<Option<String>>>,
    sequences: Sequences,
    faults: Mutex<FaultState>,
    quotas: Quotas,
    completions: AtomicU64,
    requests: AtomicU64,
    journal: Arc<Journal>,
}

/// What the handler decided, before it becomes a journal entry and a reply.
struct Answer {
    sent: Sent,
    /// Applied before the answer is sent: the reply's delay plus delay faults.
    delay: Duration,
    /// Stream and ending faults that act on the response.
    shape: Shape,
    served: String,
    agent: Option<String>,
    summary: String,
    rule: Option<String>,
    /// The index of the rule that served the reply, for the counters.
    rule_index: Option<usize>,
    fault: Option<String>,
    /// The indices of the fault rules injected, for the counters.
    fired: Vec<usize>,
    unmatched: Option<Unmatched>,
}

/// What goes back to the client: a response before shaping (an [`Outgoing`]), then after
/// (a server [`Response`]).
enum Sent<R = Outgoing> {
    Response(R),
    /// Nothing, for as long as the client waits.
    Hang,
    /// A reset before any byte.
    Reset,
}

/// A response before shaping.
struct Outgoing {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    payload: Payload,
}

impl Answer {
    fn new(sent: Sent, served: String, summary: String) -> Self {
        Self {
            sent,
            delay: Duration::ZERO,
            shape: Shape::default(),
            served,
            agent: None,
            summary,
            rule: None,
            rule_index: None,
            fault: None,
            fired: Vec::new(),
            unmatched: None,
        }
    }

    fn status(&self) -> u16 {
        match &self.sent {
            Sent::Response(outgoing) => outgoing.status,
            Sent::Hang | Sent::Reset => 0,
        }
    }
}

impl Handler for LlmEngine {
    fn handle(&self, request: Request<'_>) -> Reply {
        let received = request.received;
        let at = received.saturating_duration_since(self.journal.started());
        let method = request.method.as_str();
        let path = request.path;
        let route = Route::of(method, path);
        let provider = route.provider.as_deref().unwrap_or(route::PRIMARY);
        let (mut answer, request_ids) = match &route.endpoint {
            Endpoint::Call(call) => {
                let dialect = dialect::of(call.api);
                let answer = self.call(&request, provider, call, dialect, at);
                (answer, dialect.request_id_headers())
            }
            Endpoint::Embeddings { deployment } => (
                self.embeddings(&request, provider, deployment.as_deref(), at),
                dialect::of(Api::Embeddings).request_id_headers(),
            ),
            Endpoint::Models => (self.models(provider), &["x-request-id"][..]),
            Endpoint::Model(id) => (self.model(provider, id), &["x-request-id"][..]),
            Endpoint::Other => (unknown_endpoint(method, path), &["x-request-id"][..]),
        };
        if let Sent::Response(outgoing) = &mut answer.sent {
            let number = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
            let id = format!("req_harness{number:06}");
            if let Some((last, others)) = request_ids.split_last() {
                for name in others {
                    outgoing.headers.push((name, id.clone()));
                }
                outgoing.headers.push((last, id));
            }
        }
        if matches!(answer.sent, Sent::Hang) {
            // a hang never answers: a delay before it changes nothing
            answer.delay = Duration::ZERO;
        }
        let status = answer.status();
        let planned = match answer.sent {
            Sent::Response(outgoing) => {
                let (body, note) = wire::shape(outgoing.payload, &answer.shape);
                answer.served.push_str(note.as_deref().unwrap_or_default());
                Sent::Response(Response {
                    status: outgoing.status,
                    content_type: outgoing.content_type,
                    headers: outgoing.headers,
                    body,
                    on_sent: None,
                })
            }
            Sent::Hang => Sent::Hang,
            Sent::Reset => Sent::Reset,
        };
        if !answer.delay.is_zero() {
            answer.served = delayed(&answer.served, answer.delay);
        }
        let agent = answer.agent.clone();
        let seq = self.journal.push(
            Exchange {
                at,
                received,
                source: route::source(route.provider.as_deref()),
                agent: answer.agent,
                provider: route.provider,
                method: method.to_string(),
                path: path.to_string(),
                summary: answer.summary,
                rule: answer.rule,
                fault: answer.fault,
                status,
                served: answer.served,
                unmatched: answer.unmatched,
                gave_up_after: None,
                service: None,
                first_token: None,
                token_gaps: Vec::new(),
            },
            Tally {
                rule: answer.rule_index,
                faults: &answer.fired,
            },
        );
        let action = match planned {
            Sent::Response(mut response) => {
                let journal = self.journal.clone();
                response.on_sent = Some(Box::new(move |timings: Timings| {
                    journal.complete(
                        seq,
                        agent.as_deref(),
                        timings.service,
                        timings.first_token,
                        timings.gaps,
                    );
                }));
                Action::Respond(response)
            }
            Sent::Hang => {
                let journal = self.journal.clone();
                Action::Hang(Box::new(move |end| {
                    journal.update(seq, |exchange| match end {
                        HangEnd::ClientGone(after) => {
                            exchange.served = format!(
                                "hang: client gave up after {}",
                                humantime::format_duration(round_ms(after))
                            );
                            exchange.gave_up_after = Some(after);
                        }
                        HangEnd::ShutDown(after) => {
                            exchange.served = format!(
                                "hang: stub shut down after {}",
                                humantime::format_duration(round_ms(after))
                            );
                        }
                    });
                }))
            }
            Sent::Reset => Action::Reset,
        };
        Reply {
            delay: answer.delay,
            action,
        }
    }
}

/// `d` to whole milliseconds, for a readable journal (the exact value is in the exchange).
fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}

impl LlmEngine {
    pub(crate) fn new(config: LlmStubConfig, journal: Arc<Journal>) -> Self {
        let json_contents = config
            .rules
            .iter()
            .map(|rule| {
                rule.replies
                    .iter()
                    .map(|reply| match &reply.body {
                        LlmReplyBody::Json(value) => Some(value.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        Self {
            json_contents,
            sequences: Sequences::new(config.rules.len()),
            faults: Mutex::new(FaultState::new(config.seed)),
            quotas: Quotas::new(config.rate_limits.clone()),
            completions: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            journal,
            config,
        }
    }

    /// The rule that answers a chat completion for the primary provider, faults aside:
    /// the first steps of [`LlmEngine::chat`], for the benches.
    pub(crate) fn first_match(&self, headers: &http::HeaderMap, body: &[u8]) -> Option<usize> {
        let chat = ChatRequest::parse(body).ok()?;
        let recognised = self.config.agents.recognise(headers, chat.system_prompt());
        let subject = Subject {
            agent: recognised.as_ref().map(|(name, _)| name.as_str()),
            provider: route::PRIMARY,
            api: Api::Chat,
            request: &chat,
        };
        self.config
            .rules
            .iter()
            .position(|rule| rule.when.is_match(&subject))
    }

    /// An LLM call in `dialect`: parsed, its agent recognised, then quota, faults and rules.
    fn call(
        &self,
        request: &Request<'_>,
        provider: &str,
        call: &Call,
        dialect: &dyn Dialect,
        at: Duration,
    ) -> Answer {
        let chat = match dialect.parse(request.body, call) {
            Ok(chat) => chat,
            Err(message) => {
                let summary = format!("invalid request: {}", one_line(&message, 120));
                return error_answer(dialect, &ApiError::new(400, message), summary);
            }
        };
        let recognised = self
            .config
            .agents
            .recognise(request.headers, chat.system_prompt());
        let subject = Subject {
            agent: recognised.as_ref().map(|(name, _)| name.as_str()),
            provider,
            api: call.api,
            request: &chat,
        };
        let summary = summary(call.api, &chat);
        let received = Received {
            request,
            evidence: recognised.as_ref().map(|(_, evidence)| *evidence),
        };
        self.decide(
            received,
            &subject,
            dialect,
            at,
            summary,
            |engine, summary| match engine.first_rule(&subject) {
                Some(index) => Ok(engine.reply(index, dialect, &chat, summary)),
                None => Err(summary),
            },
        )
    }

    /// The first rule whose conditions hold for `subject`.
    fn first_rule(&self, subject: &Subject<'_>) -> Option<usize> {
        self.config
            .rules
            .iter()
            .position(|rule| rule.when.is_match(subject))
    }

    /// An embeddings call: quota, faults, then a rule for embeddings or derived vectors.
    fn embeddings(
        &self,
        request: &Request<'_>,
        provider: &str,
        deployment: Option<&str>,
        at: Duration,
    ) -> Answer {
        let dialect = dialect::of(Api::Embeddings);
        let parsed = match EmbeddingsRequest::parse(request.body, deployment) {
            Ok(parsed) => parsed,
            Err(message) => {
                let summary = format!("invalid request: {}", one_line(&message, 120));
                return error_answer(dialect, &ApiError::new(400, message), summary);
            }
        };
        let recognised = self.config.agents.recognise(request.headers, None);
        let subject = Subject {
            agent: recognised.as_ref().map(|(name, _)| name.as_str()),
            provider,
            api: Api::Embeddings,
            request: &parsed.view,
        };
        let summary = summary(Api::Embeddings, &parsed.view);
        let received = Received {
            request,
            evidence: recognised.as_ref().map(|(_, evidence)| *evidence),
        };
        self.decide(received, &subject, dialect, at, summary, |engine, summary| {
            // only rules that ask for embeddings answer them: a text reply would not fit
            let index = engine.config.rules.iter().position(|rule| {
                rule.when.api.as_deref() == Some(Api::Embeddings.name()) && rule.when.is_match(&subject)
            });
            let Some(index) = index else {
                let (outgoing, size) = bytes_outgoing(200, parsed.reply(engine.config.seed, None));
                return Ok(Answer::new(
                    Sent::Response(outgoing),
                    format!("200 json ({size} bytes, derived vectors)"),
                    summary,
                ));
            };
            let rule = &engine.config.rules[index];
            let Some(pick) = engine.sequences.next(index, rule.replies.len()) else {
                return Err(summary);
            };
            let reply = &rule.replies[pick.index];
            let mut answer = match &reply.body {
                LlmReplyBody::Embedding(vector) => {
                    let (outgoing, size) = bytes_outgoing(200, parsed.reply(engine.config.seed, Some(vector)));
                    Answer::new(Sent::Response(outgoing), format!("200 json ({size} bytes)"), summary)
                }
                LlmReplyBody::Error { .. } => error_answer(dialect, &scripted_error(&reply.body), summary),
                _ => error_answer(
                    dialect,
                    &ApiError::new(500, format!("agent-harness: rule `{}` answers embeddings calls but its reply is not an `embedding` or an `error`", rule.id)),
                    summary,
                ),
            };
            answer.rule = Some(pick.label(&rule.id));
            answer.rule_index = Some(index);
            answer.delay = reply.delay.unwrap_or_default();
            Ok(answer)
        })
    }

    /// What every call goes through once parsed: the quota, faults (a replacing one
    /// answers), else `answer` (`None`: unmatched), then the stream and ending faults.
    fn decide(
        &self,
        received: Received<'_, '_>,
        subject: &Subject<'_>,
        dialect: &dyn Dialect,
        at: Duration,
        summary: String,
        answer: impl FnOnce(&Self, String) -> Result<Answer, String>,
    ) -> Answer {
        let Received { request, evidence } = received;
        let verdict = self.quotas.check(
            subject.provider,
            || tokens::prompt_tokens(subject.request.contents()),
            at,
        );
        let rate_headers = match verdict {
            Some(verdict) => {
                if let Some(over) = verdict.over {
                    let error = ApiError {
                        code: Some("rate_limit_exceeded".to_string()),
                        retry_after: Some(over.wait),
                        ..ApiError::new(429, over.message)
                    };
                    let mut answer = error_answer(dialect, &error, summary);
                    answer.served = "429 rate limited".to_string();
                    answer.fault = Some(format!("rate_limit: {} over the quota", over.what));
                    answer.agent = subject.agent.map(str::to_string);
                    if let Sent::Response(outgoing) = &mut answer.sent {
                        outgoing.headers.extend(verdict.headers);
                    }
                    return answer;
                }
                verdict.headers
            }
            None => Vec::new(),
        };
        let (delay, fired) = self.faults_for(subject, at);

        let replacing = fired
            .iter()
            .find(|fired| fired.fault.stage() == FaultStage::Reply);
        let mut answer = if let Some(fired) = replacing {
            fault_answer(dialect, fired.fault, summary)
        } else {
            match answer(self, summary) {
                Ok(answer) => answer,
                Err(summary) => self.unmatched(request, subject, dialect, evidence, summary),
            }
        };
        if let Sent::Response(outgoing) = &mut answer.sent {
            outgoing.headers.extend(rate_headers);
        }
        answer.delay = answer.delay.saturating_add(delay);
        let responds = matches!(answer.sent, Sent::Response(_));
        let streamed = matches!(
            answer.sent,
            Sent::Response(Outgoing {
                payload: Payload::Events { .. },
                ..
            })
        );
        let mut labels = Vec::new();
        for fired in fired {
            let fault = fired.fault;
            match fault.stage() {
                FaultStage::Delay | FaultStage::Reply => {}
                // a hang or a reset sends nothing for it to act on: shadowed
                _ if !responds => continue,
                _ if fault.stream_only() && !streamed => {
                    labels.push(format!(
                        "{} (not applied: the reply is not a stream)",
                        fired.label
                    ));
                    continue;
                }
                FaultStage::Pace => {
                    if let HttpFault::StreamPace { first_token, gap } = *fault {
                        answer.shape.pace = Some((first_token, gap));
                    }
                }
                FaultStage::Stall => {
                    if let HttpFault::StreamStall {
                        after_chunks,
                        stall,
                    } = *fault
                    {
                        answer.shape.stall = Some((after_chunks, stall));
                    }
                }
                FaultStage::End => answer.shape.end = end_of(fault),
            }
            answer.fired.push(fired.index);
            labels.push(fired.label);
        }
        if !labels.is_empty() {
            answer.fault = Some(labels.join(", "));
        }
        answer.agent = subject.agent.map(str::to_string);
        answer
    }

    /// Counts the request for every fault rule whose filter matches it (stream faults
    /// count streamed requests only), and collects the ones that fire, in rule order: all
    /// delays (their waits drawn now, added up), and of every other stage the first (later
    /// ones of a stage taken are shadowed and not recorded).
    fn faults_for(&self, subject: &Subject<'_>, at: Duration) -> (Duration, Vec<Fired<'_>>) {
        if self.config.faults.is_empty() {
            return (Duration::ZERO, Vec::new());
        }
        let mut delay = Duration::ZERO;
        let mut fired: Vec<Fired<'_>> = Vec::new();
        let mut state = self
            .faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (index, armed) in self.config.faults.iter().enumerate() {
            let fault = &armed.rule.fault;
            if (fault.stream_only() && !subject.request.stream)
                || !armed.when.is_match(subject)
                || !state.decide_at(index, &armed.rule.schedule, at)
            {
                continue;
            }
            let stage = fault.stage();
            let label = if stage == FaultStage::Delay {
                let wait = state.draw_delay(index, fault).unwrap_or_default();
                delay = delay.saturating_add(wait);
                match fault {
                    HttpFault::Delay(_) => armed.rule.to_string(),
                    _ => format!("{} drew {}", armed.rule, humantime::format_duration(wait)),
                }
            } else if fired.iter().any(|other| other.fault.stage() == stage) {
                continue;
            } else {
                armed.rule.to_string()
            };
            fired.push(Fired {
                index,
                fault,
                label,
            });
        }
        (delay, fired)
    }

    fn reply(
        &self,
        index: usize,
        dialect: &dyn Dialect,
        chat: &ChatRequest,
        summary: String,
    ) -> Answer {
        let rule = &self.config.rules[index];
        let Some(pick) = self.sequences.next(index, rule.replies.len()) else {
            // start() rejects rules without replies
            let error = ApiError::new(
                500,
                format!("agent-harness: rule `{}` has no replies", rule.id),
            );
            return error_answer(dialect, &error, summary);
        };
        let reply = &rule.replies[pick.index];
        let finish_reason = reply.finish_reason.as_deref();
        let mut answer = match &reply.body {
            LlmReplyBody::Json(value) => {
                let serialized = self.json_contents[index][pick.index].as_deref();
                let content = match serialized {
                    Some(content) => std::borrow::Cow::Borrowed(content),
                    None => std::borrow::Cow::Owned(value.to_string()),
                };
                self.completion(
                    dialect,
                    chat,
                    Said::Content(&content),
                    finish_reason,
                    summary,
                )
            }
            LlmReplyBody::Text(text) => {
                self.completion(dialect, chat, Said::Content(text), finish_reason, summary)
            }
            LlmReplyBody::ToolCalls(calls) => self.completion(
                dialect,
                chat,
                Said::ToolCalls(calls),
                finish_reason,
                summary,
            ),
            LlmReplyBody::Embedding(vector) => {
                let content = serde_json::Value::from(vector.clone()).to_string();
                self.completion(
                    dialect,
                    chat,
                    Said::Content(&content),
                    finish_reason,
                    summary,
                )
            }
            LlmReplyBody::Error { .. } => {
                error_answer(dialect, &scripted_error(&reply.body), summary)
            }
        };
        answer.rule = Some(pick.label(&rule.id));
        answer.rule_index = Some(index);
        answer.delay = reply.delay.unwrap_or_default();
        answer
    }

    /// A completion, whole or streamed as the request asked.
    fn completion(
        &self,
        dialect: &dyn Dialect,
        chat: &ChatRequest,
        said: Said<'_>,
        finish_reason: Option<&str>,
        summary: String,
    ) -> Answer {
        let number = self.completions.fetch_add(1, Ordering::Relaxed) + 1;
        let completion = Completion::new(number, chat, said, finish_reason);
        if chat.stream {
            let stream = dialect.stream(&completion, chat);
            let served = format!("200 sse ({} chunks)", stream.chunks);
            let outgoing = Outgoing {
                status: 200,
                content_type: "text/event-stream",
                headers: Vec::new(),
                payload: Payload::Events {
                    events: stream.events,
                    tokens: stream.tokens,
                },
            };
            Answer::new(Sent::Response(outgoing), served, summary)
        } else {
            let (outgoing, size) = bytes_outgoing(200, dialect.whole(&completion));
            Answer::new(
                Sent::Response(outgoing),
                format!("200 json ({size} bytes)"),
                summary,
            )
        }
    }

    fn unmatched(
        &self,
        request: &Request<'_>,
        subject: &Subject<'_>,
        dialect: &dyn Dialect,
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
            ..ApiError::new(404, message)
        };
        let mut answer = error_answer(dialect, &error, summary);
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
        request: &Request<'_>,
        subject: &Subject<'_>,
        evidence: Option<Evidence>,
    ) -> String {
        let chat = subject.request;
        let mut out = format!("{} {}\n", request.method, request.path);
        let _ = match subject.api {
            Api::Chat => writeln!(out, "provider: {}", subject.provider),
            api => writeln!(out, "provider: {}, api: {}", subject.provider, api.name()),
        };
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
        if let Some((name, value)) = self.config.agents.header_value(request.headers) {
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

    /// The models the rules for `provider` name (`when.model`), or [`DEFAULT_MODEL`].
    fn model_names(&self, provider: &str) -> Vec<&str> {
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
        models
    }

    /// `GET /v1/models/{id}`: the model, when the rules name it or name none.
    fn model(&self, provider: &str, id: &str) -> Answer {
        let models = self.model_names(provider);
        if !models.is_empty() && !models.contains(&id) {
            let error = ApiError {
                code: Some("model_not_found".to_string()),
                ..ApiError::new(
                    404,
                    format!(
                        "The model `{id}` does not exist (the rules name {})",
                        models.join(", ")
                    ),
                )
            };
            return error_answer(dialect::of(Api::Chat), &error, format!("get model {id}"));
        }
        let (outgoing, size) = json_outgoing(200, &model_json(id));
        Answer::new(
            Sent::Response(outgoing),
            format!("200 json ({size} bytes)"),
            format!("get model {id}"),
        )
    }

    fn models(&self, provider: &str) -> Answer {
        let mut models = self.model_names(provider);
        if models.is_empty() {
            models.push(DEFAULT_MODEL);
        }
        let (outgoing, size) = json_outgoing(200, &models_json(models));
        Answer::new(
            Sent::Response(outgoing),
            format!("200 json ({size} bytes)"),
            "list models".to_string(),
        )
    }
}

/// A request as received, and where its agent was recognised from.
struct Received<'r, 'a> {
    request: &'r Request<'a>,
    evidence: Option<Evidence>,
}

/// A fault that fired for one request.
struct Fired<'a> {
    index: usize,
    fault: &'a HttpFault,
    /// As journaled: `chaos[1]: 429 retry-after=1s`.
    label: String,
}

/// The ending of an [`FaultStage::End`] fault.
fn end_of(fault: &HttpFault) -> Option<End> {
    match *fault {
        HttpFault::Truncated(truncation) => Some(End::Truncate(truncation)),
        HttpFault::Reset {
            after_bytes: Some(after),
        } => Some(End::ResetAfter(after)),
        HttpFault::StreamCut { after_chunks } => Some(End::Cut(after_chunks)),
        _ => None,
    }
}

/// The answer of a replacing fault ([`FaultStage::Reply`]).
fn fault_answer(dialect: &dyn Dialect, fault: &HttpFault, summary: String) -> Answer {
    match fault {
        HttpFault::Hang => return Answer::new(Sent::Hang, "hang".to_string(), summary),
        HttpFault::Reset { after_bytes: None } => {
            return Answer::new(Sent::Reset, "reset before response".to_string(), summary);
        }
        _ => {}
    }
    let (status, body) = match fault {
        HttpFault::MalformedJson => (200, dialect.malformed_body().as_bytes().to_vec()),
        HttpFault::EmptyBody => (200, Vec::new()),
        _ => match fault.api_error() {
            Some(error) => return error_answer(dialect, &error, summary),
            // only replacing faults get here
            None => {
                let error = ApiError::new(
                    500,
                    format!("agent-harness: `{fault}` cannot replace a reply"),
                );
                return error_answer(dialect, &error, summary);
            }
        },
    };
    let served = if body.is_empty() {
        "200 empty body".to_string()
    } else {
        format!("200 malformed json ({} bytes)", body.len())
    };
    let outgoing = Outgoing {
        status,
        content_type: "application/json",
        headers: Vec::new(),
        payload: Payload::Whole(body),
    };
    Answer::new(Sent::Response(outgoing), served, summary)
}

/// A scripted [`LlmReplyBody::Error`] as an [`ApiError`].
fn scripted_error(body: &LlmReplyBody) -> ApiError {
    match body {
        LlmReplyBody::Error {
            status,
            message,
            error_type,
            code,
            retry_after,
        } => ApiError {
            status: *status,
            message: message.clone(),
            error_type: error_type.clone(),
            code: code.clone(),
            retry_after: *retry_after,
        },
        _ => ApiError::new(500, "agent-harness: not an error reply"),
    }
}

/// An error in the dialect's shape, with `retry-after` (whole seconds, rounded up) and
/// `retry-after-ms` when it has a wait.
fn error_answer(dialect: &dyn Dialect, error: &ApiError, summary: String) -> Answer {
    let (mut outgoing, _) = bytes_outgoing(error.status, dialect.error_body(error));
    if let Some(after) = error.retry_after_header() {
        outgoing.headers.push(("retry-after", after));
    }
    if let Some(after) = error.retry_after {
        outgoing
            .headers
            .push(("retry-after-ms", quota::ceil_ms(after).to_string()));
    }
    Answer::new(
        Sent::Response(outgoing),
        format!("{} error", error.status),
        summary,
    )
}

/// A JSON response, and its size in bytes.
fn json_outgoing(status: u16, body: &serde_json::Value) -> (Outgoing, usize) {
    bytes_outgoing(status, body.to_string().into_bytes())
}

/// A response of JSON already serialized, and its size in bytes.
fn bytes_outgoing(status: u16, bytes: Vec<u8>) -> (Outgoing, usize) {
    let size = bytes.len();
    let outgoing = Outgoing {
        status,
        content_type: "application/json",
        headers: Vec::new(),
        payload: Payload::Whole(bytes),
    };
    (outgoing, size)
}

fn unknown_endpoint(method: &str, path: &str) -> Answer {
    let message = format!(
        "agent-harness: the LLM stub does not serve {method} {path} (it serves POST /v1/chat/completions, \
         /v1/responses, /v1/messages, /v1/embeddings, /v1beta/models/MODEL:generateContent and \
         :streamGenerateContent, /openai/deployments/NAME/chat/completions and /embeddings, \
         GET /v1/models and /v1/models/ID; the same under /PROVIDER for another provider)"
    );
    let error = ApiError {
        code: Some(UNKNOWN_ENDPOINT.to_string()),
        ..ApiError::new(404, message)
    };
    let mut answer = error_answer(
        dialect::of(Api::Chat),
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
fn summary(api: Api, chat: &ChatRequest) -> String {
    let mut summary = String::new();
    if api != Api::Chat {
        let _ = write!(summary, "api={} ", api.name());
    }
    let _ = write!(
        summary,
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
