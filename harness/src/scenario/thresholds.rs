//! Thresholds, in the k6 spirit: a metric (optionally narrowed by a tag), a statistic, a
//! comparison and a limit. A failed threshold fails the scenario and shows the observed
//! value.
//!
//! ```toml
//! [thresholds]
//! "latency" = "p95 < 800ms"                 # end to end, per run
//! "latency{agent=planner}" = "p95 < 200ms"  # the planner's LLM calls, as the stub served them
//! "ttft" = "p95 < 300ms"                    # streamed replies: time to first token
//! "inter_token" = "p99 < 50ms"
//! "executor{name=sandbox}" = "max < 2s"
//! "success_rate" = ">= 99%"                 # runs whose expectations held
//! "peak_rss" = "< 200MB"                    # the target's process tree
//! "rss_growth_per_run" = "< 64KB"           # fitted slope over the runs
//! "tokens_per_run" = "< 4000"
//! "cost_per_run" = "<= 0.002"
//! ```

use std::fmt;

use serde::Deserialize;

use crate::compare::Cmp;

use super::serde_util::parse_duration;

/// One threshold, parsed.
#[derive(Debug, Clone)]
pub struct Threshold {
    /// As written: `latency{agent=planner}: p95 < 800ms`.
    pub text: String,
    pub metric: ThresholdMetric,
    pub cmp: Cmp,
    /// In the metric's unit: seconds, percent, bytes, or a plain number.
    pub limit: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdMetric {
    /// A statistic of a latency histogram.
    Latency {
        of: LatencyOf,
        stat: Stat,
    },
    SuccessRate,
    PeakRss,
    RssGrowthPerRun,
    TokensPerRun,
    CostPerRun,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LatencyOf {
    EndToEnd,
    Agent(String),
    TimeToFirstToken,
    InterToken,
    Executor(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Percentile(f64),
    Max,
    Mean,
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stat::Percentile(p) => write!(f, "p{p}"),
            Stat::Max => f.write_str("max"),
            Stat::Mean => f.write_str("mean"),
        }
    }
}

const METRICS: &[&str] = &[
    "latency",
    "ttft",
    "inter_token",
    "executor",
    "success_rate",
    "peak_rss",
    "rss_growth_per_run",
    "tokens_per_run",
    "cost_per_run",
];

/// `[thresholds]`: keys are metrics, values the conditions.
#[derive(Debug, Clone, Default)]
pub struct Thresholds(pub Vec<Threshold>);

impl<'de> Deserialize<'de> for Thresholds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        map.into_iter()
            .map(|(k, v)| parse(&k, &v))
            .collect::<Result<Vec<_>, _>>()
            .map(Thresholds)
            .map_err(serde::de::Error::custom)
    }
}

fn parse(key: &str, value: &str) -> Result<Threshold, String> {
    let (name, tag) = match key.split_once('{') {
        Some((n, rest)) => {
            let inner = rest
                .strip_suffix('}')
                .ok_or_else(|| format!("`{key}`: a tag is written `{{name=value}}`"))?;
            let (k, v) = inner
                .split_once('=')
                .ok_or_else(|| format!("`{key}`: a tag is written `{{name=value}}`"))?;
            (n.trim(), Some((k.trim().to_string(), v.trim().to_string())))
        }
        None => (key.trim(), None),
    };
    let text = format!("{key}: {}", value.trim());
    let tag_for = |expected: &str| -> Result<Option<String>, String> {
        match &tag {
            None => Ok(None),
            Some((k, v)) if k == expected => Ok(Some(v.clone())),
            Some((k, _)) => Err(format!(
                "`{key}`: `{name}` takes the tag `{expected}`, not `{k}`"
            )),
        }
    };
    let no_tag = || match &tag {
        None => Ok(()),
        Some(_) => Err(format!("`{key}`: `{name}` takes no tag")),
    };
    let latency = |of: LatencyOf| -> Result<Threshold, String> {
        let (stat, rest) = split_stat(value).ok_or_else(|| {
            format!("`{value}` is not a latency condition (hint: a statistic, a comparison and a duration, like `\"p95 < 800ms\"`, `\"max < 2s\"`)")
        })?;
        let (cmp, limit) = Cmp::split(rest)
            .ok_or_else(|| format!("`{value}` lacks a comparison (hint: `\"p95 < 800ms\"`)"))?;
        Ok(Threshold {
            text: text.clone(),
            metric: ThresholdMetric::Latency { of, stat },
            cmp,
            limit: parse_duration(limit)?.as_secs_f64(),
        })
    };
    let plain = |metric: ThresholdMetric, unit: Unit| -> Result<Threshold, String> {
        let (cmp, limit) = Cmp::split(value).ok_or_else(|| {
            format!(
                "`{value}` lacks a comparison (hint: e.g. `\"{}\"`)",
                unit.example()
            )
        })?;
        Ok(Threshold {
            text: text.clone(),
            metric,
            cmp,
            limit: unit.parse(limit)?,
        })
    };
    match name {
        "latency" => latency(match tag_for("agent")? {
            Some(agent) => LatencyOf::Agent(agent),
            None => LatencyOf::EndToEnd,
        }),
        "ttft" => {
            no_tag()?;
            latency(LatencyOf::TimeToFirstToken)
        }
        "inter_token" => {
            no_tag()?;
            latency(LatencyOf::InterToken)
        }
        "executor" => {
            let executor = tag_for("name")?
                .ok_or_else(|| format!("`{key}`: write `executor{{name=NAME}}`"))?;
            latency(LatencyOf::Executor(executor))
        }
        "success_rate" => {
            no_tag()?;
            plain(ThresholdMetric::SuccessRate, Unit::Percent)
        }
        "peak_rss" => {
            no_tag()?;
            plain(ThresholdMetric::PeakRss, Unit::Bytes)
        }
        "rss_growth_per_run" => {
            no_tag()?;
            plain(ThresholdMetric::RssGrowthPerRun, Unit::Bytes)
        }
        "tokens_per_run" => {
            no_tag()?;
            plain(ThresholdMetric::TokensPerRun, Unit::Plain)
        }
        "cost_per_run" => {
            no_tag()?;
            plain(ThresholdMetric::CostPerRun, Unit::Plain)
        }
        other => {
            let hint = crate::diagnostic::did_you_mean(other, METRICS)
                .map(|s| format!(" (hint: did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(format!(
                "unknown threshold metric `{other}`, expected one of {}{hint}",
                crate::diagnostic::quoted_list(METRICS)
            ))
        }
    }
}

