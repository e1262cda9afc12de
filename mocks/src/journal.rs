//! The request journal: one [`Exchange`] per request a stub received, in arrival order, in
//! a bounded ring; and [`Counters`] that count every request and never drop one.
//!
//! The journal is the source of truth for what a stub saw and answered. Each entry is
//! written when the request is handled, before any delay, so an entry exists by the time
//! its response reaches the client. A hung request's entry is completed later, when its
//! client gives up ([`Exchange::gave_up_after`]).
//!
//! Memory is flat however long a stub runs: the ring keeps the last
//! [`StubOptions::journal_limit`] exchanges, and the counters and latency histograms are
//! fixed-size (per rule, per fault rule) or capped (per agent, [`MAX_COUNTED_AGENTS`]
//! names).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::latency::{Latencies, OTHER_AGENTS, StubLatencies, UNRECOGNISED_AGENT};

/// The journal keeps this many exchanges by default; older ones are dropped (and counted in
/// [`Counters::journal_dropped`]).
pub const DEFAULT_JOURNAL_LIMIT: usize = 10_000;

/// Distinct agent names [`Counters::by_agent`] keeps; requests from further names are
/// counted in [`Counters::other_agents`], so a client sending a new name with every request
/// cannot grow the stub's memory.
pub const MAX_COUNTED_AGENTS: usize = 256;

/// The LLM stub serves on at most this many threads by default (one per core up to this):
/// a scenario's own stub rarely sees more than a few connections at once, and a runner
/// starts one per scenario.
pub const DEFAULT_MAX_THREADS: usize = 4;

/// How a stub runs, beyond what it answers. By default, the journal keeps the last
/// [`DEFAULT_JOURNAL_LIMIT`] exchanges and the LLM stub serves on one thread per core, up
/// to [`DEFAULT_MAX_THREADS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubOptions {
    /// How many exchanges the journal keeps: the most recent ones. 0 keeps none (the
    /// counters still count every request), which suits long load runs.
    pub journal_limit: usize,
    /// Threads the LLM stub serves on, each with an accept loop of its own on the one
    /// listening socket (a connection stays on the thread that accepted it); 0 is taken as
    /// 1. Executor stubs (wiremock) ignore it.
    pub threads: usize,
}

impl StubOptions {
    /// One thread per core the process may use, up to [`DEFAULT_MAX_THREADS`].
    pub fn default_threads() -> usize {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(DEFAULT_MAX_THREADS)
    }
}

impl Default for StubOptions {
    fn default() -> Self {
        Self {
            journal_limit: DEFAULT_JOURNAL_LIMIT,
            threads: Self::default_threads(),
        }
    }
}

/// One request a stub received and what it answered.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// When the request was received, since the stub started.
    pub at: Duration,
    /// When the request was received, to convert to "since scenario start".
    pub received: Instant,
    /// Which stub: `llm` (the primary provider), `llm.NAME` (another provider), or
    /// `executor.NAME`.
    pub source: String,
    /// The recognised agent, if any (LLM stubs only).
    pub agent: Option<String>,
    /// The provider the request went to (LLM stubs only).
    pub provider: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// One line: `model=… stream=… tools=N last[role]="…"` for chat completions, the path
    /// and a truncated body for executors.
    pub summary: String,
    /// The rule and reply served, e.g. `llm[2] reply 1/3`; `None` when no rule was used.
    pub rule: Option<String>,
    /// The faults injected, e.g. `chaos[1]: 429 retry-after=1s`, `chaos[2]: reset after 120
    /// bytes`, `chaos[3]: delay uniform 10ms..50ms drew 23ms 412us`; `None` when none.
    pub fault: Option<String>,
    /// The response status; 0 when no status line was sent (a hang, a reset before the
    /// response).
    pub status: u16,
    /// What was served: `200 json (412 bytes)`, `200 sse (7 chunks)`, `429 error`,
    /// `404 unmatched`, `200 malformed json (70 bytes)`, `200 empty body`, `hang`,
    /// `reset before response`, …; with how a wire-level fault ended it (`, truncated to
    /// 206 of 412 bytes`, `, reset after 120 bytes`, `, cut after 2 chunks`), with
    /// ` after 1s 500ms` when the response was held back (a reply's delay plus delay
    /// faults), and for a hang, how it ended (`hang: client gave up after 301ms`).
    pub served: String,
    /// Set when no rule matched the request.
    pub unmatched: Option<Unmatched>,
    /// For a hung request ([`chaos::HttpFault::Hang`]) whose client closed the connection:
    /// how long after the request was received. `None` otherwise, and while the client
    /// still waits.
    pub gave_up_after: Option<Duration>,
    /// Measured at the stub: the request fully received → the last byte of the response
    /// handed to the socket, delays and pacing included (see [`StubLatencies`]). `None`
    /// while the response is being sent, and for responses that never sent their last
    /// byte (a hang, a reset before the response, a client that left). On executor stubs:
    /// the request received → the response handed to wiremock, plus its scripted delay
    /// (wiremock's own write is not included).
    pub service: Option<Duration>,
    /// Streamed replies: the request fully received → the first token chunk (content or
    /// tool-call arguments) handed to the socket.
    pub first_token: Option<Duration>,
    /// Streamed replies: the gaps between consecutive token chunks as they were handed to
    /// the socket (chunks that went out together have a gap of 0).
    pub token_gaps: Vec<Duration>,
}

