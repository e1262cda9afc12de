//! One proxied connection: two directions, each a reader and a writer that applies the
//! direction's toxics, and the close that follows.
//!
//! ```text
//! client ──read──▶ [chunks, stamped on arrival] ──▶ writer: toxics ──write──▶ server   (upstream)
//! client ◀──write── writer: toxics ◀── [chunks] ◀──read── server                        (downstream)
//! ```
//!
//! The reader of a direction only reads and stamps; the writer holds one chunk at a time,
//! turned into timed pieces by the toxics (its "plan"), and writes each piece when it is
//! due. The writer also wakes for the toxics' own timers (timeout, reset) and for toxic
//! changes, which re-plan the unwritten rest of the chunk. The bounded queue between the
//! two keeps TCP backpressure: a slow writer stops the reader, which stops the sender.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::config::{Direction, Toxic, ToxicKind};
use super::journal::{ByteCounts, CloseReason, Side, ToxicEffect};
use super::{ActiveToxics, Registration, Shared};

/// The largest chunk one read takes from a socket.
const CHUNK_SIZE: usize = 16 * 1024;
/// Chunks read but not yet written, per direction, before the reader waits.
const QUEUE: usize = 8;

/// Forwards one accepted connection until it ends, then records how it ended.
pub(super) async fn run(
    shared: Arc<Shared>,
    registration: Registration,
    client: TcpStream,
    upstream: Arc<[SocketAddr]>,
) {
    let counters = Arc::new(Counters::default());
    let mut guard = ConnGuard {
        shared,
        conn: registration.conn,
        counters: counters.clone(),
        reason: CloseReason::Shutdown,
    };
    let server = match TcpStream::connect(&upstream[..]).await {
        Ok(server) => server,
        Err(error) => {
            guard.reason = CloseReason::UpstreamUnreachable {
                message: error.to_string(),
            };
            return;
        }
    };
    // Go, and so Toxiproxy, disables Nagle by default; small pieces go out as written.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let mut rng = StdRng::seed_from_u64(registration.seed);
    let (up_rng, down_rng) = (
        StdRng::seed_from_u64(rng.random()),
        StdRng::seed_from_u64(rng.random()),
    );
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let end = {
        let up = pipe(
            Direction::Upstream,
            &mut client_read,
            &mut server_write,
            registration.toxics.clone(),
            up_rng,
            &counters.up,
        );
        let down = pipe(
            Direction::Downstream,
            &mut server_read,
            &mut client_write,
            registration.toxics,
            down_rng,
            &counters.down,
        );
        both(up, down).await
    };
    guard.reason = close(
        end,
        (client_read, client_write),
        (server_read, server_write),
    )
    .await;
}

/// How one direction (or, from [`both`], the connection) ended.
#[derive(Debug)]
enum End {
    /// The source closed and the close was passed on: this direction is done.
    Eof,
    /// A toxic ended the connection.
    Toxic {
        toxic: String,
        stream: Direction,
        effect: ToxicEffect,
    },
    /// A side reset the connection.
    PeerReset(Side),
    /// Another I/O error.
    Error(String),
    /// The proxy is gone.
    Gone,
}

/// Runs both directions until both reach EOF or one ends the connection.
async fn both(up: impl Future<Output = End>, down: impl Future<Output = End>) -> End {
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    loop {
        let end = tokio::select! {
            end = &mut up, if !up_done => { up_done = true; end }
            end = &mut down, if !down_done => { down_done = true; end }
        };
        match end {
            End::Eof if up_done && down_done => return End::Eof,
            End::Eof => {}
            other => return other,
        }
    }
}

type Halves = (OwnedReadHalf, OwnedWriteHalf);

