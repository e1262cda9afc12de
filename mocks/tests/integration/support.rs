//! Helpers shared by the integration tests.

use mocks::{AgentRecognition, LlmMatch, LlmReply, LlmRule, LlmStub, LlmStubConfig};
use regex::Regex;
use serde_json::{Value, json};

/// What came back from one request.
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Response {
    let response = request.send().await.expect("the stub answers");
    Response {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("a body"),
    }
}

/// POST `body` to `{base_url}/chat/completions` with optional extra headers.
pub async fn chat(base_url: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut request = reqwest::Client::new()
        .post(format!("{base_url}/chat/completions"))
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request).await
}

/// A chat request with a system prompt and a user message.
pub fn body(model: &str, system: &str, user: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ],
    })
}

/// `X-Agent-Role` and `^You are the (\w+) agent`, as refpipe sends them.
pub fn refpipe_agents() -> AgentRecognition {
    AgentRecognition::new(
        Some("X-Agent-Role"),
        Some(Regex::new(r"^You are the (\w+) agent").unwrap()),
    )
}

pub fn rule(id: &str, when: LlmMatch, replies: Vec<LlmReply>) -> LlmRule {
    LlmRule {
        id: id.to_string(),
        when,
        replies,
    }
}

pub fn agent(name: &str) -> LlmMatch {
    LlmMatch {
        agent: Some(name.to_string()),
        ..Default::default()
    }
}

pub async fn llm(rules: Vec<LlmRule>) -> LlmStub {
    LlmStub::start(LlmStubConfig {
        rules,
        agents: refpipe_agents(),
        ..Default::default()
    })
    .await
    .expect("the stub starts")
}

/// The assistant content of a completion.
pub fn content(completion: &Value) -> &str {
    completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content in {completion}"))
}
