//! A scenario's metrics, assembled from what the stubs timed, what the sampler saw and
//! what the runs reported, and its thresholds judged against them.

use reports::Failure;
use reports::metrics::{Histo, LoadMetrics, MemoryMetrics, ScenarioMetrics, ThresholdResult};
use serde_json::Value;

use crate::sampler::Observation;
use crate::scenario::{LatencyOf, Stat, Threshold, ThresholdMetric};

/// The pieces a scenario's metrics are made of.
pub struct Parts<'a> {
    pub end_to_end: Histo,
    pub stubs: &'a crate::stubs::ScenarioStubs,
    pub memory: Observation,
    /// Runs that were sampled (1 without `[load]`).
    pub runs: u64,
    /// Over a load: the resident-set growth per run of the process that outlives the runs.
    pub growth_per_run: Option<f64>,
    pub outputs: Vec<Value>,
    pub tokens_pointer: Option<&'a str>,
    pub cost_pointer: Option<&'a str>,
    pub load: Option<LoadMetrics>,
    /// Runs whose expectations held, and all runs.
    pub succeeded: u64,
    pub total: u64,
}

pub fn assemble(parts: Parts) -> ScenarioMetrics {
    let latencies = parts.stubs.llm.latencies();
    let nonempty = |h: Histo| (!h.is_empty()).then_some(h);
    let llm = latencies
        .per_agent
        .iter()
        .map(|(agent, h)| (agent.clone(), Histo::from_micros(h)))
        .filter(|(_, h)| !h.is_empty())
        .collect();
    let executor = parts
        .stubs
        .executors
        .iter()
        .map(|(name, stub)| (name.clone(), Histo::from_micros(&stub.latencies())))
        .filter(|(_, h)| !h.is_empty())
        .collect();
    let mean = |pointer: Option<&str>| {
        let values: Vec<f64> = parts
            .outputs
            .iter()
            .filter_map(|o| o.pointer(pointer?)?.as_f64())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let memory = (parts.memory.peak_rss_bytes > 0).then(|| MemoryMetrics {
        peak_rss_bytes: parts.memory.peak_rss_bytes,
        cpu_seconds: parts.memory.cpu_seconds,
        runs: parts.runs,
        growth_per_run_bytes: parts.growth_per_run,
        timeline: parts.memory.timeline.clone(),
        harness_peak_rss_bytes: Some(parts.memory.harness_peak_rss_bytes).filter(|b| *b > 0),
        sampler_cpu_seconds: Some(parts.memory.sampler_cpu_seconds),
    });
    let mut load = parts.load;
    if let Some(l) = load.as_mut() {
        l.succeeded = parts.succeeded;
        l.failed = parts.total - parts.succeeded;
    }
    ScenarioMetrics {
        end_to_end: nonempty(parts.end_to_end),
        llm,
        time_to_first_token: nonempty(Histo::from_micros(&latencies.time_to_first_token)),
        inter_token: nonempty(Histo::from_micros(&latencies.inter_token)),
        executor,
        memory,
        load,
        tokens_per_run: mean(parts.tokens_pointer),
        cost_per_run: mean(parts.cost_pointer),
        thresholds: Vec::new(),
    }
}

/// Why a scenario without `[load]` has no growth per run.
pub const NO_LOAD_FOR_GROWTH: &str = "growth per run is fitted over the runs of a `[load]`, and this scenario runs once (hint: add a `[load]` with `iterations = 20` and use a `worker` target with `isolation = \"reuse\"`, or an `http` target the harness starts, whose process outlives each run)";

/// Judges every threshold; the verdicts go into the metrics, the failed ones become
/// failures of the scenario. `no_growth` says why growth per run was not measured;
/// `failed_runs` why runs of a load failed, shown under a failed `success_rate`.
pub fn judge(
    thresholds: &[Threshold],
    metrics: &mut ScenarioMetrics,
    success: (u64, u64),
    no_growth: Option<&str>,
    failed_runs: Option<&str>,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    for t in thresholds {
        let observed = observe(t, metrics, success);
        let passed = observed
            .as_ref()
            .is_some_and(|(v, _)| t.cmp.holds_measured(*v, t.limit));
        let shown = observed.map_or_else(
            || match (&t.metric, no_growth) {
                (ThresholdMetric::RssGrowthPerRun, Some(why)) => format!("no data: {why}"),
                _ => "no data".to_string(),
            },
            |(_, s)| s,
        );
        if !passed {
            // A failed success rate says why the runs failed, not only how many did.
            let detail = match (&t.metric, failed_runs) {
                (ThresholdMetric::SuccessRate, Some(why)) => why.to_string(),
                _ => String::new(),
            };
            failures.push(Failure {
                kind: "threshold".into(),
                message: format!("threshold `{}` failed: observed {shown}", t.text),
                detail,
            });
        }
        metrics.thresholds.push(ThresholdResult {
            name: t.text.clone(),
            passed,
            observed: shown,
        });
    }
    failures
}

/// The observed value (in the threshold's unit) and how to show it.
fn observe(t: &Threshold, m: &ScenarioMetrics, (ok, total): (u64, u64)) -> Option<(f64, String)> {
    match &t.metric {
        ThresholdMetric::Latency { of, stat } => {
            let h = match of {
                LatencyOf::EndToEnd => m.end_to_end.as_ref(),
                LatencyOf::Agent(a) => m.llm.get(a),
                LatencyOf::TimeToFirstToken => m.time_to_first_token.as_ref(),
                LatencyOf::InterToken => m.inter_token.as_ref(),
                LatencyOf::Executor(e) => m.executor.get(e),
            }
            .filter(|h| !h.is_empty())?;
            let us = match stat {
                Stat::Percentile(p) => h.percentile_us(*p) as f64,
                Stat::Max => h.max_us() as f64,
                Stat::Mean => h.mean_us(),
            };
            let secs = us / 1e6;
            Some((
                secs,
                format!("{stat} = {:.1}ms over {} samples", us / 1000.0, h.len()),
            ))
        }
        ThresholdMetric::SuccessRate => (total > 0).then(|| {
            let rate = 100.0 * ok as f64 / total as f64;
            (rate, format!("{rate:.2}% ({ok}/{total} runs)"))
        }),
        ThresholdMetric::PeakRss => m.memory.as_ref().map(|mm| {
            (
                mm.peak_rss_bytes as f64,
                format!("{:.1} MiB", mm.peak_rss_bytes as f64 / 1048576.0),
            )
        }),
        ThresholdMetric::RssGrowthPerRun => m
            .memory
            .as_ref()
            .and_then(|mm| mm.growth_per_run_bytes)
            .map(|g| (g, format!("{:.1} KiB per run", g / 1024.0))),
        ThresholdMetric::TokensPerRun => m
            .tokens_per_run
            .map(|v| (v, format!("{v:.1} tokens per run"))),
        ThresholdMetric::CostPerRun => m.cost_per_run.map(|v| (v, format!("${v:.6} per run"))),
    }
}
