//! `report.html`: the run for a person in a browser, in one self-contained file.
//!
//! Top to bottom:
//! 1. The verdict banner (the same headline as `summary.md`), the counts, wall time, seed,
//!    partition and start time.
//! 2. The gates table, failing critical gates first, then failing non-critical ones.
//! 3. Charts: scenario durations as bars (slowest first, coloured by outcome, each a link
//!    to its scenario), and their percentiles (p50, p90, p95, p99, max).
//! 4. Latency, when scenarios measured their end-to-end latency over more than one run:
//!    the end-to-end histograms of every scenario merged into one, as a percentile plot.
//! 5. A filter bar (text over names, paths, suites and tags; a checkbox per status;
//!    "failures only"), then a collapsible `<details>` per scenario, failures first and
//!    open: its failures (failed thresholds among them), its performance (a latency
//!    percentile plot with a line per agent, end to end and time to first token, unless
//!    it ran once; the target's memory over time, when sampled; a table of every latency
//!    histogram; memory, load, tokens and cost; the thresholds), earlier failed attempts,
//!    the stub requests as a timeline and a table, the stderr tail, the output JSON,
//!    seed, target and attempts.
//!
//! # Self-contained and safe
//!
//! The CSS and the script are inline (`html/report.css`, `html/report.js`) and the charts
//! are inline SVG drawn in Rust (`svg.rs`): no network, no external asset, no web font.
//! Every string from the report is cleaned of ANSI sequences and control characters and
//! escaped (`text::html`). A Content-Security-Policy forbids every fetch and allows only
//! the one script, by its hash (`SCRIPT_HASH`), so even an escaping bug could not run
//! a script a scenario name smuggled in. The page reads fine with JavaScript off: only
//! the filter bar needs it, and stays hidden without it. It is light, and prints with
//! every scenario open (failures are open anyway; the script opens the rest for print).
//!
//! # Adding a chart
//!
//! 1. Shape the data as an input of one of `svg.rs`'s functions: `svg::bars`,
//!    `svg::percentile_plot` (e.g. per-agent latency percentiles from an HDR
//!    histogram, one series per agent), `svg::line_chart` (e.g. RSS over time) or
//!    `svg::timeline`. If none fits, add a function there, with unit tests, that takes
//!    plain data and a `svg::Unit` and returns one `<svg>`. (The units `Count` and
//!    `Percent` wait for their first user under `#[expect(dead_code)]`: remove that when
//!    you use them.)
//! 2. Here, a function that returns the chart in a `<figure>` with a `<figcaption>`
//!    (see `duration_bars`), or nothing when there is nothing to plot; call it from
//!    `charts` for the run, or from `scenario` for one scenario.
//! 3. Fill the fixture (`tests/integration/fixture.rs`) so the chart appears, and look at
//!    it: `tests/integration/browser.rs` explains how to take a screenshot.
//!
//! Changing `html/report.js` changes its hash: the unit test `script_hash_matches` fails
//! and prints the new value for `SCRIPT_HASH`.

use std::fmt::Write as _;

use crate::metrics::{Histo, ScenarioMetrics};
use crate::model::{FailedAttempt, Failure, JournalEntry, RunReport, ScenarioResult, Verdict};
use crate::svg::{self, Bar, Lane, Mark, Series, Tone, Unit};
use crate::text::{self, html as esc};
use crate::view::{self, GateStatus, Status, human, secs};

const STYLE: &str = include_str!("html/report.css");
const SCRIPT: &str = include_str!("html/report.js");
/// The SHA-256 of [`SCRIPT`], base64, as the Content-Security-Policy names it.
const SCRIPT_HASH: &str = "sha256-1v4uOllZdIl+JaZD1/oNb1t4ciml2atQvFNgHj8qaAk=";
/// The most scenarios the duration bars show (the slowest).
const MAX_BARS: usize = 40;
/// The percentiles of scenario duration the percentile plot shows.
const PERCENTILES: [f64; 5] = [50.0, 90.0, 95.0, 99.0, 100.0];
/// The percentiles of a latency histogram the percentile plots show, as far as its
/// sample count resolves them; the maximum (p100) is always shown.
const LATENCY_PERCENTILES: [f64; 8] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999];

