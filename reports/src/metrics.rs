//! Performance metrics of a scenario: latency histograms (HDR, microseconds), memory and
//! CPU of the target's process tree, a load run's rates, and threshold verdicts.
//!
//! Histograms are kept with bounded memory whatever the run length, and travel in
//! `results.json` in HdrHistogram's V2+deflate encoding (base64), beside a readable
//! summary; reading a report back decodes the encoding, so runs and shards merge exactly.

use std::collections::BTreeMap;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// The highest latency a histogram records: one hour, in microseconds.
const HIGHEST_US: u64 = 3_600_000_000;
/// Up to this many samples a histogram keeps the samples themselves (a scenario's own
/// histograms mostly hold one to a few); beyond, HDR counts sized to the largest value.
const FEW: usize = 32;

/// A latency histogram in microseconds (3 significant digits, 1 µs to 1 h).
///
/// Sized to what it records: up to a few dozen samples it keeps the samples (a few bytes
/// each); beyond, HDR counts that grow to the largest value recorded (16 KiB up to 2 ms,
/// 48 KiB up to 32 ms) rather than to an hour. Every answer is the one a full 1 µs – 1 h
/// histogram of the same samples gives, and the encoding in `results.json` is the same.
#[derive(Debug, Clone)]
pub struct Histo(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// The samples, clamped into range, in the order recorded.
    Few(Vec<u64>),
    Counts(Box<Histogram<u64>>),
}

impl Default for Histo {
    fn default() -> Self {
        Histo(Repr::Few(Vec::new()))
    }
}

/// Empty HDR counts with the histogram's precision, growing as values come.
fn counts() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 2, 3).expect("static bounds are valid");
    h.auto(true);
    h
}

impl PartialEq for Histo {
    /// The same samples (at the histogram's resolution), however they are kept.
    fn eq(&self, other: &Histo) -> bool {
        let (a, b) = (self.dense(), other.dense());
        a.len() == b.len()
            && a.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .eq(b
                    .iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value())))
    }
}

