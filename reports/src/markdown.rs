//! `summary.md`: the run for a person, fit for a GitHub job summary
//! (`cat summary.md >> "$GITHUB_STEP_SUMMARY"`).
//!
//! In order:
//! 1. The verdict as a heading: `## ❌ agent-harness: FAIL — critical gate "e2e" failed`,
//!    `## ⚠️ agent-harness: PASS with warnings — gate "p95" failed`,
//!    `## ✅ agent-harness: PASS`.
//! 2. One line: the counts (passed, flaky among them, failed, errors, skipped), wall time,
//!    seed, partition, start time, and whether the run was interrupted.
//! 3. `### Gates`: a table of every gate, failing critical gates first, then failing
//!    non-critical ones, then those that held.
//! 4. `### Failures`: each failed scenario's failures, message and detail in a fenced
//!    block, then its failed thresholds (`**threshold**: <threshold>: observed <value>`,
//!    unless the harness reported one as a failure already), and the target's stderr
//!    tail, folded.
//! 5. `### Flaky`: scenarios that passed only after failed attempts, and how they first failed.
//! 6. `### Slowest`: the five scenarios that took longest.
//! 7. `### Performance`: per scenario with metrics, a table of its latency histograms
//!    (count, p50, p95, p99 and max, in milliseconds with one decimal: end to end, each
//!    agent's LLM calls, time to first token, inter-token gaps, each executor), a line
//!    each for memory, load, and tokens and cost per run, and its thresholds with
//!    ✅/❌ and the observed value.
//! 8. Every scenario in a table, failures first, folded.
//!
//! Every string from the report is cleaned of ANSI escape sequences and control
//! characters, and escaped where it lands: pipes and Markdown punctuation in table cells
//! and headings, a longer fence around details that contain fences.

use std::fmt::Write as _;

use crate::model::{Outcome, RunReport, ScenarioResult, Verdict};
use crate::text;
use crate::view::{self, GateStatus, Status, human, secs};

/// How many scenarios `### Slowest` lists.
const SLOWEST: usize = 5;

/// Renders `report` as Markdown, ending with a newline.
pub fn render(report: &RunReport) -> String {
    let mut md = String::new();
    verdict(&mut md, report);
    gates(&mut md, report);
    failures(&mut md, report);
    flaky(&mut md, report);
    slowest(&mut md, report);
    performance(&mut md, report);
    scenario_table(&mut md, report);
    md
}

fn verdict(md: &mut String, report: &RunReport) {
    let icon = match report.verdict {
        Verdict::Pass => "✅",
        Verdict::Warn => "⚠️",
        Verdict::Fail => "❌",
        Verdict::Interrupted => "⏹️",
    };
    let _ = writeln!(
        md,
        "## {icon} agent-harness: {}\n",
        inline(&view::headline(report))
    );

    let total = report.scenarios.len();
    if total == 0 {
        md.push_str("no scenarios");
    } else {
        let _ = write!(
            md,
            "{total} {}: {}",
            if total == 1 { "scenario" } else { "scenarios" },
            view::counts(report)
        );
    }
    let _ = write!(md, " · {} · seed `{}`", human(report.duration), report.seed);
    if let Some(partition) = &report.partition {
        let _ = write!(md, " · partition {}", code_span(partition));
    }
    let _ = write!(md, " · started {}", inline(&report.started_at));
    if report.interrupted {
        md.push_str(" · ⚠️ **interrupted** before every scenario finished");
    }
    md.push_str("\n\n");
}

fn gates(md: &mut String, report: &RunReport) {
    if report.gates.is_empty() {
        return;
    }
    md.push_str("### Gates\n\n");
    md.push_str("| | Gate | Critical | Metric | Target | Actual | Detail |\n");
    md.push_str("|:-:|---|:-:|---|---|---|---|\n");
    for g in view::gates_in_order(report) {
        let icon = match GateStatus::of(g) {
            GateStatus::Failed => "❌",
            GateStatus::Warning => "⚠️",
            GateStatus::Passed => "✅",
        };
        let _ = writeln!(
            md,
            "| {icon} | {} | {} | {} | {} | {} | {} |",
            inline(&g.name),
            if g.critical { "yes" } else { "no" },
            inline(&g.metric),
            inline(&g.target),
            inline(view::actual(g)),
            inline(&g.detail),
        );
    }
    md.push('\n');
}

