//! The pipeline: planner → coder → executor → critic, with a refinement loop.
//!
//! ```text
//! planner ─▶ coder ─▶ executor ──fails──▶ budget left? ─yes─▶ coder (with the errors)
//!                         │ succeeds                   └─no──▶ failed: executor_failed
//!                         ▼
//!                      critic ──needs refinement and budget left──▶ coder (with the issues)
//!                         │ otherwise: completed        unavailable: degraded
//! ```
//!
//! A run is a sequence of [`Step`]s. After each one, the run's [`Checkpoint`] (the work
//! done so far and the step to take next) goes to a [`Journal`]: `serve` with a state
//! directory saves it, so that a restarted process resumes the run at its next step
//! without repeating the LLM calls of the steps already done.
//!
//! In fragile mode the flow takes no second chances: a malformed reply is not re-asked, a
//! failed critic fails the run, a failed execution is not fed back to the coder (and the
//! clients do not retry or fall back). A failure that resilience would have handled
//! becomes [`RunError::Fragile`], which names what was switched off.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agents::{self, Draft, Feedback, Payload, Plan, Role, Verdict};
use crate::config::{Config, Mode, PlantedBug, Prices};
use crate::errors::{AgentError, AttemptError, CallError, ConfigError, RunError, chain};
use crate::executor::ExecutorClient;
use crate::http;
use crate::llm::{ChatRequest, LlmClient};
use crate::output::{ErrorDoc, LlmStats, RunResult, Status, Work};
use crate::progress::Progress;
use crate::request::RunRequest;
use crate::retry::Jitter;

/// The pipeline of a refpipe process; one instance serves every run.
pub(crate) struct Pipeline {
    llm: LlmClient,
    executor: ExecutorClient,
    jitter: Jitter,
    prices: Prices,
    mode: Mode,
    /// Whether a fallback provider is configured (fragile mode does not use it).
    fallback_configured: bool,
    /// `REFPIPE_WORK_DELAY`, a benchmark knob: spent after each agent step.
    work_delay: Duration,
    /// `REFPIPE_PLANTED_BUG`, a test knob: a parsing bug planted on purpose.
    planted_bug: Option<PlantedBug>,
}

/// The next thing a run does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub(crate) enum Step {
    /// Ask the planner for subtasks.
    Plan,
    /// Ask the coder for a program; with what to fix in the last one, if anything.
    Code { feedback: Option<Feedback> },
    /// Execute the last program.
    Execute,
    /// Ask the critic about the last program, which executed successfully.
    Critique,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plan => "plan",
            Self::Code { .. } => "code",
            Self::Execute => "execute",
            Self::Critique => "critique",
        })
    }
}

/// Where a run stands: what its finished steps produced, and the step to take next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) next: Step,
    pub(crate) work: Work,
}

impl Checkpoint {
    /// A run that has done nothing yet.
    pub(crate) fn start() -> Self {
        Self {
            next: Step::Plan,
            work: Work::default(),
        }
    }

    /// Whether `work` has what the next step needs. Checkpoints refpipe writes always do;
    /// one read back from disk is checked with this.
    pub(crate) fn check(&self) -> Result<(), String> {
        let work = &self.work;
        let missing = match self.next {
            Step::Plan => None,
            Step::Code { .. } if work.subtasks.is_empty() => Some("subtasks"),
            Step::Code { .. } => None,
            Step::Execute | Step::Critique if work.code.is_none() => Some("code"),
            Step::Execute | Step::Critique if work.language.is_none() => Some("language"),
            Step::Execute => None,
            Step::Critique if !work.execution.as_ref().is_some_and(|e| e.success) => {
                Some("a successful execution")
            }
            Step::Critique => None,
        };
        match missing {
            Some(what) => Err(format!(
                "step `{}` needs {what}, which is missing",
                self.next
            )),
            None => Ok(()),
        }
    }
}

/// Told of every step a run finishes, with the run's checkpoint after it.
pub(crate) trait Journal: Sync {
    fn step_done(&self, checkpoint: &Checkpoint) -> impl Future<Output = ()> + Send;
}

/// The journal of a run that is not persisted: forgets everything. For `refpipe run`,
/// `serve` without a state directory, and tests.
pub(crate) struct NoJournal;

impl Journal for NoJournal {
    async fn step_done(&self, _: &Checkpoint) {}
}

/// How a run that did not fail ended.
enum Finish {
    Completed,
    Degraded(String),
}

