//! Fake executors: HTTP services that "run" what the agents produce (a sandbox, Blender, a
//! test runner) and answer with scripted outcomes.
//!
//! An executor stub accepts `POST` on any path; pipelines are pointed at
//! [`ExecutorStub::execute_url`] (`{uri}/execute`) by default. Rules match by path and by a
//! substring of the body, first match wins, and answer with the next reply of their
//! sequence (the last repeats). Anything no rule matches, including every call to an
//! executor with no rules (the scenario did not script it), gets a 404
//! `{"error": "agent-harness: no executor rule matched …"}` and a journal entry naming the
//! closest rule.
//!
//! Faults ([`ExecFaultRule`]) are consulted first, as on the LLM stub: a scripted status,
//! a malformed or empty body, delays (fixed, uniform, log-normal; they add up), and a hang.
//! Executor stubs run on wiremock, which sends a response whole after an optional delay, so
//! a hang is a very long delay ([`EXECUTOR_HANG`]) and the stub does not see a client give
//! up; faults that need the socket (truncated, reset, stream faults) are refused at start.
//!
//! Timing is what wiremock lets a responder see: an exchange's
//! [`service`](Exchange::service) is the request reaching the responder (wiremock has read
//! it whole) → the response template handed back, plus the scripted delay. wiremock's own
//! time to write the response is not included, nor its timer's slack. A hang is not timed.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chaos::{ApiError, FaultStage, FaultState, HttpFault};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

use crate::errors::StubError;
use crate::journal::{
    Counters, Exchange, Journal, StubOptions, Tally, Unmatched, closest, delayed, one_line,
};
use crate::latency::{latency_histogram, record};
use crate::llm::{MALFORMED_JSON_BODY, error_json};
use crate::sequence::Sequences;
use crate::server::{json_response, response};

/// How long an executor stub holds back a hung request: wiremock cannot hold a response
/// for ever, so a hang is this delay, far beyond any scenario's timeout.
pub const EXECUTOR_HANG: Duration = Duration::from_secs(24 * 3600);

/// The path pipelines are pointed at by default.
pub const DEFAULT_EXECUTE_PATH: &str = "/execute";

/// Conditions on an executor request; every condition that is set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecMatch {
    /// The request path equals this, e.g. `/execute`.
    pub path: Option<String>,
    /// A substring of the request body.
    pub contains: Option<String>,
}

/// What an executor reply says.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecReplyBody {
    /// `{"success", "artifacts", "logs", "errors"}`.
    Outcome {
        /// Whether the execution succeeded.
        success: bool,
        /// Files produced, e.g. `asset.blend`.
        artifacts: Vec<String>,
        /// What the execution printed.
        logs: String,
        /// Error messages.
        errors: Vec<String>,
    },
    /// This JSON, as is.
    Json(Value),
}

/// One scripted executor reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecReply {
    /// HTTP status; 200 with [`ExecReply::new`].
    pub status: u16,
    /// The JSON body.
    pub body: ExecReplyBody,
    /// Wait this long before answering. By default, no delay.
    pub delay: Option<Duration>,
}

/// A scripted executor rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecRule {
    /// Names the rule in journals and reports, e.g. `executor.sandbox[1]`.
    pub id: String,
    /// Which requests the rule answers.
    pub when: ExecMatch,
    /// The nth matching call gets the nth reply; the last repeats. Must not be empty.
    pub replies: Vec<ExecReply>,
}

/// A fault armed on an executor stub for the requests `when` matches.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecFaultRule {
    /// Which requests the fault's schedule counts.
    pub when: ExecMatch,
    /// The fault, its schedule and its id. Only faults a server that sends responses whole
    /// can inject: a status, a malformed or empty body, delays, a hang (see the module docs).
    pub rule: chaos::FaultRule,
}

