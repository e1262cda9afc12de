//! Plain forwarding: bytes intact both ways, half-closes passed on, an unreachable
//! upstream, host names, and the loopback-only rule.

use chaos::proxy::{
    CloseReason, FaultProxy, ProxyConfig, ProxyConfigError, ProxyError, ProxyEventKind, Upstream,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{echo_server, proxy, read_all, round_trip};

#[tokio::test]
async fn forwards_a_large_stream_intact_and_passes_the_half_close_on() {
    let upstream = echo_server().await;
    let proxy = proxy(upstream.addr, Vec::new(), 1).await;
    let payload: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();

    let client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut read, mut write) = client.into_split();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        write.write_all(&sent).await.unwrap();
        // The echo server only closes after it sees our EOF through the proxy.
        write.shutdown().await.unwrap();
        write
    });
    let mut received = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut read, &mut received)
        .await
        .unwrap();
    let _write = writer.await.unwrap();
    assert_eq!(received.len(), payload.len());
    assert!(received == payload, "bytes changed on the way");

    let journal = proxy.shutdown().await;
    let closed = journal.iter().find_map(|event| match &event.kind {
        ProxyEventKind::Closed {
            upstream,
            downstream,
            reason,
            ..
        } => Some((*upstream, *downstream, reason.clone())),
        _ => None,
    });
    let (up, down, reason) = closed.expect("the connection closed");
    assert_eq!(reason, CloseReason::Peers);
    assert_eq!((up.received, up.delivered), (262_144, 262_144));
    assert_eq!((down.received, down.delivered), (262_144, 262_144));
}

#[tokio::test]
async fn an_unreachable_upstream_closes_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = listener.local_addr().unwrap();
    drop(listener);
    let proxy = proxy(closed_port, Vec::new(), 1).await;

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (received, _) = read_all(&mut client).await;
    assert!(received.is_empty());

    let journal = proxy.shutdown().await;
    assert!(
        journal.iter().any(|event| matches!(
            &event.kind,
            ProxyEventKind::Closed { reason: CloseReason::UpstreamUnreachable { message }, .. }
                if message.contains("refused")
        )),
        "{journal:#?}"
    );
}

#[tokio::test]
async fn a_host_name_upstream_resolves_to_loopback() {
    let upstream = echo_server().await;
    let config = ProxyConfig::new(
        format!("localhost:{}", upstream.addr.port())
            .parse::<Upstream>()
            .unwrap(),
    );
    let proxy = FaultProxy::start(config, 1).await.unwrap();
    assert!(
        proxy
            .upstream_addrs()
            .iter()
            .all(|addr| addr.ip().is_loopback())
    );
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"hello").await, b"hello");
}

#[tokio::test]
async fn a_non_loopback_upstream_or_listen_address_is_refused() {
    let error = FaultProxy::start(
        ProxyConfig::new("10.0.0.1:80".parse::<Upstream>().unwrap()),
        1,
    )
    .await
    .unwrap_err();
    assert_eq!(error.to_string(), "invalid config for fault proxy ``");
    let ProxyError::Config { source, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(matches!(
        source,
        ProxyConfigError::NonLoopbackUpstream { .. }
    ));
    assert_eq!(
        std::error::Error::source(&error).unwrap().to_string(),
        "upstream `10.0.0.1:80` resolves to `10.0.0.1:80`, which is not a loopback address (hint: set `allow_non_loopback = true` to forward beyond this machine)"
    );

    let mut config = ProxyConfig::new("127.0.0.1:80".parse::<Upstream>().unwrap());
    config.name = "exposed".into();
    config.listen = "0.0.0.0:0".parse().unwrap();
    let error = FaultProxy::start(config, 1).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid config for fault proxy `exposed`"
    );

    // Allowed explicitly, it starts (and would only dial out when a client connects).
    let mut config = ProxyConfig::new("10.0.0.1:80".parse::<Upstream>().unwrap());
    config.allow_non_loopback = true;
    FaultProxy::start(config, 1).await.unwrap().shutdown().await;
}
