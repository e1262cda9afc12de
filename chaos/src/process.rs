//! Process faults: signals, pauses, resource limits and a CPU hog, against a target
//! process or process group, without privileges.
//!
//! The harness spawns each target in its own process group (`process_group(0)`), so a
//! fault aimed at [`Target::Group`] reaches the target and everything it started, and never
//! the harness. Every fault that lasts returns a guard that undoes it when dropped, also
//! during a panic; put the guards in a [`Rollback`](crate::Rollback) to undo several in
//! reverse order.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::os::unix::process::ExitStatusExt;
//! use chaos::process::{self, Signal, Target};
//!
//! let mut child = tokio::process::Command::new("sleep")
//!     .arg("30")
//!     .process_group(0)
//!     .kill_on_drop(true)
//!     .spawn()
//!     .unwrap();
//! let group = Target::Group(child.id().unwrap());
//!
//! let pause = process::pause(group).unwrap(); // SIGSTOP to the group
//! drop(pause);                                // SIGCONT to the group
//! process::kill(group, Signal::SIGKILL).unwrap();
//! assert_eq!(child.wait().await.unwrap().signal(), Some(9));
//! # }
//! ```
//!
//! # What each fault really does here (Linux, unprivileged)
//!
//! | fault | what happens | what does not |
//! | --- | --- | --- |
//! | [`kill`] | `kill(2)` / `killpg(2)` with the signal: a crash (`SIGKILL`, `SIGSEGV`) or a request to stop (`SIGTERM`) | no core dump unless the target's limits allow one |
//! | [`pause`], [`pause_for`] | `SIGSTOP` to the target: every thread stops (state `T` in `/proc/<pid>/stat`), its sockets stay open and buffer, its peers see a hung process; `SIGCONT` resumes it | timers inside the target keep running in wall-clock time, so it may see its own timeouts fire on resume |
//! | [`memory_limit`] | `RLIMIT_AS` set in the child before `exec` (inherited by its children, each limited on its own): `mmap`/`brk` beyond the limit fail with `ENOMEM`, so allocations fail (Python raises `MemoryError`; a Rust program aborts with "memory allocation of N bytes failed") | it limits **address space**, not resident memory: runtimes that reserve large virtual areas up front (the JVM, some Go and V8 versions, ASan) may fail at start-up under a limit far above what they use; there is no OOM kill as under a cgroup; a privileged target can raise it again |
//! | [`file_size_limit`] | `RLIMIT_FSIZE` set in the child (inherited by its children), with `SIGXFSZ` ignored: a write that would grow a regular file past the limit writes up to it, then fails with `EFBIG` ("File too large") | it is not `ENOSPC` ("No space left on device"): code that treats the two differently takes the `EFBIG` path; it limits each file's size, not the total written; a target that resets `SIGXFSZ` to its default is killed by it instead |
//! | [`full_file`] | makes a path a symbolic link to `/dev/full`: opening it for writing (`O_CREAT`, `O_TRUNC`) succeeds and every write fails with a real `ENOSPC`; reads give endless zeros | only that path: other files in the directory are unaffected; `O_EXCL` fails with `EEXIST`; a target that deletes the path, or writes a temporary file and renames it over the path, replaces the link and succeeds |
//! | [`CpuHog`] | busy threads in the harness process for a bounded time, competing with the target for cores (a noisy neighbour) | it does not limit the target; on a machine with more idle cores than hog threads the target may not notice |
//!
//! A true full disk (a size-limited tmpfs or loop device) or a memory cgroup needs
//! privileges or a delegated cgroup, which CI runners and developer machines do not
//! reliably give; the faults above need none.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
pub use nix::sys::signal::Signal;
use nix::sys::signal::{SigHandler, killpg, signal};
use nix::unistd::{Pid, getpgrp, getpid};

pub use crate::errors::ProcessFaultError;

/// What a process fault is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// One process, by pid.
    Process(u32),
    /// A process group, by pgid: the target spawned with `process_group(0)` (whose pgid is
    /// its pid) and all its descendants that stayed in the group.
    Group(u32),
}

/// `process 1234`, `process group 1234`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Process(pid) => write!(f, "process {pid}"),
            Target::Group(pgid) => write!(f, "process group {pgid}"),
        }
    }
}