/// Renders `report` as one self-contained HTML document, ending with a newline.
///
/// Pure and deterministic: the same report gives the same bytes.
pub fn render(report: &RunReport) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let headline = view::headline(report);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'; base-uri 'none'; \
         form-action 'none'\">\n\
         <title>agent-harness: {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        esc(&headline)
    );
    banner(&mut h, report, &headline);
    h.push_str("<main class=\"wrap\">\n");
    gates(&mut h, report);
    charts(&mut h, report);
    latency(&mut h, report);
    scenarios(&mut h, report);
    h.push_str("</main>\n");
    let _ = writeln!(
        h,
        "<footer class=\"wrap\">Written by {} for the run started {}. This page is self-contained: it loads nothing.</footer>",
        esc(&report.tool),
        esc(&report.started_at)
    );
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}

fn banner(h: &mut String, report: &RunReport, headline: &str) {
    let (class, icon) = match report.verdict {
        Verdict::Pass => ("pass", "✓"),
        Verdict::Warn => ("warn", "⚠"),
        Verdict::Fail => ("fail", "✗"),
        Verdict::Interrupted => ("stopped", "■"),
    };
    let (verdict, reason) = match headline.split_once(" — ") {
        Some((verdict, reason)) => (verdict, format!(" — {}", esc(reason))),
        None => (headline, String::new()),
    };
    let _ = writeln!(
        h,
        "<header class=\"banner {class}\"><div class=\"wrap\">\n<h1><span class=\"verdict\">{icon} {}</span>{reason}</h1>",
        esc(verdict)
    );
    h.push_str("<ul class=\"counts\">");
    let total = report.scenarios.len();
    let _ = write!(
        h,
        "<li><b>{total}</b> {}</li>",
        if total == 1 { "scenario" } else { "scenarios" }
    );
    for status in Status::ALL {
        let n = report
            .scenarios
            .iter()
            .filter(|s| Status::of(s) == status)
            .count();
        if n > 0 {
            let _ = write!(h, "<li class=\"{0}\"><b>{n}</b> {0}</li>", status.as_str());
        }
    }
    h.push_str("</ul>\n");
    let _ = write!(
        h,
        "<p class=\"facts\">{} · seed <code>{}</code>",
        esc(&human(report.duration)),
        report.seed
    );
    if let Some(partition) = &report.partition {
        let _ = write!(h, " · partition <code>{}</code>", esc(partition));
    }
    let _ = writeln!(
        h,
        " · started {} · {}</p>",
        esc(&report.started_at),
        esc(&report.tool)
    );
    if report.interrupted {
        h.push_str(
            "<p class=\"interrupted\">⚠️ The run was interrupted before every scenario finished.</p>\n",
        );
    }
    h.push_str("</div></header>\n");
}

