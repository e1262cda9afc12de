//! A scenario's stubs: the LLM stub and one fake executor per named executor, each on its
//! own 127.0.0.1 port, built from the scenario's rules and the target's agent recognition.

use std::collections::BTreeMap;

use mocks::{
    AgentRecognition, ExecFaultRule, ExecMatch, ExecReply, ExecReplyBody, ExecRule, ExecutorStub,
    ExecutorStubConfig, LlmFaultRule, LlmMatch, LlmReply, LlmReplyBody, LlmRule, LlmStub,
    LlmStubConfig, RateLimit, ToolCall,
};

use crate::errors::RunError;
use crate::scenario::{
    ChaosSpec, ExecBodySpec, FaultPoint, FaultSpec, LlmBodySpec, LlmMatchSpec, Scenario,
    ScheduleSpec,
};
use crate::target::{TargetSpec, executors_in};

/// The running stubs of one scenario; dropping it stops them.
pub struct ScenarioStubs {
    pub llm: LlmStub,
    pub executors: BTreeMap<String, ExecutorStub>,
}

impl ScenarioStubs {
    /// Starts the LLM stub and every executor the scenario scripts or the target's
    /// environment names (an executor with no rules answers every call as unmatched).
    pub async fn start(
        scenario: &Scenario,
        target: &TargetSpec,
        seed: u64,
    ) -> Result<ScenarioStubs, RunError> {
        let llm = LlmStub::start(llm_config(scenario, target, seed))
            .await
            .map_err(|source| RunError::Stub {
                stub: "llm".into(),
                source,
            })?;
        let mut names: Vec<String> = scenario.spec.executor.keys().cloned().collect();
        names.extend(executors_in(&target.env));
        names.extend(executors_in(&scenario.spec.env));
        names.extend(scenario.spec.chaos.iter().filter_map(|c| match &c.at {
            FaultPoint::Executor(name) => Some(name.clone()),
            FaultPoint::Llm => None,
        }));
        names.sort();
        names.dedup();
        let mut executors = BTreeMap::new();
        for name in names {
            let config = executor_config(scenario, &name, seed);
            let stub = ExecutorStub::start(config)
                .await
                .map_err(|source| RunError::Stub {
                    stub: format!("executor.{name}"),
                    source,
                })?;
            executors.insert(name, stub);
        }
        Ok(ScenarioStubs { llm, executors })
    }

    /// Every exchange of every stub, in the order they were received.
    pub fn journal(&self) -> Vec<mocks::Exchange> {
        let mut all = self.llm.journal();
        for stub in self.executors.values() {
            all.extend(stub.journal());
        }
        all.sort_by_key(|e| e.received);
        all
    }

    /// `name → url` of the executors, for `{executor.NAME}`.
    pub fn executor_urls(&self) -> BTreeMap<String, String> {
        self.executors
            .iter()
            .map(|(n, s)| (n.clone(), s.uri()))
            .collect()
    }
}

/// The target's agent recognition; its regex was compiled when the target was read, and
/// each scenario's stub shares it (a clone of a compiled regex, not a compilation).
pub(crate) fn agent_recognition(target: &TargetSpec) -> AgentRecognition {
    AgentRecognition {
        header: target.agents.header.clone(),
        system_prompt: target.agents.system_prompt.as_ref().map(|p| p.0.clone()),
    }
}

fn llm_match(m: &LlmMatchSpec) -> LlmMatch {
    LlmMatch {
        agent: m.agent.clone(),
        model: m.model.clone(),
        provider: m.provider.clone(),
        contains: m.contains.clone(),
        matches: m.matches.as_ref().map(|r| r.0.clone()),
        api: m.api.map(|api| api.name().to_string()),
    }
}

fn llm_config(scenario: &Scenario, target: &TargetSpec, seed: u64) -> LlmStubConfig {
    let rules = scenario
        .spec
        .llm
        .iter()
        .enumerate()
        .map(|(i, rule)| LlmRule {
            id: format!("llm[{}]", i + 1),
            when: llm_match(&rule.when),
            replies: rule.reply.0.iter().map(llm_reply).collect(),
        })
        .collect();
    let faults = scenario
        .spec
        .chaos
        .iter()
        .enumerate()
        .filter(|(_, c)| c.at == FaultPoint::Llm)
        .map(|(i, c)| LlmFaultRule {
            when: llm_match(&c.when),
            rule: fault_rule(i, c),
        })
        .collect();
    LlmStubConfig {
        rules,
        faults,
        agents: agent_recognition(target),
        seed,
        rate_limits: scenario
            .spec
            .rate_limit
            .iter()
            .flat_map(|limits| &limits.0)
            .map(|limit| RateLimit {
                provider: limit.provider.clone(),
                requests: limit.requests,
                tokens: limit.tokens,
                per: limit.per,
            })
            .collect(),
    }
}

