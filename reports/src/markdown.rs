//! `summary.md`: the run for a person, fit for a GitHub job summary
//! (`cat summary.md >> "$GITHUB_STEP_SUMMARY"`).
//!
//! In order: the verdict as a heading (`## ✅ agent-harness: 12 passed`,
//! `## ❌ agent-harness: 2 failed, 10 passed`); one line with the scenario count, wall
//! time, seed and whether the run was interrupted; a table of every scenario, failures and
//! errors first; a `### Failures` section with each failure's message and its detail in a
//! fenced block (and the target's stderr tail, folded); and `### Slowest`, the five
//! scenarios that took longest.
//!
//! Every string from the report is cleaned of ANSI escape sequences and control
//! characters, and escaped where it lands: pipes and Markdown punctuation in table cells
//! and headings, a longer fence around details that contain fences.

use std::fmt::Write as _;
use std::time::Duration;

use crate::model::{Outcome, RunReport, ScenarioResult};
use crate::text;

/// How many scenarios `### Slowest` lists.
const SLOWEST: usize = 5;

/// Renders `report` as Markdown, ending with a newline.
pub fn render(report: &RunReport) -> String {
    let mut md = String::new();
    verdict(&mut md, report);
    scenario_table(&mut md, report);
    failures(&mut md, report);
    slowest(&mut md, report);
    md
}

fn verdict(md: &mut String, report: &RunReport) {
    let (passed, failed, errors, skipped) = report.counts();
    let icon = if failed + errors > 0 {
        "❌"
    } else if report.interrupted || report.scenarios.is_empty() {
        "⚠️"
    } else {
        "✅"
    };
    let mut parts = Vec::new();
    for (n, one, many) in [
        (failed, "failed", "failed"),
        (errors, "error", "errors"),
        (passed, "passed", "passed"),
        (skipped, "skipped", "skipped"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    if parts.is_empty() {
        parts.push("no scenarios".to_owned());
    }
    let _ = writeln!(md, "## {icon} agent-harness: {}\n", parts.join(", "));

    let total = report.scenarios.len();
    let _ = write!(
        md,
        "{total} {} in {} · seed `{}` · started {}",
        if total == 1 { "scenario" } else { "scenarios" },
        human(report.duration),
        report.seed,
        inline(&report.started_at),
    );
    if report.interrupted {
        md.push_str(" · ⚠️ **interrupted** before every scenario finished");
    }
    md.push_str("\n\n");
}

fn scenario_table(md: &mut String, report: &RunReport) {
    if report.scenarios.is_empty() {
        return;
    }
    md.push_str("| | Scenario | Suite | Time |\n|:-:|---|---|--:|\n");
    for s in in_table_order(report) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            icon(s.outcome),
            inline(&s.name),
            inline(&s.suite),
            secs(s.duration)
        );
    }
    md.push('\n');
}

fn failures(md: &mut String, report: &RunReport) {
    let failing: Vec<&ScenarioResult> = in_table_order(report)
        .into_iter()
        .filter(|s| matches!(s.outcome, Outcome::Failed | Outcome::Error))
        .collect();
    if failing.is_empty() {
        return;
    }
    md.push_str("### Failures\n\n");
    for s in failing {
        let _ = writeln!(
            md,
            "#### {} {} · {}\n",
            icon(s.outcome),
            inline(&s.name),
            code_span(&s.path)
        );
        if s.failures.is_empty() {
            md.push_str("_No failure was recorded._\n\n");
        }
        for f in &s.failures {
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

/// Failed, then errors, then passed, then skipped; discovery order within each.
fn in_table_order(report: &RunReport) -> Vec<&ScenarioResult> {
    let rank = |o: Outcome| match o {
        Outcome::Failed => 0,
        Outcome::Error => 1,
        Outcome::Passed => 2,
        Outcome::Skipped => 3,
    };
    let mut scenarios: Vec<&ScenarioResult> = report.scenarios.iter().collect();
    scenarios.sort_by_key(|s| rank(s.outcome));
    scenarios
}

fn icon(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "✅",
        Outcome::Failed => "❌",
        Outcome::Error => "💥",
        Outcome::Skipped => "⏭️",
    }
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

/// Seconds with three decimals, as in the JUnit report.
fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// A wall time for people: `3s 500ms`, `2m 5s 12ms`.
fn human(d: Duration) -> String {
    let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    humantime::format_duration(Duration::from_millis(millis)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Failure;
    use crate::test_support::{report, scenario};

    #[test]
    fn all_passed_is_a_green_heading() {
        let md = render(&report(vec![
            scenario("a", Outcome::Passed),
            scenario("b", Outcome::Passed),
        ]));
        assert!(md.starts_with("## ✅ agent-harness: 2 passed\n"), "{md}");
        assert!(!md.contains("### Failures"), "{md}");
    }

    #[test]
    fn failures_lead_the_heading_and_the_table() {
        let md = render(&report(vec![
            scenario("ok", Outcome::Passed),
            scenario("broken", Outcome::Failed),
            scenario("cannot run", Outcome::Error),
        ]));
        assert!(
            md.starts_with("## ❌ agent-harness: 1 failed, 1 error, 1 passed\n"),
            "{md}"
        );
        let broken = md.find("| ❌ | broken |").unwrap();
        let ok = md.find("| ✅ | ok |").unwrap();
        assert!(broken < ok, "{md}");
    }

    #[test]
    fn empty_and_interrupted_runs_warn() {
        let md = render(&report(Vec::new()));
        assert!(
            md.starts_with("## ⚠️ agent-harness: no scenarios\n"),
            "{md}"
        );
        let mut r = report(vec![scenario("a", Outcome::Skipped)]);
        r.interrupted = true;
        let md = render(&r);
        assert!(md.starts_with("## ⚠️ agent-harness: 1 skipped\n"), "{md}");
        assert!(md.contains("**interrupted**"), "{md}");
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