/// One executor stub's script. By default: no rules (every call is unmatched), no faults,
/// seed 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutorStubConfig {
    /// The executor's name, e.g. `sandbox`: the journal's source is `executor.NAME`.
    pub name: String,
    /// Scripted rules, first match wins. None means every call is unmatched.
    pub rules: Vec<ExecRule>,
    /// Faults, consulted before the rules.
    pub faults: Vec<ExecFaultRule>,
    /// Seeds the fault schedules' RNG and random delays: the scenario seed.
    pub seed: u64,
}

impl ExecReply {
    /// A 200 reply with this body and no delay.
    pub fn new(body: ExecReplyBody) -> Self {
        Self {
            status: 200,
            body,
            delay: None,
        }
    }

    /// A 200 outcome with no artifacts, logs or errors.
    pub fn outcome(success: bool) -> Self {
        Self::new(ExecReplyBody::Outcome {
            success,
            artifacts: Vec::new(),
            logs: String::new(),
            errors: Vec::new(),
        })
    }

    /// This reply, answered after `delay`.
    pub fn with_delay(self, delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            ..self
        }
    }

    fn json(&self) -> Value {
        match &self.body {
            ExecReplyBody::Outcome {
                success,
                artifacts,
                logs,
                errors,
            } => {
                json!({"success": success, "artifacts": artifacts, "logs": logs, "errors": errors})
            }
            ExecReplyBody::Json(value) => value.clone(),
        }
    }
}

/// A running executor stub: a wiremock server on `127.0.0.1`, on a free port. Stops when
/// dropped.
pub struct ExecutorStub {
    server: MockServer,
    journal: Arc<Journal>,
    latencies: Arc<Mutex<Histogram<u64>>>,
}

impl ExecutorStub {
    /// Checks the configuration and starts the stub with the default [`StubOptions`].
    pub async fn start(config: ExecutorStubConfig) -> Result<ExecutorStub, StubError> {
        Self::start_with(config, StubOptions::default()).await
    }

