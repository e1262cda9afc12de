//! What must hold for a case, as `[expect]` tables the runner checks, and the runner's
//! failures read back as violated invariants.
//!
//! A hostile case runs with the invariants as its `[expect]`: `[adversarial.invariants]`
//! as written, plus the built-in ones that the expectation language says directly (a
//! valid output document, the status in a set, at most N LLM calls). The exit code in a
//! set is checked here, from the result. A tolerable case runs with the scenario's own
//! `[expect]`: any failure is a violation.

use reports::{Failure, Outcome, ScenarioResult};

use crate::scenario::{AdversarialSpec, VariantKind};

/// One invariant a case broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// What broke, stable across cases: shrinking keeps a smaller case only if it breaks
    /// the same invariant.
    pub(crate) invariant: String,
    /// What happened, for people.
    pub(crate) message: String,
    pub(crate) detail: String,
}

/// The invariants of a fuzz run.
#[derive(Debug, Clone)]
pub(crate) struct Invariants {
    /// `[adversarial.invariants]` as written.
    user: toml::Table,
    /// The JSONPath of the target's status, from its JSON pointer.
    status_path: String,
    status_in: Option<Vec<String>>,
    exit_code_in: Option<Vec<i32>>,
    max_llm_calls: Option<u32>,
    /// `[adversarial.invariants]` fixes the exit code or status itself.
    user_exit: bool,
}

pub(crate) const NO_CRASH: &str = "the target does not crash";
pub(crate) const NO_HANG: &str = "the target does not hang past the timeout";
pub(crate) const VALID_OUTPUT: &str = "the target prints a valid output document";
pub(crate) const STATUS_IN: &str = "the status is in `status_in`";
pub(crate) const EXIT_CODE_IN: &str = "the exit code is in `exit_code_in`";
pub(crate) const MAX_LLM_CALLS: &str = "at most `max_llm_calls` LLM calls";

impl Invariants {
    pub(crate) fn new(spec: Option<&AdversarialSpec>, status_pointer: &str) -> Invariants {
        let status_path = pointer_to_path(status_pointer);
        match spec {
            None => Invariants {
                user: toml::Table::new(),
                status_path,
                status_in: None,
                exit_code_in: None,
                max_llm_calls: None,
                user_exit: false,
            },
            Some(a) => Invariants {
                user: a.invariants.raw.clone(),
                status_path,
                status_in: a.status_in.clone(),
                exit_code_in: a.exit_code_in.clone(),
                max_llm_calls: a.max_llm_calls,
                user_exit: a.invariants.expect.exit_code.is_some()
                    || a.invariants.expect.status.is_some(),
            },
        }
    }

    /// The `[expect]` of a hostile case: the invariants the expectation language says.
    pub(crate) fn hostile_expect(&self) -> toml::Table {
        let mut expect = self.user.clone();
        let output = expect
            .entry("output")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(output) = output.as_table_mut() {
            output
                .entry("$")
                .or_insert_with(|| predicate("exists", true.into()));
            if let Some(set) = &self.status_in {
                let alternatives: Vec<String> = set.iter().map(|s| regex::escape(s)).collect();
                output.entry(self.status_path.clone()).or_insert_with(|| {
                    predicate(
                        "matches",
                        format!("^(?:{})$", alternatives.join("|")).into(),
                    )
                });
            }
        }
        if let Some(n) = self.max_llm_calls {
            let calls = expect
                .entry("llm_calls")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(calls) = calls.as_table_mut() {
                calls
                    .entry("*")
                    .or_insert_with(|| predicate("le", i64::from(n).into()));
            }
        }
        expect
    }

    /// The `[expect]` the minimal file of a hostile case is written with: as run, plus an
    /// exit code, so that `harness run` fails it for the same invariant and no other
    /// (without one, `[expect]` wants exit code 0).
    pub(crate) fn written_expect(
        &self,
        broken: &Violation,
        result: &ScenarioResult,
    ) -> toml::Table {
        let mut expect = self.hostile_expect();
        if self.user_exit {
            return expect;
        }
        // The code the run exited with when it is allowed; else one that is.
        let allowed = |code: i32| self.exit_code_in.as_ref().is_none_or(|s| s.contains(&code));
        let code = match result.exit_code {
            Some(code) if allowed(code) && broken.invariant != EXIT_CODE_IN => Some(code),
            _ => self.exit_code_in.as_ref().and_then(|s| s.first().copied()),
        };
        if let Some(code) = code {
            expect.insert("exit_code".into(), i64::from(code).into());
        }
        expect
    }

