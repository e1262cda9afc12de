//! Memory and CPU of a target's own process tree, read from `/proc` while it runs, and the
//! harness's resident set beside it.
//!
//! What is read, and why it costs what the target costs, not what the machine holds:
//!
//! - **Processes, not threads.** Each member of the tree is read once from
//!   `/proc/PID/stat` (its resident set and its CPU time cover all its threads), so a
//!   threaded target is counted once, not once per thread.
//! - **Only the target's tree.** A watched root's descendants are found without listing
//!   every process: `/proc/loadavg` names the last pid the kernel handed out, so only the
//!   pids created since the last sample are looked at (a thread's id is recognised and
//!   skipped). A new pid joins the tree when its parent is a member or it is in a watched
//!   process group. Only when many pids were created at once (or the counter wrapped) is
//!   `/proc` listed. Roots are watched as soon as they are started, so a descendant
//!   forked before the first sample is the one case that can be missed.
//! - **An interval that follows the scenario.** Samples are close together at the start
//!   (a short run still gets several) and spread out as the run gets longer (a tenth of
//!   the time so far, between [`MIN_INTERVAL`] and [`MAX_INTERVAL`]), so a long run costs
//!   few reads.
//!
//! What sampling itself costs is measured too (the CPU of the sampler's thread and of the
//! samples taken on the caller's thread, [`Observation::sampler_cpu_seconds`]), so a
//! report shows the harness's own cost beside the target's.
//!
//! A process that has exited keeps the CPU time it was last seen with. The timeline is
//! thinned as it grows, so memory stays bounded however long the target runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most this many points are kept in a timeline (older ones are thinned).
const MAX_POINTS: usize = 2_000;
/// A timeline in a report has at most this many points.
const REPORT_POINTS: usize = 200;
/// The shortest time between two samples.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest time between two samples.
pub const MAX_INTERVAL: Duration = Duration::from_millis(250);
/// More new pids than this since the last sample: list `/proc` instead of probing each.
const PROBE_AT_MOST: u32 = 256;
/// A watched root younger than this has no children worth looking for.
const FRESH: Duration = Duration::from_millis(100);
/// `/proc` reports CPU time in USER_HZ ticks, which Linux fixes at 100 for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// What a sampler saw.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub peak_rss_bytes: u64,
    /// The resident set when the last sample was taken.
    pub last_rss_bytes: u64,
    pub cpu_seconds: f64,
    /// (seconds since `started`, bytes), at most 200 points.
    pub timeline: Vec<(f64, u64)>,
    pub harness_peak_rss_bytes: u64,
    /// CPU time the sampling took (its thread, and samples taken on the caller's).
    pub sampler_cpu_seconds: f64,
}

/// One process as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    pgid: u32,
    cpu_ticks: u64,
    rss_pages: u64,
}

/// The watched trees and what has been seen of them.
#[derive(Default)]
struct Tree {
    /// Watched roots; a root is dropped once it is gone.
    roots: Vec<u32>,
    /// Process groups of the roots (a member that moved away from its parent still counts).
    groups: HashSet<u32>,
    members: HashSet<u32>,
    /// The last pid handed out when the tree was last extended.
    last_pid: Option<u32>,
    cpu_ticks: HashMap<u32, u64>,
    peak: u64,
    last: u64,
    timeline: Vec<(f64, u64)>,
    harness_peak: u64,
    /// Peaks reported by someone who saw more than a sample could (e.g. a child's maximum
    /// resident set from `wait4`).
    reported_peak: u64,
    /// CPU the samples taken on callers' threads have used so far.
    own_cpu: Duration,
    /// CPU the sampler's own thread has used so far.
    thread_cpu: Duration,
}

