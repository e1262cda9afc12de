//! Upstream servers for the proxy tests, and child processes that are always reaped.

use std::net::SocketAddr;
use std::time::Duration;

use chaos::proxy::{Direction, FaultProxy, ProxyConfig, Toxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A server task that is aborted (and its sockets closed) when the test ends.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Echoes whatever each connection sends, until it closes its side; then closes.
pub async fn echo_server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
                let _ = write.shutdown().await;
            });
        }
    });
    Server { addr, task }
}

/// Sends `payload` to each connection, then closes it (`close = true`) or holds it open
/// until the peer closes.
pub async fn sending_server(payload: Vec<u8>, close: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let payload = payload.clone();
            tokio::spawn(async move {
                let _ = socket.write_all(&payload).await;
                if close {
                    let _ = socket.shutdown().await;
                } else {
                    let mut buf = [0; 1024];
                    while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                }
            });
        }
    });
    Server { addr, task }
}

/// Reports what each connection's first read returned: the bytes, or the error kind.
pub async fn reporting_server() -> (
    Server,
    mpsc::UnboundedReceiver<Result<Vec<u8>, std::io::ErrorKind>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut received = Vec::new();
                let mut buf = [0; 1024];
                let outcome = loop {
                    match socket.read(&mut buf).await {
                        Ok(0) => break Ok(received),
                        Ok(n) => received.extend_from_slice(&buf[..n]),
                        Err(error) => break Err(error.kind()),
                    }
                };
                let _ = tx.send(outcome);
            });
        }
    });
    (Server { addr, task }, rx)
}

/// A proxy to `upstream` with these toxics, seeded with `seed`.
pub async fn proxy(upstream: SocketAddr, toxics: Vec<Toxic>, seed: u64) -> FaultProxy {
    let mut config = ProxyConfig::new(upstream);
    config.toxics = toxics;
    FaultProxy::start(config, seed).await.unwrap()
}

pub fn toxic(stream: Direction, kind: ToxicKind) -> Toxic {
    Toxic::new("", stream, kind)
}

pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Sends `message` and reads the same number of bytes back.
pub async fn round_trip(client: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    client.write_all(message).await.unwrap();
    let mut reply = vec![0; message.len()];
    client.read_exact(&mut reply).await.unwrap();
    reply
}

/// Reads until EOF or an error; returns the bytes and how it ended.
pub async fn read_all(client: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match client.read(&mut buf).await {
            Ok(0) => return (received, Ok(())),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) => return (received, Err(error)),
        }
    }
}

/// A child process in its own process group, killed (the whole group) and reaped when
/// dropped, so a failing test leaves nothing behind.
pub struct Child {
    pub child: tokio::process::Child,
    pub pid: u32,
    reaped: bool,
}

impl Child {
    pub fn spawn(command: &mut tokio::process::Command) -> Child {
        let child = command.process_group(0).kill_on_drop(true).spawn().unwrap();
        let pid = child.id().unwrap();
        Child {
            child,
            pid,
            reaped: false,
        }
    }

    /// Waits for the exit, failing the test after 10 s.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the child exits within 10s")
            .unwrap();
        self.reaped = true;
        status
    }
}

impl Child {
    /// Collects stdout and stderr (if piped) and the exit status, failing after 30 s.
    pub async fn output(&mut self) -> std::process::Output {
        async fn drain(pipe: Option<impl AsyncReadExt + Unpin>) -> Vec<u8> {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf).await;
            }
            buf
        }
        let stdout = self.child.stdout.take();
        let stderr = self.child.stderr.take();
        let (stdout, stderr) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(drain(stdout), drain(stderr))
        })
        .await
        .expect("the child closes its output within 30s");
        let status = self.wait().await;
        std::process::Output {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SIGKILL acts on stopped processes too. The whole group, in case the child
        // started others; tokio reaps the child itself (`kill_on_drop`).
        if self.reaped {
            return; // its pid may belong to someone else by now
        }
        let pgid = nix::unistd::Pid::from_raw(self.pid as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// The state letter in `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, …).
pub fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // the command name is in parentheses and may contain spaces: the state follows ") "
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.chars().next().unwrap()
}

/// Blocks until the child `pid` has stopped (`waitid(WSTOPPED | WNOWAIT)`, which leaves the
/// status for others to collect).
pub fn wait_stopped(pid: u32) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    waitid(Id::Pid(pid), WaitPidFlag::WSTOPPED | WaitPidFlag::WNOWAIT).unwrap();
}

/// Blocks until the child `pid` has been continued.
pub fn wait_continued(pid: u32) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    waitid(Id::Pid(pid), WaitPidFlag::WCONTINUED | WaitPidFlag::WNOWAIT).unwrap();
}
