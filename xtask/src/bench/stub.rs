//! `cargo xtask bench stub`: the LLM stub beside the bare hyper floor, WireMock and
//! llmposter in one run: requests per second and p50/p99 at 1 connection and at
//! `--connections`, plain and streamed. Each load alternates every server in short rounds,
//! so a busy neighbour slows all alike. The floor serves the stub's exact bytes (plain
//! and SSE) on as many threads as the stub; WireMock serves the same bytes from two
//! mappings; llmposter answers the same content in its own shape. A comparison tool that
//! is not there is left out with a line saying how to get it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::compare::{self, Ctx, Found};
use super::procs::{self, Server};
use super::{Row, serving_threads};

type Result<T> = std::result::Result<T, String>;

/// Starts WireMock answering the plain request with `plain` and a request with
/// `"stream":true` with `stream` as `text/event-stream`.
fn wiremock(ctx: &Ctx<'_>, plain: &str, stream: &str) -> Result<(procs::Foreign, String)> {
    let script = ctx.wiremock_script()?;
    let root = ctx.work.join("wiremock-stub");
    std::fs::create_dir_all(root.join("mappings")).map_err(|e| e.to_string())?;
    let mapping = |priority: u32, body: &str, content_type: &str, streamed: bool| {
        let mut request = json!({"method": "POST", "urlPath": "/v1/chat/completions"});
        if streamed {
            request["bodyPatterns"] = json!([{"contains": "\"stream\":true"}]);
        }
        json!({
            "priority": priority,
            "request": request,
            "response": {
                "status": 200,
                "headers": {"Content-Type": content_type},
                "body": body,
            },
        })
    };
    for (name, m) in [
        ("plain.json", mapping(5, plain, "application/json", false)),
        ("stream.json", mapping(1, stream, "text/event-stream", true)),
    ] {
        std::fs::write(root.join("mappings").join(name), m.to_string())
            .map_err(|e| e.to_string())?;
    }
    let port = compare::free_port()?;
    let wiremock = procs::start_wiremock(&script, port, &root)?;
    Ok((
        wiremock,
        format!("http://127.0.0.1:{port}/v1/chat/completions"),
    ))
}

fn fetch(ctx: &Ctx<'_>, url: &str, out: &Path, stream: bool) -> Result<String> {
    let mut command = Command::new(&ctx.benchkit);
    command.args(["fetch", "--url", url, "--out"]).arg(out);
    if stream {
        command.arg("--stream");
    }
    procs::run(&mut command, "benchkit fetch", Duration::from_secs(30))?;
    std::fs::read_to_string(out).map_err(|e| format!("`{}`: {e}", out.display()))
}

/// One server of the comparison.
struct Side {
    name: &'static str,
    url: String,
    pid: u32,
    warmup: f64,
}