impl Histo {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of an HDR histogram of microseconds (values outside 1 µs – 1 h are clamped
    /// into range).
    pub fn from_micros(h: &Histogram<u64>) -> Histo {
        let mut out = Histo::default();
        for v in h.iter_recorded() {
            out.record_n(v.value_iterated_to(), v.count_at_value());
        }
        out
    }

    /// Records one latency; values beyond an hour are recorded as an hour.
    pub fn record(&mut self, d: std::time::Duration) {
        self.record_n(d.as_micros() as u64, 1);
    }

    fn record_n(&mut self, us: u64, n: u64) {
        let us = us.clamp(1, HIGHEST_US);
        match &mut self.0 {
            Repr::Few(samples) if (samples.len() as u64).saturating_add(n) <= FEW as u64 => {
                samples.extend(std::iter::repeat_n(us, n as usize));
            }
            Repr::Few(samples) => {
                let mut h = counts();
                for &v in samples.iter() {
                    // cannot fail: clamped into range, and the counts grow
                    let _ = h.record(v);
                }
                let _ = h.record_n(us, n);
                self.0 = Repr::Counts(Box::new(h));
            }
            Repr::Counts(h) => {
                let _ = h.record_n(us, n);
            }
        }
    }

    /// Adds every sample of `other` (exact: both have the same precision).
    pub fn merge(&mut self, other: &Histo) {
        match &other.0 {
            Repr::Few(samples) => {
                for &v in samples {
                    self.record_n(v, 1);
                }
            }
            Repr::Counts(h) => {
                for v in h.iter_recorded() {
                    self.record_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
    }

    /// The samples as HDR counts: borrowed when kept as counts, built when kept as samples.
    fn dense(&self) -> std::borrow::Cow<'_, Histogram<u64>> {
        match &self.0 {
            Repr::Counts(h) => std::borrow::Cow::Borrowed(&**h),
            Repr::Few(samples) => {
                let mut h = counts();
                for &v in samples {
                    let _ = h.record(v);
                }
                std::borrow::Cow::Owned(h)
            }
        }
    }

    pub fn len(&self) -> u64 {
        match &self.0 {
            Repr::Few(samples) => samples.len() as u64,
            Repr::Counts(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at a percentile (0–100), in microseconds: the nearest-rank value (the
    /// `ceil(p/100 × count)`th sample), as HdrHistogram reports it.
    pub fn percentile_us(&self, p: f64) -> u64 {
        // `p / 100` is inexact (99.9 / 100 = 0.9990000000000001) and HdrHistogram takes
        // the ceiling of quantile × count, so without the nudge p99.9 of 1000 samples
        // would be the 1000th (the max) instead of the 999th.
        let quantile = (p / 100.0 - 1e-12).clamp(0.0, 1.0);
        self.dense().value_at_quantile(quantile)
    }

    pub fn max_us(&self) -> u64 {
        self.dense().max()
    }

    pub fn min_us(&self) -> u64 {
        self.dense().min()
    }

    pub fn mean_us(&self) -> f64 {
        self.dense().mean()
    }

    /// The samples as HDR counts, for analysis.
    pub fn inner(&self) -> std::borrow::Cow<'_, Histogram<u64>> {
        self.dense()
    }

    /// Bytes this histogram holds beyond its own size (samples or counts).
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Few(samples) => samples.capacity() * std::mem::size_of::<u64>(),
            Repr::Counts(h) => h.distinct_values() * std::mem::size_of::<u64>(),
        }
    }

    fn encode(&self) -> String {
        // the encoding is that of a full 1 µs – 1 h histogram, whatever is kept here
        let mut full =
            Histogram::<u64>::new_with_bounds(1, HIGHEST_US, 3).expect("static bounds are valid");
        let _ = full.add(&*self.dense());
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = V2DeflateSerializer::new().serialize(&full, &mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn decode(text: &str) -> Result<Histo, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("histogram is not base64: {e}"))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram does not decode: {e:?}"))?;
        let mut full =
            Histogram::<u64>::new_with_bounds(1, HIGHEST_US, 3).expect("static bounds are valid");
        full.add(&h)
            .map_err(|e| format!("histogram out of range: {e:?}"))?;
        Ok(Histo::from_micros(&full))
    }
}

/// What `results.json` holds for a histogram: a summary to read, the encoding to merge.
#[derive(Serialize, Deserialize)]
struct HistoJson {
    unit: String,
    count: u64,
    min: u64,
    p50: u64,
    p90: u64,
    p95: u64,
    p99: u64,
    p999: u64,
    max: u64,
    mean: f64,
    /// HdrHistogram V2+deflate, base64.
    hdr: String,
}

impl Serialize for Histo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // one set of counts for every figure (built once when samples are kept)
        let counts = Histo(Repr::Counts(Box::new(self.dense().into_owned())));
        HistoJson {
            unit: "us".into(),
            count: counts.len(),
            min: if counts.is_empty() {
                0
            } else {
                counts.min_us()
            },
            p50: counts.percentile_us(50.0),
            p90: counts.percentile_us(90.0),
            p95: counts.percentile_us(95.0),
            p99: counts.percentile_us(99.0),
            p999: counts.percentile_us(99.9),
            max: counts.max_us(),
            mean: if counts.is_empty() {
                0.0
            } else {
                counts.mean_us()
            },
            hdr: counts.encode(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Histo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = HistoJson::deserialize(d)?;
        Histo::decode(&json.hdr).map_err(serde::de::Error::custom)
    }
}

/// A scenario's performance metrics; empty parts are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioMetrics {
    /// The target's wall time per run: one sample, or one per arrival under `[load]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_to_end: Option<Histo>,
    /// LLM calls per agent, as the stub served them (request received → last byte sent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub llm: BTreeMap<String, Histo>,
    /// Streamed replies: time to the first content chunk, as the stub sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_token: Option<Histo>,
    /// Streamed replies: the gaps between content chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inter_token: Option<Histo>,
    /// Executor calls per executor, as the stub answered them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub executor: BTreeMap<String, Histo>,
    /// The target's process tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryMetrics>,
    /// A `[load]` run's rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadMetrics>,
    /// Token usage and cost per run, from the targets' outputs (where they report them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_run: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_run: Option<f64>,
    /// The scenario's `[thresholds]`, each with its observed value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdResult>,
}

impl ScenarioMetrics {
    pub fn is_empty(&self) -> bool {
        *self == ScenarioMetrics::default()
    }
}

/// Memory and CPU of the target's whole process tree, sampled while it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryMetrics {
    /// The largest resident set seen (summed over the tree), in bytes.
    pub peak_rss_bytes: u64,
    /// CPU time the tree used, in seconds (summed over runs).
    pub cpu_seconds: f64,
    /// How many runs were sampled.
    pub runs: u64,
    /// Over repeated runs: the fitted slope of each run's peak RSS against the run's
    /// index (least squares), in bytes per run. A leak shows as a positive number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_per_run_bytes: Option<f64>,
    /// The timeline, downsampled to at most a few hundred points: (seconds since the
    /// scenario started, RSS bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<(f64, u64)>,
    /// The harness's own peak RSS while the scenario ran, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_peak_rss_bytes: Option<u64>,
    /// CPU time the harness spent sampling the tree, in seconds: what watching cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_cpu_seconds: Option<f64>,
}

/// What a `[load]` run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadMetrics {
    /// `constant_rate`, `ramping_rate` or `constant_concurrency`.
    pub model: String,
    /// Runs started per second the schedule asked for (open models), on average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_rate: Option<f64>,
    /// Runs completed per second.
    pub achieved_rate: f64,
    pub started: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Arrivals not started because the in-flight cap was reached (open models).
    pub dropped: u64,
    /// Wall time of the load, in seconds.
    pub seconds: f64,
}

/// One threshold, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// As written, e.g. `latency{agent=planner}: p95 < 800ms`.
    pub name: String,
    pub passed: bool,
    /// The observed value with its unit, e.g. `812.3ms`; `no data` when none.
    pub observed: String,
}

