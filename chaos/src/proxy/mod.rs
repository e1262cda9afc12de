//! TCP faults: a fault proxy between a target and one of its dependencies, with
//! Toxiproxy's toxics.
//!
//! A [`FaultProxy`] listens on loopback and forwards each connection it accepts to an
//! upstream (an LLM stub, a fake executor, a Redis), applying [`Toxic`]s to the bytes
//! each way: latency, bandwidth, slicing, a slow close, a timeout or blackhole, a reset, a
//! data limit. The target is pointed at the proxy instead of the upstream, and sees real
//! TCP misbehaving.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::{Duration, Instant};
//! use chaos::proxy::{Direction, FaultProxy, ProxyConfig, Toxic, ToxicKind};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! // an upstream that says hello
//! let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let upstream_addr = upstream.local_addr().unwrap();
//! tokio::spawn(async move {
//!     let (mut socket, _) = upstream.accept().await.unwrap();
//!     socket.write_all(b"hello").await.unwrap();
//! });
//!
//! // every reply 100ms late
//! let mut config = ProxyConfig::new(upstream_addr);
//! config.toxics.push(Toxic::new("slow", Direction::Downstream, ToxicKind::Latency {
//!     latency: Duration::from_millis(100),
//!     jitter: Duration::ZERO,
//! }));
//! let proxy = FaultProxy::start(config, 42).await.unwrap();
//!
//! let started = Instant::now();
//! let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
//! let mut reply = String::new();
//! client.read_to_string(&mut reply).await.unwrap();
//! assert_eq!(reply, "hello");
//! assert!(started.elapsed() >= Duration::from_millis(100));
//!
//! let journal = proxy.shutdown().await;
//! assert!(journal.iter().any(|event| event.to_string().contains("conn 1: toxic slow (downstream) applies")));
//! # }
//! ```
//!
//! # Decisions and replay
//!
//! Whether a toxic applies to a connection is drawn once, with probability
//! [`Toxic::toxicity`], from the proxy's RNG seeded with the seed given to
//! [`FaultProxy::start`]: for each new connection, in the order the proxy accepts them,
//! one draw per toxic in list order; and on [`FaultProxy::set_toxics`], for each open
//! connection in order, one draw per new or changed toxic (unchanged toxics keep their
//! decision). The same seed and the same order of connections and changes replay the
//! same decisions. Per-chunk draws (jitter, slice sizes) come from a per-connection RNG
//! seeded from the proxy's, so they replay too when the data arrives in the same chunks
//! (which the kernel, not the proxy, decides).
//!
//! # Changing toxics while running
//!
//! [`FaultProxy::set_toxics`] applies to open connections too (an HTTP client reuses its
//! connections, so a fault window must reach them): a removed toxic stops acting at once
//! (the unwritten rest of a delayed chunk is planned again without it), an added one
//! starts, and its timers (timeout) count from then.
//!
//! # What is not Toxiproxy's
//!
//! - Toxics of one direction compose in a fixed order (drop, limit, latency, slicer,
//!   bandwidth), not in list order; several latencies add up, the lowest bandwidth wins.
//! - A timeout toxic's timeout counts from when it became active on the connection, as
//!   Toxiproxy documents it (Toxiproxy's code restarts it with every dropped chunk).
//! - Half-closes are passed on: when one side shuts down its writing, the other side sees
//!   EOF and may still send; the connection ends when both directions have.
//! - No HTTP API: toxics come from scenario files or code.

mod config;
mod journal;
mod link;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

pub use crate::errors::{ProxyConfigError, ProxyError};
pub use config::{Direction, ProxyConfig, Toxic, ToxicKind, Upstream, validate_toxics};
pub use journal::{ByteCounts, CloseReason, ProxyEvent, ProxyEventKind, Side, ToxicEffect};

/// A running TCP fault proxy. Start it with [`FaultProxy::start`]; stop it with
/// [`FaultProxy::shutdown`], or drop it.
///
/// Dropping it aborts its listener and every connection task: the runtime closes their
/// sockets as it drops the tasks, shortly after (use `shutdown` to wait for that).
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    upstream: Arc<[SocketAddr]>,
    stop: Option<oneshot::Sender<()>>,
    accept: Option<JoinHandle<()>>,
    /// Ends (`recv` gives `None`) when the last task holding the shared state is gone.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the tests only"))]
    alive: Option<mpsc::Receiver<()>>,
}