/// Why a request matched no rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// A multi-line description of the request: method, path, agent, model, headers of
    /// interest, messages or body (truncated).
    pub request: String,
    /// The rule that failed the fewest conditions and which conditions failed, e.g.
    /// `llm[2] (when.agent = "critic" but the request's agent is "planner")`; `None` when
    /// there are no rules to compare with.
    pub closest: Option<String>,
}

/// Exact counts of what a stub received, over its whole life: unlike the journal, nothing
/// is ever dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request received, whatever its endpoint and answer.
    pub requests: u64,
    /// Requests answered with a 404 because no rule matched them or they went to no
    /// endpoint of the stub.
    pub unmatched: u64,
    /// Requests by recognised agent (LLM stubs); requests with no recognised agent are not
    /// in here. At most [`MAX_COUNTED_AGENTS`] names.
    pub by_agent: BTreeMap<String, u64>,
    /// Requests from agents beyond the first [`MAX_COUNTED_AGENTS`] names.
    pub other_agents: u64,
    /// Replies served by each rule, by rule id; every rule is listed, unused ones with 0.
    pub by_rule: BTreeMap<String, u64>,
    /// Injections by fault rule id (the faults recorded in [`Exchange::fault`]); every
    /// fault rule is listed, ones that never fired with 0.
    pub by_fault: BTreeMap<String, u64>,
    /// Exchanges dropped from the journal because it held
    /// [`StubOptions::journal_limit`] already.
    pub journal_dropped: u64,
}

/// What an exchange adds to the counters beyond what the [`Exchange`] says: the index of the
/// rule that served it and of the fault rules injected.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally<'a> {
    pub(crate) rule: Option<usize>,
    pub(crate) faults: &'a [usize],
}

/// A stub's journal and counters, shared by its server and its handle.
#[derive(Debug)]
pub(crate) struct Journal {
    started: Instant,
    limit: usize,
    rule_ids: Vec<String>,
    fault_ids: Vec<String>,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// (sequence number, exchange), in the order the requests were received: a stub serves
    /// on several threads, and a request read first may reach the journal a moment after
    /// one read later on another thread, so each is placed by its `received` time.
    entries: VecDeque<(u64, Exchange)>,
    /// The sequence number the next exchange gets.
    next_seq: u64,
    requests: u64,
    unmatched: u64,
    by_agent: HashMap<String, u64>,
    other_agents: u64,
    by_rule: Vec<u64>,
    by_fault: Vec<u64>,
    dropped: u64,
    latencies: Latencies,
}

