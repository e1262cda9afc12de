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
    /// Threads the stub serves on [default: the stub's own, one per core up to 4].
    #[arg(long)]
    threads: Option<usize>,
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
        threads: args.threads.unwrap_or_else(StubOptions::default_threads),
    };
    // the stub serves on threads of its own; this runtime only starts it
    let stub = runtime.block_on(LlmStub::start_with(config(), options))?;
    announce(&format!("{}/chat/completions", stub.base_url("primary")))?;
    wait_for_stdin_to_close();
    drop(stub);
    Ok(())
}

/// The floor: hyper 1, HTTP/1.1 keep-alive, `threads` threads each with a current-thread
/// runtime and an accept loop on the one socket, and `TCP_NODELAY`, as the LLM stub's
/// server is; it reads each request body whole and answers with `body` (or, to a request
/// that asks for a stream, with `stream_body` as `text/event-stream`), and does nothing
/// else.
pub fn floor(body: &Path, stream_body: Option<&Path>, threads: usize) -> Result {
    let body = Bytes::from(std::fs::read(body)?);
    let stream_body = match stream_body {
        Some(path) => Some(Bytes::from(std::fs::read(path)?)),
        None => None,
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    for n in 0..threads.max(1) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let own = listener.try_clone()?;
        let (body, stream_body) = (body.clone(), stream_body.clone());
        std::thread::Builder::new()
            .name(format!("floor-{n}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(own).expect("a listener");
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let (body, stream_body) = (body.clone(), stream_body.clone());
                        tokio::spawn(async move {
                            let service = service_fn(
                                move |request: hyper::Request<hyper::body::Incoming>| {
                                    let (body, stream_body) = (body.clone(), stream_body.clone());
                                    async move {
                                        Ok::<_, Infallible>(
                                            answer(request, body, stream_body).await,
                                        )
                                    }
                                },
                            );
                            let _ = http1::Builder::new()
                                .keep_alive(true)
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                })
            })?;
    }
    announce(&format!("http://{addr}/v1/chat/completions"))?;
    wait_for_stdin_to_close();
    Ok(())
}

/// The floor's answer: the body read whole, then the fixed bytes.
async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    body: Bytes,
    stream_body: Option<Bytes>,
) -> hyper::Response<Full<Bytes>> {
    let sent = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let streamed = stream_body.filter(|_| {
        // the load client's streamed request says `"stream":true`
        let asked = b"\"stream\":true";
        sent.windows(asked.len()).any(|w| w == asked)
    });
    let (bytes, content_type) = match streamed {
        Some(stream) => (stream, "text/event-stream"),
        None => (body, "application/json"),
    };
    let mut response = hyper::Response::new(Full::new(bytes));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
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