    /// The invariants `result` breaks, most basic first (a crash before a missing
    /// document before a wrong status).
    pub(crate) fn check(&self, kind: VariantKind, result: &ScenarioResult) -> Vec<Violation> {
        if result.outcome == Outcome::Passed && kind == VariantKind::Tolerable {
            return Vec::new();
        }
        let mut found: Vec<(usize, Violation)> = Vec::new();
        for f in &result.failures {
            let (rank, invariant) = match kind {
                VariantKind::Tolerable => (0, format!("the scenario's [expect]: {}", head(f))),
                VariantKind::Hostile => match self.classify(f) {
                    Some(pair) => pair,
                    None => continue,
                },
            };
            found.push((
                rank,
                Violation {
                    invariant,
                    message: f.message.clone(),
                    detail: f.detail.clone(),
                },
            ));
        }
        if kind == VariantKind::Hostile
            && let (Some(set), Some(code)) = (&self.exit_code_in, result.exit_code)
            && !set.contains(&code)
        {
            found.push((
                4,
                Violation {
                    invariant: EXIT_CODE_IN.into(),
                    message: format!("exit code {code}, not one of {set:?}"),
                    detail: result.stderr_tail.clone(),
                },
            ));
        }
        found.sort_by_key(|(rank, _)| *rank);
        found.into_iter().map(|(_, v)| v).collect()
    }

    /// The rank and invariant of a failure of a hostile case; None for failures that are
    /// not about the target (a request no rule matched: the scenario does not script
    /// that path) and for the exit code `[expect]` wants by default.
    fn classify(&self, f: &Failure) -> Option<(usize, String)> {
        let message = f.message.as_str();
        Some(match f.kind.as_str() {
            "crashed" => (0, NO_CRASH.into()),
            "timeout" => (1, NO_HANG.into()),
            "invalid_output" => (2, VALID_OUTPUT.into()),
            "unmatched_request" => return None,
            "expectation"
                if message.starts_with(&format!("output `{}`:", self.status_path))
                    && self.status_in.is_some() =>
            {
                (3, STATUS_IN.into())
            }
            "expectation"
                if message.starts_with("llm calls `*`:")
                    && self.max_llm_calls.is_some()
                    && !self.user_sets(&["llm_calls", "*"]) =>
            {
                (5, MAX_LLM_CALLS.into())
            }
            "expectation" if message.starts_with("exit code:") && !self.user_exit => return None,
            _ => (6, format!("[adversarial.invariants]: {}", head(f))),
        })
    }

    fn user_sets(&self, path: &[&str]) -> bool {
        let mut node = Some(&self.user);
        let (last, parents) = path.split_last().expect("a path");
        for key in parents {
            node = node
                .and_then(|t| t.get(*key))
                .and_then(toml::Value::as_table);
        }
        node.is_some_and(|t| t.contains_key(*last))
    }
}

fn predicate(name: &str, value: toml::Value) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert(name.into(), value);
    toml::Value::Table(t)
}

/// What a failure is about, without the values: `output `$.x``, `exit code`, `status`.
fn head(f: &Failure) -> String {
    match f.message.split_once(": ") {
        Some((head, _)) => head.to_string(),
        None => f.kind.clone(),
    }
}