pub fn stub(ctx: &Ctx<'_>) -> Result<Found> {
    let threads = serving_threads();
    let mut found = Found::default();
    let ours = Server::start(
        &ctx.benchkit,
        &["llm-stub", "--threads", &threads.to_string()],
        "the LLM stub (benchkit llm-stub)",
    )?;
    let plain_file = ctx.work.join("stub-plain.json");
    let stream_file = ctx.work.join("stub-stream.sse");
    let plain = fetch(ctx, &ours.url, &plain_file, false)?;
    let stream = fetch(ctx, &ours.url, &stream_file, true)?;
    let floor = Server::start(
        &ctx.benchkit,
        &[
            "floor",
            "--body",
            &plain_file.display().to_string(),
            "--stream-body",
            &stream_file.display().to_string(),
            "--threads",
            &threads.to_string(),
        ],
        "the floor server (benchkit floor)",
    )?;
    let mut sides = vec![
        Side {
            name: "ours",
            url: ours.url.clone(),
            pid: ours.pid,
            warmup: 1.0,
        },
        Side {
            name: "floor",
            url: floor.url.clone(),
            pid: floor.pid,
            warmup: 1.0,
        },
    ];
    eprintln!("    Starting WireMock (Java)");
    let wiremock = match wiremock(ctx, &plain, &stream) {
        Ok((server, url)) => {
            sides.push(Side {
                name: "wiremock",
                url,
                pid: server.pid,
                warmup: ctx.args.warmup.as_secs_f64(),
            });
            Some(server)
        }
        Err(e) => {
            found.lines.push(format!(
                "WireMock left out: {e}; shared/tools/wiremock-java installs WireMock 3.13 on first use"
            ));
            None
        }
    };
    let content = serde_json::from_str::<Value>(&plain)
        .ok()
        .and_then(|c| {
            c["choices"][0]["message"]["content"]
                .as_str()
                .map(String::from)
        })
        .ok_or("the stub's completion has no content")?;
    let llmposter = match compare::start_llmposter(ctx, &content) {
        Ok((server, url)) => {
            sides.push(Side {
                name: "llmposter",
                url,
                pid: server.pid,
                warmup: 1.0,
            });
            Some(server)
        }
        Err(e) => {
            found.lines.push(format!(
                "llmposter left out: {e}; shared/tools/llmposter runs `cargo install llmposter` on first use"
            ));
            None
        }
    };
    let loads: [(&str, u16, bool); 4] = [
        ("plain", ctx.args.connections, false),
        ("plain", 1, false),
        ("streamed", ctx.args.connections, true),
        ("streamed", 1, true),
    ];
    // the measured time is shared by the four loads and each load's servers
    let per_load = ctx.args.duration.as_secs_f64() / loads.len() as f64;
    let round = 1.0_f64.min(per_load / sides.len() as f64).max(0.2);
    let rounds = ((per_load / (round * sides.len() as f64)).round() as u32).max(1);
    let mut first = true;
    for (kind, connections, streamed) in loads {
        eprintln!(
            "    {kind}, {connections} connection(s): {rounds} rounds of {round:.1}s per server, alternating"
        );
        let mut args: Vec<String> = Vec::new();
        for side in &sides {
            args.extend([
                "--target".into(),
                format!("{}={}", side.name, side.url),
                "--pid".into(),
                format!("{}={}", side.name, side.pid),
                "--warmup".into(),
                // the JVM warms up once, in the first load
                format!("{}={}", side.name, if first { side.warmup } else { 1.0 }),
            ]);
        }
        first = false;
        args.extend([
            "--connections".into(),
            connections.to_string(),
            "--round".into(),
            round.to_string(),
            "--rounds".into(),
            rounds.to_string(),
        ]);
        if streamed {
            args.push("--stream".into());
        }
        let warm: f64 = sides.iter().map(|s| s.warmup).sum();
        let report = ctx.load(
            &args,
            Duration::from_secs_f64(
                warm + 4.0 + 2.0 * round * f64::from(rounds) * sides.len() as f64,
            ),
        )?;
        let mut measured = Vec::new();
        for side in &sides {
            let got = compare::target(&report, side.name)?.clone();
            found.lines.push(format!(
                "{kind:>8} {connections:>3} conn {:>9}: {:>8} req/s   p50 {:>6} µs  p99 {:>6} µs   server CPU {:>5.1} µs/req   {} bytes/response   {} failed",
                side.name,
                compare::thousands(compare::num(&got, &["rps"])),
                compare::num(&got, &["latency_us", "p50"]),
                compare::num(&got, &["latency_us", "p99"]),
                compare::num(&got, &["server_cpu_us_per_request"]),
                got["bytes_per_response"],
                compare::failures(&got),
            ));
            measured.push((side.name, got));
        }
        let get = |name: &str| measured.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        let Some(us) = get("ours") else { continue };
        let fair = measured.iter().all(|(_, v)| compare::failures(v) == 0);
        let rps = |v: &Value| compare::num(v, &["rps"]);
        let p50 = |v: &Value| compare::num(v, &["latency_us", "p50"]);
        let p99 = |v: &Value| compare::num(v, &["latency_us", "p99"]);
        let goals: [(&str, f64); 3] = if connections > 1 && !streamed {
            [("floor", 0.85), ("wiremock", 4.0), ("llmposter", 2.0)]
        } else {
            [
                ("floor", f64::NAN),
                ("wiremock", f64::NAN),
                ("llmposter", f64::NAN),
            ]
        };
        for (name, goal) in goals {
            let Some(them) = get(name) else { continue };
            let ratio = rps(us) / rps(them);
            if connections > 1 {
                found.rows.push(Row {
                    what: format!("stub {kind}, {connections} connections, req/s"),
                    ours: compare::thousands(rps(us)),
                    reference: format!("{name} {}", compare::thousands(rps(them))),
                    ratio: format!("{ratio:.2}×"),
                    goal: if goal.is_nan() {
                        String::new()
                    } else {
                        format!("≥ {goal}×")
                    },
                    met: if goal.is_nan() {
                        (!fair).then_some(false)
                    } else {
                        Some(fair && ratio >= goal)
                    },
                });
            } else {
                // one connection: latency is what a sequential pipeline feels
                let is_wiremock = name == "wiremock" && !streamed;
                found.rows.push(Row {
                    what: format!("stub {kind}, 1 connection, p50 / p99"),
                    ours: format!("{} / {} µs", p50(us), p99(us)),
                    reference: format!("{name} {} / {} µs", p50(them), p99(them)),
                    ratio: format!("{:+.0} µs at p50", p50(us) - p50(them)),
                    goal: if is_wiremock {
                        "p50 ≤ WireMock's".into()
                    } else {
                        String::new()
                    },
                    met: if is_wiremock {
                        Some(fair && p50(us) <= p50(them))
                    } else {
                        (!fair).then_some(false)
                    },
                });
            }
        }
        if !fair {
            found.lines.push(format!(
                "{kind}, {connections} connection(s): requests failed, the comparison is not a fair one"
            ));
        }
    }
    found.lines.push(format!(
        "the stub and the floor serve on {threads} thread(s) each (one per core, up to 4); \
         unpinned; llmposter's streamed replies on a reused connection stall ~44 ms (no TCP_NODELAY)"
    ));
    drop(llmposter);
    drop(wiremock);
    drop(floor);
    drop(ours);
    Ok(found)
}
