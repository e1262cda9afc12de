//! Nothing a scenario starts outlives it.
//!
//! A target runs in its own process group, and the harness kills the group when the
//! scenario ends. That does not reach a descendant that left the group: one that called
//! `setsid`, or daemonised by a double fork. So every process the harness starts carries
//! a [`Tag`] in its environment (`AGENT_HARNESS_TAG`), which its descendants inherit
//! whatever group or session they move to, and at the end of a scenario [`Tag::sweep`]
//! finds every process on the machine whose environment holds the tag and kills it. This
//! is how Jenkins' process-tree killer finds a build's daemons (by `BUILD_ID`).
//!
//! Why not a cgroup: a cgroup holds a tree whatever it does, but creating one needs a
//! delegated cgroup v2 hierarchy, which CI runners and containers often do not give
//! (this project's machines mount cgroup v1). Why not only a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`): orphans would become the harness's children, but with
//! scenarios running in parallel nothing says which scenario an orphan came from.
//!
//! And if the harness itself is killed (SIGKILL leaves it no chance to clean up), each
//! process it started directly gets SIGKILL from the kernel (`PR_SET_PDEATHSIG`), and
//! the next run's [`sweep_orphans`] kills tagged processes whose harness is gone.
//!
//! Limits, documented for users: a descendant that clears its environment (`env -i`)
//! carries no tag and is not found; processes of other users cannot be read or killed.

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The environment variable that carries the tag.
pub(crate) const TAG_VAR: &str = "AGENT_HARNESS_TAG";

/// The tag of one scenario run's processes: `<harness pid>.<n>`, unique on the machine
/// while the harness lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag(String);

/// A process a sweep found (and killed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    pub pid: i32,
    /// Its command line, spaces between arguments (empty when it could not be read).
    pub command: String,
}

impl Tag {
    /// A new tag, never given before by this harness process: `PID.START.N`, where
    /// `START` is the harness's start time (so that a later process reusing its pid is not
    /// taken for it).
    pub(crate) fn new() -> Tag {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Tag(format!(
            "{}.{}",
            identity(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// The tag's value, as it appears in the environment.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Prepares `cmd` so that the process it starts, and every descendant, carries the
    /// tag, and so that the process dies when the harness does (`PR_SET_PDEATHSIG`).
    pub(crate) fn apply(&self, cmd: &mut tokio::process::Command) {
        cmd.env(TAG_VAR, &self.0);
        die_with_parent(cmd);
    }

    /// Kills (SIGKILL) every process whose environment carries this tag, other than the
    /// harness itself, and says which.
    pub(crate) fn sweep(&self) -> Vec<Swept> {
        sweep_where(|tag| tag == self.0.as_bytes(), None)
    }

    /// [`Tag::sweep`] for a tag first given to the process `first`: its descendants were
    /// all created after it, so unless the pid counter wrapped since, their pids lie
    /// between `first` and the last pid the kernel gave out (`ns_last_pid`), and only those
    /// are read. A sweep then costs what the target created, not what the machine runs.
    pub(crate) fn sweep_after(&self, first: u32) -> Vec<Swept> {
        let range = last_pid()
            .filter(|&last| last >= first)
            .map(|last| (first, last));
        sweep_where(|tag| tag == self.0.as_bytes(), range)
    }
}

/// Kills tagged processes left by harness runs that are gone (killed with SIGKILL, say):
/// those whose tag names a harness process that no longer runs. Run at start.
pub(crate) fn sweep_orphans() -> Vec<Swept> {
    sweep_where(
        |tag| {
            std::str::from_utf8(tag)
                .ok()
                .and_then(|t| t.rsplit_once('.'))
                .is_some_and(|(owner, _)| !is_running(owner))
        },
        None,
    )
}

/// The prefix of this harness's scratch directories (`agent-harness-scenario-PID.START-`),
/// so that [`sweep_stale_scratch`] can tell whose they are.
pub(crate) fn scratch_prefix() -> String {
    format!("{SCRATCH_PREFIX}{}-", identity())
}

const SCRATCH_PREFIX: &str = "agent-harness-scenario-";

/// Removes scratch directories left in the temporary directory by harness runs that are
/// gone (killed with SIGKILL: nothing ran their cleanup). Returns how many.
pub(crate) fn sweep_stale_scratch() -> usize {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .map(|(owner, _)| owner.to_string())
        else {
            continue;
        };
        // Only names this scheme writes (`PID.START`); anything else is not ours to judge.
        if owner.split_once('.').is_none() {
            continue;
        }
        if !is_running(&owner) && fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// This process as `PID.START` (START: its start time in clock ticks since boot).
fn identity() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let pid = std::process::id();
        identity_of(pid).unwrap_or_else(|| format!("{pid}.0"))
    })
}

/// Whether the process `PID.START` still runs (the same pid, started at the same time).
fn is_running(owner: &str) -> bool {
    let Some((pid, start)) = owner.split_once('.') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    chaos::process::start_time(pid) == Some(start)
}

/// The last pid given out in this pid namespace, when the kernel says.
fn last_pid() -> Option<u32> {
    fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Kills every process (not this one) whose `AGENT_HARNESS_TAG` satisfies `matches`; with
/// `within = (first, last)`, only processes with `first < pid <= last` are read.
fn sweep_where(matches: impl Fn(&[u8]) -> bool, within: Option<(u32, u32)>) -> Vec<Swept> {
    let mut found = tagged_where(matches, within);
    found.retain(|p| kill(Pid::from_raw(p.pid), Signal::SIGKILL).is_ok());
    found
}

/// The processes (not this one) whose `AGENT_HARNESS_TAG` satisfies `matches`, with
/// their command lines (read now: a killed process has none).
fn tagged_where(matches: impl Fn(&[u8]) -> bool, within: Option<(u32, u32)>) -> Vec<Swept> {
    let own = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own || within.is_some_and(|(first, last)| pid <= first || pid > last) {
            continue;
        }
        // Unreadable (another user's) or gone: not ours to judge.
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        let tagged = environ
            .split(|&b| b == 0)
            .filter_map(|var| var.strip_prefix(TAG_VAR.as_bytes())?.strip_prefix(b"="))
            .any(&matches);
        if tagged {
            found.push(Swept {
                pid: pid as i32,
                command: chaos::process::command_line(pid),
            });
        }
    }
    found
}

/// The processes a harness `owner` (`PID.START`, see [`identity_of`]) started that still
/// run, without touching them: what `cargo xtask interrupt` counts after a run.
pub fn left_by(owner: &str) -> Vec<Swept> {
    let prefix = format!("{owner}.");
    tagged_where(|tag| tag.starts_with(prefix.as_bytes()), None)
}

/// The harness process `pid` as its tags and scratch directories name it (`PID.START`),
/// while it runs.
pub fn identity_of(pid: u32) -> Option<String> {
    chaos::process::start_time(pid).map(|start| format!("{pid}.{start}"))
}

/// How many scratch directories of the harness `owner` (`PID.START`) are in the temporary
/// directory.
pub fn scratch_dirs_of(owner: &str) -> usize {
    let prefix = format!("{SCRATCH_PREFIX}{owner}-");
    fs::read_dir(std::env::temp_dir())
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count()
        })
        .unwrap_or(0)
}

