//! The four comparisons. Each starts what it measures, drives it with `benchkit load`,
//! stops it (the guards in `procs` see to that on every path), and returns what it found:
//! lines of detail and rows of the final table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::procs::{self, Server};
use super::{Bench, Row};

/// What every comparison needs.
pub struct Ctx<'a> {
    pub args: &'a Bench,
    /// The release-built `benchkit`.
    pub benchkit: PathBuf,
    /// The workspace's target directory.
    pub target_dir: PathBuf,
    /// A scratch directory, removed at the end.
    pub work: PathBuf,
}

/// What a comparison found.
#[derive(Default)]
pub struct Found {
    pub lines: Vec<String>,
    pub rows: Vec<Row>,
}

type Result<T> = std::result::Result<T, String>;

impl Ctx<'_> {
    /// Runs `benchkit load ARGS` to its end and reads its report.
    pub(super) fn load(&self, args: &[String], expected: Duration) -> Result<Value> {
        let out = procs::run(
            Command::new(&self.benchkit).arg("load").args(args),
            "the load client (benchkit load)",
            expected + Duration::from_secs(120),
        )?;
        serde_json::from_str(&out).map_err(|e| format!("the load client's report: {e}"))
    }

    fn llm_stub(&self) -> Result<Server> {
        Server::start(
            &self.benchkit,
            &["llm-stub"],
            "the LLM stub (benchkit llm-stub)",
        )
    }

    /// The stub's completion as the load client gets it, in a file: WireMock and the floor
    /// answer with these bytes.
    fn completion_body(&self, stub: &Server) -> Result<PathBuf> {
        let file = self.work.join("completion.json");
        procs::run(
            Command::new(&self.benchkit)
                .args(["fetch", "--url", &stub.url, "--out"])
                .arg(&file),
            "benchkit fetch",
            Duration::from_secs(30),
        )?;
        Ok(file)
    }

    /// Rounds of `round` seconds, enough for half of `--duration` per side.
    fn rounds(&self, round: f64) -> (f64, u32) {
        let per_side = self.args.duration.as_secs_f64() / 2.0;
        let round = round.min(per_side).max(0.2);
        (round, ((per_side / round).round() as u32).max(1))
    }

    pub(super) fn llmposter_script(&self) -> Result<PathBuf> {
        if let Some(script) = &self.args.llmposter {
            return Ok(script.clone());
        }
        if let Some(script) = std::env::var_os("LLMPOSTER") {
            return Ok(PathBuf::from(script));
        }
        let beside = Path::new("..").join("shared/tools/llmposter");
        if beside.exists() {
            return Ok(beside);
        }
        Err("the llmposter script was not found (hint: --llmposter PATH or LLMPOSTER)".into())
    }

    pub(super) fn wiremock_script(&self) -> Result<PathBuf> {
        if let Some(script) = &self.args.wiremock {
            return Ok(script.clone());
        }
        if let Some(script) = std::env::var_os("WIREMOCK_JAVA") {
            return Ok(script.into());
        }
        let beside = Path::new("..").join("shared/tools/wiremock-java");
        if beside.is_file() {
            return Ok(beside);
        }
        Err(
            "the wiremock-java script was not found (hint: --wiremock PATH or WIREMOCK_JAVA)"
                .into(),
        )
    }
}

pub(super) fn target<'v>(report: &'v Value, name: &str) -> Result<&'v Value> {
    report["targets"]
        .as_array()
        .and_then(|targets| targets.iter().find(|t| t["name"] == name))
        .ok_or_else(|| format!("the load report has no target `{name}`"))
}

pub(super) fn num(value: &Value, path: &[&str]) -> f64 {
    path.iter()
        .fold(value, |value, key| &value[*key])
        .as_f64()
        .unwrap_or(f64::NAN)
}

/// Requests that did not get a 200: a comparison with any is not a fair one.
pub(super) fn failures(side: &Value) -> u64 {
    side["errors"].as_u64().unwrap_or(0) + side["bad_status"].as_u64().unwrap_or(0)
}