fn failures(md: &mut String, report: &RunReport) {
    let failing: Vec<&ScenarioResult> = view::scenarios_in_order(report)
        .into_iter()
        .filter(|s| view::is_failing(s))
        .collect();
    if failing.is_empty() {
        return;
    }
    md.push_str("### Failures\n\n");
    for s in failing {
        let _ = writeln!(
            md,
            "#### {} {} · {}\n",
            Status::of(s).icon(),
            inline(&s.name),
            code_span(&s.path)
        );
        if s.attempts() > 1 {
            let _ = writeln!(
                md,
                "_Failed all {} attempts; the last one is shown._\n",
                s.attempts()
            );
        }
        let all = view::all_failures(s);
        if all.is_empty() {
            md.push_str("_No failure was recorded._\n\n");
        }
        for f in &all {
            let kind = inline(f.kind.trim());
            if kind.is_empty() {
                let _ = writeln!(md, "{}\n", inline(&f.message));
            } else {
                let _ = writeln!(md, "**{kind}**: {}\n", inline(&f.message));
            }
            if !f.detail.is_empty() {
                fenced(md, &f.detail);
            }
        }
        if !s.stderr_tail.is_empty() {
            md.push_str("<details><summary>stderr</summary>\n\n");
            fenced(md, &s.stderr_tail);
            md.push_str("</details>\n\n");
        }
    }
}

fn flaky(md: &mut String, report: &RunReport) {
    let flaky: Vec<&ScenarioResult> = report.scenarios.iter().filter(|s| s.is_flaky()).collect();
    if flaky.is_empty() {
        return;
    }
    md.push_str("### Flaky\n\n");
    md.push_str("| Scenario | Suite | Attempts | First failed with |\n|---|---|--:|---|\n");
    for s in flaky {
        let first = s
            .failed_attempts
            .first()
            .and_then(|a| a.failures.first())
            .map_or(String::new(), |f| inline(&f.message));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {first} |",
            inline(&s.name),
            inline(&s.suite),
            s.attempts()
        );
    }
    md.push('\n');
}

fn slowest(md: &mut String, report: &RunReport) {
    let mut ran: Vec<&ScenarioResult> = report
        .scenarios
        .iter()
        .filter(|s| s.outcome != Outcome::Skipped)
        .collect();
    if ran.is_empty() {
        return;
    }
    // Stable: equal durations keep discovery order.
    ran.sort_by_key(|s| std::cmp::Reverse(s.duration));
    md.push_str("### Slowest\n\n| Scenario | Suite | Time |\n|---|---|--:|\n");
    for s in ran.into_iter().take(SLOWEST) {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            inline(&s.name),
            inline(&s.suite),
            secs(s.duration)
        );
    }
    md.push('\n');
}

