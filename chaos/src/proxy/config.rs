//! What a fault proxy is told: where to listen, where to forward, and which toxics to apply.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::errors::ProxyConfigError;

/// The configuration of one [`FaultProxy`](super::FaultProxy).
///
/// In a scenario file (TOML) it reads:
///
/// ```toml
/// name = "llm"
/// upstream = "127.0.0.1:8080"        # or "localhost:8080"; only loopback by default
/// toxics = [
///   { name = "slow", stream = "downstream", toxicity = 0.5, kind = { type = "latency", latency = "200ms", jitter = "20ms" } },
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Names the proxy in journals. By default, this is empty.
    #[serde(default)]
    pub name: String,
    /// Where the proxy listens. By default, this is `127.0.0.1:0` (a fresh port; read it
    /// back with [`FaultProxy::local_addr`](super::FaultProxy::local_addr)).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where accepted connections are forwarded.
    pub upstream: Upstream,
    /// Allow a listen address or an upstream that is not loopback. By default, this is
    /// `false`: the harness keeps its traffic on loopback.
    #[serde(default)]
    pub allow_non_loopback: bool,
    /// The toxics applied to every new connection (each with its toxicity), in order.
    /// By default, there are none: the proxy forwards bytes as they come.
    #[serde(default)]
    pub toxics: Vec<Toxic>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

impl ProxyConfig {
    /// A proxy to `upstream` on `127.0.0.1:0`, loopback only, with no toxics.
    pub fn new(upstream: impl Into<Upstream>) -> Self {
        Self {
            name: String::new(),
            listen: default_listen(),
            upstream: upstream.into(),
            allow_non_loopback: false,
            toxics: Vec::new(),
        }
    }

    /// Checks what can be checked without the network: the toxics (see
    /// [`validate_toxics`]) and, unless `allow_non_loopback`, that the listen address and
    /// a literal upstream address are loopback. A host name is checked when
    /// [`FaultProxy::start`](super::FaultProxy::start) resolves it.
    pub fn validate(&self) -> Result<(), ProxyConfigError> {
        validate_toxics(&self.toxics)?;
        if !self.allow_non_loopback {
            if !self.listen.ip().is_loopback() {
                return Err(ProxyConfigError::NonLoopbackListen { addr: self.listen });
            }
            if let Upstream::Addr(addr) = self.upstream
                && !addr.ip().is_loopback()
            {
                return Err(ProxyConfigError::NonLoopbackUpstream {
                    upstream: self.upstream.to_string(),
                    addr,
                });
            }
        }
        Ok(())
    }
}

/// Checks a list of toxics: each valid (see [`Toxic::validate`]) and no two with the same
/// [label](Toxic::label).
pub fn validate_toxics(toxics: &[Toxic]) -> Result<(), ProxyConfigError> {
    for (i, toxic) in toxics.iter().enumerate() {
        toxic.validate()?;
        let label = toxic.label();
        if toxics[..i].iter().any(|other| other.label() == label) {
            return Err(ProxyConfigError::DuplicateName { name: label });
        }
    }
    Ok(())
}

/// Where a proxy forwards to: an address, or a `host:port` resolved when the proxy starts.
///
/// Written as a string in config files; anything that parses as a socket address is an
/// [`Upstream::Addr`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Upstream {
    /// A socket address, e.g. `127.0.0.1:8080` or `[::1]:8080`.
    Addr(SocketAddr),
    /// A host name and port, e.g. `localhost:8080`.
    Host {
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
}

impl From<SocketAddr> for Upstream {
    fn from(addr: SocketAddr) -> Self {
        Upstream::Addr(addr)
    }
}

impl FromStr for Upstream {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Upstream::Addr(addr));
        }
        let invalid = || {
            format!("invalid upstream `{text}` (hint: write `host:port`, e.g. `127.0.0.1:8080`)")
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
        let port = port.parse::<u16>().map_err(|_| invalid())?;
        if host.is_empty() || host.contains(':') {
            return Err(invalid());
        }
        Ok(Upstream::Host {
            host: host.to_string(),
            port,
        })
    }
}

impl TryFrom<String> for Upstream {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Upstream> for String {
    fn from(upstream: Upstream) -> Self {
        upstream.to_string()
    }
}

/// `127.0.0.1:8080`, `localhost:8080`.
impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Addr(addr) => write!(f, "{addr}"),
            Upstream::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Which way the bytes a toxic acts on flow, in Toxiproxy's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client → server: the requests.
    Upstream,
    /// Server → client: the replies. The default, as in Toxiproxy.
    #[default]
    Downstream,
}

/// `upstream`, `downstream`.
impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        })
    }
}

