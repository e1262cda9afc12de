//! `cargo xtask bench python`: the Python example's pack (examples/pypipe) run five ways
//! side by side in each round: a process per scenario (`command`), a fork worker started
//! with nothing learned (a fresh temporary folder: the first run of a pipeline), the same
//! again once it has learned what its children import on first use (the usual case: every
//! later run), a warm worker reused, and the same checks as a pytest suite
//! (benches/python: the pipeline in process, pytest-httpserver as the LLM API and the
//! executor). Each side is timed as a user would see it: the whole command, start-up
//! and imports included. Then the time the harness adds to a worker scenario: the pack
//! of a pipeline that does nothing, whose scenario time is all harness (stubs, request,
//! fork, result, expectations).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::compare::{Ctx, Found};
use super::{Row, procs};

type Result<T> = std::result::Result<T, String>;

/// One side of the comparison.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Command,
    ForkFirst,
    Fork,
    Reuse,
    Pytest,
}

impl Side {
    const ALL: [Side; 5] = [
        Side::Command,
        Side::ForkFirst,
        Side::Fork,
        Side::Reuse,
        Side::Pytest,
    ];

    fn name(self) -> &'static str {
        match self {
            Side::Command => "process per scenario",
            Side::ForkFirst => "worker, fork, first start",
            Side::Fork => "worker, fork",
            Side::Reuse => "worker, reuse",
            Side::Pytest => "pytest suite",
        }
    }

    fn target(self) -> &'static str {
        match self {
            Side::Command => "pypipe",
            Side::ForkFirst | Side::Fork => "pypipe-worker",
            Side::Reuse => "pypipe-reuse",
            Side::Pytest => "",
        }
    }
}

pub fn python(ctx: &Ctx<'_>) -> Result<Found> {
    super::cargo(&["build", "--quiet", "--release", "-p", "harness"])?;
    let harness = ctx.target_dir.join("release/harness");
    let jobs = ctx.args.jobs;
    check_python()?;
    let mut found = Found::default();
    let mut walls: Vec<(Side, f64)> = Vec::new();
    // The scenarios in the pack; the pytest suite must pass as many tests.
    let mut checks = 0;
    for round in 1..=ctx.args.runs {
        let mut line = format!("round {round}:");
        // What a fork worker learns is kept in its temporary folder: a fresh one per
        // round, so the first start learns and the second finds it.
        let tmp = ctx.work.join(format!("py-tmp-{round}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        for side in Side::ALL {
            let wall = match side {
                Side::Pytest => pytest(checks)?,
                _ => {
                    let out = ctx.work.join(format!("py-{round}"));
                    let (wall, n) = pack(&harness, side, jobs, &out, &tmp)?;
                    checks = n;
                    wall
                }
            };
            line.push_str(&format!(" {} {wall:.2}s;", side.name()));
            walls.push((side, wall));
        }
        found.lines.push(line.trim_end_matches(';').to_string());
    }
    let mean = |side: Side| {
        let of: Vec<f64> = walls
            .iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, w)| *w)
            .collect();
        of.iter().sum::<f64>() / of.len().max(1) as f64
    };
    let (command, first, fork, reuse, pytest) = (
        mean(Side::Command),
        mean(Side::ForkFirst),
        mean(Side::Fork),
        mean(Side::Reuse),
        mean(Side::Pytest),
    );
    found.lines.push(format!(
        "wall time of the whole command (harness start, worker imports, {checks} scenarios at --jobs {jobs}; pytest start, import, {checks} tests), mean of {} rounds",
        ctx.args.runs
    ));
    let ratio_row = |what: String, ours: f64, reference: f64, goal: Option<f64>| Row {
        what,
        ours: format!("{ours:.2}s"),
        reference: format!("{reference:.2}s"),
        ratio: format!("{:.2}×", reference / ours),
        goal: goal.map_or_else(String::new, |g| format!("≥ {g}×")),
        met: goal.map(|g| reference / ours >= g),
    };
    found.rows.push(ratio_row(
        format!("pypipe pack, worker fork vs process per scenario, --jobs {jobs}"),
        fork,
        command,
        Some(5.0),
    ));
    found.rows.push(ratio_row(
        format!("pypipe pack, worker fork vs pytest suite, --jobs {jobs}"),
        fork,
        pytest,
        Some(2.0),
    ));
    found.rows.push(ratio_row(
        format!("pypipe pack, worker fork, first start, vs pytest suite, --jobs {jobs}"),
        first,
        pytest,
        None,
    ));
    found.rows.push(ratio_row(
        format!("pypipe pack, worker reuse vs pytest suite, --jobs {jobs}"),
        reuse,
        pytest,
        None,
    ));

    let (fork_p50, reuse_p50) = added(&harness, &ctx.work)?;
    found.lines.push(format!(
        "harness-added time per scenario: p50 of 40 scenarios of a pipeline that reads its input and prints one line, --jobs 1, release build: fork {:.1} ms, reuse {:.1} ms",
        fork_p50 * 1000.0,
        reuse_p50 * 1000.0
    ));
    for (what, p50) in [("fork", fork_p50), ("reuse", reuse_p50)] {
        found.rows.push(Row {
            what: format!("harness-added time per worker scenario ({what}), p50"),
            ours: format!("{:.1} ms", p50 * 1000.0),
            reference: String::new(),
            ratio: String::new(),
            goal: "≤ 15 ms".into(),
            met: Some(p50 <= 0.015),
        });
    }
    Ok(found)
}