pub(super) fn thousands(n: f64) -> String {
    let n = n.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn free_port() -> Result<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Starts WireMock with one mapping: `POST /v1/chat/completions` → `body`.
fn wiremock(ctx: &Ctx<'_>, body: &Path) -> Result<(procs::Foreign, String)> {
    let script = ctx.wiremock_script()?;
    let body = std::fs::read_to_string(body).map_err(|e| format!("the completion body: {e}"))?;
    let root = ctx.work.join("wiremock");
    std::fs::create_dir_all(root.join("mappings")).map_err(|e| e.to_string())?;
    let mapping = json!({
        "request": {"method": "POST", "urlPath": "/v1/chat/completions"},
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "body": body,
        },
    });
    std::fs::write(root.join("mappings/chat.json"), mapping.to_string())
        .map_err(|e| e.to_string())?;
    let port = free_port()?;
    let wiremock = procs::start_wiremock(&script, port, &root)?;
    Ok((
        wiremock,
        format!("http://127.0.0.1:{port}/v1/chat/completions"),
    ))
}

/// Our LLM stub against WireMock (and, with `--baseline-benchkit`, against the stub of an
/// earlier build): requests per second under the same closed-loop load, in alternating
/// rounds after WireMock's warm-up.
pub fn throughput(ctx: &Ctx<'_>) -> Result<Found> {
    let stub = ctx.llm_stub()?;
    let body = ctx.completion_body(&stub)?;
    eprintln!("    Starting WireMock (Java)");
    let (wiremock, wiremock_url) = wiremock(ctx, &body)?;
    let baseline = match &ctx.args.baseline_benchkit {
        Some(path) => Some(Server::start(
            path,
            &["llm-stub"],
            "the baseline LLM stub (--baseline-benchkit)",
        )?),
        None => None,
    };
    let (round, rounds) = ctx.rounds(2.0);
    let warmup = ctx.args.warmup.as_secs_f64();
    eprintln!(
        "    Loading each with {} connections: WireMock until it stops getting faster (up to {warmup:.0}s), then {rounds} rounds of {round:.1}s each, alternating",
        ctx.args.connections
    );
    let mut extra: Vec<String> = Vec::new();
    if let Some(baseline) = &baseline {
        extra.extend([
            "--target".into(),
            format!("before={}", baseline.url),
            "--pid".into(),
            format!("before={}", baseline.pid),
            "--warmup".into(),
            "before=2".into(),
        ]);
    }
    let report = ctx.load(
        &[
            "--target".into(),
            format!("ours={}", stub.url),
            "--target".into(),
            format!("wiremock={wiremock_url}"),
            "--pid".into(),
            format!("ours={}", stub.pid),
            "--pid".into(),
            format!("wiremock={}", wiremock.pid),
            "--warmup".into(),
            format!("wiremock={warmup}"),
            "--warmup".into(),
            "ours=2".into(),
            "--connections".into(),
            ctx.args.connections.to_string(),
            "--round".into(),
            round.to_string(),
            "--rounds".into(),
            rounds.to_string(),
        ]
        .into_iter()
        .chain(extra)
        .collect::<Vec<String>>(),
        Duration::from_secs_f64(warmup + 4.0 + 3.0 * round * f64::from(rounds)),
    )?;
    drop(wiremock);
    drop(stub);
    drop(baseline);
    let ours = target(&report, "ours")?;
    let theirs = target(&report, "wiremock")?;
    let mut found = Found::default();
    if let Some(slices) = report["warmup"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["name"] == "wiremock"))
        .and_then(|w| w["slice_rps"].as_array())
    {
        let rates: Vec<String> = slices
            .iter()
            .map(|r| thousands(r.as_f64().unwrap_or(f64::NAN)))
            .collect();
        found.lines.push(format!(
            "WireMock warm-up, req/s per 5-s slice: {}",
            rates.join(" → ")
        ));
    }
    for (name, side) in [("LLM stub", ours), ("WireMock", theirs)] {
        found.lines.push(format!(
            "{name:>9}: {:>8} req/s   latency p50 {:>6} µs  p99 {:>6} µs   server CPU {:>5.1} µs/req   {} bytes/response   {} failed",
            thousands(num(side, &["rps"])),
            num(side, &["latency_us", "p50"]),
            num(side, &["latency_us", "p99"]),
            num(side, &["server_cpu_us_per_request"]),
            side["bytes_per_response"],
            failures(side),
        ));
    }
    let ratio = num(ours, &["rps"]) / num(theirs, &["rps"]);
    let mut fair = failures(ours) == 0 && failures(theirs) == 0;
    if ctx.args.baseline_benchkit.is_some() {
        let before = target(&report, "before")?;
        fair &= failures(before) == 0;
        found.lines.push(format!(
            "{:>9}: {:>8} req/s   latency p50 {:>6} µs  p99 {:>6} µs   server CPU {:>5.1} µs/req   {} bytes/response   {} failed",
            "baseline",
            thousands(num(before, &["rps"])),
            num(before, &["latency_us", "p50"]),
            num(before, &["latency_us", "p99"]),
            num(before, &["server_cpu_us_per_request"]),
            before["bytes_per_response"],
            failures(before),
        ));
        let before_ratio = num(before, &["rps"]) / num(theirs, &["rps"]);
        let change = ratio / before_ratio;
        found.rows.push(Row {
            what: "throughput vs the baseline build".into(),
            ours: format!("{ratio:.2}× WireMock"),
            reference: format!("baseline {before_ratio:.2}× WireMock"),
            ratio: format!("{change:.3}×"),
            goal: "≥ 0.95×".into(),
            met: Some(fair && change >= 0.95),
        });
    }
    found.rows.push(Row {
        what: "throughput, req/s (same load)".into(),
        ours: thousands(num(ours, &["rps"])),
        reference: format!("WireMock {}", thousands(num(theirs, &["rps"]))),
        ratio: format!("{ratio:.2}×"),
        goal: "≥ 2×".into(),
        met: Some(fair && ratio >= 2.0),
    });
    let cpu =
        num(theirs, &["server_cpu_us_per_request"]) / num(ours, &["server_cpu_us_per_request"]);
    found.rows.push(Row {
        what: "server CPU per request".into(),
        ours: format!("{:.1} µs", num(ours, &["server_cpu_us_per_request"])),
        reference: format!(
            "WireMock {:.1} µs",
            num(theirs, &["server_cpu_us_per_request"])
        ),
        ratio: format!("{cpu:.2}× less"),
        goal: String::new(),
        met: None,
    });
    if !fair {
        found
            .lines
            .push("requests failed during the load: the comparison is not a fair one".into());
    }
    Ok(found)
}