fn gates(h: &mut String, report: &RunReport) {
    if report.gates.is_empty() {
        return;
    }
    h.push_str(
        "<section id=\"gates\">\n<h2>Gates</h2>\n<div class=\"scroll\"><table class=\"gates\">\n\
         <thead><tr><th>Status</th><th>Gate</th><th>Critical</th><th>Metric</th><th>Target</th>\
         <th>Actual</th><th>Detail</th></tr></thead>\n<tbody>\n",
    );
    for g in view::gates_in_order(report) {
        let (class, word) = match GateStatus::of(g) {
            GateStatus::Failed => ("failed", "✗ failed"),
            GateStatus::Warning => ("warning", "⚠ warning"),
            GateStatus::Passed => ("passed", "✓ passed"),
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td><span class=\"badge {class}\">{word}</span></td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"detail\">{}</td></tr>",
            esc(&g.name),
            if g.critical { "yes" } else { "no" },
            text::html_code(&g.metric),
            esc(&g.target),
            esc(view::actual(g)),
            text::html_code(&g.detail)
        );
    }
    h.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn charts(h: &mut String, report: &RunReport) {
    let figures: Vec<String> = [duration_bars(report), duration_percentiles(report)]
        .into_iter()
        .flatten()
        .collect();
    if figures.is_empty() {
        return;
    }
    h.push_str("<section id=\"durations\">\n<h2>Durations</h2>\n<div class=\"charts\">\n");
    for figure in figures {
        h.push_str(&figure);
    }
    h.push_str("</div>\n</section>\n");
}

/// The run's end-to-end latency: every scenario's histogram merged into one.
fn latency(h: &mut String, report: &RunReport) {
    let Some(merged) = report.merged_end_to_end() else {
        return;
    };
    let points = histo_points(&merged);
    if points.len() < 2 {
        // One run: nothing to plot over percentiles.
        return;
    }
    let measured = report
        .scenarios
        .iter()
        .filter(|s| s.metrics.end_to_end.as_ref().is_some_and(|e| !e.is_empty()))
        .count();
    let series = [Series {
        label: format!(
            "end to end, all scenarios ({} {}, {measured} {})",
            merged.len(),
            if merged.len() == 1 { "run" } else { "runs" },
            if measured == 1 {
                "scenario"
            } else {
                "scenarios"
            }
        ),
        points,
    }];
    h.push_str("<section id=\"latency\">\n<h2>Latency</h2>\n<div class=\"charts\">\n");
    h.push_str(&figure(
        &format!(
            "End-to-end latency percentiles <small>p50 {}ms, p95 {}ms, p99 {}ms, max {}ms; \
             the x axis stretches the tail</small>",
            view::ms(merged.percentile_us(50.0)),
            view::ms(merged.percentile_us(95.0)),
            view::ms(merged.percentile_us(99.0)),
            view::ms(merged.max_us())
        ),
        &svg::percentile_plot("End-to-end latency percentiles", &series, Unit::Seconds),
    ));
    h.push_str("</div>\n</section>\n");
}

/// `(percentile, seconds)` points of a histogram: [`LATENCY_PERCENTILES`] up to the
/// highest its sample count resolves (at least one sample above it), then the maximum.
fn histo_points(histo: &Histo) -> Vec<(f64, f64)> {
    if histo.is_empty() {
        return Vec::new();
    }
    let n = histo.len() as f64;
    let secs = |us: u64| us as f64 / 1e6;
    LATENCY_PERCENTILES
        .iter()
        .filter(|&&p| n * (1.0 - p / 100.0) >= 1.0 - 1e-9)
        .map(|&p| (p, secs(histo.percentile_us(p))))
        .chain([(100.0, secs(histo.max_us()))])
        .collect()
}

/// A scenario's performance: charts, the latency table, memory, load, thresholds.
fn performance(h: &mut String, m: &ScenarioMetrics) {
    h.push_str("<h3>Performance</h3>\n");
    let latencies = view::latencies(m);
    let plotted: Vec<Series> = latencies
        .iter()
        .filter(|l| !l.key.starts_with("executor.") && l.key != "inter_token")
        .map(|l| Series {
            label: l.label.clone(),
            points: histo_points(l.histo),
        })
        .collect();
    let mut figures = Vec::new();
    // Single runs have a point each: the table says it better than a plot.
    if plotted.iter().any(|s| s.points.len() > 1) {
        figures.push(figure(
            "Latency percentiles <small>end to end, each agent&#39;s LLM calls, time to first token</small>",
            &svg::percentile_plot("Latency percentiles", &plotted, Unit::Seconds),
        ));
    }
    if let Some(memory) = m.memory.as_ref().filter(|m| !m.timeline.is_empty()) {
        let series = [Series {
            label: "RSS of the target's process tree".to_owned(),
            points: memory
                .timeline
                .iter()
                .map(|&(t, rss)| (t, rss as f64))
                .collect(),
        }];
        figures.push(figure(
            "Memory over time <small>seconds since the scenario started</small>",
            &svg::line_chart("Memory over time", &series, Unit::Seconds, Unit::Bytes),
        ));
    }
    if !figures.is_empty() {
        h.push_str("<div class=\"charts\">\n");
        for f in figures {
            h.push_str(&f);
        }
        h.push_str("</div>\n");
    }
    if !latencies.is_empty() {
        h.push_str(
            "<div class=\"scroll\"><table class=\"latency\">\n<thead><tr><th>Latency (ms)</th>\
             <th class=\"num\">count</th><th class=\"num\">p50</th><th class=\"num\">p95</th>\
             <th class=\"num\">p99</th><th class=\"num\">max</th></tr></thead>\n<tbody>\n",
        );
        for l in &latencies {
            let histo = l.histo;
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&l.label),
                histo.len(),
                view::ms(histo.percentile_us(50.0)),
                view::ms(histo.percentile_us(95.0)),
                view::ms(histo.percentile_us(99.0)),
                view::ms(histo.max_us())
            );
        }
        h.push_str("</tbody>\n</table></div>\n");
    }
    let mut facts: Vec<(&str, String)> = Vec::new();
    if let Some(memory) = &m.memory {
        facts.push(("memory", view::memory_summary(memory)));
    }
    if let Some(load) = &m.load {
        facts.push(("load", view::load_summary(load)));
    }
    if let Some(tokens) = m.tokens_per_run {
        facts.push(("tokens per run", format!("{tokens:.0}")));
    }
    if let Some(cost) = m.cost_per_run {
        facts.push(("cost per run", format!("{cost:.4}")));
    }
    if !facts.is_empty() {
        h.push_str("<dl class=\"meta perf\">");
        for (key, value) in facts {
            let _ = write!(h, "<div><dt>{key}</dt><dd>{}</dd></div>", esc(&value));
        }
        h.push_str("</dl>\n");
    }
    if !m.thresholds.is_empty() {
        h.push_str(
            "<div class=\"scroll\"><table class=\"thresholds\">\n<thead><tr><th>Status</th>\
             <th>Threshold</th><th class=\"num\">Observed</th></tr></thead>\n<tbody>\n",
        );
        for t in &m.thresholds {
            let (class, word) = if t.passed {
                ("passed", "✓ held")
            } else {
                ("failed", "✗ failed")
            };
            let _ = writeln!(
                h,
                "<tr class=\"{class}\"><td><span class=\"badge {class}\">{word}</span></td><td class=\"mono\">{}</td><td class=\"num mono\">{}</td></tr>",
                esc(&t.name),
                esc(&t.observed)
            );
        }
        h.push_str("</tbody>\n</table></div>\n");
    }
}

