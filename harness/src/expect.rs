//! Checking a run against the scenario's `[expect]`: each expectation that does not hold,
//! and each request no stub rule matched, becomes one `Failure` that says what was
//! expected and what happened.

use std::collections::BTreeMap;

use reports::Failure;
use serde_json::Value;

use crate::scenario::{AgentOrder, Predicate, Scenario};
use crate::steady::Phase;
use crate::target::{Exit, RunOutcome, TargetSpec};

/// What a run produced, as the expectations see it.
pub struct Observed<'a> {
    pub outcome: &'a RunOutcome,
    pub output: Option<&'a Value>,
    pub journal: &'a [mocks::Exchange],
    /// One run of a `[load]`: only what one run shows is checked (exit, status, output,
    /// stderr, duration); counts, order and gaps belong to the whole scenario.
    pub per_run: bool,
}

pub fn evaluate(scenario: &Scenario, target: &TargetSpec, seen: &Observed) -> Vec<Failure> {
    let mut failures = Vec::new();
    let expect = &scenario.spec.expect;
    let before: Vec<_> = seen
        .outcome
        .probes
        .iter()
        .filter(|p| p.phase == Phase::Before)
        .collect();
    if !before.is_empty() {
        // The system was unhealthy before any fault: nothing after this is the faults' doing.
        return before
            .iter()
            .map(|p| Failure {
                kind: "steady_state".into(),
                message: format!(
                    "steady state `{}` did not hold before the faults, so the scenario did not run",
                    p.name
                ),
                detail: p.why.clone(),
            })
            .collect();
    }
    for p in seen
        .outcome
        .probes
        .iter()
        .filter(|p| p.phase == Phase::After)
    {
        failures.push(Failure {
            kind: "steady_state".into(),
            message: format!("steady state `{}` did not recover after the faults", p.name),
            detail: p.why.clone(),
        });
    }
    let stderr_note = stderr_detail(&seen.outcome.stderr_tail);
    if !seen.outcome.outlived.is_empty() {
        failures.push(Failure {
            kind: "leaked".into(),
            message: format!(
                "{} process(es) the target started outlived it and were killed: {} (hint: a target ends its children before it exits; daemonised ones are found by the harness's `AGENT_HARNESS_TAG`)",
                seen.outcome.outlived.len(),
                seen.outcome.outlived.join(", ")
            ),
            detail: String::new(),
        });
    }

    match seen.outcome.exit {
        Exit::TimedOut => failures.push(Failure {
            kind: "timeout".into(),
            message: format!(
                "the target did not finish within the scenario's timeout of {} and was killed",
                humantime::format_duration(
                    scenario
                        .spec
                        .timeout
                        .unwrap_or(crate::runner::DEFAULT_TIMEOUT)
                )
            ),
            detail: lines(&[requests_so_far(seen.journal), stderr_note.clone()]),
        }),
        Exit::Signal(sig) if expect.signal.as_deref() == Some(signal_name(sig)) => {}
        Exit::Signal(sig) => failures.push(Failure {
            kind: "crashed".into(),
            message: format!(
                "the target crashed: killed by signal {sig} ({})",
                signal_name(sig)
            ),
            detail: stderr_note.clone(),
        }),
        Exit::Code(code) if expect.signal.is_some() => failures.push(Failure {
            kind: "expectation".into(),
            message: format!(
                "expected the target to die of {}, but it exited with code {code}",
                expect.signal.as_deref().unwrap_or_default()
            ),
            detail: stderr_note.clone(),
        }),
        Exit::Code(code) => {
            let wanted = expect.exit_code.or(if expect.status.is_none() {
                Some(0)
            } else {
                None
            });
            if let Some(want) = wanted.filter(|w| *w != code) {
                let why = if expect.exit_code.is_none() {
                    " (no `expect.status` or `expect.exit_code` given, so the run must exit 0)"
                } else {
                    ""
                };
                failures.push(Failure {
                    kind: "expectation".into(),
                    message: format!("exit code: expected {want}, got {code}{why}"),
                    detail: lines(&[output_error(seen.output), stderr_note.clone()]),
                });
            }
        }
    }
    if matches!(seen.outcome.exit, Exit::TimedOut | Exit::Signal(_)) {
        // Nothing the target printed after being killed is worth judging.
        check_duration(expect.duration.as_ref(), seen, &mut failures);
        if !seen.per_run {
            check_gaps(&expect.min_gap, seen.journal, &mut failures);
            failures.extend(unmatched(seen.journal));
        }
        return failures;
    }

    let needs_output = expect.status.is_some() || !scenario.output_paths.is_empty();
    if needs_output && seen.output.is_none() {
        let stdout = String::from_utf8_lossy(&seen.outcome.stdout);
        let excerpt: String = stdout.chars().take(400).collect();
        failures.push(Failure {
            kind: "invalid_output".into(),
            message: if seen.outcome.stdout_truncated {
                "the target's output is too large to read as one JSON document".into()
            } else if stdout.trim().is_empty() {
                "the target printed no JSON document on stdout".into()
            } else {
                "the target's stdout is not one JSON document".into()
            },
            detail: lines(&[format!("stdout began: {excerpt:?}"), stderr_note.clone()]),
        });
    }

    let steps = !scenario.spec.step.is_empty();
    if steps && let Some(failed) = seen.output.and_then(|o| o.get(crate::target::STEP_FAILED)) {
        failures.push(step_failure(failed, seen.output));
    }
    if let (Some(want), Some(output)) = (&expect.status, seen.output) {
        // With `[[step]]`s the status is in the last response (the document's `result`).
        let status_doc = if steps {
            output.get("result").unwrap_or(&Value::Null)
        } else {
            output
        };
        let got = status_doc.pointer(&target.status);
        if got.and_then(Value::as_str) != Some(want.as_str()) {
            let shown = got.map_or_else(
                || format!("nothing at `{}`", target.status),
                |v| v.to_string(),
            );
            failures.push(Failure {
                kind: "expectation".into(),
                message: format!("status: expected \"{want}\", got {shown}"),
                detail: lines(&[output_error(seen.output), stderr_note.clone()]),
            });
        }
    }

    if let Some(output) = seen.output {
        for (expr, path, pred) in &scenario.output_paths {
            let found = path.query(output).all();
            let actual = match found.as_slice() {
                [] => None,
                [one] => Some((*one).clone()),
                many => Some(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
            };
            if let Err(why) = pred.eval(actual.as_ref()) {
                failures.push(Failure {
                    kind: "expectation".into(),
                    message: format!("output `{expr}`: {why}"),
                    detail: String::new(),
                });
            }
        }
    }

    check_duration(expect.duration.as_ref(), seen, &mut failures);

    if let Some(pred) = &expect.stderr {
        let text = Value::String(seen.outcome.stderr_tail.clone());
        if let Err(why) = pred.eval(Some(&text)) {
            failures.push(Failure {
                kind: "expectation".into(),
                message: format!("stderr: {why}"),
                detail: String::new(),
            });
        }
    }

    if !seen.per_run {
        journal_checks(expect, seen.journal, &mut failures);
    }
    failures
}

/// What only the whole scenario's journal shows: calls per agent and executor, the order
/// of agents, gaps, unmatched requests.
fn journal_checks(
    expect: &crate::scenario::ExpectSpec,
    journal: &[mocks::Exchange],
    failures: &mut Vec<Failure>,
) {
    let llm: Vec<&mocks::Exchange> = journal
        .iter()
        .filter(|e| e.source.starts_with("llm"))
        .collect();
    // Counted per agent (`planner`), per provider (`*@fallback`) and per agent on a
    // provider (`planner@primary`); the provider is the stub the request reached.
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    for e in &llm {
        let agent = e.agent.clone().unwrap_or_else(|| "(unrecognised)".into());
        let provider = provider_of(&e.source);
        *per_agent.entry(format!("*@{provider}")).or_default() += 1;
        *per_agent.entry(format!("{agent}@{provider}")).or_default() += 1;
        *per_agent.entry(agent).or_default() += 1;
    }
    check_counts(
        "llm calls",
        &expect.llm_calls,
        llm.len(),
        &per_agent,
        failures,
    );

    let mut per_executor: BTreeMap<String, usize> = BTreeMap::new();
    for e in journal.iter() {
        if let Some(name) = e.source.strip_prefix("executor.") {
            *per_executor.entry(name.to_string()).or_default() += 1;
        }
    }
    let total = per_executor.values().sum();
    check_counts(
        "executor calls",
        &expect.executor_calls,
        total,
        &per_executor,
        failures,
    );

    if let Some(order) = &expect.agent_order {
        let actual: Vec<String> = llm.iter().filter_map(|e| e.agent.clone()).collect();
        let (ok, how) = match order {
            AgentOrder::Exact(want) => (&actual == want, "exactly"),
            AgentOrder::Subsequence(want) => (
                is_subsequence(want, &actual),
                "in this order (others may come between)",
            ),
        };
        if !ok {
            let want = match order {
                AgentOrder::Exact(w) | AgentOrder::Subsequence(w) => w,
            };
            failures.push(Failure {
                kind: "expectation".into(),
                message: format!(
                    "agent order: expected {how} [{}], got [{}]",
                    want.join(", "),
                    actual.join(", ")
                ),
                detail: String::new(),
            });
        }
    }

    check_gaps(&expect.min_gap, journal, failures);
    failures.extend(unmatched(journal));
}

fn check_duration(
    bound: Option<&crate::scenario::Bound>,
    seen: &Observed,
    failures: &mut Vec<Failure>,
) {
    if let Some(bound) = bound
        && !bound.holds(seen.outcome.duration)
    {
        failures.push(Failure {
            kind: "expectation".into(),
            message: format!(
                "duration: expected {bound}, took {:.3}s",
                seen.outcome.duration.as_secs_f64()
            ),
            detail: String::new(),
        });
    }
}

/// The smallest gap between consecutive LLM requests of each named agent.
fn check_gaps(
    bounds: &BTreeMap<String, crate::scenario::Bound>,
    journal: &[mocks::Exchange],
    failures: &mut Vec<Failure>,
) {
    for (agent, bound) in bounds {
        let times: Vec<std::time::Instant> = journal
            .iter()
            .filter(|e| {
                e.source.starts_with("llm") && (agent == "*" || e.agent.as_deref() == Some(agent))
            })
            .map(|e| e.received)
            .collect();
        let gaps: Vec<std::time::Duration> = times
            .windows(2)
            .map(|w| w[1].saturating_duration_since(w[0]))
            .collect();
        let shown: Vec<String> = gaps
            .iter()
            .map(|g| format!("{:.3}s", g.as_secs_f64()))
            .collect();
        match gaps.iter().min() {
            None => failures.push(Failure {
                kind: "expectation".into(),
                message: format!(
                    "min gap `{agent}`: expected {bound}, but there were {} request(s), so no gap",
                    times.len()
                ),
                detail: String::new(),
            }),
            Some(min) if !bound.holds(*min) => failures.push(Failure {
                kind: "expectation".into(),
                message: format!(
                    "min gap `{agent}`: expected {bound}, the smallest was {:.3}s",
                    min.as_secs_f64()
                ),
                detail: format!("gaps between consecutive requests: {}", shown.join(", ")),
            }),
            Some(_) => {}
        }
    }
}

fn check_counts(
    what: &str,
    expected: &BTreeMap<String, Predicate>,
    total: usize,
    actual: &BTreeMap<String, usize>,
    failures: &mut Vec<Failure>,
) {
    for (name, pred) in expected {
        let n = if name == "*" {
            total
        } else {
            actual.get(name).copied().unwrap_or(0)
        };
        if let Err(why) = pred.eval(Some(&Value::from(n))) {
            let seen: Vec<String> = actual.iter().map(|(k, v)| format!("{k}={v}")).collect();
            failures.push(Failure {
                kind: "expectation".into(),
                message: format!("{what} `{name}`: {why}"),
                detail: format!(
                    "all {what}: {}",
                    if seen.is_empty() {
                        "none".into()
                    } else {
                        seen.join(", ")
                    }
                ),
            });
        }
    }
}

/// A step that did not hold: which, why, and the steps before it.
fn step_failure(failed: &Value, output: Option<&Value>) -> Failure {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let mut detail = String::from("steps run:");
    for s in output
        .and_then(|o| o.get("steps"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        detail.push_str(&format!(
            "\n  {}: {} → {}{}",
            text(&s["name"]),
            text(&s["request"]),
            s["status"],
            match s["polls"].as_u64() {
                Some(n) if n > 1 => format!(" (after {n} polls)"),
                _ => String::new(),
            }
        ));
    }
    Failure {
        kind: "step".into(),
        message: format!(
            "step `{}` failed: {}",
            text(&failed["step"]),
            text(&failed["why"])
        ),
        detail,
    }
}

/// The provider of an LLM stub's journal source: `llm` is `primary`, `llm.NAME` is `NAME`.
fn provider_of(source: &str) -> &str {
    source.strip_prefix("llm.").unwrap_or("primary")
}

fn is_subsequence(want: &[String], actual: &[String]) -> bool {
    let mut it = actual.iter();
    want.iter().all(|w| it.any(|a| a == w))
}

/// One failure per request that no rule matched: the request and the closest rule.
pub(crate) fn unmatched(journal: &[mocks::Exchange]) -> Vec<Failure> {
    journal
        .iter()
        .filter_map(|e| {
            let u = e.unmatched.as_ref()?;
            let closest = u
                .closest
                .clone()
                .unwrap_or_else(|| "no rules are defined for this stub".into());
            Some(Failure {
                kind: "unmatched_request".into(),
                message: format!(
                    "{} {} {}{} matched no rule",
                    e.source,
                    e.method,
                    e.path,
                    e.agent
                        .as_ref()
                        .map(|a| format!(" (agent `{a}`)"))
                        .unwrap_or_default()
                ),
                detail: format!("request:\n{}\nclosest rule: {closest}", indent(&u.request)),
            })
        })
        .collect()
}

fn requests_so_far(journal: &[mocks::Exchange]) -> String {
    match journal.last() {
        None => "no stub received a request".into(),
        Some(last) => format!(
            "{} requests reached the stubs; the last, at +{:.3}s: {} {}",
            journal.len(),
            last.at.as_secs_f64(),
            last.source,
            last.summary
        ),
    }
}

fn output_error(output: Option<&Value>) -> String {
    match output.and_then(|o| o.get("error")).filter(|e| !e.is_null()) {
        Some(err) => format!("the target reported: {err}"),
        None => String::new(),
    }
}

fn stderr_detail(tail: &str) -> String {
    if tail.trim().is_empty() {
        "(stderr was empty)".into()
    } else {
        format!("stderr (last lines):\n{}", indent(tail))
    }
}

/// The non-empty parts, one after the other.
fn lines(parts: &[String]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("\n")
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsequences_skip_but_keep_order() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(is_subsequence(
            &v(&["planner", "critic"]),
            &v(&["planner", "coder", "critic"])
        ));
        assert!(!is_subsequence(
            &v(&["critic", "planner"]),
            &v(&["planner", "coder", "critic"])
        ));
        assert!(is_subsequence(&v(&[]), &v(&["planner"])));
    }
}
