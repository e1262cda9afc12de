//! The result document: one JSON object per run, every key always present.

use serde::{Deserialize, Serialize};

use crate::agents::{Role, Verdict};
use crate::config::{Mode, Prices};
use crate::errors::chain;
use crate::executor::Execution;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Completed,
    /// Completed without the critic's verdict; `degraded_reason` says why.
    Degraded,
    Failed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
        }
    }
}

/// `error` in the result document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ErrorDoc {
    /// `validation`, `config`, `llm_error`, `malformed_llm_output`, `executor_error` or
    /// `executor_failed`.
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) agent: Option<&'static str>,
}

/// Token counts, as OpenAI reports them in `usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) total_tokens: u64,
}

impl Usage {
    /// Adds `other`; a report without `total_tokens` counts prompt + completion.
    pub(crate) fn add(&mut self, other: Usage) {
        let total = if other.total_tokens == 0 {
            other.prompt_tokens.saturating_add(other.completion_tokens)
        } else {
            other.total_tokens
        };
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(total);
    }

    pub(crate) fn cost_usd(&self, prices: &Prices) -> f64 {
        self.prompt_tokens as f64 / 1000.0 * prices.input_per_1k
            + self.completion_tokens as f64 / 1000.0 * prices.output_per_1k
    }
}

/// HTTP attempts per agent role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoleCounts {
    pub(crate) planner: u32,
    pub(crate) coder: u32,
    pub(crate) critic: u32,
}

/// HTTP attempts per LLM provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProviderCounts {
    pub(crate) primary: u32,
    pub(crate) fallback: u32,
}

/// Which configured LLM provider a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProviderKind {
    Primary,
    Fallback,
}

/// What a run spent on the LLM: attempts and tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LlmStats {
    pub(crate) llm_requests: RoleCounts,
    pub(crate) provider_calls: ProviderCounts,
    pub(crate) usage: Usage,
}

impl LlmStats {
    /// Counts one HTTP attempt by `role` to `provider`.
    pub(crate) fn count_attempt(&mut self, role: Role, provider: ProviderKind) {
        let by_role = match role {
            Role::Planner => &mut self.llm_requests.planner,
            Role::Coder => &mut self.llm_requests.coder,
            Role::Critic => &mut self.llm_requests.critic,
        };
        *by_role += 1;
        let by_provider = match provider {
            ProviderKind::Primary => &mut self.provider_calls.primary,
            ProviderKind::Fallback => &mut self.provider_calls.fallback,
        };
        *by_provider += 1;
    }
}

/// What a run has produced so far: the part of the result document the steps fill in.
/// A serve-mode checkpoint saves it, so its fields read back as they were written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Work {
    pub(crate) subtasks: Vec<String>,
    pub(crate) code: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) execution: Option<Execution>,
    pub(crate) critic: Option<Verdict>,
    pub(crate) refinement_iterations: u32,
    pub(crate) execution_attempts: u32,
    #[serde(flatten)]
    pub(crate) stats: LlmStats,
}

/// The result document of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RunResult {
    pub(crate) status: Status,
    pub(crate) mode: Mode,
    #[serde(flatten)]
    pub(crate) work: Work,
    pub(crate) cost_usd: f64,
    pub(crate) degraded_reason: Option<String>,
    pub(crate) error: Option<ErrorDoc>,
}

impl RunResult {
    /// A run that has not started: status `failed`, nothing done yet. The flow fills it in.
    pub(crate) fn empty(mode: Mode) -> Self {
        Self {
            status: Status::Failed,
            mode,
            work: Work::default(),
            cost_usd: 0.0,
            degraded_reason: None,
            error: None,
        }
    }

    /// A run refused before it started, for `error` of the given `kind`.
    pub(crate) fn refused(mode: Mode, kind: &'static str, error: &dyn std::error::Error) -> Self {
        Self {
            error: Some(ErrorDoc {
                kind,
                message: chain(error),
                agent: None,
            }),
            ..Self::empty(mode)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_key_is_present() {
        let doc = serde_json::to_value(RunResult::empty(Mode::Resilient)).unwrap();
        assert_eq!(
            doc,
            json!({
                "status": "failed", "mode": "resilient", "subtasks": [], "code": null, "language": null,
                "execution": null, "critic": null, "refinement_iterations": 0,
                "execution_attempts": 0,
                "llm_requests": {"planner": 0, "coder": 0, "critic": 0},
                "provider_calls": {"primary": 0, "fallback": 0},
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "cost_usd": 0.0, "degraded_reason": null, "error": null,
            })
        );
    }

    #[test]
    fn keys_keep_their_order() {
        let text = serde_json::to_string(&RunResult::empty(Mode::Fragile)).unwrap();
        let keys = [
            "status",
            "mode",
            "subtasks",
            "code",
            "language",
            "execution",
            "critic",
            "refinement_iterations",
            "execution_attempts",
            "llm_requests",
            "provider_calls",
            "usage",
            "cost_usd",
            "degraded_reason",
            "error",
        ];
        let positions: Vec<_> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.is_sorted(), "{text}");
        assert!(text.contains(r#""mode":"fragile""#), "{text}");
    }

    #[test]
    fn work_reads_back_as_written() {
        let mut work = Work {
            subtasks: vec!["blade".into()],
            code: Some("print(1)".into()),
            language: Some("python".into()),
            execution: Some(Execution {
                success: true,
                artifacts: vec!["a".into()],
                logs: "ran".into(),
                errors: vec![],
            }),
            critic: Some(Verdict {
                score: 7.5,
                needs_refinement: true,
                issues: vec!["dull".into()],
            }),
            refinement_iterations: 1,
            execution_attempts: 2,
            stats: LlmStats::default(),
        };
        work.stats
            .count_attempt(Role::Planner, ProviderKind::Fallback);
        work.stats.usage.add(Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
        });
        let text = serde_json::to_string(&work).unwrap();
        assert_eq!(serde_json::from_str::<Work>(&text).unwrap(), work);
    }

    #[test]
    fn usage_sums_and_costs() {
        let mut usage = Usage::default();
        usage.add(Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            total_tokens: 1500,
        });
        usage.add(Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            total_tokens: 0,
        });
        assert_eq!(usage.total_tokens, 3000);
        let prices = Prices {
            input_per_1k: 0.001,
            output_per_1k: 0.002,
        };
        assert!((usage.cost_usd(&prices) - 0.004).abs() < 1e-12);
    }

    #[test]
    fn counts_attempts_by_role_and_provider() {
        let mut stats = LlmStats::default();
        stats.count_attempt(Role::Coder, ProviderKind::Primary);
        stats.count_attempt(Role::Coder, ProviderKind::Fallback);
        stats.count_attempt(Role::Critic, ProviderKind::Fallback);
        assert_eq!(
            stats.llm_requests,
            RoleCounts {
                planner: 0,
                coder: 2,
                critic: 1
            }
        );
        assert_eq!(
            stats.provider_calls,
            ProviderCounts {
                primary: 1,
                fallback: 2
            }
        );
    }
}
