use std::io::{BufRead, BufReader};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{exited, run_harness, spawn_harness, stderr};

#[test]
fn a_misspelt_key_is_a_positioned_error_and_exit_2() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["tests/fixtures/invalid/misspelt_key.toml"], out.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("tests/fixtures/invalid/misspelt_key.toml:2:1"),
        "{err}"
    );
    assert!(err.contains("did you mean `target`?"), "{err}");
    assert!(err.contains("nothing was run"), "{err}");
    assert!(
        !out.path().join("junit.xml").exists(),
        "nothing ran, so no report"
    );
}

#[test]
fn every_invalid_file_is_reported_not_just_the_first() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["tests/fixtures/invalid"], out.path());
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let count = std::fs::read_dir("tests/fixtures/invalid")
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(
        err.contains(&format!("error: {count} invalid files")),
        "{err}"
    );
}

#[test]
fn a_wrong_expectation_fails_the_run_with_an_explanation_and_reports() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &[
            "tests/fixtures/must_fail/wrong_expectation.toml",
            "--seed",
            "7",
        ],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("FAIL"), "{err}");
    assert!(
        err.contains("output `$.refinement_iterations`: expected >= 1, got `0`"),
        "{err}"
    );
    assert!(
        err.contains("--seed 7"),
        "the replay hint names the run's seed: {err}"
    );
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    assert!(
        junit.contains("expected &gt;= 1") || junit.contains("expected >= 1"),
        "{junit}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["summary"]["failed"], 1);
}

#[test]
fn a_passing_scenario_exits_0_with_one_testcase() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["../scenarios/refpipe/flow/happy_path.toml"], out.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 1, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
}

#[test]
fn filters_that_leave_nothing_are_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["../scenarios", "--tag", "no-such-tag"], out.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no scenario to run"));
}

#[test]
fn help_documents_the_exit_codes_and_bad_flags_exit_2() {
    let o = crate::support::harness()
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("--jobs") && help.contains("--seed"), "{help}");
    let o = crate::support::harness().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("130  interrupted"));
    let o = crate::support::harness()
        .args(["run", "--jobs", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_interrupted_run_still_writes_valid_reports_and_exits_130() {
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().to_str().unwrap();
    // The hanging target runs for up to 500ms per scenario; run it with a long timeout
    // through a filter-free path so there is something to interrupt.
    let mut child = spawn_harness(&[
        "run",
        "--out",
        out_arg,
        "--jobs",
        "1",
        "tests/fixtures/must_fail",
    ]);
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    // Wait for the run to start (it prints this before launching any scenario).
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "the harness exited before starting"
        );
        if line.contains("Starting") {
            break;
        }
    }
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGINT).unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(junit.starts_with("<?xml"), "{junit}");
    assert!(junit.trim_end().ends_with("</testsuites>"), "{junit}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["interrupted"], true);
}

/// Waits until the harness says it is starting the scenarios (printed before any runs).
fn wait_for_start(child: &mut crate::support::ChildGuard) -> BufReader<std::process::ChildStderr> {
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "the harness exited before starting"
        );
        if line.contains("Starting") {
            return err;
        }
    }
}

// Regression: an interrupted run with nothing finished was reported `"verdict": "pass"`,
// `PASS` in summary.md and report.html and 0 failures in JUnit; only the exit code told.
#[test]
fn an_interrupted_run_with_nothing_finished_is_reported_interrupted_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("targets.toml"),
        "[sleeper]\nkind = \"command\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"exec sleep 600\"]\n",
    )
    .unwrap();
    for name in ["a", "b"] {
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            "name = \"never finishes\"\ntarget = \"sleeper\"\ntimeout = \"60s\"\n",
        )
        .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let mut child = spawn_harness(&[
        "run",
        "--out",
        out.path().to_str().unwrap(),
        "--jobs",
        "1",
        dir.path().to_str().unwrap(),
    ]);
    let mut err = wait_for_start(&mut child);
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGINT).unwrap();
    let status = child.0.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        rest.contains("Verdict INTERRUPTED (2 of 2 scenarios not run"),
        "{rest}"
    );

    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap();
    let results: serde_json::Value = serde_json::from_str(&read("results.json")).unwrap();
    assert_eq!(results["verdict"], "interrupted");
    assert_eq!(results["summary"]["verdict"], "interrupted");
    assert_eq!(results["summary"]["not_run"], 2);
    let summary = read("summary.md");
    assert!(
        summary.starts_with("## ⏹️ agent-harness: INTERRUPTED — 2 of 2 scenarios not run"),
        "{summary}"
    );
    assert!(!summary.contains("PASS"), "{summary}");
    let junit = read("junit.xml");
    assert!(
        junit.contains(r#"<error message="the run was interrupted: 2 of 2 scenarios not run" type="interrupted"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<testsuites name="agent-harness" tests="3" failures="0" errors="1""#),
        "{junit}"
    );
    let html = read("report.html");
    assert!(
        html.contains(r#"<header class="banner stopped">"#),
        "{html}"
    );
    assert!(html.contains("INTERRUPTED"), "{html}");
}

// Regression: `harness drill DRILL PATHS` ignored PATHS and ran the drill's own scenarios.
#[test]
fn a_drill_refuses_paths_it_would_ignore() {
    let drill = "../scenarios/refpipe/chaos/drill.toml";
    let o = crate::support::harness()
        .args(["drill", drill, "../scenarios/refpipe/flow", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("takes no PATHS (hint: list them under `scenarios` in the drill file"),
        "{}",
        stderr(&o)
    );
    let o = crate::support::harness()
        .args(["drill", drill, "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

// Regression: `harness proxy --listen 0.0.0.0:0` hinted at `allow_non_loopback`, an option
// this command does not have.
#[test]
fn the_proxy_command_hints_at_its_own_flags() {
    let o = crate::support::harness()
        .args([
            "proxy",
            "--listen",
            "0.0.0.0:0",
            "--upstream",
            "127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("(hint: `--listen 127.0.0.1:0`"), "{err}");
    assert!(!err.contains("allow_non_loopback"), "{err}");
}

// Regression: `--out` unwritable was found only after every scenario ran, and the whole
// run's results were lost (exit 3).
#[test]
fn an_unwritable_out_is_refused_before_anything_runs() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let o = run_harness(&["../scenarios/refpipe/flow"], &file.join("reports"));
    let err = exited(&o, 2);
    assert!(
        err.contains("hint: give `--out` a folder you can write to"),
        "{err}"
    );
    assert!(err.contains("nothing was run"), "{err}");
    assert!(!err.contains("Starting"), "a scenario ran: {err}");
}

// Regression: the recursion limit (dotted keys nested too deep) pointed at 1:1.
#[test]
fn a_nesting_limit_points_at_the_deep_line_not_at_1_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deep.toml");
    std::fs::write(&file, format!("name = \"x\"\n{}b = 1\n", "a.".repeat(400))).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&[file.to_str().unwrap()], out.path());
    let err = exited(&o, 2);
    assert!(err.contains("deep.toml:2:1"), "{err}");
}

// Regression: a `program` that is a directory was said to be "not found next to the
// harness … (hint: cargo build -p pipeline)".
#[test]
fn a_program_that_is_a_directory_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::fs::write(
        dir.path().join("targets.toml"),
        "[folder]\nkind = \"command\"\nprogram = \"./bin\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("s.toml"), "name = \"x\"\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&[dir.path().join("s.toml").to_str().unwrap()], out.path());
    let err = stderr(&o);
    assert!(err.contains("a directory, not a program"), "{err}");
    assert!(!err.contains("cargo build -p pipeline"), "{err}");
}