/// python3 with the packages the comparison needs.
fn check_python() -> Result<()> {
    let ok = Command::new("python3")
        .args(["-c", "import openai, httpx, pytest, pytest_httpserver"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Ok(())
    } else {
        Err("python3 with openai, pytest and pytest-httpserver is needed (hint: `cargo xtask test` installs them)".into())
    }
}

/// Runs the pack against one target; its wall time and scenario count, once every
/// scenario passed.
fn pack(harness: &Path, side: Side, jobs: u16, out: &Path, tmp: &Path) -> Result<(f64, usize)> {
    let out = out.join(format!("{}-{}", side.target(), side as u8));
    let started = Instant::now();
    let (status, _) = procs::run_watched(
        Command::new(harness)
            .args([
                "run",
                "examples/pypipe/scenarios",
                "--target",
                side.target(),
            ])
            .args(["--jobs", &jobs.to_string(), "--out"])
            .arg(&out)
            .env("TMPDIR", tmp)
            .stderr(std::process::Stdio::null()),
        "harness run examples/pypipe/scenarios",
        Duration::from_secs(900),
        &mut |_| {},
    )?;
    let wall = started.elapsed().as_secs_f64();
    let durations =
        passed_durations(&out).map_err(|e| format!("{} ({status}): {e}", side.name()))?;
    if durations.len() < 20 {
        return Err(format!(
            "{}: only {} scenarios",
            side.name(),
            durations.len()
        ));
    }
    Ok((wall, durations.len()))
}

/// Every scenario's duration, or which one did not pass.
fn passed_durations(out: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(out.join("results.json"))
        .map_err(|e| format!("no results.json: {e}"))?;
    let results: Value = serde_json::from_str(&text).map_err(|e| format!("results.json: {e}"))?;
    let scenarios = results["scenarios"].as_array().cloned().unwrap_or_default();
    if let Some(bad) = scenarios.iter().find(|s| s["outcome"] != "passed") {
        return Err(format!(
            "`{}` did not pass: {}",
            bad["path"], bad["failures"]
        ));
    }
    Ok(scenarios
        .iter()
        .filter_map(|s| s["duration"].as_f64())
        .collect())
}

/// Runs the pytest suite; its wall time, once all `checks` tests passed.
fn pytest(checks: usize) -> Result<f64> {
    let started = Instant::now();
    let (status, out) = procs::run_watched(
        Command::new("python3")
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "benches/python",
            ])
            .stderr(std::process::Stdio::null()),
        "pytest benches/python",
        Duration::from_secs(900),
        &mut |_| {},
    )?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() || !out.contains(&format!("{checks} passed")) {
        return Err(format!("pytest benches/python ({status}):\n{out}"));
    }
    Ok(wall)
}

/// p50 scenario time of a do-nothing pipeline in a fork worker and a reuse worker.
fn added(harness: &Path, work: &Path) -> Result<(f64, f64)> {
    let dir = work.join("noop");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write(
        "noop.py",
        "import json, sys\n\ndef main():\n    json.load(sys.stdin)\n    print(json.dumps({\"status\": \"completed\"}))\n",
    )?;
    write(
        "targets.toml",
        "[noop]\nkind = \"worker\"\nprogram = \"python3\"\nentry = \"noop:main\"\n\n[noop-reuse]\nkind = \"worker\"\nprogram = \"python3\"\nentry = \"noop:main\"\nisolation = \"reuse\"\n",
    )?;
    for i in 0..40 {
        write(
            &format!("s{i:02}.toml"),
            &format!(
                "name = \"nothing {i}\"\ntarget = \"noop\"\n\n[input]\nprompt = \"x\"\n\n[expect]\nstatus = \"completed\"\n"
            ),
        )?;
    }
    let mut p50 = Vec::new();
    for target in ["noop", "noop-reuse"] {
        let out: PathBuf = work.join(format!("noop-out-{target}"));
        procs::run_watched(
            Command::new(harness)
                .arg("run")
                .arg(&dir)
                .args(["--target", target, "--jobs", "1", "--out"])
                .arg(&out)
                .stderr(std::process::Stdio::null()),
            "harness run (do-nothing pipeline)",
            Duration::from_secs(300),
            &mut |_| {},
        )?;
        let mut d = passed_durations(&out)?;
        d.sort_by(f64::total_cmp);
        p50.push(d.get(d.len() / 2).copied().unwrap_or(f64::NAN));
    }
    Ok((p50[0], p50[1]))
}
