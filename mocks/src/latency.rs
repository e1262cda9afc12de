//! Latency histograms kept by the stubs: exact distributions over a stub's whole life, in
//! fixed memory, however many exchanges the bounded journal has dropped. What is measured
//! is documented on [`StubLatencies`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;

/// The per-agent key of requests with no recognised agent (and of requests that are not
/// completions: the model list, unknown endpoints).
pub const UNRECOGNISED_AGENT: &str = "(unrecognised)";

/// The per-agent key of requests from agents beyond the first
/// [`MAX_COUNTED_AGENTS`](crate::MAX_COUNTED_AGENTS) names (as
/// [`Counters::other_agents`](crate::Counters::other_agents) counts them).
pub const OTHER_AGENTS: &str = "(other agents)";

/// The highest value a histogram tracks: one hour, in microseconds.
const HIGHEST_US: u64 = 3_600_000_000;

/// An empty latency histogram: microseconds, 1 µs to 1 h, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("static bounds are valid")
}

/// Records `duration` in microseconds; beyond an hour counts as an hour.
pub(crate) fn record(histogram: &mut Histogram<u64>, duration: Duration) {
    let us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(us);
}

/// What an [`LlmStub`](crate::LlmStub) measured over its whole life.
///
/// Every histogram counts microseconds from 1 µs to 1 h with 3 significant digits
/// (HdrHistogram; a value beyond an hour is counted as an hour; see [`latency_histogram`]),
/// so histograms of different stubs and runs add up exactly (`Histogram::add`).
///
/// Measured per response, on the stub's own socket (and recorded in its [`Exchange`]):
///
/// - **service**: the request fully read → the last byte of the response handed to the
///   socket; injected delays, pacing and stalls included, the client's reading not. Kept
///   per agent ([`StubLatencies::per_agent`]).
/// - **time to first token** (streams): the request fully read → the first token chunk
///   (content, or a tool call's opening or arguments) handed to the socket.
/// - **inter-token** (streams): between consecutive token chunks; chunks that went out in
///   one write have a gap of 0.
///
/// Responses that send nothing (a hang, a reset before the response) have no service time
/// and are not counted; one cut short on purpose (truncated, reset or cut mid-stream) is
/// timed to its last byte; one whose client left before its last byte counts only the
/// tokens that went out. The timings are recorded just after the last byte is handed to
/// the socket, so a client that has read a whole response may look a moment before they
/// are there ([`LlmStub::wait_for_journal`](crate::LlmStub::wait_for_journal) waits for
/// them).
///
/// [`Exchange`]: crate::Exchange
#[derive(Debug, Clone)]
pub struct StubLatencies {
    /// Service time of every timed response, by recognised agent; [`UNRECOGNISED_AGENT`]
    /// and [`OTHER_AGENTS`] collect the rest. Only keys with samples are present.
    pub per_agent: BTreeMap<String, Histogram<u64>>,
    /// Streamed replies: request fully read → first token chunk on the socket.
    pub time_to_first_token: Histogram<u64>,
    /// Streamed replies: the gaps between consecutive token chunks.
    pub inter_token: Histogram<u64>,
}

/// The live histograms of one stub (behind its journal's lock).
#[derive(Debug)]
pub(crate) struct Latencies {
    /// At most [`MAX_COUNTED_AGENTS`](crate::MAX_COUNTED_AGENTS) names plus the two
    /// catch-all keys.
    per_agent: HashMap<String, Histogram<u64>>,
    time_to_first_token: Histogram<u64>,
    inter_token: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            per_agent: HashMap::new(),
            time_to_first_token: latency_histogram(),
            inter_token: latency_histogram(),
        }
    }
}

impl Latencies {
    /// Records one response's timings under `key` (an agent name or a catch-all key).
    pub(crate) fn record(
        &mut self,
        key: &str,
        service: Option<Duration>,
        first_token: Option<Duration>,
        gaps: &[Duration],
    ) {
        if let Some(service) = service {
            let histogram = match self.per_agent.get_mut(key) {
                Some(histogram) => histogram,
                None => self
                    .per_agent
                    .entry(key.to_string())
                    .or_insert_with(latency_histogram),
            };
            record(histogram, service);
        }
        if let Some(first_token) = first_token {
            record(&mut self.time_to_first_token, first_token);
        }
        for &gap in gaps {
            record(&mut self.inter_token, gap);
        }
    }

    pub(crate) fn snapshot(&self) -> StubLatencies {
        StubLatencies {
            per_agent: self
                .per_agent
                .iter()
                .map(|(agent, histogram)| (agent.clone(), histogram.clone()))
                .collect(),
            time_to_first_token: self.time_to_first_token.clone(),
            inter_token: self.inter_token.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_microseconds_and_saturate_at_an_hour() {
        let mut latencies = Latencies::default();
        let ms = Duration::from_millis;
        latencies.record("critic", Some(ms(3)), Some(ms(200)), &[ms(20), ms(21)]);
        latencies.record("critic", Some(Duration::from_secs(7200)), None, &[]);
        latencies.record(UNRECOGNISED_AGENT, None, None, &[]);
        let snapshot = latencies.snapshot();
        assert_eq!(snapshot.per_agent.keys().collect::<Vec<_>>(), ["critic"]);
        let critic = &snapshot.per_agent["critic"];
        assert_eq!(critic.len(), 2);
        assert!(critic.equivalent(critic.min(), 3_000));
        assert!(critic.equivalent(critic.max(), HIGHEST_US));
        assert_eq!(snapshot.time_to_first_token.len(), 1);
        assert_eq!(snapshot.inter_token.len(), 2);
    }
}
