//! From command-line paths to planned scenarios: discover, load and validate every file,
//! apply the filters, resolve each scenario's target and choose its seed. Every invalid
//! file is reported, not just the first.

use std::path::PathBuf;
use std::sync::Arc;

use crate::errors::LoadError;
use crate::scenario::{self, Scenario, ScenarioId};
use crate::target::{TargetSpec, Targets};

/// Which scenarios to plan.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub paths: Vec<PathBuf>,
    /// Keep scenarios whose id or name contains this.
    pub filter: Option<String>,
    /// Keep scenarios with any of these tags (all when empty).
    pub tags: Vec<String>,
    /// Keep only this shard.
    pub partition: Option<Partition>,
    /// Run every scenario against this target instead of the one it names.
    pub target: Option<String>,
    /// Environment set for every target, last (over the target's and the scenario's).
    pub env: Vec<(String, String)>,
    /// Hosts other than loopback that scenarios may reach (a drill's allowlist); empty:
    /// loopback only.
    pub allow_hosts: Vec<String>,
}

/// Shard `k` of `n` (1-based): a scenario belongs to the shard its path hashes to, so a
/// scenario's shard never changes when others are added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub k: u32,
    pub n: u32,
}

impl Partition {
    /// Parses `hash:K/N`.
    pub fn parse(s: &str) -> Result<Partition, String> {
        let usage = || {
            format!(
                "`{s}` is not a partition (hint: write `hash:K/N` with 1 <= K <= N, e.g. `hash:1/3`)"
            )
        };
        let rest = s.strip_prefix("hash:").ok_or_else(usage)?;
        let (k, n) = rest.split_once('/').ok_or_else(usage)?;
        let (k, n): (u32, u32) = (
            k.parse().map_err(|_| usage())?,
            n.parse().map_err(|_| usage())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(usage());
        }
        Ok(Partition { k, n })
    }

    /// Whether the scenario with this id belongs to this shard (its stable hash, mod N).
    pub fn contains(&self, id: &ScenarioId) -> bool {
        id.stable_hash() % u64::from(self.n) == u64::from(self.k - 1)
    }
}

/// FNV-1a of a text, the hash of scenario ids ([`ScenarioId::stable_hash`]): stable
/// across runs, builds and Rust versions.
pub(crate) fn id_hash(text: &str) -> u64 {
    crate::scenario::fnv1a(text)
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "hash:{}/{}", self.k, self.n)
    }
}

/// The planned scenarios and how many the filters and the partition left out.
#[derive(Debug)]
pub struct Plan {
    pub scenarios: Vec<Planned>,
    pub filtered_out: usize,
    pub other_shards: usize,
}

pub fn plan(selection: &Selection, run_seed: u64) -> Result<Plan, Vec<LoadError>> {
    let files = scenario::discover(&selection.paths).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut loaded: Vec<Scenario> = Vec::new();
    for (root, file) in &files {
        match scenario::load(root, file) {
            Ok(s) => loaded.extend(s),
            Err(e) => errors.push(e),
        }
    }
    let mut targets = Targets::default();
    let mut scenarios = Vec::new();
    let mut filtered_out = 0;
    let mut other_shards = 0;
    for s in loaded {
        let by_text = selection.filter.as_ref().is_none_or(|f| {
            s.id.to_string().contains(f.as_str()) || s.spec.name.contains(f.as_str())
        });
        let by_tag =
            selection.tags.is_empty() || s.spec.tags.iter().any(|t| selection.tags.contains(t));
        if !(by_text && by_tag) {
            filtered_out += 1;
            continue;
        }
        if selection.partition.is_some_and(|p| !p.contains(&s.id)) {
            other_shards += 1;
            continue;
        }
        let resolved = match &selection.target {
            Some(name) => targets.resolve(name, &s.dir).map(|t| (name.clone(), t)),
            None => match &s.spec.target {
                Some(name) => targets
                    .resolve(name.get_ref(), &s.dir)
                    .map(|t| (name.get_ref().clone(), t)),
                None => targets.folder_default(&s.dir, &s.file_path),
            },
        };
        match resolved {
            Ok((name, target)) => {
                let seed = scenario_seed(run_seed, &s);
                let mut s = s;
                s.spec.target = Some(toml::Spanned::new(0..0, name));
                if let Err(e) = check_steps(&s, &target) {
                    errors.push(e);
                    continue;
                }
                if let Err(e) = crate::netpolicy::check(&s, &target, &selection.allow_hosts) {
                    errors.push(e);
                    continue;
                }
                scenarios.push(Planned {
                    scenario: Arc::new(s),
                    target,
                    seed,
                    allow_hosts: selection.allow_hosts.clone().into(),
                    env: selection.env.clone().into(),
                });
            }
            Err(e) => errors.push(positioned_target_error(e, &s, selection.target.is_some())),
        }
    }
    // In the order of their ids' text, which is also the order `report merge` gives shards.
    scenarios.sort_by_cached_key(|p| p.scenario.id.to_string());
    if errors.is_empty() {
        Ok(Plan {
            scenarios,
            filtered_out,
            other_shards,
        })
    } else {
        Err(errors)
    }
}

