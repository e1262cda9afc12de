//! The agents: their roles, prompts, and the payloads they must answer with.
//!
//! Pure functions only; [`crate::flow`] sends the messages built here and parses the
//! replies with [`Payload::from_reply`].

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::PlantedBug;
use crate::executor::Execution;
use crate::llm::Reply;
use crate::request::RunRequest;

/// An agent role, sent as `X-Agent-Role` and named in the system prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Planner,
    Coder,
    Critic,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Planner => "planner",
            Self::Coder => "coder",
            Self::Critic => "critic",
        }
    }

    /// Always starts with `You are the <role> agent`.
    fn system_prompt(self) -> String {
        let task = match self {
            Self::Planner => {
                "Break the user's request into a short list of concrete, ordered subtasks. \
                 Reply with only a JSON object: {\"subtasks\": [\"...\"]}."
            }
            Self::Coder => {
                "Write one complete, runnable program that fulfils the request and its \
                 subtasks. Call the `write_code` tool, or reply with only a JSON object: \
                 {\"code\": \"...\", \"language\": \"...\"}."
            }
            Self::Critic => {
                "Review the program against the request and its execution result. Score it \
                 from 0 to 10 and say whether it needs another iteration. Reply with only a \
                 JSON object: {\"score\": 0, \"needs_refinement\": false, \"issues\": [\"...\"]}."
            }
        };
        format!("You are the {self} agent. {task}")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A chat message as OpenAI takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Message {
    pub(crate) role: &'static str,
    pub(crate) content: String,
}

impl Message {
    fn system(content: String) -> Self {
        Self {
            role: "system",
            content,
        }
    }
    fn user(content: String) -> Self {
        Self {
            role: "user",
            content,
        }
    }
}

/// What the coder is told to fix in its next draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Feedback {
    /// The last draft failed to execute.
    Execution(Execution),
    /// The critic asked for refinement.
    Critique(Vec<String>),
}

pub(crate) fn planner_messages(prompt: &str) -> Vec<Message> {
    vec![
        Message::system(Role::Planner.system_prompt()),
        Message::user(prompt.to_owned()),
    ]
}

/// The coder's messages; `previous` is the last draft and what to fix in it.
pub(crate) fn coder_messages(
    request: &RunRequest,
    subtasks: &[String],
    previous: Option<(&str, &Feedback)>,
) -> Vec<Message> {
    let mut user = format!(
        "Request: {}\n\nSubtasks:\n{}\nLanguage: {}\n",
        request.prompt,
        numbered(subtasks),
        request.language
    );
    if let Some((code, feedback)) = previous {
        user.push_str(&format!("\nYour previous program:\n```\n{code}\n```\n"));
        match feedback {
            Feedback::Execution(execution) => user.push_str(&format!(
                "\nIt failed to execute. Errors:\n{}\nLogs:\n{}\nFix it.\n",
                bullets(&execution.errors),
                execution.logs
            )),
            Feedback::Critique(issues) => user.push_str(&format!(
                "\nThe critic asked for changes:\n{}\nAddress them.\n",
                bullets(issues)
            )),
        }
    }
    vec![
        Message::system(Role::Coder.system_prompt()),
        Message::user(user),
    ]
}

pub(crate) fn critic_messages(
    request: &RunRequest,
    subtasks: &[String],
    code: &str,
    language: &str,
    execution: &Execution,
) -> Vec<Message> {
    let user = format!(
        "Request: {}\n\nSubtasks:\n{}\nProgram ({language}):\n```\n{code}\n```\n\n\
         Execution: success, artifacts {:?}\nLogs:\n{}\n",
        request.prompt,
        numbered(subtasks),
        execution.artifacts,
        execution.logs
    );
    vec![
        Message::system(Role::Critic.system_prompt()),
        Message::user(user),
    ]
}

/// `messages` followed by the malformed `reply` and a request to correct it.
pub(crate) fn reask_messages(messages: &[Message], reply: &Reply, problem: &str) -> Vec<Message> {
    let mut messages = messages.to_vec();
    messages.push(Message {
        role: "assistant",
        content: reply.text().unwrap_or_default().to_owned(),
    });
    messages.push(Message::user(format!(
        "Your reply could not be used: {problem}. Reply again with only the JSON object \
         described above, and nothing else."
    )));
    messages
}

/// The coder's `write_code` tool, in OpenAI's `tools` format.
pub(crate) fn write_code_tool() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "write_code",
            "description": "Submit the complete program that fulfils the request.",
            "parameters": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "The complete source code."},
                    "language": {"type": "string", "description": "The programming language."}
                },
                "required": ["code"]
            }
        }
    }])
}

fn numbered(items: &[String]) -> String {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}. {s}\n", i + 1))
        .collect()
}

fn bullets(items: &[String]) -> String {
    if items.is_empty() {
        return "- (none given)\n".to_owned();
    }
    items.iter().map(|s| format!("- {s}\n")).collect()
}

