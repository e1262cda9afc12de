//! The pipeline: planner → coder → executor → critic, with a refinement loop.
//!
//! ```text
//! planner ─▶ coder ─▶ executor ──fails──▶ budget left? ─yes─▶ coder (with the errors)
//!                         │ succeeds                   └─no──▶ failed: executor_failed
//!                         ▼
//!                      critic ──needs refinement and budget left──▶ coder (with the issues)
//!                         │ otherwise: completed        unavailable: degraded
//! ```

use crate::agents::{self, Draft, Feedback, Payload, Plan, Role, Verdict};
use crate::config::{Config, Prices};
use crate::errors::{AgentError, ConfigError, RunError, chain};
use crate::executor::ExecutorClient;
use crate::http;
use crate::llm::{ChatRequest, LlmClient};
use crate::output::{ErrorDoc, LlmStats, RunResult, Status};
use crate::progress::Progress;
use crate::request::RunRequest;
use crate::retry::Jitter;

/// The pipeline of a refpipe process; one instance serves every run.
pub(crate) struct Pipeline {
    llm: LlmClient,
    executor: ExecutorClient,
    jitter: Jitter,
    prices: Prices,
}

/// How a run that did not fail ended.
enum Finish {
    Completed,
    Degraded(String),
}

impl Pipeline {
    pub(crate) fn new(config: &Config) -> Result<Self, ConfigError> {
        let http = http::client()?;
        Ok(Self {
            llm: LlmClient::new(config, http.clone()),
            executor: ExecutorClient::new(config, http),
            jitter: Jitter::new(config.seed),
            prices: config.prices,
        })
    }

    /// Runs `request` to the end; failures are reported in the result, never returned.
    pub(crate) async fn run(&self, request: &RunRequest, log: &Progress) -> RunResult {
        let mut result = RunResult::empty();
        match self.drive(request, &mut result, log).await {
            Ok(Finish::Completed) => result.status = Status::Completed,
            Ok(Finish::Degraded(reason)) => {
                log.say(format_args!("degraded: {reason}"));
                result.status = Status::Degraded;
                result.critic = None;
                result.degraded_reason = Some(reason);
            }
            Err(error) => {
                let message = chain(&error);
                log.say(format_args!("failed: {message}"));
                result.status = Status::Failed;
                result.error = Some(ErrorDoc {
                    kind: error.kind(),
                    message,
                    agent: Some(error.agent()),
                });
            }
        }
        result.cost_usd = result.stats.usage.cost_usd(&self.prices);
        result
    }

    async fn drive(
        &self,
        request: &RunRequest,
        out: &mut RunResult,
        log: &Progress,
    ) -> Result<Finish, RunError> {
        let plan: Plan = self
            .ask(
                Role::Planner,
                agents::planner_messages(&request.prompt),
                request,
                &mut out.stats,
                log,
            )
            .await?;
        out.subtasks = plan.subtasks;

        let mut feedback: Option<Feedback> = None;
        loop {
            let previous = out.code.as_deref().zip(feedback.as_ref());
            let messages = agents::coder_messages(request, &out.subtasks, previous);
            let draft: Draft = self
                .ask(Role::Coder, messages, request, &mut out.stats, log)
                .await?;
            let language = draft
                .language
                .filter(|l| !l.trim().is_empty())
                .unwrap_or_else(|| request.language.clone());
            let code = out.code.insert(draft.code);
            let language = out.language.insert(language);

            out.execution_attempts += 1;
            let execution = self
                .executor
                .execute(
                    language,
                    code,
                    out.execution_attempts,
                    &self.jitter,
                    &log.scoped("executor"),
                )
                .await
                .map_err(RunError::Executor)?;
            let execution = out.execution.insert(execution);
            if !execution.success {
                if out.refinement_iterations < request.max_iterations {
                    out.refinement_iterations += 1;
                    log.say(format_args!(
                        "execution failed; refinement {} of {}",
                        out.refinement_iterations, request.max_iterations
                    ));
                    feedback = Some(Feedback::Execution(execution.clone()));
                    continue;
                }
                return Err(RunError::ExecutionFailed {
                    attempts: out.execution_attempts,
                    budget: request.max_iterations,
                    errors: execution.errors.clone(),
                });
            }

            let messages =
                agents::critic_messages(request, &out.subtasks, code, language, execution);
            let verdict: Verdict = match self
                .ask(Role::Critic, messages, request, &mut out.stats, log)
                .await
            {
                Ok(verdict) => verdict,
                Err(unavailable @ AgentError::Llm { .. }) => {
                    return Ok(Finish::Degraded(format!(
                        "critic unavailable: {}",
                        chain(&unavailable)
                    )));
                }
                Err(malformed) => return Err(malformed.into()),
            };
            let verdict = out.critic.insert(verdict);
            if verdict.needs_refinement && out.refinement_iterations < request.max_iterations {
                out.refinement_iterations += 1;
                log.say(format_args!(
                    "critic asks for refinement (score {}); refinement {} of {}",
                    verdict.score, out.refinement_iterations, request.max_iterations
                ));
                feedback = Some(Feedback::Critique(verdict.issues.clone()));
                continue;
            }
            return Ok(Finish::Completed);
        }
    }

    /// Asks `role` and parses its payload, re-asking once if it is malformed.
    async fn ask<P: Payload>(
        &self,
        role: Role,
        messages: Vec<agents::Message>,
        request: &RunRequest,
        stats: &mut LlmStats,
        log: &Progress,
    ) -> Result<P, AgentError> {
        let log = log.scoped(role);
        let tools = (role == Role::Coder).then(agents::write_code_tool);
        let failed = |failures| AgentError::Llm { role, failures };
        let chat = |messages| ChatRequest {
            role,
            messages,
            tools: tools.as_ref(),
            stream: request.stream,
        };
        let first = self
            .llm
            .complete(&chat(&messages), &self.jitter, stats, &log)
            .await
            .map_err(failed)?;
        let problem = match P::from_reply(&first.reply) {
            Ok(payload) => return Ok(payload),
            Err(problem) => problem,
        };
        log.say(format_args!("malformed reply: {problem}; asking once more"));
        let messages = agents::reask_messages(&messages, &first.reply, &problem);
        let second = self
            .llm
            .complete(&chat(&messages), &self.jitter, stats, &log)
            .await
            .map_err(failed)?;
        P::from_reply(&second.reply).map_err(|problem| AgentError::Malformed { role, problem })
    }
}