/// A status's sign next to its word. Not the Markdown's emoji: a machine without an emoji
/// font (a CI runner, a printer) shows those as boxes; these are in every common font.
fn glyph(status: Status) -> &'static str {
    match status {
        Status::Failed => "✗",
        Status::Error => "!",
        Status::Flaky => "↻",
        Status::Passed => "✓",
        Status::Skipped => "–",
    }
}

/// The colour of a scenario status in charts.
fn tone(status: Status) -> Tone {
    match status {
        Status::Failed => Tone::Bad,
        Status::Error => Tone::Error,
        Status::Flaky => Tone::Warn,
        Status::Passed => Tone::Good,
        Status::Skipped => Tone::Muted,
    }
}

/// Scenarios that ran, with their index in the report (their `id` is `s-<index>`).
fn ran(report: &RunReport) -> Vec<(usize, &ScenarioResult)> {
    report
        .scenarios
        .iter()
        .enumerate()
        .filter(|(_, s)| Status::of(s) != Status::Skipped)
        .collect()
}

/// A bar per scenario that ran, slowest first (at most [`MAX_BARS`]), each a link to the
/// scenario's details.
fn duration_bars(report: &RunReport) -> Option<String> {
    let mut ran = ran(report);
    if ran.is_empty() {
        return None;
    }
    // Stable: equal durations keep discovery order.
    ran.sort_by_key(|(_, s)| std::cmp::Reverse(s.duration));
    let total = ran.len();
    ran.truncate(MAX_BARS);
    let bars: Vec<Bar> = ran
        .iter()
        .map(|&(i, s)| {
            let status = Status::of(s);
            Bar {
                label: s.name.clone(),
                value: s.duration.as_secs_f64(),
                tone: tone(status),
                title: format!("{} — {}, {}", s.name, secs(s.duration), status.as_str()),
                href: Some(format!("#s-{i}")),
            }
        })
        .collect();
    let mut present: Vec<Status> = ran.iter().map(|(_, s)| Status::of(s)).collect();
    present.sort();
    present.dedup();
    let legend: Vec<(Tone, &str)> = present.iter().map(|&s| (tone(s), s.as_str())).collect();
    let caption = if total > MAX_BARS {
        format!("Scenario durations <small>the {MAX_BARS} slowest of {total}</small>")
    } else {
        "Scenario durations <small>slowest first; a bar links to its scenario</small>".to_owned()
    };
    Some(figure(
        &caption,
        &svg::bars("Scenario durations", &bars, Unit::Seconds, &legend),
    ))
}

