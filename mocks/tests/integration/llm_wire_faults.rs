//! Wire-level faults of the LLM stub, observed from outside: a raw TCP client or reqwest
//! sees the reset, the short body, the hang.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use chaos::{HttpFault, Schedule, Truncation};
use mocks::{LlmMatch, LlmReply};
use serde_json::json;

use crate::support::{body, fault, llm_with_faults, raw_post, rule};

const COMPLETIONS: &str = "/v1/chat/completions";

fn reply() -> Vec<mocks::LlmRule> {
    vec![rule(
        "llm[1]",
        LlmMatch::default(),
        vec![LlmReply::text(
            "A long steel blade with a fuller, a cross-guard and a leather grip.",
        )],
    )]
}

async fn stub_with(faulted: HttpFault, schedule: Schedule) -> mocks::LlmStub {
    llm_with_faults(
        reply(),
        vec![fault("chaos[2]", LlmMatch::default(), faulted, schedule)],
        0,
    )
    .await
}

#[tokio::test]
async fn reset_before_the_response_is_a_connection_reset() {
    let stub = stub_with(HttpFault::Reset { after_bytes: None }, Schedule::First(1)).await;
    let raw = raw_post(&stub.uri(), COMPLETIONS, &body("m", "s", "u")).await;
    assert_eq!(raw.error, Some(ErrorKind::ConnectionReset));
    assert!(
        raw.bytes.is_empty(),
        "no byte before the reset: {:?}",
        raw.head()
    );

    // the schedule is spent: the next request is answered, on a new connection
    let next = raw_post(&stub.uri(), COMPLETIONS, &body("m", "s", "u")).await;
    assert_eq!(next.error, None);
    assert!(next.head().starts_with("HTTP/1.1 200"), "{}", next.head());

    let journal = stub.journal();
    assert_eq!(
        journal[0].fault.as_deref(),
        Some("chaos[2]: reset before response")
    );
    assert_eq!(
        (journal[0].status, journal[0].served.as_str()),
        (0, "reset before response")
    );
    assert_eq!(journal[0].rule, None);
    assert_eq!(journal[1].rule.as_deref(), Some("llm[1] reply 1/1"));
}

#[tokio::test]
async fn reset_after_n_bytes_sends_the_headers_and_n_bytes_of_the_body() {
    let stub = stub_with(
        HttpFault::Reset {
            after_bytes: Some(40),
        },
        Schedule::Always,
    )
    .await;
    let raw = raw_post(&stub.uri(), COMPLETIONS, &body("m", "s", "u")).await;
    assert_eq!(raw.error, Some(ErrorKind::ConnectionReset));
    assert!(raw.head().starts_with("HTTP/1.1 200"), "{}", raw.head());
    let promised: usize = raw.header("content-length").unwrap().parse().unwrap();
    assert!(promised > 40);
    assert_eq!(raw.body().len(), 40);

    // reqwest sees an error too, and never a complete body
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", stub.base_url("primary")))
        .json(&body("m", "s", "u"))
        .send()
        .await;
    let failed = match response {
        Ok(response) => response.bytes().await.is_err(),
        Err(_) => true,
    };
    assert!(failed, "a reset response must not read as complete");

    let entry = &stub.journal()[0];
    assert_eq!(
        entry.fault.as_deref(),
        Some("chaos[2]: reset after 40 bytes")
    );
    assert_eq!(
        entry.served,
        format!("200 json ({promised} bytes), reset after 40 of {promised} bytes")
    );
}

#[tokio::test]
async fn reset_after_more_bytes_than_the_body_follows_the_whole_response() {
    let stub = stub_with(
        HttpFault::Reset {
            after_bytes: Some(1_000_000),
        },
        Schedule::Always,
    )
    .await;
    let raw = raw_post(&stub.uri(), COMPLETIONS, &body("m", "s", "u")).await;
    assert_eq!(raw.error, Some(ErrorKind::ConnectionReset));
    let promised: usize = raw.header("content-length").unwrap().parse().unwrap();
    assert_eq!(raw.body().len(), promised);
    assert!(stub.journal()[0].served.ends_with("(the whole body)"));
}

#[tokio::test]
async fn truncated_body_is_shorter_than_its_content_length() {
    let stub = stub_with(
        HttpFault::Truncated(Truncation::Fraction(0.5)),
        Schedule::First(1),
    )
    .await;
    let raw = raw_post(&stub.uri(), COMPLETIONS, &body("m", "s", "u")).await;
    assert_eq!(raw.error, None, "a truncated body ends with a plain close");
    let promised: usize = raw.header("content-length").unwrap().parse().unwrap();
    assert_eq!(raw.body().len(), promised / 2);
    assert!(serde_json::from_slice::<serde_json::Value>(raw.body()).is_err());

    let entry = &stub.journal()[0];
    assert_eq!(
        entry.fault.as_deref(),
        Some("chaos[2]: truncated to fraction 0.5")
    );
    assert_eq!(
        entry.served,
        format!(
            "200 json ({promised} bytes), truncated to {} of {promised} bytes",
            promised / 2
        )
    );
}

