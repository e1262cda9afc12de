//! What a fault proxy records: connections, toxic decisions, closes, with times.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::Direction;

/// One entry of a proxy's journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProxyEvent {
    /// When it happened (not serialised: an `Instant` means nothing outside this process).
    #[serde(skip)]
    pub at: Instant,
    /// When it happened, counted from the proxy's start.
    #[serde(with = "crate::serde_duration")]
    pub since_start: Duration,
    /// What happened.
    #[serde(flatten)]
    pub kind: ProxyEventKind,
}

/// What happened. Connections are numbered from 1 in the order the proxy accepted them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProxyEventKind {
    /// The proxy listens; first in every journal.
    Started {
        /// The seed of the proxy's RNG: the same seed and the same order of connections
        /// and toxic changes replay the same decisions.
        seed: u64,
        /// The address it listens on.
        listen: SocketAddr,
        /// The address it forwards to.
        upstream: SocketAddr,
    },
    /// [`FaultProxy::set_toxics`](super::FaultProxy::set_toxics) replaced the toxics.
    ToxicsSet {
        /// The new toxics, as their one-line descriptions.
        toxics: Vec<String>,
    },
    /// A client connected.
    Accepted {
        /// The connection.
        conn: u64,
        /// The client's address.
        client: SocketAddr,
    },
    /// Whether a toxic applies to a connection was drawn (once per connection and toxic,
    /// when either appears).
    ToxicDrawn {
        /// The connection.
        conn: u64,
        /// The toxic's label.
        toxic: String,
        /// The direction it acts on.
        stream: Direction,
        /// Whether it applies.
        fired: bool,
    },
    /// A connection ended and both its sockets are closed.
    Closed {
        /// The connection.
        conn: u64,
        /// Bytes client → server.
        upstream: ByteCounts,
        /// Bytes server → client.
        downstream: ByteCounts,
        /// Why it ended.
        reason: CloseReason,
    },
    /// The proxy stopped accepting and closed every connection.
    Shutdown,
}

/// The bytes of one direction of a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByteCounts {
    /// Read from the source.
    pub received: u64,
    /// Written to the destination (less than received when a toxic dropped or cut data,
    /// or the connection ended first).
    pub delivered: u64,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum CloseReason {
    /// Both sides closed their end (after any slow close).
    Peers,
    /// A toxic ended it.
    Toxic {
        /// The toxic's label.
        toxic: String,
        /// The direction it acts on.
        stream: Direction,
        /// What it did.
        effect: ToxicEffect,
    },
    /// One side reset the connection; the proxy reset the other.
    PeerReset {
        /// The side that reset: `client` or `server`.
        side: Side,
    },
    /// Reading or writing failed otherwise; both sides were closed.
    Error {
        /// The I/O error.
        message: String,
    },
    /// The upstream refused or failed the connection; the client was closed.
    UpstreamUnreachable {
        /// The I/O error.
        message: String,
    },
    /// The proxy shut down (or was dropped) with the connection open.
    Shutdown,
}

/// How a toxic ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToxicEffect {
    /// A timeout toxic's timeout elapsed: both sides closed.
    TimedOut,
    /// A reset_peer toxic reset the destination; the other side closed.
    Reset,
    /// A limit_data toxic's limit was reached: both sides closed.
    LimitReached,
}

/// One end of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The client that connected to the proxy.
    Client,
    /// The upstream server the proxy connected to.
    Server,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Server => "server",
        })
    }
}

/// `+0.215s conn 2 closed: reset_peer_downstream reset the client (up 4/4 B, down 4/0 B)`.
impl fmt::Display for ProxyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{:.3}s ", self.since_start.as_secs_f64())?;
        match &self.kind {
            ProxyEventKind::Started {
                seed,
                listen,
                upstream,
            } => write!(f, "started on {listen} → {upstream}, seed {seed}"),
            ProxyEventKind::ToxicsSet { toxics } if toxics.is_empty() => {
                f.write_str("toxics cleared")
            }
            ProxyEventKind::ToxicsSet { toxics } => write!(f, "toxics set: {}", toxics.join("; ")),
            ProxyEventKind::Accepted { conn, client } => {
                write!(f, "conn {conn} accepted from {client}")
            }
            ProxyEventKind::ToxicDrawn {
                conn,
                toxic,
                stream,
                fired,
            } => {
                let applies = if *fired { "applies" } else { "does not apply" };
                write!(f, "conn {conn}: toxic {toxic} ({stream}) {applies}")
            }
            ProxyEventKind::Closed {
                conn,
                upstream,
                downstream,
                reason,
            } => {
                write!(f, "conn {conn} closed: ")?;
                match reason {
                    CloseReason::Peers => f.write_str("by the peers")?,
                    CloseReason::Toxic {
                        toxic,
                        stream,
                        effect,
                    } => {
                        let what = match (effect, stream) {
                            (ToxicEffect::TimedOut, _) => "timed out the connection",
                            (ToxicEffect::LimitReached, _) => "reached its limit",
                            (ToxicEffect::Reset, Direction::Downstream) => "reset the client",
                            (ToxicEffect::Reset, Direction::Upstream) => "reset the server",
                        };
                        write!(f, "{toxic} {what}")?;
                    }
                    CloseReason::PeerReset { side } => write!(f, "the {side} reset it")?,
                    CloseReason::Error { message } => write!(f, "error: {message}")?,
                    CloseReason::UpstreamUnreachable { message } => {
                        write!(f, "upstream unreachable: {message}")?
                    }
                    CloseReason::Shutdown => f.write_str("proxy shut down")?,
                }
                write!(
                    f,
                    " (up {}/{} B, down {}/{} B)",
                    upstream.received,
                    upstream.delivered,
                    downstream.received,
                    downstream.delivered
                )
            }
            ProxyEventKind::Shutdown => f.write_str("shut down"),
        }
    }
}