/// p50, p90, p95, p99 and max of the durations of the scenarios that ran.
fn duration_percentiles(report: &RunReport) -> Option<String> {
    let mut secs: Vec<f64> = ran(report)
        .iter()
        .map(|(_, s)| s.duration.as_secs_f64())
        .collect();
    if secs.is_empty() {
        return None;
    }
    secs.sort_by(f64::total_cmp);
    let points = PERCENTILES
        .iter()
        .filter_map(|&p| Some((p, nearest_rank(&secs, p)?)))
        .collect();
    let n = secs.len();
    let series = [Series {
        label: format!(
            "scenario duration ({n} {})",
            if n == 1 { "scenario" } else { "scenarios" }
        ),
        points,
    }];
    Some(figure(
        "Duration percentiles <small>p50, p90, p95, p99, max; the x axis stretches the tail</small>",
        &svg::percentile_plot("Duration percentiles", &series, Unit::Seconds),
    ))
}

/// The nearest-rank percentile `p` (0..=100) of sorted values.
fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// A `<figure>`; `caption` is HTML, already escaped.
fn figure(caption: &str, svg: &str) -> String {
    format!("<figure><figcaption>{caption}</figcaption>{svg}</figure>\n")
}

fn scenarios(h: &mut String, report: &RunReport) {
    h.push_str("<section id=\"scenarios\">\n<h2>Scenarios</h2>\n");
    if report.scenarios.is_empty() {
        h.push_str("<p class=\"none\">No scenario ran.</p>\n</section>\n");
        return;
    }
    filter_bar(h, report);
    // Failures first; a scenario's id is its index in the report, whatever the order.
    let mut order: Vec<(usize, &ScenarioResult)> = report.scenarios.iter().enumerate().collect();
    order.sort_by_key(|(_, s)| Status::of(s));
    for (i, s) in order {
        scenario(h, i, s);
    }
    h.push_str("</section>\n");
}

/// Hidden until the script shows it: without JavaScript it could not work.
fn filter_bar(h: &mut String, report: &RunReport) {
    h.push_str(
        "<form id=\"filters\" class=\"filters\" role=\"search\" hidden>\n\
         <input type=\"search\" id=\"q\" placeholder=\"Filter by name, path, suite or tag\" \
         aria-label=\"Filter scenarios by name, path, suite or tag\" autocomplete=\"off\">\n\
         <span class=\"statuses\">",
    );
    for status in Status::ALL {
        let n = report
            .scenarios
            .iter()
            .filter(|s| Status::of(s) == status)
            .count();
        let _ = write!(
            h,
            "<label><input type=\"checkbox\" name=\"status\" value=\"{0}\" checked> {0} ({n})</label>",
            status.as_str()
        );
    }
    h.push_str(
        "</span>\n<label class=\"only\"><input type=\"checkbox\" id=\"failures-only\"> failures only</label>\n\
         <output id=\"shown\"></output>\n</form>\n\
         <p id=\"none\" class=\"none\" hidden>No scenario matches the filter.</p>\n",
    );
}

