//! The run request and its validation.

use serde::{Deserialize, Serialize};

use crate::errors::RequestError;

/// What to build: `{"prompt", "max_iterations", "stream", "language"}`.
/// Unknown fields are ignored. Serialised only into serve's state directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRequest {
    pub(crate) prompt: String,
    /// Refinement iterations allowed after the first attempt.
    #[serde(default = "default_max_iterations")]
    pub(crate) max_iterations: u32,
    /// Whether LLM responses are requested as server-sent events.
    #[serde(default)]
    pub(crate) stream: bool,
    /// The language asked of the coder, unless it names another.
    #[serde(default = "default_language")]
    pub(crate) language: String,
}

fn default_max_iterations() -> u32 {
    3
}

fn default_language() -> String {
    "python".to_owned()
}

/// Parses and validates a request body; `max_prompt_chars` counts Unicode scalar values.
pub(crate) fn parse_request(
    body: &[u8],
    max_prompt_chars: usize,
) -> Result<RunRequest, RequestError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(RequestError::NotJson)?;
    let request: RunRequest = serde_json::from_value(value).map_err(RequestError::Shape)?;
    if request.prompt.trim().is_empty() {
        return Err(RequestError::EmptyPrompt);
    }
    let chars = request.prompt.chars().count();
    if chars > max_prompt_chars {
        return Err(RequestError::PromptTooLong {
            chars,
            limit: max_prompt_chars,
        });
    }
    if request.language.trim().is_empty() {
        return Err(RequestError::EmptyLanguage);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::chain;

    #[test]
    fn defaults_and_unknown_fields() {
        let r = parse_request(br#"{"prompt": "sword", "colour": "red"}"#, 100).unwrap();
        assert_eq!(
            r,
            RunRequest {
                prompt: "sword".into(),
                max_iterations: 3,
                stream: false,
                language: "python".into(),
            }
        );
    }

    #[test]
    fn explicit_fields() {
        let body = br#"{"prompt": "x", "max_iterations": 0, "stream": true, "language": "rust"}"#;
        let r = parse_request(body, 100).unwrap();
        assert_eq!(
            (r.max_iterations, r.stream, r.language.as_str()),
            (0, true, "rust")
        );
    }

    #[test]
    fn rejections() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "the request is not valid JSON: EOF while parsing"),
            (
                b"prompt=hi",
                "the request is not valid JSON: expected value",
            ),
            (b"{}", "the request does not have the expected shape"),
            (
                br#"{"prompt": 5}"#,
                "the request does not have the expected shape",
            ),
            (
                br#"{"prompt": "hi", "max_iterations": -1}"#,
                "the request does not have",
            ),
            (br#"{"prompt": " \n "}"#, "`prompt` is empty"),
            (
                br#"{"prompt": "hi", "language": ""}"#,
                "`language` is empty",
            ),
        ];
        for (body, expected) in cases {
            let message = chain(&parse_request(body, 100).unwrap_err());
            assert!(message.starts_with(expected), "{message}");
        }
    }

    #[test]
    fn prompt_limit_counts_characters_not_bytes() {
        assert!(parse_request("{\"prompt\": \"ééé\"}".as_bytes(), 3).is_ok());
        let err = parse_request("{\"prompt\": \"éééé\"}".as_bytes(), 3).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`prompt` is 4 characters long, more than the limit of 3")
        );
    }
}
