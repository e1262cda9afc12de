use std::time::Duration;

use mocks::{ExecMatch, ExecReply, ExecReplyBody, ExecRule, ExecutorStub, ExecutorStubConfig};
use serde_json::{Value, json};

use crate::support::{Response, send};

async fn sandbox(rules: Vec<ExecRule>) -> ExecutorStub {
    ExecutorStub::start(ExecutorStubConfig {
        name: "sandbox".into(),
        rules,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn rule(n: u32, when: ExecMatch, replies: Vec<ExecReply>) -> ExecRule {
    ExecRule {
        id: format!("executor.sandbox[{n}]"),
        when,
        replies,
    }
}

async fn post(url: String, body: &Value) -> Response {
    send(reqwest::Client::new().post(url).json(body)).await
}

#[tokio::test]
async fn outcome_reply_shape() {
    let reply = ExecReply::new(ExecReplyBody::Outcome {
        success: true,
        artifacts: vec!["asset.blend".into()],
        logs: "rendered 1 frame".into(),
        errors: vec![],
    });
    let stub = sandbox(vec![rule(1, ExecMatch::default(), vec![reply])]).await;
    assert_eq!(stub.execute_url(), format!("{}/execute", stub.uri()));
    let response = post(stub.execute_url(), &json!({"code": "import bpy"})).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json(),
        json!({"success": true, "artifacts": ["asset.blend"], "logs": "rendered 1 frame", "errors": []})
    );
    let journal = stub.journal();
    assert_eq!(journal[0].source, "executor.sandbox");
    assert_eq!(
        journal[0].rule.as_deref(),
        Some("executor.sandbox[1] reply 1/1")
    );
    assert_eq!(journal[0].summary, r#"body="{"code":"import bpy"}""#);
    assert_eq!(
        journal[0].served,
        format!("200 json ({} bytes)", response.text.len())
    );
}

#[tokio::test]
async fn sequence_and_first_match_by_path_and_body() {
    let stub = sandbox(vec![
        rule(
            1,
            ExecMatch {
                path: Some("/execute".into()),
                contains: Some("crash".into()),
            },
            vec![ExecReply {
                status: 500,
                ..ExecReply::new(ExecReplyBody::Json(json!({"detail": "sandbox died"})))
            }],
        ),
        rule(
            2,
            ExecMatch::default(),
            vec![ExecReply::outcome(false), ExecReply::outcome(true)],
        ),
    ])
    .await;
    let url = stub.execute_url();
    let mut got = Vec::new();
    for code in ["a", "crash()", "b", "c"] {
        let response = post(url.clone(), &json!({"code": code})).await;
        got.push((response.status, response.json()));
    }
    assert_eq!(got[0].1["success"], false);
    assert_eq!(got[1], (500, json!({"detail": "sandbox died"})));
    assert_eq!(got[2].1["success"], true);
    assert_eq!(got[3].1["success"], true);
    let rules: Vec<String> = stub
        .journal()
        .into_iter()
        .map(|e| e.rule.unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "executor.sandbox[2] reply 1/2",
            "executor.sandbox[1] reply 1/1",
            "executor.sandbox[2] reply 2/2",
            "executor.sandbox[2] reply 2/2",
        ]
    );
}

#[tokio::test]
async fn unmatched_call_names_the_closest_rule() {
    let stub = sandbox(vec![rule(
        1,
        ExecMatch {
            path: Some("/run".into()),
            contains: None,
        },
        vec![ExecReply::outcome(true)],
    )])
    .await;
    let response = post(stub.execute_url(), &json!({"code": "x"})).await;
    assert_eq!(response.status, 404);
    let closest =
        r#"executor.sandbox[1] (when.path = "/run" but the request's path is "/execute")"#;
    assert_eq!(
        response.json(),
        json!({"error": format!("agent-harness: no executor rule matched POST /execute (closest: {closest})")})
    );
    let journal = stub.journal();
    let unmatched = journal[0].unmatched.as_ref().unwrap();
    assert_eq!(unmatched.closest.as_deref(), Some(closest));
    assert_eq!(
        unmatched.request,
        "POST /execute\ncontent-type: application/json\nbody (12 bytes): {\"code\":\"x\"}"
    );
    assert_eq!(journal[0].served, "404 unmatched");
}

#[tokio::test]
async fn zero_rules_means_every_call_is_unmatched() {
    let stub = sandbox(vec![]).await;
    let response = post(format!("{}/anything", stub.uri()), &json!({})).await;
    assert_eq!(response.status, 404);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("no rules are scripted")
    );
    let get = send(reqwest::Client::new().get(stub.execute_url())).await;
    assert_eq!(get.status, 404);
    let journal = stub.journal();
    assert_eq!(journal.len(), 2);
    assert!(
        journal
            .iter()
            .all(|e| e.unmatched.as_ref().is_some_and(|u| u.closest.is_none()))
    );
}

#[tokio::test]
async fn delay_is_journaled() {
    let slow = ExecReply::outcome(true).with_delay(Duration::from_millis(25));
    let stub = sandbox(vec![rule(1, ExecMatch::default(), vec![slow])]).await;
    let response = post(stub.execute_url(), &json!({})).await;
    assert_eq!(response.json()["success"], true);
    let served = &stub.journal()[0].served;
    assert!(
        served.starts_with("200 json (") && served.ends_with(" after 25ms"),
        "{served}"
    );
}
