//! `[load]`: run the target many times, on a schedule, against the same stubs.
//!
//! ```toml
//! [load]
//! model = "constant_rate"      # open model: arrivals per second, whatever the latency
//! rate = 20
//! duration = "10s"
//! max_in_flight = 50           # arrivals beyond this many running are dropped (and counted)
//!
//! # model = "ramping_rate", stages = [{ rate = 5, duration = "5s" }, { rate = 20, duration = "10s" }]
//! # model = "constant_concurrency", concurrency = 4, iterations = 100   (closed model)
//! ```
//!
//! Latency under an open model is measured from each arrival's intended start time, so a
//! slow target cannot hide its slowness by delaying the arrivals (no coordinated
//! omission, as wrk2 does it).

use std::time::Duration;

use serde::Deserialize;

use super::serde_util::deserialize_opt_duration;

/// Hard bounds: a load run stops by itself.
pub const MAX_RUNS: u64 = 100_000;

/// The highest arrival rate a load may ask for, per second.
pub const MAX_RATE: f64 = 10_000.0;

/// The most runs a load keeps in flight at once.
pub const MAX_CONCURRENCY: usize = 10_000;

/// `rate` is a finite number of arrivals per second within `0 … MAX_RATE` (0 itself only
/// where `zero_ok`: a ramp may start or pause at 0).
fn check_rate(place: &str, rate: f64, zero_ok: bool) -> Result<(), String> {
    let low_ok = if zero_ok { rate >= 0.0 } else { rate > 0.0 };
    if rate.is_finite() && low_ok && rate <= MAX_RATE {
        Ok(())
    } else {
        Err(format!(
            "`rate = {rate}`{place} is out of range: arrivals per second, {} to {MAX_RATE}",
            if zero_ok { "0" } else { "above 0" }
        ))
    }
}
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawLoad")]
pub struct LoadSpec {
    pub model: LoadModel,
    /// The most runs in flight at once.
    pub max_in_flight: usize,
    /// Stop after this many runs, whatever the schedule says.
    pub iterations: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoadModel {
    ConstantRate {
        rate: f64,
        duration: Duration,
    },
    /// Each stage ramps linearly from the previous stage's rate (0 at first) to its own.
    RampingRate {
        stages: Vec<(f64, Duration)>,
    },
    ConstantConcurrency {
        concurrency: usize,
        duration: Option<Duration>,
    },
}

impl LoadModel {
    pub fn name(&self) -> &'static str {
        match self {
            LoadModel::ConstantRate { .. } => "constant_rate",
            LoadModel::RampingRate { .. } => "ramping_rate",
            LoadModel::ConstantConcurrency { .. } => "constant_concurrency",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    model: String,
    rate: Option<f64>,
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    duration: Option<Duration>,
    stages: Option<Vec<RawStage>>,
    concurrency: Option<usize>,
    max_in_flight: Option<usize>,
    iterations: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    rate: f64,
    #[serde(deserialize_with = "deserialize_duration")]
    duration: Duration,
}

fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    super::serde_util::parse_duration(&s).map_err(serde::de::Error::custom)
}

const MODELS: &[&str] = &["constant_rate", "ramping_rate", "constant_concurrency"];

impl TryFrom<RawLoad> for LoadSpec {
    type Error = String;

