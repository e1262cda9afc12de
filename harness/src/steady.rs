//! Steady-state probes, as Chaos Toolkit has them: checks that the system is healthy
//! before the faults (so a failure is not blamed on a system that was already down) and
//! after them (so recovery is shown, not assumed).
//!
//! ```toml
//! [[steady_state]]
//! name = "service healthy"
//! get = "/health"        # relative to an http target's base URL, or an absolute loopback URL
//! status = 200           # the default
//! contains = "ok"        # optional: text the body must contain
//! ```

use std::time::Duration;

use serde::Deserialize;

/// One probe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub name: String,
    /// A path (for an `http` target: relative to its base URL) or an absolute URL.
    pub get: String,
    #[serde(default = "ok")]
    pub status: u16,
    pub contains: Option<String>,
}

fn ok() -> u16 {
    200
}

/// When a probe ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Before,
    After,
}

/// A probe that did not hold.
#[derive(Debug, Clone)]
pub struct ProbeFailure {
    pub phase: Phase,
    pub name: String,
    pub why: String,
}

/// Runs every probe against `base` (for relative paths); the ones that failed.
pub async fn check(probes: &[Probe], base: Option<&str>, phase: Phase) -> Vec<ProbeFailure> {
    let client = reqwest::Client::new();
    let mut failed = Vec::new();
    for p in probes {
        let url = if p.get.starts_with("http://") || p.get.starts_with("https://") {
            p.get.clone()
        } else if let Some(base) = base {
            format!("{}{}", base.trim_end_matches('/'), p.get)
        } else {
            failed.push(ProbeFailure {
                phase,
                name: p.name.clone(),
                why: format!("`{}` is relative, and this target has no base URL (hint: give an absolute URL)", p.get),
            });
            continue;
        };
        let why = match client
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Err(e) => Some(format!("GET {url} failed: {e}")),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                if status != p.status {
                    Some(format!(
                        "GET {url} answered {status}, expected {}",
                        p.status
                    ))
                } else {
                    p.contains
                        .as_ref()
                        .filter(|t| !body.contains(t.as_str()))
                        .map(|text| format!("GET {url}: the body lacks `{text}`"))
                }
            }
        };
        if let Some(why) = why {
            failed.push(ProbeFailure {
                phase,
                name: p.name.clone(),
                why,
            });
        }
    }
    failed
}