/// What a finished step leads to.
enum Next {
    Step(Step),
    Finish(Finish),
}

impl Pipeline {
    pub(crate) fn new(config: &Config) -> Result<Self, ConfigError> {
        let http = http::client()?;
        Ok(Self {
            llm: LlmClient::new(config, http.clone()),
            executor: ExecutorClient::new(config, http),
            jitter: Jitter::new(config.seed),
            prices: config.prices,
            mode: config.mode,
            fallback_configured: config.fallback.is_some(),
            work_delay: config.knobs.work_delay,
            planted_bug: config.knobs.planted_bug,
        })
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Runs `request` to the end from `checkpoint` ([`Checkpoint::start`] for a new run),
    /// telling `journal` of every step done. Failures are reported in the result, never
    /// returned.
    pub(crate) async fn run(
        &self,
        request: &RunRequest,
        checkpoint: Checkpoint,
        journal: &impl Journal,
        log: &Progress,
    ) -> RunResult {
        let mut checkpoint = checkpoint;
        let finish = self.drive(request, &mut checkpoint, journal, log).await;
        let mut result = RunResult::empty(self.mode);
        result.work = checkpoint.work;
        match finish {
            Ok(Finish::Completed) => result.status = Status::Completed,
            Ok(Finish::Degraded(reason)) => {
                log.say(format_args!("degraded: {reason}"));
                result.status = Status::Degraded;
                result.work.critic = None;
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
        result.cost_usd = result.work.stats.usage.cost_usd(&self.prices);
        result
    }

    async fn drive(
        &self,
        request: &RunRequest,
        checkpoint: &mut Checkpoint,
        journal: &impl Journal,
        log: &Progress,
    ) -> Result<Finish, RunError> {
        loop {
            let step = checkpoint.next.clone();
            match self.step(step, request, &mut checkpoint.work, log).await? {
                Next::Step(next) => {
                    checkpoint.next = next;
                    journal.step_done(checkpoint).await;
                }
                Next::Finish(finish) => return Ok(finish),
            }
        }
    }

    /// Takes one step. If `work` lacks what it needs (a checkpoint refpipe did not write),
    /// goes back to the step that produces it.
    async fn step(
        &self,
        step: Step,
        request: &RunRequest,
        work: &mut Work,
        log: &Progress,
    ) -> Result<Next, RunError> {
        match step {
            Step::Plan => {
                let messages = agents::planner_messages(&request.prompt);
                let plan = self
                    .ask::<Plan>(Role::Planner, messages, request, &mut work.stats, log)
                    .await;
                self.process().await;
                let plan = plan.map_err(|e| self.fragile(e.into()))?;
                work.subtasks = plan.subtasks;
                Ok(Next::Step(Step::Code { feedback: None }))
            }
            Step::Code { .. } if work.subtasks.is_empty() => Ok(Next::Step(Step::Plan)),
            Step::Code { feedback } => {
                let previous = work.code.as_deref().zip(feedback.as_ref());
                let messages = agents::coder_messages(request, &work.subtasks, previous);
                let draft = self
                    .ask::<Draft>(Role::Coder, messages, request, &mut work.stats, log)
                    .await;
                self.process().await;
                let draft = draft.map_err(|e| self.fragile(e.into()))?;
                let language = draft
                    .language
                    .filter(|l| !l.trim().is_empty())
                    .unwrap_or_else(|| request.language.clone());
                work.code = Some(draft.code);
                work.language = Some(language);
                Ok(Next::Step(Step::Execute))
            }
            Step::Execute => {
                let (Some(code), Some(language)) = (&work.code, &work.language) else {
                    return Ok(Next::Step(Step::Code { feedback: None }));
                };
                work.execution_attempts += 1;
                let execution = self
                    .executor
                    .execute(
                        language,
                        code,
                        work.execution_attempts,
                        &self.jitter,
                        &log.scoped("executor"),
                    )
                    .await;
                self.process().await;
                let execution = execution.map_err(|e| self.fragile(RunError::Executor(e)))?;
                let execution = work.execution.insert(execution);
                if execution.success {
                    return Ok(Next::Step(Step::Critique));
                }
                let budget_left = work.refinement_iterations < request.max_iterations;
                if budget_left && self.mode == Mode::Resilient {
                    work.refinement_iterations += 1;
                    log.say(format_args!(
                        "execution failed; refinement {} of {}",
                        work.refinement_iterations, request.max_iterations
                    ));
                    let feedback = Some(Feedback::Execution(execution.clone()));
                    return Ok(Next::Step(Step::Code { feedback }));
                }
                let errors = execution.errors.clone();
                Err(self.fragile(if budget_left {
                    RunError::ExecutionNotRefined {
                        attempts: work.execution_attempts,
                        errors,
                    }
                } else {
                    RunError::ExecutionFailed {
                        attempts: work.execution_attempts,
                        budget: request.max_iterations,
                        errors,
                    }
                }))
            }
            Step::Critique => {
                let (Some(code), Some(language), Some(execution)) =
                    (&work.code, &work.language, &work.execution)
                else {
                    return Ok(Next::Step(Step::Code { feedback: None }));
                };
                if !execution.success {
                    return Ok(Next::Step(Step::Execute));
                }
                let messages =
                    agents::critic_messages(request, &work.subtasks, code, language, execution);
                let verdict = self
                    .ask::<Verdict>(Role::Critic, messages, request, &mut work.stats, log)
                    .await;
                self.process().await;
                let verdict = match verdict {
                    Ok(verdict) => verdict,
                    Err(unavailable @ AgentError::Llm { .. }) if self.mode == Mode::Resilient => {
                        return Ok(Next::Finish(Finish::Degraded(format!(
                            "critic unavailable: {}",
                            chain(&unavailable)
                        ))));
                    }
                    Err(error) => return Err(self.fragile(error.into())),
                };
                let verdict = work.critic.insert(verdict);
                if verdict.needs_refinement && work.refinement_iterations < request.max_iterations {
                    work.refinement_iterations += 1;
                    log.say(format_args!(
                        "critic asks for refinement (score {}); refinement {} of {}",
                        verdict.score, work.refinement_iterations, request.max_iterations
                    ));
                    let feedback = Some(Feedback::Critique(verdict.issues.clone()));
                    return Ok(Next::Step(Step::Code { feedback }));
                }
                Ok(Next::Finish(Finish::Completed))
            }
        }
    }

    /// The pipeline's own processing of an agent's answer, after each agent step (the
    /// planner, the coder, the executor call, the critic), whatever the answer was. Takes
    /// no time unless `REFPIPE_WORK_DELAY` (a benchmark knob) is set.
    async fn process(&self) {
        if !self.work_delay.is_zero() {
            tokio::time::sleep(self.work_delay).await;
        }
    }

    /// Asks `role` and parses its payload, re-asking once if it is malformed (in resilient
    /// mode).
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
        let read = |reply: &crate::llm::Reply| {
            if self.planted_bug == Some(PlantedBug::UncheckedPlan)
                && role == Role::Planner
                && let Some(n) = agents::subtask_count_unchecked(reply)
            {
                log.say(format_args!("the plan has {n} subtasks"));
            }
            let payload = P::from_reply(reply)?;
            Ok(match self.planted_bug {
                Some(bug) => payload.planted(bug, reply),
                None => payload,
            })
        };
        let problem = match read(&first.reply) {
            Ok(payload) => return Ok(payload),
            Err(problem) => problem,
        };
        if self.mode == Mode::Fragile {
            return Err(AgentError::Malformed {
                role,
                problem,
                reasked: false,
            });
        }
        log.say(format_args!("malformed reply: {problem}; asking once more"));
        let messages = agents::reask_messages(&messages, &first.reply, &problem);
        let second = self
            .llm
            .complete(&chat(&messages), &self.jitter, stats, &log)
            .await
            .map_err(failed)?;
        read(&second.reply).map_err(|problem| AgentError::Malformed {
            role,
            problem,
            reasked: true,
        })
    }

    /// `error`, in fragile mode wrapped with the resilience that would have handled it.
    fn fragile(&self, error: RunError) -> RunError {
        if self.mode == Mode::Resilient {
            return error;
        }
        let missing = missing_resilience(&error, self.fallback_configured);
        if missing.is_empty() {
            return error;
        }
        RunError::Fragile {
            failure: Box::new(error),
            missing: missing.join(", "),
        }
    }
}

/// What resilient mode would have done about `error`, which fragile mode did not; empty if
/// resilient mode would have failed the run the same way.
fn missing_resilience(error: &RunError, fallback_configured: bool) -> Vec<&'static str> {
    let mut missing = Vec::new();
    let mut retries = |failure: Option<&CallError>, fallback: bool| {
        let Some(CallError::Failed { source, .. }) = failure else {
            return;
        };
        if source.is_retryable() {
            missing.push("no retries");
            if matches!(
                source,
                AttemptError::Status {
                    retry_after: Some(_),
                    ..
                }
            ) {
                missing.push("Retry-After ignored");
            }
            if fallback {
                missing.push("no fallback provider");
            }
        }
    };
    match error {
        RunError::Agent(AgentError::Llm { role, failures }) => {
            retries(failures.last(), fallback_configured);
            if *role == Role::Critic {
                missing.push("a critic failure fails the run instead of degrading it");
            }
        }
        RunError::Agent(AgentError::Malformed { reasked: false, .. }) => {
            missing.push("no re-ask of a malformed reply");
        }
        RunError::Executor(failure) => retries(Some(failure), false),
        RunError::ExecutionNotRefined { .. } => {
            missing.push("a failed execution is not fed back to the coder");
        }
        RunError::Agent(AgentError::Malformed { reasked: true, .. })
        | RunError::ExecutionFailed { .. }
        | RunError::Fragile { .. } => {}
    }
    missing
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;
    use crate::executor::Execution;

    fn status(code: u16, retry_after: Option<u64>) -> CallError {
        CallError::Failed {
            target: "primary provider",
            attempts: 1,
            source: AttemptError::Status {
                url: "u".into(),
                status: StatusCode::from_u16(code).unwrap(),
                message: "m".into(),
                retry_after: retry_after.map(std::time::Duration::from_secs),
            },
        }
    }

    fn llm(role: Role, failure: CallError) -> RunError {
        RunError::Agent(AgentError::Llm {
            role,
            failures: vec![failure],
        })
    }

    #[test]
    fn fragile_failures_name_the_missing_resilience() {
        let cases = [
            (
                llm(Role::Planner, status(429, Some(1))),
                true,
                "no retries, Retry-After ignored, no fallback provider",
            ),
            (llm(Role::Coder, status(503, None)), false, "no retries"),
            (
                llm(Role::Critic, status(500, None)),
                false,
                "no retries, a critic failure fails the run instead of degrading it",
            ),
            (
                llm(Role::Critic, status(404, None)),
                true,
                "a critic failure fails the run instead of degrading it",
            ),
            (
                RunError::Agent(AgentError::Malformed {
                    role: Role::Planner,
                    problem: "p".into(),
                    reasked: false,
                }),
                true,
                "no re-ask of a malformed reply",
            ),
            (RunError::Executor(status(503, None)), true, "no retries"),
            (
                RunError::ExecutionNotRefined {
                    attempts: 1,
                    errors: vec![],
                },
                false,
                "a failed execution is not fed back to the coder",
            ),
        ];
        for (error, fallback, expected) in cases {
            assert_eq!(missing_resilience(&error, fallback).join(", "), expected);
        }
    }

    #[test]
    fn failures_resilience_would_not_help_are_left_alone() {
        let unhelped = [
            llm(Role::Planner, status(404, None)),
            RunError::Agent(AgentError::Malformed {
                role: Role::Critic,
                problem: "p".into(),
                reasked: true,
            }),
            RunError::ExecutionFailed {
                attempts: 1,
                budget: 0,
                errors: vec![],
            },
        ];
        for error in unhelped {
            assert!(missing_resilience(&error, true).is_empty(), "{error}");
        }
    }

    #[test]
    fn checkpoints_read_back_and_are_checked() {
        let mut checkpoint = Checkpoint::start();
        assert_eq!(checkpoint.check(), Ok(()));
        checkpoint.next = Step::Code {
            feedback: Some(Feedback::Critique(vec!["dull".into()])),
        };
        assert_eq!(
            checkpoint.check().unwrap_err(),
            "step `code` needs subtasks, which is missing"
        );
        checkpoint.work.subtasks = vec!["blade".into()];
        checkpoint.work.code = Some("print(1)".into());
        checkpoint.work.language = Some("python".into());
        assert_eq!(checkpoint.check(), Ok(()));
        let text = serde_json::to_string(&checkpoint).unwrap();
        assert!(
            text.starts_with(r#"{"next":{"step":"code","feedback":{"critique":["#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<Checkpoint>(&text).unwrap(),
            checkpoint
        );

        checkpoint.next = Step::Critique;
        assert_eq!(
            checkpoint.check().unwrap_err(),
            "step `critique` needs a successful execution, which is missing"
        );
        checkpoint.work.execution = Some(Execution {
            success: true,
            artifacts: vec![],
            logs: String::new(),
            errors: vec![],
        });
        assert_eq!(checkpoint.check(), Ok(()));
    }
}