/// Closes both sockets as `end` requires and says why the connection ended.
async fn close(end: End, client: Halves, server: Halves) -> CloseReason {
    match end {
        End::Eof => CloseReason::Peers,
        End::Toxic {
            toxic,
            stream,
            effect,
        } => {
            if effect == ToxicEffect::Reset {
                let (reset_side, other) = match stream {
                    Direction::Downstream => (client, server),
                    Direction::Upstream => (server, client),
                };
                reset(reset_side);
                graceful(other).await;
            } else {
                graceful(client).await;
                graceful(server).await;
            }
            CloseReason::Toxic {
                toxic,
                stream,
                effect,
            }
        }
        End::PeerReset(side) => {
            // Pass the reset on, as a direct connection would have carried it.
            let (gone, other) = match side {
                Side::Client => (client, server),
                Side::Server => (server, client),
            };
            reset(other);
            drop(gone);
            CloseReason::PeerReset { side }
        }
        End::Error(message) => {
            graceful(client).await;
            graceful(server).await;
            CloseReason::Error { message }
        }
        End::Gone => {
            graceful(client).await;
            graceful(server).await;
            CloseReason::Shutdown
        }
    }
}

/// Closes with a TCP RST: `SO_LINGER` 0, then close (and no FIN before it, so the write
/// half must not shut down on its own).
fn reset((read, write): Halves) {
    if let Ok(stream) = read.reunite(write) {
        let _ = stream.set_zero_linger();
        drop(stream);
    }
}

/// Closes normally: FIN after whatever was written, then close.
async fn graceful((read, mut write): Halves) {
    let _ = write.shutdown().await;
    drop(write);
    drop(read);
}

/// Bytes per direction, readable when the connection's task is dropped.
#[derive(Debug, Default)]
struct Counters {
    up: DirCounters,
    down: DirCounters,
}

#[derive(Debug, Default)]
struct DirCounters {
    received: AtomicU64,
    delivered: AtomicU64,
}

impl DirCounters {
    fn snapshot(&self) -> ByteCounts {
        ByteCounts {
            received: self.received.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
        }
    }
}

/// Records the close when the connection's task ends, also when it is aborted (shutdown).
struct ConnGuard {
    shared: Arc<Shared>,
    conn: u64,
    counters: Arc<Counters>,
    reason: CloseReason,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let reason = std::mem::replace(&mut self.reason, CloseReason::Shutdown);
        self.shared.closed(
            self.conn,
            self.counters.up.snapshot(),
            self.counters.down.snapshot(),
            reason,
        );
    }
}

/// One direction: reads from `src`, applies the toxics, writes to `dst`.
async fn pipe(
    stream: Direction,
    src: &mut OwnedReadHalf,
    dst: &mut OwnedWriteHalf,
    toxics: watch::Receiver<ActiveToxics>,
    rng: StdRng,
    counters: &DirCounters,
) -> End {
    let (tx, rx) = mpsc::channel(QUEUE);
    let reader = read_chunks(src, tx, &counters.received);
    let writer = Writer::new(stream, toxics, rng, &counters.delivered).run(rx, dst);
    tokio::pin!(reader, writer);
    let mut reading = true;
    loop {
        tokio::select! {
            result = &mut reader, if reading => {
                reading = false;
                if let Err(error) = result {
                    return io_end(error, source_side(stream));
                }
            }
            end = &mut writer => return end,
        }
    }
}

fn source_side(stream: Direction) -> Side {
    match stream {
        Direction::Upstream => Side::Client,
        Direction::Downstream => Side::Server,
    }
}

fn destination_side(stream: Direction) -> Side {
    match stream {
        Direction::Upstream => Side::Server,
        Direction::Downstream => Side::Client,
    }
}

fn io_end(error: io::Error, side: Side) -> End {
    match error.kind() {
        io::ErrorKind::ConnectionReset => End::PeerReset(side),
        _ => End::Error(format!("{side}: {error}")),
    }
}

/// What a reader hands its writer: the bytes of one read and when they arrived.
struct Chunk {
    data: Vec<u8>,
    arrived: Instant,
}

async fn read_chunks(
    src: &mut OwnedReadHalf,
    tx: mpsc::Sender<Chunk>,
    received: &AtomicU64,
) -> io::Result<()> {
    let mut buf = vec![0; CHUNK_SIZE];
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        received.fetch_add(n as u64, Ordering::Relaxed);
        let chunk = Chunk {
            data: buf[..n].to_vec(),
            arrived: Instant::now(),
        };
        if tx.send(chunk).await.is_err() {
            return Ok(());
        }
    }
}

/// A piece of a chunk, written when due.
struct Piece {
    data: Vec<u8>,
    written: usize,
    due: Instant,
    arrived: Instant,
}

