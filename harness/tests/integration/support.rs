//! Running the `harness` binary and cleaning up after it.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub fn harness() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    // Tests run from the package root; scenario paths below are relative to it.
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

pub fn run_harness(args: &[&str], out: &Path) -> Output {
    harness()
        .args(["run", "--out"])
        .arg(out)
        .args(args)
        .output()
        .expect("the harness binary runs")
}

/// The run's results.json under `dir`, parsed.
pub fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json is JSON")
}

/// The result of the scenario whose path ends with `file`.
pub fn scenario<'a>(results: &'a serde_json::Value, file: &str) -> &'a serde_json::Value {
    results["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("no result for {file}"))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that the harness exited with `code`, showing its stderr otherwise; returns the
/// stderr for the checks that follow.
pub fn exited(o: &Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    err
}

/// Kills and reaps the child when dropped, so a failing test leaves no process behind.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn_harness(args: &[&str]) -> ChildGuard {
    ChildGuard(
        harness()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the harness binary starts"),
    )
}
