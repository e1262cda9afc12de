//! The load client: the same requests, the same way, to every server it is pointed at.
//!
//! Each connection is a hyper 1 HTTP/1.1 client connection kept alive, sending the next
//! request as soon as the previous response is read whole (a closed loop); all connections
//! share one thread (a current-thread runtime), as `wrk -t1` does, leaving the other cores
//! to the server. Latency is timed per request, from just before it is sent to the last
//! byte of its response, into an HDR histogram (µs, 3 significant digits).
//!
//! Two modes:
//!
//! - **rounds**: every target in turn, `--round` seconds each, `--rounds` times, the order
//!   alternating, so that a noisy neighbour on a shared machine hurts both alike; each
//!   target's totals are summed over its rounds. Connections are opened before a round's
//!   clock starts.
//! - **requests**: one target, exactly `--requests` requests, sampling the server's RSS
//!   every `--rss-every` completed requests.

use std::error::Error;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::proc_stat;
use crate::servers::Result;

/// A critic's chat-completion request, as refpipe sends it (about 560 bytes), without its
/// opening brace: [`REQUEST_BODY`] and [`STREAM_BODY`] share it.
macro_rules! request_fields {
    () => {
        r#""model":"gpt-4o-mini","temperature":0.2,"response_format":{"type":"json_object"},"messages":[{"role":"system","content":"You are the critic agent. Judge the code against the plan and answer with JSON: overall_score (0-10), needs_refinement, critical_issues, suggestions, summary."},{"role":"user","content":"Plan: model the blade, the cross-guard, the grip and the pommel; assign steel and leather materials; light the scene.\nCode:\nimport bpy\nblade = bpy.ops.mesh.primitive_cube_add(size=1)\n# ... 40 more lines ...\nbpy.ops.render.render(write_still=True)"}]}"#
    };
}

/// A critic's chat-completion request, as refpipe sends it (about 560 bytes).
const REQUEST_BODY: &str = concat!("{", request_fields!());

/// The same request, streamed (`--stream`).
const STREAM_BODY: &str = concat!(r#"{"stream":true,"#, request_fields!());

/// The agent header refpipe sends with it.
const AGENT_HEADER: (&str, &str) = ("x-agent-role", "critic");

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// A server to drive, as NAME=URL (repeat for several; each gets the same load).
    #[arg(long = "target", value_name = "NAME=URL", required = true)]
    targets: Vec<String>,
    /// A target's server process, as NAME=PID: its CPU time is measured per round.
    #[arg(long = "pid", value_name = "NAME=PID")]
    pids: Vec<String>,
    /// Load a target alone first, unmeasured, as NAME=SECONDS (a JVM needs this): in
    /// slices of 5 s, until a slice is no more than 5% faster than the one before (after
    /// 10 s at least) or SECONDS have passed.
    #[arg(long = "warmup", value_name = "NAME=SECONDS")]
    warmups: Vec<String>,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Ask for streamed replies (`"stream": true`): each response is an SSE body read
    /// whole.
    #[arg(long)]
    stream: bool,
    /// A fresh connection for every request (its connect timed with it), instead of
    /// keep-alive: for servers that stall on reused connections.
    #[arg(long)]
    fresh: bool,
    /// Seconds per round.
    #[arg(long, default_value_t = 2.0)]
    round: f64,
    /// Rounds per target.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Instead of rounds: send exactly this many requests to the (one) target.
    #[arg(long)]
    requests: Option<u64>,
    /// With --requests: the server process whose RSS to sample.
    #[arg(long)]
    rss_pid: Option<u32>,
    /// With --requests: sample the RSS every this many completed requests.
    #[arg(long, default_value_t = 100_000)]
    rss_every: u64,
}

/// Where to send requests.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    /// `127.0.0.1:PORT`
    addr: String,
    host: HeaderValue,
    path: String,
    pid: Option<u32>,
    stream: bool,
    fresh: bool,
}

impl Target {
    fn parse(spec: &str, pids: &[(String, u32)], stream: bool, fresh: bool) -> Result<Target> {
        let (name, url) = spec
            .split_once('=')
            .ok_or_else(|| format!("`{spec}` is not NAME=URL"))?;
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
        let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Ok(Target {
            name: name.to_string(),
            addr: addr.to_string(),
            host: HeaderValue::from_str(addr)?,
            path: if path.is_empty() { "/" } else { path }.to_string(),
            pid: pids
                .iter()
                .find(|(pid_name, _)| pid_name == name)
                .map(|(_, pid)| *pid),
            stream,
            fresh,
        })
    }

