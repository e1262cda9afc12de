//! The harness's own cost, side by side in one run:
//!
//! - **scenarios per second** of a pack of functional refpipe scenarios (the happy path as
//!   a `[matrix]`), `--jobs` at once, with a release harness and with the build `cargo
//!   xtask gate` runs (the dev profile), against the bare-target floor (`benchkit bare`:
//!   the same refpipe runs against one stub, no harness), in alternating rounds;
//! - **sampler CPU per scenario** (`metrics.memory.sampler_cpu_seconds`, which the harness
//!   measures on its own threads), and the same with `--idle` extra idle processes on the
//!   machine, started for the run and killed by pid after it;
//! - **peak harness RSS** over 1,000 and `--memory-scenarios` scenarios (GNU time's
//!   maximum resident set of the harness process).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::compare::{Ctx, Found};
use super::{Row, procs};

type Result<T> = std::result::Result<T, String>;

/// The cases one matrix file may make (the harness's own limit).
const CASES_PER_FILE: usize = 1_000;

/// Writes `count` functional scenarios into `dir`: the happy path, as matrix files of up to
/// a thousand cases each.
fn write_pack(dir: &Path, count: usize) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let mut left = count;
    let mut file = 0;
    while left > 0 {
        let cases = left.min(CASES_PER_FILE);
        let values: Vec<String> = (0..cases).map(|n| n.to_string()).collect();
        let text = format!(
            r#"name = "happy path {{matrix.n}}"
tags = ["flow"]
timeout = "20s"

[matrix]
n = [{}]

[input]
prompt = "Create a detailed medieval sword"

[[llm]]
when.agent = "planner"
reply = {{ json = {{ subtasks = ["model the blade", "model the hilt", "apply materials"] }} }}

[[llm]]
when.agent = "coder"
reply = {{ json = {{ code = "import bpy\nbpy.ops.mesh.primitive_cube_add()", language = "python" }} }}

[[llm]]
when.agent = "critic"
reply = {{ json = {{ score = 8.5, needs_refinement = false, issues = [] }} }}

[[executor.sandbox]]
reply = {{ success = true, artifacts = ["sword.blend"], logs = "rendered in 2.5s" }}

[expect]
status = "completed"
exit_code = 0
output."$.critic.score" = {{ ge = 8 }}
llm_calls = {{ planner = 1, coder = 1, critic = 1, "*" = 3 }}
executor_calls = {{ sandbox = 1 }}
"#,
            values.join(", ")
        );
        let path = dir.join(format!("happy_{file:02}.toml"));
        std::fs::write(&path, text)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        left -= cases;
        file += 1;
    }
    Ok(())
}

/// What one harness run of a pack did.
struct PackRun {
    seconds: f64,
    scenarios: usize,
    passed: usize,
    sampler_cpu: f64,
    /// GNU time's maximum resident set of the harness, in KiB.
    max_rss_kib: Option<u64>,
}

/// Runs `harness run PACK --jobs J` under `/usr/bin/time -f %M` (when present).
fn run_pack(harness: &Path, pack: &Path, jobs: u16, out: &Path) -> Result<PackRun> {
    let time = Path::new("/usr/bin/time");
    let rss_file = out.with_extension("maxrss");
    let mut command = if time.is_file() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(harness);
        c
    } else {
        Command::new(harness)
    };
    command
        .arg("run")
        .arg(pack)
        .args(["--jobs", &jobs.to_string(), "--out"])
        .arg(out)
        .stderr(std::process::Stdio::null());
    let started = Instant::now();
    let (status, _) = procs::run_watched(
        &mut command,
        "harness run (the cost pack)",
        Duration::from_secs(3_600),
        &mut |_| {},
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let results = std::fs::read_to_string(out.join("results.json"))
        .map_err(|e| format!("harness run ({status}) wrote no results.json: {e}"))?;
    let results: Value =
        serde_json::from_str(&results).map_err(|e| format!("results.json: {e}"))?;
    let scenarios = results["scenarios"].as_array().cloned().unwrap_or_default();
    let max_rss_kib = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.lines().last()?.trim().parse().ok());
    Ok(PackRun {
        seconds,
        passed: scenarios
            .iter()
            .filter(|s| s["outcome"] == "passed")
            .count(),
        sampler_cpu: scenarios
            .iter()
            .filter_map(|s| s["metrics"]["memory"]["sampler_cpu_seconds"].as_f64())
            .sum(),
        scenarios: scenarios.len(),
        max_rss_kib,
    })
}