/// `/a/b` as the JSONPath `$['a']['b']` (`~1` and `~0` unescaped).
fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::from("$");
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        path.push_str(&format!(
            "['{}']",
            token.replace('\\', "\\\\").replace('\'', "\\'")
        ));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: &str, message: &str) -> Failure {
        Failure {
            kind: kind.into(),
            message: message.into(),
            detail: String::new(),
        }
    }

    fn invariants() -> Invariants {
        let spec: AdversarialSpec = toml::from_str(
            r#"
            status_in = ["completed", "failed"]
            exit_code_in = [0, 1]
            max_llm_calls = 6
            invariants.output."$.mode" = "resilient"
            "#,
        )
        .unwrap();
        Invariants::new(Some(&spec), "/status")
    }

    fn result(exit: Option<i32>, failures: Vec<Failure>) -> ScenarioResult {
        ScenarioResult {
            name: "n".into(),
            path: "p".into(),
            suite: ".".into(),
            target: "t".into(),
            tags: Vec::new(),
            seed: 1,
            outcome: if failures.is_empty() {
                Outcome::Passed
            } else {
                Outcome::Failed
            },
            duration: std::time::Duration::ZERO,
            failures,
            journal: Vec::new(),
            exit_code: exit,
            stderr_tail: String::new(),
            output: None,
            metrics: Default::default(),
            failed_attempts: Vec::new(),
        }
    }

    #[test]
    fn the_expect_of_a_hostile_case_says_the_invariants() {
        let expect = invariants().hostile_expect();
        let output = expect["output"].as_table().unwrap();
        assert_eq!(
            output["$['status']"]["matches"].as_str(),
            Some("^(?:completed|failed)$")
        );
        assert_eq!(output["$.mode"].as_str(), Some("resilient"));
        assert_eq!(output["$"]["exists"].as_bool(), Some(true));
        assert_eq!(expect["llm_calls"]["*"]["le"].as_integer(), Some(6));
        // What the runner reads back is an ordinary `[expect]`.
        let text = toml::to_string(&expect).unwrap();
        let spec: crate::scenario::ExpectSpec = toml::from_str(&text).unwrap();
        assert_eq!(spec.output.len(), 3);
        assert_eq!(pointer_to_path("/a~1b/c"), "$['a/b']['c']");
    }

    #[test]
    fn failures_read_back_as_invariants_most_basic_first() {
        let inv = invariants();
        let r = result(
            Some(101),
            vec![
                failure("expectation", "exit code: expected 0, got 101"),
                failure(
                    "invalid_output",
                    "the target printed no JSON document on stdout",
                ),
                failure("unmatched_request", "llm POST matched no rule"),
            ],
        );
        let found: Vec<String> = inv
            .check(VariantKind::Hostile, &r)
            .into_iter()
            .map(|v| v.invariant)
            .collect();
        assert_eq!(found, [VALID_OUTPUT, EXIT_CODE_IN]);

        let r = result(
            Some(1),
            vec![
                failure(
                    "expectation",
                    "output `$.mode`: expected `\"resilient\"`, got `\"fragile\"`",
                ),
                failure(
                    "expectation",
                    "output `$['status']`: expected a string matching /x/, got `\"odd\"`",
                ),
                failure("expectation", "llm calls `*`: expected <= 6, got `9`"),
            ],
        );
        let found: Vec<String> = inv
            .check(VariantKind::Hostile, &r)
            .into_iter()
            .map(|v| v.invariant)
            .collect();
        assert_eq!(
            found,
            [
                STATUS_IN,
                MAX_LLM_CALLS,
                "[adversarial.invariants]: output `$.mode`"
            ]
        );
        assert!(
            inv.check(VariantKind::Hostile, &result(Some(1), vec![]))
                .is_empty()
        );
        let tolerable = inv.check(
            VariantKind::Tolerable,
            &result(
                Some(0),
                vec![failure(
                    "expectation",
                    "output `$.refinement_iterations`: expected `1`, got `0`",
                )],
            ),
        );
        assert_eq!(
            tolerable[0].invariant,
            "the scenario's [expect]: output `$.refinement_iterations`"
        );
    }

    #[test]
    fn the_written_expect_names_an_exit_code() {
        let inv = invariants();
        let broken = Violation {
            invariant: EXIT_CODE_IN.into(),
            message: String::new(),
            detail: String::new(),
        };
        let t = inv.written_expect(&broken, &result(Some(101), vec![]));
        assert_eq!(t["exit_code"].as_integer(), Some(0));
        let broken = Violation {
            invariant: STATUS_IN.into(),
            ..broken
        };
        let t = inv.written_expect(&broken, &result(Some(1), vec![]));
        assert_eq!(t["exit_code"].as_integer(), Some(1));
        // A crash breaks the exit code set too, whatever invariant came first.
        let broken = Violation {
            invariant: VALID_OUTPUT.into(),
            ..broken
        };
        let t = inv.written_expect(&broken, &result(Some(101), vec![]));
        assert_eq!(t["exit_code"].as_integer(), Some(0));
    }
}