/// One toxic: what it does ([`ToxicKind`]), to which direction, on what share of the
/// connections.
///
/// Reading one from a config file validates it ([`Toxic::validate`]), so a toxicity out
/// of range or a zero bandwidth is an error at the toxic as written, not when the proxy
/// starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "ToxicFields")]
pub struct Toxic {
    /// Names the toxic in journals; unique per proxy. By default, this is empty and the
    /// [label](Toxic::label) is `<type>_<stream>`, as in Toxiproxy.
    #[serde(default)]
    pub name: String,
    /// What the toxic does.
    pub kind: ToxicKind,
    /// Which direction it acts on. By default, this is `downstream`.
    #[serde(default)]
    pub stream: Direction,
    /// The probability, in `0..=1`, that the toxic applies to a connection, drawn once per
    /// connection from the proxy's seeded RNG. By default, this is `1` (every connection).
    #[serde(default = "always")]
    pub toxicity: f64,
}

fn always() -> f64 {
    1.0
}

/// A [`Toxic`] as a file writes it, before it is validated.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToxicFields {
    #[serde(default)]
    name: String,
    kind: ToxicKind,
    #[serde(default)]
    stream: Direction,
    #[serde(default = "always")]
    toxicity: f64,
}

impl TryFrom<ToxicFields> for Toxic {
    type Error = ProxyConfigError;

    fn try_from(f: ToxicFields) -> Result<Toxic, ProxyConfigError> {
        let toxic = Toxic {
            name: f.name,
            kind: f.kind,
            stream: f.stream,
            toxicity: f.toxicity,
        };
        toxic.validate()?;
        Ok(toxic)
    }
}

impl Toxic {
    /// A toxic that applies to every connection.
    pub fn new(name: impl Into<String>, stream: Direction, kind: ToxicKind) -> Self {
        Self {
            name: name.into(),
            kind,
            stream,
            toxicity: 1.0,
        }
    }

    /// The same toxic with another toxicity.
    pub fn with_toxicity(self, toxicity: f64) -> Self {
        Self { toxicity, ..self }
    }

    /// The name journals use: [`Toxic::name`], or `<type>_<stream>` when it is empty
    /// (`latency_downstream`), as Toxiproxy names toxics by default.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("{}_{}", self.kind.type_name(), self.stream)
        } else {
            self.name.clone()
        }
    }

    /// Checks the toxicity (in `0..=1`) and the kind's attributes: a bandwidth above zero,
    /// a slicer with a non-zero average size larger than its size variation.
    pub fn validate(&self) -> Result<(), ProxyConfigError> {
        let toxic = || self.label();
        if !(0.0..=1.0).contains(&self.toxicity) {
            return Err(ProxyConfigError::Toxicity {
                toxic: toxic(),
                value: self.toxicity,
            });
        }
        match self.kind {
            ToxicKind::Bandwidth {
                rate_bytes_per_sec: 0,
            } => Err(ProxyConfigError::ZeroRate { toxic: toxic() }),
            ToxicKind::Slicer {
                average_size: 0, ..
            } => Err(ProxyConfigError::ZeroSliceSize { toxic: toxic() }),
            ToxicKind::Slicer {
                average_size,
                size_variation,
                ..
            } if size_variation >= average_size => Err(ProxyConfigError::SliceVariation {
                toxic: toxic(),
                average: average_size,
                variation: size_variation,
            }),
            _ => Ok(()),
        }
    }
}

/// `slow: latency 200ms ±20ms downstream p=0.5` (the toxicity only when below 1).
impl fmt::Display for Toxic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.label(), self.kind, self.stream)?;
        if self.toxicity < 1.0 {
            write!(f, " p={}", self.toxicity)?;
        }
        Ok(())
    }
}