    fn request(&self) -> hyper::Request<Full<Bytes>> {
        let body = if self.stream {
            STREAM_BODY
        } else {
            REQUEST_BODY
        };
        let mut request = hyper::Request::new(Full::new(Bytes::from_static(body.as_bytes())));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = self.path.parse().expect("a path");
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(AGENT_HEADER.0, HeaderValue::from_static(AGENT_HEADER.1));
        request
    }
}

/// What one connection (or one target over its rounds) did.
struct Tally {
    ok: u64,
    bad_status: u64,
    errors: u64,
    bytes: u64,
    latency: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            ok: 0,
            bad_status: 0,
            errors: 0,
            bytes: 0,
            // 1 µs to 60 s is plenty for a closed loop on loopback
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds"),
        }
    }

    fn add(&mut self, other: &Tally) {
        self.ok += other.ok;
        self.bad_status += other.bad_status;
        self.errors += other.errors;
        self.bytes += other.bytes;
        let _ = self.latency.add(&other.latency);
    }
}

/// A target's totals over its rounds.
struct Totals {
    tally: Tally,
    seconds: f64,
    server_cpu: Option<f64>,
    client_cpu: f64,
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(&target.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads its response whole: its status and body length.
async fn exchange(sender: &mut SendRequest<Full<Bytes>>, target: &Target) -> Result<(u16, usize)> {
    sender.ready().await?;
    let response = sender.send_request(target.request()).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body.len()))
}

/// When a connection stops sending.
#[derive(Clone)]
enum Stop {
    /// Requests completed after this instant are not counted.
    At(Instant),
    /// After this many requests in all (shared by the connections).
    Count { issued: Arc<AtomicU64>, total: u64 },
}

/// (requests completed, the server's RSS in KiB) samples.
type RssSeries = Vec<(u64, Option<u64>)>;

/// What a connection samples as requests complete (requests mode).
#[derive(Clone)]
struct Sampler {
    completed: Arc<AtomicU64>,
    every: u64,
    pid: u32,
    series: Arc<Mutex<RssSeries>>,
}

async fn drive(
    target: Arc<Target>,
    mut sender: SendRequest<Full<Bytes>>,
    stop: Stop,
    sampler: Option<Sampler>,
) -> Tally {
    let mut tally = Tally::new();
    loop {
        match &stop {
            Stop::At(deadline) if Instant::now() >= *deadline => break,
            Stop::Count { issued, total } if issued.fetch_add(1, Ordering::Relaxed) >= *total => {
                break;
            }
            _ => {}
        }
        let sent = Instant::now();
        if target.fresh {
            match connect(&target).await {
                Ok(fresh) => sender = fresh,
                Err(_) => {
                    tally.errors += 1;
                    continue;
                }
            }
        }
        let outcome = exchange(&mut sender, &target).await;
        let done = Instant::now();
        if let Stop::At(deadline) = &stop
            && done > *deadline
        {
            break;
        }
        match outcome {
            Ok((200, bytes)) => {
                tally.ok += 1;
                tally.bytes += bytes as u64;
                tally
                    .latency
                    .saturating_record(done.duration_since(sent).as_micros() as u64);
            }
            Ok(_) => tally.bad_status += 1,
            Err(_) => {
                tally.errors += 1;
                // the connection may be gone: open another, after a breath
                tokio::time::sleep(Duration::from_millis(10)).await;
                match connect(&target).await {
                    Ok(fresh) => sender = fresh,
                    Err(_) => break,
                }
            }
        }
        if let Some(sampler) = &sampler {
            let completed = sampler.completed.fetch_add(1, Ordering::Relaxed) + 1;
            if completed.is_multiple_of(sampler.every) {
                let rss = proc_stat::rss_kib(sampler.pid);
                sampler
                    .series
                    .lock()
                    .expect("not poisoned")
                    .push((completed, rss));
            }
        }
    }
    tally
}