impl Target {
    /// The pid to signal, refusing the ones that would hit the wrong processes.
    fn pid(self) -> Result<Pid, ProcessFaultError> {
        let forbidden = |why| {
            Err(ProcessFaultError::Forbidden {
                target: self.to_string(),
                why,
            })
        };
        let (Target::Process(raw) | Target::Group(raw)) = self;
        let Ok(raw) = i32::try_from(raw) else {
            return forbidden("it is above `i32::MAX`, which the kernel reads as a negative pid");
        };
        let pid = Pid::from_raw(raw);
        match (self, raw) {
            (_, 0) => forbidden("0 means the harness's own process group"),
            (_, 1) => forbidden("1 is init"),
            (Target::Process(_), _) if pid == getpid() => forbidden("it is the harness itself"),
            (Target::Group(_), _) if pid == getpgrp() => {
                forbidden("it is the harness's own process group")
            }
            _ => Ok(pid),
        }
    }
}

/// Sends `signal` to `target` (`kill(2)` for a process, `killpg(2)` for a group).
///
/// Refuses pid 0, 1, anything above `i32::MAX`, the harness itself and its own process
/// group. `ESRCH` (the target is gone) is an error like any other: the caller decides
/// whether a target that already exited is a failure.
pub fn kill(target: Target, signal: Signal) -> Result<(), ProcessFaultError> {
    let pid = target.pid()?;
    let sent = match target {
        Target::Process(_) => nix::sys::signal::kill(pid, signal),
        Target::Group(_) => killpg(pid, signal),
    };
    sent.map_err(|source| ProcessFaultError::Signal {
        target: target.to_string(),
        signal: signal.as_str(),
        source,
    })
}

/// One process of a group, as [`group_members`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pid: u32,
    /// Its command line, spaces between arguments.
    pub command: String,
}

/// The processes whose process group is `pgid` (read from `/proc/PID/stat`), for a fault
/// aimed at one of them by its command line. Processes that vanish while being read are
/// left out.
pub fn group_members(pgid: u32) -> Vec<Member> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat_field(pid, PGRP) == Some(u64::from(pgid)))
        .map(|pid| Member {
            pid,
            command: command_line(pid),
        })
        .collect()
}

/// Field 5 of `/proc/PID/stat`, the process group, as its place after the command name.
const PGRP: usize = 2;
/// Field 22 of `/proc/PID/stat`, the start time in clock ticks since boot.
const START_TIME: usize = 19;

/// A numeric field of `/proc/PID/stat`, counted from the state (field 3) as 0: the command
/// name before it may hold spaces and parentheses.
fn stat_field(pid: u32, index: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(index)?
        .parse()
        .ok()
}

/// When `pid` started, in clock ticks since boot: with the pid, it tells a process from a
/// later one that reuses its pid. `None` when it does not run.
pub fn start_time(pid: u32) -> Option<u64> {
    stat_field(pid, START_TIME)
}

/// The command line of `pid`, spaces between arguments; empty when it cannot be read
/// (gone, a zombie, another user's).
pub fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Stops `target` now (`SIGSTOP`, which cannot be caught) until the returned guard is
/// resumed or dropped (`SIGCONT`).
pub fn pause(target: Target) -> Result<Pause, ProcessFaultError> {
    kill(target, Signal::SIGSTOP)?;
    Ok(Pause {
        target,
        paused_at: Instant::now(),
        timer: None,
        continued: Arc::new(AtomicBool::new(false)),
    })
}

/// Stops `target` now and continues it after `duration` (from a timer thread), or earlier
/// when the returned guard is resumed or dropped.
pub fn pause_for(target: Target, duration: Duration) -> Result<Pause, ProcessFaultError> {
    let mut pause = pause(target)?;
    let (cancel, cancelled) = mpsc::channel::<()>();
    let continued = pause.continued.clone();
    let thread = thread::Builder::new()
        .name("chaos-pause".into())
        .spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(duration)
                && !continued.swap(true, Ordering::SeqCst)
            {
                let _ = kill(target, Signal::SIGCONT);
            }
        })
        .map_err(ProcessFaultError::Thread)?; // `pause` is dropped: the target continues
    pause.timer = Some((cancel, thread));
    Ok(pause)
}

/// A paused target; dropping it continues the target (`SIGCONT`), also during a panic.
#[derive(Debug)]
#[must_use = "dropping the guard continues the target at once"]
pub struct Pause {
    target: Target,
    paused_at: Instant,
    timer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    /// Set by whoever sends the `SIGCONT`, so that only one is sent.
    continued: Arc<AtomicBool>,
}

impl Pause {
    /// The paused target.
    pub fn target(&self) -> Target {
        self.target
    }

    /// When the `SIGSTOP` was sent.
    pub fn paused_at(&self) -> Instant {
        self.paused_at
    }