impl Journal {
    /// A journal keeping the last `limit` exchanges, counting per rule of `rule_ids` and per
    /// fault rule of `fault_ids` (by index).
    /// A shared journal for a stub with these rules and fault rules (their ids are counted).
    pub(crate) fn for_stub<'a>(
        limit: usize,
        rule_ids: impl Iterator<Item = &'a String>,
        fault_ids: impl Iterator<Item = &'a String>,
    ) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Journal::new(
            limit,
            rule_ids.cloned().collect(),
            fault_ids.cloned().collect(),
        ))
    }

    pub(crate) fn new(limit: usize, rule_ids: Vec<String>, fault_ids: Vec<String>) -> Self {
        let state = State {
            by_rule: vec![0; rule_ids.len()],
            by_fault: vec![0; fault_ids.len()],
            // the ring grows to its limit as needed, not up front: most stubs see few requests
            entries: VecDeque::with_capacity(limit.min(64)),
            ..State::default()
        };
        Self {
            started: Instant::now(),
            limit,
            rule_ids,
            fault_ids,
            state: Mutex::new(state),
            changed: Notify::new(),
        }
    }

    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Journals and counts an exchange; returns its sequence number (for [`Journal::update`]).
    pub(crate) fn push(&self, exchange: Exchange, tally: Tally<'_>) -> u64 {
        let seq = {
            let mut state = self.lock();
            state.requests += 1;
            if exchange.unmatched.is_some() {
                state.unmatched += 1;
            }
            if let Some(agent) = &exchange.agent {
                if let Some(count) = state.by_agent.get_mut(agent) {
                    *count += 1;
                } else if state.by_agent.len() < MAX_COUNTED_AGENTS {
                    state.by_agent.insert(agent.clone(), 1);
                } else {
                    state.other_agents += 1;
                }
            }
            if let Some(count) = tally.rule.and_then(|rule| state.by_rule.get_mut(rule)) {
                *count += 1;
            }
            for &fault in tally.faults {
                if let Some(count) = state.by_fault.get_mut(fault) {
                    *count += 1;
                }
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            if self.limit == 0 {
                state.dropped += 1;
            } else {
                if state.entries.len() == self.limit {
                    state.entries.pop_front();
                    state.dropped += 1;
                }
                // almost always the last place; a few places back at most
                let at = state
                    .entries
                    .iter()
                    .rposition(|(_, e)| e.received <= exchange.received)
                    .map_or(0, |i| i + 1);
                state.entries.insert(at, (seq, exchange));
            }
            seq
        };
        self.changed.notify_waiters();
        seq
    }

    /// Changes the exchange `seq`, if the journal still holds it.
    pub(crate) fn update(&self, seq: u64, change: impl FnOnce(&mut Exchange)) {
        {
            let mut state = self.lock();
            match state.entry_mut(seq) {
                Some(exchange) => change(exchange),
                None => return,
            }
        }
        self.changed.notify_waiters();
    }

    /// Records the timings of the response to exchange `seq` from `agent`: in the latency
    /// histograms (always, under the agent's key as the counters count it), and in the
    /// exchange if the journal still holds it.
    pub(crate) fn complete(
        &self,
        seq: u64,
        agent: Option<&str>,
        service: Option<Duration>,
        first_token: Option<Duration>,
        gaps: Vec<Duration>,
    ) {
        {
            let mut state = self.lock();
            // the counters saw this agent at push: a name they keep is kept here; a name
            // beyond their cap was beyond it then and still is (names are never removed)
            let key = match agent {
                None => UNRECOGNISED_AGENT,
                Some(agent) if state.by_agent.contains_key(agent) => agent,
                Some(_) => OTHER_AGENTS,
            };
            state.latencies.record(key, service, first_token, &gaps);
            let Some(exchange) = state.entry_mut(seq) else {
                return;
            };
            exchange.service = service;
            exchange.first_token = first_token;
            exchange.token_gaps = gaps;
        }
        self.changed.notify_waiters();
    }

    pub(crate) fn latencies(&self) -> StubLatencies {
        self.lock().latencies.snapshot()
    }

    pub(crate) fn snapshot(&self) -> Vec<Exchange> {
        self.lock().entries.iter().map(|(_, e)| e.clone()).collect()
    }

    pub(crate) fn counters(&self) -> Counters {
        let state = self.lock();
        let named = |ids: &[String], counts: &[u64]| {
            ids.iter()
                .cloned()
                .zip(counts.iter().copied())
                .collect::<BTreeMap<_, _>>()
        };
        Counters {
            requests: state.requests,
            unmatched: state.unmatched,
            by_agent: state
                .by_agent
                .iter()
                .map(|(agent, count)| (agent.clone(), *count))
                .collect(),
            other_agents: state.other_agents,
            by_rule: named(&self.rule_ids, &state.by_rule),
            by_fault: named(&self.fault_ids, &state.by_fault),
            journal_dropped: state.dropped,
        }
    }

    /// Waits until `done` holds for the journal, checking now and after every change.
    pub(crate) async fn wait_for(
        &self,
        mut done: impl FnMut(&[Exchange]) -> bool,
    ) -> Vec<Exchange> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // registered before the check, so a change between the check and the wait wakes it
            changed.as_mut().enable();
            let journal = self.snapshot();
            if done(&journal) {
                return journal;
            }
            changed.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic while holding the lock cannot leave the ring half-pushed: keep going
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// The exchange `seq`, if the ring still holds it.
    fn entry_mut(&mut self, seq: u64) -> Option<&mut Exchange> {
        // updates come soon after their push: search from the newest
        self.entries
            .iter_mut()
            .rev()
            .find(|(s, _)| *s == seq)
            .map(|(_, e)| e)
    }
}

