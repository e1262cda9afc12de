//! Each toxic, observed from outside: by the client, or by the upstream server.

use std::io::ErrorKind;
use std::time::Instant;

use chaos::proxy::Direction::{Downstream, Upstream};
use chaos::proxy::{CloseReason, ProxyEventKind, ToxicEffect, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    echo_server, ms, proxy, read_all, reporting_server, round_trip, sending_server, toxic,
};

#[tokio::test]
async fn latency_delays_the_reply_by_at_least_the_latency() {
    let upstream = echo_server().await;
    let latency = ToxicKind::Latency {
        latency: ms(200),
        jitter: ms(0),
    };
    let proxy = proxy(upstream.addr, vec![toxic(Downstream, latency)], 1).await;

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let started = Instant::now();
    assert_eq!(round_trip(&mut client, b"ping").await, b"ping");
    assert!(started.elapsed() >= ms(200), "{:?}", started.elapsed());
}

#[tokio::test]
async fn latency_with_jitter_on_both_directions_adds_up() {
    let upstream = echo_server().await;
    let latency = ToxicKind::Latency {
        latency: ms(100),
        jitter: ms(40),
    };
    let toxics = vec![toxic(Upstream, latency.clone()), toxic(Downstream, latency)];
    let proxy = proxy(upstream.addr, toxics, 1).await;

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let started = Instant::now();
    assert_eq!(round_trip(&mut client, b"ping").await, b"ping");
    // each way at least latency - jitter
    assert!(started.elapsed() >= ms(120), "{:?}", started.elapsed());
}

#[tokio::test]
async fn bandwidth_paces_a_transfer() {
    let payload: Vec<u8> = (0..16 * 1024u32).map(|i| i as u8).collect();
    let upstream = sending_server(payload.clone(), true).await;
    let bandwidth = ToxicKind::Bandwidth {
        rate_bytes_per_sec: 32 * 1024,
    };
    let proxy = proxy(upstream.addr, vec![toxic(Downstream, bandwidth)], 1).await;

    let started = Instant::now();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (received, ended) = read_all(&mut client).await;
    ended.unwrap();
    assert!(received == payload);
    // 16 KiB at 32 KiB/s
    assert!(started.elapsed() >= ms(500), "{:?}", started.elapsed());
}

#[tokio::test]
async fn slicer_makes_the_client_see_many_small_reads() {
    let payload: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
    let upstream = sending_server(payload.clone(), true).await;
    let slicer = ToxicKind::Slicer {
        average_size: 50,
        size_variation: 20,
        delay: ms(10),
    };
    let proxy = proxy(upstream.addr, vec![toxic(Downstream, slicer)], 1).await;

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut received = Vec::new();
    let mut reads = 0;
    let mut buf = [0; 4096];
    loop {
        let n = client.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        reads += 1;
        received.extend_from_slice(&buf[..n]);
    }
    assert!(received == payload);
    // about 30 pieces 10ms apart; coalescing on a busy machine may merge a few
    assert!(reads >= 5, "{reads} reads");
}

#[tokio::test]
async fn slow_close_holds_the_eof_back() {
    let upstream = sending_server(b"bye".to_vec(), true).await;
    let slow_close = ToxicKind::SlowClose { delay: ms(300) };
    let proxy = proxy(upstream.addr, vec![toxic(Downstream, slow_close)], 1).await;

    let started = Instant::now();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (received, ended) = read_all(&mut client).await;
    ended.unwrap();
    assert_eq!(received, b"bye");
    assert!(started.elapsed() >= ms(300), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_zero_timeout_is_a_blackhole() {
    let upstream = echo_server().await;
    let blackhole = ToxicKind::Timeout { timeout: ms(0) };
    let proxy = proxy(upstream.addr, vec![toxic(Downstream, blackhole)], 1).await;

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0; 4];
    let read = tokio::time::timeout(ms(300), client.read(&mut buf)).await;
    assert!(read.is_err(), "the client's read timed out: {read:?}");

    let journal = proxy.shutdown().await;
    let delivered_down = journal.iter().find_map(|event| match &event.kind {
        ProxyEventKind::Closed {
            downstream,
            upstream,
            reason,
            ..
        } => {
            assert_eq!(*reason, CloseReason::Shutdown);
            assert_eq!(upstream.delivered, 4, "the request got through");
            Some(downstream.delivered)
        }
        _ => None,
    });
    assert_eq!(delivered_down, Some(0));
}

#[tokio::test]
async fn a_timeout_drops_data_then_closes_the_connection() {
    let upstream = echo_server().await;
    let timeout = ToxicKind::Timeout { timeout: ms(200) };
    let proxy = proxy(upstream.addr, vec![toxic(Downstream, timeout)], 1).await;

    let started = Instant::now();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let (received, ended) = read_all(&mut client).await;
    ended.unwrap();
    assert!(received.is_empty());
    assert!(started.elapsed() >= ms(200), "{:?}", started.elapsed());
}

#[tokio::test]
async fn reset_peer_downstream_resets_the_client() {
    let upstream = echo_server().await;
    let reset = ToxicKind::ResetPeer { timeout: ms(100) };
    let proxy = proxy(upstream.addr, vec![toxic(Downstream, reset)], 1).await;

    let started = Instant::now();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let (received, ended) = read_all(&mut client).await;
    assert!(received.is_empty());
    assert_eq!(ended.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert!(started.elapsed() >= ms(100), "{:?}", started.elapsed());

    let journal = proxy.shutdown().await;
    assert!(journal.iter().any(|event| matches!(
        &event.kind,
        ProxyEventKind::Closed {
            reason: CloseReason::Toxic {
                effect: ToxicEffect::Reset,
                ..
            },
            ..
        }
    )));
}

#[tokio::test]
async fn reset_peer_upstream_resets_the_server_and_closes_the_client() {
    let (upstream, mut reports) = reporting_server().await;
    let reset = ToxicKind::ResetPeer { timeout: ms(0) };
    let proxy = proxy(upstream.addr, vec![toxic(Upstream, reset)], 1).await;

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    assert_eq!(
        reports.recv().await.unwrap(),
        Err(ErrorKind::ConnectionReset)
    );
    let (received, ended) = read_all(&mut client).await;
    assert!(received.is_empty());
    ended.unwrap();
}

#[tokio::test]
async fn limit_data_lets_exactly_n_bytes_through_then_closes() {
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let upstream = sending_server(payload.clone(), false).await;
    let limit = ToxicKind::LimitData { bytes: 100 };
    let proxy = proxy(upstream.addr, vec![toxic(Downstream, limit)], 1).await;

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (received, ended) = read_all(&mut client).await;
    ended.unwrap();
    assert_eq!(received, payload[..100]);
}

// Regression: a huge toxic duration overflowed `Instant + Duration` and panicked the link
// task, which dropped the connection: the client saw an early EOF instead of a link that
// holds its data "for ever", as the toxic says.
#[tokio::test]
async fn a_huge_latency_holds_the_data_instead_of_panicking() {
    let upstream = echo_server().await;
    let huge = std::time::Duration::from_secs(u64::MAX / 2);
    let toxics = vec![
        toxic(
            Downstream,
            ToxicKind::Latency {
                latency: huge,
                jitter: ms(0),
            },
        ),
        toxic(Upstream, ToxicKind::SlowClose { delay: huge }),
    ];
    let proxy = proxy(upstream.addr, toxics, 1).await;

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0; 16];
    // Absence is what is asserted: within this bound, nothing arrives and nothing closes.
    let read = tokio::time::timeout(ms(300), client.read(&mut buf)).await;
    assert!(read.is_err(), "the link ended early: {read:?}");
}