/// Per toxic activation (label and the instant it became active on this connection).
struct ToxicState {
    since: Instant,
    /// `delivered` when the toxic became active (limit_data counts from there).
    delivered_before: u64,
    /// When a triggered reset_peer resets.
    reset_at: Option<Instant>,
}

struct Writer<'a> {
    stream: Direction,
    toxics_rx: watch::Receiver<ActiveToxics>,
    /// The active toxics of this direction, in order.
    active: Vec<(String, Toxic, Instant)>,
    states: HashMap<String, ToxicState>,
    rng: StdRng,
    pending: VecDeque<Piece>,
    /// When the bandwidth toxic's "link" is next free.
    bandwidth_free: Instant,
    delivered: u64,
    delivered_counter: &'a AtomicU64,
}

impl<'a> Writer<'a> {
    fn new(
        stream: Direction,
        toxics_rx: watch::Receiver<ActiveToxics>,
        rng: StdRng,
        delivered_counter: &'a AtomicU64,
    ) -> Self {
        Self {
            stream,
            toxics_rx,
            active: Vec::new(),
            states: HashMap::new(),
            rng,
            pending: VecDeque::new(),
            bandwidth_free: Instant::now(),
            delivered: 0,
            delivered_counter,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Chunk>, dst: &mut OwnedWriteHalf) -> End {
        self.refresh();
        let mut eof = false;
        let mut close_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if let Some(end) = self.toxic_end(now) {
                return end;
            }
            if eof && self.pending.is_empty() {
                if let Some(toxic) = self.blackhole() {
                    // As Toxiproxy does: a source that closes under a timeout toxic closes
                    // the whole connection.
                    return self.toxic(toxic, ToxicEffect::TimedOut);
                }
                if !self.resetting() {
                    let at = *close_at.get_or_insert_with(|| later(now, self.slow_close()));
                    if at <= now {
                        let _ = dst.shutdown().await;
                        return End::Eof;
                    }
                }
            }
            let closing = eof && self.pending.is_empty();
            let wake = self.next_wake(now, if closing { close_at } else { None });
            let can_write = self.pending.front().is_some_and(|piece| piece.due <= now);
            let can_read = !eof && self.pending.is_empty();
            let unwritten = match self.pending.front() {
                Some(piece) if can_write => &piece.data[piece.written..],
                _ => &[][..],
            };
            tokio::select! {
                // A toxic change that is already made applies to whatever comes next.
                biased;
                changed = self.toxics_rx.changed() => {
                    if changed.is_err() {
                        return End::Gone;
                    }
                    if self.refresh() {
                        self.replan(Instant::now());
                        close_at = None;
                    }
                }
                _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
                written = dst.write(unwritten), if can_write => match written {
                    Ok(0) => return End::Error(format!("{}: wrote 0 bytes", destination_side(self.stream))),
                    Ok(n) => self.wrote(n),
                    Err(error) => return io_end(error, destination_side(self.stream)),
                },
                chunk = rx.recv(), if can_read => match chunk {
                    None => eof = true,
                    Some(chunk) => self.plan(chunk.data, chunk.arrived, Instant::now()),
                },
            }
        }
    }

    /// Takes the current toxics of this direction; says whether they changed.
    fn refresh(&mut self) -> bool {
        let all = self.toxics_rx.borrow_and_update().clone();
        let active: Vec<(String, Toxic, Instant)> = all
            .iter()
            .filter(|toxic| toxic.toxic.stream == self.stream)
            .map(|toxic| (toxic.label.clone(), toxic.toxic.clone(), toxic.since.into()))
            .collect();
        let changed = active.len() != self.active.len()
            || active
                .iter()
                .zip(&self.active)
                .any(|(new, old)| new.0 != old.0 || new.2 != old.2);
        self.states.retain(|label, state| {
            active
                .iter()
                .any(|(l, _, since)| l == label && *since == state.since)
        });
        for (label, _, since) in &active {
            self.states.entry(label.clone()).or_insert(ToxicState {
                since: *since,
                delivered_before: self.delivered,
                reset_at: None,
            });
        }
        self.active = active;
        changed
    }

    fn toxic(&self, label: &str, effect: ToxicEffect) -> End {
        End::Toxic {
            toxic: label.to_string(),
            stream: self.stream,
            effect,
        }
    }

