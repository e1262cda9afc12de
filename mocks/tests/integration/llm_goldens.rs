//! The chat-completions wire output, pinned byte for byte: each case's status, the headers
//! that shape the body (`content-type`, `content-length`, `retry-after`) and the body, with
//! the only varying field (`"created":<unix seconds>`) written as `"created":0`. The
//! goldens in `tests/goldens/chat/` were written before the stub learnt other APIs, so
//! any change to what an OpenAI chat client receives fails here. `UPDATE_GOLDENS=1`
//! rewrites them (review the diff: it is a change of the wire).

use std::time::Duration;

use chaos::{FaultRule, HttpFault, Schedule};
use mocks::{
    LlmFaultRule, LlmMatch, LlmReply, LlmReplyBody, LlmRule, LlmStub, LlmStubConfig, ToolCall,
};
use regex::Regex;
use serde_json::{Value, json};

use crate::support::{agent, refpipe_agents, rule};

const GOLDENS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/goldens/chat");

async fn stub() -> LlmStub {
    let error = LlmReplyBody::Error {
        status: 429,
        message: "Rate limit reached".into(),
        error_type: None,
        code: None,
        retry_after: Some(Duration::from_millis(1500)),
    };
    let fault = |id: &str, who: &str, fault| LlmFaultRule {
        when: agent(who),
        rule: FaultRule {
            id: id.into(),
            fault,
            schedule: Schedule::Always,
        },
    };
    LlmStub::start(LlmStubConfig {
        rules: vec![
            rule("llm[1]", agent("text"), vec![LlmReply::text("A long steel blade with a fuller, a crossguard and a leather grip. \"Quoted\" é\n")]),
            rule("llm[2]", agent("json"), vec![LlmReply::json(json!({"score": 8.5, "issues": ["lighting"], "ok": true}))]),
            rule(
                "llm[3]",
                agent("tools"),
                vec![LlmReply::new(LlmReplyBody::ToolCalls(vec![
                    ToolCall::new("write_code", json!({"code": "def add(a, b):\n    return a + b"})),
                    ToolCall { id: Some("call_fixed".into()), ..ToolCall::new("noop", json!({})) },
                ]))],
            ),
            rule("llm[4]", agent("limited"), vec![LlmReply::new(error)]),
            rule(
                "llm[5]",
                agent("length"),
                vec![LlmReply { finish_reason: Some("length".into()), ..LlmReply::text("cut") }],
            ),
            rule("llm[6]", agent("faulted"), vec![LlmReply::text("never")]),
            rule("llm[7]", agent("malformed"), vec![LlmReply::text("never")]),
            LlmRule {
                id: "llm[8]".into(),
                when: LlmMatch { model: Some("gpt-4o".into()), agent: Some("nobody".into()), ..LlmMatch::default() },
                replies: vec![LlmReply::text("x")],
            },
        ],
        faults: vec![
            fault("chaos[1]", "faulted", HttpFault::Status { status: 503, message: String::new(), retry_after: Some(Duration::from_secs(2)) }),
            fault("chaos[2]", "malformed", HttpFault::MalformedJson),
        ],
        agents: refpipe_agents(),
        ..LlmStubConfig::default()
    })
    .await
    .unwrap()
}

fn request(who: &str, stream: Option<bool>, usage: bool) -> Value {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": format!("You are the {who} agent.")},
            {"role": "user", "content": "Make a sword"},
        ],
    });
    if let Some(stream) = stream {
        body["stream"] = json!(stream);
    }
    if usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// Status, the body-shaping headers, a blank line, the body (`created` zeroed).
async fn rendered(response: reqwest::Response) -> String {
    let mut out = format!("{}\n", response.status().as_u16());
    for name in [
        "content-type",
        "content-length",
        "transfer-encoding",
        "retry-after",
    ] {
        if let Some(value) = response.headers().get(name) {
            out.push_str(&format!("{name}: {}\n", value.to_str().unwrap()));
        }
    }
    out.push('\n');
    let body = response.text().await.unwrap();
    let created = Regex::new(r#""created":\d+"#).unwrap();
    out.push_str(&created.replace_all(&body, r#""created":0"#));
    out
}

#[tokio::test]
async fn chat_completions_wire_output_is_unchanged() {
    let stub = stub().await;
    let base = stub.base_url("primary");
    let client = reqwest::Client::new();
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "text",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("text", None, false)),
        ),
        (
            "json",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("json", Some(false), false)),
        ),
        (
            "tools",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("tools", None, false)),
        ),
        (
            "length",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("length", None, false)),
        ),
        (
            "text_stream",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("text", Some(true), false)),
        ),
        (
            "text_stream_usage",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("text", Some(true), true)),
        ),
        (
            "tools_stream_usage",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("tools", Some(true), true)),
        ),
        (
            "error_429",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("limited", None, false)),
        ),
        (
            "fault_503",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("faulted", None, false)),
        ),
        (
            "fault_malformed",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("malformed", None, false)),
        ),
        (
            "unmatched",
            client
                .post(format!("{base}/chat/completions"))
                .json(&request("stranger", None, false)),
        ),
        (
            "invalid",
            client
                .post(format!("{base}/chat/completions"))
                .body("{\"messages\": []}"),
        ),
        ("models", client.get(format!("{base}/models"))),
        (
            "fallback_models",
            client.get(format!("{}/models", stub.base_url("fallback"))),
        ),
    ];
    let update = std::env::var_os("UPDATE_GOLDENS").is_some();
    let mut differ = Vec::new();
    for (name, request) in cases {
        let got = rendered(request.send().await.unwrap()).await;
        let path = format!("{GOLDENS}/{name}.txt");
        if update {
            std::fs::create_dir_all(GOLDENS).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{path}: {error} (hint: UPDATE_GOLDENS=1 writes it)"));
        if got != want {
            differ.push(format!("{name}:\n--- want\n{want}\n--- got\n{got}"));
        }
    }
    assert!(
        differ.is_empty(),
        "the chat wire output changed:\n{}",
        differ.join("\n")
    );
}