/// Makes the process `cmd` starts receive SIGKILL when the harness dies, and exit at once
/// if the harness is already gone by the time it runs.
///
/// The kernel sends the signal when the *thread* that forked exits; the harness spawns
/// from its runtime's worker threads, which live as long as the run.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs in the forked child before exec. It calls only prctl,
    // getppid and _exit, which are async-signal-safe, and neither allocates nor takes locks.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The harness died between fork and prctl: the signal will never come.
            if nix::unistd::getppid().as_raw() != parent {
                nix::libc::_exit(137);
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique_and_name_this_harness() {
        let (a, b) = (Tag::new(), Tag::new());
        assert_ne!(a, b);
        assert!(a.as_str().starts_with(&format!("{}.", std::process::id())));
        let owner = a.as_str().rsplit_once('.').unwrap().0;
        assert!(is_running(owner), "{owner} is this process");
        assert!(
            !is_running(&format!("{}.1", std::process::id())),
            "another start time"
        );
    }

    // Regression: a target's grandchild that daemonised (setsid, double fork) kept
    // running after the scenario.
    #[tokio::test]
    async fn a_daemonised_grandchild_is_found_and_killed() {
        let tag = Tag::new();
        let mut cmd = tokio::process::Command::new("/bin/sh");
        // The child leaves the session and its parent exits at once: a daemon, holding
        // none of the parent's pipes.
        cmd.args([
            "-c",
            "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!",
        ]);
        cmd.stdout(std::process::Stdio::piped());
        tag.apply(&mut cmd);
        let child = cmd.spawn().unwrap();
        let shell = child.id().unwrap();
        let out = child.wait_with_output().await.unwrap();
        let daemon: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(kill(Pid::from_raw(daemon), None).is_ok(), "the daemon runs");

        // Only processes created after the shell are read, and the daemon is one of them.
        let swept = tag.sweep_after(shell);
        assert_eq!(swept.len(), 1, "{swept:?}");
        assert_eq!(swept[0].pid, daemon);
        assert!(swept[0].command.contains("sleep 600"), "{swept:?}");
        // Another tag's sweep finds nothing of it.
        assert!(Tag::new().sweep().is_empty());
    }
}
