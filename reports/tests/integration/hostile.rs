//! Whatever the strings in a report, the outputs stay well-formed: the XML parses and its
//! counts add up, the Markdown tables keep their cells and fences their content, the HTML
//! parses without an error and runs nothing but its own script, and `results.json`
//! round-trips and validates against its schema. A few hundred reports built from a
//! seeded generator of awkward pieces: control characters, ANSI sequences, XML, HTML and
//! Markdown syntax, non-ASCII.

use std::time::Duration;

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

/// xorshift64*: small, seeded, good enough to pick pieces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn string(&mut self) -> String {
        (0..self.below(16))
            .map(|_| PIECES[self.below(PIECES.len())])
            .collect()
    }

    fn maybe(&mut self) -> Option<String> {
        (self.below(2) == 0).then(|| self.string())
    }
}

fn failures(rng: &mut Rng) -> Vec<Failure> {
    (0..rng.below(3))
        .map(|_| Failure {
            kind: rng.string(),
            message: rng.string(),
            detail: rng.string(),
        })
        .collect()
}

/// A finite number JSON round-trips: thousandths of up to 100.
fn number(rng: &mut Rng) -> f64 {
    (rng.next() % 100_000) as f64 / 1000.0
}

fn histo(rng: &mut Rng) -> Histo {
    let mut h = Histo::new();
    for _ in 0..rng.below(50) {
        h.record(Duration::from_micros(rng.next() % 5_000_000_000));
    }
    h
}

/// Empty half the time; otherwise some of everything, with awkward agent, executor,
/// model and threshold names.
fn metrics(rng: &mut Rng) -> ScenarioMetrics {
    if rng.below(2) == 0 {
        return ScenarioMetrics::default();
    }
    ScenarioMetrics {
        end_to_end: (rng.below(2) == 0).then(|| histo(rng)),
        llm: (0..rng.below(3))
            .map(|_| (rng.string(), histo(rng)))
            .collect(),
        time_to_first_token: (rng.below(2) == 0).then(|| histo(rng)),
        inter_token: (rng.below(2) == 0).then(|| histo(rng)),
        executor: (0..rng.below(3))
            .map(|_| (rng.string(), histo(rng)))
            .collect(),
        memory: (rng.below(2) == 0).then(|| MemoryMetrics {
            peak_rss_bytes: rng.next() % (1 << 40),
            cpu_seconds: number(rng),
            runs: rng.next() % 1000,
            growth_per_run_bytes: (rng.below(2) == 0).then(|| number(rng) - 50.0),
            timeline: (0..rng.below(60))
                .map(|i| (i as f64 / 4.0, rng.next() % (1 << 34)))
                .collect(),
            harness_peak_rss_bytes: (rng.below(2) == 0).then(|| rng.next() % (1 << 32)),
        }),
        load: (rng.below(2) == 0).then(|| LoadMetrics {
            model: rng.string(),
            intended_rate: (rng.below(2) == 0).then(|| number(rng)),
            achieved_rate: number(rng),
            started: rng.next() % 10_000,
            succeeded: rng.next() % 10_000,
            failed: rng.next() % 10_000,
            dropped: rng.next() % 10_000,
            seconds: number(rng),
        }),
        tokens_per_run: (rng.below(2) == 0).then(|| number(rng)),
        cost_per_run: (rng.below(2) == 0).then(|| number(rng)),
        thresholds: (0..rng.below(4))
            .map(|_| ThresholdResult {
                name: rng.string(),
                passed: rng.below(2) == 0,
                observed: rng.string(),
            })
            .collect(),
    }
}

fn gate(rng: &mut Rng) -> GateResult {
    GateResult {
        name: rng.string(),
        critical: rng.below(2) == 0,
        metric: rng.string(),
        target: rng.string(),
        actual: rng.maybe(),
        // Finite: JSON has no NaN, so a NaN would not round-trip.
        value: (rng.below(2) == 0).then(|| (rng.next() % 100_000) as f64 / 7.0),
        passed: rng.below(2) == 0,
        detail: rng.string(),
    }
}

fn scenario(rng: &mut Rng) -> ScenarioResult {
    let outcome = [
        Outcome::Passed,
        Outcome::Failed,
        Outcome::Error,
        Outcome::Skipped,
    ][rng.below(4)];
    ScenarioResult {
        name: rng.string(),
        path: rng.string(),
        suite: rng.string(),
        target: rng.string(),
        tags: (0..rng.below(3)).map(|_| rng.string()).collect(),
        seed: rng.next(),
        outcome,
        duration: Duration::from_millis(rng.next() % 100_000),
        failures: failures(rng),
        journal: (0..rng.below(3))
            .map(|_| JournalEntry {
                at: Duration::from_micros(rng.next() % 10_000_000),
                source: rng.string(),
                agent: rng.maybe(),
                request: rng.string(),
                rule: rng.maybe(),
                served: rng.string(),
            })
            .collect(),
        exit_code: (rng.below(2) == 0).then(|| rng.next() as i32),
        stderr_tail: rng.string(),
        output: rng.maybe().map(serde_json::Value::String),
        metrics: metrics(rng),
        failed_attempts: (0..rng.below(3))
            .map(|_| FailedAttempt {
                duration: Duration::from_millis(rng.next() % 100_000),
                failures: failures(rng),
            })
            .collect(),
    }
}

fn report(rng: &mut Rng) -> RunReport {
    RunReport {
        tool: rng.string(),
        started_at: rng.string(),
        duration: Duration::from_millis(rng.next() % 1_000_000),
        seed: rng.next(),
        interrupted: rng.below(2) == 0,
        scenarios: (0..rng.below(6)).map(|_| scenario(rng)).collect(),
        gates: (0..rng.below(4)).map(|_| gate(rng)).collect(),
        verdict: [Verdict::Pass, Verdict::Warn, Verdict::Fail][rng.below(3)],
        partition: rng.maybe(),
    }
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

#[test]
fn any_strings_give_well_formed_outputs() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for i in 0..300 {
        let report = report(&mut rng);

        let xml = reports::junit::render(&report);
        if let Err(e) = roxmltree::Document::parse(&xml) {
            panic!("iteration {i}: {e}\n{xml}");
        }
        let (total, _) = crate::junit::check_counts(&xml);
        let thresholds: usize = report
            .scenarios
            .iter()
            .map(|s| s.metrics.thresholds.len())
            .sum();
        assert_eq!(
            total.tests,
            report.scenarios.len()
                + thresholds
                + report.gates.len()
                + usize::from(report.interrupted),
            "an interrupted run is one more testcase, in error"
        );

        check_markdown(&reports::markdown::render(&report), &report);

        let html = reports::html::render(&report);
        let doc = crate::html::check_page(&html);
        let details = scraper::Selector::parse("details.scenario").unwrap();
        assert_eq!(doc.select(&details).count(), report.scenarios.len());

        let json = reports::json::render(&report);
        let back: RunReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report, "iteration {i}");
        crate::schema::assert_valid(&json);

        if i % 25 == 0 {
            let dir = tempfile::tempdir().unwrap();
            let written = reports::write_all(&report, dir.path()).unwrap();
            assert_eq!(written.journals.len(), report.scenarios.len());
            for path in &written.journals {
                assert_eq!(path.parent(), Some(dir.path().join("journal").as_path()));
                assert!(path.is_file(), "{}", path.display());
            }
        }
    }
}