/// Adds `other`'s metrics to `into`, as when the shards of a partitioned run are put back
/// together: the result is what one run of both would have reported, wherever the
/// summaries allow it.
///
/// - Histograms (end to end, per agent, time to first token, inter-token, per executor)
///   merge by key, exactly: merging histograms read back from `results.json` gives the
///   histogram of every sample.
/// - Memory: the larger peak (the target's and the harness's), CPU seconds and runs
///   summed. The growth per run is a slope fitted to each run's peak, which the summaries
///   do not keep, so it cannot be recomputed: `into`'s is kept (`other`'s when `into` has
///   none), and so is `into`'s timeline (the shards' timelines have different origins).
/// - Load: counts summed; rates summed, as for shards that ran at the same time on
///   different machines; the longer wall time; `into`'s model.
/// - Tokens and cost per run: the mean weighted by each side's end-to-end sample count
///   (one per run) when both sides have it; otherwise `into`'s, or `other`'s when `into`
///   has none.
/// - Thresholds: `other`'s after `into`'s. They are not re-judged: a threshold over the
///   merged histograms needs the threshold's definition, which the harness has.
pub fn merge_metrics(into: &mut ScenarioMetrics, other: &ScenarioMetrics) {
    let runs = |m: &ScenarioMetrics| m.end_to_end.as_ref().map_or(0, Histo::len);
    let (into_runs, other_runs) = (runs(into), runs(other));
    into.tokens_per_run = weighted(
        into.tokens_per_run,
        into_runs,
        other.tokens_per_run,
        other_runs,
    );
    into.cost_per_run = weighted(into.cost_per_run, into_runs, other.cost_per_run, other_runs);

    merge_histo(&mut into.end_to_end, other.end_to_end.as_ref());
    merge_histo(
        &mut into.time_to_first_token,
        other.time_to_first_token.as_ref(),
    );
    merge_histo(&mut into.inter_token, other.inter_token.as_ref());
    for (into_map, other_map) in [
        (&mut into.llm, &other.llm),
        (&mut into.executor, &other.executor),
    ] {
        for (key, histo) in other_map {
            into_map.entry(key.clone()).or_default().merge(histo);
        }
    }

    match (&mut into.memory, &other.memory) {
        (_, None) => {}
        (None, Some(other)) => into.memory = Some(other.clone()),
        (Some(into), Some(other)) => {
            into.peak_rss_bytes = into.peak_rss_bytes.max(other.peak_rss_bytes);
            into.cpu_seconds += other.cpu_seconds;
            into.runs += other.runs;
            if into.growth_per_run_bytes.is_none() {
                into.growth_per_run_bytes = other.growth_per_run_bytes;
            }
            if into.timeline.is_empty() {
                into.timeline = other.timeline.clone();
            }
            into.harness_peak_rss_bytes =
                match (into.harness_peak_rss_bytes, other.harness_peak_rss_bytes) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            into.sampler_cpu_seconds = match (into.sampler_cpu_seconds, other.sampler_cpu_seconds) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        }
    }

    match (&mut into.load, &other.load) {
        (_, None) => {}
        (None, Some(other)) => into.load = Some(other.clone()),
        (Some(into), Some(other)) => {
            into.intended_rate = match (into.intended_rate, other.intended_rate) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            into.achieved_rate += other.achieved_rate;
            into.started += other.started;
            into.succeeded += other.succeeded;
            into.failed += other.failed;
            into.dropped += other.dropped;
            into.seconds = into.seconds.max(other.seconds);
        }
    }

    into.thresholds.extend(other.thresholds.iter().cloned());
}

