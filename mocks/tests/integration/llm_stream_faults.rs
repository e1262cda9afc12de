//! Stream faults of the LLM stub, observed by a client that reads the SSE body as it
//! arrives and times each event: lower bounds on time only.

use std::time::{Duration, Instant};

use chaos::{HttpFault, Schedule};
use futures_util::StreamExt;
use mocks::{LlmMatch, LlmReply, LlmStub};
use serde_json::{Value, json};

use crate::support::{chat, content, fault, llm_with_faults, rule};

/// 69 characters: role chunk, 5 content chunks, finish chunk, `[DONE]`.
const TEXT: &str = "A long steel blade with a fuller, a cross-guard and a leather grip...";

fn stream_request() -> Value {
    json!({
        "model": "gpt-4o",
        "stream": true,
        "messages": [{"role": "user", "content": "Describe the sword"}],
    })
}

async fn stub_with(faulted: HttpFault) -> LlmStub {
    llm_with_faults(
        vec![rule(
            "llm[1]",
            LlmMatch::default(),
            vec![LlmReply::text(TEXT)],
        )],
        vec![fault(
            "chaos[1]",
            LlmMatch::default(),
            faulted,
            Schedule::Always,
        )],
        0,
    )
    .await
}

/// One SSE event and when it arrived, since the request was sent.
struct Event {
    data: String,
    at: Duration,
}

/// What a streaming client got: complete events, bytes after the last complete event,
/// and whether the body ended with an error.
struct Streamed {
    events: Vec<Event>,
    rest: String,
    failed: bool,
}

/// Sends a streamed request and reads the body as it arrives; stops after `max_events`
/// complete events (dropping the connection) or when the body ends.
async fn stream(stub: &LlmStub, max_events: usize) -> Streamed {
    let sent = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", stub.base_url("primary")))
        .json(&stream_request())
        .send()
        .await
        .expect("the headers arrive");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut streamed = Streamed {
        events: Vec::new(),
        rest: String::new(),
        failed: false,
    };
    while streamed.events.len() < max_events {
        match body.next().await {
            None => break,
            Some(Err(_)) => {
                streamed.failed = true;
                break;
            }
            Some(Ok(bytes)) => {
                let at = sent.elapsed();
                streamed.rest.push_str(std::str::from_utf8(&bytes).unwrap());
                while let Some(end) = streamed.rest.find("\n\n") {
                    let event: String = streamed.rest.drain(..end + 2).collect();
                    streamed.events.push(Event {
                        data: event.trim_end().trim_start_matches("data: ").to_string(),
                        at,
                    });
                }
            }
        }
    }
    streamed
}

