//! LLM rules and fault filters: which requests they match, and why a request matched none.

use regex::Regex;

use super::dialect::Api;
use super::reply::LlmReply;
use super::request::ChatRequest;

/// Conditions on a chat-completion request; every condition that is set must hold. An
/// empty match (the default) matches every request.
#[derive(Debug, Clone, Default)]
pub struct LlmMatch {
    /// The recognised agent equals this (see [`AgentRecognition`](crate::AgentRecognition)).
    pub agent: Option<String>,
    /// The request's `model` equals this.
    pub model: Option<String>,
    /// The request went to this provider (`primary` is the one under `/v1`).
    pub provider: Option<String>,
    /// A substring of any message's content.
    pub contains: Option<String>,
    /// A regex that matches somewhere in any message's content.
    pub matches: Option<Regex>,
    /// The request's wire API: `chat`, `responses`, `anthropic`, `gemini` or
    /// `embeddings` (checked when the stub starts).
    pub api: Option<String>,
}

/// A scripted rule: requests it matches get its replies in sequence.
#[derive(Debug, Clone)]
pub struct LlmRule {
    /// Names the rule in journals and reports, e.g. `llm[1]`.
    pub id: String,
    /// Which requests the rule answers.
    pub when: LlmMatch,
    /// The nth matching call gets the nth reply; the last repeats. Must not be empty.
    pub replies: Vec<LlmReply>,
}

/// A fault armed on the LLM stub for the requests `when` matches.
#[derive(Debug, Clone)]
pub struct LlmFaultRule {
    /// Which requests the fault's schedule counts.
    pub when: LlmMatch,
    /// The fault, its schedule and its id.
    pub rule: chaos::FaultRule,
}

/// What a request offers the conditions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub(crate) agent: Option<&'a str>,
    pub(crate) provider: &'a str,
    pub(crate) api: Api,
    pub(crate) request: &'a ChatRequest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Agent,
    Model,
    Provider,
    Contains,
    Matches,
    Api,
}

impl LlmMatch {
    pub(crate) fn is_match(&self, subject: &Subject<'_>) -> bool {
        self.failed(subject).next().is_none()
    }

    /// Each failed condition, described: `when.agent = "critic" but the request's agent is
    /// "planner"`.
    pub(crate) fn failures(&self, subject: &Subject<'_>) -> Vec<String> {
        self.failed(subject)
            .map(|condition| self.describe(condition, subject))
            .collect()
    }

    fn failed<'s>(&'s self, subject: &'s Subject<'_>) -> impl Iterator<Item = Condition> + 's {
        let request = subject.request;
        [
            (
                Condition::Agent,
                self.agent
                    .as_deref()
                    .map(|agent| subject.agent == Some(agent)),
            ),
            (
                Condition::Model,
                self.model.as_deref().map(|model| request.model == model),
            ),
            (
                Condition::Provider,
                self.provider
                    .as_deref()
                    .map(|provider| subject.provider == provider),
            ),
            (
                Condition::Contains,
                self.contains
                    .as_deref()
                    .map(|needle| request.contents().any(|content| content.contains(needle))),
            ),
            (
                Condition::Matches,
                self.matches
                    .as_ref()
                    .map(|regex| request.contents().any(|content| regex.is_match(content))),
            ),
            (
                Condition::Api,
                self.api.as_deref().map(|api| subject.api.name() == api),
            ),
        ]
        .into_iter()
        .filter_map(|(condition, held)| (held == Some(false)).then_some(condition))
    }

    fn describe(&self, condition: Condition, subject: &Subject<'_>) -> String {
        let expected =
            |value: &Option<String>| format!("{:?}", value.as_deref().unwrap_or_default());
        match condition {
            Condition::Agent => match subject.agent {
                Some(agent) => format!(
                    "when.agent = {} but the request's agent is {agent:?}",
                    expected(&self.agent)
                ),
                None => format!(
                    "when.agent = {} but no agent was recognised in the request",
                    expected(&self.agent)
                ),
            },
            Condition::Model => format!(
                "when.model = {} but the request's model is {:?}",
                expected(&self.model),
                subject.request.model
            ),
            Condition::Provider => format!(
                "when.provider = {} but the request went to provider {:?}",
                expected(&self.provider),
                subject.provider
            ),
            Condition::Contains => format!(
                "when.contains = {} but no message contains it",
                expected(&self.contains)
            ),
            Condition::Matches => format!(
                "when.matches = /{}/ but no message matches it",
                self.matches.as_ref().map(Regex::as_str).unwrap_or_default()
            ),
            Condition::Api => format!(
                "when.api = {} but the request is for the {} API",
                expected(&self.api),
                subject.api.name()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(model: &str, user: &str) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            stream: false,
            include_usage: false,
            tools: 0,
            messages: vec![super::super::request::Message {
                role: "user".into(),
                content: user.into(),
            }],
        }
    }

    #[test]
    fn every_set_condition_must_hold() {
        let request = request("gpt-4o", "Create a detailed medieval sword");
        let subject = Subject {
            agent: Some("planner"),
            provider: "primary",
            api: Api::Chat,
            request: &request,
        };
        assert!(LlmMatch::default().is_match(&subject));
        let when = LlmMatch {
            agent: Some("planner".into()),
            model: Some("gpt-4o".into()),
            provider: Some("primary".into()),
            contains: Some("medieval".into()),
            matches: Some(Regex::new(r"sw\w+d").unwrap()),
            api: Some("chat".into()),
        };
        assert!(when.is_match(&subject));
        assert!(
            !LlmMatch {
                agent: Some("critic".into()),
                ..when.clone()
            }
            .is_match(&subject)
        );
    }

    #[test]
    fn failures_say_what_was_expected_and_what_came() {
        let request = request("gpt-4o", "hi");
        let subject = Subject {
            agent: Some("planner"),
            provider: "fallback",
            api: Api::Chat,
            request: &request,
        };
        let when = LlmMatch {
            agent: Some("critic".into()),
            model: Some("gpt-4o".into()),
            provider: Some("primary".into()),
            contains: Some("sword".into()),
            matches: Some(Regex::new("^x").unwrap()),
            api: Some("anthropic".into()),
        };
        assert_eq!(
            when.failures(&subject),
            [
                r#"when.agent = "critic" but the request's agent is "planner""#,
                r#"when.provider = "primary" but the request went to provider "fallback""#,
                r#"when.contains = "sword" but no message contains it"#,
                "when.matches = /^x/ but no message matches it",
                r#"when.api = "anthropic" but the request is for the chat API"#,
            ]
        );
        let anonymous = Subject {
            agent: None,
            ..subject
        };
        assert_eq!(
            LlmMatch {
                agent: Some("critic".into()),
                ..Default::default()
            }
            .failures(&anonymous),
            [r#"when.agent = "critic" but no agent was recognised in the request"#]
        );
    }
}