/// Samples process trees until stopped (or dropped).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    tree: Arc<Mutex<Tree>>,
    started: Instant,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling; the trees to watch are added with [`Sampler::watch`].
    pub fn start(started: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let tree = Arc::new(Mutex::new(Tree::default()));
        let thread = {
            let (stop, tree) = (Arc::clone(&stop), Arc::clone(&tree));
            std::thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let watching = take_sample(&tree, started);
                        // this thread's CPU so far (a snapshot may come before it ends)
                        let spent = thread_cpu();
                        if let Ok(mut t) = tree.lock() {
                            t.thread_cpu = spent;
                        }
                        if watching {
                            std::thread::park_timeout(interval(started.elapsed()));
                        } else {
                            // Nothing to watch yet: wait for `watch` to wake us.
                            std::thread::park_timeout(MAX_INTERVAL);
                        }
                    }
                    let spent = thread_cpu();
                    if let Ok(mut t) = tree.lock() {
                        t.thread_cpu = spent;
                    }
                })
                .ok()
        };
        Sampler {
            stop,
            tree,
            started,
            thread,
        }
    }

    /// Adds a process tree to watch (a run's target, a worker's child, a restarted
    /// service); a tree whose root has exited drops out by itself.
    pub fn watch(&self, root: u32) {
        let cpu = thread_cpu();
        if let Ok(mut t) = self.tree.lock() {
            if !t.roots.contains(&root) {
                t.roots.push(root);
            }
            t.members.insert(root);
            // A root that has been running a while (a reused worker) may have children
            // already: look for them once. A root just started has none yet.
            if age(root).is_none_or(|a| a > FRESH) {
                let everyone = list_pids();
                let mut found: Vec<(u32, Stat)> = everyone
                    .into_iter()
                    .filter_map(|pid| read_stat(pid).map(|s| (pid, s)))
                    .collect();
                loop {
                    let before = t.members.len();
                    found.retain(|(pid, stat)| {
                        let joins = t.members.contains(&stat.ppid);
                        if joins {
                            t.members.insert(*pid);
                        }
                        !joins
                    });
                    if t.members.len() == before {
                        break;
                    }
                }
            }
            // Its process group only when it leads one of its own (as targets do): a
            // shared group would pull in unrelated processes.
            if read_stat(root).is_some_and(|s| s.pgid == root) {
                t.groups.insert(root);
            }
        }
        take_sample(&self.tree, self.started);
        self.charge(cpu);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }

    /// Counts the CPU this thread spent since `before` as the sampler's.
    fn charge(&self, before: Duration) {
        let spent = thread_cpu().saturating_sub(before);
        if let Ok(mut t) = self.tree.lock() {
            t.own_cpu += spent;
        }
    }

    /// Records a peak resident set measured by other means (the kernel's maximum for an
    /// exited child): the observed peak is at least this.
    pub fn report_peak(&self, bytes: u64) {
        if let Ok(mut t) = self.tree.lock() {
            t.reported_peak = t.reported_peak.max(bytes);
        }
    }

    /// Takes one sample now (e.g. right after a run) and returns what has been seen so far,
    /// without stopping.
    pub fn snapshot(&self) -> Observation {
        let cpu = thread_cpu();
        take_sample(&self.tree, self.started);
        self.charge(cpu);
        observe(&self.tree)
    }

    /// Stops sampling, takes a last sample and returns everything seen.
    pub fn stop(mut self) -> Observation {
        self.halt();
        let cpu = thread_cpu();
        take_sample(&self.tree, self.started);
        self.charge(cpu);
        observe(&self.tree)
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The wait before the next sample, `elapsed` into the run.
fn interval(elapsed: Duration) -> Duration {
    (elapsed / 10).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// Samples every watched tree once; whether anything is being watched.
fn take_sample(tree: &Mutex<Tree>, started: Instant) -> bool {
    let Ok(mut t) = tree.lock() else { return false };
    let harness = read_statm_rss(std::process::id());
    t.harness_peak = t.harness_peak.max(harness);
    if t.members.is_empty() {
        return false;
    }
    extend(&mut t);
    let mut rss = 0;
    let mut gone = Vec::new();
    let members: Vec<u32> = t.members.iter().copied().collect();
    for pid in members {
        match read_stat(pid) {
            Some(stat) => {
                rss += stat.rss_pages * page_size();
                t.cpu_ticks.insert(pid, stat.cpu_ticks);
            }
            None => gone.push(pid),
        }
    }
    for pid in gone {
        t.members.remove(&pid);
        t.roots.retain(|r| *r != pid);
    }
    t.peak = t.peak.max(rss);
    t.last = rss;
    t.timeline.push((started.elapsed().as_secs_f64(), rss));
    if t.timeline.len() > MAX_POINTS {
        // Keep every other point: the shape stays, the memory stays bounded.
        let thinned: Vec<_> = t.timeline.iter().copied().step_by(2).collect();
        t.timeline = thinned;
    }
    !t.members.is_empty()
}

/// Adds the processes created since the last look whose parent is a member or whose
/// group is watched.
fn extend(t: &mut Tree) {
    let last = last_pid();
    let candidates: Vec<u32> = match (t.last_pid, last) {
        (Some(before), Some(now)) if now >= before && now - before <= PROBE_AT_MOST => {
            (before + 1..=now).collect()
        }
        (Some(before), Some(now)) if now == before => Vec::new(),
        // First look: the roots were just started and watched, so nothing older than
        // this moment can be theirs; nothing to list.
        (None, Some(_)) => Vec::new(),
        // A wrap of the pid counter, a burst, or no /proc/loadavg: list what exists.
        _ => list_pids(),
    };
    t.last_pid = last;
    let mut found: Vec<(u32, Stat)> = candidates
        .into_iter()
        .filter(|pid| !t.members.contains(pid))
        .filter_map(|pid| read_stat(pid).map(|s| (pid, s)))
        .collect();
    // Parents before children: repeat while someone joins.
    loop {
        let before = t.members.len();
        found.retain(|(pid, stat)| {
            let joins = t.members.contains(&stat.ppid) || t.groups.contains(&stat.pgid);
            if joins && is_process(*pid) {
                t.members.insert(*pid);
            }
            !joins
        });
        if t.members.len() == before {
            break;
        }
    }
}

/// How long a process has been running (its start time in `/proc/PID/stat` against the
/// system's uptime).
fn age(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let started_ticks: f64 = rest.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(
        (uptime - started_ticks / TICKS_PER_SECOND).max(0.0),
    ))
}

/// The last pid the kernel handed out (`/proc/loadavg`, fifth field).
fn last_pid() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().nth(4)?.parse().ok()
}

