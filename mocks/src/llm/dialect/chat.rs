//! OpenAI Chat Completions: `chat.completion` objects, `chat.completion.chunk` streams and
//! `{"error": {…}}` bodies, as the stub has always sent them (pinned by the goldens in
//! `tests/goldens/chat`).

use chaos::ApiError;

use super::Dialect;
use crate::llm::openai::Completion;
use crate::llm::request::ChatRequest;
use crate::llm::route::Call;
use crate::llm::sse::{self, EventStream};

pub(crate) struct Chat;

impl Dialect for Chat {
    fn parse(&self, body: &[u8], call: &Call) -> Result<ChatRequest, String> {
        match &call.model {
            // Azure: the deployment names the model, and the body may omit it
            Some(deployment) => ChatRequest::parse_with_model(body, deployment),
            None => ChatRequest::parse(body),
        }
    }

    fn whole(&self, completion: &Completion) -> Vec<u8> {
        completion.to_bytes()
    }

    fn stream(&self, completion: &Completion, request: &ChatRequest) -> EventStream {
        sse::render(completion, request.include_usage)
    }

    fn error_body(&self, error: &ApiError) -> Vec<u8> {
        crate::llm::openai::error_json(error)
            .to_string()
            .into_bytes()
    }

    fn malformed_body(&self) -> &'static str {
        crate::llm::openai::MALFORMED_JSON_BODY
    }
}
