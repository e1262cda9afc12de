//! Whatever the strings in a report, the outputs stay well-formed: the XML parses and its
//! counts add up, the Markdown tables keep their cells and fences their content, the HTML
//! parses without an error and runs nothing but its own script, and `results.json`
//! round-trips and validates against its schema. A property over proptest strategies:
//! reports built from awkward pieces (control characters, ANSI sequences, XML, HTML and
//! Markdown syntax, non-ASCII), any outcome, metric, verdict and interruption; a failure
//! shrinks to a small report.

use std::time::Duration;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use reports::metrics::{Histo, LoadMetrics, MemoryMetrics, ScenarioMetrics, ThresholdResult};
use reports::{
    FailedAttempt, Failure, GateResult, JournalEntry, Outcome, RunReport, ScenarioResult, Verdict,
};

const PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    " ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\u{0}",
    "\u{1}",
    "\u{8}",
    "\u{b}",
    "\u{c}",
    "\u{1f}",
    "\u{7f}",
    "\u{85}",
    "\u{9b}",
    "\u{9c}",
    "\u{9d}",
    "\u{fffe}",
    "\u{ffff}",
    "\u{feff}",
    "\u{2028}",
    "\x1b",
    "\x1b[",
    "\x1b[31m",
    "\x1b[0m",
    "\x1b[1;",
    "\x1b]0;t\x07",
    "\x1b]8;;u\x1b\\",
    "\x1bP",
    "\x1b(",
    "\x1b\\",
    "<",
    ">",
    "<script>",
    "</pre>",
    "<!-- ",
    "\u{fdd0}",
    "\u{1fffe}",
    "&",
    "\"",
    "'",
    "]]>",
    "<!--",
    "&amp;",
    "&#1;",
    "&#x0;",
    "|",
    "\\",
    "\\|",
    "`",
    "```",
    "````",
    "*",
    "_",
    "#",
    "~~~",
    "-",
    "é",
    "中",
    "🚀",
    "/",
    ".",
    "..",
    ".toml",
    ":",
    "?",
];

/// A string of up to 15 awkward pieces; shrinks towards fewer, earlier pieces.
fn string() -> impl Strategy<Value = String> {
    vec(select(PIECES), 0..16).prop_map(|pieces| pieces.concat())
}

fn maybe<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    option::of(s)
}

/// A finite number JSON round-trips: thousandths of up to 100.
fn number() -> impl Strategy<Value = f64> {
    (0u64..100_000).prop_map(|n| n as f64 / 1000.0)
}

fn failures() -> impl Strategy<Value = Vec<Failure>> {
    vec(
        (string(), string(), string()).prop_map(|(kind, message, detail)| Failure {
            kind,
            message,
            detail,
        }),
        0..3,
    )
}

fn histo() -> impl Strategy<Value = Histo> {
    vec(0u64..5_000_000_000, 0..50).prop_map(|micros| {
        let mut h = Histo::new();
        for m in micros {
            h.record(Duration::from_micros(m));
        }
        h
    })
}

fn memory() -> impl Strategy<Value = MemoryMetrics> {
    (
        0u64..(1 << 40),
        number(),
        0u64..1000,
        maybe(number().prop_map(|n| n - 50.0)),
        vec(0u64..(1 << 34), 0..60),
        maybe(0u64..(1 << 32)),
    )
        .prop_map(
            |(peak, cpu, runs, growth, timeline, harness)| MemoryMetrics {
                peak_rss_bytes: peak,
                cpu_seconds: cpu,
                runs,
                growth_per_run_bytes: growth,
                timeline: timeline
                    .into_iter()
                    .enumerate()
                    .map(|(i, rss)| (i as f64 / 4.0, rss))
                    .collect(),
                harness_peak_rss_bytes: harness,
                sampler_cpu_seconds: None,
            },
        )
}

fn load() -> impl Strategy<Value = LoadMetrics> {
    (
        string(),
        maybe(number()),
        number(),
        [0u64..10_000, 0u64..10_000, 0u64..10_000, 0u64..10_000],
        number(),
    )
        .prop_map(
            |(model, intended, achieved, [started, succeeded, failed, dropped], seconds)| {
                LoadMetrics {
                    model,
                    intended_rate: intended,
                    achieved_rate: achieved,
                    started,
                    succeeded,
                    failed,
                    dropped,
                    seconds,
                }
            },
        )
}

