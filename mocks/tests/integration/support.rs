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

/// What a raw client read on one connection: every byte until the server closed it (FIN) or
/// reset it (then `error` is the error the read failed with).
pub struct Raw {
    pub bytes: Vec<u8>,
    pub error: Option<std::io::ErrorKind>,
}

impl Raw {
    /// The status line and headers.
    pub fn head(&self) -> String {
        let end = self.head_end().unwrap_or(self.bytes.len());
        String::from_utf8_lossy(&self.bytes[..end]).into_owned()
    }

    /// The bytes after the headers (still chunk-framed for a chunked body).
    pub fn body(&self) -> &[u8] {
        self.head_end()
            .map_or(&[][..], |end| &self.bytes[end + 4..])
    }

    /// A header's value, by its lowercase name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head().lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.eq_ignore_ascii_case(name)).then(|| value.trim().to_string())
        })
    }

    fn head_end(&self) -> Option<usize> {
        self.bytes
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
    }
}

/// POSTs `body` to `path` on the stub at `uri` over a plain TCP connection
/// (`Connection: close`) and reads until the server closes or resets it.
pub async fn raw_post(uri: &str, path: &str, body: &Value) -> Raw {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = uri.strip_prefix("http://").expect("an http uri");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut raw = Raw {
        bytes: Vec::new(),
        error: None,
    };
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.bytes.extend_from_slice(&buf[..n]),
            Err(error) => {
                raw.error = Some(error.kind());
                break;
            }
        }
    }
    raw
}

/// A stub with `rules` and `faults`, seeded with `seed`.
pub async fn llm_with_faults(
    rules: Vec<LlmRule>,
    faults: Vec<mocks::LlmFaultRule>,
    seed: u64,
) -> LlmStub {
    LlmStub::start(LlmStubConfig {
        rules,
        faults,
        agents: refpipe_agents(),
        seed,
        rate_limits: Vec::new(),
    })
    .await
    .expect("the stub starts")
}

/// A fault rule on the LLM stub for every request `when` matches.
pub fn fault(
    id: &str,
    when: LlmMatch,
    fault: chaos::HttpFault,
    schedule: chaos::Schedule,
) -> mocks::LlmFaultRule {
    mocks::LlmFaultRule {
        when,
        rule: chaos::FaultRule {
            id: id.to_string(),
            fault,
            schedule,
        },
    }
}