/// An agent's answer, parsed from the JSON object in its reply.
pub(crate) trait Payload: Sized + for<'de> Deserialize<'de> {
    /// Checks beyond the JSON shape.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// What a planted bug (`REFPIPE_PLANTED_BUG`, a test knob) changes in a payload read
    /// from `reply`; nothing by default.
    fn planted(self, _bug: PlantedBug, _reply: &Reply) -> Self {
        self
    }

    /// The payload of `reply`: the first tool call's arguments if it has tool calls, its
    /// content otherwise, without a Markdown code fence around it. The error says what is
    /// wrong, for the re-ask and for the user.
    fn from_reply(reply: &Reply) -> Result<Self, String> {
        let (what, text) = match reply {
            Reply::ToolCall { name, arguments } => {
                (format!("tool call `{name}` arguments"), arguments)
            }
            Reply::Content(text) => ("content".to_owned(), text),
            Reply::Empty => return Err("the reply has neither content nor a tool call".to_owned()),
            Reply::Invalid(problem) => return Err(problem.clone()),
        };
        let value: Value = serde_json::from_str(unfenced(text))
            .map_err(|e| format!("{what} is not JSON ({e})"))?;
        if !value.is_object() {
            return Err(format!("{what} is JSON but not an object"));
        }
        let payload: Self = serde_json::from_value(value)
            .map_err(|e| format!("{what} has the wrong shape ({e})"))?;
        payload
            .check()
            .map_err(|problem| format!("{what}: {problem}"))?;
        Ok(payload)
    }
}

/// `text` without surrounding whitespace and without a Markdown code fence around it
/// (```` ```json ```` or ```` ``` ```` on the first line, ```` ``` ```` on the last), as
/// models often wrap the JSON they were asked for. Anything else is left as it is.
fn unfenced(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let Some((tag, body)) = rest.split_once('\n') else {
        return trimmed;
    };
    let tag_is_a_language = tag.trim().chars().all(|c| c.is_ascii_alphanumeric());
    match body.trim_end().strip_suffix("```") {
        Some(inner) if tag_is_a_language => inner.trim(),
        _ => trimmed,
    }
}

/// With `REFPIPE_PLANTED_BUG=unchecked-plan`: the number of subtasks of a planner reply
/// that is JSON, read without checking that `subtasks` is a list (it panics if not, the
/// planted bug). None for a reply that is not JSON, which the normal parsing reports.
pub(crate) fn subtask_count_unchecked(reply: &Reply) -> Option<usize> {
    let text = reply.text()?;
    let value: Value = serde_json::from_str(unfenced(text)).ok()?;
    #[allow(clippy::unwrap_used)] // the planted bug: a realistic unchecked index
    let count = value["subtasks"].as_array().unwrap().len();
    Some(count)
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Plan {
    pub(crate) subtasks: Vec<String>,
}

impl Payload for Plan {
    fn check(&self) -> Result<(), String> {
        if self.subtasks.is_empty() {
            return Err("`subtasks` is empty".to_owned());
        }
        Ok(())
    }
}

/// The coder's answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Draft {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) language: Option<String>,
}

impl Payload for Draft {
    fn check(&self) -> Result<(), String> {
        if self.code.trim().is_empty() {
            return Err("`code` is empty".to_owned());
        }
        Ok(())
    }
}

/// The critic's answer, as it appears in the result document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Verdict {
    pub(crate) score: f64,
    pub(crate) needs_refinement: bool,
    #[serde(default)]
    pub(crate) issues: Vec<String>,
}

