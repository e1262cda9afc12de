//! The processes a bench starts, and stopping every one of them: when it is done with
//! them, on an error (their guards' `Drop`), and on Ctrl-C, SIGTERM or SIGHUP (a thread
//! waits for those, stops what is still running, and exits with 130).
//!
//! Every process is tracked by pid while it runs. WireMock's JVM is started by a script
//! that backgrounds it and prints its pid; until the script has printed it, the JVM is
//! found by the loopback port the bench chose for it (listening on it, or named on its
//! command line while it starts).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How a running process is found when it must be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracked {
    Pid(u32),
    /// WireMock's JVM on this loopback port, starting or started.
    WireMockPort(u16),
}

static TRACKED: Mutex<Vec<(u64, Tracked)>> = Mutex::new(Vec::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// True once Ctrl-C, SIGTERM or SIGHUP came: what is running now fails, and is no result.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
static NEXT_ID: Mutex<u64> = Mutex::new(0);

fn track(what: Tracked) -> u64 {
    let mut next = NEXT_ID.lock().unwrap_or_else(|e| e.into_inner());
    *next += 1;
    TRACKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((*next, what));
    *next
}

fn untrack(id: u64) {
    TRACKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(tracked, _)| *tracked != id);
}

/// Stops every tracked process (SIGTERM, then SIGKILL after a grace period).
pub fn stop_all() {
    let tracked: Vec<Tracked> = TRACKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .map(|(_, what)| what)
        .collect();
    let ports: Vec<u16> = tracked
        .iter()
        .filter_map(|what| match what {
            Tracked::WireMockPort(port) => Some(*port),
            Tracked::Pid(_) => None,
        })
        .collect();
    let pids: Vec<u32> = tracked
        .iter()
        .filter_map(|what| match what {
            Tracked::Pid(pid) => Some(*pid),
            Tracked::WireMockPort(port) => wiremock_on(*port),
        })
        .collect();
    for &pid in &pids {
        signal(pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &pid in &pids {
        if alive(pid) {
            signal(pid, Signal::SIGKILL);
        }
    }
    // a JVM its script launched just before the script was stopped
    for port in ports {
        if let Some(pid) = wiremock_on(port) {
            terminate(pid, Duration::from_secs(5));
        }
    }
}

/// On Ctrl-C, SIGTERM or SIGHUP: stops every tracked process, then exits with 130.
pub fn stop_all_on_signal() {
    let spawned = std::thread::Builder::new()
        .name("bench-signals".into())
        .spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                INTERRUPTED.store(true, Ordering::SeqCst);
                eprintln!("\ninterrupted: stopping the processes the bench started");
                stop_all();
                std::process::exit(i32::from(harness::exit_codes::INTERRUPTED));
            });
        });
    if let Err(e) = spawned {
        eprintln!(
            "warning: cannot watch for Ctrl-C ({e}); an interrupted bench may leave servers running"
        );
    }
}

fn signal(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// True while `pid` runs (a zombie has stopped running).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X'))
    })
}

/// Stops `pid`: SIGTERM, then SIGKILL if it still runs after `grace`.
fn terminate(pid: u32, grace: Duration) {
    signal(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        signal(pid, Signal::SIGKILL);
    }
}

/// WireMock's JVM for `port`: the process listening on it or, while it is still starting,
/// the one whose command line is WireMock's with `--port PORT` (the port the bench chose,
/// so no other process matches).
fn wiremock_on(port: u16) -> Option<u32> {
    pid_listening_on(port).or_else(|| {
        let port = port.to_string();
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                let is_wiremock = args
                    .iter()
                    .any(|arg| String::from_utf8_lossy(arg).contains("wiremock-standalone"));
                let on_port = args
                    .windows(2)
                    .any(|pair| pair[0] == b"--port" && pair[1] == port.as_bytes());
                (is_wiremock && on_port).then_some(pid)
            })
    })
}

/// The process listening on `127.0.0.1:port` (IPv4), found through `/proc/net/tcp` and the
/// processes' open sockets.
fn pid_listening_on(port: u16) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        let (_, hex_port) = local.split_once(':')?;
        // state 0A is LISTEN
        (u16::from_str_radix(hex_port, 16).ok()? == port && fields.get(3)? == &"0A")
            .then(|| fields.get(9).map(|inode| inode.to_string()))
            .flatten()
    })?;
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == &*wanted) {
                return Some(pid);
            }
        }
    }
    None
}

/// A server started by the bench (`benchkit llm-stub`, `benchkit floor`): it prints
/// `url URL` once it answers, and exits when its stdin closes. Stopped on drop.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    pub url: String,
    pub pid: u32,
    id: u64,
}