/// Opens `connections` connections to `target`, then drives them until `stop`.
async fn run_load(
    target: &Arc<Target>,
    connections: usize,
    stop: impl Fn() -> Stop,
    sampler: Option<Sampler>,
) -> Result<(Tally, f64)> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(target).await?);
    }
    let started = Instant::now();
    let stop = stop();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|sender| tokio::spawn(drive(target.clone(), sender, stop.clone(), sampler.clone())))
        .collect();
    let mut tally = Tally::new();
    for task in tasks {
        tally.add(&task.await?);
    }
    let seconds = match stop {
        Stop::At(deadline) => deadline.saturating_duration_since(started).as_secs_f64(),
        Stop::Count { .. } => started.elapsed().as_secs_f64(),
    };
    Ok((tally, seconds))
}

fn pairs<T: std::str::FromStr>(specs: &[String], what: &str) -> Result<Vec<(String, T)>> {
    specs
        .iter()
        .map(|spec| {
            let (name, value) = spec
                .split_once('=')
                .ok_or_else(|| format!("`{spec}` is not NAME={what}"))?;
            let value = value
                .parse()
                .map_err(|_| format!("`{value}` in `{spec}` is not a {what}"))?;
            Ok((name.to_string(), value))
        })
        .collect()
}

pub fn run(args: &LoadArgs) -> Result {
    let pids: Vec<(String, u32)> = pairs(&args.pids, "PID")?;
    let warmups: Vec<(String, f64)> = pairs(&args.warmups, "SECONDS")?;
    let targets = args
        .targets
        .iter()
        .map(|spec| Target::parse(spec, &pids, args.stream, args.fresh).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let mut warmed = Vec::new();
        for (name, seconds) in &warmups {
            let target = targets
                .iter()
                .find(|t| &t.name == name)
                .ok_or_else(|| format!("--warmup names no target `{name}`"))?;
            let slices = warm_up(target, args.connections, *seconds).await?;
            warmed.push(json!({"name": name, "slice_rps": slices}));
        }
        let mut report = match args.requests {
            Some(total) => requests_mode(args, &targets, total).await?,
            None => rounds_mode(args, &targets).await?,
        };
        report["warmup"] = Value::Array(warmed);
        Ok::<_, Box<dyn Error + Send + Sync>>(report)
    })?;
    let mut out = std::io::stdout();
    serde_json::to_writer_pretty(&mut out, &report)?;
    writeln!(out)?;
    Ok(())
}

/// Loads `target` in slices of up to 5 s until it stops getting faster (a slice at most
/// 5% faster than the one before, after 10 s at least) or `max_seconds` have passed;
/// returns each slice's requests per second.
async fn warm_up(target: &Arc<Target>, connections: usize, max_seconds: f64) -> Result<Vec<f64>> {
    let slice = max_seconds.min(5.0);
    let at_least = max_seconds.min(10.0);
    let mut spent = 0.0;
    let mut slices: Vec<f64> = Vec::new();
    while spent < max_seconds - 1e-9 {
        let this = slice.min(max_seconds - spent);
        let until = Duration::from_secs_f64(this);
        let (tally, seconds) = run_load(
            target,
            connections,
            || Stop::At(Instant::now() + until),
            None,
        )
        .await?;
        spent += this;
        let rps = tally.ok as f64 / seconds.max(1e-9);
        let steady = slices.last().is_some_and(|last| rps <= last * 1.05);
        slices.push(rps);
        if steady && spent >= at_least {
            break;
        }
    }
    Ok(slices)
}

async fn rounds_mode(args: &LoadArgs, targets: &[Arc<Target>]) -> Result<Value> {
    let round = Duration::from_secs_f64(args.round);
    let mut totals: Vec<Totals> = targets
        .iter()
        .map(|target| Totals {
            tally: Tally::new(),
            seconds: 0.0,
            server_cpu: target.pid.map(|_| 0.0),
            client_cpu: 0.0,
        })
        .collect();
    for n in 0..args.rounds {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if n % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let target = &targets[index];
            let server_before = target.pid.and_then(|pid| proc_stat::cpu_seconds(Some(pid)));
            let client_before = proc_stat::cpu_seconds(None).unwrap_or(0.0);
            let (tally, seconds) = run_load(
                target,
                args.connections,
                || Stop::At(Instant::now() + round),
                None,
            )
            .await?;
            let total = &mut totals[index];
            total.client_cpu += proc_stat::cpu_seconds(None).unwrap_or(0.0) - client_before;
            let server_after = target.pid.and_then(|pid| proc_stat::cpu_seconds(Some(pid)));
            total.server_cpu = match (total.server_cpu, server_before, server_after) {
                (Some(sum), Some(before), Some(after)) => Some(sum + after - before),
                _ => None,
            };
            total.tally.add(&tally);
            total.seconds += seconds;
        }
    }
    let reports: Vec<Value> = targets
        .iter()
        .zip(&totals)
        .map(|(target, total)| target_report(target, total))
        .collect();
    Ok(json!({
        "mode": "rounds",
        "connections": args.connections,
        "round_seconds": args.round,
        "rounds": args.rounds,
        "targets": reports,
    }))
}