impl Payload for Verdict {
    /// `critic-text-match`: `needs_refinement` read by matching text, not from the JSON.
    fn planted(mut self, bug: PlantedBug, reply: &Reply) -> Self {
        if bug == PlantedBug::CriticTextMatch {
            self.needs_refinement = reply
                .text()
                .is_some_and(|t| t.contains("\"needs_refinement\":true"));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(s: &str) -> Reply {
        Reply::Content(s.to_owned())
    }

    #[test]
    fn system_prompts_name_the_role_first() {
        for role in [Role::Planner, Role::Coder, Role::Critic] {
            assert!(
                role.system_prompt()
                    .starts_with(&format!("You are the {role} agent"))
            );
        }
        let request = RunRequest {
            prompt: "p".into(),
            max_iterations: 3,
            stream: false,
            language: "python".into(),
        };
        assert!(
            coder_messages(&request, &[], None)[0]
                .content
                .starts_with("You are the coder agent")
        );
    }

    #[test]
    fn payload_from_content_or_tool_call() {
        let plan = Plan::from_reply(&content(r#"{"subtasks": ["a", "b"]}"#)).unwrap();
        assert_eq!(plan.subtasks, ["a", "b"]);
        let tool = Reply::ToolCall {
            name: "write_code".into(),
            arguments: r#"{"code": "print(1)", "language": "python"}"#.into(),
        };
        let draft = Draft::from_reply(&tool).unwrap();
        assert_eq!(draft.code, "print(1)");
        assert_eq!(draft.language.as_deref(), Some("python"));
        let verdict =
            Verdict::from_reply(&content(r#"{"score": 7.5, "needs_refinement": false}"#)).unwrap();
        assert_eq!(verdict.issues, Vec::<String>::new());
    }

    #[test]
    fn malformed_payloads_say_what_is_wrong() {
        let cases: [(Result<(), String>, &str); 7] = [
            (
                Plan::from_reply(&content("Sure! Here's a plan")).map(drop),
                "content is not JSON (expected value",
            ),
            (
                Plan::from_reply(&content("[1]")).map(drop),
                "content is JSON but not an object",
            ),
            (
                Plan::from_reply(&content("{}")).map(drop),
                "content has the wrong shape (missing field `subtasks`",
            ),
            (
                Plan::from_reply(&content(r#"{"subtasks": []}"#)).map(drop),
                "content: `subtasks` is empty",
            ),
            (
                Draft::from_reply(&content(r#"{"code": 1}"#)).map(drop),
                "content has the wrong shape (invalid type",
            ),
            (
                Verdict::from_reply(&content(r#"{"score": "high", "needs_refinement": true}"#))
                    .map(drop),
                "content has the wrong shape (invalid type: string",
            ),
            (
                Verdict::from_reply(&Reply::Empty).map(drop),
                "the reply has neither content nor a tool call",
            ),
        ];
        for (result, expected) in cases {
            let problem = result.unwrap_err();
            assert!(problem.starts_with(expected), "{problem}");
        }
    }

    #[test]
    fn a_code_fence_around_the_payload_is_taken_off() {
        for text in [
            "```json\n{\"subtasks\": [\"a\"]}\n```",
            "```\n{\"subtasks\": [\"a\"]}\n```\n",
            "\n  {\"subtasks\": [\"a\"]}  \n",
            "```JSON\r\n{\"subtasks\": [\"a\"]}```",
        ] {
            let plan = Plan::from_reply(&content(text)).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(plan.subtasks, ["a"], "{text:?}");
        }
        // Not a fence: an unclosed one, or prose before it, stays malformed.
        for text in [
            "```json\n{\"subtasks\": [\"a\"]}",
            "Here you go:\n```json\n{\"subtasks\": [\"a\"]}\n```",
            "```json {\"subtasks\": [\"a\"]}```",
        ] {
            assert!(Plan::from_reply(&content(text)).is_err(), "{text:?}");
        }
    }

    #[test]
    fn planted_bugs_do_what_they_say() {
        // unchecked-plan: a JSON reply without a list at `subtasks` panics; others do not.
        assert_eq!(
            subtask_count_unchecked(&content(r#"{"subtasks": ["a", "b"]}"#)),
            Some(2)
        );
        assert_eq!(subtask_count_unchecked(&content("not json")), None);
        for bad in ["{}", "null", r#"{"subtasks": 1}"#] {
            let reply = content(bad);
            let panicked = std::panic::catch_unwind(|| subtask_count_unchecked(&reply));
            assert!(panicked.is_err(), "{bad}");
        }
        // critic-text-match: the same verdict, spaced, is read as approval.
        let compact = content(r#"{"needs_refinement":true,"score":5}"#);
        let spaced = content(r#"{"needs_refinement": true, "score": 5}"#);
        for (reply, read_as) in [(&compact, true), (&spaced, false)] {
            let verdict = Verdict::from_reply(reply).unwrap();
            assert!(verdict.needs_refinement);
            let planted = verdict.planted(PlantedBug::CriticTextMatch, reply);
            assert_eq!(planted.needs_refinement, read_as);
        }
        let verdict = Verdict::from_reply(&spaced).unwrap();
        assert!(
            verdict
                .planted(PlantedBug::UncheckedPlan, &spaced)
                .needs_refinement
        );
    }

    #[test]
    fn reask_appends_the_bad_reply_and_the_problem() {
        let messages = reask_messages(
            &planner_messages("p"),
            &content("oops"),
            "content is not JSON",
        );
        let roles: Vec<_> = messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(messages[2].content, "oops");
        assert!(messages[3].content.contains("content is not JSON"));
    }

    #[test]
    fn coder_gets_feedback() {
        let request = RunRequest {
            prompt: "p".into(),
            max_iterations: 3,
            stream: false,
            language: "python".into(),
        };
        let feedback = Feedback::Critique(vec!["poor lighting".into()]);
        let messages = coder_messages(&request, &["a".into()], Some(("old()", &feedback)));
        assert!(messages[1].content.contains("old()"));
        assert!(messages[1].content.contains("- poor lighting"));
    }
}