fn scenario(h: &mut String, index: usize, s: &ScenarioResult) {
    let status = Status::of(s);
    let search = [s.name.as_str(), &s.path, &s.suite]
        .into_iter()
        .chain(s.tags.iter().map(String::as_str))
        .map(text::one_line)
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let open = if matches!(status, Status::Failed | Status::Error) {
        " open"
    } else {
        ""
    };
    let _ = writeln!(
        h,
        "<details class=\"scenario {0}\" id=\"s-{index}\" data-status=\"{0}\" data-search=\"{1}\"{open}>\n\
         <summary><span class=\"badge {0}\">{2} {0}</span> <span class=\"name\">{3}</span> \
         <span class=\"path mono\">{4}</span> <span class=\"time\">{5}</span></summary>\n<div class=\"body\">",
        status.as_str(),
        esc(&search),
        glyph(status),
        esc(&s.name),
        esc(&s.path),
        secs(s.duration)
    );

    // The path, outcome and duration are in the summary line above.
    h.push_str("<dl class=\"meta\">");
    let mut meta = |key: &str, value: String| {
        let _ = write!(h, "<div><dt>{key}</dt><dd>{value}</dd></div>");
    };
    meta("seed", format!("<code>{}</code>", s.seed));
    meta("target", esc(&s.target));
    meta("suite", esc(&s.suite));
    if !s.tags.is_empty() {
        let tags: Vec<String> = s.tags.iter().map(|t| esc(t)).collect();
        meta("tags", tags.join(", "));
    }
    meta("attempts", s.attempts().to_string());
    if let Some(code) = s.exit_code {
        meta("exit code", code.to_string());
    }
    h.push_str("</dl>\n");

    let all_failures = view::all_failures(s);
    if !all_failures.is_empty() {
        h.push_str("<h3>Failures</h3>\n");
        failures(h, &all_failures);
    }
    if !s.metrics.is_empty() {
        performance(h, &s.metrics);
    }
    if !s.failed_attempts.is_empty() {
        attempts(h, &s.failed_attempts);
    }
    if !s.journal.is_empty() {
        journal(h, &s.journal);
    }
    if !s.stderr_tail.is_empty() {
        h.push_str("<h3>stderr (tail)</h3>\n");
        pre(h, &s.stderr_tail);
    }
    if let Some(output) = &s.output {
        h.push_str("<h3>Output</h3>\n");
        let pretty = serde_json::to_string_pretty(output).unwrap_or_else(|_| output.to_string());
        pre(h, &pretty);
    }
    h.push_str("</div>\n</details>\n");
}

fn failures(h: &mut String, failures: &[Failure]) {
    for f in failures {
        h.push_str("<div class=\"failure\"><p>");
        let kind = text::one_line(f.kind.trim());
        if !kind.is_empty() {
            let _ = write!(h, "<strong>{}</strong>: ", esc(&kind));
        }
        let _ = write!(h, "{}</p>", esc(&text::one_line(&f.message)));
        if !f.detail.is_empty() {
            pre(h, &f.detail);
        }
        h.push_str("</div>\n");
    }
}

fn attempts(h: &mut String, attempts: &[FailedAttempt]) {
    let _ = writeln!(h, "<h3>Earlier attempts</h3>\n<ol class=\"attempts\">");
    for a in attempts {
        let _ = writeln!(h, "<li>failed after {}", secs(a.duration));
        failures(h, &a.failures);
        h.push_str("</li>\n");
    }
    h.push_str("</ol>\n");
}

/// The stub requests: a timeline (a row per stub) and a table.
fn journal(h: &mut String, journal: &[JournalEntry]) {
    h.push_str("<h3>Stub requests</h3>\n");
    let mut lanes: Vec<Lane> = Vec::new();
    for entry in journal {
        let source = text::one_line(&entry.source);
        let mark = Mark {
            at: entry.at.as_secs_f64(),
            tone: status_class(&entry.served).1,
            title: text::one_line(&entry.to_string()),
        };
        match lanes.iter_mut().find(|l| l.label == source) {
            Some(lane) => lane.marks.push(mark),
            None => lanes.push(Lane {
                label: source,
                marks: vec![mark],
            }),
        }
    }
    let mut classes: Vec<(&str, Tone)> = journal.iter().map(|e| status_class(&e.served)).collect();
    classes.sort_by_key(|&(name, _)| name);
    classes.dedup();
    let legend: Vec<(Tone, &str)> = classes.iter().map(|&(name, tone)| (tone, name)).collect();
    let _ = writeln!(
        h,
        "<div class=\"journal-chart\">{}</div>",
        svg::timeline("Stub requests over time", &lanes, Unit::Seconds, &legend)
    );
    h.push_str(
        "<div class=\"scroll\"><table class=\"journal\">\n<thead><tr><th class=\"num\">time</th>\
         <th>source</th><th>agent</th><th>request</th><th>rule</th><th>served</th></tr></thead>\n<tbody>\n",
    );
    for e in journal {
        let class = match status_class(&e.served).0 {
            "2xx" => "s2xx",
            "4xx" => "s4xx",
            "5xx" => "s5xx",
            _ => "sother",
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">+{:.3}s</td><td>{}</td><td>{}</td><td class=\"request\">{}</td><td>{}</td><td><span class=\"served {class}\">{}</span></td></tr>",
            e.at.as_secs_f64(),
            esc(&e.source),
            esc(e.agent.as_deref().unwrap_or("")),
            esc(&e.request),
            esc(e.rule.as_deref().unwrap_or("")),
            esc(&e.served)
        );
    }
    h.push_str("</tbody>\n</table></div>\n");
}