    /// A toxic that ends the connection now: an elapsed timeout, a due reset, a reached
    /// limit (once nothing of the cut chunk is left to write).
    fn toxic_end(&self, now: Instant) -> Option<End> {
        for (label, toxic, since) in &self.active {
            let state = &self.states[label];
            match toxic.kind {
                ToxicKind::Timeout { timeout }
                    if !timeout.is_zero() && later(*since, timeout) <= now =>
                {
                    return Some(self.toxic(label, ToxicEffect::TimedOut));
                }
                ToxicKind::ResetPeer { .. } if state.reset_at.is_some_and(|at| at <= now) => {
                    return Some(self.toxic(label, ToxicEffect::Reset));
                }
                ToxicKind::LimitData { bytes }
                    if self.pending.is_empty()
                        && self.delivered - state.delivered_before >= bytes =>
                {
                    return Some(self.toxic(label, ToxicEffect::LimitReached));
                }
                _ => {}
            }
        }
        None
    }

    /// The earliest instant something is due: a timeout, a reset, the next piece, the close.
    fn next_wake(&self, now: Instant, close_at: Option<Instant>) -> Option<Instant> {
        let timers = self
            .active
            .iter()
            .filter_map(|(label, toxic, since)| match toxic.kind {
                ToxicKind::Timeout { timeout } if !timeout.is_zero() => {
                    Some(later(*since, timeout))
                }
                ToxicKind::ResetPeer { .. } => self.states[label].reset_at,
                _ => None,
            });
        let piece = self
            .pending
            .front()
            .map(|piece| piece.due)
            .filter(|due| *due > now);
        timers.chain(piece).chain(close_at).min()
    }

    /// The label of an active timeout toxic: data is dropped.
    fn blackhole(&self) -> Option<&str> {
        self.active.iter().find_map(|(label, toxic, _)| {
            matches!(toxic.kind, ToxicKind::Timeout { .. }).then_some(label.as_str())
        })
    }

    /// Whether a reset_peer toxic has been triggered (the reset is coming).
    fn resetting(&self) -> bool {
        self.states.values().any(|state| state.reset_at.is_some())
    }

    fn slow_close(&self) -> Duration {
        self.active
            .iter()
            .filter_map(|(_, toxic, _)| match toxic.kind {
                ToxicKind::SlowClose { delay } => Some(delay),
                _ => None,
            })
            .max()
            .unwrap_or_default()
    }

    fn wrote(&mut self, n: usize) {
        self.delivered += n as u64;
        self.delivered_counter
            .fetch_add(n as u64, Ordering::Relaxed);
        if let Some(piece) = self.pending.front_mut() {
            piece.written += n;
            if piece.written == piece.data.len() {
                self.pending.pop_front();
            }
        }
    }

    /// Turns a chunk into timed pieces: dropped (timeout, reset_peer), cut (limit_data),
    /// delayed (latency), sliced (slicer), paced (bandwidth). Toxics compose in this fixed
    /// order, whatever their order in the list.
    fn plan(&mut self, mut data: Vec<u8>, arrived: Instant, now: Instant) {
        let mut dropped = self.blackhole().is_some();
        for (label, toxic, _) in &self.active {
            if let ToxicKind::ResetPeer { timeout } = toxic.kind {
                let state = self
                    .states
                    .get_mut(label)
                    .expect("a state per active toxic");
                state.reset_at.get_or_insert(later(arrived, timeout));
                dropped = true;
            }
        }
        if dropped {
            return;
        }

        let room = self
            .active
            .iter()
            .filter_map(|(label, toxic, _)| match toxic.kind {
                ToxicKind::LimitData { bytes } => {
                    let used = self.delivered - self.states[label].delivered_before;
                    Some(bytes.saturating_sub(used))
                }
                _ => None,
            })
            .min();
        if let Some(room) = room {
            data.truncate(usize::try_from(room).unwrap_or(usize::MAX));
        }
        if data.is_empty() {
            return;
        }

        let mut latency = Duration::ZERO;
        let mut slicer = None;
        let mut rate: Option<u64> = None;
        for (_, toxic, _) in &self.active {
            match toxic.kind {
                ToxicKind::Latency {
                    latency: mean,
                    jitter,
                } => latency += jittered(&mut self.rng, mean, jitter),
                ToxicKind::Slicer {
                    average_size,
                    size_variation,
                    delay,
                } => {
                    slicer.get_or_insert((average_size, size_variation, delay));
                }
                ToxicKind::Bandwidth { rate_bytes_per_sec } => {
                    rate = Some(rate.map_or(rate_bytes_per_sec, |r| r.min(rate_bytes_per_sec)));
                }
                _ => {}
            }
        }

        let mut slices = Vec::new();
        match slicer {
            Some((average, variation, delay)) => {
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let spread = variation as i64;
                    let size = average as i64 + self.rng.random_range(-spread..=spread);
                    let size = (size.max(1) as usize).min(rest.len());
                    slices.push((&rest[..size], delay));
                    rest = &rest[size..];
                }
            }
            None => slices.push((&data[..], Duration::ZERO)),
        }

