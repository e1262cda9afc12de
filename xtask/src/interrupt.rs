//! `cargo xtask interrupt`: runs packs and interrupts them at random moments — SIGINT,
//! SIGTERM, SIGKILL — then counts what each interrupted harness left behind: processes
//! carrying its tag (`AGENT_HARNESS_TAG`), listening sockets opened since and held by a process it started,
//! scratch directories; and, for SIGINT and SIGTERM, whether its reports are complete and
//! say `interrupted`. After a SIGKILL nothing of the harness runs its cleanup: processes it
//! started die by their parent-death signal, and its scratch directories stay until the
//! next run sweeps them, which this command then checks too.
//!
//! ```text
//! cargo xtask interrupt                                   # 20 SIGINT, 10 SIGTERM, 5 SIGKILL
//! cargo xtask interrupt examples/workflows/scenarios/database --sigint 20 --sigkill 5
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use harness::reaper::{Swept, identity_of, left_by, scratch_dirs_of};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[derive(Debug, clap::Args)]
pub struct Interrupt {
    /// Packs to run (scenario folders or files); default: refpipe's http-service pack and
    /// its chaos pack.
    paths: Vec<PathBuf>,
    /// Runs interrupted with SIGINT (Ctrl-C).
    #[arg(long, default_value_t = 20)]
    sigint: u32,
    /// Runs interrupted with SIGTERM.
    #[arg(long, default_value_t = 10)]
    sigterm: u32,
    /// Runs killed with SIGKILL.
    #[arg(long, default_value_t = 5)]
    sigkill: u32,
    /// Latest moment of the signal after the start, in seconds (drawn uniformly from 0.3 s
    /// to this).
    #[arg(long, default_value_t = 3.0)]
    within: f64,
    /// Seed of the moments drawn (printed, so a round can be replayed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scenarios at once in each run.
    #[arg(short, long, default_value_t = 2)]
    jobs: usize,
}

/// What one interrupted run left.
#[derive(Default)]
struct Left {
    processes: Vec<Swept>,
    listeners: usize,
    scratch: usize,
    reports_ok: bool,
    exit: Option<i32>,
}

impl Interrupt {
    pub fn run(self) -> ExitCode {
        let paths: Vec<PathBuf> = if self.paths.is_empty() {
            vec![
                "scenarios/refpipe/service".into(),
                "scenarios/refpipe/chaos".into(),
            ]
        } else {
            self.paths.clone()
        };
        if let Err(code) = crate::gate::prepare() {
            return code;
        }
        let harness = match crate::examples::build_harness() {
            Ok(h) => h,
            Err(code) => return code,
        };
        let mut rng = self.seed.max(1);
        let mut draw = || {
            // xorshift64: reproducible moments without a dependency
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % 10_000) as f64 / 10_000.0
        };
        let rounds: Vec<Signal> = std::iter::repeat_n(Signal::SIGINT, self.sigint as usize)
            .chain(std::iter::repeat_n(Signal::SIGTERM, self.sigterm as usize))
            .chain(std::iter::repeat_n(Signal::SIGKILL, self.sigkill as usize))
            .collect();
        println!(
            "interrupting {} runs of {} (seed {})",
            rounds.len(),
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            self.seed
        );
        let mut problems = Vec::new();
        let mut table: Vec<(Signal, Left)> = Vec::new();
        for (i, signal) in rounds.iter().enumerate() {
            let after = Duration::from_secs_f64(0.3 + draw() * (self.within - 0.3).max(0.0));
            let left = round(&harness, &paths, self.jobs, *signal, after);
            let line = format!(
                "round {:>2}: {:<7} at {:>5.2}s  exit {:<4} left: {} process(es), {} listener(s), {} scratch dir(s){}",
                i + 1,
                signal.as_str(),
                after.as_secs_f64(),
                left.exit.map_or("-".into(), |c| c.to_string()),
                left.processes.len(),
                left.listeners,
                left.scratch,
                match (*signal, left.reports_ok) {
                    (Signal::SIGKILL, _) => "",
                    (_, true) => "; reports complete, interrupted",
                    (_, false) => "; REPORTS MISSING OR WRONG",
                }
            );
            println!("{line}");
            for p in &left.processes {
                println!("          pid {} `{}`", p.pid, p.command);
            }
            let clean = left.processes.is_empty() && left.listeners == 0;
            let scratch_ok = left.scratch == 0;
            if !clean || !scratch_ok || (*signal != Signal::SIGKILL && !left.reports_ok) {
                problems.push(line);
            }
            table.push((*signal, left));
        }
        println!();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL] {
            let of: Vec<&Left> = table
                .iter()
                .filter(|(s, _)| *s == signal)
                .map(|(_, l)| l)
                .collect();
            if of.is_empty() {
                continue;
            }
            println!(
                "{:<7} x{:<3} ({} ended by the signal, the rest had finished) processes left {}, listeners left {}, scratch dirs left {}{}",
                signal.as_str(),
                of.len(),
                of.iter()
                    .filter(|l| matches!(l.exit, None | Some(130) | Some(143)))
                    .count(),
                of.iter().map(|l| l.processes.len()).sum::<usize>(),
                of.iter().map(|l| l.listeners).sum::<usize>(),
                of.iter().map(|l| l.scratch).sum::<usize>(),
                if signal == Signal::SIGKILL {
                    " (after the next run's sweep)".to_string()
                } else {
                    format!(
                        ", reports complete {}/{}",
                        of.iter().filter(|l| l.reports_ok).count(),
                        of.len()
                    )
                }
            );
        }
        if problems.is_empty() {
            println!("interrupt: nothing outlived any interrupted run");
            ExitCode::SUCCESS
        } else {
            eprintln!("error: {} run(s) left something behind", problems.len());
            ExitCode::FAILURE
        }
    }
}

