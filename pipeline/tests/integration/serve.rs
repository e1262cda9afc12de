//! `refpipe serve`: the HTTP mode, driven as a harness would drive it.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

#[tokio::test]
async fn submit_poll_and_shut_down() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    let mut env = env_for(&stub);
    env.push(("REFPIPE_API_TOKEN".to_owned(), "s3cret".to_owned()));
    let mut child = refpipe(&env).arg("serve").spawn().unwrap();

    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("no listening line")
        .unwrap()
        .unwrap();
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let http = reqwest::Client::new();
    let health: Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));

    let runs = format!("{base}/runs");
    let denied = http
        .post(&runs)
        .json(&json!({"prompt": "sword"}))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let denied: Value = denied.json().await.unwrap();
    assert_eq!(denied["error"]["kind"], "unauthorized");

    let invalid = http
        .post(&runs)
        .bearer_auth("s3cret")
        .body("{\"prompt\": \"\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let invalid: Value = invalid.json().await.unwrap();
    assert_eq!(invalid["error"]["kind"], "validation");

    let accepted = http
        .post(&runs)
        .bearer_auth("s3cret")
        .json(&json!({"prompt": "sword"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let id = accepted.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let run_url = format!("{runs}/{id}");
    let status = tokio::time::timeout(PATIENCE, async {
        loop {
            let status: Value = http
                .get(&run_url)
                .bearer_auth("s3cret")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(status["id"], id.as_str());
            match status["state"].as_str().unwrap() {
                "done" => break status,
                "queued" | "running" => assert_eq!(status["result"], Value::Null),
                other => panic!("unexpected state {other}"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the run never finished");
    assert_eq!(status["result"]["status"], "completed");
    assert_eq!(status["result"]["code"], "print('sword')");

    let unknown = http
        .get(format!("{runs}/run-999"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let pid = Pid::from_raw(child.id().unwrap().try_into().unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let exit = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("no shutdown")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn serve_config_error_exits_3() {
    let mut child = refpipe(&[]).arg("serve").spawn().unwrap();
    let exit = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(3));
}
