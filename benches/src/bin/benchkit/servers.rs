//! The servers `cargo xtask bench` compares: the real LLM stub, and the floor.

use std::convert::Infallible;
use std::error::Error;
use std::io::Write as _;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mocks::{AgentRecognition, LlmMatch, LlmReply, LlmRule, LlmStub, LlmStubConfig, StubOptions};
use regex::Regex;
use serde_json::json;

pub type Result<T = ()> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[derive(Debug, clap::Args)]
pub struct LlmStubArgs {
    /// How many exchanges the stub's journal keeps (the default is the stub's own).
    #[arg(long, default_value_t = mocks::DEFAULT_JOURNAL_LIMIT)]
    journal_limit: usize,
}

/// One realistic rule, as a scenario file writes it: the critic (recognised by the
/// `X-Agent-Role` header or the system prompt, as refpipe sends them) gets its verdict.
fn config() -> LlmStubConfig {
    let verdict = json!({
        "overall_score": 8.5,
        "needs_refinement": false,
        "critical_issues": [],
        "suggestions": [
            "Add a fuller along the blade to reduce its weight",
            "Use a three-point light rig to show the engraving",
        ],
        "summary": "The sword matches the plan: blade, cross-guard, leather grip and pommel \
                    are modelled, materials are assigned and the scene renders.",
    });
    LlmStubConfig {
        rules: vec![LlmRule {
            id: "llm[1]".into(),
            when: LlmMatch {
                agent: Some("critic".into()),
                ..LlmMatch::default()
            },
            replies: vec![LlmReply::json(verdict)],
        }],
        agents: AgentRecognition::new(
            Some("X-Agent-Role"),
            Some(Regex::new(r"^You are the (\w+) agent").expect("a valid regex")),
        ),
        ..LlmStubConfig::default()
    }
}

pub fn llm_stub(args: &LlmStubArgs) -> Result {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = StubOptions {
        journal_limit: args.journal_limit,
    };
    // the stub serves on a thread of its own; this runtime only starts it
    let stub = runtime.block_on(LlmStub::start_with(config(), options))?;
    announce(&format!("{}/chat/completions", stub.base_url("primary")))?;
    wait_for_stdin_to_close();
    drop(stub);
    Ok(())
}

/// The floor: hyper 1, HTTP/1.1 keep-alive, one thread with a current-thread runtime and
/// `TCP_NODELAY`, as the LLM stub's server is; it reads each request body whole and answers
/// with `body`, and does nothing else.
pub fn floor(body: &Path) -> Result {
    let body = Bytes::from(std::fs::read(body)?);
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("floor".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let body = body.clone();
                    tokio::spawn(async move {
                        let service =
                            service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                                let body = body.clone();
                                async move {
                                    let _ = request.into_body().collect().await;
                                    let mut response = hyper::Response::new(Full::new(body));
                                    response.headers_mut().insert(
                                        hyper::header::CONTENT_TYPE,
                                        hyper::header::HeaderValue::from_static("application/json"),
                                    );
                                    Ok::<_, Infallible>(response)
                                }
                            });
                        let _ = http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        })?;
    announce(&format!("http://{addr}/v1/chat/completions"))?;
    wait_for_stdin_to_close();
    Ok(())
}

fn announce(url: &str) -> Result {
    let mut out = std::io::stdout();
    writeln!(out, "url {url}")?;
    out.flush()?;
    Ok(())
}

/// Returns when stdin reaches its end: the parent closed it, or exited.
fn wait_for_stdin_to_close() {
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}