fn llm_reply(spec: &crate::scenario::LlmReplySpec) -> LlmReply {
    let body = match &spec.body {
        LlmBodySpec::Json(v) => LlmReplyBody::Json(v.clone()),
        LlmBodySpec::Text(t) => LlmReplyBody::Text(t.clone()),
        LlmBodySpec::ToolCalls(calls) => LlmReplyBody::ToolCalls(
            calls
                .iter()
                .map(|c| ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                })
                .collect(),
        ),
        LlmBodySpec::Embedding(vector) => LlmReplyBody::Embedding(vector.clone()),
        LlmBodySpec::Error(e) => LlmReplyBody::Error {
            status: e.status,
            message: e
                .message
                .clone()
                .unwrap_or_else(|| default_error_message(e.status)),
            error_type: e.error_type.clone(),
            code: e.code.clone(),
            retry_after: e.retry_after,
        },
        // The loader resolves files into their contents.
        LlmBodySpec::JsonFile(_) | LlmBodySpec::TextFile(_) => {
            unreachable!("reply files are resolved when the scenario is loaded")
        }
    };
    LlmReply {
        body,
        delay: spec.delay,
        finish_reason: spec.finish_reason.clone(),
    }
}

fn default_error_message(status: u16) -> String {
    match status {
        429 => "Rate limit reached for requests".into(),
        500..=599 => "The server had an error while processing your request".into(),
        _ => format!("stub error {status}"),
    }
}

fn fault_rule(index: usize, spec: &ChaosSpec) -> chaos::FaultRule {
    use chaos::HttpFault as F;
    let fault = match &spec.fault {
        FaultSpec::Status {
            status,
            message,
            retry_after,
        } => F::Status {
            status: *status,
            message: message
                .clone()
                .unwrap_or_else(|| default_error_message(*status)),
            retry_after: *retry_after,
        },
        FaultSpec::Delay(d) => F::Delay(*d),
        FaultSpec::DelayUniform(min, max) => F::uniform(*min, *max),
        FaultSpec::DelayLogNormal { median, sigma } => F::lognormal(*median, *sigma),
        FaultSpec::MalformedJson => F::MalformedJson,
        FaultSpec::EmptyBody => F::EmptyBody,
        FaultSpec::Hang => F::Hang,
        FaultSpec::TruncateFraction(x) => F::Truncated(chaos::Truncation::Fraction(*x)),
        FaultSpec::TruncateBytes(n) => F::Truncated(chaos::Truncation::Bytes(*n)),
        FaultSpec::Reset { after_bytes } => F::Reset {
            after_bytes: *after_bytes,
        },
        FaultSpec::StreamPace { first_token, gap } => F::StreamPace {
            first_token: *first_token,
            gap: *gap,
        },
        FaultSpec::StreamStall {
            after_chunks,
            stall,
        } => F::StreamStall {
            after_chunks: *after_chunks,
            stall: *stall,
        },
        FaultSpec::StreamCut { after_chunks } => F::StreamCut {
            after_chunks: *after_chunks,
        },
    };
    let schedule = match spec.schedule {
        ScheduleSpec::Always => chaos::Schedule::Always,
        ScheduleSpec::First(n) => chaos::Schedule::First(n),
        ScheduleSpec::EveryNth(n) => chaos::Schedule::EveryNth(n),
        ScheduleSpec::Probability(p) => chaos::Schedule::Probability(p),
    };
    let schedule = match spec.window {
        Some((after, until)) => schedule.within(after, until),
        None => schedule,
    };
    chaos::FaultRule {
        id: format!("chaos[{}]", index + 1),
        fault,
        schedule,
    }
}

fn executor_config(scenario: &Scenario, name: &str, seed: u64) -> ExecutorStubConfig {
    let rules = scenario
        .spec
        .executor
        .get(name)
        .map(|rules| {
            rules
                .iter()
                .enumerate()
                .map(|(i, rule)| ExecRule {
                    id: format!("executor.{name}[{}]", i + 1),
                    when: ExecMatch {
                        path: rule.when.path.clone(),
                        contains: rule.when.contains.clone(),
                    },
                    replies: rule
                        .reply
                        .0
                        .iter()
                        .map(|r| ExecReply {
                            status: r.status,
                            delay: r.delay,
                            body: match &r.body {
                                ExecBodySpec::Outcome {
                                    success,
                                    artifacts,
                                    logs,
                                    errors,
                                } => ExecReplyBody::Outcome {
                                    success: *success,
                                    artifacts: artifacts.clone(),
                                    logs: logs.clone(),
                                    errors: errors.clone(),
                                },
                                ExecBodySpec::Json(v) => ExecReplyBody::Json(v.clone()),
                                ExecBodySpec::JsonFile(_) => {
                                    unreachable!(
                                        "reply files are resolved when the scenario is loaded"
                                    )
                                }
                            },
                        })
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    ExecutorStubConfig {
        name: name.to_string(),
        rules,
        faults: scenario
            .spec
            .chaos
            .iter()
            .enumerate()
            .filter(|(_, c)| c.at == FaultPoint::Executor(name.to_string()))
            .map(|(i, c)| ExecFaultRule {
                when: ExecMatch {
                    path: None,
                    contains: c.when.contains.clone(),
                },
                rule: fault_rule(i, c),
            })
            .collect(),
        seed,
    }
}
