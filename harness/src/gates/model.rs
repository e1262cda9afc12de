//! The gates file format (`gates.toml`), as serde types validated while they are read, so
//! errors point at the offending value.

use std::time::Duration;

use serde::Deserialize;

pub use crate::compare::Cmp;
use crate::scenario::parse_duration;

/// A gates file: a list of `[[gate]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatesFile {
    /// Whether "every scenario must pass" holds as a critical gate. By default, it is
    /// implied when no `pass_rate` gate looks at all scenarios; `false` drops it, `true`
    /// keeps it next to such a gate.
    #[serde(default)]
    pub every_scenario_must_pass: Option<bool>,
    #[serde(default)]
    pub gate: Vec<Gate>,
}

/// The name of the implied gate in reports.
pub const IMPLIED_GATE: &str = "every scenario passes (implied)";

impl GatesFile {
    /// The gates to evaluate: the file's, and the implied "every scenario must pass"
    /// unless the file covers all scenarios with a pass rate or says otherwise.
    pub fn into_gates(self) -> Vec<Gate> {
        let covered = self.gate.iter().any(|g| {
            g.metric == Metric::PassRate && g.select.tag.is_none() && g.select.folder.is_none()
        });
        let mut gates = self.gate;
        if self.every_scenario_must_pass.unwrap_or(!covered) {
            gates.push(Gate {
                name: IMPLIED_GATE.into(),
                critical: true,
                select: Select::default(),
                metric: Metric::PassRate,
                target: Target {
                    cmp: Cmp::Ge,
                    value: 100.0,
                },
                target_text: ">= 100% (implied: set `every_scenario_must_pass = false` to drop it)"
                    .into(),
            });
        }
        gates
    }
}

/// One quality gate over the run's scenario results.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawGate")]
pub struct Gate {
    pub name: String,
    pub critical: bool,
    pub select: Select,
    pub metric: Metric,
    pub target: Target,
    /// The target as written, for reports.
    pub target_text: String,
}

/// Which scenarios a gate looks at; all when empty.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Select {
    /// Scenarios with this tag.
    pub tag: Option<String>,
    /// Scenarios under this folder (relative to the scenario root, e.g. `refpipe/flow`).
    pub folder: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// Passed (flaky included) over run, in percent; skipped scenarios do not count.
    PassRate,
    /// A percentile (nearest rank) of the scenarios' wall time, in seconds.
    Duration { percentile: f64 },
    /// An aggregate of a number in the targets' output documents (tokens, cost, …).
    Output {
        pointer: String,
        aggregate: Aggregate,
    },
    /// Runs whose expectations held over runs, in percent, counting each run of a load
    /// (a scenario without `[load]` is one run: it passed or not); fails when fewer than
    /// `min_runs` runs were measured.
    SuccessRate { min_runs: u64 },
    /// A percentile of the run latency (end to end) over the selected scenarios, their
    /// histograms merged: every run of a load counts, not just each scenario once.
    Latency { percentile: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Sum,
    Mean,
    Max,
    Min,
}

/// A comparison with a number in the metric's unit (percent, seconds, or plain).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub cmp: Cmp,
    pub value: f64,
}