/// Every process id in `/proc` (threads are not listed there).
fn list_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Whether `id` is a process rather than a thread of one (`/proc/ID` also answers for
/// thread ids, which `/proc` does not list): its thread group is itself.
fn is_process(id: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{id}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse::<u32>().ok())
        == Some(id)
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses `/proc/PID/stat`: the command name is in parentheses and may hold spaces, so
/// fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Fields from the 3rd (state) on.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> Option<u64> { f.get(i - 3)?.parse().ok() };
    Some(Stat {
        ppid: num(4)? as u32,
        pgid: num(5)? as u32,
        cpu_ticks: num(14)? + num(15)?,
        rss_pages: num(24)?,
    })
}

/// A process's resident set from `/proc/PID/statm`, in bytes (0 when unreadable).
fn read_statm_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_size())
}

/// The resident set of one process right now, in bytes (0 when it is gone).
pub fn rss_of(pid: u32) -> u64 {
    read_statm_rss(pid)
}

fn page_size() -> u64 {
    // The kernel's base page: `/proc` counts resident memory in these.
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(4096)
    })
}

fn observe(tree: &Mutex<Tree>) -> Observation {
    let Ok(t) = tree.lock() else {
        return Observation::default();
    };
    let step = t.timeline.len().div_ceil(REPORT_POINTS).max(1);
    Observation {
        peak_rss_bytes: t.peak.max(t.reported_peak),
        last_rss_bytes: t.last,
        cpu_seconds: t.cpu_ticks.values().sum::<u64>() as f64 / TICKS_PER_SECOND,
        timeline: t.timeline.iter().copied().step_by(step).collect(),
        harness_peak_rss_bytes: t.harness_peak,
        sampler_cpu_seconds: (t.own_cpu + t.thread_cpu).as_secs_f64(),
    }
}