/// `text` on one line (newlines and tabs escaped), cut to `max` characters with `…`.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_control()) {
        // nothing to escape, one byte per character
        return match text.get(..max) {
            Some(kept) if kept.len() < text.len() => format!("{kept}…"),
            _ => text.to_string(),
        };
    }
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `served` of a response held back: `200 json (412 bytes) after 1s 500ms`.
pub(crate) fn delayed(served: &str, delay: Duration) -> String {
    format!("{served} after {}", humantime::format_duration(delay))
}

/// The candidate that failed the fewest conditions (the first of equals), as
/// `id (failure; failure)`.
pub(crate) fn closest<'a>(
    candidates: impl IntoIterator<Item = (&'a str, Vec<String>)>,
) -> Option<String> {
    let mut best: Option<(&str, Vec<String>)> = None;
    for (id, failures) in candidates {
        if best
            .as_ref()
            .is_none_or(|(_, fewest)| failures.len() < fewest.len())
        {
            best = Some((id, failures));
        }
    }
    best.map(|(id, failures)| format!("{id} ({})", failures.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_and_truncates() {
        assert_eq!(one_line("a\nb\tc", 80), "a\\nb\\tc");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(one_line("héllo wörld", 4), "héll…");
        assert_eq!(one_line("\u{7}", 4), "\\u{7}");
    }

    fn exchange(agent: Option<&str>, unmatched: bool) -> Exchange {
        Exchange {
            at: Duration::ZERO,
            received: Instant::now(),
            source: "llm".into(),
            agent: agent.map(str::to_string),
            provider: None,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            summary: String::new(),
            rule: None,
            fault: None,
            status: 200,
            served: String::new(),
            unmatched: unmatched.then(|| Unmatched {
                request: String::new(),
                closest: None,
            }),
            gave_up_after: None,
            service: None,
            first_token: None,
            token_gaps: Vec::new(),
        }
    }

    #[test]
    fn the_ring_keeps_the_last_entries_and_the_counters_every_request() {
        let journal = Journal::new(3, vec!["llm[1]".into()], vec!["chaos[1]".into()]);
        let mut seqs = Vec::new();
        for n in 0..5 {
            let tally = Tally {
                rule: (n % 2 == 0).then_some(0),
                faults: if n == 4 { &[0] } else { &[] },
            };
            seqs.push(journal.push(exchange(Some("critic"), n == 1), tally));
        }
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        assert_eq!(journal.snapshot().len(), 3);
        journal.update(4, |e| e.served = "last".into());
        journal.update(0, |e| e.served = "dropped long ago".into());
        assert_eq!(journal.snapshot()[2].served, "last");
        let counters = journal.counters();
        assert_eq!(counters.requests, 5);
        assert_eq!(counters.unmatched, 1);
        assert_eq!(counters.by_agent["critic"], 5);
        assert_eq!(counters.by_rule["llm[1]"], 3);
        assert_eq!(counters.by_fault["chaos[1]"], 1);
        assert_eq!(counters.journal_dropped, 2);

        let nothing = Journal::new(0, Vec::new(), Vec::new());
        nothing.push(exchange(None, false), Tally::default());
        assert!(nothing.snapshot().is_empty());
        assert_eq!(nothing.counters().requests, 1);
        assert_eq!(nothing.counters().journal_dropped, 1);
    }

    #[test]
    fn exchanges_are_kept_in_the_order_received_whatever_order_they_are_pushed_in() {
        // two serving threads: the request read second reached the journal first
        let journal = Journal::new(10, Vec::new(), Vec::new());
        let now = Instant::now();
        let at = |us: u64| {
            let mut e = exchange(None, false);
            e.received = now + Duration::from_micros(us);
            e
        };
        let late = journal.push(at(20), Tally::default());
        let early = journal.push(at(10), Tally::default());
        let last = journal.push(at(30), Tally::default());
        journal.update(early, |e| e.served = "early".into());
        journal.update(late, |e| e.served = "late".into());
        journal.update(last, |e| e.served = "last".into());
        let served: Vec<String> = journal.snapshot().into_iter().map(|e| e.served).collect();
        assert_eq!(served, ["early", "late", "last"]);
    }

    #[test]
    fn timings_reach_the_histograms_even_when_the_ring_dropped_the_exchange() {
        let journal = Journal::new(1, Vec::new(), Vec::new());
        let first = journal.push(exchange(Some("critic"), false), Tally::default());
        let second = journal.push(exchange(None, false), Tally::default());
        let ms = Duration::from_millis;
        journal.complete(first, Some("critic"), Some(ms(3)), None, Vec::new());
        journal.complete(second, None, Some(ms(4)), Some(ms(2)), vec![ms(1)]);
        let latencies = journal.latencies();
        assert_eq!(latencies.per_agent["critic"].len(), 1);
        assert_eq!(latencies.per_agent[UNRECOGNISED_AGENT].len(), 1);
        assert_eq!(latencies.time_to_first_token.len(), 1);
        assert_eq!(latencies.inter_token.len(), 1);
        let kept = &journal.snapshot()[0];
        assert_eq!(
            (kept.service, kept.first_token, kept.token_gaps.clone()),
            (Some(ms(4)), Some(ms(2)), vec![ms(1)])
        );
    }

    #[test]
    fn agent_names_are_capped() {
        let journal = Journal::new(1, Vec::new(), Vec::new());
        for n in 0..MAX_COUNTED_AGENTS + 10 {
            journal.push(
                exchange(Some(&format!("agent{n}")), false),
                Tally::default(),
            );
        }
        journal.push(exchange(Some("agent0"), false), Tally::default());
        let counters = journal.counters();
        assert_eq!(counters.by_agent.len(), MAX_COUNTED_AGENTS);
        assert_eq!(counters.by_agent["agent0"], 2);
        assert_eq!(counters.other_agents, 10);
        // the histograms keep the same names, and the rest together
        let service = Some(Duration::from_millis(1));
        journal.complete(0, Some("agent0"), service, None, Vec::new());
        journal.complete(0, Some("agent260"), service, None, Vec::new());
        let latencies = journal.latencies();
        assert_eq!(
            latencies.per_agent.keys().collect::<Vec<_>>(),
            [OTHER_AGENTS, "agent0"]
        );
    }

    #[test]
    fn closest_prefers_fewest_failures_then_first() {
        let candidates = vec![
            ("r[1]", vec!["a".to_string(), "b".to_string()]),
            ("r[2]", vec!["c".to_string()]),
            ("r[3]", vec!["d".to_string()]),
        ];
        assert_eq!(closest(candidates).as_deref(), Some("r[2] (c)"));
        assert_eq!(closest(Vec::new()), None);
    }
}