impl Target {
    pub fn holds(&self, actual: f64) -> bool {
        self.cmp.holds_measured(actual, self.value)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGate {
    name: String,
    #[serde(default = "yes")]
    critical: bool,
    #[serde(default)]
    select: Select,
    metric: String,
    target: String,
    percentile: Option<f64>,
    pointer: Option<String>,
    aggregate: Option<Aggregate>,
    min_runs: Option<u64>,
}

fn yes() -> bool {
    true
}

const METRICS: &[&str] = &["pass_rate", "duration", "output", "success_rate", "latency"];

impl TryFrom<RawGate> for Gate {
    type Error = String;

    fn try_from(raw: RawGate) -> Result<Gate, String> {
        let not_for =
            |key: &str, metric: &str| format!("`{key}` does not apply to `metric = \"{metric}\"`");
        if raw.min_runs.is_some() && raw.metric != "success_rate" {
            return Err(not_for("min_runs", &raw.metric));
        }
        let percentile_of = |p: Option<f64>| {
            let percentile = p.unwrap_or(95.0);
            if 0.0 < percentile && percentile <= 100.0 {
                Ok(percentile)
            } else {
                Err(format!("`percentile = {percentile}` must be in (0, 100]"))
            }
        };
        let metric = match raw.metric.as_str() {
            "success_rate" | "latency" => {
                let metric = raw.metric.as_str();
                for (key, given) in [
                    ("pointer", raw.pointer.is_some()),
                    ("aggregate", raw.aggregate.is_some()),
                    (
                        "percentile",
                        metric == "success_rate" && raw.percentile.is_some(),
                    ),
                ] {
                    if given {
                        return Err(not_for(key, metric));
                    }
                }
                if metric == "latency" {
                    Metric::Latency {
                        percentile: percentile_of(raw.percentile)?,
                    }
                } else {
                    Metric::SuccessRate {
                        min_runs: raw.min_runs.unwrap_or(1),
                    }
                }
            }
            "pass_rate" => {
                for (key, given) in [
                    ("percentile", raw.percentile.is_some()),
                    ("pointer", raw.pointer.is_some()),
                    ("aggregate", raw.aggregate.is_some()),
                ] {
                    if given {
                        return Err(not_for(key, "pass_rate"));
                    }
                }
                Metric::PassRate
            }
            "duration" => {
                if raw.pointer.is_some() || raw.aggregate.is_some() {
                    return Err(not_for(
                        if raw.pointer.is_some() {
                            "pointer"
                        } else {
                            "aggregate"
                        },
                        "duration",
                    ));
                }
                Metric::Duration {
                    percentile: percentile_of(raw.percentile)?,
                }
            }
            "output" => {
                if raw.percentile.is_some() {
                    return Err(not_for("percentile", "output"));
                }
                let pointer = raw.pointer.ok_or(
                    "`metric = \"output\"` needs `pointer`, a JSON pointer into the target's output (e.g. `\"/usage/total_tokens\"`)",
                )?;
                if !pointer.starts_with('/') {
                    return Err(format!(
                        "`pointer = \"{pointer}\"` is not a JSON pointer (hint: it starts with `/`, e.g. `\"/cost_usd\"`)"
                    ));
                }
                Metric::Output {
                    pointer,
                    aggregate: raw.aggregate.unwrap_or(Aggregate::Mean),
                }
            }
            other => {
                let hint = crate::diagnostic::did_you_mean(other, METRICS)
                    .map(|s| format!(" (hint: did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown metric `{other}`, expected one of {}{hint}",
                    crate::diagnostic::quoted_list(METRICS)
                ));
            }
        };
        let target = parse_target(&raw.target, &metric)?;
        Ok(Gate {
            name: raw.name,
            critical: raw.critical,
            select: raw.select,
            metric,
            target,
            target_text: raw.target.trim().to_string(),
        })
    }
}

/// `>= 80%` for pass rates, `< 5s` for durations, `<= 0.05` for output numbers.
fn parse_target(text: &str, metric: &Metric) -> Result<Target, String> {
    let s = text.trim();
    let ops = [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("==", Cmp::Eq),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ];
    let Some((cmp, rest)) = ops
        .iter()
        .find_map(|(t, c)| s.strip_prefix(t).map(|r| (*c, r.trim())))
    else {
        return Err(format!(
            "`{s}` is not a target (hint: a comparison and a value, like `\">= 80%\"`, `\"< 5s\"` or `\"<= 0.05\"`)"
        ));
    };
    let value = match metric {
        Metric::PassRate | Metric::SuccessRate { .. } => {
            let number = rest.strip_suffix('%').ok_or_else(|| {
                format!(
                    "a pass rate target is a percentage: `{s}` (hint: write `\"{cmp} {rest}%\"`)"
                )
            })?;
            let v: f64 = number
                .trim()
                .parse()
                .map_err(|_| format!("`{number}` is not a number"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("a pass rate is between 0% and 100%, not {v}%"));
            }
            v
        }
        Metric::Duration { .. } | Metric::Latency { .. } => {
            parse_duration(rest).map(|d: Duration| d.as_secs_f64())?
        }
        Metric::Output { .. } => rest.parse().map_err(|_| {
            format!(
                "`{rest}` is not a number (an output target is a plain number, e.g. `\"<= 0.05\"`)"
            )
        })?,
    };
    Ok(Target { cmp, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(toml_text: &str) -> Vec<String> {
        let file: GatesFile = toml::from_str(toml_text).unwrap();
        file.into_gates().into_iter().map(|g| g.name).collect()
    }

    #[test]
    fn every_scenario_must_pass_unless_a_gate_covers_all_or_the_file_says_so() {
        // See: issue 10 (a gates file with only a duration gate passed a failing run).
        let duration = "[[gate]]\nname = \"d\"\nmetric = \"duration\"\ntarget = \"< 5s\"\n";
        assert_eq!(names(duration), ["d", IMPLIED_GATE]);
        let folder = "[[gate]]\nname = \"f\"\nmetric = \"pass_rate\"\nselect.folder = \"x\"\ntarget = \">= 90%\"\n";
        assert_eq!(
            names(folder),
            ["f", IMPLIED_GATE],
            "a folder is not all scenarios"
        );
        let all = "[[gate]]\nname = \"a\"\nmetric = \"pass_rate\"\ntarget = \">= 90%\"\n";
        assert_eq!(names(all), ["a"]);
        assert_eq!(
            names(&format!("every_scenario_must_pass = true\n{all}")),
            ["a", IMPLIED_GATE]
        );
        assert_eq!(
            names(&format!("every_scenario_must_pass = false\n{duration}")),
            ["d"]
        );
        assert_eq!(names(""), [IMPLIED_GATE]);
    }

    fn gate(toml_text: &str) -> Result<Gate, String> {
        toml::from_str::<GatesFile>(toml_text)
            .map(|f| f.gate.into_iter().next().unwrap())
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn run_metrics_take_their_own_keys_only() {
        let g = gate("[[gate]]\nname = \"e2e\"\nmetric = \"success_rate\"\nmin_runs = 50\ntarget = \"> 80%\"\n").unwrap();
        assert_eq!(g.metric, Metric::SuccessRate { min_runs: 50 });
        let g = gate(
            "[[gate]]\nname = \"l\"\nmetric = \"latency\"\npercentile = 99\ntarget = \"< 30s\"\n",
        )
        .unwrap();
        assert_eq!(g.metric, Metric::Latency { percentile: 99.0 });
        let e = gate(
            "[[gate]]\nname = \"p\"\nmetric = \"pass_rate\"\nmin_runs = 5\ntarget = \"> 80%\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains("`min_runs` does not apply to `metric = \"pass_rate\"`"),
            "{e}"
        );
        let e = gate(
            "[[gate]]\nname = \"l\"\nmetric = \"latency\"\npointer = \"/x\"\ntarget = \"< 1s\"\n",
        )
        .unwrap_err();
        assert!(e.contains("`pointer` does not apply"), "{e}");
        let e = gate(
            "[[gate]]\nname = \"l\"\nmetric = \"latency\"\npercentile = 0\ntarget = \"< 1s\"\n",
        )
        .unwrap_err();
        assert!(e.contains("(0, 100]"), "{e}");
    }

    #[test]
    fn targets_in_each_unit() {
        let t = parse_target(">= 80%", &Metric::PassRate).unwrap();
        assert_eq!(
            t,
            Target {
                cmp: Cmp::Ge,
                value: 80.0
            }
        );
        assert!(t.holds(80.0) && !t.holds(79.9));
        let t = parse_target("< 500ms", &Metric::Duration { percentile: 95.0 }).unwrap();
        assert_eq!(
            t,
            Target {
                cmp: Cmp::Lt,
                value: 0.5
            }
        );
        let out = Metric::Output {
            pointer: "/cost_usd".into(),
            aggregate: Aggregate::Sum,
        };
        assert_eq!(parse_target("<= 0.05", &out).unwrap().value, 0.05);
        assert!(
            parse_target(">= 80", &Metric::PassRate)
                .unwrap_err()
                .contains("hint")
        );
        assert!(parse_target("80%", &Metric::PassRate).is_err());
        let runs = Metric::SuccessRate { min_runs: 50 };
        assert_eq!(parse_target("> 80%", &runs).unwrap().value, 80.0);
        assert!(
            parse_target("> 0.8", &runs)
                .unwrap_err()
                .contains("percentage")
        );
        let latency = Metric::Latency { percentile: 99.0 };
        assert_eq!(parse_target("< 30s", &latency).unwrap().value, 30.0);
        assert!(parse_target(">= 120%", &Metric::PassRate).is_err());
    }
}