/// What the stub adds per LLM call: sequential requests on one keep-alive connection, to
/// the stub and to the floor (a minimal hyper server sending the same bytes).
pub fn latency(ctx: &Ctx<'_>) -> Result<Found> {
    let stub = ctx.llm_stub()?;
    let body = ctx.completion_body(&stub)?;
    let body_arg = body.display().to_string();
    let floor = Server::start(
        &ctx.benchkit,
        &["floor", "--body", &body_arg],
        "the floor server (benchkit floor)",
    )?;
    let (round, rounds) = ctx.rounds(1.0);
    eprintln!(
        "    One connection, one request at a time: {rounds} rounds of {round:.1}s each, alternating"
    );
    let report = ctx.load(
        &[
            "--target".into(),
            format!("ours={}", stub.url),
            "--target".into(),
            format!("floor={}", floor.url),
            "--warmup".into(),
            "ours=1".into(),
            "--warmup".into(),
            "floor=1".into(),
            "--connections".into(),
            "1".into(),
            "--round".into(),
            round.to_string(),
            "--rounds".into(),
            rounds.to_string(),
        ],
        Duration::from_secs_f64(2.0 + 2.0 * round * f64::from(rounds)),
    )?;
    drop(floor);
    drop(stub);
    let ours = target(&report, "ours")?;
    let floor = target(&report, "floor")?;
    let mut found = Found::default();
    for (name, side) in [("LLM stub", ours), ("floor", floor)] {
        found.lines.push(format!(
            "{name:>9}: p50 {:>5} µs  p90 {:>5} µs  p99 {:>5} µs  p99.9 {:>5} µs  mean {:>6.1} µs   over {} requests, {} failed",
            num(side, &["latency_us", "p50"]),
            num(side, &["latency_us", "p90"]),
            num(side, &["latency_us", "p99"]),
            num(side, &["latency_us", "p999"]),
            num(side, &["latency_us", "mean"]),
            thousands(num(side, &["requests"])),
            failures(side),
        ));
    }
    let added = num(ours, &["latency_us", "p99"]) - num(floor, &["latency_us", "p99"]);
    let added_p50 = num(ours, &["latency_us", "p50"]) - num(floor, &["latency_us", "p50"]);
    found.lines.push(format!(
        "the stub adds {added_p50:+.0} µs at p50 and {added:+.0} µs at p99"
    ));
    found.rows.push(Row {
        what: "latency added per LLM call, p99".into(),
        ours: format!("{} µs", num(ours, &["latency_us", "p99"])),
        reference: format!("floor {} µs", num(floor, &["latency_us", "p99"])),
        ratio: format!("{added:+.0} µs"),
        goal: "< 100 µs".into(),
        met: Some(failures(ours) == 0 && failures(floor) == 0 && added < 100.0),
    });
    Ok(found)
}

