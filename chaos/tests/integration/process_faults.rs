//! Process faults against real children, observed from outside: exit statuses,
//! `/proc/<pid>/stat`, `waitid`, files on disk.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chaos::process::{self, CpuHog, ProcessFaultError, Signal, Target};
use tokio::process::Command;

use crate::support::{Child, ms, proc_state, wait_continued, wait_stopped};

fn sleep_30() -> Child {
    Child::spawn(Command::new("sleep").arg("30"))
}

/// Runs a blocking wait (waitid) off the runtime, failing the test after 10 s.
async fn blocking(wait: impl FnOnce() + Send + 'static) {
    tokio::time::timeout(Duration::from_secs(10), tokio::task::spawn_blocking(wait))
        .await
        .expect("within 10s")
        .unwrap();
}

#[tokio::test]
async fn kill_ends_a_process_or_a_group_by_signal() {
    let mut child = sleep_30();
    process::kill(Target::Group(child.pid), Signal::SIGKILL).unwrap();
    assert_eq!(child.wait().await.signal(), Some(Signal::SIGKILL as i32));

    let mut child = sleep_30();
    process::kill(Target::Process(child.pid), Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().await.signal(), Some(Signal::SIGTERM as i32));

    // gone: ESRCH is reported, not ignored
    let error = process::kill(Target::Process(child.pid), Signal::SIGTERM).unwrap_err();
    assert!(
        matches!(
            error,
            ProcessFaultError::Signal {
                source: nix::Error::ESRCH,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn pause_stops_the_group_until_the_guard_is_dropped() {
    let child = sleep_30();
    let pid = child.pid;
    let pause = process::pause(Target::Group(pid)).unwrap();
    blocking(move || wait_stopped(pid)).await;
    assert_eq!(proc_state(pid), 'T');

    drop(pause);
    blocking(move || wait_continued(pid)).await;
    assert_ne!(proc_state(pid), 'T');
}

#[tokio::test]
async fn pause_for_continues_the_group_after_the_duration() {
    let child = sleep_30();
    let pid = child.pid;
    let pause = process::pause_for(Target::Group(pid), ms(300)).unwrap();
    blocking(move || wait_stopped(pid)).await;
    assert_eq!(proc_state(pid), 'T');

    // the timer continues it, not the guard (still alive here)
    blocking(move || wait_continued(pid)).await;
    assert!(pause.paused_at().elapsed() >= ms(300));
    assert_ne!(proc_state(pid), 'T');
    pause.resume().unwrap();
}

#[tokio::test]
async fn resuming_a_target_that_is_gone_is_reported() {
    let mut child = sleep_30();
    let pause = process::pause(Target::Group(child.pid)).unwrap();
    process::kill(Target::Group(child.pid), Signal::SIGKILL).unwrap();
    child.wait().await;
    let error = pause.resume().unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot send `SIGCONT` to process group"),
        "{error}"
    );
}

async fn python(limit: u64, code: &str) -> std::process::Output {
    let mut command = Command::new("python3");
    command
        .args(["-c", code])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    process::memory_limit(&mut command, limit);
    Child::spawn(&mut command).output().await
}

#[tokio::test]
async fn a_memory_limit_makes_large_allocations_fail() {
    const MIB: u64 = 1024 * 1024;
    let big = python(256 * MIB, "bytearray(512 * 1024 * 1024)").await;
    assert!(!big.status.success());
    let stderr = String::from_utf8_lossy(&big.stderr);
    assert!(stderr.contains("MemoryError"), "{stderr}");

    // the same limit leaves room for a small allocation: it is the limit, not python
    let small = python(256 * MIB, "bytearray(16 * 1024 * 1024); print('ok')").await;
    assert!(
        small.status.success(),
        "{}",
        String::from_utf8_lossy(&small.stderr)
    );
    assert_eq!(small.stdout, b"ok\n");
}

#[tokio::test]
async fn a_file_size_limit_makes_writes_past_it_fail_with_efbig() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scratch.bin");
    let mut command = Command::new("sh");
    command
        .args(["-c", "head -c 100000 /dev/zero > \"$0\""])
        .arg(&path)
        .stderr(Stdio::piped());
    process::file_size_limit(&mut command, 4096);
    let output = Child::spawn(&mut command).output().await;
    assert!(!output.status.success());
    assert_eq!(
        output.status.signal(),
        None,
        "SIGXFSZ is ignored, not fatal"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("File too large"), "{stderr}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
}

#[tokio::test]
async fn a_full_file_fails_writes_with_enospc_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    let full = process::full_file(&path).unwrap();
    assert_eq!(full.path(), path);

    let output = Command::new("dd")
        .args(["if=/dev/zero", "bs=1024", "count=1"])
        .arg(format!("of={}", path.display()))
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");

    drop(full);
    assert!(!path.exists() && std::fs::symlink_metadata(&path).is_err());

    // an existing file is never replaced
    std::fs::write(&path, b"keep").unwrap();
    assert!(matches!(
        process::full_file(&path),
        Err(ProcessFaultError::FullFile { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"keep");
}

#[test]
fn a_cpu_hog_ends_by_itself_after_its_duration() {
    let started = Instant::now();
    let hog = CpuHog::start(2, ms(200)).unwrap();
    let report = hog.wait();
    assert!(started.elapsed() >= ms(200));
    assert_eq!(report.threads, 2);
    assert!(!report.stopped_early);
    assert!(report.wall >= ms(200));
    // it spun: some CPU time, however busy the machine
    assert!(report.cpu > Duration::ZERO, "{report:?}");
}

#[test]
fn a_cpu_hog_stops_early_when_stopped_or_dropped() {
    let hog = CpuHog::start(1, Duration::from_secs(600)).unwrap();
    assert!(!hog.is_finished());
    let report = hog.stop();
    assert!(report.stopped_early);

    // dropping joins the threads: this test ending at all shows they stopped
    let hog = CpuHog::start(1, Duration::from_secs(600)).unwrap();
    drop(hog);
}

// Regression: a `duration` too long for the clock panicked the fault's task with
// `overflow when adding duration to instant`, so the hog never ran and the scenario passed.
#[test]
fn a_cpu_hog_with_a_huge_duration_spins_until_stopped() {
    let hog = CpuHog::start(1, Duration::MAX).unwrap();
    assert!(!hog.is_finished());
    assert!(hog.stop().stopped_early);
}
