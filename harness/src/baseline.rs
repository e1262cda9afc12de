//! Performance baselines: save a run's latency histograms under a name, and compare a
//! later run with them.
//!
//! A scenario regresses when its end-to-end latency got worse on both counts:
//!
//! - **significance**: a two-sample Kolmogorov–Smirnov test on the two histograms says
//!   the distributions differ (p < 0.001). KS compares whole distributions, needs no
//!   normality (latency is skewed and multimodal), and works on the HDR histograms
//!   directly, so no raw samples need be kept;
//! - **size**: the median rose by more than the bound (default 20%) *and* by more than a
//!   noise floor of 2 ms. On a shared, noisy machine a significant shift can be tiny;
//!   with many samples KS finds it, and a bound on the size keeps it from being an alarm.
//!
//! Criterion's bootstrap is the model for "is the change real", k6's thresholds for "is
//! it big enough to act on"; unlike criterion, a regression fails the exit code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reports::RunReport;
use reports::metrics::Histo;
use serde::{Deserialize, Serialize};

/// Below this change of the median, nothing is a regression, however significant.
const NOISE_FLOOR_US: f64 = 2_000.0;
/// The KS significance level.
const ALPHA: f64 = 0.001;
/// Fewer samples than this on either side: not compared.
const MIN_SAMPLES: u64 = 10;

/// A saved baseline: per scenario, its end-to-end latency histogram.
#[derive(Debug, Serialize, Deserialize)]
pub struct Baseline {
    pub name: String,
    pub created: String,
    pub scenarios: BTreeMap<String, Histo>,
}

/// Where a named baseline lives.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join("baselines").join(format!("{name}.json"))
}

impl Baseline {
    pub fn of(name: &str, report: &RunReport) -> Baseline {
        let scenarios = report
            .scenarios
            .iter()
            .filter_map(|s| Some((s.path.clone(), s.metrics.end_to_end.clone()?)))
            .collect();
        Baseline {
            name: name.into(),
            created: report.started_at.clone(),
            scenarios,
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::source::refuse_non_regular(path)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }

    pub fn load(path: &Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read baseline `{}`: {e} (hint: save one with `--save-baseline NAME`)",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not a baseline: {e}", path.display()))
    }
}

/// One scenario compared.
#[derive(Debug, Clone)]
pub struct Delta {
    pub scenario: String,
    pub base_p50_us: f64,
    pub new_p50_us: f64,
    pub base_p95_us: f64,
    pub new_p95_us: f64,
    pub change: f64,
    pub p_value: f64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Regressed,
    Improved,
    Unchanged,
    /// Too few samples, or missing on one side.
    NotCompared,
    /// Tagged `baseline-exempt`: reported, never judged.
    Exempt,
}

/// Scenarios with this tag are compared and shown, but never judged a regression.
pub const EXEMPT_TAG: &str = "baseline-exempt";

/// Compares every scenario of `report` present in `base`.
pub fn compare(base: &Baseline, report: &RunReport, max_regression: f64) -> Vec<Delta> {
    let mut out = Vec::new();
    for s in &report.scenarios {
        let (Some(old), Some(new)) = (base.scenarios.get(&s.path), s.metrics.end_to_end.as_ref())
        else {
            continue;
        };
        let (b50, n50) = (
            old.percentile_us(50.0) as f64,
            new.percentile_us(50.0) as f64,
        );
        let change = if b50 > 0.0 { (n50 - b50) / b50 } else { 0.0 };
        let p_value = ks_p_value(old, new);
        let verdict = if s.tags.iter().any(|t| t == EXEMPT_TAG) {
            Verdict::Exempt
        } else if old.len() < MIN_SAMPLES || new.len() < MIN_SAMPLES {
            Verdict::NotCompared
        } else if p_value < ALPHA && change > max_regression && n50 - b50 > NOISE_FLOOR_US {
            Verdict::Regressed
        } else if p_value < ALPHA && change < -max_regression && b50 - n50 > NOISE_FLOOR_US {
            Verdict::Improved
        } else {
            Verdict::Unchanged
        };
        out.push(Delta {
            scenario: s.path.clone(),
            base_p50_us: b50,
            new_p50_us: n50,
            base_p95_us: old.percentile_us(95.0) as f64,
            new_p95_us: new.percentile_us(95.0) as f64,
            change,
            p_value,
            verdict,
        });
    }
    out
}