/// `benchkit bare`: refpipe runs against one stub, no harness.
fn run_bare(ctx: &Ctx<'_>, refpipe: &Path, runs: usize, jobs: u16) -> Result<(f64, u64)> {
    let out = procs::run(
        Command::new(&ctx.benchkit)
            .arg("bare")
            .arg("--refpipe")
            .arg(refpipe)
            .args(["--runs", &runs.to_string(), "--jobs", &jobs.to_string()]),
        "the bare-target floor (benchkit bare)",
        Duration::from_secs(1_800),
    )?;
    let report: Value =
        serde_json::from_str(&out).map_err(|e| format!("benchkit bare's report: {e}"))?;
    Ok((
        report["seconds"].as_f64().unwrap_or(f64::NAN),
        report["completed"].as_u64().unwrap_or(0),
    ))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Scenarios per second (release, gate build, bare floor), sampler CPU (with and without
/// idle processes), peak harness RSS over 1,000 and `--memory-scenarios` scenarios.
pub fn cost(ctx: &Ctx<'_>) -> Result<Found> {
    super::cargo(&[
        "build",
        "--quiet",
        "--release",
        "-p",
        "harness",
        "-p",
        "pipeline",
    ])?;
    super::cargo(&["build", "--quiet", "-p", "harness", "-p", "pipeline"])?;
    let release = ctx.target_dir.join("release/harness");
    let gate_build = ctx.target_dir.join("debug/harness");
    let refpipe = ctx.target_dir.join("release/refpipe");
    let jobs = ctx.args.jobs;
    let size = ctx.args.suite_size as usize;
    let pack = ctx.work.join("cost-pack");
    write_pack(&pack, size)?;
    let mut found = Found::default();

    // 1. scenarios per second, alternating: floor, release, gate build
    let (mut floor, mut fast, mut gate) = (Vec::new(), Vec::new(), Vec::new());
    let mut sampler = Vec::new();
    let mut all_passed = true;
    for round in 1..=ctx.args.runs {
        eprintln!(
            "    Round {round}/{}: {size} scenarios, --jobs {jobs}: bare refpipe, release harness, gate build",
            ctx.args.runs
        );
        let (seconds, completed) = run_bare(ctx, &refpipe, size, jobs)?;
        all_passed &= completed == size as u64;
        floor.push(size as f64 / seconds);
        let r = run_pack(
            &release,
            &pack,
            jobs,
            &ctx.work.join(format!("cost-r{round}")),
        )?;
        all_passed &= r.passed == size;
        fast.push(r.scenarios as f64 / r.seconds);
        sampler.push(r.sampler_cpu / r.scenarios.max(1) as f64);
        let g = run_pack(
            &gate_build,
            &pack,
            jobs,
            &ctx.work.join(format!("cost-g{round}")),
        )?;
        all_passed &= g.passed == size;
        gate.push(g.scenarios as f64 / g.seconds);
        found.lines.push(format!(
            "round {round}: bare refpipe {:.0}/s ({completed}/{size} completed) · release harness {:.0}/s ({} passed) · gate build {:.0}/s ({} passed) · sampler {:.3} ms/scenario",
            floor[floor.len() - 1],
            fast[fast.len() - 1],
            r.passed,
            gate[gate.len() - 1],
            g.passed,
            sampler[sampler.len() - 1] * 1000.0,
        ));
    }
    let (floor, fast, gate) = (mean(&floor), mean(&fast), mean(&gate));
    let share = fast / floor;
    found.rows.push(Row {
        what: format!("functional scenarios/s, --jobs {jobs}, release"),
        ours: format!("{fast:.0}/s"),
        reference: format!("bare refpipe {floor:.0}/s"),
        ratio: format!("{share:.2}×"),
        goal: "≥ 300/s, ≥ 0.65×".into(),
        met: Some(all_passed && fast >= 300.0 && share >= 0.65),
    });
    found.rows.push(Row {
        what: format!("functional scenarios/s, --jobs {jobs}, gate build"),
        ours: format!("{gate:.0}/s"),
        reference: format!("release {fast:.0}/s"),
        ratio: format!("{:.2}×", gate / fast),
        goal: "≥ 100/s".into(),
        met: Some(all_passed && gate >= 100.0),
    });

    // 2. sampler CPU with extra idle processes
    let idle_count = ctx.args.idle as usize;
    eprintln!("    Sampler: {size} scenarios with {idle_count} extra idle processes");
    let idle = procs::Idle::start(idle_count)?;
    let busy = run_pack(&release, &pack, jobs, &ctx.work.join("cost-idle"))?;
    drop(idle);
    let quiet = mean(&sampler);
    let crowded = busy.sampler_cpu / busy.scenarios.max(1) as f64;
    found.lines.push(format!(
        "sampler CPU per scenario: {:.3} ms; with {idle_count} idle processes {:.3} ms ({} scenarios, {} passed)",
        quiet * 1000.0,
        crowded * 1000.0,
        busy.scenarios,
        busy.passed
    ));
    found.rows.push(Row {
        what: "sampler CPU per scenario".into(),
        ours: format!("{:.3} ms", quiet * 1000.0),
        reference: String::new(),
        ratio: String::new(),
        goal: "≤ 0.5 ms".into(),
        met: Some(quiet <= 0.0005),
    });
    found.rows.push(Row {
        what: format!("… with {idle_count} extra idle processes"),
        ours: format!("{:.3} ms", crowded * 1000.0),
        reference: format!("without {:.3} ms", quiet * 1000.0),
        ratio: format!("{:.2}×", crowded / quiet),
        goal: "≤ 0.5 ms, ≤ 1.25×".into(),
        met: Some(crowded <= 0.0005 && crowded / quiet <= 1.25),
    });

    // 3. peak harness RSS over 1,000 and --memory-scenarios scenarios
    let mut peaks = Vec::new();
    for count in [1_000usize, ctx.args.memory_scenarios as usize] {
        let dir = ctx.work.join(format!("cost-pack-{count}"));
        write_pack(&dir, count)?;
        eprintln!("    Memory: {count} scenarios, release harness, --jobs {jobs}");
        let r = run_pack(
            &release,
            &dir,
            jobs,
            &ctx.work.join(format!("cost-m{count}")),
        )?;
        found.lines.push(format!(
            "{count} scenarios: {} passed in {:.1}s, peak harness RSS {}",
            r.passed,
            r.seconds,
            r.max_rss_kib
                .map_or("unknown (no /usr/bin/time)".into(), |k| format!(
                    "{:.1} MiB",
                    k as f64 / 1024.0
                )),
        ));
        peaks.push((count, r.max_rss_kib));
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let [(small, Some(a)), (large, Some(b))] = peaks[..] {
        let (a, b) = (a as f64 / 1024.0, b as f64 / 1024.0);
        found.rows.push(Row {
            what: format!("peak harness RSS, {large} scenarios"),
            ours: format!("{b:.1} MiB"),
            reference: format!("{small} scenarios {a:.1} MiB"),
            ratio: format!("{:.2}×", b / a),
            goal: "≤ 150 MiB, ≤ 1.10×".into(),
            met: Some(b <= 150.0 && b / a <= 1.10),
        });
    } else {
        found.lines.push(
            "peak RSS not measured: /usr/bin/time is missing (hint: apt-get install time)".into(),
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_is_split_into_files_of_at_most_a_thousand_cases() {
        let dir = tempfile::tempdir().unwrap();
        write_pack(dir.path(), 2_500).unwrap();
        let mut cases = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let line = text.lines().find(|l| l.starts_with("n = [")).unwrap();
            cases.push(line.matches(',').count() + 1);
        }
        cases.sort();
        assert_eq!(cases, [500, 1_000, 1_000]);
    }

    #[test]
    fn means_of_nothing_are_not_a_division_by_zero() {
        assert_eq!(mean(&[2.0, 4.0]), 3.0);
        assert_eq!(mean(&[]), 0.0);
    }
}