    /// Checks the configuration and starts the stub. Call it within a Tokio runtime (the
    /// server runs on a thread of its own and stops when the stub is dropped).
    ///
    /// The journal is bounded as `options` says, but wiremock itself keeps every request it
    /// answered (bodies included) for the life of the stub: an executor stub's memory grows
    /// with its traffic, unlike the LLM stub's.
    pub async fn start_with(
        config: ExecutorStubConfig,
        options: StubOptions,
    ) -> Result<ExecutorStub, StubError> {
        validate(&config)?;
        let journal = Journal::for_stub(
            options.journal_limit,
            config.rules.iter().map(|rule| &rule.id),
            config.faults.iter().map(|fault| &fault.rule.id),
        );
        let source = format!("executor.{}", config.name);
        let latencies = Arc::new(Mutex::new(latency_histogram()));
        let engine = ExecEngine {
            sequences: Sequences::new(config.rules.len()),
            faults: Mutex::new(FaultState::new(config.seed)),
            source: source.clone(),
            config,
            journal: journal.clone(),
            latencies: latencies.clone(),
        };
        let server = crate::server::start(&source, engine).await?;
        Ok(ExecutorStub {
            server,
            journal,
            latencies,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// `{uri}/execute`: where pipelines send work by default.
    pub fn execute_url(&self) -> String {
        format!("{}{DEFAULT_EXECUTE_PATH}", self.uri())
    }

    /// The requests received so far, in order: all of them, or the most recent
    /// [`StubOptions::journal_limit`] when more came.
    pub fn journal(&self) -> Vec<Exchange> {
        self.journal.snapshot()
    }

    /// Exact counts of everything received so far, however long the journal is.
    pub fn counters(&self) -> Counters {
        self.journal.counters()
    }

    /// When the stub started: [`Exchange::at`] counts from here.
    pub fn started_at(&self) -> Instant {
        self.journal.started()
    }

    /// The service times of every request answered so far, however long the journal is:
    /// microseconds, 1 µs to 1 h, 3 significant digits (as
    /// [`StubLatencies`](crate::StubLatencies)). Each is what wiremock lets the stub see:
    /// the request reaching its responder (wiremock has read it whole) → the response
    /// handed back to wiremock, plus the scripted delay. wiremock's own write of the
    /// response is not included, nor its timer's slack. Hangs are not counted.
    pub fn latencies(&self) -> Histogram<u64> {
        lock(&self.latencies).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl std::fmt::Debug for ExecutorStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorStub")
            .field("uri", &self.uri())
            .finish_non_exhaustive()
    }
}

fn validate(config: &ExecutorStubConfig) -> Result<(), StubError> {
    for rule in &config.rules {
        if rule.replies.is_empty() {
            return Err(StubError::NoReplies {
                rule: rule.id.clone(),
            });
        }
        if let Some(reply) = rule
            .replies
            .iter()
            .find(|reply| !(100..=599).contains(&reply.status))
        {
            return Err(StubError::InvalidStatus {
                rule: rule.id.clone(),
                status: reply.status,
            });
        }
    }
    for fault in &config.faults {
        fault
            .rule
            .validate()
            .map_err(|source| StubError::Fault { source })?;
        if fault.rule.fault.needs_socket() {
            return Err(StubError::UnsupportedFault {
                stub: format!("executor.{}", config.name),
                rule: fault.rule.id.clone(),
                fault: fault.rule.fault.to_string(),
            });
        }
    }
    Ok(())
}

struct ExecEngine {
    config: ExecutorStubConfig,
    source: String,
    sequences: Sequences,
    faults: Mutex<FaultState>,
    journal: Arc<Journal>,
    latencies: Arc<Mutex<Histogram<u64>>>,
}

/// The faults that fired for one request.
struct Injected<'a> {
    delay: Duration,
    replacing: Option<&'a HttpFault>,
    labels: Vec<String>,
    fired: Vec<usize>,
}

impl ExecEngine {
    /// As on the LLM stub: every fault rule whose filter matches counts the request; of
    /// those that fire, delays add up and the first replacing fault replaces the reply.
    fn faults_for(&self, method: &str, path: &str, body: &str, at: Duration) -> Injected<'_> {
        let mut injected = Injected {
            delay: Duration::ZERO,
            replacing: None,
            labels: Vec::new(),
            fired: Vec::new(),
        };
        let mut state = self
            .faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (index, armed) in self.config.faults.iter().enumerate() {
            if !armed.when.is_match(method, path, body)
                || !state.decide_at(index, &armed.rule.schedule, at)
            {
                continue;
            }
            let fault = &armed.rule.fault;
            let label = match fault.stage() {
                FaultStage::Delay => {
                    let wait = state.draw_delay(index, fault).unwrap_or_default();
                    injected.delay += wait;
                    match fault {
                        HttpFault::Delay(_) => armed.rule.to_string(),
                        _ => format!("{} drew {}", armed.rule, humantime::format_duration(wait)),
                    }
                }
                _ if injected.replacing.is_some() => continue,
                _ => {
                    injected.replacing = Some(fault);
                    armed.rule.to_string()
                }
            };
            injected.labels.push(label);
            injected.fired.push(index);
        }
        injected
    }
}

/// The response of a replacing fault, and what the journal says it served.
fn fault_template(fault: &HttpFault) -> (ResponseTemplate, u16, String) {
    if let HttpFault::Hang = fault {
        let error = ApiError::new(504, "agent-harness chaos: a hung executor call ended");
        let (template, _) = json_response(504, &error_json(&error));
        let served = format!(
            "hang (held back {}: wiremock cannot see the client leave)",
            humantime::format_duration(EXECUTOR_HANG)
        );
        return (template.set_delay(EXECUTOR_HANG), 504, served);
    }
    // the executors answer errors as OpenAI does, the shape pipelines parse most
    let (status, body, headers) = match fault {
        HttpFault::MalformedJson => (200, MALFORMED_JSON_BODY.as_bytes().to_vec(), Vec::new()),
        HttpFault::EmptyBody => (200, Vec::new(), Vec::new()),
        _ => match fault.api_error() {
            Some(error) => {
                let headers: Vec<(&str, String)> = error
                    .retry_after_header()
                    .map(|value| vec![("retry-after", value)])
                    .unwrap_or_default();
                (
                    error.status,
                    error_json(&error).to_string().into_bytes(),
                    headers,
                )
            }
            None => {
                // validate() refuses every other fault
                let (template, _) = json_response(
                    500,
                    &json!({"error": format!("agent-harness: `{fault}` cannot be injected here")}),
                );
                return (template, 500, "500 error".to_string());
            }
        },
    };
    let served = match fault {
        HttpFault::MalformedJson => format!("200 malformed json ({} bytes)", body.len()),
        HttpFault::EmptyBody => "200 empty body".to_string(),
        _ => format!("{status} error"),
    };
    let mut template = response(status).set_body_raw(body, "application/json");
    for (name, value) in headers {
        template = template.insert_header(name, value.as_str());
    }
    (template, status, served)
}

impl ExecMatch {
    fn is_match(&self, method: &str, path: &str, body: &str) -> bool {
        method == "POST"
            && self.path.as_deref().is_none_or(|expected| expected == path)
            && self
                .contains
                .as_deref()
                .is_none_or(|needle| body.contains(needle))
    }