fn merge_histo(into: &mut Option<Histo>, other: Option<&Histo>) {
    if let Some(other) = other {
        into.get_or_insert_with(Histo::new).merge(other);
    }
}

/// The mean of two per-run means, weighted by their run counts when both are known.
fn weighted(a: Option<f64>, a_runs: u64, b: Option<f64>, b_runs: u64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a_runs > 0 && b_runs > 0 => {
            let (wa, wb) = (a_runs as f64, b_runs as f64);
            Some((a * wa + b * wb) / (wa + wb))
        }
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The same samples in a histogram of the full range, as every histogram was before
    /// they were sized to what they record.
    fn full(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, HIGHEST_US, 3).unwrap();
        for &v in values {
            h.record(v.clamp(1, HIGHEST_US)).unwrap();
        }
        h
    }

    #[test]
    fn a_histogram_is_sized_to_what_it_records_and_answers_as_a_full_one() {
        // a scenario's usual histogram: one sample, a few bytes rather than 184 KiB
        let mut one = Histo::new();
        one.record(Duration::from_micros(23_456));
        assert!(one.heap_bytes() <= 64, "{} bytes", one.heap_bytes());
        // few, many, sub-ms, long, beyond an hour
        let few: Vec<u64> = vec![5, 900, 23_456, 23_457, 7_000_000_000];
        let many: Vec<u64> = (1..=5_000u64).map(|i| (i * 7919) % 1_800 + 1).collect();
        for values in [&few[..], &many[..]] {
            let mut h = Histo::new();
            for &v in values {
                h.record(Duration::from_micros(v));
            }
            let truth = full(values);
            assert_eq!(h.len(), truth.len());
            for p in [0.0, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
                let q = (p / 100.0 - 1e-12_f64).clamp(0.0, 1.0);
                assert_eq!(h.percentile_us(p), truth.value_at_quantile(q), "p{p}");
            }
            assert_eq!(
                (h.min_us(), h.max_us(), h.mean_us()),
                (truth.min(), truth.max(), truth.mean())
            );
            // the encoding is the full histogram's, byte for byte
            let mut bytes = Vec::new();
            V2DeflateSerializer::new()
                .serialize(&truth, &mut bytes)
                .unwrap();
            assert_eq!(
                h.encode(),
                base64::engine::general_purpose::STANDARD.encode(bytes)
            );
        }
        // 5,000 samples under 2 ms: counts up to 2 ms, not up to an hour
        let mut h = Histo::new();
        for &v in &many {
            h.record(Duration::from_micros(v));
        }
        assert!(h.heap_bytes() <= 16 * 1024, "{} bytes", h.heap_bytes());
    }

    #[test]
    fn samples_and_counts_of_the_same_values_are_equal_and_merge_alike() {
        let mut kept = Histo::new();
        let mut counted = Histo::new();
        for v in [3u64, 40, 40, 1_000] {
            kept.record(Duration::from_micros(v));
        }
        for v in 0..100u64 {
            counted.record(Duration::from_micros(v + 1));
        }
        let mut both = counted.clone();
        both.merge(&kept);
        let mut other_way = kept.clone();
        other_way.merge(&counted);
        assert_eq!(both, other_way);
        assert_eq!(both.len(), 104);
        assert_ne!(kept, counted);
    }

    #[test]
    fn histograms_round_trip_through_json_and_merge_exactly() {
        let mut a = Histo::new();
        let mut b = Histo::new();
        for i in 1..=1000u64 {
            a.record(Duration::from_micros(i * 7));
            b.record(Duration::from_micros(i * 13 + 5));
        }
        let a2: Histo = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(a, a2);
        let mut merged = a.clone();
        merged.merge(&b);
        let mut via_json: Histo =
            serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        via_json.merge(&serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap());
        assert_eq!(merged, via_json);
        assert_eq!(merged.len(), 2000);
    }

    /// Metrics of one shard: `runs` end-to-end samples from `first`, per-agent and
    /// executor samples beside them.
    fn shard(first: u64, runs: u64, peak: u64) -> (ScenarioMetrics, Vec<u64>) {
        let mut m = ScenarioMetrics::default();
        let mut e2e = Vec::new();
        for i in first..first + runs {
            let us = 200_000 + (i * 7919) % 900_000;
            e2e.push(us);
            m.end_to_end
                .get_or_insert_with(Histo::new)
                .record(Duration::from_micros(us));
            m.llm
                .entry(if i % 2 == 0 { "planner" } else { "coder" }.into())
                .or_default()
                .record(Duration::from_micros(us / 3));
            m.executor
                .entry("sandbox".into())
                .or_default()
                .record(Duration::from_micros(us / 5 + 1));
        }
        m.memory = Some(MemoryMetrics {
            peak_rss_bytes: peak,
            cpu_seconds: 1.5,
            runs,
            growth_per_run_bytes: Some(peak as f64 / 1000.0),
            timeline: vec![(0.0, peak / 2), (1.0, peak)],
            harness_peak_rss_bytes: Some(peak / 4),
            sampler_cpu_seconds: None,
        });
        m.load = Some(LoadMetrics {
            model: "constant_rate".into(),
            intended_rate: Some(10.0),
            achieved_rate: 9.5,
            started: runs,
            succeeded: runs - 1,
            failed: 1,
            dropped: 2,
            seconds: runs as f64 / 10.0,
        });
        m.tokens_per_run = Some(first as f64);
        m.thresholds = vec![ThresholdResult {
            name: format!("shard from {first}"),
            passed: true,
            observed: "1ms".into(),
        }];
        (m, e2e)
    }

    fn via_json(m: &ScenarioMetrics) -> ScenarioMetrics {
        serde_json::from_str(&serde_json::to_string(m).unwrap()).unwrap()
    }

    #[test]
    fn merged_shards_read_back_from_json_equal_one_recording_of_every_sample() {
        let (a, mut samples) = shard(0, 300, 50_000_000);
        let (b, more) = shard(300, 100, 80_000_000);
        samples.extend(more);
        let (whole, _) = shard(0, 400, 80_000_000);

        let mut merged = via_json(&a);
        merge_metrics(&mut merged, &via_json(&b));

        let mut all = Histo::new();
        for us in samples {
            all.record(Duration::from_micros(us));
        }
        assert_eq!(merged.end_to_end.as_ref(), Some(&all));
        assert_eq!(merged.end_to_end, whole.end_to_end);
        assert_eq!(merged.llm, whole.llm);
        assert_eq!(merged.executor, whole.executor);
        assert_eq!(merged.llm["planner"].len() + merged.llm["coder"].len(), 400);

        let memory = merged.memory.as_ref().unwrap();
        assert_eq!(memory.peak_rss_bytes, 80_000_000);
        assert_eq!((memory.cpu_seconds, memory.runs), (3.0, 400));
        // The first shard's growth and timeline: they cannot be recomputed.
        assert_eq!(memory.growth_per_run_bytes, Some(50_000.0));
        assert_eq!(memory.timeline, [(0.0, 25_000_000), (1.0, 50_000_000)]);
        assert_eq!(memory.harness_peak_rss_bytes, Some(20_000_000));

        let load = merged.load.as_ref().unwrap();
        assert_eq!(
            (load.started, load.succeeded, load.failed, load.dropped),
            (400, 398, 2, 4)
        );
        assert_eq!((load.intended_rate, load.achieved_rate), (Some(20.0), 19.0));
        assert_eq!(load.seconds, 30.0);

        // Tokens per run: (0 × 300 + 300 × 100) / 400.
        assert_eq!(merged.tokens_per_run, Some(75.0));
        let names: Vec<&str> = merged.thresholds.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["shard from 0", "shard from 300"]);
    }

    #[test]
    fn merging_into_nothing_copies_and_merging_nothing_changes_nothing() {
        let (a, _) = shard(0, 10, 1000);
        let mut empty = ScenarioMetrics::default();
        merge_metrics(&mut empty, &a);
        assert_eq!(empty, a);
        let mut same = a.clone();
        merge_metrics(&mut same, &ScenarioMetrics::default());
        assert_eq!(same, a);
    }

    #[test]
    fn the_run_merges_its_scenarios_end_to_end() {
        use crate::model::Outcome;
        use crate::test_support::{report, scenario};
        let mut r = report(vec![
            scenario("a", Outcome::Passed),
            scenario("b", Outcome::Passed),
            scenario("c", Outcome::Passed),
        ]);
        assert_eq!(r.merged_end_to_end(), None);
        let (a, _) = shard(0, 30, 1);
        let (c, _) = shard(30, 20, 1);
        let (whole, _) = shard(0, 50, 1);
        r.scenarios[0].metrics = a;
        r.scenarios[2].metrics = c;
        assert_eq!(r.merged_end_to_end(), whole.end_to_end);
    }

    // See: p99.9 of 1000 samples was the maximum, because 99.9 / 100 rounds up.
    #[test]
    fn percentiles_are_nearest_rank_despite_float_rounding() {
        let mut h = Histo::new();
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        let ms = |p| h.percentile_us(p) / 1000;
        assert_eq!(
            [ms(0.0), ms(50.0), ms(95.0), ms(99.0), ms(99.9), ms(100.0)],
            [1, 500, 950, 990, 999, 1000]
        );
        assert_eq!(Histo::new().percentile_us(99.0), 0);
    }

    #[test]
    fn a_broken_encoding_is_an_error_not_a_panic() {
        let bad = r#"{"unit":"us","count":1,"min":1,"p50":1,"p90":1,"p95":1,"p99":1,"p999":1,"max":1,"mean":1.0,"hdr":"bm90IGEgaGlzdG9ncmFt"}"#;
        assert!(serde_json::from_str::<Histo>(bad).is_err());
    }
}