    /// Continues the target now, unless a timer already did; reports a failed `SIGCONT`
    /// (e.g. `ESRCH`: the target is gone).
    pub fn resume(mut self) -> Result<(), ProcessFaultError> {
        self.continue_target()
    }

    fn continue_target(&mut self) -> Result<(), ProcessFaultError> {
        if let Some((cancel, thread)) = self.timer.take() {
            drop(cancel);
            let _ = thread.join();
        }
        if self.continued.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        kill(self.target, Signal::SIGCONT)
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        let _ = self.continue_target();
    }
}

/// Limits the address space of the process `cmd` spawns to `bytes` (`RLIMIT_AS`, soft and
/// hard, set in the child before `exec`; never above the harness's own hard limit).
///
/// Allocations beyond it fail (`ENOMEM` from `mmap`/`brk`). This limits virtual memory,
/// not resident memory: see the module docs for what that means for some runtimes.
#[allow(unsafe_code)]
pub fn memory_limit(cmd: &mut tokio::process::Command, bytes: u64) {
    // SAFETY: the closure runs in the forked child before exec. It calls only getrlimit
    // and setrlimit, which are async-signal-safe, and neither allocates nor takes locks.
    unsafe {
        cmd.pre_exec(move || lower_limit(Resource::RLIMIT_AS, bytes));
    }
}

/// Limits the size of any file the process `cmd` spawns writes to `bytes`
/// (`RLIMIT_FSIZE`, soft and hard), and ignores `SIGXFSZ` in it, so that a write past the
/// limit fails with `EFBIG` instead of killing the process.
///
/// This is "the disk is full" as far as an unprivileged harness can make it: it is
/// `EFBIG`, not `ENOSPC`. See [`full_file`] for a real `ENOSPC` on one path.
#[allow(unsafe_code)]
pub fn file_size_limit(cmd: &mut tokio::process::Command, bytes: u64) {
    // SAFETY: the closure runs in the forked child before exec. It calls only getrlimit,
    // setrlimit and sigaction (through `signal`), which are async-signal-safe, and neither
    // allocates nor takes locks. An ignored signal stays ignored across exec.
    unsafe {
        cmd.pre_exec(move || {
            lower_limit(Resource::RLIMIT_FSIZE, bytes)?;
            signal(Signal::SIGXFSZ, SigHandler::SigIgn)?;
            Ok(())
        });
    }
}

fn lower_limit(resource: Resource, bytes: u64) -> io::Result<()> {
    let (_, hard) = getrlimit(resource)?;
    let limit = bytes.min(hard);
    setrlimit(resource, limit, limit)?;
    Ok(())
}

/// Makes `path` a symbolic link to `/dev/full`, so that writing to it fails with
/// `ENOSPC`; the returned guard removes the link when dropped.
///
/// Refuses a path that exists (it is never overwritten). See the module docs for what this
/// does not cover.
pub fn full_file(path: impl AsRef<Path>) -> Result<FullFile, ProcessFaultError> {
    let path = path.as_ref().to_path_buf();
    std::os::unix::fs::symlink("/dev/full", &path).map_err(|source| {
        ProcessFaultError::FullFile {
            path: path.display().to_string(),
            source,
        }
    })?;
    Ok(FullFile { path })
}

/// A path that is a link to `/dev/full`; dropping it removes the link (if it is still one).
#[derive(Debug)]
#[must_use = "dropping the guard removes the link at once"]
pub struct FullFile {
    path: PathBuf,
}

impl FullFile {
    /// The path that fails writes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FullFile {
    fn drop(&mut self) {
        let still_ours =
            std::fs::read_link(&self.path).is_ok_and(|target| target == Path::new("/dev/full"));
        if still_ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Busy threads in the harness process for a bounded time: CPU contention for the target.
///
/// Each thread spins until the duration is over or the hog is stopped; dropping the hog
/// stops and joins its threads. Use `std::thread::available_parallelism()` threads to
/// occupy every core.
#[derive(Debug)]
#[must_use = "dropping the hog stops it at once"]
pub struct CpuHog {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Duration>>,
    started: Instant,
    duration: Duration,
}

/// What a [`CpuHog`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuHogReport {
    /// How many threads spun.
    pub threads: usize,
    /// From start to the last thread's end.
    pub wall: Duration,
    /// CPU time the threads got, summed (user and system): how much they took from
    /// others, which on a busy machine is less than `threads × wall`.
    pub cpu: Duration,
    /// Whether it was stopped before its duration was over.
    pub stopped_early: bool,
}

impl CpuHog {
    /// The most threads a hog spins: far more than any CI runner has cores, so enough to
    /// saturate one, and few enough that spawning them cannot exhaust the harness's own
    /// memory or thread limit (100,000 threads aborted the harness).
    pub const MAX_THREADS: usize = 256;