impl FaultProxy {
    /// Validates `config`, resolves the upstream (only to loopback addresses, unless
    /// `allow_non_loopback`), binds the listen address and starts accepting, on the current
    /// tokio runtime. `seed` seeds every random choice of this proxy.
    pub async fn start(config: ProxyConfig, seed: u64) -> Result<FaultProxy, ProxyError> {
        let name = config.name.clone();
        config.validate().map_err(|source| ProxyError::Config {
            name: name.clone(),
            source,
        })?;
        let upstream = resolve(&config).await?;
        let bind_error = |source| ProxyError::Bind {
            name: name.clone(),
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;

        let (alive_tx, alive_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            seed,
            start: Instant::now(),
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                toxics: config.toxics,
                conns: BTreeMap::new(),
                next_conn: 0,
                journal: Vec::new(),
            }),
            _alive: alive_tx,
        });
        shared.record(ProxyEventKind::Started {
            seed,
            listen: local_addr,
            upstream: upstream[0],
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let accept = tokio::spawn(accept_loop(
            listener,
            shared.clone(),
            upstream.clone(),
            stop_rx,
        ));
        Ok(FaultProxy {
            shared,
            local_addr,
            upstream,
            stop: Some(stop_tx),
            accept: Some(accept),
            alive: Some(alive_rx),
        })
    }

    /// The address the proxy listens on: point the target here.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The upstream addresses, as resolved at start; each connection tries them in order.
    pub fn upstream_addrs(&self) -> &[SocketAddr] {
        &self.upstream
    }

    /// The seed given to [`FaultProxy::start`].
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// The current toxics.
    pub fn toxics(&self) -> Vec<Toxic> {
        self.shared.lock().toxics.clone()
    }

    /// Replaces the toxics, for new connections and open ones (see the module docs for
    /// what that does to a connection mid-stream). An empty list heals the proxy.
    pub fn set_toxics(&self, toxics: Vec<Toxic>) -> Result<(), ProxyConfigError> {
        validate_toxics(&toxics)?;
        self.shared.set_toxics(toxics);
        Ok(())
    }

    /// Everything recorded so far, oldest first; the first entry carries the seed.
    pub fn journal(&self) -> Vec<ProxyEvent> {
        self.shared.lock().journal.clone()
    }

    /// Stops accepting, closes every open connection (FIN to both sides), waits until every
    /// task of the proxy has ended, and returns the complete journal.
    pub async fn shutdown(mut self) -> Vec<ProxyEvent> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(accept) = self.accept.take()
            && let Err(error) = accept.await
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
        self.shared.record(ProxyEventKind::Shutdown);
        self.journal()
    }

    /// A receiver that yields `None` once the proxy and all its tasks are gone.
    #[cfg(test)]
    pub(crate) fn take_alive(&mut self) -> mpsc::Receiver<()> {
        self.alive.take().expect("taken once")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
    }
}

async fn resolve(config: &ProxyConfig) -> Result<Arc<[SocketAddr]>, ProxyError> {
    let addrs: Vec<SocketAddr> = match &config.upstream {
        Upstream::Addr(addr) => vec![*addr],
        Upstream::Host { host, port } => tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|source| ProxyError::Resolve {
                name: config.name.clone(),
                upstream: config.upstream.to_string(),
                source,
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(ProxyError::NoAddress {
            name: config.name.clone(),
            upstream: config.upstream.to_string(),
        });
    }
    if !config.allow_non_loopback
        && let Some(addr) = addrs.iter().find(|addr| !addr.ip().is_loopback())
    {
        return Err(ProxyError::Config {
            name: config.name.clone(),
            source: ProxyConfigError::NonLoopbackUpstream {
                upstream: config.upstream.to_string(),
                addr: *addr,
            },
        });
    }
    Ok(addrs.into())
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    upstream: Arc<[SocketAddr]>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let registration = shared.register(peer);
                    tasks.spawn(link::run(shared.clone(), registration, client, upstream.clone()));
                }
                // Out of file descriptors and the like: back off a little, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = tasks.join_next() => {}
        }
    }
    drop(listener);
    tasks.shutdown().await;
}

/// The toxics that apply to one connection, both directions, in order.
type ActiveToxics = Arc<[ActiveToxic]>;

#[derive(Debug, Clone)]
struct ActiveToxic {
    label: String,
    toxic: Toxic,
    /// When it became active on the connection.
    since: Instant,
}

/// What the accept loop hands a new connection's task.
struct Registration {
    conn: u64,
    seed: u64,
    toxics: watch::Receiver<ActiveToxics>,
}

/// State shared by the proxy handle, its accept loop and its connection tasks.
#[derive(Debug)]
struct Shared {
    seed: u64,
    start: Instant,
    state: Mutex<State>,
    /// Dropped with the last holder of the shared state: see [`FaultProxy::alive`].
    _alive: mpsc::Sender<()>,
}

#[derive(Debug)]
struct State {
    rng: StdRng,
    toxics: Vec<Toxic>,
    conns: BTreeMap<u64, LiveConn>,
    next_conn: u64,
    journal: Vec<ProxyEvent>,
}

