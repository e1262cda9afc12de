//! Timings measured at the stubs: service time, time to first token and the gaps between
//! tokens, in each exchange and in the stubs' histograms. Lower bounds only: the scripted
//! delays and pacing are floors, and how much above them a busy machine lands is not a
//! test's business.

use std::time::Duration;

use chaos::{HttpFault, Schedule};
use hdrhistogram::Histogram;
use mocks::{
    Exchange, ExecReply, ExecRule, ExecutorStub, ExecutorStubConfig, LlmMatch, LlmReply, LlmStub,
    UNRECOGNISED_AGENT,
};
use serde_json::json;

use crate::support::{agent, body, chat, fault, llm, llm_with_faults, rule};

/// 69 characters: role chunk, 5 content chunks (16 characters each at most), finish chunk,
/// `[DONE]`.
const TEXT: &str = "A long steel blade with a fuller, a cross-guard and a leather grip...";

/// Waits (bounded) until every exchange of the journal has its service time: they are
/// recorded just after the last byte is on the socket, which the client may beat.
async fn timed(stub: &LlmStub) -> Vec<Exchange> {
    tokio::time::timeout(
        Duration::from_secs(10),
        stub.wait_for_journal(|journal| journal.iter().all(|e| e.service.is_some())),
    )
    .await
    .expect("the stub times every response it sent")
}

/// True when the histogram's smallest sample may be `floor` or more: HDR keeps 3
/// significant digits, so a sample is only known to within its bucket.
fn min_at_least(histogram: &Histogram<u64>, floor: Duration) -> bool {
    histogram.highest_equivalent(histogram.min()) >= floor.as_micros() as u64
}

#[tokio::test]
async fn a_paced_stream_shows_its_first_token_and_gaps_in_the_exchange_and_the_histograms() {
    let first_token = Duration::from_millis(200);
    let gap = Duration::from_millis(20);
    let stub = llm_with_faults(
        vec![rule("llm[1]", agent("coder"), vec![LlmReply::text(TEXT)])],
        vec![fault(
            "chaos[1]",
            LlmMatch::default(),
            HttpFault::StreamPace { first_token, gap },
            Schedule::Always,
        )],
        0,
    )
    .await;
    let mut request = body("gpt-4o", "You are the coder agent", "Write the sword");
    request["stream"] = json!(true);
    let response = chat(&stub.base_url("primary"), &[], &request).await;
    assert_eq!(response.status, 200);
    assert!(response.text.ends_with("data: [DONE]\n\n"));

    let exchange = &timed(&stub).await[0];
    let ttft = exchange.first_token.expect("a stream has a first token");
    assert!(ttft >= first_token, "first token after {ttft:?}");
    // 5 content chunks: 4 gaps between them
    assert_eq!(exchange.token_gaps.len(), 4, "{:?}", exchange.token_gaps);
    for (k, measured) in exchange.token_gaps.iter().enumerate() {
        assert!(*measured >= gap, "gap {k}: {measured:?}");
    }
    // then the finish chunk, one more gap later
    let service = exchange.service.unwrap();
    assert!(service >= first_token + gap * 5, "service {service:?}");

    let latencies = stub.latencies();
    assert_eq!(
        latencies.per_agent.keys().collect::<Vec<_>>(),
        ["coder"],
        "one histogram per agent seen"
    );
    assert_eq!(latencies.per_agent["coder"].len(), 1);
    assert!(min_at_least(&latencies.per_agent["coder"], service));
    assert_eq!(latencies.time_to_first_token.len(), 1);
    assert!(min_at_least(&latencies.time_to_first_token, first_token));
    assert_eq!(latencies.inter_token.len(), 4);
    assert!(min_at_least(&latencies.inter_token, gap));
}

#[tokio::test]
async fn whole_replies_are_timed_with_their_delay_and_have_no_tokens() {
    let delay = Duration::from_millis(50);
    let stub = llm(vec![rule(
        "llm[1]",
        agent("planner"),
        vec![LlmReply::text("plan").with_delay(delay)],
    )])
    .await;
    let base = stub.base_url("primary");
    let planned = chat(&base, &[], &body("m", "You are the planner agent", "go")).await;
    assert_eq!(planned.status, 200);
    // no agent recognised, and no rule for it: a 404, timed all the same
    let unmatched = chat(&base, &[], &body("m", "Hello", "go")).await;
    assert_eq!(unmatched.status, 404);

    let journal = timed(&stub).await;
    assert!(journal[0].service.unwrap() >= delay);
    assert_eq!(journal[0].first_token, None);
    assert!(journal[0].token_gaps.is_empty());
    assert!(journal[1].service.is_some());

    let latencies = stub.latencies();
    assert_eq!(latencies.per_agent["planner"].len(), 1);
    assert!(min_at_least(&latencies.per_agent["planner"], delay));
    assert_eq!(latencies.per_agent[UNRECOGNISED_AGENT].len(), 1);
    assert!(latencies.time_to_first_token.is_empty());
    assert!(latencies.inter_token.is_empty());
}

#[tokio::test]
async fn responses_that_send_nothing_are_not_timed() {
    let stub = llm_with_faults(
        vec![rule("llm[1]", agent("critic"), vec![LlmReply::text("ok")])],
        vec![fault(
            "chaos[1]",
            LlmMatch::default(),
            HttpFault::Reset { after_bytes: None },
            Schedule::Always,
        )],
        0,
    )
    .await;
    let sent = reqwest::Client::new()
        .post(format!("{}/chat/completions", stub.base_url("primary")))
        .json(&body("m", "You are the critic agent", "judge"))
        .send()
        .await;
    assert!(sent.is_err(), "the connection is reset");
    let journal = stub.journal();
    assert_eq!(journal[0].served, "reset before response");
    assert_eq!(journal[0].service, None);
    assert!(stub.latencies().per_agent.is_empty());
}

#[tokio::test]
async fn executor_stubs_time_up_to_the_template_plus_its_delay() {
    let delay = Duration::from_millis(50);
    let stub = ExecutorStub::start(ExecutorStubConfig {
        name: "sandbox".into(),
        rules: vec![ExecRule {
            id: "executor.sandbox[1]".into(),
            when: Default::default(),
            replies: vec![ExecReply::outcome(true).with_delay(delay)],
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    for _ in 0..3 {
        let response = reqwest::Client::new()
            .post(stub.execute_url())
            .json(&json!({"code": "print(1)"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // an executor's timing is complete when the exchange is journaled
    let journal = stub.journal();
    assert!(journal.iter().all(|e| e.service.unwrap() >= delay));
    let latencies = stub.latencies();
    assert_eq!(latencies.len(), 3);
    assert!(min_at_least(&latencies, delay));
}
