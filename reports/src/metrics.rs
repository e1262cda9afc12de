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

/// A latency histogram in microseconds (3 significant digits, 1 µs to 1 h).
#[derive(Debug, Clone, PartialEq)]
pub struct Histo(Histogram<u64>);

impl Default for Histo {
    fn default() -> Self {
        Histo(Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("static bounds are valid"))
    }
}

impl Histo {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of an HDR histogram of microseconds (values outside 1 µs – 1 h are clamped
    /// into range by re-recording them; the usual case copies exactly).
    pub fn from_micros(h: &Histogram<u64>) -> Histo {
        let mut out = Histo::default();
        if out.0.add(h).is_err() {
            for v in h.iter_recorded() {
                let value = v.value_iterated_to().clamp(1, HIGHEST_US);
                let _ = out.0.record_n(value, v.count_at_value());
            }
        }
        out
    }

    /// Records one latency; values beyond an hour are recorded as an hour.
    pub fn record(&mut self, d: std::time::Duration) {
        let us = (d.as_micros() as u64).clamp(1, HIGHEST_US);
        // Cannot fail: the value is clamped into the histogram's range.
        let _ = self.0.record(us);
    }

    /// Adds every sample of `other` (exact: both have the same bounds and precision).
    pub fn merge(&mut self, other: &Histo) {
        let _ = self.0.add(&other.0);
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at a percentile (0–100), in microseconds: the nearest-rank value (the
    /// `ceil(p/100 × count)`th sample), as HdrHistogram reports it.
    pub fn percentile_us(&self, p: f64) -> u64 {
        // `p / 100` is inexact (99.9 / 100 = 0.9990000000000001) and HdrHistogram takes
        // the ceiling of quantile × count, so without the nudge p99.9 of 1000 samples
        // would be the 1000th (the max) instead of the 999th.
        let quantile = (p / 100.0 - 1e-12).clamp(0.0, 1.0);
        self.0.value_at_quantile(quantile)
    }

    pub fn max_us(&self) -> u64 {
        self.0.max()
    }

    pub fn min_us(&self) -> u64 {
        self.0.min()
    }

    pub fn mean_us(&self) -> f64 {
        self.0.mean()
    }

    /// The underlying histogram, for analysis.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }

    fn encode(&self) -> String {
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = V2DeflateSerializer::new().serialize(&self.0, &mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn decode(text: &str) -> Result<Histo, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("histogram is not base64: {e}"))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram does not decode: {e:?}"))?;
        let mut out = Histo::default();
        out.0
            .add(&h)
            .map_err(|e| format!("histogram out of range: {e:?}"))?;
        Ok(out)
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
        HistoJson {
            unit: "us".into(),
            count: self.len(),
            min: if self.is_empty() { 0 } else { self.min_us() },
            p50: self.percentile_us(50.0),
            p90: self.percentile_us(90.0),
            p95: self.percentile_us(95.0),
            p99: self.percentile_us(99.0),
            p999: self.percentile_us(99.9),
            max: self.max_us(),
            mean: if self.is_empty() { 0.0 } else { self.mean_us() },
            hdr: self.encode(),
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
