//! Toxicity, replay by seed, toxics changed while connections are open, and the journal.

use std::net::SocketAddr;

use chaos::proxy::Direction::{Downstream, Upstream};
use chaos::proxy::{FaultProxy, ProxyEvent, ProxyEventKind, Toxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{echo_server, ms, proxy, read_all, round_trip, toxic};

/// A toxic that, when it applies, closes the connection before any reply.
fn cut(toxicity: f64) -> Toxic {
    toxic(Downstream, ToxicKind::LimitData { bytes: 0 }).with_toxicity(toxicity)
}

/// Whether a new connection through `proxy` echoes a message.
async fn echoes(proxy: SocketAddr) -> bool {
    let mut client = TcpStream::connect(proxy).await.unwrap();
    let _ = client.write_all(b"ping").await;
    let _ = client.shutdown().await;
    let (received, _) = read_all(&mut client).await;
    received == b"ping"
}

/// Connects `n` times, one after the other (so the proxy accepts them in this order).
async fn outcomes(proxy: &FaultProxy, n: usize) -> Vec<bool> {
    let mut outcomes = Vec::new();
    for _ in 0..n {
        outcomes.push(echoes(proxy.local_addr()).await);
    }
    outcomes
}

fn drawn(journal: &[ProxyEvent]) -> Vec<bool> {
    journal
        .iter()
        .filter_map(|event| match event.kind {
            ProxyEventKind::ToxicDrawn { fired, .. } => Some(fired),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn toxicity_zero_never_fires_and_one_always_does() {
    let upstream = echo_server().await;

    let never = proxy(upstream.addr, vec![cut(0.0)], 3).await;
    assert_eq!(outcomes(&never, 8).await, [true; 8]);
    assert_eq!(drawn(&never.shutdown().await), [false; 8]);

    let always = proxy(upstream.addr, vec![cut(1.0)], 3).await;
    assert_eq!(outcomes(&always, 8).await, [false; 8]);
    assert_eq!(drawn(&always.shutdown().await), [true; 8]);
}

#[tokio::test]
async fn the_same_seed_makes_the_same_decisions() {
    let upstream = echo_server().await;
    let run = |seed| {
        let addr = upstream.addr;
        async move {
            let proxy = proxy(addr, vec![cut(0.5)], seed).await;
            let seen = outcomes(&proxy, 16).await;
            let journal = proxy.shutdown().await;
            // what the clients saw is what the journal says was drawn
            let fired = drawn(&journal);
            assert_eq!(seen, fired.iter().map(|fired| !fired).collect::<Vec<_>>());
            seen
        }
    };
    let first = run(7).await;
    assert_eq!(run(7).await, first);
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
    assert_ne!(run(8).await, first);
}

#[tokio::test]
async fn set_toxics_reaches_open_connections() {
    let upstream = echo_server().await;
    let proxy = proxy(upstream.addr, Vec::new(), 1).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"a").await, b"a");

    // A blackhole on the requests of the open connection: "b" never reaches the server,
    // so no echo comes back.
    let blackhole = toxic(Upstream, ToxicKind::Timeout { timeout: ms(0) });
    proxy.set_toxics(vec![blackhole]).unwrap();
    client.write_all(b"b").await.unwrap();
    let mut buf = [0; 1];
    let read = tokio::time::timeout(ms(300), client.read(&mut buf)).await;
    assert!(read.is_err(), "no echo while blackholed: {read:?}");

    // Healed: "c" gets through, and "b" was dropped, not held back.
    proxy.set_toxics(Vec::new()).unwrap();
    assert_eq!(round_trip(&mut client, b"c").await, b"c");

    let shown: Vec<String> = proxy
        .journal()
        .iter()
        .filter(|event| {
            matches!(
                event.kind,
                ProxyEventKind::ToxicsSet { .. } | ProxyEventKind::ToxicDrawn { .. }
            )
        })
        .map(|event| event.to_string().split_once(' ').unwrap().1.to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "toxics set: timeout_upstream: blackhole upstream",
            "conn 1: toxic timeout_upstream (upstream) applies",
            "toxics cleared",
        ]
    );
    assert!(proxy.set_toxics(vec![cut(2.0)]).is_err());
}

#[tokio::test]
async fn an_unchanged_toxic_keeps_its_decision_when_others_change() {
    let upstream = echo_server().await;
    let slow = Toxic::new(
        "slow",
        Downstream,
        ToxicKind::Latency {
            latency: ms(1),
            jitter: ms(0),
        },
    )
    .with_toxicity(0.5);
    let proxy = proxy(upstream.addr, vec![slow.clone()], 5).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"x").await, b"x");
    let before = drawn(&proxy.journal());
    proxy.set_toxics(vec![slow, cut(0.0)]).unwrap();
    // one new draw (the cut), none for "slow"
    let after = drawn(&proxy.journal());
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(round_trip(&mut client, b"y").await, b"y");
}

#[tokio::test]
async fn the_journal_reads_as_a_story_and_serialises() {
    let upstream = echo_server().await;
    let proxy = proxy(upstream.addr, vec![cut(1.0)], 9).await;
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut buf = [0; 1];
    assert_eq!(client.read(&mut buf).await.unwrap(), 0);
    let journal = proxy.shutdown().await;

    let shown: Vec<String> = journal
        .iter()
        .map(|event| event.to_string().split_once(' ').unwrap().1.to_string())
        .collect();
    assert!(shown[0].starts_with("started on 127.0.0.1:"), "{shown:?}");
    assert!(shown[0].ends_with(", seed 9"), "{shown:?}");
    assert!(
        shown[1].starts_with("conn 1 accepted from 127.0.0.1:"),
        "{shown:?}"
    );
    assert_eq!(
        shown[2..],
        [
            "conn 1: toxic limit_data_downstream (downstream) applies",
            "conn 1 closed: limit_data_downstream reached its limit (up 0/0 B, down 0/0 B)",
            "shut down",
        ]
    );
    assert!(
        journal
            .windows(2)
            .all(|pair| pair[0].since_start <= pair[1].since_start)
    );

    let closed = serde_json::to_value(&journal[3]).unwrap();
    assert_eq!(closed["event"], "closed");
    assert_eq!(closed["conn"], 1);
    assert_eq!(closed["reason"]["by"], "toxic");
    assert_eq!(closed["reason"]["effect"], "limit_reached");
    assert_eq!(closed["downstream"]["delivered"], 0);
    assert!(closed["since_start"].is_string());
    assert_eq!(serde_json::to_value(&journal[0]).unwrap()["seed"], 9);
}
