use std::time::Duration;

use chaos::{FaultRule, HttpFault, Schedule};
use mocks::{LlmFaultRule, LlmMatch, LlmReply, LlmStub, LlmStubConfig};
use serde_json::json;

use crate::support::{agent, body, chat, content, refpipe_agents, rule};

fn fault(id: &str, when: LlmMatch, fault: HttpFault, schedule: Schedule) -> LlmFaultRule {
    LlmFaultRule {
        when,
        rule: FaultRule {
            id: id.to_string(),
            fault,
            schedule,
        },
    }
}

fn rate_limited() -> HttpFault {
    HttpFault::Status {
        status: 429,
        message: "Rate limit reached".into(),
        retry_after: Some(Duration::from_secs(1)),
    }
}

async fn stub(faults: Vec<LlmFaultRule>, seed: u64) -> LlmStub {
    LlmStub::start(LlmStubConfig {
        rules: vec![rule(
            "llm[1]",
            LlmMatch::default(),
            vec![LlmReply::text("first"), LlmReply::text("second")],
        )],
        faults,
        agents: refpipe_agents(),
        seed,
        rate_limits: Vec::new(),
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn first_two_get_429_then_the_scripted_reply() {
    let stub = stub(
        vec![fault(
            "chaos[1]",
            agent("planner"),
            rate_limited(),
            Schedule::First(2),
        )],
        0,
    )
    .await;
    let planner = body("gpt-4o", "You are the planner agent", "Plan");
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = chat(&stub.base_url("primary"), &[], &planner).await;
        assert_eq!(response.header("retry-after"), Some("1"));
        assert_eq!(response.json()["error"]["code"], "rate_limit_exceeded");
        statuses.push(response.status);
    }
    let third = chat(&stub.base_url("primary"), &[], &planner).await;
    statuses.push(third.status);
    assert_eq!(statuses, [429, 429, 200]);
    // the faulted calls did not advance the rule's sequence
    assert_eq!(content(&third.json()), "first");

    let journal = stub.journal();
    let faults: Vec<Option<&str>> = journal.iter().map(|e| e.fault.as_deref()).collect();
    assert_eq!(
        faults,
        [
            Some("chaos[1]: 429 retry-after=1s"),
            Some("chaos[1]: 429 retry-after=1s"),
            None
        ]
    );
    assert_eq!(journal[0].served, "429 error");
    assert_eq!(journal[0].rule, None);
    assert_eq!(journal[2].rule.as_deref(), Some("llm[1] reply 1/2"));
}

#[tokio::test]
async fn the_filter_decides_which_calls_count() {
    let stub = stub(
        vec![fault(
            "chaos[1]",
            agent("planner"),
            rate_limited(),
            Schedule::Always,
        )],
        0,
    )
    .await;
    let critic = body("gpt-4o", "You are the critic agent", "Rate");
    let planner = body("gpt-4o", "You are the planner agent", "Plan");
    assert_eq!(
        chat(&stub.base_url("primary"), &[], &critic).await.status,
        200
    );
    assert_eq!(
        chat(&stub.base_url("primary"), &[], &planner).await.status,
        429
    );
}

#[tokio::test]
async fn delay_fault_then_the_normal_reply() {
    let delay = fault(
        "chaos[1]",
        LlmMatch::default(),
        HttpFault::Delay(Duration::from_millis(30)),
        Schedule::First(1),
    );
    let stub = stub(vec![delay], 0).await;
    let response = chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    assert_eq!(content(&response.json()), "first");
    let journal = stub.journal();
    assert_eq!(journal[0].fault.as_deref(), Some("chaos[1]: delay 30ms"));
    assert_eq!(journal[0].rule.as_deref(), Some("llm[1] reply 1/2"));
    assert!(
        journal[0].served.ends_with(" after 30ms"),
        "{}",
        journal[0].served
    );
}

#[tokio::test]
async fn malformed_json_and_empty_body() {
    let stub = stub(
        vec![
            fault(
                "chaos[1]",
                LlmMatch::default(),
                HttpFault::MalformedJson,
                Schedule::First(1),
            ),
            fault(
                "chaos[2]",
                LlmMatch::default(),
                HttpFault::EmptyBody,
                Schedule::EveryNth(2),
            ),
        ],
        0,
    )
    .await;
    let first = chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert!(serde_json::from_str::<serde_json::Value>(&first.text).is_err());
    let second = chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    assert_eq!((second.status, second.text.as_str()), (200, ""));

    let served: Vec<String> = stub.journal().into_iter().map(|e| e.served).collect();
    assert_eq!(
        served[0],
        format!("200 malformed json ({} bytes)", first.text.len())
    );
    assert_eq!(served[1], "200 empty body");
}

#[tokio::test]
async fn probability_with_a_fixed_seed_replays_the_same_decisions() {
    async fn decisions(seed: u64) -> Vec<u16> {
        let flaky = fault(
            "chaos[1]",
            LlmMatch::default(),
            HttpFault::Status {
                status: 503,
                message: String::new(),
                retry_after: None,
            },
            Schedule::Probability(0.5),
        );
        let stub = stub(vec![flaky], seed).await;
        let mut statuses = Vec::new();
        for _ in 0..24 {
            statuses.push(
                chat(
                    &stub.base_url("primary"),
                    &[],
                    &json!({"model": "m", "messages": []}),
                )
                .await
                .status,
            );
        }
        statuses
    }
    let first = decisions(42).await;
    assert_eq!(first, decisions(42).await);
    assert!(first.contains(&503) && first.contains(&200), "{first:?}");
    assert_ne!(first, decisions(7).await);
}

// Regression: two delay faults on one request overflowed when their waits were added, in
// the stub's thread, and the scenario's explanation blamed the target.
#[tokio::test]
async fn two_huge_delays_on_one_request_hold_it_instead_of_panicking() {
    let huge = HttpFault::Delay(Duration::MAX / 2 + Duration::from_secs(1));
    let stub = stub(
        vec![
            fault(
                "chaos[1]",
                LlmMatch::default(),
                huge.clone(),
                Schedule::Always,
            ),
            fault("chaos[2]", LlmMatch::default(), huge, Schedule::Always),
        ],
        0,
    )
    .await;
    let request = reqwest::Client::new()
        .post(format!("{}/chat/completions", stub.base_url("primary")))
        .json(&body("m", "s", "u"))
        .send();
    // Absence is what is asserted: within this bound the request is held, not dropped.
    let outcome = tokio::time::timeout(Duration::from_millis(300), request).await;
    assert!(
        outcome.is_err(),
        "the stub answered or dropped the request: {outcome:?}"
    );
}