#[derive(Debug)]
struct LiveConn {
    decisions: Vec<Decision>,
    toxics: watch::Sender<ActiveToxics>,
}

#[derive(Debug, Clone)]
struct Decision {
    toxic: Toxic,
    fired: bool,
    since: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not stop the journal from being read.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, kind: ProxyEventKind) {
        let mut state = self.lock();
        push_event(&mut state.journal, self.start, kind);
    }

    fn register(&self, client: SocketAddr) -> Registration {
        let mut state = self.lock();
        let state = &mut *state;
        state.next_conn += 1;
        let conn = state.next_conn;
        push_event(
            &mut state.journal,
            self.start,
            ProxyEventKind::Accepted { conn, client },
        );
        let decisions = decide(
            &mut state.rng,
            &mut state.journal,
            self.start,
            conn,
            &state.toxics,
            &[],
        );
        let seed = state.rng.random();
        let (tx, rx) = watch::channel(active(&decisions));
        state.conns.insert(
            conn,
            LiveConn {
                decisions,
                toxics: tx,
            },
        );
        Registration {
            conn,
            seed,
            toxics: rx,
        }
    }

    fn set_toxics(&self, toxics: Vec<Toxic>) {
        let mut state = self.lock();
        let state = &mut *state;
        push_event(
            &mut state.journal,
            self.start,
            ProxyEventKind::ToxicsSet {
                toxics: toxics.iter().map(Toxic::to_string).collect(),
            },
        );
        for (&conn, live) in &mut state.conns {
            live.decisions = decide(
                &mut state.rng,
                &mut state.journal,
                self.start,
                conn,
                &toxics,
                &live.decisions,
            );
            live.toxics.send_replace(active(&live.decisions));
        }
        state.toxics = toxics;
    }

    fn closed(&self, conn: u64, upstream: ByteCounts, downstream: ByteCounts, reason: CloseReason) {
        let mut state = self.lock();
        state.conns.remove(&conn);
        push_event(
            &mut state.journal,
            self.start,
            ProxyEventKind::Closed {
                conn,
                upstream,
                downstream,
                reason,
            },
        );
    }
}

fn push_event(journal: &mut Vec<ProxyEvent>, start: Instant, kind: ProxyEventKind) {
    let at = Instant::now();
    journal.push(ProxyEvent {
        at,
        since_start: at - start,
        kind,
    });
}

/// Whether each of `toxics` applies to connection `conn`: kept from `previous` for a toxic
/// that is unchanged, drawn for the others.
fn decide(
    rng: &mut StdRng,
    journal: &mut Vec<ProxyEvent>,
    start: Instant,
    conn: u64,
    toxics: &[Toxic],
    previous: &[Decision],
) -> Vec<Decision> {
    toxics
        .iter()
        .map(|toxic| {
            if let Some(kept) = previous.iter().find(|decision| decision.toxic == *toxic) {
                return kept.clone();
            }
            let fired = rng.random::<f64>() < toxic.toxicity;
            push_event(
                journal,
                start,
                ProxyEventKind::ToxicDrawn {
                    conn,
                    toxic: toxic.label(),
                    stream: toxic.stream,
                    fired,
                },
            );
            Decision {
                toxic: toxic.clone(),
                fired,
                since: Instant::now(),
            }
        })
        .collect()
}

fn active(decisions: &[Decision]) -> ActiveToxics {
    decisions
        .iter()
        .filter(|decision| decision.fired)
        .map(|decision| ActiveToxic {
            label: decision.toxic.label(),
            toxic: decision.toxic.clone(),
            since: decision.since,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    /// Dropping the proxy, rather than shutting it down, still ends every task: the
    /// shared state (held by the accept loop and each connection task) is released, and the
    /// open connection is closed.
    #[tokio::test]
    async fn drop_ends_every_task_and_closes_connections() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = FaultProxy::start(ProxyConfig::new(upstream.local_addr().unwrap()), 1)
            .await
            .unwrap();
        let mut alive = proxy.take_alive();
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        // The upstream sees the proxy's connection: the connection task is running.
        let (_server, _) = upstream.accept().await.unwrap();

        drop(proxy);
        assert_eq!(alive.recv().await, None);
        let mut buf = [0; 1];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
    }

    /// When `shutdown` returns, every task has already ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_returns_after_every_task_has_ended() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = FaultProxy::start(ProxyConfig::new(upstream.local_addr().unwrap()), 1)
            .await
            .unwrap();
        let mut alive = proxy.take_alive();
        let _client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let (_server, _) = upstream.accept().await.unwrap();

        proxy.shutdown().await;
        assert_eq!(
            alive.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        );
    }
}