/// Empty half the time; otherwise some of everything, with awkward agent, executor,
/// model and threshold names.
fn metrics() -> impl Strategy<Value = ScenarioMetrics> {
    let some = (
        (maybe(histo()), vec((string(), histo()), 0..3)),
        (
            maybe(histo()),
            maybe(histo()),
            vec((string(), histo()), 0..3),
        ),
        (maybe(memory()), maybe(load())),
        (maybe(number()), maybe(number())),
        vec(
            (string(), any::<bool>(), string()).prop_map(|(name, passed, observed)| {
                ThresholdResult {
                    name,
                    passed,
                    observed,
                }
            }),
            0..4,
        ),
    )
        .prop_map(
            |((end_to_end, llm), (ttft, inter, executor), (memory, load), (tokens, cost), t)| {
                ScenarioMetrics {
                    end_to_end,
                    llm: llm.into_iter().collect(),
                    time_to_first_token: ttft,
                    inter_token: inter,
                    executor: executor.into_iter().collect(),
                    memory,
                    load,
                    tokens_per_run: tokens,
                    cost_per_run: cost,
                    thresholds: t,
                }
            },
        );
    prop_oneof![Just(ScenarioMetrics::default()), some]
}

fn gate() -> impl Strategy<Value = GateResult> {
    (
        (string(), any::<bool>(), string(), string()),
        // Finite: JSON has no NaN, so a NaN would not round-trip.
        (
            maybe(string()),
            maybe((0u64..100_000).prop_map(|n| n as f64 / 7.0)),
        ),
        (any::<bool>(), string()),
    )
        .prop_map(
            |((name, critical, metric, target), (actual, value), (passed, detail))| GateResult {
                name,
                critical,
                metric,
                target,
                actual,
                value,
                passed,
                detail,
            },
        )
}

fn journal_entry() -> impl Strategy<Value = JournalEntry> {
    (
        0u64..10_000_000,
        string(),
        maybe(string()),
        string(),
        maybe(string()),
        string(),
    )
        .prop_map(|(at, source, agent, request, rule, served)| JournalEntry {
            at: Duration::from_micros(at),
            source,
            agent,
            request,
            rule,
            served,
        })
}

fn scenario() -> impl Strategy<Value = ScenarioResult> {
    let outcome = prop_oneof![
        Just(Outcome::Passed),
        Just(Outcome::Failed),
        Just(Outcome::Error),
        Just(Outcome::Skipped),
    ];
    (
        (string(), string(), string(), string(), vec(string(), 0..3)),
        (any::<u64>(), outcome, 0u64..100_000, failures()),
        (vec(journal_entry(), 0..3), maybe(any::<i32>()), string()),
        (maybe(string()), metrics()),
        vec(
            (0u64..100_000, failures()).prop_map(|(ms, failures)| FailedAttempt {
                duration: Duration::from_millis(ms),
                failures,
            }),
            0..3,
        ),
    )
        .prop_map(
            |(
                (name, path, suite, target, tags),
                (seed, outcome, ms, failures),
                (journal, exit_code, stderr_tail),
                (output, metrics),
                failed_attempts,
            )| ScenarioResult {
                name,
                path,
                suite,
                target,
                tags,
                seed,
                outcome,
                duration: Duration::from_millis(ms),
                failures,
                journal,
                exit_code,
                stderr_tail,
                output: output.map(serde_json::Value::String),
                metrics,
                failed_attempts,
            },
        )
}

/// Any run, interrupted or not, under any verdict.
fn report() -> impl Strategy<Value = RunReport> {
    let verdict = prop_oneof![
        Just(Verdict::Pass),
        Just(Verdict::Warn),
        Just(Verdict::Fail),
        Just(Verdict::Interrupted),
    ];
    (
        (
            string(),
            string(),
            0u64..1_000_000,
            any::<u64>(),
            any::<bool>(),
        ),
        (
            vec(scenario(), 0..6),
            vec(gate(), 0..4),
            verdict,
            maybe(string()),
        ),
    )
        .prop_map(
            |(
                (tool, started_at, ms, seed, interrupted),
                (scenarios, gates, verdict, partition),
            )| {
                RunReport {
                    tool,
                    started_at,
                    duration: Duration::from_millis(ms),
                    seed,
                    interrupted,
                    scenarios,
                    gates,
                    verdict,
                    partition,
                }
            },
        )
}

