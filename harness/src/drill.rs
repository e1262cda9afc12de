//! Chaos drills: a file that says which chaos scenarios to run against which target, which
//! hosts beyond loopback they may reach, and when to stop. `cargo xtask chaos` runs one;
//! `--dry-run` prints the plan (every fault, every host) and runs nothing.
//!
//! ```toml
//! name = "refpipe resilience drill"
//! scenarios = ["."]              # files or folders, relative to this file
//! target = "refpipe"             # every scenario against this target (optional)
//! allow_hosts = []               # hosts other than loopback the drill may reach
//!
//! [abort]                        # stop injecting and roll back when…
//! error_rate = 0.5               # …more than half of the finished scenarios failed,
//! min_scenarios = 3              # …once at least three have finished
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::Diagnostic;
use crate::errors::LoadError;
use crate::runner::{AbortRule, Planned};
use crate::scenario::{FaultPoint, FaultSpec, ProcessFaultSpec, ScheduleSpec};

/// The name a drill file has inside a scenario folder (it is not a scenario).
pub const DRILL_FILE: &str = "drill.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    pub name: String,
    pub scenarios: Vec<PathBuf>,
    pub target: Option<String>,
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    pub abort: Option<AbortSpec>,
    /// The drill file's folder; scenario paths are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortSpec {
    pub error_rate: f64,
    #[serde(default = "one")]
    pub min_scenarios: usize,
}

fn one() -> usize {
    1
}

impl Drill {
    pub fn load(path: &Path) -> Result<Drill, LoadError> {
        let source = crate::source::read(path)?;
        let shown = path.display().to_string();
        let mut drill: Drill = toml::from_str(&source).map_err(|e| {
            LoadError::Invalid(Box::new(Diagnostic::from_toml(&shown, &source, &e)))
        })?;
        if let Some(a) = drill.abort
            && !(0.0..=1.0).contains(&a.error_rate)
        {
            let at = source.find("error_rate").unwrap_or(0);
            return Err(LoadError::Invalid(Box::new(Diagnostic {
                path: shown,
                source: source.clone(),
                span: at..at + "error_rate".len(),
                message: format!(
                    "`error_rate = {}` is a fraction of the scenarios",
                    a.error_rate
                ),
                label: "here".into(),
                help: Some("write a number from 0 to 1, e.g. `0.5` for half".into()),
            })));
        }
        drill.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(drill)
    }

    /// The scenario paths, resolved against the drill file's folder.
    pub fn scenario_paths(&self) -> Vec<PathBuf> {
        self.scenarios
            .iter()
            .map(|p| {
                if p.is_absolute() {
                    p.clone()
                } else {
                    self.dir.join(p)
                }
            })
            .collect()
    }

    pub fn abort_rule(&self) -> Option<AbortRule> {
        self.abort.map(|a| AbortRule {
            error_rate: a.error_rate,
            min_scenarios: a.min_scenarios,
        })
    }
}