#[tokio::test]
async fn reqwest_reports_a_truncated_body_as_an_error() {
    let stub = stub_with(
        HttpFault::Truncated(Truncation::Bytes(10)),
        Schedule::Always,
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", stub.base_url("primary")))
        .json(&body("m", "s", "u"))
        .send()
        .await
        .expect("the headers arrive whole");
    assert_eq!(response.status(), 200);
    assert!(response.content_length().unwrap() > 10);
    assert!(response.bytes().await.is_err(), "the body is incomplete");
}

#[tokio::test]
async fn a_truncated_error_reply_is_truncated_too() {
    let stub = llm_with_faults(
        reply(),
        vec![
            fault(
                "chaos[1]",
                LlmMatch::default(),
                HttpFault::Status {
                    status: 503,
                    message: String::new(),
                    retry_after: None,
                },
                Schedule::Always,
            ),
            fault(
                "chaos[2]",
                LlmMatch::default(),
                HttpFault::Truncated(Truncation::Bytes(5)),
                Schedule::Always,
            ),
        ],
        0,
    )
    .await;
    let raw = raw_post(&stub.uri(), COMPLETIONS, &body("m", "s", "u")).await;
    assert!(raw.head().starts_with("HTTP/1.1 503"), "{}", raw.head());
    assert_eq!(raw.body(), b"{\"err");
    assert_eq!(
        stub.journal()[0].fault.as_deref(),
        Some("chaos[1]: 503, chaos[2]: truncated to 5 bytes")
    );
}

#[tokio::test]
async fn hang_answers_nothing_and_journals_when_the_client_gave_up() {
    let stub = stub_with(HttpFault::Hang, Schedule::First(1)).await;
    let timeout = Duration::from_millis(300);
    let client = reqwest::Client::builder().timeout(timeout).build().unwrap();
    let sent = Instant::now();
    let error = client
        .post(format!("{}/chat/completions", stub.base_url("primary")))
        .json(&body("m", "s", "u"))
        .send()
        .await
        .expect_err("no answer: the client's timeout fires");
    assert!(error.is_timeout(), "{error}");
    drop(client);

    let journal = tokio::time::timeout(
        Duration::from_secs(10),
        stub.wait_for_journal(|journal| {
            journal
                .first()
                .is_some_and(|entry| entry.gave_up_after.is_some())
        }),
    )
    .await
    .expect("the stub sees the client leave");
    let entry = &journal[0];
    let gave_up = entry.gave_up_after.unwrap();
    // the client left no earlier than its timeout after it sent the request
    assert!(entry.received + gave_up >= sent + timeout, "{gave_up:?}");
    assert!(
        entry.served.starts_with("hang: client gave up after "),
        "{}",
        entry.served
    );
    assert_eq!(entry.fault.as_deref(), Some("chaos[2]: hang"));
    assert_eq!((entry.status, entry.rule.as_deref()), (0, None));

    // First(1): the next call is answered
    let answered = crate::support::chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    assert_eq!(answered.status, 200);
}

#[tokio::test]
async fn a_hung_connection_closes_when_the_stub_shuts_down() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stub = stub_with(HttpFault::Hang, Schedule::Always).await;
    let addr = stub.uri().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let payload = body("m", "s", "u").to_string();
    let request = format!(
        "POST {COMPLETIONS} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // the request is handled (and hangs) once it is journaled
    tokio::time::timeout(
        Duration::from_secs(10),
        stub.wait_for_journal(|journal| !journal.is_empty()),
    )
    .await
    .expect("the request arrives");
    drop(stub);
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .expect("the connection is closed, not left hanging");
    assert!(read.is_ok());
    assert!(buf.is_empty(), "still no answer: {buf:?}");
}

#[tokio::test]
async fn wire_faults_apply_to_completions_only() {
    let stub = stub_with(HttpFault::Reset { after_bytes: None }, Schedule::Always).await;
    let models = reqwest::get(format!("{}/models", stub.base_url("primary")))
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    let raw = raw_post(&stub.uri(), "/nowhere", &json!({})).await;
    assert!(raw.head().starts_with("HTTP/1.1 404"), "{}", raw.head());
}