    /// Each failed condition, described.
    fn failures(&self, method: &str, path: &str, body: &str) -> Vec<String> {
        let mut failures = Vec::new();
        if method != "POST" {
            failures.push(format!(
                "executor rules answer POST but the request is {method}"
            ));
        }
        if let Some(expected) = &self.path
            && expected != path
        {
            failures.push(format!(
                "when.path = {expected:?} but the request's path is {path:?}"
            ));
        }
        if let Some(needle) = &self.contains
            && !body.contains(needle.as_str())
        {
            failures.push(format!(
                "when.contains = {needle:?} but the request body does not contain it"
            ));
        }
        failures
    }
}

impl Respond for ExecEngine {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let received = Instant::now();
        let at = received.saturating_duration_since(self.journal.started());
        let method = request.method.as_str();
        let path = request.url.path();
        let body = String::from_utf8_lossy(&request.body);
        let mut exchange = Exchange {
            at,
            received,
            source: self.source.clone(),
            agent: None,
            provider: None,
            method: method.to_string(),
            path: path.to_string(),
            summary: format!("body=\"{}\"", one_line(&body, 80)),
            rule: None,
            fault: None,
            status: 0,
            served: String::new(),
            unmatched: None,
            gave_up_after: None,
            service: None,
            first_token: None,
            token_gaps: Vec::new(),
        };
        let injected = self.faults_for(method, path, &body, at);
        if !injected.labels.is_empty() {
            exchange.fault = Some(injected.labels.join(", "));
        }
        let mut rule_index = None;
        let (template, delay) = match injected.replacing {
            Some(fault) => {
                let (template, status, served) = fault_template(fault);
                exchange.status = status;
                exchange.served = served;
                // a hang is its own (very long) delay, already in its template
                let delay = match fault {
                    HttpFault::Hang => Duration::ZERO,
                    _ => injected.delay,
                };
                (template, delay)
            }
            None => {
                let (template, reply_delay) =
                    self.reply(request, method, path, &body, &mut exchange, &mut rule_index);
                // a reply's own delay and the faults' add up
                (template, reply_delay + injected.delay)
            }
        };
        let template = if delay.is_zero() {
            template
        } else {
            exchange.served = delayed(&exchange.served, delay);
            template.set_delay(delay)
        };
        let hang = matches!(injected.replacing, Some(HttpFault::Hang));
        if !hang {
            // what wiremock lets us see: up to handing the template back, plus its delay
            let service = received.elapsed() + delay;
            record(&mut lock(&self.latencies), service);
            exchange.service = Some(service);
        }
        self.journal.push(
            exchange,
            Tally {
                rule: rule_index,
                faults: &injected.fired,
            },
        );
        template
    }
}