/// The plan of a drill, as `--dry-run` prints it: each scenario, its target, every fault
/// it injects and everything it reaches.
pub fn describe(drill: &Drill, planned: &[Planned]) -> String {
    let mut out = format!("drill `{}`: {} scenario(s)\n", drill.name, planned.len());
    if let Some(a) = drill.abort {
        out.push_str(&format!(
            "  abort when more than {:.0}% of finished scenarios failed (after {} finished); the running ones are stopped and their faults rolled back\n",
            a.error_rate * 100.0,
            a.min_scenarios
        ));
    }
    out.push_str(&format!(
        "  reaches: loopback{}\n",
        if drill.allow_hosts.is_empty() {
            " only".to_string()
        } else {
            format!(", and {}", drill.allow_hosts.join(", "))
        }
    ));
    for p in planned {
        let s = &p.scenario.spec;
        out.push_str(&format!(
            "\n  {} — {}\n    target `{}`, seed {}\n",
            p.scenario.id,
            s.name,
            p.scenario.target_name(),
            p.seed
        ));
        // What the network policy judged, as it judged it.
        for reach in crate::netpolicy::reached(&p.scenario, &p.target) {
            out.push_str(&format!(
                "    reaches {} via {}\n",
                reach.address, reach.what
            ));
        }
        for (i, c) in s.chaos.iter().enumerate() {
            let fault = describe_fault(&c.fault);
            let when = match c.schedule {
                ScheduleSpec::Always => "every matching call".to_string(),
                ScheduleSpec::First(n) => format!("the first {n} matching call(s)"),
                ScheduleSpec::EveryNth(n) => format!("every {n}th matching call"),
                ScheduleSpec::Probability(p) => format!("matching calls with p={p}"),
            };
            let filter = [
                c.when.agent.as_ref().map(|a| format!("agent {a}")),
                c.when.provider.as_ref().map(|p| format!("provider {p}")),
                c.when.model.as_ref().map(|m| format!("model {m}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
            let filter = if filter.is_empty() {
                String::new()
            } else {
                format!(" ({filter})")
            };
            let point = match &c.at {
                FaultPoint::Llm => "the LLM stub".to_string(),
                FaultPoint::Executor(name) => format!("executor `{name}`"),
            };
            let window = match c.window {
                None => String::new(),
                Some((after, None)) => format!(", from +{}", humantime::format_duration(after)),
                Some((after, Some(until))) => format!(
                    ", between +{} and +{}",
                    humantime::format_duration(after),
                    humantime::format_duration(until)
                ),
            };
            out.push_str(&format!(
                "    chaos[{}] at {point}{filter}: {fault}, {when}{window}\n",
                i + 1
            ));
        }
        for proxy in &s.proxy {
            let toxics: Vec<String> = proxy.toxics.iter().map(|t| t.label()).collect();
            out.push_str(&format!(
                "    proxy `{}` → {}: {}\n",
                proxy.name,
                proxy.upstream,
                if toxics.is_empty() {
                    "no toxics".into()
                } else {
                    toxics.join("; ")
                }
            ));
        }
        for f in &s.process {
            let text = match f {
                ProcessFaultSpec::Kill {
                    at,
                    signal,
                    restart,
                } => format!(
                    "{signal} to the target's process group at +{}{}",
                    humantime::format_duration(*at),
                    if *restart {
                        ", then start it again"
                    } else {
                        ""
                    }
                ),
                ProcessFaultSpec::Pause { at, duration } => format!(
                    "pause the target's process group at +{} for {}",
                    humantime::format_duration(*at),
                    humantime::format_duration(*duration)
                ),
                ProcessFaultSpec::MemoryLimit { bytes } => {
                    format!("address space limit {bytes} bytes")
                }
                ProcessFaultSpec::FileSizeLimit { bytes } => {
                    format!("file size limit {bytes} bytes")
                }
                ProcessFaultSpec::DiskFull { path } => {
                    format!("{{scratch}}/{path} is a full disk (ENOSPC)")
                }
                ProcessFaultSpec::CpuHog {
                    at,
                    duration,
                    threads,
                } => format!(
                    "{threads} busy thread(s) at +{} for {}",
                    humantime::format_duration(*at),
                    humantime::format_duration(*duration)
                ),
                ProcessFaultSpec::KillDescendant {
                    descendant,
                    at,
                    signal,
                } => format!(
                    "{signal} to the target's processes matching `{descendant}` at +{}",
                    humantime::format_duration(*at)
                ),
                ProcessFaultSpec::KillService {
                    service,
                    at,
                    signal,
                    restart,
                } => format!(
                    "{signal} to service `{service}` at +{}{}",
                    humantime::format_duration(*at),
                    match restart {
                        Some(after) => format!(
                            ", started again {} later",
                            humantime::format_duration(*after)
                        ),
                        None => String::new(),
                    }
                ),
                ProcessFaultSpec::PauseService {
                    service,
                    at,
                    duration,
                } => format!(
                    "pause service `{service}` at +{} for {}",
                    humantime::format_duration(*at),
                    humantime::format_duration(*duration)
                ),
            };
            out.push_str(&format!("    process: {text}\n"));
        }
        if s.chaos.is_empty() && s.proxy.is_empty() && s.process.is_empty() {
            out.push_str("    no faults (scripted replies only)\n");
        }
    }
    out
}

fn describe_fault(fault: &FaultSpec) -> String {
    let d = |d: &std::time::Duration| humantime::format_duration(*d).to_string();
    match fault {
        FaultSpec::Status {
            status,
            retry_after: Some(r),
            ..
        } => format!("HTTP {status} with Retry-After {}", d(r)),
        FaultSpec::Status { status, .. } => format!("HTTP {status}"),
        FaultSpec::Delay(x) => format!("delay {}", d(x)),
        FaultSpec::DelayUniform(a, b) => format!("delay uniform in {}..{}", d(a), d(b)),
        FaultSpec::DelayLogNormal { median, sigma } => {
            format!("delay lognormal, median {}, sigma {sigma}", d(median))
        }
        FaultSpec::MalformedJson => "malformed JSON".into(),
        FaultSpec::EmptyBody => "empty body".into(),
        FaultSpec::Hang => "no answer until the client gives up".into(),
        FaultSpec::TruncateFraction(x) => format!("body cut at {:.0}%", x * 100.0),
        FaultSpec::TruncateBytes(n) => format!("body cut after {n} bytes"),
        FaultSpec::Reset { after_bytes: None } => "connection reset before the response".into(),
        FaultSpec::Reset {
            after_bytes: Some(n),
        } => format!("connection reset after {n} bytes"),
        FaultSpec::StreamPace { first_token, gap } => {
            format!(
                "stream paced: first token after {}, then one chunk every {}",
                d(first_token),
                d(gap)
            )
        }
        FaultSpec::StreamStall {
            after_chunks,
            stall,
        } => format!("stream stalls {} after {after_chunks} chunks", d(stall)),
        FaultSpec::StreamCut { after_chunks } => {
            format!("stream cut mid-event after {after_chunks} chunks")
        }
    }
}
