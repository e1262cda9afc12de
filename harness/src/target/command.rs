//! The `command` target kind: one process per run, in its own process group, so that on a
//! timeout (or when the run is dropped, e.g. on Ctrl-C) the whole group is killed and no
//! grandchild outlives the scenario.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::session::{BoxFuture, Closed, Opened, RunSetup, Session, Target};
use crate::reaper::{Swept, Tag};

/// Most stdout kept (the JSON document); more is cut and reported as invalid output.
const STDOUT_LIMIT: usize = 16 << 20;
/// The stderr tail kept for reports.
const STDERR_TAIL_BYTES: usize = 4096;
const STDERR_TAIL_LINES: usize = 30;

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    /// Killed by a signal it did not handle (a crash).
    Signal(i32),
    /// Still running at the scenario's timeout; the harness killed its process group.
    TimedOut,
}

#[derive(Debug)]
pub struct RunOutcome {
    pub exit: Exit,
    /// Process faults injected during the run (the scenario's `[[process]]`).
    pub injected: Vec<crate::faults::Injected>,
    /// Steady-state probes that did not hold (an `http` target checks them itself).
    pub probes: Vec<crate::steady::ProbeFailure>,
    pub stdout: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_tail: String,
    pub duration: Duration,
    /// The pid and resident set, right after the run, of the process that outlives it (a
    /// service, a reuse worker): the series `rss_growth_per_run` is fitted to.
    pub kept_rss: Option<(u32, u64)>,
    /// Processes the target started that were still running when it ended (killed since),
    /// as `pid N `command``: a leak the scenario fails for.
    pub outlived: Vec<String>,
}

impl RunOutcome {
    /// The target could not be started (under load, one run's problem, not the scenario's).
    pub fn failed_to_start(why: String) -> RunOutcome {
        RunOutcome {
            stderr_tail: format!("(harness: the target could not be started: {why})"),
            ..RunOutcome::not_run(Vec::new())
        }
    }

    /// The target was not started: the steady state did not hold before the faults.
    pub fn not_run(probes: Vec<crate::steady::ProbeFailure>) -> RunOutcome {
        RunOutcome {
            exit: Exit::Code(0),
            injected: Vec::new(),
            probes,
            stdout: Vec::new(),
            stdout_truncated: false,
            stderr_tail: String::new(),
            duration: Duration::ZERO,
            kept_rss: None,
            outlived: Vec::new(),
        }
    }
}

/// Ends everything a target started: on timeout, on Ctrl-C (the run's future is
/// dropped), and after a normal exit. Every process carrying the target's [`Tag`] is
/// killed (daemonised descendants too, see `reaper.rs`), then its process group.
pub(super) struct GroupGuard {
    pgid: Option<Pid>,
    tag: Tag,
}

impl GroupGuard {
    /// Ends what is left of the target now, and says which processes other than `main`
    /// (the target itself, when it has not exited) were still running.
    pub(super) fn end(mut self, main: Option<u32>) -> Vec<Swept> {
        let mut swept = match self.pgid {
            Some(pgid) => self.tag.sweep_after(pgid.as_raw() as u32),
            None => self.tag.sweep(),
        };
        if let Some(pgid) = self.pgid.take() {
            // ESRCH (already gone) is the common, fine case.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        swept.retain(|s| Some(s.pid as u32) != main);
        swept
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
            self.tag.sweep_after(pgid.as_raw() as u32);
        }
    }
}

/// Describes processes that outlived their target, for the scenario's failure.
pub(crate) fn outlived(swept: &[Swept]) -> Vec<String> {
    swept
        .iter()
        .map(|s| format!("pid {} `{}`", s.pid, s.command))
        .collect()
}

/// Runs `program` with `input` on stdin until it exits or `timeout` passes. Its
/// environment is exactly `env`: nothing is inherited that the caller did not put there.
/// One run of a `command` target.
pub struct CommandRun<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
    pub input: &'a [u8],
    pub timeout: Duration,
    pub faults: &'a crate::faults::ProcessFaults<'a>,
    /// Watches the target's memory, when set.
    pub sampler: Option<&'a crate::sampler::Sampler>,
}

pub async fn run_command(run: CommandRun<'_>) -> std::io::Result<RunOutcome> {
    let CommandRun {
        program,
        args,
        env,
        cwd,
        input,
        timeout,
        faults,
        sampler,
    } = run;
    let started = Instant::now();
    let (mut child, guard) = spawn_in_group(program, args, env, cwd, &|cmd| faults.configure(cmd))?;
    if let (Some(sampler), Some(pid)) = (sampler, child.id()) {
        sampler.watch(pid);
    }
    let armed = child.id().map(|pgid| faults.arm(pgid, started));

    let stdin = child.stdin.take();
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            // A target that exits without reading its input is not our error to report.
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        }
    });
    let stdout = tokio::spawn(read_capped(child.stdout.take(), STDOUT_LIMIT, false));
    let stderr = tokio::spawn(read_capped(child.stderr.take(), 64 * 1024, true));

    let exit = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => exit_of(status?),
        Err(_) => Exit::TimedOut,
    };
    let duration = started.elapsed();
    // Undo faults still in force (a paused group is continued) before killing it.
    let injected = armed.map(|a| a.injected()).unwrap_or_default();
    // End what the target left now, so that pipes held by leftovers (a daemon that kept
    // stdout) close and the output read so far is complete.
    let main = child.id();
    let outlived = outlived(&guard.end(main));
    let _ = child.wait().await;
    writer.abort();
    let grace = Duration::from_secs(2);
    let (stdout, stdout_truncated) = tokio::time::timeout(grace, stdout)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let (stderr, _) = tokio::time::timeout(grace, stderr)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Ok(RunOutcome {
        exit,
        injected,
        probes: Vec::new(),
        stdout,
        stdout_truncated,
        stderr_tail: tail(&stderr),
        duration,
        kept_rss: None,
        outlived,
    })
}

