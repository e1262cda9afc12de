//! `harness fuzz` against refpipe: it finds a planted crash and shrinks it to a short
//! reply written as a scenario that `harness run` fails the same way; the metamorphic
//! check finds a bug only a tolerable reply reveals; the same seed gives the same cases
//! and the same file; correct refpipe keeps every invariant.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{harness, results, run_harness, stderr};

const HAPPY: &str = "../scenarios/refpipe/fuzz/happy_path.toml";
const REFINEMENT: &str = "../scenarios/refpipe/fuzz/refinement_cycle.toml";

/// `harness fuzz SCENARIO --out OUT ARGS…` with the default case count (PROPTEST_CASES
/// removed), unless ARGS say otherwise.
fn fuzz(scenario: &str, out: &Path, args: &[&str]) -> Output {
    fuzz_command(scenario, out, args)
        .env_remove("PROPTEST_CASES")
        .output()
        .expect("the harness binary runs")
}

fn fuzz_command(scenario: &str, out: &Path, args: &[&str]) -> Command {
    let mut cmd = harness();
    cmd.args(["fuzz", scenario, "--out"]).arg(out).args(args);
    cmd
}

fn summary(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("fuzz/fuzz.json")).expect("fuzz.json is written");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn fuzz_finds_the_planted_crash_and_writes_a_minimal_scenario_that_fails_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fuzz");
    let o = fuzz(
        HAPPY,
        &out,
        &["--seed", "7", "--env", "REFPIPE_PLANTED_BUG=unchecked-plan"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let s = summary(&out);
    let found = &s["found"];
    assert_eq!(
        found["invariant"], "the target prints a valid output document",
        "{s:#}"
    );
    assert_eq!(found["kind"], "hostile");
    assert!(found["case"].as_u64().unwrap() <= 256, "{s:#}");
    let reply = found["minimal"]["reply"].as_str().unwrap();
    assert!(reply.chars().count() <= 40, "{reply:?}");
    assert!(
        found["varied"].as_str().unwrap().contains("planner"),
        "{s:#}"
    );
    let err = stderr(&o);
    assert!(err.contains("Shrunk in"), "{err}");
    let md = std::fs::read_to_string(out.join("fuzz/summary.md")).unwrap();
    assert!(md.contains(&format!("\n{reply}\n")), "{md}");
    assert!(err.contains(&format!("{reply:?}")), "{err}");

    // The written file is an ordinary scenario that fails for the same reason.
    let written = found["written"].as_str().unwrap();
    let text = std::fs::read_to_string(written).unwrap();
    assert!(
        text.contains("REFPIPE_PLANTED_BUG = \"unchecked-plan\""),
        "{text}"
    );
    assert!(text.contains("--seed 7"), "{text}");
    let run_out = tmp.path().join("run");
    let o = run_harness(&[written], &run_out);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = results(&run_out);
    let failures = r["scenarios"][0]["failures"].as_array().unwrap();
    assert!(
        failures.iter().any(|f| f["kind"] == "invalid_output"),
        "{failures:#?}"
    );

    // Against correct refpipe the same file gets a valid document: the invariant holds.
    // (Its `exit_code` is the first of `exit_code_in`, as the crash's 101 was none of
    // them; a fixed pipeline that fails cleanly with 1 differs only there.)
    let fixed = tmp.path().join("fixed.toml");
    std::fs::write(
        &fixed,
        text.replace("REFPIPE_PLANTED_BUG = \"unchecked-plan\"", ""),
    )
    .unwrap();
    let fixed_out = tmp.path().join("fixed");
    run_harness(&[fixed.to_str().unwrap()], &fixed_out);
    let r = results(&fixed_out);
    let scenario = &r["scenarios"][0];
    assert_eq!(scenario["output"]["status"], "failed", "{scenario:#}");
    assert!(
        scenario["failures"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] != "invalid_output"),
        "{scenario:#}"
    );
}

