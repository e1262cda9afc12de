//! `refpipe serve`: the HTTP mode, driven as a harness would drive it.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

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
    assert_eq!(status["result"]["mode"], "resilient");
    assert_eq!(status["result"]["code"], "print('sword')");
    assert_eq!(status["resumed"], false);
    assert_eq!(status["resume_count"], 0);

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

fn with_state(mut env: Vec<(String, String)>, dir: &Path) -> Vec<(String, String)> {
    env.push((
        "REFPIPE_STATE_DIR".to_owned(),
        dir.to_str().unwrap().to_owned(),
    ));
    env
}

#[tokio::test]
async fn a_killed_server_resumes_its_runs_without_repeating_work() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    let critic = Gate::new();
    let verdict = completion(json!({"score": 9, "needs_refinement": false}));
    stub.on(
        "critic",
        vec![Reply::Held(critic.clone(), Box::new(verdict))],
    );
    let state = tempfile::tempdir().unwrap();
    let env = with_state(env_for(&stub), state.path());

    let first = Served::start(&env, &[]).await;
    let id = first.submit(json!({"prompt": "sword"})).await;
    // the critic is asked once the planner, the coder and the executor are done
    stub.wait_for_calls("critic", 1).await;
    let (exit, _) = first.stop(Signal::SIGKILL).await;
    assert_eq!(exit.signal(), Some(Signal::SIGKILL as i32));

    let second = Served::start(&env, &[]).await;
    critic.open();
    let status = second.wait_done(&id).await;
    let result = &status["result"];
    assert_eq!(result["status"], "completed", "{status:#}");
    assert_eq!(status["resumed"], true);
    assert_eq!(status["resume_count"], 1);
    // no repeated work: one planner and one coder request across both processes
    assert_eq!(stub.calls("planner").len(), 1);
    assert_eq!(stub.calls("coder").len(), 1);
    assert_eq!(stub.calls("executor").len(), 1);
    assert_eq!(
        stub.calls("critic").len(),
        2,
        "the first critic call died with its process"
    );
    assert_eq!(result["subtasks"], json!(["blade", "hilt"]));
    assert_eq!(result["code"], "print('sword')");
    assert_eq!(result["execution"]["success"], true);
    assert_eq!(result["execution_attempts"], 1);
    assert_eq!(result["critic"]["score"], 9.0);
    assert_eq!(
        result["llm_requests"],
        json!({"planner": 1, "coder": 1, "critic": 1})
    );
    assert_eq!(
        result["usage"]["total_tokens"], 45,
        "usage of the steps before the kill is kept"
    );

    let next = second.submit(json!({"prompt": "shield"})).await;
    assert_ne!(next, id, "run ids stay unique across restarts");
    assert_eq!(second.wait_done(&next).await["resumed"], false);
    let (exit, stderr) = second.stop(Signal::SIGTERM).await;
    assert!(exit.success(), "{exit:?}\n{stderr}");
    let resuming = format!("{id}: resuming at step `critique` (resume 1)");
    assert!(stderr.contains(&resuming), "{stderr}");
}

#[tokio::test]
async fn finished_runs_survive_a_restart_and_bad_state_files_are_skipped() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    let state = tempfile::tempdir().unwrap();
    let env = with_state(env_for(&stub), state.path());

    let first = Served::start(&env, &[]).await;
    let id = first.submit(json!({"prompt": "sword"})).await;
    let done = first.wait_done(&id).await;
    let (exit, stderr) = first.stop(Signal::SIGTERM).await;
    assert!(exit.success(), "{exit:?}\n{stderr}");

    // a half-written file, and one that is not JSON at all
    std::fs::write(
        state.path().join("run-7.json"),
        r#"{"format": 1, "id": "run-7", "requ"#,
    )
    .unwrap();
    std::fs::write(state.path().join("run-8.json"), "\u{0}garbage").unwrap();

    let second = Served::start(&env, &[]).await;
    let (code, again) = second.get(&id).await;
    assert_eq!(code, 200);
    assert_eq!(again, done, "served as it was");
    assert_eq!(second.get("run-7").await.0, 404);
    let next = second.submit(json!({"prompt": "shield"})).await;
    assert!(
        ![id.as_str(), "run-7", "run-8"].contains(&next.as_str()),
        "{next}"
    );
    second.wait_done(&next).await;
    let (exit, stderr) = second.stop(Signal::SIGTERM).await;
    assert!(exit.success(), "{exit:?}\n{stderr}");
    for file in ["run-7.json", "run-8.json"] {
        let skipped = format!("{file}`: it is not a run record");
        assert!(stderr.contains(&skipped), "{skipped}\n{stderr}");
    }
    assert_eq!(
        stub.calls("planner").len(),
        2,
        "the finished run was not run again"
    );
}

#[tokio::test]
async fn fragile_serve_keeps_runs_in_memory_only() {
    let stub = Stub::start().await;
    script_happy_path(&stub);
    let state = tempfile::tempdir().unwrap();
    let env = with_state(env_for(&stub), state.path());

    let first = Served::start(&env, &["--fragile"]).await;
    let id = first.submit(json!({"prompt": "sword"})).await;
    let done = first.wait_done(&id).await;
    assert_eq!(done["result"]["mode"], "fragile");
    let (exit, stderr) = first.stop(Signal::SIGTERM).await;
    assert!(exit.success(), "{exit:?}\n{stderr}");
    assert!(
        stderr.contains("is not used; runs are kept in memory only"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);

    let second = Served::start(&env, &["--fragile"]).await;
    let (code, body) = second.get(&id).await;
    assert_eq!(code, 404);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("(fragile mode: runs are kept in memory only"),
        "{message}"
    );
    second.stop(Signal::SIGTERM).await;
}

#[tokio::test]
async fn an_unusable_state_dir_exits_3() {
    let stub = Stub::start().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    let state = file.path().join("state");
    let child = refpipe(&env_for(&stub))
        .args(["serve", "--state-dir", state.to_str().unwrap()])
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("cannot use `"), "{stderr}");
    assert!(output.stdout.is_empty());
}