/// The `command` kind: nothing to open; each run is a process.
pub(crate) struct CommandTarget;

struct CommandSession {
    setup: Arc<RunSetup>,
}

impl Target for CommandTarget {
    fn open(&self, setup: Arc<RunSetup>) -> BoxFuture<'_, std::io::Result<Opened>> {
        Box::pin(async move {
            setup.program()?;
            let session: Arc<dyn Session> = Arc::new(CommandSession { setup });
            Ok(Ok(session))
        })
    }
}

impl Session for CommandSession {
    fn run(self: Arc<Self>) -> BoxFuture<'static, RunOutcome> {
        Box::pin(async move {
            let s = &self.setup;
            // Process faults are armed on a single run; a load's runs go unfaulted.
            let specs: &[crate::scenario::ProcessFaultSpec] =
                if s.under_load { &[] } else { &s.process };
            let faults = crate::faults::ProcessFaults::new(specs);
            let program = match s.program() {
                Ok(p) => p,
                Err(e) => return RunOutcome::failed_to_start(e.to_string()),
            };
            run_command(CommandRun {
                program,
                args: &s.spec.args,
                env: &s.env,
                cwd: s.spec.defined_in.as_deref(),
                input: &s.stdin,
                timeout: s.timeout,
                faults: &faults,
                sampler: Some(&s.sampler),
            })
            .await
            .unwrap_or_else(|e| RunOutcome::failed_to_start(e.to_string()))
        })
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, Closed> {
        Box::pin(async { Closed::default() })
    }
}

/// Spawns `program` in a process group of its own, with exactly `env`, all three standard
/// streams piped; the guard kills the group when dropped.
pub(super) fn spawn_in_group(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: Option<&Path>,
    configure: &dyn Fn(&mut Command),
) -> std::io::Result<(tokio::process::Child, GroupGuard)> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    configure(&mut cmd);
    let tag = Tag::new();
    tag.apply(&mut cmd);
    let child = cmd.spawn()?;
    let guard = GroupGuard {
        pgid: child.id().map(|id| Pid::from_raw(id as i32)),
        tag,
    };
    Ok((child, guard))
}

/// How a child ended, from its exit status.
pub(super) fn exit_of(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Code(-1),
    }
}

/// Reads a pipe to its end, keeping at most `limit` bytes: the first ones, or with
/// `keep_last` the last ones. Returns the bytes and whether any were dropped.
pub(super) async fn read_capped<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    limit: usize,
    keep_last: bool,
) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut dropped = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > limit {
                    dropped = true;
                    if keep_last {
                        kept.drain(..kept.len() - limit);
                    } else {
                        kept.truncate(limit);
                    }
                }
            }
        }
    }
    (kept, dropped)
}

/// The last lines of stderr, lossily decoded.
pub(super) fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    let mut out = lines[start..].join("\n");
    if out.len() > STDERR_TAIL_BYTES {
        let mut cut = out.len() - STDERR_TAIL_BYTES;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = format!("…{}", &out[cut..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> RunOutcome {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_command(CommandRun {
            program: Path::new("/bin/sh"),
            args: &["-c".into(), script.into()],
            env: &[
                ("GREETING".into(), "hello".into()),
                ("PATH".into(), "/usr/bin:/bin".into()),
            ],
            cwd: None,
            input: b"{\"x\":1}",
            timeout,
            faults: &crate::faults::ProcessFaults::new(&[]),
            sampler: None,
        }))
        .unwrap()
    }

    #[test]
    fn passes_env_and_stdin_and_captures_both_streams() {
        let out = sh(
            "echo \"$GREETING\" >&2; cat; exit 3",
            Duration::from_secs(10),
        );
        assert_eq!(out.exit, Exit::Code(3));
        assert_eq!(out.stdout, b"{\"x\":1}");
        assert_eq!(out.stderr_tail, "hello");
    }

    #[test]
    fn the_environment_is_exactly_what_was_given() {
        // HOME is set for this test process, but not passed on.
        let out = sh(
            "echo \"${HOME:-unset} $GREETING\" >&2",
            Duration::from_secs(10),
        );
        assert_eq!(out.stderr_tail, "unset hello");
    }

    #[test]
    fn a_crash_is_reported_as_the_signal() {
        let out = sh("kill -SEGV $$", Duration::from_secs(10));
        assert_eq!(out.exit, Exit::Signal(11));
    }

    #[test]
    fn a_hang_is_killed_with_its_whole_group() {
        // The grandchild holds stdout open; if the group were not killed, reading would hang.
        let out = sh(
            "sleep 300 & echo started >&2; wait",
            Duration::from_millis(300),
        );
        assert_eq!(out.exit, Exit::TimedOut);
        assert_eq!(out.stderr_tail, "started");
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let many: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = tail(many.as_bytes());
        assert!(t.starts_with("line 70\n") && t.ends_with("line 99"), "{t}");
    }
}
