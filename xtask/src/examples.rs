//! `cargo xtask examples`: the example pipelines under `examples/`, each against its own
//! scenario pack and gates, and then each fragile build against the pack's `resilience`
//! scenarios: every one of them must fail, and its explanation must name the resilience
//! that was switched off (`fragile mode: …`). A pack that passes against a pipeline without
//! its resilience does not test that resilience.
//!
//! ```text
//! cargo xtask examples                  # every example, then every fragile build
//! cargo xtask examples asset3d          # one example
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use harness::exit_codes;
use serde_json::Value;

/// One example: its folder under `examples/`, the target its pack runs against, and the
/// switch that removes its resilience.
struct Example {
    name: &'static str,
    /// The target (from the example's targets.toml) the pack runs against in CI; `None`:
    /// the one each scenario (or its folder's defaults.toml) names.
    target: Option<&'static str>,
    /// `KEY=VALUE` for `--env`: the pipeline without its resilience.
    fragile: Option<&'static str>,
    /// Python modules the pipeline imports: checked first, so that a missing package is
    /// one clear error rather than a failed scenario per file.
    imports: &'static str,
}

const EXAMPLES: &[Example] = &[
    Example {
        name: "pypipe",
        target: Some("pypipe-worker"),
        fragile: None,
        imports: "openai, httpx",
    },
    Example {
        name: "asset3d",
        target: None,
        fragile: Some("ASSET3D_FRAGILE=1"),
        imports: "openai, httpx",
    },
    Example {
        name: "qa_orchestrator",
        target: None,
        fragile: Some("QA_FRAGILE=1"),
        imports: "langchain_openai, langchain_anthropic, langchain_core",
    },
    Example {
        name: "workflows",
        target: None,
        fragile: Some("AGENTFLOW_FRAGILE=1"),
        imports: "openai, httpx, redis",
    },
    Example {
        name: "execapi",
        target: None,
        fragile: Some("EXECAPI_FRAGILE=1"),
        imports: "openai, httpx, sqlite3",
    },
    Example {
        name: "webtestgen",
        target: None,
        fragile: Some("WEBTESTGEN_FRAGILE=1"),
        imports: "openai, redis, setproctitle",
    },
];

#[derive(Debug, clap::Args)]
pub struct Examples {
    /// Only these examples (folder names under `examples/`); default: all of them.
    names: Vec<String>,
    /// Scenarios at once, per pack.
    #[arg(short, long, default_value_t = 2)]
    jobs: usize,
    /// Where the reports go: one folder per pack.
    #[arg(long, default_value = "target/examples")]
    out: PathBuf,
}

/// What one pack run came to.
struct PackRun {
    exit: Option<i32>,
    wall: Duration,
    results: Option<Value>,
}