    /// Starts `threads` spinning threads that stop by themselves after `duration`.
    ///
    /// `threads` must be within `1..=`[`CpuHog::MAX_THREADS`]; a `duration` too long for the
    /// clock spins until the hog is stopped (dropped).
    pub fn start(threads: usize, duration: Duration) -> Result<CpuHog, ProcessFaultError> {
        if threads == 0 {
            return Err(ProcessFaultError::NoThreads);
        }
        if threads > Self::MAX_THREADS {
            return Err(ProcessFaultError::TooManyThreads {
                threads,
                max: Self::MAX_THREADS,
            });
        }
        let started = Instant::now();
        // About 30 years: "until stopped".
        let deadline = started
            .checked_add(duration)
            .unwrap_or_else(|| started + Duration::from_secs(86_400 * 365 * 30));
        let mut hog = CpuHog {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::with_capacity(threads),
            started,
            duration,
        };
        for i in 0..threads {
            let stop = hog.stop.clone();
            let thread = thread::Builder::new()
                .name(format!("chaos-cpu-hog-{i}"))
                .spawn(move || spin(&stop, deadline))
                .map_err(ProcessFaultError::Thread)?; // `hog` is dropped: started ones stop
            hog.threads.push(thread);
        }
        Ok(hog)
    }

    /// Whether every thread has ended (the duration is over).
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Waits until the duration is over.
    pub fn wait(mut self) -> CpuHogReport {
        self.join()
    }

    /// Stops the threads now.
    pub fn stop(mut self) -> CpuHogReport {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    fn join(&mut self) -> CpuHogReport {
        let threads = self.threads.len();
        let cpu = self
            .threads
            .drain(..)
            .map(|thread| thread.join().unwrap_or_default())
            .sum();
        let wall = self.started.elapsed();
        CpuHogReport {
            threads,
            wall,
            cpu,
            stopped_early: wall < self.duration,
        }
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.join();
    }
}

/// Spins until `deadline` or `stop`; returns the CPU time the thread got.
fn spin(stop: &AtomicBool, deadline: Instant) -> Duration {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
    thread_cpu_time()
}

fn thread_cpu_time() -> Duration {
    let Ok(usage) = getrusage(UsageWho::RUSAGE_THREAD) else {
        return Duration::ZERO;
    };
    [usage.user_time(), usage.system_time()]
        .iter()
        .map(|t| {
            Duration::from_secs(t.tv_sec().max(0) as u64)
                + Duration::from_micros(t.tv_usec().max(0) as u64)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_targets_that_would_hit_the_wrong_processes() {
        let own_pid = std::process::id();
        let own_group = getpgrp().as_raw() as u32;
        let cases = [
            (
                Target::Group(0),
                "refusing to signal process group 0: 0 means the harness's own process group (hint: spawn the target in its own process group)",
            ),
            (
                Target::Process(1),
                "refusing to signal process 1: 1 is init (hint: spawn the target in its own process group)",
            ),
            (
                Target::Process(u32::MAX),
                "refusing to signal process 4294967295: it is above `i32::MAX`, which the kernel reads as a negative pid (hint: spawn the target in its own process group)",
            ),
        ];
        for (target, message) in cases {
            assert_eq!(
                kill(target, Signal::SIGCONT).unwrap_err().to_string(),
                message
            );
        }
        assert!(matches!(
            kill(Target::Process(own_pid), Signal::SIGSTOP),
            Err(ProcessFaultError::Forbidden { .. })
        ));
        assert!(matches!(
            pause(Target::Group(own_group)),
            Err(ProcessFaultError::Forbidden { .. })
        ));
    }

    #[test]
    fn a_hog_needs_a_thread() {
        assert_eq!(
            CpuHog::start(0, Duration::from_secs(1))
                .unwrap_err()
                .to_string(),
            "a CPU hog needs at least `1` thread, got `0`"
        );
    }

    // Regression: `threads = 100000` aborted the whole harness (SIGABRT, no reports).
    #[test]
    fn a_hog_refuses_more_threads_than_its_maximum() {
        let err = CpuHog::start(100_000, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(
            err,
            ProcessFaultError::TooManyThreads {
                threads: 100_000,
                max: CpuHog::MAX_THREADS
            }
        ));
        assert!(
            err.to_string()
                .starts_with("a CPU hog spins at most `256` threads, got `100000`")
        );
    }
}
