//! Random delays drawn from the seeded state, and time-windowed schedules, checked through
//! the journal (what was drawn and decided), never through wall time.

use std::time::Duration;

use chaos::{FaultState, HttpFault, Schedule};
use mocks::{LlmMatch, LlmReply, LlmStub};

use crate::support::{body, chat, fault, llm_with_faults, rule};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn stub(faults: Vec<mocks::LlmFaultRule>, seed: u64) -> LlmStub {
    llm_with_faults(
        vec![rule(
            "llm[1]",
            LlmMatch::default(),
            vec![LlmReply::text("ok")],
        )],
        faults,
        seed,
    )
    .await
}

/// The fault labels of `n` requests against a stub with `faults` and `seed`.
async fn drawn(faults: Vec<mocks::LlmFaultRule>, seed: u64, n: usize) -> Vec<String> {
    let stub = stub(faults, seed).await;
    for _ in 0..n {
        assert_eq!(
            chat(&stub.base_url("primary"), &[], &body("m", "s", "u"))
                .await
                .status,
            200
        );
    }
    stub.journal()
        .into_iter()
        .map(|entry| {
            // the drawn waits add up to the delay served
            assert!(entry.served.starts_with("200 json"), "{}", entry.served);
            entry.fault.unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn random_delays_replay_per_seed() {
    let faults = || {
        vec![
            fault(
                "chaos[1]",
                LlmMatch::default(),
                HttpFault::uniform(ms(1), ms(8)),
                Schedule::Always,
            ),
            fault(
                "chaos[2]",
                LlmMatch::default(),
                HttpFault::lognormal(ms(2), 0.5),
                Schedule::EveryNth(2),
            ),
        ]
    };
    let first = drawn(faults(), 42, 6).await;
    assert_eq!(first, drawn(faults(), 42, 6).await, "same seed, same draws");
    assert_ne!(
        first,
        drawn(faults(), 43, 6).await,
        "another seed, other draws"
    );
    assert!(
        first[0].starts_with("chaos[1]: delay uniform 1ms..8ms drew "),
        "{}",
        first[0]
    );
    assert!(!first[0].contains("chaos[2]"));
    assert!(
        first[1].contains(", chaos[2]: delay lognormal median=2ms sigma=0.5 drew "),
        "{}",
        first[1]
    );

    // the journal's draws are the chaos state's draws for that seed and rule
    let mut state = FaultState::new(42);
    let expected: Vec<String> = (0..6)
        .map(|_| {
            let wait = state
                .draw_delay(0, &HttpFault::uniform(ms(1), ms(8)))
                .unwrap();
            format!(
                "chaos[1]: delay uniform 1ms..8ms drew {}",
                humantime::format_duration(wait)
            )
        })
        .collect();
    let uniform: Vec<&str> = first
        .iter()
        .map(|label| label.split(", ").next().unwrap())
        .collect();
    assert_eq!(uniform, expected);
}

#[tokio::test]
async fn a_drawn_delay_is_served_as_the_reply_s_delay() {
    let stub = stub(
        vec![fault(
            "chaos[1]",
            LlmMatch::default(),
            HttpFault::uniform(ms(20), ms(20)),
            Schedule::Always,
        )],
        0,
    )
    .await;
    chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
    let entry = &stub.journal()[0];
    assert_eq!(
        entry.fault.as_deref(),
        Some("chaos[1]: delay uniform 20ms..20ms drew 20ms")
    );
    assert!(entry.served.ends_with(" after 20ms"), "{}", entry.served);
}

#[tokio::test]
async fn a_window_that_has_not_opened_fires_nothing_and_counts_nothing() {
    let status = HttpFault::Status {
        status: 503,
        message: String::new(),
        retry_after: None,
    };
    let later = Schedule::Always.within(Duration::from_secs(3600), None);
    let open = Schedule::First(1).within(Duration::ZERO, Some(Duration::from_secs(3600)));
    let stub = stub(
        vec![
            fault("chaos[1]", LlmMatch::default(), status.clone(), later),
            fault("chaos[2]", LlmMatch::default(), status, open),
        ],
        0,
    )
    .await;
    let statuses = [
        chat(&stub.base_url("primary"), &[], &body("m", "s", "u"))
            .await
            .status,
        chat(&stub.base_url("primary"), &[], &body("m", "s", "u"))
            .await
            .status,
    ];
    assert_eq!(statuses, [503, 200]);
    let faults: Vec<Option<String>> = stub.journal().into_iter().map(|e| e.fault).collect();
    assert_eq!(faults, [Some("chaos[2]: 503".to_string()), None]);
}

/// Requests before, inside and after a window: whether each fired is exactly what the
/// window and the schedule say for the time the journal recorded for it.
#[tokio::test]
async fn a_window_fires_for_the_requests_inside_it() {
    let after = ms(100);
    let until = ms(600);
    let schedule = Schedule::Probability(0.5).within(after, Some(until));
    let seed = 11;
    let stub = stub(
        vec![fault(
            "chaos[1]",
            LlmMatch::default(),
            HttpFault::Status {
                status: 503,
                message: String::new(),
                retry_after: None,
            },
            schedule.clone(),
        )],
        seed,
    )
    .await;
    // requests until one is journaled after the window; the client paces itself so the
    // test sends tens of requests, not thousands
    loop {
        chat(&stub.base_url("primary"), &[], &body("m", "s", "u")).await;
        if stub
            .journal()
            .last()
            .is_some_and(|entry| entry.at >= until + ms(50))
        {
            break;
        }
        tokio::time::sleep(ms(5)).await;
    }
    let journal = stub.journal();
    let mut replay = FaultState::new(seed);
    let mut inside = 0;
    for entry in &journal {
        let expected = replay.decide_at(0, &schedule, entry.at);
        let fired = entry.status == 503;
        assert_eq!(fired, expected, "request at {:?}", entry.at);
        if entry.at >= after && entry.at < until {
            inside += 1;
        } else {
            assert!(!fired, "outside the window at {:?}", entry.at);
        }
    }
    assert!(inside > 0, "no request fell inside the window");
    assert_eq!(stub.counters().by_fault["chaos[1]"], replay.injected(0));
    assert_eq!(replay.events(0), inside);
}