impl Examples {
    pub fn run(self) -> ExitCode {
        if let Err(code) = crate::gate::prepare() {
            return code;
        }
        let harness = match build_harness() {
            Ok(path) => path,
            Err(code) => return code,
        };
        let selected: Vec<&Example> = EXAMPLES
            .iter()
            .filter(|e| self.names.is_empty() || self.names.iter().any(|n| n == e.name))
            .collect();
        if let Some(unknown) = self
            .names
            .iter()
            .find(|n| !EXAMPLES.iter().any(|e| e.name == n.as_str()))
        {
            let known: Vec<&str> = EXAMPLES.iter().map(|e| e.name).collect();
            eprintln!(
                "error: no example `{unknown}` (hint: one of {})",
                known.join(", ")
            );
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
        for example in &selected {
            if let Err(code) = check_imports(example) {
                return code;
            }
        }

        let mut problems = Vec::new();
        let mut lines = Vec::new();
        for example in &selected {
            let pack = Path::new("examples").join(example.name).join("scenarios");
            let out = self.out.join(example.name);
            eprintln!("    Running {} ({})", pack.display(), target_name(example));
            let run = run_pack(&harness, &pack, example.target, &[], self.jobs, &out);
            let (total, passed) = counts(run.results.as_ref());
            if run.exit != Some(0) {
                problems.push(format!(
                    "{}: the pack did not pass (exit {}; see {})",
                    example.name,
                    run.exit.map_or("none".into(), |c| c.to_string()),
                    out.join("summary.md").display()
                ));
            }
            let mut line = format!(
                "{:<16} {:>3} scenarios, {:>3} passed, {:>6.1}s at --jobs {}",
                example.name,
                total,
                passed,
                run.wall.as_secs_f64(),
                self.jobs
            );
            if let Some(fragile) = example.fragile {
                let out = self.out.join(format!("{}-fragile", example.name));
                eprintln!(
                    "    Running {} --tag resilience --env {fragile}",
                    pack.display()
                );
                let run = run_pack(
                    &harness,
                    &pack,
                    example.target,
                    &["--tag", "resilience", "--env", fragile],
                    self.jobs,
                    &out,
                );
                let (bitten, total, mut found) = fragile_verdict(example.name, &run);
                problems.append(&mut found);
                line.push_str(&format!(
                    "; fragile ({fragile}): {bitten} of {total} resilience scenarios fail, {:.1}s",
                    run.wall.as_secs_f64()
                ));
            }
            let perf = pack.join("perf");
            if perf.is_dir() {
                match baseline_round_trip(&harness, &perf, example.target, &self.out, example.name)
                {
                    Ok(summary) => line.push_str(&format!("; {summary}")),
                    Err(problem) => problems.push(format!("{}: {problem}", example.name)),
                }
            }
            lines.push(line);
        }
        println!();
        for line in &lines {
            println!("{line}");
        }
        if problems.is_empty() {
            println!(
                "examples: every pack passes and every fragile build fails its resilience scenarios"
            );
            ExitCode::SUCCESS
        } else {
            for p in &problems {
                eprintln!("error: {p}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The pack's `perf/` scenarios saved as a latency baseline, then run again and compared
/// with it: the nightly job's round trip, with a bound of 100 % because CI machines are
/// shared and noisy (the nightly job keeps the 20 % default).
fn baseline_round_trip(
    harness: &Path,
    perf: &Path,
    target: Option<&str>,
    out: &Path,
    name: &str,
) -> Result<String, String> {
    let baselines = out.join(format!("{name}-baselines"));
    let _ = std::fs::remove_dir_all(&baselines);
    let mut summary = String::new();
    for (step, args) in [
        ("save", vec!["--save-baseline", "examples"]),
        (
            "compare",
            vec!["--baseline", "examples", "--max-regression", "100%"],
        ),
    ] {
        eprintln!(
            "    Running harness perf {} {}",
            perf.display(),
            args.join(" ")
        );
        let started = Instant::now();
        let mut cmd = Command::new(harness);
        cmd.arg("perf")
            .arg(perf)
            .args(&args)
            .arg("--baselines")
            .arg(&baselines)
            .arg("--out")
            .arg(out.join(format!("{name}-perf-{step}")));
        if let Some(target) = target {
            cmd.args(["--target", target]);
        }
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run `harness perf`: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`harness perf {}` ({step} the baseline) exited {status}",
                perf.display()
            ));
        }
        summary = format!(
            "latency baseline saved and compared ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(summary)
}

fn target_name(example: &Example) -> String {
    example
        .target
        .map_or("the targets its scenarios name".into(), |t| {
            format!("target `{t}`")
        })
}

/// Builds the harness binary and returns its path (next to this xtask's executable).
pub(crate) fn build_harness() -> Result<PathBuf, ExitCode> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("    Building the harness (cargo build -p harness --bin harness)");
    match Command::new(cargo)
        .args(["build", "--quiet", "-p", "harness", "--bin", "harness"])
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("error: building the harness failed ({s})");
            return Err(ExitCode::from(exit_codes::HARNESS_ERROR));
        }
        Err(e) => {
            eprintln!("error: cannot run cargo to build the harness: {e}");
            return Err(ExitCode::from(exit_codes::HARNESS_ERROR));
        }
    }
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/debug"));
    Ok(dir.join("harness"))
}

fn check_imports(example: &Example) -> Result<(), ExitCode> {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {}", example.imports)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Ok(());
    }
    eprintln!(
        "error: example `{}` needs the Python modules {} (hint: `cargo xtask test` installs them)",
        example.name, example.imports
    );
    Err(ExitCode::from(exit_codes::INVALID_INPUT))
}

fn run_pack(
    harness: &Path,
    pack: &Path,
    target: Option<&str>,
    extra: &[&str],
    jobs: usize,
    out: &Path,
) -> PackRun {
    let mut cmd = Command::new(harness);
    cmd.arg("run")
        .arg(pack)
        .args(["--jobs", &jobs.to_string(), "--out"])
        .arg(out)
        .args(extra);
    if let Some(target) = target {
        cmd.args(["--target", target]);
    }
    let started = Instant::now();
    let exit = match cmd.status() {
        Ok(s) => s.code(),
        Err(e) => {
            eprintln!("error: cannot run `{}`: {e}", harness.display());
            None
        }
    };
    let results = std::fs::read_to_string(out.join("results.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    PackRun {
        exit,
        wall: started.elapsed(),
        results,
    }
}

fn scenarios(results: Option<&Value>) -> &[Value] {
    results
        .and_then(|r| r["scenarios"].as_array())
        .map_or(&[], Vec::as_slice)
}

/// (scenarios run, scenarios passed, flaky ones included).
fn counts(results: Option<&Value>) -> (usize, usize) {
    let all = scenarios(results);
    let passed = all
        .iter()
        .filter(|s| matches!(s["outcome"].as_str(), Some("passed" | "flaky")))
        .count();
    (all.len(), passed)
}

/// (bitten, total, problems): every resilience scenario must fail against the fragile
/// build, with an explanation that says what was missing.
fn fragile_verdict(name: &str, run: &PackRun) -> (usize, usize, Vec<String>) {
    let all = scenarios(run.results.as_ref());
    let mut problems = Vec::new();
    if all.is_empty() {
        problems.push(format!(
            "{name}: no `resilience` scenario ran against the fragile build (exit {:?})",
            run.exit
        ));
    }
    let mut bitten = 0;
    for s in all {
        let path = s["path"].as_str().unwrap_or("?");
        let explanation = s["failures"].to_string();
        match s["outcome"].as_str() {
            Some("failed") if explanation.contains("fragile mode") => bitten += 1,
            Some("failed") => problems.push(format!(
                "{name}/{path}: fails against the fragile build, but its explanation does not name \
                 the missing behaviour (`fragile mode: …`): {}",
                one_line(&explanation, 300)
            )),
            other => problems.push(format!(
                "{name}/{path}: tagged `resilience` but {} against the fragile build, so it does not \
                 test resilience",
                other.unwrap_or("has no outcome")
            )),
        }
    }
    (bitten, all.len(), problems)
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        flat.chars().take(max).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(results: Value) -> PackRun {
        PackRun {
            exit: Some(1),
            wall: Duration::ZERO,
            results: Some(results),
        }
    }

    #[test]
    fn a_fragile_failure_must_name_what_was_missing() {
        let run = run_of(serde_json::json!({"scenarios": [
            {"path": "a.toml", "outcome": "failed", "failures": [{"message": "status", "detail": "x (fragile mode: no retries)"}]},
            {"path": "b.toml", "outcome": "failed", "failures": [{"message": "status: expected completed"}]},
            {"path": "c.toml", "outcome": "passed", "failures": []},
        ]}));
        let (bitten, total, problems) = fragile_verdict("ex", &run);
        assert_eq!((bitten, total), (1, 3));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("ex/b.toml") && problems[0].contains("does not name"));
        assert!(problems[1].contains("ex/c.toml") && problems[1].contains("passed against"));
    }

    #[test]
    fn a_fragile_run_without_resilience_scenarios_is_a_problem() {
        let (_, total, problems) =
            fragile_verdict("ex", &run_of(serde_json::json!({"scenarios": []})));
        assert_eq!(total, 0);
        assert!(
            problems[0].contains("no `resilience` scenario"),
            "{problems:?}"
        );
    }

    #[test]
    fn every_listed_example_has_its_pack() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for e in EXAMPLES {
            let dir = root.join("examples").join(e.name);
            assert!(dir.join("targets.toml").is_file(), "{}", dir.display());
            assert!(dir.join("scenarios").is_dir(), "{}", dir.display());
            assert!(dir.join("README.md").is_file(), "{}", dir.display());
        }
    }
}