/// RSS of a server every tenth of `--requests` requests.
fn rss_series(ctx: &Ctx<'_>, name: &str, url: &str, pid: u32) -> Result<(Vec<(u64, u64)>, Value)> {
    let requests = ctx.args.requests;
    let report = ctx.load(
        &[
            "--target".into(),
            format!("{name}={url}"),
            "--pid".into(),
            format!("{name}={pid}"),
            "--connections".into(),
            ctx.args.connections.to_string(),
            "--requests".into(),
            requests.to_string(),
            "--rss-pid".into(),
            pid.to_string(),
            "--rss-every".into(),
            (requests / 10).max(1).to_string(),
        ],
        // at a (slow) 2,000 requests a second
        Duration::from_secs(requests / 2_000 + 60),
    )?;
    let series = report["rss"]
        .as_array()
        .map(|samples| {
            samples
                .iter()
                .filter_map(|s| Some((s["requests"].as_u64()?, s["rss_kib"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    let side = target(&report, name)?.clone();
    Ok((series, side))
}

/// Growth from the first sample after 0 (a tenth of the requests) to the last, in KiB.
fn growth(series: &[(u64, u64)]) -> Option<i64> {
    let first = series.iter().find(|(n, _)| *n > 0)?;
    let last = series.last()?;
    Some(last.1 as i64 - first.1 as i64)
}

fn series_lines(name: &str, series: &[(u64, u64)], side: &Value) -> Vec<String> {
    let mut lines = vec![format!(
        "{name}: {} requests in {:.1}s ({} req/s), {} failed; RSS by requests served:",
        thousands(num(side, &["requests"])),
        num(side, &["seconds"]),
        thousands(num(side, &["rps"])),
        failures(side),
    )];
    lines.push(
        series
            .iter()
            .map(|(n, kib)| format!("{}k {:.1} MiB", n / 1000, *kib as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" · "),
    );
    lines
}

/// Flat: what the stub keeps is bounded (the journal's ring, fixed histograms); allow the
/// allocator's slack.
const FLAT_KIB: i64 = 2 * 1024;

/// The stub's RSS over `--requests` requests (a million by default): flat, because its
/// journal is a bounded ring and its counters and histograms are fixed-size.
pub fn memory(ctx: &Ctx<'_>) -> Result<Found> {
    let mut found = Found::default();
    let stub = ctx.llm_stub()?;
    eprintln!(
        "    {} requests to the LLM stub over {} connections",
        thousands(ctx.args.requests as f64),
        ctx.args.connections
    );
    let (series, side) = rss_series(ctx, "ours", &stub.url, stub.pid)?;
    drop(stub);
    found.lines.extend(series_lines("LLM stub", &series, &side));
    let grew = growth(&series);
    let tenth = ctx.args.requests / 10;
    found.rows.push(Row {
        what: format!(
            "memory growth, {}k → {}k requests",
            tenth / 1000,
            ctx.args.requests / 1000
        ),
        ours: grew.map_or("no data".into(), |kib| {
            format!("{:+.1} MiB", kib as f64 / 1024.0)
        }),
        reference: String::new(),
        ratio: String::new(),
        goal: format!("flat (< {} MiB)", FLAT_KIB / 1024),
        met: Some(failures(&side) == 0 && grew.is_some_and(|kib| kib < FLAT_KIB)),
    });
    if ctx.args.memory_wiremock {
        let body = {
            let stub = ctx.llm_stub()?;
            ctx.completion_body(&stub)?
        };
        eprintln!("    Starting WireMock (Java) for contrast");
        let (wiremock, url) = wiremock(ctx, &body)?;
        let (series, side) = rss_series(ctx, "wiremock", &url, wiremock.pid)?;
        drop(wiremock);
        found.lines.extend(series_lines("WireMock", &series, &side));
        if let Some(row) = found.rows.last_mut() {
            row.reference = growth(&series).map_or("WireMock: no data".into(), |kib| {
                format!("WireMock {:+.1} MiB", kib as f64 / 1024.0)
            });
        }
    }
    Ok(found)
}

/// CPU seconds of process `pid`'s own threads (not its children's).
fn own_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux the project runs on
    Some(ticks as f64 / 100.0)
}

/// One run of the bundled suite: what `results.json` and the clock say.
struct SuiteRun {
    wall: f64,
    scenarios: usize,
    passed: usize,
    /// The sum of the scenarios' `duration`s.
    scenario_seconds: f64,
    /// CPU of the harness process's own threads (its stubs included, its targets not).
    harness_cpu: f64,
}

fn suite_run(harness: &Path, jobs: u16, out: &Path) -> Result<SuiteRun> {
    let mut cpu = 0.0;
    let started = Instant::now();
    let (status, _) = procs::run_watched(
        Command::new(harness)
            .args(["run", "scenarios", "--jobs", &jobs.to_string(), "--out"])
            .arg(out)
            .stderr(std::process::Stdio::null()),
        "harness run scenarios",
        Duration::from_secs(900),
        &mut |pid| {
            if let Some(seconds) = own_cpu_seconds(pid) {
                cpu = seconds;
            }
        },
    )?;
    let wall = started.elapsed().as_secs_f64();
    let results = std::fs::read_to_string(out.join("results.json"))
        .map_err(|e| format!("harness run ({status}) wrote no results.json: {e}"))?;
    let results: Value =
        serde_json::from_str(&results).map_err(|e| format!("results.json: {e}"))?;
    let scenarios = results["scenarios"].as_array().cloned().unwrap_or_default();
    Ok(SuiteRun {
        wall,
        passed: scenarios
            .iter()
            .filter(|s| s["outcome"] == "passed")
            .count(),
        scenario_seconds: scenarios
            .iter()
            .filter_map(|s| s["duration"].as_f64())
            .sum(),
        scenarios: scenarios.len(),
        harness_cpu: cpu,
    })
}

/// The bundled suite, `--runs` times with `--jobs`: scenarios per second, and what the
/// harness costs per scenario.
///
/// What the harness costs is measured two ways, neither needing the targets' own run
/// time, which `results.json` does not record (`metrics.end_to_end` is the scenario's wall
/// time for a single run, and overlapping runs under `[load]`):
///
/// - **CPU**: the harness process's own threads (`/proc/PID/stat` utime + stime, sampled
///   every 20 ms; its stubs run in it, its targets are other processes), per scenario;
/// - **wall outside scenarios**: `(wall − Σ scenario durations / jobs) / scenarios`, what
///   planning, scheduling and writing the reports add to each scenario's own time.
pub fn scenarios(ctx: &Ctx<'_>) -> Result<Found> {
    super::cargo(&["build", "--quiet", "-p", "harness", "-p", "pipeline"])?;
    let harness = ctx.target_dir.join("debug/harness");
    let jobs = ctx.args.jobs;
    let mut found = Found::default();
    let mut runs = Vec::new();
    for run in 1..=ctx.args.runs {
        eprintln!(
            "    Suite run {run}/{}: harness run scenarios --jobs {jobs}",
            ctx.args.runs
        );
        let out = ctx.work.join(format!("suite-{run}"));
        let result = suite_run(&harness, jobs, &out)?;
        let n = result.scenarios.max(1) as f64;
        let outside = (result.wall - result.scenario_seconds / f64::from(jobs)) / n;
        found.lines.push(format!(
            "run {run}: {} scenarios ({} passed) in {:.2}s wall: {:.2} scenarios/s; Σ scenario durations {:.2}s; harness CPU {:.2}s ({:.0} ms/scenario); wall outside scenarios {:.0} ms/scenario",
            result.scenarios,
            result.passed,
            result.wall,
            result.scenarios as f64 / result.wall,
            result.scenario_seconds,
            result.harness_cpu,
            result.harness_cpu / n * 1000.0,
            outside * 1000.0,
        ));
        runs.push((result, outside));
    }
    let n = runs.len().max(1) as f64;
    let rate = runs
        .iter()
        .map(|(r, _)| r.scenarios as f64 / r.wall)
        .sum::<f64>()
        / n;
    let outside = runs.iter().map(|(_, o)| o).sum::<f64>() / n;
    let cpu = runs
        .iter()
        .map(|(r, _)| r.harness_cpu / r.scenarios.max(1) as f64)
        .sum::<f64>()
        / n;
    found.lines.push(
        "harness CPU: its own threads (stubs included, targets not), from /proc every 20 ms; wall outside scenarios: (wall − Σ scenario durations / jobs) / scenarios".into(),
    );
    found.rows.push(Row {
        what: format!("bundled suite, --jobs {jobs} (debug build)"),
        ours: format!("{rate:.2} scenarios/s"),
        reference: String::new(),
        ratio: String::new(),
        goal: String::new(),
        met: None,
    });
    found.rows.push(Row {
        what: "harness CPU per scenario".into(),
        ours: format!("{:.0} ms", cpu * 1000.0),
        reference: String::new(),
        ratio: String::new(),
        goal: String::new(),
        met: None,
    });
    found.rows.push(Row {
        what: "wall outside scenarios, per scenario".into(),
        ours: format!("{:.0} ms", outside * 1000.0),
        reference: String::new(),
        ratio: String::new(),
        goal: String::new(),
        met: None,
    });
    Ok(found)
}

/// Starts llmposter answering every request with `content`, on a free port.
pub(super) fn start_llmposter(ctx: &Ctx<'_>, content: &str) -> Result<(procs::Foreign, String)> {
    let script = ctx.llmposter_script()?;
    let fixtures = ctx.work.join("llmposter.yaml");
    // a JSON string is a YAML double-quoted scalar
    let yaml = format!(
        "fixtures:\n  - response:\n      content: {}\n",
        serde_json::Value::from(content)
    );
    std::fs::write(&fixtures, yaml).map_err(|e| format!("the llmposter fixtures: {e}"))?;
    let port = free_port()?;
    eprintln!("    Starting llmposter (installed with cargo install on first use)");
    let server = procs::start_script_server(
        Command::new(&script).arg(port.to_string()).arg(&fixtures),
        "llmposter",
    )?;
    Ok((
        server,
        format!("http://127.0.0.1:{port}/v1/chat/completions"),
    ))
}

/// Our LLM stub against llmposter, both answering the critic's request with the same
/// content: plain chat on keep-alive connections, streamed chat on keep-alive connections,
/// and streamed chat on a fresh connection per request.
pub fn llmposter(ctx: &Ctx<'_>) -> Result<Found> {
    let stub = ctx.llm_stub()?;
    let body = ctx.completion_body(&stub)?;
    let completion: Value = serde_json::from_str(
        &std::fs::read_to_string(&body).map_err(|e| format!("the completion body: {e}"))?,
    )
    .map_err(|e| format!("the completion body: {e}"))?;
    let content = completion["choices"][0]["message"]["content"]
        .as_str()
        .ok_or("the stub's completion has no content")?
        .to_string();
    let (posing, posing_url) = start_llmposter(ctx, &content)?;
    // three loads share --duration
    let (round, rounds) = ctx.rounds(2.0);
    let rounds = rounds.div_ceil(3).max(1);
    let mut found = Found::default();
    let modes: [(&str, &[&str]); 3] = [
        ("chat, keep-alive", &[]),
        ("streamed chat, keep-alive", &["--stream"]),
        ("streamed chat, fresh connections", &["--stream", "--fresh"]),
    ];
    for (what, flags) in modes {
        eprintln!("    {what}: {rounds} rounds of {round:.1}s each, alternating");
        let mut args: Vec<String> = vec![
            "--target".into(),
            format!("ours={}", stub.url),
            "--target".into(),
            format!("llmposter={posing_url}"),
            "--pid".into(),
            format!("ours={}", stub.pid),
            "--pid".into(),
            format!("llmposter={}", posing.pid),
            "--warmup".into(),
            "ours=1".into(),
            "--warmup".into(),
            "llmposter=1".into(),
            "--connections".into(),
            ctx.args.connections.to_string(),
            "--round".into(),
            round.to_string(),
            "--rounds".into(),
            rounds.to_string(),
        ];
        args.extend(flags.iter().map(|flag| flag.to_string()));
        let report = ctx.load(
            &args,
            Duration::from_secs_f64(4.0 + 2.0 * round * f64::from(rounds)),
        )?;
        let ours = target(&report, "ours")?;
        let theirs = target(&report, "llmposter")?;
        for (name, side) in [("LLM stub", ours), ("llmposter", theirs)] {
            found.lines.push(format!(
                "{what:>33} {name:>9}: {:>8} req/s   latency p50 {:>6} µs  p99 {:>6} µs   server CPU {:>5.1} µs/req   {} bytes/response   {} failed",
                thousands(num(side, &["rps"])),
                num(side, &["latency_us", "p50"]),
                num(side, &["latency_us", "p99"]),
                num(side, &["server_cpu_us_per_request"]),
                side["bytes_per_response"],
                failures(side),
            ));
        }
        let fair = failures(ours) == 0 && failures(theirs) == 0;
        let ratio = num(ours, &["rps"]) / num(theirs, &["rps"]);
        found.rows.push(Row {
            what: format!("{what}, req/s"),
            ours: thousands(num(ours, &["rps"])),
            reference: format!("llmposter {}", thousands(num(theirs, &["rps"]))),
            ratio: format!("{ratio:.2}×"),
            goal: String::new(),
            met: if fair { None } else { Some(false) },
        });
        if !fair {
            found.lines.push(format!(
                "{what}: requests failed, the comparison is not a fair one"
            ));
        }
    }
    drop(posing);
    drop(stub);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(88_221.0), "88,221");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
    }

    #[test]
    fn growth_is_from_the_first_tenth_to_the_end() {
        let series = [
            (0, 7_000),
            (100_000, 19_000),
            (500_000, 19_500),
            (1_000_000, 19_100),
        ];
        assert_eq!(growth(&series), Some(100));
        assert_eq!(growth(&[(0, 7_000)]), None);
    }

    #[test]
    fn a_load_report_is_read_by_target_name() {
        let report = json!({"targets": [
            {"name": "ours", "rps": 10.0, "errors": 1, "bad_status": 2, "latency_us": {"p99": 5}},
        ]});
        let ours = target(&report, "ours").unwrap();
        assert_eq!(num(ours, &["latency_us", "p99"]), 5.0);
        assert_eq!(failures(ours), 3);
        assert!(num(ours, &["missing"]).is_nan());
        assert!(target(&report, "wiremock").is_err());
    }
}