impl Server {
    pub fn start(program: &Path, args: &[&str], what: &str) -> Result<Server, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {what} (`{}`): {e}", program.display()))?;
        let pid = child.id();
        let id = track(Tracked::Pid(pid));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut server = Server {
            child,
            stdin,
            url: String::new(),
            pid,
            id,
        };
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = stdout {
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
        }
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("url ") => {
                server.url = line["url ".len()..].trim().to_string();
                Ok(server)
            }
            Ok(line) => Err(format!("{what} did not start (it printed {line:?})")),
            Err(_) => Err(format!("{what} printed no URL within 30 s")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // its stdin closing is its signal to stop
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                untrack(self.id);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        terminate(self.pid, Duration::from_secs(2));
        let _ = self.child.wait();
        untrack(self.id);
    }
}

/// A process the bench did not spawn directly (WireMock's JVM); stopped on drop.
pub struct Foreign {
    pub pid: u32,
    id: u64,
}

impl Drop for Foreign {
    fn drop(&mut self) {
        terminate(self.pid, Duration::from_secs(5));
        untrack(self.id);
    }
}

/// Starts WireMock with the `wiremock-java` script (`script PORT ROOT`), which prints the
/// JVM's pid once it answers.
pub fn start_wiremock(script: &Path, port: u16, root: &Path) -> Result<Foreign, String> {
    // until the script says which pid it is, the JVM is the one listening on the port
    let by_port = track(Tracked::WireMockPort(port));
    let output = run(
        Command::new(script).arg(port.to_string()).arg(root),
        "wiremock-java",
        Duration::from_secs(300),
    );
    let pid = output.and_then(|stdout| {
        stdout
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("wiremock-java printed no pid: {stdout:?}"))
    });
    match pid {
        Ok(pid) => {
            let foreign = Foreign {
                pid,
                id: track(Tracked::Pid(pid)),
            };
            untrack(by_port);
            Ok(foreign)
        }
        Err(e) => {
            if let Some(pid) = wiremock_on(port) {
                terminate(pid, Duration::from_secs(5));
            }
            untrack(by_port);
            Err(e)
        }
    }
}

/// Starts a server with a script that prints the server's pid once it answers (as
/// `shared/tools/llmposter` does); stopped on drop.
pub fn start_script_server(command: &mut Command, what: &str) -> Result<Foreign, String> {
    let stdout = run(command, what, Duration::from_secs(900))?;
    let pid = stdout
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("{what} printed no pid: {stdout:?}"))?;
    Ok(Foreign {
        pid,
        id: track(Tracked::Pid(pid)),
    })
}

/// Runs `command` to its end (killed after `timeout`), its stderr shown; returns its
/// stdout, or an error naming `what` when it failed.
pub fn run(command: &mut Command, what: &str, timeout: Duration) -> Result<String, String> {
    let (status, out) = run_watched(command, what, timeout, &mut |_| {})?;
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Runs `command` to its end (killed after `timeout`), calling `watch`
/// with its pid every 20 ms while it runs; returns how it exited and its stdout.
pub fn run_watched(
    command: &mut Command,
    what: &str,
    timeout: Duration,
    watch: &mut dyn FnMut(u32),
) -> Result<(ExitStatus, String), String> {
    // stderr as the caller set it (by default, shown)
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let pid = child.id();
    let id = track(Tracked::Pid(pid));
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(stdout) = stdout.as_mut() {
            let _ = stdout.read_to_string(&mut out);
        }
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                watch(pid);
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                terminate(pid, Duration::from_secs(2));
                let _ = child.wait();
                break None;
            }
        }
    };
    untrack(id);
    let out = reader.join().unwrap_or_default();
    match status {
        Some(status) => Ok((status, out)),
        None => Err(format!(
            "{what} did not finish within {}s",
            timeout.as_secs()
        )),
    }
}

/// Idle processes (`sleep`), to show that a cost follows the target and not the machine;
/// each is killed by its pid on drop.
pub struct Idle {
    children: Vec<(Child, u64)>,
}

impl Idle {
    pub fn start(count: usize) -> Result<Idle, String> {
        let mut idle = Idle {
            children: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let child = Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start an idle process (`sleep`): {e}"))?;
            let id = track(Tracked::Pid(child.id()));
            idle.children.push((child, id));
        }
        Ok(idle)
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        for (child, _) in &self.children {
            signal(child.id(), Signal::SIGKILL);
        }
        for (child, id) in &mut self.children {
            let _ = child.wait();
            untrack(*id);
        }
    }
}