/// The two-sample Kolmogorov–Smirnov p-value of two histograms (asymptotic, with the
/// usual small-sample correction). Values are compared at bucket resolution, which for
/// HDR histograms with three significant digits is 0.1%.
pub fn ks_p_value(a: &Histo, b: &Histo) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    let (a, b) = (a.inner(), b.inner());
    let mut points: Vec<u64> = a
        .iter_recorded()
        .chain(b.iter_recorded())
        .map(|v| v.value_iterated_to())
        .collect();
    points.sort_unstable();
    points.dedup();
    let cdf_a = |x: u64| a.count_between(0, x) as f64 / na;
    let cdf_b = |x: u64| b.count_between(0, x) as f64 / nb;
    let d = points
        .iter()
        .map(|&x| (cdf_a(x) - cdf_b(x)).abs())
        .fold(0.0, f64::max);
    let en = (na * nb / (na + nb)).sqrt();
    kolmogorov_q((en + 0.12 + 0.11 / en) * d)
}

/// Q_KS(λ) = 2 Σ (−1)^(j−1) exp(−2 j² λ²): the chance of a distance this large by luck.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = j as f64;
        let term = (-2.0 * j * j * lambda * lambda).exp();
        sum += if (j as u64) % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn histo(values_ms: impl Iterator<Item = f64>) -> Histo {
        let mut h = Histo::new();
        for v in values_ms {
            h.record(Duration::from_secs_f64(v / 1000.0));
        }
        h
    }

    /// A deterministic wobble around a centre, like a noisy but unchanged system.
    fn noisy(centre: f64, n: usize, seed: u64) -> Histo {
        let mut x = seed;
        histo((0..n).map(move |_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            centre * (0.9 + 0.2 * ((x >> 33) as f64 / (1u64 << 31) as f64))
        }))
    }

    #[test]
    fn the_same_distribution_is_not_significant_and_a_shift_is() {
        let a = noisy(100.0, 200, 1);
        assert!(ks_p_value(&a, &noisy(100.0, 200, 2)) > 0.01);
        assert!(ks_p_value(&a, &noisy(130.0, 200, 3)) < 1e-6);
    }

    #[test]
    fn a_regression_needs_significance_and_size() {
        let report = |h: Histo| RunReport {
            tool: String::new(),
            started_at: String::new(),
            duration: Duration::ZERO,
            seed: 0,
            interrupted: false,
            scenarios: vec![reports::ScenarioResult {
                name: "s".into(),
                path: "s.toml".into(),
                suite: ".".into(),
                target: "t".into(),
                tags: vec![],
                seed: 0,
                outcome: reports::Outcome::Passed,
                duration: Duration::ZERO,
                failures: vec![],
                journal: vec![],
                exit_code: Some(0),
                stderr_tail: String::new(),
                output: None,
                failed_attempts: vec![],
                metrics: reports::metrics::ScenarioMetrics {
                    end_to_end: Some(h),
                    ..Default::default()
                },
            }],
            gates: vec![],
            verdict: reports::Verdict::Pass,
            partition: None,
        };
        let base = Baseline::of("b", &report(noisy(100.0, 200, 1)));
        let verdict = |h| compare(&base, &report(h), 0.2)[0].verdict;
        assert_eq!(
            verdict(noisy(100.0, 200, 9)),
            Verdict::Unchanged,
            "noise is not a regression"
        );
        assert_eq!(
            verdict(noisy(110.0, 200, 9)),
            Verdict::Unchanged,
            "significant but under the bound"
        );
        assert_eq!(verdict(noisy(130.0, 200, 9)), Verdict::Regressed);
        assert_eq!(verdict(noisy(70.0, 200, 9)), Verdict::Improved);
        assert_eq!(
            verdict(noisy(130.0, 5, 9)),
            Verdict::NotCompared,
            "too few samples"
        );
    }
}
