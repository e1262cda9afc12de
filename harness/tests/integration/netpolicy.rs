//! The network policy: every address a scenario names is checked before anything runs,
//! and a drill's dry run lists what was judged.

use crate::support::{exited, harness, run_harness, stderr};

/// A folder with one scenario whose extra TOML is `body`, and a drill file over it.
fn pack(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("reach.toml"),
        format!("name = \"reaches out\"\n\n[input]\nprompt = \"x\"\n\n{body}"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("drill.dtoml"),
        "name = \"d\"\nscenarios = [\"reach.toml\"]\nallow_hosts = []\n",
    )
    .unwrap();
    dir
}

/// `harness drill --dry-run` over the pack's drill file.
fn dry_run(dir: &tempfile::TempDir) -> std::process::Output {
    harness()
        .args([
            "drill",
            dir.path().join("drill.dtoml").to_str().unwrap(),
            "--dry-run",
        ])
        .output()
        .unwrap()
}

// Regression: `[[steady_state]] get = "http://10.255.255.1/…"` was not checked: the
// harness sent the request, and `drill --dry-run` printed `reaches: loopback only`.
#[test]
fn a_steady_state_probe_off_loopback_is_refused_before_anything_runs() {
    let dir = pack("[[steady_state]]\nname = \"far\"\nget = \"http://10.255.255.1/health\"\n");
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &[dir.path().join("reach.toml").to_str().unwrap()],
        out.path(),
    );
    let err = exited(&o, 2);
    assert!(
        err.contains("steady-state probe `far` reaches `10.255.255.1`, which is not loopback"),
        "{err}"
    );
    assert!(err.contains("nothing was run"), "{err}");

    let o = dry_run(&dir);
    let err = exited(&o, 2);
    assert!(err.contains("steady-state probe `far`"), "{err}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("loopback only"));
}

// Regression: a proxy upstream `executor.example.com:80` passed the plan-time check
// because it starts with `executor.`.
#[test]
fn a_proxy_upstream_that_only_looks_like_a_stub_is_judged_as_an_address() {
    let dir = pack("[[proxy]]\nname = \"p\"\nupstream = \"executor.example.com:80\"\n");
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(
        &[dir.path().join("reach.toml").to_str().unwrap()],
        out.path(),
    );
    let err = exited(&o, 2);
    assert!(
        err.contains("proxy `p` reaches `executor.example.com`, which is not loopback"),
        "{err}"
    );
    assert!(
        err.contains("reach.toml:8:12"),
        "at the upstream as written: {err}"
    );
}

#[test]
fn a_dry_run_lists_every_address_the_policy_judged() {
    let dir = pack(
        "[[executor.sandbox]]\nreply = { success = true }\n\n\
         [[proxy]]\nname = \"to-sandbox\"\nupstream = \"executor.sandbox\"\n\n\
         [[steady_state]]\nname = \"near\"\nget = \"http://127.0.0.1:9/health\"\n",
    );
    let o = dry_run(&dir);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("reaches http://127.0.0.1:9/health via steady-state probe `near`"),
        "{plan}"
    );
    assert!(
        plan.contains("reaches executor.sandbox via proxy `to-sandbox`"),
        "{plan}"
    );
}
