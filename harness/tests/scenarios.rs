//! Every scenario as a test (libtest-mimic), under `cargo test` and nextest alike:
//!
//! - `bundled::…`: each scenario in `scenarios/` must pass against its target (refpipe);
//! - `must_fail::…`: each fixture in `tests/fixtures/must_fail/` must fail, with the kind
//!   and the explanation its `.expected` file declares (expected outcomes as data);
//! - `diagnostics::…`: each file in `tests/fixtures/invalid/` must be rejected with exactly
//!   the text of its `.err` golden file (`HARNESS_BLESS=1` rewrites them).
//!
//! Scenario seeds derive from `HARNESS_SEED` (default 42), so a failure replays exactly.

use std::path::{Path, PathBuf};

use harness::plan::{Selection, plan};
use harness::runner::{Planned, run_scenario};
use libtest_mimic::{Arguments, Failed, Trial};
use reports::Outcome;

fn main() {
    let args = Arguments::from_args();
    // cargo and nextest run integration tests from the package root.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seed = std::env::var("HARNESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    let mut trials = Vec::new();
    trials.extend(planned_trials(
        "bundled",
        &manifest.join("../scenarios"),
        seed,
        check_passes,
    ));
    trials.extend(planned_trials(
        "must_fail",
        &manifest.join("tests/fixtures/must_fail"),
        seed,
        check_fails_as_declared,
    ));
    trials.extend(diagnostic_trials(Path::new("tests/fixtures/invalid")));
    libtest_mimic::run(&args, trials).exit();
}

fn trial_name(prefix: &str, id: &str) -> String {
    format!(
        "{prefix}::{}",
        id.replacen(".toml[", "[", 1)
            .trim_end_matches(".toml")
            .replace('/', "::")
    )
}

fn planned_trials(
    prefix: &'static str,
    dir: &Path,
    seed: u64,
    check: fn(&Planned) -> Result<(), Failed>,
) -> Vec<Trial> {
    let selection = Selection {
        paths: vec![dir.to_path_buf()],
        ..Selection::default()
    };
    match plan(&selection, seed) {
        Ok(plan) => plan
            .scenarios
            .into_iter()
            .map(|p| {
                Trial::test(trial_name(prefix, &p.scenario.id.to_string()), move || {
                    check(&p)
                })
            })
            .collect(),
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            vec![Trial::test(format!("{prefix}::load"), move || {
                Err(text.join("\n\n").into())
            })]
        }
    }
}

fn run(p: &Planned) -> reports::ScenarioResult {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(run_scenario(p))
}

fn check_passes(p: &Planned) -> Result<(), Failed> {
    let result = run(p);
    if result.outcome == Outcome::Passed {
        Ok(())
    } else {
        Err(harness::console::explain(&result).into())
    }
}

/// The `.expected` file next to the scenario: `kind: K`, then lines the explanation must
/// contain.
fn check_fails_as_declared(p: &Planned) -> Result<(), Failed> {
    let expected_file = p.scenario.file_path.with_extension("expected");
    let expected = std::fs::read_to_string(&expected_file)
        .map_err(|e| format!("cannot read `{}`: {e}", expected_file.display()))?;
    let mut lines = expected
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let kind = lines
        .next()
        .and_then(|l| l.strip_prefix("kind: "))
        .ok_or("the .expected file must start with `kind: …`")?;
    let result = run(p);
    let explanation = harness::console::explain(&result);
    if result.outcome != Outcome::Failed {
        return Err(format!(
            "expected this scenario to fail, but it was {:?}:\n{explanation}",
            result.outcome
        )
        .into());
    }
    if result.failures.first().map(|f| f.kind.as_str()) != Some(kind) {
        return Err(
            format!("expected the first failure to be of kind `{kind}`:\n{explanation}").into(),
        );
    }
    for needle in lines {
        if !explanation.contains(needle) {
            return Err(format!("the explanation lacks `{needle}`:\n{explanation}").into());
        }
    }
    Ok(())
}

fn diagnostic_trials(dir: &Path) -> Vec<Trial> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "toml"));
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let name = format!(
                "diagnostics::{}",
                file.file_stem().unwrap_or_default().to_string_lossy()
            );
            Trial::test(name, move || check_diagnostic(&file))
        })
        .collect()
}

fn check_diagnostic(file: &Path) -> Result<(), Failed> {
    let selection = Selection {
        paths: vec![file.to_path_buf()],
        ..Selection::default()
    };
    let errors = match plan(&selection, 0) {
        Ok(_) => return Err("expected this file to be rejected, but it loaded".into()),
        Err(errors) => errors,
    };
    let rendered: Vec<String> = errors
        .iter()
        .map(harness::console::render_load_error)
        .collect();
    let actual = format!("{}\n", rendered.join("\n\n"));
    let golden = file.with_extension("err");
    if std::env::var_os("HARNESS_BLESS").is_some() {
        std::fs::write(&golden, &actual).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(&golden).map_err(|e| {
        format!(
            "cannot read `{}` ({e}); run with HARNESS_BLESS=1 to create it",
            golden.display()
        )
    })?;
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "the diagnostic differs from `{}`:\n--- expected\n{expected}--- actual\n{actual}",
            golden.display()
        )
        .into())
    }
}