/// The class of what a stub served, from its leading status code (`200 json …`):
/// `2xx`, `4xx`, `5xx`, `1xx/3xx`, or `no status` (a reset, a timeout).
fn status_class(served: &str) -> (&'static str, Tone) {
    let first = served.split_whitespace().next().unwrap_or("");
    let is_code = first.len() == 3 && first.bytes().all(|b| b.is_ascii_digit());
    match first.as_bytes() {
        [b'2', ..] if is_code => ("2xx", Tone::Good),
        [b'4', ..] if is_code => ("4xx", Tone::Warn),
        [b'5', ..] if is_code => ("5xx", Tone::Bad),
        [b'1' | b'3', ..] if is_code => ("1xx/3xx", Tone::Info),
        _ => ("no status", Tone::Muted),
    }
}

/// A `<pre>` block. The newline after `<pre>` is dropped by HTML parsers, so content that
/// starts with a line break keeps it.
fn pre(h: &mut String, content: &str) {
    let _ = writeln!(h, "<pre>\n{}</pre>", esc(content));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::Outcome;
    use crate::test_support::{gate, report, scenario};

    /// `'sha256-<base64 of the SHA-256 of SCRIPT>'`, as CSP wants it.
    #[test]
    fn script_hash_matches() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(SCRIPT.as_bytes());
        let expected = format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(
            SCRIPT_HASH, expected,
            "html/report.js changed: set SCRIPT_HASH to {expected:?}"
        );
    }

    #[test]
    fn script_cannot_end_its_element() {
        let lower = SCRIPT.to_lowercase();
        assert!(!lower.contains("</script") && !lower.contains("<!--"));
        assert!(!STYLE.to_lowercase().contains("</style"));
    }

    #[test]
    fn status_classes_read_the_leading_code() {
        assert_eq!(status_class("200 json (312 bytes)").0, "2xx");
        assert_eq!(status_class(" 429 error").0, "4xx");
        assert_eq!(status_class("503").0, "5xx");
        assert_eq!(status_class("304 cached").0, "1xx/3xx");
        assert_eq!(status_class("2000 things").0, "no status");
        assert_eq!(status_class("200ms later").0, "no status");
        assert_eq!(status_class("reset").0, "no status");
        assert_eq!(status_class("é").0, "no status");
        assert_eq!(status_class("").0, "no status");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(nearest_rank(&v, 50.0), Some(2.0));
        assert_eq!(nearest_rank(&v, 90.0), Some(4.0));
        assert_eq!(nearest_rank(&v, 0.0), Some(1.0));
        assert_eq!(nearest_rank(&[], 50.0), None);
    }

    #[test]
    fn failing_gate_comes_first_and_banner_says_fail() {
        let mut r = report(vec![scenario("a", Outcome::Passed)]);
        r.verdict = Verdict::Fail;
        r.gates = vec![gate("held", true, true), gate("e2e", true, false)];
        let html = render(&r);
        let e2e = html.find("<td>e2e</td>").unwrap();
        let held = html.find("<td>held</td>").unwrap();
        assert!(e2e < held);
        assert!(html.contains(r#"<header class="banner fail">"#));
        assert!(html.contains("✗ FAIL</span> — critical gate &quot;e2e&quot; failed</h1>"));
    }

    #[test]
    fn histogram_points_stop_where_the_samples_do() {
        let mut h = Histo::new();
        assert_eq!(histo_points(&h), []);
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        let percentiles: Vec<f64> = histo_points(&h).iter().map(|&(p, _)| p).collect();
        // p99.9 is the 999th of 1000 samples; p99.99 would need 10000.
        assert_eq!(percentiles, [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 100.0]);
        let (_, max) = histo_points(&h).pop().unwrap();
        assert!((max - 1.0).abs() < 0.001, "{max}");
        let mut one = Histo::new();
        one.record(Duration::from_millis(5));
        assert_eq!(histo_points(&one).len(), 1, "the maximum only");
    }

    #[test]
    fn pre_keeps_a_leading_line_break() {
        let mut h = String::new();
        pre(&mut h, "\nsecond");
        assert_eq!(h, "<pre>\n\nsecond</pre>\n");
    }
}