/// An unknown target the scenario file itself names, as a diagnostic at the name: the
/// file is read again for its text, and the span is used only where the file says
/// `target =` just before it (a name from `--target` or a `defaults.toml` keeps the plain
/// error).
fn positioned_target_error(e: LoadError, s: &Scenario, from_cli: bool) -> LoadError {
    let (LoadError::UnknownTarget { name, known, .. }, false, Some(spanned)) =
        (&e, from_cli, s.spec.target.as_ref())
    else {
        return e;
    };
    let Ok(source) = crate::source::read(&s.file_path) else {
        return e;
    };
    // The span is this file's only if the text before it is this file's `target =`.
    let span = spanned.span();
    let is_target_value = !span.is_empty()
        && source
            .get(..span.start)
            .and_then(|before| before.trim_end().strip_suffix('='))
            .is_some_and(|before| before.trim_end().ends_with("target"));
    if !is_target_value {
        return e;
    }
    let names: Vec<&str> = known.split(", ").map(|k| k.trim_matches('`')).collect();
    let help = match crate::diagnostic::did_you_mean(name, &names) {
        Some(near) => format!("did you mean `{near}`? (known: {known})"),
        None => format!(
            "define it in a `targets.toml` next to the scenario or in a folder above it (known: {known})"
        ),
    };
    LoadError::Invalid(Box::new(crate::diagnostic::Diagnostic {
        path: s.file_path.display().to_string(),
        source,
        span,
        message: format!("unknown target `{name}`"),
        label: "no target of this name".into(),
        help: Some(help),
    }))
}

/// `[[step]]`s talk to an `http` target's service, one run at a time.
fn check_steps(s: &Scenario, target: &crate::target::TargetSpec) -> Result<(), LoadError> {
    if s.spec.step.is_empty() {
        return Ok(());
    }
    let problem = if target.kind != crate::target::TargetKind::Http {
        (
            format!(
                "need an `http` target, and `{}` is `{}`",
                s.target_name(),
                target.kind_name()
            ),
            "run it against a target of `kind = \"http\"`".to_string(),
        )
    } else if s.spec.load.is_some() {
        (
            "do not run under `[load]`".to_string(),
            "put the load in a scenario of its own, with the target's submit-and-poll".to_string(),
        )
    } else {
        return Ok(());
    };
    Err(LoadError::Steps {
        scenario: s.file_path.clone(),
        problem: problem.0,
        hint: problem.1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_and_split_every_id_into_exactly_one_shard() {
        assert_eq!(Partition::parse("hash:2/3"), Ok(Partition { k: 2, n: 3 }));
        for bad in ["hash:0/3", "hash:4/3", "count:1/2", "hash:1", "hash:a/b"] {
            assert!(Partition::parse(bad).unwrap_err().contains("hint"), "{bad}");
        }
        let shards: Vec<Partition> = (1..=3).map(|k| Partition { k, n: 3 }).collect();
        let mut sizes = [0; 3];
        for i in 0..300 {
            let id = ScenarioId::new(format!("suite/scenario_{i}.toml"), Vec::new());
            let owners: Vec<usize> = (0..3).filter(|&s| shards[s].contains(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            sizes[owners[0]] += 1;
        }
        assert!(
            sizes.iter().all(|&n| n > 50),
            "the hash spreads ids: {sizes:?}"
        );
    }
}

/// A scenario ready to run: its target resolved and its seed chosen.
#[derive(Debug, Clone)]
pub struct Planned {
    pub scenario: Arc<Scenario>,
    pub target: TargetSpec,
    pub seed: u64,
    /// Non-loopback hosts this scenario may reach (checked when it was planned).
    pub allow_hosts: Arc<[String]>,
    /// Environment forced on the target (`--env`), after everything else.
    pub env: Arc<[(String, String)]>,
}

/// The seed of one scenario: its own `seed` if the file fixes one, else one derived from
/// the run's seed and the scenario's id (so adding a scenario changes no other's seed).
pub fn scenario_seed(run_seed: u64, scenario: &Scenario) -> u64 {
    if let Some(seed) = scenario.spec.seed {
        return seed;
    }
    // The id's stable hash, then a splitmix64 finaliser.
    let mut z = run_seed ^ scenario.id.stable_hash();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}
