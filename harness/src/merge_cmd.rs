//! `harness report merge DIR…`: one set of reports from the outputs of several shards,
//! with the gates evaluated over all of them. Merging is exact: the merged scenarios are
//! the shards' scenarios, unchanged, in path order (the order an unsharded run reports).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use reports::RunReport;

use crate::exit_codes;
use crate::gates;

pub fn execute(args: &MergeArgs) -> ExitCode {
    let mut shards = Vec::new();
    for dir in &args.dirs {
        match read_results(dir) {
            Ok(report) => shards.push((dir.clone(), report)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit_codes::INVALID_INPUT);
            }
        }
    }
    let merged = match merge(shards) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
    };
    let gates_file = args.gates.clone().or_else(|| {
        Some(PathBuf::from("scenarios").join(gates::GATES_FILE)).filter(|p| p.is_file())
    });
    let gates = match gates_file.as_deref().map(gates::load).transpose() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{}", crate::console::render_load_error(&e));
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
    };
    let (passed, failed, errors, skipped) = merged.counts();
    eprintln!(
        "      Merged {} shard(s): {} scenarios, {passed} passed, {failed} failed, {errors} errors, {skipped} skipped",
        args.dirs.len(),
        merged.scenarios.len()
    );
    crate::run_cmd::finish(merged, gates.as_deref(), &args.out)
}

fn read_results(dir: &Path) -> Result<RunReport, String> {
    let path = dir.join(reports::RESULTS_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let results: reports::json::Results<'static> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "`{}` is not a results.json this harness reads: {e}",
            path.display()
        )
    })?;
    if results.schema_version != reports::json::SCHEMA_VERSION {
        return Err(format!(
            "`{}` has schema version {}, this harness writes {} (hint: merge shards made by the same harness version)",
            path.display(),
            results.schema_version,
            reports::json::SCHEMA_VERSION
        ));
    }
    Ok(results.report.into_owned())
}

/// Concatenates the shards' scenarios (each must appear once), sorted by path; the run
/// took as long as its slowest shard and started with its earliest.
fn merge(shards: Vec<(PathBuf, RunReport)>) -> Result<RunReport, String> {
    let mut iter = shards.into_iter();
    let (first_dir, mut merged) = iter.next().ok_or("no shard to merge")?;
    let mut owner: std::collections::HashMap<String, PathBuf> = merged
        .scenarios
        .iter()
        .map(|s| (s.path.clone(), first_dir.clone()))
        .collect();
    for (dir, shard) in iter {
        if shard.seed != merged.seed {
            eprintln!(
                "warning: `{}` ran with seed {}, the first shard with {}; scenario seeds differ between shards",
                dir.display(),
                shard.seed,
                merged.seed
            );
        }
        for s in &shard.scenarios {
            if let Some(other) = owner.insert(s.path.clone(), dir.clone()) {
                return Err(format!(
                    "scenario `{}` is in both `{}` and `{}` (hint: merge the outputs of distinct shards, hash:1/N … hash:N/N)",
                    s.path,
                    other.display(),
                    dir.display()
                ));
            }
        }
        merged.scenarios.extend(shard.scenarios);
        merged.duration = merged.duration.max(shard.duration);
        merged.started_at = merged.started_at.min(shard.started_at);
        merged.interrupted |= shard.interrupted;
    }
    merged.scenarios.sort_by(|a, b| a.path.cmp(&b.path));
    merged.partition = None;
    merged.gates.clear();
    Ok(merged)
}

/// `harness report merge`: the shards' folders, where to write, which gates.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The shards' output folders (each with a results.json).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged reports.
    #[arg(long, default_value = "target/harness")]
    pub out: PathBuf,
    /// The gates to evaluate over the merged results [default: scenarios/gates.toml, when
    /// it exists].
    #[arg(long)]
    pub gates: Option<PathBuf>,
}