/// Per scenario with metrics: latencies, memory, load, tokens and cost, thresholds.
fn performance(md: &mut String, report: &RunReport) {
    let measured: Vec<&ScenarioResult> = view::scenarios_in_order(report)
        .into_iter()
        .filter(|s| !s.metrics.is_empty())
        .collect();
    if measured.is_empty() {
        return;
    }
    md.push_str("### Performance\n\n");
    for s in measured {
        let m = &s.metrics;
        let _ = writeln!(
            md,
            "#### {} {} · {}\n",
            Status::of(s).icon(),
            inline(&s.name),
            code_span(&s.path)
        );
        let latencies = view::latencies(m);
        if !latencies.is_empty() {
            md.push_str(
                "| Latency (ms) | Count | p50 | p95 | p99 | Max |\n|---|--:|--:|--:|--:|--:|\n",
            );
            for l in latencies {
                let h = l.histo;
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    inline(&l.label),
                    h.len(),
                    view::ms(h.percentile_us(50.0)),
                    view::ms(h.percentile_us(95.0)),
                    view::ms(h.percentile_us(99.0)),
                    view::ms(h.max_us())
                );
            }
            md.push('\n');
        }
        let mut lines = Vec::new();
        if let Some(memory) = &m.memory {
            lines.push(format!(
                "**Memory**: {}",
                inline(&view::memory_summary(memory))
            ));
        }
        if let Some(load) = &m.load {
            lines.push(format!("**Load**: {}", inline(&view::load_summary(load))));
        }
        let per_run: Vec<String> = [
            m.tokens_per_run.map(|t| format!("{t:.0} tokens")),
            m.cost_per_run.map(|c| format!("cost {c:.4}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !per_run.is_empty() {
            lines.push(format!("**Per run**: {}", per_run.join(" · ")));
        }
        if !lines.is_empty() {
            // Two spaces: a line break within the paragraph.
            let _ = writeln!(md, "{}\n", lines.join("  \n"));
        }
        if !m.thresholds.is_empty() {
            md.push_str("| | Threshold | Observed |\n|:-:|---|--:|\n");
            for t in &m.thresholds {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    if t.passed { "✅" } else { "❌" },
                    inline(&t.name),
                    inline(&t.observed)
                );
            }
            md.push('\n');
        }
    }
}

/// Every scenario, folded: failed, error, flaky, passed, skipped.
fn scenario_table(md: &mut String, report: &RunReport) {
    if report.scenarios.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "<details><summary>All {} scenarios</summary>\n",
        report.scenarios.len()
    );
    md.push_str("| | Scenario | Suite | Time |\n|:-:|---|---|--:|\n");
    for s in view::scenarios_in_order(report) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            Status::of(s).icon(),
            inline(&s.name),
            inline(&s.suite),
            secs(s.duration)
        );
    }
    md.push_str("\n</details>\n");
}

