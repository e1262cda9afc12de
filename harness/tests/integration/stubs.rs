use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::spawn_harness;

fn get(url: &str, path: &str) -> String {
    let addr = url.trim_start_matches("http://").split('/').next().unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn stubs_print_their_urls_serve_and_stop_on_ctrl_c() {
    let mut child = spawn_harness(&["stubs", "../scenarios/refpipe/flow/happy_path.toml"]);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut llm = String::new();
    out.read_line(&mut llm).unwrap();
    let llm = llm
        .trim()
        .strip_prefix("llm: ")
        .expect("first line names the llm stub")
        .to_string();
    assert!(
        llm.starts_with("http://127.0.0.1:") && llm.ends_with("/v1"),
        "{llm}"
    );
    let mut executor = String::new();
    out.read_line(&mut executor).unwrap();
    assert!(
        executor.starts_with("executor.sandbox: http://127.0.0.1:"),
        "{executor}"
    );

    let models = get(&llm, "/v1/models");
    assert!(models.starts_with("HTTP/1.1 200"), "{models}");
    assert!(models.contains("\"object\":\"list\""), "{models}");

    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGINT).unwrap();
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
}
