//! Agent recognition: which agent of the pipeline sent an LLM request.
//!
//! Pipelines say who is calling in one of two ways, and a target configures which to look
//! at: a header (`X-Agent-Role: critic`), or the system prompt (`You are the critic
//! agent…`). The header wins when both are configured and present.

use http::{HeaderMap, HeaderName};
use regex::Regex;

use crate::errors::StubError;

/// How an LLM stub recognises the agent behind a request.
///
/// By default nothing is recognised, and rules with `when.agent` never match.
#[derive(Debug, Clone, Default)]
pub struct AgentRecognition {
    /// A request header whose value is the agent name, e.g. `X-Agent-Role` (the name is
    /// matched case-insensitively; the value is trimmed).
    pub header: Option<String>,
    /// A regex over the content of the first system (or developer) message; capture group 1
    /// is the agent name (the whole match when the regex has no group), e.g.
    /// `^You are the (\w+) agent`.
    pub system_prompt: Option<Regex>,
}

/// Where a recognised agent name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evidence {
    Header,
    SystemPrompt,
}

impl AgentRecognition {
    /// Recognises by header, then by system prompt.
    pub fn new(header: Option<&str>, system_prompt: Option<Regex>) -> Self {
        Self {
            header: header.map(str::to_string),
            system_prompt,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), StubError> {
        match &self.header {
            Some(header) if HeaderName::from_bytes(header.as_bytes()).is_err() => {
                Err(StubError::InvalidAgentHeader {
                    header: header.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The agent of a request with these headers whose first system message says
    /// `system_prompt`.
    pub(crate) fn recognise(
        &self,
        headers: &HeaderMap,
        system_prompt: Option<&str>,
    ) -> Option<(String, Evidence)> {
        let from_header = self.header.as_deref().and_then(|name| {
            let value = headers.get(name)?.to_str().ok()?.trim();
            (!value.is_empty()).then(|| (value.to_string(), Evidence::Header))
        });
        from_header.or_else(|| {
            let captures = self.system_prompt.as_ref()?.captures(system_prompt?)?;
            let name = captures.get(1).or_else(|| captures.get(0))?.as_str();
            (!name.is_empty()).then(|| (name.to_string(), Evidence::SystemPrompt))
        })
    }

    /// The value of the recognition header, for describing an unmatched request.
    pub(crate) fn header_value<'h>(&self, headers: &'h HeaderMap) -> Option<(&str, &'h str)> {
        let name = self.header.as_deref()?;
        let value = headers.get(name)?.to_str().ok()?;
        Some((name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recognition() -> AgentRecognition {
        AgentRecognition::new(
            Some("X-Agent-Role"),
            Some(Regex::new(r"^You are the (\w+) agent").unwrap()),
        )
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn header_wins_over_system_prompt() {
        let got = recognition().recognise(
            &headers(&[("x-agent-role", " critic ")]),
            Some("You are the planner agent."),
        );
        assert_eq!(got, Some(("critic".into(), Evidence::Header)));
    }

    #[test]
    fn system_prompt_when_no_header() {
        let got = recognition().recognise(&HeaderMap::new(), Some("You are the planner agent."));
        assert_eq!(got, Some(("planner".into(), Evidence::SystemPrompt)));
        assert_eq!(
            recognition().recognise(&HeaderMap::new(), Some("Hello")),
            None
        );
        assert_eq!(recognition().recognise(&HeaderMap::new(), None), None);
    }

    #[test]
    fn regex_without_group_uses_the_whole_match() {
        let recognition = AgentRecognition::new(None, Some(Regex::new(r"critic|planner").unwrap()));
        let got = recognition.recognise(&HeaderMap::new(), Some("You are the critic."));
        assert_eq!(got.map(|(name, _)| name).as_deref(), Some("critic"));
    }

    #[test]
    fn nothing_configured_recognises_nothing() {
        let got = AgentRecognition::default().recognise(
            &headers(&[("x-agent-role", "critic")]),
            Some("You are the critic agent"),
        );
        assert_eq!(got, None);
    }

    #[test]
    fn invalid_header_name_is_a_config_error() {
        let recognition = AgentRecognition::new(Some("X Agent"), None);
        assert!(matches!(
            recognition.validate(),
            Err(StubError::InvalidAgentHeader { .. })
        ));
        assert!(
            AgentRecognition::new(Some("x-agent-role"), None)
                .validate()
                .is_ok()
        );
    }
}
