//! Errors of the `chaos` crate, one type per operation.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

/// A [`Schedule`](crate::Schedule) that can never mean what its author wanted.
///
/// Returned by [`Schedule::validate`](crate::Schedule::validate).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScheduleError {
    /// `EveryNth(0)`: there is no 0th event.
    #[error("the period of an every-nth schedule must be at least `1`, got `0`")]
    EveryNthZero,
    /// `Probability(p)` with `p` outside `0..=1` (or NaN).
    #[error("a probability must be between `0` and `1`, got `{0}`")]
    ProbabilityOutOfRange(f64),
    /// A window whose end is not after its start: no event can fall inside it.
    #[error(
        "a window from `{}` until `{}` is empty (hint: `until` must be later than `after`)",
        humantime::format_duration(*after),
        humantime::format_duration(*until)
    )]
    EmptyWindow {
        /// The window's start.
        after: std::time::Duration,
        /// The window's end.
        until: std::time::Duration,
    },
}

/// A [`FaultRule`](crate::FaultRule) that cannot be armed.
///
/// Returned by [`FaultRule::validate`](crate::FaultRule::validate).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FaultRuleError {
    /// The rule's schedule is invalid.
    #[error("fault rule `{id}` has an invalid schedule")]
    Schedule {
        /// The rule's id, e.g. `chaos[1]`.
        id: String,
        /// What is wrong with the schedule.
        #[source]
        source: ScheduleError,
    },
    /// A status fault whose status is not an HTTP status code.
    #[error(
        "fault rule `{id}` injects status `{status}`, which is not an HTTP status (hint: use 100 to 599)"
    )]
    Status {
        /// The rule's id, e.g. `chaos[1]`.
        id: String,
        /// The offending status.
        status: u16,
    },
    /// A fault whose parameters cannot mean what their author wanted: a uniform delay with
    /// `min > max`, a log-normal `sigma` below 0 or not finite, a truncation fraction
    /// outside `0..1`.
    #[error("fault rule `{id}` (`{fault}`): {problem}")]
    Parameter {
        /// The rule's id, e.g. `chaos[1]`.
        id: String,
        /// The fault, as journals show it.
        fault: String,
        /// What is wrong, with the offending value.
        problem: String,
    },
}

/// A fault proxy's config (or a new list of toxics) that cannot be applied.
///
/// Returned by [`ProxyConfig::validate`](crate::proxy::ProxyConfig::validate),
/// [`Toxic::validate`](crate::proxy::Toxic::validate) and
/// [`FaultProxy::set_toxics`](crate::proxy::FaultProxy::set_toxics).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ProxyConfigError {
    /// A toxicity outside `0..=1` (or NaN).
    #[error(
        "toxic `{toxic}` has toxicity `{value}`, which is not a probability (hint: use 0 to 1; 1 applies it to every connection)"
    )]
    Toxicity {
        /// The toxic's label.
        toxic: String,
        /// The offending toxicity.
        value: f64,
    },
    /// A bandwidth toxic with a rate of zero.
    #[error(
        "toxic `{toxic}` limits bandwidth to `0` bytes per second (hint: to stop all data, use a timeout toxic)"
    )]
    ZeroRate {
        /// The toxic's label.
        toxic: String,
    },
    /// A slicer with an average size of zero.
    #[error(
        "toxic `{toxic}` slices data into pieces of average size `0` (hint: use at least 1 byte)"
    )]
    ZeroSliceSize {
        /// The toxic's label.
        toxic: String,
    },
    /// A slicer whose size variation is not below its average size.
    #[error(
        "toxic `{toxic}` varies piece sizes by `{variation}`, which is not less than the average size `{average}`"
    )]
    SliceVariation {
        /// The toxic's label.
        toxic: String,
        /// `average_size`.
        average: usize,
        /// `size_variation`.
        variation: usize,
    },
    /// Two toxics of one proxy with the same label.
    #[error("two toxics are named `{name}` (hint: give each toxic its own `name`)")]
    DuplicateName {
        /// The shared label.
        name: String,
    },
    /// A listen address that is not loopback, without `allow_non_loopback`.
    #[error(
        "the proxy would listen on `{addr}`, which is not a loopback address (hint: listen on 127.0.0.1, or set `allow_non_loopback = true`)"
    )]
    NonLoopbackListen {
        /// The listen address.
        addr: SocketAddr,
    },
    /// An upstream that is (or resolves to) an address that is not loopback, without
    /// `allow_non_loopback`.
    #[error(
        "upstream `{upstream}` resolves to `{addr}`, which is not a loopback address (hint: set `allow_non_loopback = true` to forward beyond this machine)"
    )]
    NonLoopbackUpstream {
        /// The upstream as configured.
        upstream: String,
        /// The address that is not loopback.
        addr: SocketAddr,
    },
}

/// A fault proxy that could not start.
///
/// Returned by [`FaultProxy::start`](crate::proxy::FaultProxy::start).
#[derive(Debug, Error)]
pub enum ProxyError {
    /// The config is invalid.
    #[error("invalid config for fault proxy `{name}`")]
    Config {
        /// The proxy's name (may be empty).
        name: String,
        /// What is wrong.
        #[source]
        source: ProxyConfigError,
    },
    /// The upstream host name could not be resolved.
    #[error("cannot resolve upstream `{upstream}` of fault proxy `{name}`")]
    Resolve {
        /// The proxy's name (may be empty).
        name: String,
        /// The upstream as configured.
        upstream: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The upstream host name resolved to no address.
    #[error("upstream `{upstream}` of fault proxy `{name}` resolves to no address")]
    NoAddress {
        /// The proxy's name (may be empty).
        name: String,
        /// The upstream as configured.
        upstream: String,
    },
    /// The listen address could not be bound.
    #[error("fault proxy `{name}` cannot listen on `{addr}`")]
    Bind {
        /// The proxy's name (may be empty).
        name: String,
        /// The listen address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A process fault that could not be injected.
///
/// Returned by the functions of [`chaos::process`](crate::process).
#[derive(Debug, Error)]
pub enum ProcessFaultError {
    /// A pid that must never be signalled: 0 and 1 (the caller's group, init), above
    /// `i32::MAX` (would be read as a negative pid: "every process"), or the harness's own
    /// process or process group.
    #[error("refusing to signal {target}: {why} (hint: spawn the target in its own process group)")]
    Forbidden {
        /// The target, e.g. `process group 1234`.
        target: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// `kill`/`killpg` failed, e.g. `ESRCH` when the target is gone.
    #[error("cannot send `{signal}` to {target}")]
    Signal {
        /// The target, e.g. `process group 1234`.
        target: String,
        /// The signal, e.g. `SIGSTOP`.
        signal: &'static str,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// A CPU hog with no threads.
    #[error("a CPU hog needs at least `1` thread, got `0`")]
    NoThreads,
    /// A CPU hog with more threads than it may spin.
    #[error(
        "a CPU hog spins at most `{max}` threads, got `{threads}` (hint: a few more threads than the machine has cores saturate it)"
    )]
    TooManyThreads {
        /// The threads asked for.
        threads: usize,
        /// [`crate::process::CpuHog::MAX_THREADS`].
        max: usize,
    },
    /// A hog thread could not be spawned.
    #[error("cannot spawn a CPU hog thread")]
    Thread(#[source] io::Error),
    /// A full-disk file could not be created.
    #[error("cannot make `{path}` a link to `/dev/full`")]
    FullFile {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}
