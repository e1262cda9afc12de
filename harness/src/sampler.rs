//! Memory and CPU of a target's whole process tree, sampled (with sysinfo) while it runs,
//! and the harness's own resident set beside it.
//!
//! A sampler thread refreshes the process table every `interval`, sums the resident set
//! of the root process and all its descendants, and remembers each process's CPU time
//! (a process that has exited keeps the CPU time it was last seen with). The timeline is
//! downsampled when it is read, so memory stays bounded however long the target runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// At most this many points are kept in a timeline (older ones are thinned).
const MAX_POINTS: usize = 2_000;
/// A timeline in a report has at most this many points.
const REPORT_POINTS: usize = 200;

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
}

#[derive(Default)]
struct State {
    peak: u64,
    last: u64,
    cpu_ms: HashMap<u32, u64>,
    timeline: Vec<(f64, u64)>,
    harness_peak: u64,
}

/// Samples a process tree until stopped (or dropped).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    roots: Arc<Mutex<Vec<Root>>>,
    state: Arc<Mutex<State>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling; the trees to watch are added with [`Sampler::watch`].
    pub fn start(started: Instant, interval: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let root_pid: Arc<Mutex<Vec<Root>>> = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new(State::default()));
        let thread = {
            let (stop, root_pid, state) =
                (Arc::clone(&stop), Arc::clone(&root_pid), Arc::clone(&state));
            std::thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    let mut sys = System::new();
                    let me = std::process::id();
                    while !stop.load(Ordering::Relaxed) {
                        sample(&mut sys, &root_pid, me, started, &state);
                        std::thread::park_timeout(interval);
                    }
                    // One last look, so short runs still get a sample.
                    sample(&mut sys, &root_pid, me, started, &state);
                })
                .ok()
        };
        Sampler {
            stop,
            roots: root_pid,
            state,
            thread,
        }
    }

    /// Adds a process tree to watch (a run's target, a restarted service); trees whose
    /// root has exited drop out by themselves.
    pub fn watch(&self, root: u32) {
        if let Ok(mut roots) = self.roots.lock() {
            roots.push(Root {
                pid: root,
                seen: false,
                misses: 0,
            });
        }
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }

    /// Takes one sample now (e.g. right before the target is stopped) and returns what
    /// has been seen so far, without stopping.
    pub fn snapshot(&self) -> Observation {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        observe(&self.state)
    }

    /// Stops sampling and returns everything seen.
    pub fn stop(mut self) -> Observation {
        self.halt();
        observe(&self.state)
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

/// A watched tree's root. A process being started may be missing from one refresh of the
/// process table (it is mid-exec): a root drops out only once it was seen and is gone, or
/// after it was never seen for a while.
struct Root {
    pid: u32,
    seen: bool,
    misses: u32,
}

/// Refreshes a root never seen for this many samples is given up on.
const GIVE_UP_AFTER: u32 = 200;

fn sample(
    sys: &mut System,
    roots: &Mutex<Vec<Root>>,
    me: u32,
    started: Instant,
    state: &Mutex<State>,
) {
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_memory().with_cpu(),
    );
    let harness_rss = sys.process(Pid::from_u32(me)).map_or(0, |p| p.memory());
    let mut tree = HashSet::new();
    if let Ok(mut roots) = roots.lock() {
        for r in roots.iter_mut() {
            if sys.process(Pid::from_u32(r.pid)).is_some() {
                r.seen = true;
                tree.insert(r.pid);
            } else {
                r.misses += 1;
            }
        }
        roots.retain(|r| {
            if r.seen {
                tree.contains(&r.pid)
            } else {
                r.misses < GIVE_UP_AFTER
            }
        });
    }
    if !tree.is_empty() {
        // Descendants: repeat until no process joins (parents are listed by pid).
        loop {
            let before = tree.len();
            for (pid, p) in sys.processes() {
                if let Some(parent) = p.parent()
                    && tree.contains(&parent.as_u32())
                {
                    tree.insert(pid.as_u32());
                }
            }
            if tree.len() == before {
                break;
            }
        }
    }
    let mut rss = 0;
    let Ok(mut s) = state.lock() else { return };
    for pid in &tree {
        if let Some(p) = sys.process(Pid::from_u32(*pid)) {
            rss += p.memory();
            s.cpu_ms.insert(*pid, p.accumulated_cpu_time());
        }
    }
    s.harness_peak = s.harness_peak.max(harness_rss);
    if tree.is_empty() {
        return;
    }
    s.peak = s.peak.max(rss);
    s.last = rss;
    s.timeline.push((started.elapsed().as_secs_f64(), rss));
    if s.timeline.len() > MAX_POINTS {
        // Keep every other point: the shape stays, the memory stays bounded.
        let thinned: Vec<_> = s.timeline.iter().copied().step_by(2).collect();
        s.timeline = thinned;
    }
}

fn observe(state: &Mutex<State>) -> Observation {
    let Ok(s) = state.lock() else {
        return Observation::default();
    };
    let step = s.timeline.len().div_ceil(REPORT_POINTS).max(1);
    Observation {
        peak_rss_bytes: s.peak,
        last_rss_bytes: s.last,
        cpu_seconds: s.cpu_ms.values().sum::<u64>() as f64 / 1000.0,
        timeline: s.timeline.iter().copied().step_by(step).collect(),
        harness_peak_rss_bytes: s.harness_peak,
    }
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

    #[test]
    fn slopes_fit_lines_and_ignore_too_few_points() {
        assert_eq!(slope(&[1.0, 2.0]), None);
        let s = slope(&[10.0, 12.0, 14.0, 16.0]).unwrap();
        assert!((s - 2.0).abs() < 1e-9);
        let flat = slope(&[5.0, 5.0, 5.0]).unwrap();
        assert!(flat.abs() < 1e-9);
    }

    #[test]
    fn a_child_that_allocates_is_seen_with_its_children() {
        // A shell whose child holds 64 MiB: the tree's peak must include the child.
        let mut child = std::process::Command::new("python3")
            .args(["-c", "import sys, time; b = bytearray(64 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.read()"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let sampler = Sampler::start(Instant::now(), Duration::from_millis(10));
        sampler.watch(child.id());
        let obs = sampler.stop();
        drop(child.stdin.take());
        let _ = child.wait();
        assert!(
            obs.peak_rss_bytes >= 64 * 1024 * 1024,
            "peak {}",
            obs.peak_rss_bytes
        );
        assert!(obs.harness_peak_rss_bytes > 0);
        assert!(!obs.timeline.is_empty());
    }
}