fn split_stat(value: &str) -> Option<(Stat, &str)> {
    let v = value.trim();
    if let Some(rest) = v.strip_prefix("max") {
        return Some((Stat::Max, rest));
    }
    if let Some(rest) = v.strip_prefix("mean") {
        return Some((Stat::Mean, rest));
    }
    let rest = v.strip_prefix('p')?;
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let p: f64 = rest[..end].parse().ok()?;
    (p > 0.0 && p <= 100.0).then_some((Stat::Percentile(p), &rest[end..]))
}

#[derive(Clone, Copy)]
enum Unit {
    Percent,
    Bytes,
    Plain,
}

impl Unit {
    fn example(self) -> &'static str {
        match self {
            Unit::Percent => ">= 99%",
            Unit::Bytes => "< 200MB",
            Unit::Plain => "< 4000",
        }
    }

    fn parse(self, s: &str) -> Result<f64, String> {
        let s = s.trim();
        match self {
            Unit::Percent => s
                .strip_suffix('%')
                .and_then(|n| n.trim().parse().ok())
                .ok_or_else(|| format!("`{s}` is not a percentage (hint: `99%`)")),
            Unit::Plain => s.parse().map_err(|_| format!("`{s}` is not a number")),
            Unit::Bytes => parse_bytes(s),
        }
    }
}

/// `200MB`, `64KiB`, `1.5GB`, `4096` (bytes). Decimal units are powers of 1000, binary
/// ones (`KiB`, `MiB`, `GiB`) powers of 1024.
pub fn parse_bytes(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (hint: `200MB`, `64KiB`)"))?;
    let factor = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "`{other}` is not a size unit (hint: B, KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    Ok(n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_in_the_k6_spirit() {
        let t = parse("latency{agent=planner}", "p95 < 800ms").unwrap();
        assert_eq!(
            t.metric,
            ThresholdMetric::Latency {
                of: LatencyOf::Agent("planner".into()),
                stat: Stat::Percentile(95.0)
            }
        );
        assert_eq!((t.cmp, t.limit), (Cmp::Lt, 0.8));
        assert_eq!(
            parse("latency", "p99.9 <= 2s").unwrap().metric,
            ThresholdMetric::Latency {
                of: LatencyOf::EndToEnd,
                stat: Stat::Percentile(99.9)
            }
        );
        assert_eq!(parse("success_rate", ">= 99%").unwrap().limit, 99.0);
        assert_eq!(parse("peak_rss", "< 200MB").unwrap().limit, 200e6);
        assert_eq!(
            parse("rss_growth_per_run", "< 64KiB").unwrap().limit,
            65536.0
        );
        assert!(
            parse("latency", "p95 800ms")
                .unwrap_err()
                .contains("comparison")
        );
        assert!(
            parse("latency{name=x}", "p95 < 1s")
                .unwrap_err()
                .contains("takes the tag `agent`")
        );
        assert!(
            parse("latncy", "p95 < 1s")
                .unwrap_err()
                .contains("did you mean `latency`?")
        );
        assert!(parse("peak_rss", "< 200 furlongs").is_err());
    }
}