impl ExecEngine {
    /// The scripted reply and its delay, or the 404 of an unmatched request.
    fn reply(
        &self,
        request: &Request,
        method: &str,
        path: &str,
        body: &str,
        exchange: &mut Exchange,
        rule_index: &mut Option<usize>,
    ) -> (ResponseTemplate, Duration) {
        let matched = self
            .config
            .rules
            .iter()
            .position(|rule| rule.when.is_match(method, path, body));
        let pick = matched.and_then(|index| {
            let rule = &self.config.rules[index];
            Some((rule, self.sequences.next(index, rule.replies.len())?))
        });
        *rule_index = matched.filter(|_| pick.is_some());
        match pick {
            Some((rule, pick)) => {
                let reply = &rule.replies[pick.index];
                let (template, size) = json_response(reply.status, &reply.json());
                exchange.rule = Some(pick.label(&rule.id));
                exchange.status = reply.status;
                exchange.served = format!("{} json ({size} bytes)", reply.status);
                (template, reply.delay.unwrap_or_default())
            }
            None => {
                let closest = closest(
                    self.config
                        .rules
                        .iter()
                        .map(|rule| (rule.id.as_str(), rule.when.failures(method, path, body))),
                );
                let why = match &closest {
                    Some(closest) => format!("closest: {closest}"),
                    None => format!("no rules are scripted for `{}`", self.source),
                };
                let message =
                    format!("agent-harness: no executor rule matched {method} {path} ({why})");
                let (template, _) = json_response(404, &json!({"error": message}));
                exchange.status = 404;
                exchange.served = "404 unmatched".to_string();
                exchange.unmatched = Some(Unmatched {
                    request: describe(request, body),
                    closest,
                });
                (template, Duration::ZERO)
            }
        }
    }
}

/// Method, path, content type and the body (truncated).
fn describe(request: &Request, body: &str) -> String {
    let mut out = format!("{} {}", request.method, request.url.path());
    if let Some(content_type) = request
        .headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
    {
        let _ = write!(out, "\ncontent-type: {content_type}");
    }
    let _ = write!(
        out,
        "\nbody ({} bytes): {}",
        request.body.len(),
        one_line(body, 400)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_has_the_documented_fields() {
        let reply = ExecReply::new(ExecReplyBody::Outcome {
            success: true,
            artifacts: vec!["asset.blend".into()],
            logs: "ok".into(),
            errors: vec![],
        });
        assert_eq!(
            reply.json(),
            json!({"success": true, "artifacts": ["asset.blend"], "logs": "ok", "errors": []})
        );
        assert_eq!(reply.status, 200);
    }

    #[test]
    fn failures_name_each_condition() {
        let when = ExecMatch {
            path: Some("/run".into()),
            contains: Some("bpy".into()),
        };
        assert_eq!(
            when.failures("GET", "/execute", "print(1)"),
            [
                "executor rules answer POST but the request is GET",
                r#"when.path = "/run" but the request's path is "/execute""#,
                r#"when.contains = "bpy" but the request body does not contain it"#,
            ]
        );
        assert!(
            ExecMatch::default()
                .failures("POST", "/anything", "")
                .is_empty()
        );
    }

    #[test]
    fn validate_rejects_empty_replies_and_bad_statuses() {
        let config = |replies| ExecutorStubConfig {
            name: "sandbox".into(),
            rules: vec![ExecRule {
                id: "executor.sandbox[1]".into(),
                when: ExecMatch::default(),
                replies,
            }],
            ..Default::default()
        };
        assert!(matches!(
            validate(&config(vec![])),
            Err(StubError::NoReplies { .. })
        ));
        let bad = ExecReply {
            status: 0,
            ..ExecReply::outcome(true)
        };
        assert!(matches!(
            validate(&config(vec![bad])),
            Err(StubError::InvalidStatus { status: 0, .. })
        ));
        assert!(validate(&config(vec![ExecReply::outcome(true)])).is_ok());
    }
}