/// The number of cells in a GFM table row: split at pipes not escaped by a backslash
/// (a backslash escapes the character after it, another backslash included).
fn cells(row: &str) -> usize {
    let mut pipes = 0;
    let mut chars = row.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '|' => pipes += 1,
            _ => {}
        }
    }
    pipes - 1
}

/// Every fenced block opened with `<n backticks>text` closes with exactly n backticks,
/// and nothing in between closes it early.
fn check_fences(md: &str) {
    let is_fence = |l: &str| l.trim().len() >= 3 && l.trim().chars().all(|c| c == '`');
    let mut open: Option<usize> = None;
    for line in md.lines() {
        match open {
            None => {
                assert!(!is_fence(line), "a fence closes nothing: {line:?}\n{md}");
                if let Some(ticks) = line.strip_suffix("text")
                    && ticks.len() >= 3
                    && ticks.chars().all(|c| c == '`')
                {
                    open = Some(ticks.len());
                }
            }
            Some(n) => {
                if is_fence(line) && line.trim().len() >= n {
                    assert_eq!(line, "`".repeat(n), "closed early\n{md}");
                    open = None;
                }
            }
        }
    }
    assert_eq!(open, None, "a fence stays open\n{md}");
}

fn check_markdown(md: &str, report: &RunReport) {
    assert!(
        !md.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
        "control character in\n{md:?}"
    );
    if !report.scenarios.is_empty() {
        let rows: Vec<&str> = md
            .lines()
            .skip_while(|l| *l != "| | Scenario | Suite | Time |")
            .skip(2)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(rows.len(), report.scenarios.len(), "{md}");
        for row in rows {
            assert_eq!(cells(row), 4, "row {row:?} in\n{md}");
        }
    }
    // The performance tables keep their cells too.
    for (header, n) in [
        ("| Latency (ms) | Count | p50 | p95 | p99 | Max |", 6),
        ("| | Threshold | Observed |", 3),
    ] {
        let mut lines = md.lines();
        while lines.any(|l| l == header) {
            let rows = lines.clone().skip(1).take_while(|l| !l.is_empty());
            for row in rows {
                assert_eq!(cells(row), n, "row {row:?} in\n{md}");
            }
        }
    }
    check_fences(md);
}

/// Every report a run can produce, and 300 cases by default (`PROPTEST_CASES` raises it;
/// a failing case shrinks to a small report and is kept in `proptest-regressions/`).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(300),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Checks every output of `report`; with `write`, also writes them all to disk.
fn check_outputs(report: &RunReport, write: bool) {
    let xml = reports::junit::render(report);
    if let Err(e) = roxmltree::Document::parse(&xml) {
        panic!("{e}\n{xml}");
    }
    let (total, _) = crate::junit::check_counts(&xml);
    let thresholds: usize = report
        .scenarios
        .iter()
        .map(|s| s.metrics.thresholds.len())
        .sum();
    assert_eq!(
        total.tests,
        report.scenarios.len() + thresholds + report.gates.len() + usize::from(report.interrupted),
        "an interrupted run is one more testcase, in error"
    );

    check_markdown(&reports::markdown::render(report), report);

    let html = reports::html::render(report);
    let doc = crate::html::check_page(&html);
    let details = scraper::Selector::parse("details.scenario").unwrap();
    assert_eq!(doc.select(&details).count(), report.scenarios.len());

    let json = reports::json::render(report);
    let back: RunReport = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, report);
    crate::schema::assert_valid(&json);

    if write {
        let dir = tempfile::tempdir().unwrap();
        let written = reports::write_all(report, dir.path()).unwrap();
        assert_eq!(written.journals.len(), report.scenarios.len());
        for path in &written.journals {
            assert_eq!(path.parent(), Some(dir.path().join("journal").as_path()));
            assert!(path.is_file(), "{}", path.display());
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Whatever a run's strings, outcomes, metrics and interruption, every output is
    /// well formed and results.json validates against its schema.
    #[test]
    fn any_report_gives_well_formed_outputs(report in report(), write in prop::bool::weighted(0.04)) {
        check_outputs(&report, write);
    }
}