fn is_content(event: &Event) -> bool {
    serde_json::from_str::<Value>(&event.data)
        .ok()
        .and_then(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(|c| !c.is_empty())
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn pace_holds_the_first_token_then_spaces_the_chunks() {
    let first_token = Duration::from_millis(150);
    let gap = Duration::from_millis(40);
    let stub = stub_with(HttpFault::StreamPace { first_token, gap }).await;
    let streamed = stream(&stub, usize::MAX).await;
    assert!(!streamed.failed);
    assert_eq!(streamed.events.last().unwrap().data, "[DONE]");
    assert!(
        streamed.events[0].at >= first_token,
        "{:?}",
        streamed.events[0].at
    );
    // the kth content chunk cannot arrive before first_token + (k - 1) gaps
    let contents: Vec<&Event> = streamed.events.iter().filter(|e| is_content(e)).collect();
    assert_eq!(contents.len(), 5);
    for (k, event) in contents.iter().enumerate() {
        let earliest = first_token + gap * k as u32;
        assert!(event.at >= earliest, "content chunk {k} at {:?}", event.at);
    }
    let entry = &stub.journal()[0];
    assert_eq!(
        entry.fault.as_deref(),
        Some("chaos[1]: stream pace first_token=150ms gap=40ms")
    );
    assert_eq!(entry.served, "200 sse (7 chunks)");
}

#[tokio::test]
async fn stall_pauses_after_n_chunks() {
    let stall = Duration::from_millis(250);
    let stub = stub_with(HttpFault::StreamStall {
        after_chunks: 2,
        stall,
    })
    .await;
    let streamed = stream(&stub, usize::MAX).await;
    assert!(!streamed.failed);
    assert_eq!(streamed.events.len(), 8);
    assert!(
        streamed.events[2].at >= stall,
        "{:?}",
        streamed.events[2].at
    );
    assert_eq!(streamed.events.last().unwrap().data, "[DONE]");
}

/// The chunks before a stall reach the client while the stream is stalled: they are sent
/// one by one, not held until the body is complete (the stall here outlasts the test).
#[tokio::test]
async fn chunks_before_a_stall_arrive_while_it_lasts() {
    let stub = stub_with(HttpFault::StreamStall {
        after_chunks: 3,
        stall: Duration::from_secs(3600),
    })
    .await;
    let streamed = tokio::time::timeout(Duration::from_secs(30), stream(&stub, 3))
        .await
        .expect("three chunks arrive long before the stall ends");
    assert_eq!(streamed.events.len(), 3);
    assert!(streamed.events.iter().skip(1).all(is_content));
}

#[tokio::test]
async fn cut_ends_mid_event_without_done() {
    let stub = stub_with(HttpFault::StreamCut { after_chunks: 2 }).await;
    let streamed = stream(&stub, usize::MAX).await;
    assert!(streamed.failed, "the chunked body never ends properly");
    assert_eq!(streamed.events.len(), 2);
    assert!(streamed.events.iter().all(|e| e.data != "[DONE]"));
    // half of the third event: a `data: {…` fragment, not a complete event
    assert!(streamed.rest.starts_with("data: {"), "{:?}", streamed.rest);
    assert!(!streamed.rest.contains("\n\n"));
    assert!(serde_json::from_str::<Value>(streamed.rest.trim_start_matches("data: ")).is_err());

    let entry = &stub.journal()[0];
    assert_eq!(
        entry.fault.as_deref(),
        Some("chaos[1]: stream cut after 2 chunks")
    );
    assert_eq!(entry.served, "200 sse (7 chunks), cut after 2 chunks");
}

#[tokio::test]
async fn a_cut_beyond_the_last_chunk_cuts_done() {
    let stub = stub_with(HttpFault::StreamCut { after_chunks: 100 }).await;
    let streamed = stream(&stub, usize::MAX).await;
    assert!(streamed.failed);
    assert_eq!(streamed.events.len(), 7);
    assert_eq!(streamed.rest, "data: [");
}

#[tokio::test]
async fn stream_faults_leave_non_stream_requests_alone_and_uncounted() {
    let stub = llm_with_faults(
        vec![rule(
            "llm[1]",
            LlmMatch::default(),
            vec![LlmReply::text(TEXT)],
        )],
        vec![fault(
            "chaos[1]",
            LlmMatch::default(),
            HttpFault::StreamCut { after_chunks: 0 },
            Schedule::First(1),
        )],
        0,
    )
    .await;
    let plain = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let response = chat(&stub.base_url("primary"), &[], &plain).await;
    assert_eq!(content(&response.json()), TEXT);
    assert_eq!(stub.journal()[0].fault, None);
    // the plain request did not use up First(1): the first streamed request is cut
    let streamed = stream(&stub, usize::MAX).await;
    assert!(streamed.failed && streamed.events.is_empty());
    assert_eq!(stub.counters().by_fault["chaos[1]"], 1);
}

#[tokio::test]
async fn a_stream_fault_on_a_streamed_error_is_recorded_as_not_applied() {
    let stub = llm_with_faults(
        vec![rule(
            "llm[1]",
            LlmMatch::default(),
            vec![LlmReply::error(500, "boom")],
        )],
        vec![fault(
            "chaos[1]",
            LlmMatch::default(),
            HttpFault::StreamCut { after_chunks: 0 },
            Schedule::Always,
        )],
        0,
    )
    .await;
    let response = chat(&stub.base_url("primary"), &[], &stream_request()).await;
    assert_eq!(response.status, 500);
    assert_eq!(response.json()["error"]["message"], "boom");
    assert_eq!(
        stub.journal()[0].fault.as_deref(),
        Some("chaos[1]: stream cut after 0 chunks (not applied: the reply is not a stream)")
    );
    assert_eq!(stub.counters().by_fault["chaos[1]"], 0);
}
