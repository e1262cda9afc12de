//! The token estimate behind `usage` in completions.
//!
//! The stub does not run a tokenizer; it reports a documented, deterministic estimate, so
//! token budgets and cost tracking in a pipeline see stable, plausible numbers:
//!
//! - `tokens(text) = ceil(chars / 4)`, counting Unicode scalar values;
//! - `prompt_tokens = Σ over messages (tokens(content) + 4) + 2`, where a message's content
//!   is its string, or the text parts of a content array joined by newlines;
//! - `completion_tokens = tokens(content)`, or for tool calls the sum of
//!   `tokens(arguments)` over the calls (arguments as the serialized JSON string sent);
//! - `total_tokens = prompt_tokens + completion_tokens`.

use serde_json::{Value, json};

/// `usage` of one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) prompt: u64,
    pub(crate) completion: u64,
}

impl Usage {
    pub(crate) fn estimate<'a>(
        prompt_contents: impl IntoIterator<Item = &'a str>,
        completion_texts: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self {
            prompt: prompt_tokens(prompt_contents),
            completion: completion_texts.into_iter().map(tokens).sum(),
        }
    }

    pub(crate) fn to_json(self) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
        })
    }
}

/// `ceil(chars / 4)`.
pub(crate) fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// `Σ (tokens(content) + 4) + 2`.
pub(crate) fn prompt_tokens<'a>(contents: impl IntoIterator<Item = &'a str>) -> u64 {
    contents
        .into_iter()
        .map(|content| tokens(content) + 4)
        .sum::<u64>()
        + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_a_quarter_of_the_characters_rounded_up() {
        assert_eq!(tokens(""), 0);
        assert_eq!(tokens("abc"), 1);
        assert_eq!(tokens("abcd"), 1);
        assert_eq!(tokens("abcde"), 2);
        // characters, not bytes
        assert_eq!(tokens("ééééé"), 2);
    }

    #[test]
    fn prompt_adds_four_per_message_and_two() {
        assert_eq!(prompt_tokens([]), 2);
        // (ceil(18 / 4) + 4) + (ceil(4 / 4) + 4) + 2
        assert_eq!(prompt_tokens(["You are the critic", "Rate"]), 16);
    }

    #[test]
    fn usage_json_totals() {
        let usage = Usage::estimate(["hello world!"], ["{\"a\":1}"]);
        assert_eq!(
            usage.to_json(),
            json!({"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11})
        );
    }
}
