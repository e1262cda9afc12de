//! Many requests over keep-alive, served on several threads: the journal stays capped and
//! in order, the counters and the latency histograms stay exact. Not a timing test (the benches time the stub).

use std::collections::BTreeMap;

use chaos::{HttpFault, Schedule};
use mocks::{LlmReply, LlmStub, LlmStubConfig, StubOptions};

use crate::support::{agent, body, fault, refpipe_agents, rule};

const REQUESTS: u64 = 20_000;
const CLIENTS: u64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_thousand_requests_keep_the_journal_capped_and_the_counters_exact() {
    let stub = LlmStub::start_with(
        LlmStubConfig {
            rules: vec![
                rule("llm[1]", agent("planner"), vec![LlmReply::text("plan")]),
                rule("llm[2]", agent("critic"), vec![LlmReply::text("verdict")]),
            ],
            faults: vec![fault(
                "chaos[1]",
                agent("critic"),
                HttpFault::Status {
                    status: 503,
                    message: String::new(),
                    retry_after: None,
                },
                Schedule::EveryNth(10),
            )],
            agents: refpipe_agents(),
            seed: 0,
            rate_limits: Vec::new(),
        },
        StubOptions {
            journal_limit: 1_000,
            // more serving threads than cores: connections land on every thread, and the
            // sequences, faults, counters and journal are still one stub's
            threads: 4,
        },
    )
    .await
    .unwrap();
    let url = format!("{}/chat/completions", stub.base_url("primary"));
    // one client: its pool keeps a few connections alive and reuses them
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for worker in 0..CLIENTS {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = BTreeMap::<u16, u64>::new();
            for n in 0..REQUESTS / CLIENTS {
                let who = match (worker * REQUESTS / CLIENTS + n) % 4 {
                    0 | 1 => "planner",
                    2 => "critic",
                    _ => "coder",
                };
                let request = body("m", &format!("You are the {who} agent"), "go");
                let response = client.post(&url).json(&request).send().await.unwrap();
                *statuses.entry(response.status().as_u16()).or_default() += 1;
                response.bytes().await.unwrap();
            }
            statuses
        }));
    }
    let mut statuses = BTreeMap::<u16, u64>::new();
    for task in tasks {
        for (status, count) in task.await.unwrap() {
            *statuses.entry(status).or_default() += count;
        }
    }
    let quarter = REQUESTS / 4;
    assert_eq!(
        statuses,
        BTreeMap::from([
            (200, quarter * 2 + quarter * 9 / 10),
            (404, quarter),
            (503, quarter / 10)
        ])
    );

    let counters = stub.counters();
    assert_eq!(counters.requests, REQUESTS);
    assert_eq!(counters.unmatched, quarter);
    assert_eq!(
        counters.by_agent,
        BTreeMap::from([
            ("coder".to_string(), quarter),
            ("critic".to_string(), quarter),
            ("planner".to_string(), quarter * 2),
        ])
    );
    assert_eq!(
        counters.by_rule,
        BTreeMap::from([
            ("llm[1]".to_string(), quarter * 2),
            ("llm[2]".to_string(), quarter * 9 / 10),
        ])
    );
    assert_eq!(
        counters.by_fault,
        BTreeMap::from([("chaos[1]".to_string(), quarter / 10)])
    );
    assert_eq!(counters.journal_dropped, REQUESTS - 1_000);

    // timings land just after a response's last byte: wait for the last ones (the clients
    // sent each request after the previous response, so only the last few can be late)
    let journal = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stub.wait_for_journal(|journal| journal.iter().all(|e| e.service.is_some())),
    )
    .await
    .expect("every response is timed");
    let latencies = stub.latencies();
    let timed: BTreeMap<String, u64> = latencies
        .per_agent
        .iter()
        .map(|(agent, histogram)| (agent.clone(), histogram.len()))
        .collect();
    assert_eq!(
        timed, counters.by_agent,
        "every request timed, under its agent"
    );
    assert_eq!(timed.values().sum::<u64>(), REQUESTS);
    assert!(latencies.time_to_first_token.is_empty());

    assert_eq!(journal.len(), 1_000);
    // the ring keeps the most recent exchanges, in order
    assert!(
        journal
            .windows(2)
            .all(|pair| pair[0].received <= pair[1].received)
    );
}

#[tokio::test]
async fn the_default_journal_keeps_ten_thousand_exchanges() {
    assert_eq!(
        StubOptions::default().journal_limit,
        mocks::DEFAULT_JOURNAL_LIMIT
    );
    assert_eq!(mocks::DEFAULT_JOURNAL_LIMIT, 10_000);
    let stub = LlmStub::start_with(
        LlmStubConfig::default(),
        StubOptions {
            journal_limit: 0,
            ..StubOptions::default()
        },
    )
    .await
    .unwrap();
    let response = reqwest::get(format!("{}/models", stub.base_url("primary")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(stub.journal().is_empty());
    assert_eq!(stub.counters().requests, 1);
    assert_eq!(stub.counters().journal_dropped, 1);
}