#[test]
fn the_same_seed_gives_the_same_cases_and_the_same_minimal_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut fingerprints = Vec::new();
    for (i, seed) in ["11", "11", "12"].into_iter().enumerate() {
        let out = tmp.path().join(format!("run{i}"));
        let o = fuzz(
            HAPPY,
            &out,
            &[
                "--seed",
                seed,
                "--env",
                "REFPIPE_PLANTED_BUG=unchecked-plan",
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let s = summary(&out);
        fingerprints.push((s["cases"].clone(), s["cases_fingerprint"].clone()));
        files.push(std::fs::read_to_string(s["found"]["written"].as_str().unwrap()).unwrap());
    }
    assert_eq!(fingerprints[0], fingerprints[1]);
    assert_eq!(files[0], files[1]);
    assert_ne!(
        fingerprints[0], fingerprints[2],
        "another seed draws other cases"
    );
}

#[test]
fn the_metamorphic_check_finds_the_bug_only_a_tolerable_reply_reveals() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fuzz");
    let o = fuzz(
        REFINEMENT,
        &out,
        &[
            "--seed",
            "3",
            "--env",
            "REFPIPE_PLANTED_BUG=critic-text-match",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let found = summary(&out)["found"].clone();
    assert_eq!(found["kind"], "tolerable", "{found:#}");
    assert!(
        found["invariant"]
            .as_str()
            .unwrap()
            .starts_with("the scenario's [expect]"),
        "{found:#}"
    );
    assert!(
        found["varied"].as_str().unwrap().contains("critic"),
        "{found:#}"
    );

    // No crash: the target completed, with another outcome than the scenario expects.
    let run_out = tmp.path().join("run");
    let o = run_harness(&[found["written"].as_str().unwrap()], &run_out);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let scenario = &results(&run_out)["scenarios"][0];
    assert_eq!(scenario["exit_code"], 0, "{scenario:#}");
    assert_eq!(scenario["output"]["status"], "completed");
    assert!(
        scenario["failures"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] == "expectation"),
        "{scenario:#}"
    );
}

/// Correct refpipe keeps every invariant and every expectation over PROPTEST_CASES cases
/// (64 unless set; `cargo xtask test` bounds it, a local run may raise it).
#[test]
fn correct_refpipe_keeps_every_invariant() {
    let cases = std::env::var("PROPTEST_CASES").unwrap_or_else(|_| "64".into());
    for scenario in [HAPPY, REFINEMENT] {
        let tmp = tempfile::tempdir().unwrap();
        let o = fuzz_command(scenario, tmp.path(), &["--seed", "5", "--cases", &cases])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{scenario}: {}", stderr(&o));
        let s = summary(tmp.path());
        assert_eq!(s["violations"], 0);
        assert_eq!(s["cases"].to_string(), cases);
    }
}

#[test]
fn fuzz_refuses_what_it_cannot_start_from() {
    let tmp = tempfile::tempdir().unwrap();
    // A scenario that fails as written.
    let failing = tmp.path().join("failing.toml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(HAPPY)).unwrap();
    std::fs::write(
        &failing,
        text.replace("status = \"completed\"", "status = \"failed\""),
    )
    .unwrap();
    let o = fuzz(failing.to_str().unwrap(), tmp.path(), &["--seed", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not pass as written"),
        "{}",
        stderr(&o)
    );
    // Nothing to vary.
    let nothing = tmp.path().join("nothing.toml");
    std::fs::write(
        &nothing,
        text.replace(
            "[adversarial]\n",
            "[adversarial]\nvary = [\"llm.reviewer\"]\n",
        ),
    )
    .unwrap();
    let o = fuzz(nothing.to_str().unwrap(), tmp.path(), &["--seed", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has no reply to vary"),
        "{}",
        stderr(&o)
    );
    // A mistake in [adversarial] is a positioned diagnostic.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        text.replace("[adversarial]\n", "[adversarial]\nvary = [\"llm.\"]\n"),
    )
    .unwrap();
    let o = fuzz(bad.to_str().unwrap(), tmp.path(), &["--seed", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.toml:"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not something to vary"),
        "{}",
        stderr(&o)
    );
}