async fn requests_mode(args: &LoadArgs, targets: &[Arc<Target>], total: u64) -> Result<Value> {
    let [target] = targets else {
        return Err("--requests drives exactly one --target".into());
    };
    let series = Arc::new(Mutex::new(Vec::new()));
    let sampler = match args.rss_pid {
        Some(pid) => {
            series
                .lock()
                .expect("not poisoned")
                .push((0, proc_stat::rss_kib(pid)));
            Some(Sampler {
                completed: Arc::new(AtomicU64::new(0)),
                every: args.rss_every.max(1),
                pid,
                series: series.clone(),
            })
        }
        None => None,
    };
    let server_before = target.pid.and_then(|pid| proc_stat::cpu_seconds(Some(pid)));
    let client_before = proc_stat::cpu_seconds(None).unwrap_or(0.0);
    let issued = Arc::new(AtomicU64::new(0));
    let (tally, seconds) = run_load(
        target,
        args.connections,
        || Stop::Count {
            issued: issued.clone(),
            total,
        },
        sampler,
    )
    .await?;
    let server_after = target.pid.and_then(|pid| proc_stat::cpu_seconds(Some(pid)));
    let totals = Totals {
        tally,
        seconds,
        server_cpu: server_before.zip(server_after).map(|(b, a)| a - b),
        client_cpu: proc_stat::cpu_seconds(None).unwrap_or(0.0) - client_before,
    };
    let series: Vec<Value> = series
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(requests, rss)| json!({"requests": requests, "rss_kib": rss}))
        .collect();
    Ok(json!({
        "mode": "requests",
        "connections": args.connections,
        "targets": [target_report(target, &totals)],
        "rss": series,
    }))
}

fn target_report(target: &Target, total: &Totals) -> Value {
    let tally = &total.tally;
    let latency = &tally.latency;
    let requests = tally.ok;
    let per_request = |seconds: f64| (requests > 0).then(|| seconds * 1e6 / requests as f64);
    json!({
        "name": target.name,
        "requests": requests,
        "bad_status": tally.bad_status,
        "errors": tally.errors,
        "seconds": total.seconds,
        "rps": if total.seconds > 0.0 { requests as f64 / total.seconds } else { 0.0 },
        "bytes_per_response": tally.bytes.checked_div(requests).unwrap_or(0),
        "latency_us": {
            "p50": latency.value_at_quantile(0.50),
            "p90": latency.value_at_quantile(0.90),
            "p99": latency.value_at_quantile(0.99),
            "p999": latency.value_at_quantile(0.999),
            "max": latency.max(),
            "mean": latency.mean(),
        },
        "server_cpu_us_per_request": total.server_cpu.and_then(per_request),
        "client_cpu_us_per_request": per_request(total.client_cpu),
    })
}

/// One request, as the load sends it (streamed with `stream`); its response body to `out`.
pub fn fetch(url: &str, out: &Path, stream: bool) -> Result {
    let target = Target::parse(&format!("fetch={url}"), &[], stream, false)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body = runtime.block_on(async {
        let mut sender = connect(&target).await?;
        sender.ready().await?;
        let response = sender.send_request(target.request()).await?;
        if response.status() != 200 {
            return Err::<_, Box<dyn Error + Send + Sync>>(
                format!("{url} answered {}", response.status()).into(),
            );
        }
        Ok(response.into_body().collect().await?.to_bytes())
    })?;
    std::fs::write(out, &body)?;
    Ok(())
}