        let mut at = now.max(later(arrived, latency));
        for (i, (slice, delay)) in slices.into_iter().enumerate() {
            if i > 0 {
                at = later(at, delay);
            }
            match rate {
                Some(rate) => {
                    let step = usize::try_from(rate / 10).unwrap_or(usize::MAX).max(1);
                    for piece in slice.chunks(step) {
                        at = later(
                            at.max(self.bandwidth_free),
                            transfer_time(piece.len(), rate),
                        );
                        self.bandwidth_free = at;
                        self.push(piece, at, arrived);
                    }
                }
                None => self.push(slice, at, arrived),
            }
        }
    }

    fn push(&mut self, data: &[u8], due: Instant, arrived: Instant) {
        self.pending.push_back(Piece {
            data: data.to_vec(),
            written: 0,
            due,
            arrived,
        });
    }

    /// Plans the unwritten rest of the current chunk again, under changed toxics.
    fn replan(&mut self, now: Instant) {
        let Some(arrived) = self.pending.front().map(|piece| piece.arrived) else {
            return;
        };
        let rest: Vec<u8> = self
            .pending
            .drain(..)
            .flat_map(|piece| piece.data[piece.written..].to_vec())
            .collect();
        self.bandwidth_free = now;
        self.plan(rest, arrived, now);
    }
}

/// `at + by`, saturating at a far future instead of overflowing: a toxic's duration is
/// the user's number, and a huge one means "never" (it must not panic the link task).
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by).unwrap_or_else(|| at + FAR_FUTURE)
}

/// What "never" is for [`later`]: about 30 years, as tokio's own far future.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `mean` ± a uniform draw within `jitter`, never below zero. Draws only when there is
/// jitter, so adding jitter-free latency does not shift other draws.
fn jittered(rng: &mut StdRng, mean: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return mean;
    }
    let jitter = jitter.as_nanos() as i128;
    let nanos = mean.as_nanos() as i128 + rng.random_range(-jitter..=jitter);
    Duration::from_nanos(nanos.clamp(0, u64::MAX as i128) as u64)
}

/// How long `len` bytes take at `rate` bytes per second, rounded up to the nanosecond.
fn transfer_time(len: usize, rate: u64) -> Duration {
    let nanos = (len as u128 * 1_000_000_000).div_ceil(u128::from(rate));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: a huge toxic duration (latency, timeout, slow_close, slicer delay)
    // overflowed `Instant + Duration` and panicked the link task, 4 times per run.
    #[test]
    fn a_huge_duration_is_a_far_future_not_a_panic() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > later(now, Duration::from_secs(86_400 * 365)));
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn transfer_time_rounds_up() {
        assert_eq!(transfer_time(32 * 1024, 32 * 1024), Duration::from_secs(1));
        assert_eq!(transfer_time(1, 3), Duration::from_nanos(333_333_334));
    }

    #[test]
    fn jitter_stays_within_bounds_and_above_zero() {
        let mut rng = StdRng::seed_from_u64(1);
        let mean = Duration::from_millis(10);
        for _ in 0..1000 {
            let d = jittered(&mut rng, mean, Duration::from_millis(4));
            assert!((Duration::from_millis(6)..=Duration::from_millis(14)).contains(&d));
            assert!(
                jittered(&mut rng, mean, Duration::from_millis(50)) <= Duration::from_millis(60)
            );
        }
        assert_eq!(jittered(&mut rng, mean, Duration::ZERO), mean);
    }
}
