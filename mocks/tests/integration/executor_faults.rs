//! Faults on executor stubs: what wiremock can inject honestly (statuses, bodies, delays,
//! a hang as a very long delay), and a clear refusal of the rest.

use std::time::{Duration, Instant};

use chaos::{FaultRule, HttpFault, Schedule, Truncation};
use mocks::{
    ExecFaultRule, ExecMatch, ExecReply, ExecRule, ExecutorStub, ExecutorStubConfig, StubError,
};
use serde_json::json;

use crate::support::send;

fn config(faults: Vec<(HttpFault, Schedule)>, seed: u64) -> ExecutorStubConfig {
    ExecutorStubConfig {
        name: "sandbox".into(),
        rules: vec![ExecRule {
            id: "executor.sandbox[1]".into(),
            when: ExecMatch::default(),
            replies: vec![ExecReply::outcome(true)],
        }],
        faults: faults
            .into_iter()
            .enumerate()
            .map(|(n, (fault, schedule))| ExecFaultRule {
                when: ExecMatch::default(),
                rule: FaultRule {
                    id: format!("chaos[{}]", n + 1),
                    fault,
                    schedule,
                },
            })
            .collect(),
        seed,
    }
}

async fn sandbox(faults: Vec<(HttpFault, Schedule)>, seed: u64) -> ExecutorStub {
    ExecutorStub::start(config(faults, seed)).await.unwrap()
}

async fn execute(stub: &ExecutorStub) -> crate::support::Response {
    send(
        reqwest::Client::new()
            .post(stub.execute_url())
            .json(&json!({"code": "print(1)"})),
    )
    .await
}

#[tokio::test]
async fn status_malformed_and_empty_faults_replace_the_outcome() {
    let stub = sandbox(
        vec![
            (
                HttpFault::Status {
                    status: 503,
                    message: "sandbox busy".into(),
                    retry_after: Some(Duration::from_secs(2)),
                },
                Schedule::First(1),
            ),
            (HttpFault::MalformedJson, Schedule::EveryNth(2)),
            (HttpFault::EmptyBody, Schedule::EveryNth(3)),
        ],
        0,
    )
    .await;
    let first = execute(&stub).await;
    assert_eq!(first.status, 503);
    assert_eq!(first.header("retry-after"), Some("2"));
    assert_eq!(first.json()["error"]["message"], "sandbox busy");
    let second = execute(&stub).await;
    assert_eq!(second.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&second.text).is_err());
    let third = execute(&stub).await;
    assert_eq!((third.status, third.text.as_str()), (200, ""));
    let fourth = execute(&stub).await;
    assert!(fourth.text.starts_with("{\"id\": \"chatcmpl-malformed\""));
    let fifth = execute(&stub).await;
    assert_eq!(fifth.json()["success"], true);

    let journal = stub.journal();
    let served: Vec<&str> = journal.iter().map(|e| e.served.as_str()).collect();
    assert_eq!(served[0], "503 error");
    assert!(served[1].starts_with("200 malformed json"));
    assert_eq!(served[2], "200 empty body");
    assert_eq!(
        journal[4].rule.as_deref(),
        Some("executor.sandbox[1] reply 1/1")
    );
    assert_eq!(
        journal[0].fault.as_deref(),
        Some("chaos[1]: 503 retry-after=2s")
    );
    let counters = stub.counters();
    assert_eq!(counters.by_rule["executor.sandbox[1]"], 1);
    assert_eq!(
        (
            counters.by_fault["chaos[1]"],
            counters.by_fault["chaos[2]"],
            counters.by_fault["chaos[3]"]
        ),
        (1, 2, 1)
    );
}

#[tokio::test]
async fn random_delays_on_an_executor_replay_per_seed() {
    let faults = || {
        vec![(
            HttpFault::uniform(Duration::from_millis(1), Duration::from_millis(5)),
            Schedule::Always,
        )]
    };
    async fn labels(faults: Vec<(HttpFault, Schedule)>, seed: u64) -> Vec<String> {
        let stub = sandbox(faults, seed).await;
        for _ in 0..4 {
            assert_eq!(execute(&stub).await.status, 200);
        }
        stub.journal()
            .into_iter()
            .map(|e| format!("{} | {}", e.fault.unwrap(), e.served))
            .collect()
    }
    let first = labels(faults(), 5).await;
    assert_eq!(first, labels(faults(), 5).await);
    assert_ne!(first, labels(faults(), 6).await);
    assert!(
        first[0].starts_with("chaos[1]: delay uniform 1ms..5ms drew "),
        "{}",
        first[0]
    );
    assert!(first[0].contains("| 200 json ("), "{}", first[0]);
    assert!(first[0].contains(" after "), "{}", first[0]);
}

#[tokio::test]
async fn a_hang_is_a_very_long_delay_the_client_times_out_on() {
    let stub = sandbox(vec![(HttpFault::Hang, Schedule::First(1))], 0).await;
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let error = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap()
        .post(stub.execute_url())
        .json(&json!({"code": "loop forever"}))
        .send()
        .await
        .expect_err("no answer within the client's timeout");
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() >= timeout);
    let entry = &stub.journal()[0];
    assert_eq!(entry.fault.as_deref(), Some("chaos[1]: hang"));
    assert_eq!(
        entry.served,
        "hang (held back 1day: wiremock cannot see the client leave)"
    );
    assert_eq!(mocks::EXECUTOR_HANG, Duration::from_secs(86_400));
    assert_eq!(execute(&stub).await.status, 200);
}

#[tokio::test]
async fn wire_level_faults_are_refused_at_start() {
    for fault in [
        HttpFault::Reset { after_bytes: None },
        HttpFault::Truncated(Truncation::Bytes(3)),
        HttpFault::StreamCut { after_chunks: 1 },
    ] {
        let error = ExecutorStub::start(config(vec![(fault.clone(), Schedule::Always)], 0))
            .await
            .expect_err("refused");
        assert!(
            matches!(error, StubError::UnsupportedFault { .. }),
            "{error:?}"
        );
    }
    let error = ExecutorStub::start(config(
        vec![(
            HttpFault::Reset {
                after_bytes: Some(120),
            },
            Schedule::Always,
        )],
        0,
    ))
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "fault rule `chaos[1]` (`reset after 120 bytes`) cannot be injected by the `executor.sandbox` stub: it runs on wiremock, which sends a response whole and never touches the socket (hint: arm it on the LLM stub, or put a chaos TCP proxy with a `reset_peer`, `limit_data` or `timeout` toxic in front of the executor)"
    );
    // an invalid fault is refused as on the LLM stub
    let error = ExecutorStub::start(config(vec![(HttpFault::Hang, Schedule::EveryNth(0))], 0))
        .await
        .unwrap_err();
    assert!(matches!(error, StubError::Fault { .. }), "{error:?}");
}