/// One run of the packs, interrupted with `signal` `after` its start.
fn round(harness: &Path, paths: &[PathBuf], jobs: usize, signal: Signal, after: Duration) -> Left {
    let out = tempfile::tempdir().expect("a temporary directory");
    let listening_before = listeners();
    let mut child = match Command::new(harness)
        .arg("run")
        .args(paths)
        .args(["--jobs", &jobs.to_string(), "--out"])
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot start the harness: {e}");
            return Left::default();
        }
    };
    let pid = child.id();
    let owner = identity_of(pid);
    std::thread::sleep(after);
    let _ = kill(Pid::from_raw(pid as i32), signal);
    // A harness that does not end within a minute of the signal is itself a finding.
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let Some(owner) = owner else {
        return Left {
            exit,
            ..Left::default()
        };
    };
    // Parent-death signals and the kernel closing sockets take a moment: poll, bounded.
    let settle = Instant::now() + Duration::from_secs(3);
    let mut left = Left {
        exit,
        ..Left::default()
    };
    loop {
        left.processes = left_by(&owner);
        left.listeners = new_listeners_of(&owner, &listening_before);
        if (left.processes.is_empty() && left.listeners == 0) || Instant::now() >= settle {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if signal == Signal::SIGKILL {
        // Nothing ran the killed harness's cleanup; the next run sweeps what it left.
        let next = tempfile::tempdir().expect("a temporary directory");
        let _ = Command::new(harness)
            .args(["run", "--jobs", &jobs.to_string(), "--out"])
            .arg(next.path())
            .args(paths)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        left.processes.extend(left_by(&owner));
    }
    left.scratch = scratch_dirs_of(&owner);
    left.reports_ok = reports_say_interrupted(out.path());
    // Whatever was found is not left for the next round to trip over.
    for p in &left.processes {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
    left
}

/// Listening TCP sockets on this machine, by socket inode.
fn listeners() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // state 0A is LISTEN; field 9 the socket's inode
            if fields.get(3) == Some(&"0A")
                && let Some(inode) = fields.get(9)
            {
                out.insert((*inode).to_string());
            }
        }
    }
    out
}

/// Listening sockets that were not there before the round and are held by a process the
/// harness `owner` started (other processes on a shared machine open listeners too).
fn new_listeners_of(owner: &str, before: &BTreeSet<String>) -> usize {
    let new: BTreeSet<String> = listeners().difference(before).cloned().collect();
    if new.is_empty() {
        return 0;
    }
    let mut held = 0;
    for process in left_by(owner) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", process.pid)) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                && new.contains(inode)
            {
                held += 1;
            }
        }
    }
    held
}

/// Whether results.json and junit.xml are there, parse, and results.json says the run was
/// interrupted (or finished before the signal: then every scenario ran).
fn reports_say_interrupted(out: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(out.join("results.json")) else {
        return false;
    };
    let Ok(results) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let junit_ok = std::fs::read_to_string(out.join("junit.xml"))
        .is_ok_and(|x| x.trim_end().ends_with("</testsuites>"));
    let interrupted = results["interrupted"] == true && results["verdict"] == "interrupted";
    let complete = results["interrupted"] == false;
    junit_ok && (interrupted || complete)
}
