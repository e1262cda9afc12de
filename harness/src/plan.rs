//! From command-line paths to planned scenarios: discover, load and validate every file,
//! apply the filters, resolve each scenario's target and choose its seed. Every invalid
//! file is reported, not just the first.

use std::path::PathBuf;
use std::sync::Arc;

use crate::errors::LoadError;
use crate::runner::{Planned, scenario_seed};
use crate::scenario::{self, Scenario};
use crate::target::Targets;

/// Which scenarios to plan.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub paths: Vec<PathBuf>,
    /// Keep scenarios whose id or name contains this.
    pub filter: Option<String>,
    /// Keep scenarios with any of these tags (all when empty).
    pub tags: Vec<String>,
}

/// The planned scenarios and how many the filters left out.
#[derive(Debug)]
pub struct Plan {
    pub scenarios: Vec<Planned>,
    pub filtered_out: usize,
}

pub fn plan(selection: &Selection, run_seed: u64) -> Result<Plan, Vec<LoadError>> {
    let files = scenario::discover(&selection.paths).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut loaded: Vec<Scenario> = Vec::new();
    for (root, file) in &files {
        match scenario::load(root, file) {
            Ok(s) => loaded.push(s),
            Err(e) => errors.push(e),
        }
    }
    let mut targets = Targets::default();
    let mut scenarios = Vec::new();
    let mut filtered_out = 0;
    for s in loaded {
        let by_text = selection
            .filter
            .as_ref()
            .is_none_or(|f| s.id.contains(f.as_str()) || s.spec.name.contains(f.as_str()));
        let by_tag =
            selection.tags.is_empty() || s.spec.tags.iter().any(|t| selection.tags.contains(t));
        if !(by_text && by_tag) {
            filtered_out += 1;
            continue;
        }
        match targets.resolve(s.target_name(), &s.file_path) {
            Ok(target) => {
                let seed = scenario_seed(run_seed, &s);
                scenarios.push(Planned {
                    scenario: Arc::new(s),
                    target,
                    seed,
                });
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(Plan {
            scenarios,
            filtered_out,
        })
    } else {
        Err(errors)
    }
}
