//! Running the external programs some tests read the reports with (headless Chromium,
//! xmllint, Python's junitparser): finding them, or failing with how to install them;
//! and running them with a time limit, killed with everything they started on every path.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The first `program` on `PATH`, or the first of `fallbacks` that exists. Fails the test
/// with `install` (how to get it) when there is none: a missing tool must not pass silently.
pub fn require(program: &str, fallbacks: &[&str], what: &str, install: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path
        .or_else(|| fallbacks.iter().map(PathBuf::from).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "{what} is needed by this test and `{program}` was not found on PATH; \
                 install it with `{install}` (`cargo xtask test` installs it)"
            )
        })
}

/// What a program did.
#[derive(Debug)]
pub struct Ran {
    /// None when it was killed for taking too long.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `cmd` in a process group of its own, capturing stdout and stderr, for at most
/// `limit`. The whole group is killed afterwards, whether the program finished, timed
/// out, or the test panicked: a browser's helper processes do not outlive the test.
pub fn run(mut cmd: Command, limit: Duration) -> Ran {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let mut guard = Group(child);
    let stdout = drain(guard.0.stdout.take());
    let stderr = drain(guard.0.stderr.take());

    let deadline = Instant::now() + limit;
    let status = loop {
        match guard.0.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => break None,
            Err(e) => panic!("waiting for {:?}: {e}", cmd.get_program()),
        }
    };
    drop(guard);
    // The group is dead, so the pipes close; a grace period covers anything that left it.
    let grace = Duration::from_secs(5);
    Ran {
        status,
        stdout: stdout.recv_timeout(grace).unwrap_or_default(),
        stderr: stderr.recv_timeout(grace).unwrap_or_default(),
    }
}

/// Reads a pipe to its end on a thread; the text arrives on the channel.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
        });
    }
    rx
}

/// A child that leads its process group; dropping it kills the group and reaps the child.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use nix::sys::signal::{Signal, killpg};
            use nix::unistd::Pid;
            if let Ok(pid) = i32::try_from(self.0.id()) {
                // ESRCH (nothing left) is what we want.
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `<rel>` in this crate's folder, e.g. `tests/fixtures/junit.xsd`.
pub fn crate_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
#[should_panic(expected = "install it with `apt-get install no-such-tool`")]
fn a_missing_tool_fails_with_how_to_install_it() {
    require(
        "no-such-tool-agent-harness",
        &["/nonexistent/no-such-tool"],
        "a tool",
        "apt-get install no-such-tool",
    );
}