/// The CPU time (user and system) the calling thread has used so far.
fn thread_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_THREAD).map_or(Duration::ZERO, |usage| {
        let micros = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec().max(0) as u64)
                + Duration::from_micros(t.tv_usec().max(0) as u64)
        };
        micros(usage.user_time()) + micros(usage.system_time())
    })
}

/// The least-squares slope of `ys` against 0, 1, 2, …: growth per step. None for fewer
/// than three points.
pub fn slope(ys: &[f64]) -> Option<f64> {
    let n = ys.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mean_x = (nf - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f64>() / nf;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    Some(num / den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::process::{Child, Command, Stdio};

    #[test]
    fn slopes_fit_lines_and_ignore_too_few_points() {
        assert_eq!(slope(&[1.0, 2.0]), None);
        let s = slope(&[10.0, 12.0, 14.0, 16.0]).unwrap();
        assert!((s - 2.0).abs() < 1e-9);
        let flat = slope(&[5.0, 5.0, 5.0]).unwrap();
        assert!(flat.abs() < 1e-9);
    }

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 12 3 0 0 20 0 5 0 99 100000 250 18446744073709551615 0\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 7,
                pgid: 42,
                cpu_ticks: 15,
                rss_pages: 250
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_interval_grows_with_the_run_within_bounds() {
        assert_eq!(interval(Duration::ZERO), MIN_INTERVAL);
        assert_eq!(
            interval(Duration::from_millis(500)),
            Duration::from_millis(50)
        );
        assert_eq!(interval(Duration::from_secs(600)), MAX_INTERVAL);
    }

    /// VmRSS of one process, from `/proc/PID/status`, in bytes.
    fn vm_rss(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kb * 1024
    }

    /// The pids of a tree's real processes (children found through their parents' ids,
    /// independently of the sampler).
    fn tree_pids(root: u32) -> Vec<u32> {
        let mut tree = vec![root];
        loop {
            let before = tree.len();
            for pid in list_pids() {
                if let Some(s) = read_stat(pid)
                    && tree.contains(&s.ppid)
                    && !tree.contains(&pid)
                {
                    tree.push(pid);
                }
            }
            if tree.len() == before {
                return tree;
            }
        }
    }

    /// Waits for the child's `ready` line.
    fn ready(child: &mut Child) {
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the child did not start");
    }

    /// The sampler's peak over a quiet tree, compared with VmRSS summed over the tree's
    /// processes, and the count of threads the tree holds.
    fn compare_with_proc(child: &mut Child) -> (u64, u64, usize) {
        ready(child);
        let root = child.id();
        let pids = tree_pids(root);
        let threads: usize = pids
            .iter()
            .map(|p| {
                std::fs::read_dir(format!("/proc/{p}/task"))
                    .unwrap()
                    .count()
            })
            .sum();
        let truth: u64 = pids.iter().map(|p| vm_rss(*p)).sum();
        let sampler = Sampler::start(Instant::now());
        sampler.watch(root);
        let seen = sampler.stop();
        drop(child.stdin.take());
        let _ = child.wait();
        (seen.peak_rss_bytes, truth, threads)
    }

    fn within_ten_percent(seen: u64, truth: u64) -> bool {
        (seen as f64 - truth as f64).abs() <= truth as f64 * 0.10
    }

    // See: issue 8 (a 100 MiB Python process with 4 idle threads was reported at 567 MiB).
    #[test]
    fn a_threaded_python_tree_is_counted_once_per_process() {
        // A parent holding 96 MiB with four idle threads, and a child of its own with 32
        // MiB and two threads.
        let script = r#"
import os, subprocess, sys, threading
hold = bytearray(96 * 1024 * 1024)
for i in range(0, len(hold), 4096): hold[i] = 1
gate = threading.Event()
for _ in range(4): threading.Thread(target=gate.wait, daemon=True).start()
kid = subprocess.Popen([sys.executable, "-c", "import sys, threading\nb = bytearray(32 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\ng = threading.Event()\n[threading.Thread(target=g.wait, daemon=True).start() for _ in range(2)]\nprint('ready', flush=True)\nsys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
kid.stdout.readline()
print("ready", flush=True)
sys.stdin.read()
kid.stdin.close(); kid.wait()
"#;
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let (seen, truth, threads) = compare_with_proc(&mut child);
        assert!(threads >= 8, "the tree holds {threads} threads");
        assert!(truth >= 128 << 20, "the tree holds {truth} bytes");
        assert!(
            within_ten_percent(seen, truth),
            "sampler peak {seen} vs /proc VmRSS {truth}"
        );
    }

    /// Run as a child by the test below: 64 MiB and four threads, then waits.
    #[test]
    #[ignore = "a helper process for a_threaded_rust_child_is_counted_once"]
    fn threaded_rust_child() {
        if std::env::var_os("SAMPLER_TEST_CHILD").is_none() {
            return;
        }
        let hold: Vec<u8> = vec![1; 64 << 20];
        let gate = Arc::new(std::sync::Barrier::new(5));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let gate = Arc::clone(&gate);
                std::thread::spawn(move || {
                    gate.wait();
                })
            })
            .collect();
        println!("ready");
        let mut rest = String::new();
        let _ = std::io::stdin().read_line(&mut rest);
        gate.wait();
        for t in threads {
            let _ = t.join();
        }
        assert_eq!(hold.iter().map(|b| *b as usize).sum::<usize>(), 64 << 20);
    }

    #[test]
    fn a_threaded_rust_child_is_counted_once() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sampler::tests::threaded_rust_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env("SAMPLER_TEST_CHILD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the test binary runs");
        // libtest prints its own lines first; skip to ours.
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line.trim() != "ready" {
            line.clear();
        }
        assert_eq!(line.trim(), "ready");
        let root = child.id();
        let threads = std::fs::read_dir(format!("/proc/{root}/task"))
            .unwrap()
            .count();
        let truth: u64 = tree_pids(root).iter().map(|p| vm_rss(*p)).sum();
        let started = Instant::now();
        let sampler = Sampler::start(started);
        sampler.watch(root);
        let seen = sampler.stop();
        let wall = started.elapsed().as_secs_f64();
        drop(child.stdin.take());
        let _ = child.wait();
        // The sampling costs less CPU than the time it took (two threads at most were busy
        // with it). It may read as zero: the kernel accounts a thread's CPU in ticks, and a
        // few milliseconds of work can fall between two of them.
        assert!(
            seen.sampler_cpu_seconds >= 0.0 && seen.sampler_cpu_seconds <= 2.0 * wall,
            "sampler CPU {}s over {wall}s",
            seen.sampler_cpu_seconds
        );
        assert!(threads >= 5, "the child holds {threads} threads");
        assert!(truth >= 64 << 20);
        assert!(
            within_ten_percent(seen.peak_rss_bytes, truth),
            "sampler peak {} vs /proc VmRSS {truth}",
            seen.peak_rss_bytes
        );
    }

    #[test]
    fn a_process_started_after_watching_began_joins_the_tree() {
        // The shell starts its 48 MiB child only after being told to.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "echo ready; read go; python3 -c \"import sys; b = bytearray(48 << 20); b[::4096] = b'x' * len(b[::4096]); print('up', flush=True); sys.stdin.read()\"",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        ready(&mut child);
        let sampler = Sampler::start(Instant::now());
        sampler.watch(child.id());
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "up");
        let seen = sampler.snapshot();
        drop(stdin);
        let _ = child.wait();
        assert!(
            seen.peak_rss_bytes >= 48 << 20,
            "peak {}",
            seen.peak_rss_bytes
        );
        assert!(seen.harness_peak_rss_bytes > 0);
        assert!(!seen.timeline.is_empty());
        let after = sampler.stop();
        assert_eq!(after.last_rss_bytes, 0, "the exited tree holds nothing");
    }
}