/// What a toxic does to the bytes of one direction of a connection, as Toxiproxy's toxics
/// of the same names do. Written in config files with a `type` tag:
/// `{ type = "latency", latency = "200ms" }`, `{ type = "limit_data", bytes = 1024 }`.
///
/// Data moves in chunks: whatever one read from the source socket returned (at most
/// 16 KiB). Toxics act on chunks, so their effect is exact in bytes and times but the
/// chunking itself follows the sender's writes and the kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToxicKind {
    /// Each chunk is delayed by `latency` ± a uniform `jitter` (never below zero), counted
    /// from when the proxy read it, so a stream is shifted in time, not slowed down.
    Latency {
        /// The mean delay.
        #[serde(with = "crate::serde_duration")]
        latency: Duration,
        /// The largest deviation from `latency`, either way. By default, this is zero.
        #[serde(default, with = "crate::serde_duration")]
        jitter: Duration,
    },
    /// The direction carries at most `rate_bytes_per_sec`: data is written in pieces of a
    /// tenth of a second's worth, each after the time its bytes take at that rate.
    Bandwidth {
        /// Bytes per second; at least 1.
        rate_bytes_per_sec: u64,
    },
    /// Each chunk is split into pieces of `average_size` ± `size_variation` bytes, written
    /// one by one with `delay` between them (the peer sees many small reads).
    Slicer {
        /// Mean piece size in bytes; at least 1.
        average_size: usize,
        /// Largest deviation from `average_size`; smaller than it. By default, this is zero.
        #[serde(default)]
        size_variation: usize,
        /// Pause between pieces. By default, this is zero.
        #[serde(default, with = "crate::serde_duration")]
        delay: Duration,
    },
    /// When the source closes its side, the close (FIN) reaches the destination `delay`
    /// later; data is not delayed.
    SlowClose {
        /// How long the close is held back.
        #[serde(with = "crate::serde_duration")]
        delay: Duration,
    },
    /// No data gets through (it is read and dropped), and the whole connection is closed
    /// `timeout` after the toxic became active on it. A zero `timeout` never closes: a
    /// blackhole until the toxic is removed or the proxy shuts down.
    Timeout {
        /// When to close the connection; zero for never.
        #[serde(with = "crate::serde_duration")]
        timeout: Duration,
    },
    /// On the first chunk after the toxic became active, data stops (it is dropped) and,
    /// `timeout` later, the destination gets a TCP RST (`SO_LINGER` 0, then close): the
    /// peer sees "connection reset by peer". The other side is closed normally.
    ResetPeer {
        /// Delay from the first chunk to the reset. By default, this is zero.
        #[serde(default, with = "crate::serde_duration")]
        timeout: Duration,
    },
    /// Exactly `bytes` bytes get through (counted from when the toxic became active), then
    /// the whole connection is closed normally (FIN); with `0`, it is closed at once.
    LimitData {
        /// How many bytes to let through.
        bytes: u64,
    },
}

impl ToxicKind {
    /// The `type` tag: `latency`, `bandwidth`, `slicer`, `slow_close`, `timeout`,
    /// `reset_peer`, `limit_data`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::LimitData { .. } => "limit_data",
        }
    }
}

