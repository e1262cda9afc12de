use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use reports::{Outcome, Verdict, WriteError, write_all};

use crate::fixture::basic_report;

/// Every entry under `dir`, as paths relative to it, folders with a trailing `/`.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(format!("{rel}/"));
                stack.push(path);
            } else {
                out.insert(rel);
            }
        }
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn writes_every_file_into_a_new_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("target/harness");
    let report = basic_report();
    let written = write_all(&report, &dir).unwrap();

    assert_eq!(
        tree(&dir),
        set(&[
            "journal/",
            "journal/refpipe__chaos__coder_5xx.json",
            "journal/refpipe__chaos__dead_redis.json",
            "journal/refpipe__chaos__rate_limit.json",
            "journal/refpipe__critic_refinement.json",
            "journal/refpipe__happy_path.json",
            "journal/refpipe__perf__load_smoke.json",
            "junit.xml",
            "report.html",
            "results.json",
            "summary.md",
        ])
    );
    assert_eq!(written.paths().count(), 10);
    assert_eq!(written.html, dir.join("report.html"));
    assert!(written.paths().all(Path::exists));
    assert_eq!(
        written.journals[1],
        dir.join("journal/refpipe__critic_refinement.json")
    );

    let read = |p: &Path| fs::read_to_string(p).unwrap();
    assert_eq!(read(&written.junit), reports::junit::render(&report));
    assert_eq!(read(&written.results), reports::json::render(&report));
    assert_eq!(read(&written.summary), reports::markdown::render(&report));
    assert_eq!(read(&written.html), reports::html::render(&report));

    let journal: serde_json::Value = serde_json::from_str(&read(&written.journals[1])).unwrap();
    assert_eq!(journal["seed"], 1002);
    assert_eq!(journal["target"], "refpipe");
    assert_eq!(journal["journal"].as_array().unwrap().len(), 2);
    assert_eq!(journal["journal"][1]["served"], "404 unmatched");
    assert_eq!(journal["failures"].as_array().unwrap().len(), 2);
}

#[test]
fn a_second_write_replaces_files_and_leaves_nothing_stray() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_all(&basic_report(), dir).unwrap();
    // Files that are not ours stay.
    fs::write(dir.join("notes.html"), "<html>").unwrap();
    fs::write(dir.join("journal/README.txt"), "notes").unwrap();

    // A smaller rerun: one scenario, which now passes.
    let mut report = basic_report();
    report.scenarios.truncate(2);
    report.scenarios.remove(0);
    report.scenarios[0].outcome = Outcome::Passed;
    report.scenarios[0].failures.clear();
    report.scenarios[0].failed_attempts.clear();
    report.interrupted = false;
    report.gates.clear();
    report.verdict = Verdict::Pass;
    let written = write_all(&report, dir).unwrap();

    assert_eq!(
        tree(dir),
        set(&[
            "journal/",
            "journal/README.txt",
            "journal/refpipe__critic_refinement.json",
            "junit.xml",
            "notes.html",
            "report.html",
            "results.json",
            "summary.md",
        ])
    );
    let read = |p: &Path| fs::read_to_string(p).unwrap();
    assert_eq!(read(&written.html), reports::html::render(&report));
    assert_eq!(read(&written.junit), reports::junit::render(&report));
    assert_eq!(read(&written.results), reports::json::render(&report));
    assert_eq!(read(&written.summary), reports::markdown::render(&report));
    assert!(read(&written.summary).starts_with("## ✅ agent-harness: PASS\n"));
}

#[test]
fn colliding_journal_names_get_a_counter() {
    let tmp = tempfile::tempdir().unwrap();
    let mut report = basic_report();
    report.scenarios.truncate(2);
    report.scenarios[0].path = "a/b.toml".into();
    report.scenarios[1].path = "a__b.toml".into();
    let written = write_all(&report, tmp.path()).unwrap();
    let names: Vec<String> = written
        .journals
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a__b.json", "a__b-2.json"]);
}

#[test]
fn an_output_path_that_is_a_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("taken");
    fs::write(&file, "").unwrap();
    let err = write_all(&basic_report(), &file).unwrap_err();
    assert!(matches!(err, WriteError::CreateDir { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("could not create the report directory `"),
        "{err}"
    );
    assert!(err.to_string().contains("taken"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

// Regression: on a nearly full disk a report set mixed files of the new run with
// report.html of the previous one. A set that cannot be written whole is not left mixed.
#[test]
fn a_set_that_cannot_be_written_whole_leaves_no_mix_of_two_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_all(&basic_report(), dir).unwrap();
    // report.html cannot be replaced: a folder stands in its place (refused when it is
    // staged, since a report never replaces what is not a regular file).
    fs::remove_file(dir.join(reports::HTML_FILE)).unwrap();
    fs::create_dir(dir.join(reports::HTML_FILE)).unwrap();

    let mut next = basic_report();
    next.seed += 1;
    let err = write_all(&next, dir).unwrap_err();
    assert!(
        matches!(err, WriteError::Write { .. } | WriteError::Persist { .. }),
        "{err:?}"
    );
    for name in [
        reports::JUNIT_FILE,
        reports::RESULTS_FILE,
        reports::SUMMARY_FILE,
    ] {
        assert!(
            !dir.join(name).exists(),
            "{name} was left beside a report of another run"
        );
    }
    let stray: Vec<String> = tree(dir)
        .into_iter()
        .filter(|p| p.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

// Regression: an unwritable `--out` was found only after every scenario ran.
#[test]
fn check_writable_finds_an_unwritable_folder_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("taken");
    fs::write(&file, "").unwrap();
    let err = reports::check_writable(&file.join("reports")).unwrap_err();
    assert!(matches!(err, WriteError::CreateDir { .. }), "{err:?}");

    let fine = tmp.path().join("out");
    reports::check_writable(&fine).unwrap();
    assert_eq!(
        tree(&fine),
        set(&["journal/"]),
        "the probe leaves nothing behind"
    );
}
