//! Shutdown closes every open connection and stops accepting.

use std::io::ErrorKind;

use chaos::proxy::{CloseReason, ProxyEventKind};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::support::{echo_server, proxy, round_trip};

#[tokio::test]
async fn shutdown_closes_open_connections_and_stops_accepting() {
    let upstream = echo_server().await;
    let proxy = proxy(upstream.addr, Vec::new(), 1).await;
    let addr = proxy.local_addr();
    let mut clients = Vec::new();
    for message in [b"one", b"two"] {
        let mut client = TcpStream::connect(addr).await.unwrap();
        assert_eq!(round_trip(&mut client, message).await, message);
        clients.push(client);
    }

    let journal = proxy.shutdown().await;

    for client in &mut clients {
        let mut buf = [0; 1];
        assert_eq!(
            client.read(&mut buf).await.unwrap(),
            0,
            "EOF after shutdown"
        );
    }
    let closed = journal
        .iter()
        .filter(|event| {
            matches!(
                event.kind,
                ProxyEventKind::Closed {
                    reason: CloseReason::Shutdown,
                    ..
                }
            )
        })
        .count();
    assert_eq!(closed, 2);
    assert!(matches!(
        journal.last().unwrap().kind,
        ProxyEventKind::Shutdown
    ));
    assert_eq!(
        TcpStream::connect(addr).await.unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
}