    fn try_from(raw: RawLoad) -> Result<Self, String> {
        let bounded = |d: Duration| {
            if d.is_zero() || d > MAX_DURATION {
                Err(format!(
                    "a load lasts more than 0s and at most {}",
                    humantime::format_duration(MAX_DURATION)
                ))
            } else {
                Ok(d)
            }
        };
        let model = match raw.model.as_str() {
            "constant_rate" => {
                let rate = raw
                    .rate
                    .ok_or("`constant_rate` needs `rate`, arrivals per second (> 0)")?;
                check_rate("", rate, false)?;
                let duration = bounded(raw.duration.ok_or("`constant_rate` needs `duration`")?)?;
                LoadModel::ConstantRate { rate, duration }
            }
            "ramping_rate" => {
                let stages = raw.stages.ok_or(
                    "`ramping_rate` needs `stages = [{ rate = N, duration = \"5s\" }, …]`",
                )?;
                if stages.is_empty() {
                    return Err("`stages` needs at least one stage".into());
                }
                for stage in &stages {
                    check_rate(" in a stage", stage.rate, true)?;
                }
                let total: Duration = stages.iter().map(|s| s.duration).sum();
                bounded(total)?;
                LoadModel::RampingRate {
                    stages: stages.into_iter().map(|s| (s.rate, s.duration)).collect(),
                }
            }
            "constant_concurrency" => {
                let concurrency = raw
                    .concurrency
                    .filter(|c| (1..=MAX_CONCURRENCY).contains(c))
                    .ok_or(format!(
                        "`constant_concurrency` needs `concurrency`, from 1 to {MAX_CONCURRENCY}"
                    ))?;
                if raw.duration.is_none() && raw.iterations.is_none() {
                    return Err(
                        "`constant_concurrency` needs `duration` or `iterations` (or both)".into(),
                    );
                }
                LoadModel::ConstantConcurrency {
                    concurrency,
                    duration: raw.duration.map(bounded).transpose()?,
                }
            }
            other => {
                let hint = crate::diagnostic::did_you_mean(other, MODELS)
                    .map(|s| format!(" (hint: did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown load model `{other}`, expected one of {}{hint}",
                    crate::diagnostic::quoted_list(MODELS)
                ));
            }
        };
        if let Some(n) = raw.iterations
            && (n == 0 || n > MAX_RUNS)
        {
            return Err(format!("`iterations` is from 1 to {MAX_RUNS}"));
        }
        let max_in_flight = raw.max_in_flight.unwrap_or(64);
        if !(1..=MAX_CONCURRENCY).contains(&max_in_flight) {
            return Err(format!(
                "`max_in_flight` is from 1 to {MAX_CONCURRENCY}, got {max_in_flight}"
            ));
        }
        Ok(LoadSpec {
            model,
            max_in_flight,
            iterations: raw.iterations,
        })
    }
}

impl LoadSpec {
    /// The intended start times of an open model's arrivals, since the load began
    /// (bounded by `iterations` and [`MAX_RUNS`]); None for the closed model.
    pub fn schedule(&self) -> Option<Vec<Duration>> {
        let cap = self.iterations.unwrap_or(MAX_RUNS).min(MAX_RUNS) as usize;
        let mut times = Vec::new();
        match &self.model {
            LoadModel::ConstantRate { rate, duration } => {
                let step = 1.0 / rate;
                let mut t = 0.0;
                while t < duration.as_secs_f64() && times.len() < cap {
                    times.push(Duration::from_secs_f64(t));
                    t += step;
                }
            }
            LoadModel::RampingRate { stages } => {
                // Arrival n happens when the integral of the rate reaches n.
                let mut offset: f64 = 0.0;
                let mut from: f64 = 0.0;
                let mut done: f64 = 0.0; // arrivals owed so far (fractional)
                for (to, d) in stages {
                    let secs = d.as_secs_f64();
                    let area = |t: f64| from * t + (to - from) * t * t / (2.0 * secs);
                    let total = area(secs);
                    let mut next = done.floor() + 1.0;
                    while next <= done + total && times.len() < cap {
                        // Solve area(t) = next - done for t in [0, secs] by bisection.
                        let target = next - done;
                        let (mut lo, mut hi) = (0.0, secs);
                        for _ in 0..60 {
                            let mid = (lo + hi) / 2.0;
                            if area(mid) < target {
                                lo = mid
                            } else {
                                hi = mid
                            }
                        }
                        times.push(Duration::from_secs_f64(offset + hi));
                        next += 1.0;
                    }
                    done += total;
                    offset += secs;
                    from = *to;
                }
            }
            LoadModel::ConstantConcurrency { .. } => return None,
        }
        Some(times)
    }

    /// The intended rate of an open model, on average.
    pub fn intended_rate(&self) -> Option<f64> {
        match &self.model {
            LoadModel::ConstantRate { rate, .. } => Some(*rate),
            LoadModel::RampingRate { stages } => {
                let secs: f64 = stages.iter().map(|(_, d)| d.as_secs_f64()).sum();
                self.schedule().map(|t| t.len() as f64 / secs)
            }
            LoadModel::ConstantConcurrency { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(model: LoadModel) -> LoadSpec {
        LoadSpec {
            model,
            max_in_flight: 10,
            iterations: None,
        }
    }

    #[test]
    fn a_constant_rate_spaces_arrivals_evenly() {
        let s = spec(LoadModel::ConstantRate {
            rate: 10.0,
            duration: Duration::from_secs(2),
        });
        let t = s.schedule().unwrap();
        assert_eq!(t.len(), 20);
        assert_eq!(t[1], Duration::from_millis(100));
    }

    #[test]
    fn a_ramp_arrives_as_its_rate_integrates() {
        // 0 → 10/s over 2s: 10 arrivals, denser at the end.
        let s = spec(LoadModel::RampingRate {
            stages: vec![(10.0, Duration::from_secs(2))],
        });
        let t = s.schedule().unwrap();
        assert_eq!(t.len(), 10);
        assert!(t[1] - t[0] > t[9] - t[8], "arrivals speed up");
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert!(*t.last().unwrap() <= Duration::from_secs(2));
    }

    #[test]
    fn iterations_cap_the_schedule() {
        let mut s = spec(LoadModel::ConstantRate {
            rate: 1000.0,
            duration: Duration::from_secs(10),
        });
        s.iterations = Some(7);
        assert_eq!(s.schedule().unwrap().len(), 7);
    }

    // Regression: `rate = inf` was accepted, launched 100,000 arrivals at once and wrote a
    // results.json that failed its own schema (`intended_rate: null`).
    #[test]
    fn rates_are_finite_and_bounded() {
        assert!(check_rate("", 20.0, false).is_ok());
        assert!(check_rate(" in a stage", 0.0, true).is_ok());
        for bad in [f64::INFINITY, f64::NAN, 0.0, -1.0, MAX_RATE * 2.0] {
            let err = check_rate("", bad, false).unwrap_err();
            assert!(
                err.contains("is out of range: arrivals per second"),
                "{err}"
            );
        }
        assert!(check_rate(" in a stage", -0.5, true).is_err());
    }
}