/// `latency 200ms ±20ms`, `bandwidth 32768 B/s`, `slicer 10±5 B every 1ms`,
/// `slow close 1s`, `timeout 1s`, `blackhole`, `reset peer after 0s`, `limit data 100 B`.
impl fmt::Display for ToxicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| humantime::format_duration(*d);
        match self {
            ToxicKind::Latency { latency, jitter } if jitter.is_zero() => {
                write!(f, "latency {}", d(latency))
            }
            ToxicKind::Latency { latency, jitter } => {
                write!(f, "latency {} ±{}", d(latency), d(jitter))
            }
            ToxicKind::Bandwidth { rate_bytes_per_sec } => {
                write!(f, "bandwidth {rate_bytes_per_sec} B/s")
            }
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => write!(
                f,
                "slicer {average_size}±{size_variation} B every {}",
                d(delay)
            ),
            ToxicKind::SlowClose { delay } => write!(f, "slow close {}", d(delay)),
            ToxicKind::Timeout { timeout } if timeout.is_zero() => f.write_str("blackhole"),
            ToxicKind::Timeout { timeout } => write!(f, "timeout {}", d(timeout)),
            ToxicKind::ResetPeer { timeout } => write!(f, "reset peer after {}", d(timeout)),
            ToxicKind::LimitData { bytes } => write!(f, "limit data {bytes} B"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_proxy_as_a_scenario_writes_it() {
        let config: ProxyConfig = toml::from_str(
            r#"
            name = "llm"
            upstream = "localhost:8080"
            toxics = [
              { name = "slow", toxicity = 0.5, kind = { type = "latency", latency = "200ms", jitter = "20ms" } },
              { stream = "upstream", kind = { type = "bandwidth", rate_bytes_per_sec = 1024 } },
              { kind = { type = "slicer", average_size = 10, size_variation = 5, delay = "1ms" } },
              { kind = { type = "slow_close", delay = "1s" } },
              { kind = { type = "timeout", timeout = "0s" } },
              { kind = { type = "reset_peer" } },
              { kind = { type = "limit_data", bytes = 100 } },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(
            config.upstream,
            Upstream::Host {
                host: "localhost".into(),
                port: 8080
            }
        );
        assert!(!config.allow_non_loopback);
        config.validate().unwrap();
        let shown: Vec<String> = config.toxics.iter().map(Toxic::to_string).collect();
        assert_eq!(
            shown,
            [
                "slow: latency 200ms ±20ms downstream p=0.5",
                "bandwidth_upstream: bandwidth 1024 B/s upstream",
                "slicer_downstream: slicer 10±5 B every 1ms downstream",
                "slow_close_downstream: slow close 1s downstream",
                "timeout_downstream: blackhole downstream",
                "reset_peer_downstream: reset peer after 0s downstream",
                "limit_data_downstream: limit data 100 B downstream",
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_errors() {
        let error = toml::from_str::<Toxic>(r#"kind = { type = "latency", latncy = "1s" }"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `latncy`"), "{error}");

        let error = toml::from_str::<Toxic>(r#"kind = { type = "latency", latency = "fast" }"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid duration `fast`"), "{error}");

        let error = toml::from_str::<Toxic>(r#"kind = { type = "jam" }"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown variant `jam`"), "{error}");

        let error = toml::from_str::<ProxyConfig>("upstream = \"127.0.0.1:1\"\nlisten_on = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `listen_on`"), "{error}");

        let error = toml::from_str::<ProxyConfig>("upstream = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid upstream `nowhere`"), "{error}");
    }

    #[test]
    fn round_trips_through_serde() {
        let mut config = ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 9)));
        config.toxics.push(Toxic::new(
            "lat",
            Direction::Upstream,
            ToxicKind::Latency {
                latency: Duration::from_millis(1500),
                jitter: Duration::ZERO,
            },
        ));
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains(r#""latency":"1s 500ms""#), "{text}");
        assert!(text.contains(r#""upstream":"127.0.0.1:9""#), "{text}");
        assert_eq!(serde_json::from_str::<ProxyConfig>(&text).unwrap(), config);
    }

    #[test]
    fn validation_names_the_toxic_and_the_fix() {
        let latency = ToxicKind::Latency {
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
        };
        let cases = [
            (
                Toxic::new("p", Direction::Downstream, latency.clone()).with_toxicity(1.5),
                "toxic `p` has toxicity `1.5`, which is not a probability (hint: use 0 to 1; 1 applies it to every connection)",
            ),
            (
                Toxic::new("p", Direction::Downstream, latency.clone()).with_toxicity(f64::NAN),
                "toxic `p` has toxicity `NaN`, which is not a probability (hint: use 0 to 1; 1 applies it to every connection)",
            ),
            (
                Toxic::new(
                    "",
                    Direction::Upstream,
                    ToxicKind::Bandwidth {
                        rate_bytes_per_sec: 0,
                    },
                ),
                "toxic `bandwidth_upstream` limits bandwidth to `0` bytes per second (hint: to stop all data, use a timeout toxic)",
            ),
            (
                Toxic::new(
                    "s",
                    Direction::Downstream,
                    ToxicKind::Slicer {
                        average_size: 0,
                        size_variation: 0,
                        delay: Duration::ZERO,
                    },
                ),
                "toxic `s` slices data into pieces of average size `0` (hint: use at least 1 byte)",
            ),
            (
                Toxic::new(
                    "s",
                    Direction::Downstream,
                    ToxicKind::Slicer {
                        average_size: 4,
                        size_variation: 4,
                        delay: Duration::ZERO,
                    },
                ),
                "toxic `s` varies piece sizes by `4`, which is not less than the average size `4`",
            ),
        ];
        for (toxic, message) in cases {
            assert_eq!(toxic.validate().unwrap_err().to_string(), message);
        }

        let twice = vec![
            Toxic::new("", Direction::Downstream, latency.clone()),
            Toxic::new("", Direction::Downstream, latency),
        ];
        assert_eq!(
            validate_toxics(&twice).unwrap_err().to_string(),
            "two toxics are named `latency_downstream` (hint: give each toxic its own `name`)"
        );
    }

    #[test]
    fn loopback_is_required_unless_allowed() {
        let mut config = ProxyConfig::new(SocketAddr::from(([10, 1, 2, 3], 80)));
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "upstream `10.1.2.3:80` resolves to `10.1.2.3:80`, which is not a loopback address (hint: set `allow_non_loopback = true` to forward beyond this machine)"
        );
        config.allow_non_loopback = true;
        config.validate().unwrap();

        let mut config = ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 80)));
        config.listen = "0.0.0.0:0".parse().unwrap();
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "the proxy would listen on `0.0.0.0:0`, which is not a loopback address (hint: listen on 127.0.0.1, or set `allow_non_loopback = true`)"
        );
        assert!(
            ProxyConfig::new("[::1]:80".parse::<Upstream>().unwrap())
                .validate()
                .is_ok()
        );
    }
}