/// Text safe in a table cell or heading: one line, and every character that Markdown or
/// a GFM table would read as syntax is backslash-escaped. Escaping the backslash too keeps
/// `\|` from turning into an escaped backslash followed by a cell boundary.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for c in text::one_line(s).chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An inline code span holding `s` verbatim: delimited by one more backtick than the
/// longest run inside, padded when `s` starts or ends with a backtick. Not for table
/// cells (a pipe would still split the cell).
fn code_span(s: &str) -> String {
    let s = text::one_line(s);
    let ticks = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.trim().is_empty() {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A fenced code block holding `s`, with a fence longer than any backtick run inside so
/// the content cannot close it.
fn fenced(md: &mut String, s: &str) {
    let body = text::clean(s).replace("\r\n", "\n").replace('\r', "\n");
    let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
    let _ = writeln!(
        md,
        "{fence}text\n{}\n{fence}\n",
        body.trim_end_matches('\n')
    );
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::Failure;
    use crate::test_support::{gate, report, scenario};

    #[test]
    fn a_pass_is_a_green_heading() {
        let md = render(&report(vec![
            scenario("a", Outcome::Passed),
            scenario("b", Outcome::Passed),
        ]));
        assert!(
            md.starts_with("## ✅ agent-harness: PASS\n\n2 scenarios: 2 passed · "),
            "{md}"
        );
        assert!(!md.contains("### Failures"), "{md}");
        assert!(!md.contains("### Gates"), "{md}");
    }

    #[test]
    fn a_fail_without_gates_names_the_counts_and_failures_lead_the_table() {
        let mut r = report(vec![
            scenario("ok", Outcome::Passed),
            scenario("broken", Outcome::Failed),
            scenario("cannot run", Outcome::Error),
        ]);
        r.verdict = Verdict::Fail;
        let md = render(&r);
        assert!(
            md.starts_with("## ❌ agent-harness: FAIL — 1 failed, 1 error\n"),
            "{md}"
        );
        let broken = md.find("| ❌ | broken |").unwrap();
        let ok = md.find("| ✅ | ok |").unwrap();
        assert!(broken < ok, "{md}");
    }

    #[test]
    fn a_warning_names_the_gate_and_gates_come_failing_first() {
        let mut r = report(vec![scenario("a", Outcome::Passed)]);
        r.verdict = Verdict::Warn;
        r.gates = vec![gate("held", true, true), gate("p95 | slow", false, false)];
        let md = render(&r);
        assert!(
            md.starts_with(
                "## ⚠️ agent-harness: PASS with warnings — gate \"p95 \\| slow\" failed\n"
            ),
            "{md}"
        );
        let warned = md.find("| ⚠️ | p95 \\| slow | no |").unwrap();
        let held = md.find("| ✅ | held | yes |").unwrap();
        assert!(warned < held, "{md}");
    }

    #[test]
    fn empty_and_interrupted_runs_say_so() {
        let md = render(&report(Vec::new()));
        assert!(
            md.starts_with("## ✅ agent-harness: PASS\n\nno scenarios · "),
            "{md}"
        );
        let mut r = report(vec![scenario("a", Outcome::Skipped)]);
        r.interrupted = true;
        r.partition = Some("hash:2/3".into());
        let md = render(&r);
        assert!(md.contains("1 scenario: 1 skipped · "), "{md}");
        assert!(md.contains(" · partition `hash:2/3` · "), "{md}");
        assert!(md.contains("**interrupted**"), "{md}");
    }

    #[test]
    fn flaky_scenarios_are_listed_with_attempts() {
        let mut s = scenario("wobbly", Outcome::Passed);
        s.failed_attempts = vec![crate::model::FailedAttempt {
            duration: Duration::from_millis(10),
            failures: vec![Failure {
                kind: "timeout".into(),
                message: "no answer in 1s".into(),
                detail: String::new(),
            }],
        }];
        let md = render(&report(vec![s]));
        assert!(
            md.contains("### Flaky\n\n| Scenario | Suite | Attempts | First failed with |\n|---|---|--:|---|\n| wobbly | suite | 2 | no answer in 1s |\n"),
            "{md}"
        );
        assert!(md.contains("1 scenario: 1 passed (1 flaky)"), "{md}");
    }

    #[test]
    fn inline_escapes_pipes_and_backslashes() {
        assert_eq!(inline(r"a|b\|c"), r"a\|b\\\|c");
        assert_eq!(inline("<b>*x*</b>\nnext"), r"\<b\>\*x\*\</b\> next");
    }

    #[test]
    fn code_span_outlasts_backticks_inside() {
        assert_eq!(code_span("a/b.toml"), "`a/b.toml`");
        assert_eq!(code_span("a``b"), "```a``b```");
        assert_eq!(code_span("`x"), "`` `x ``");
    }

    #[test]
    fn fence_outlasts_fences_inside() {
        let mut md = String::new();
        fenced(&mut md, "before\n````\ninside\n````\n");
        assert_eq!(md, "`````text\nbefore\n````\ninside\n````\n`````\n\n");
    }

    #[test]
    fn slowest_lists_five_longest_that_ran() {
        let scenarios = (0..8u64)
            .map(|i| {
                let mut s = scenario(&format!("s{i}"), Outcome::Passed);
                s.duration = Duration::from_millis(i * 100);
                s
            })
            .chain([{
                let mut s = scenario("skipped", Outcome::Skipped);
                s.duration = Duration::from_secs(100);
                s
            }])
            .collect();
        let md = render(&report(scenarios));
        let slowest = &md[md.find("### Slowest").unwrap()..];
        let rows: Vec<&str> = slowest.lines().filter(|l| l.starts_with("| s")).collect();
        assert_eq!(
            rows,
            [
                "| s7 | suite | 0.700s |",
                "| s6 | suite | 0.600s |",
                "| s5 | suite | 0.500s |",
                "| s4 | suite | 0.400s |",
                "| s3 | suite | 0.300s |",
            ]
        );
    }

    #[test]
    fn failure_without_detail_has_no_block() {
        let mut s = scenario("f", Outcome::Failed);
        s.failures.push(Failure {
            kind: "timeout".into(),
            message: "no answer in 10s".into(),
            detail: String::new(),
        });
        let md = render(&report(vec![s]));
        assert!(md.contains("**timeout**: no answer in 10s\n\n"), "{md}");
        assert!(!md.contains("```"), "{md}");
    }
}
