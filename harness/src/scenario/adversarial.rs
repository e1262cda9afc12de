//! `[adversarial]`: what `harness fuzz` varies in a scenario and what must hold for any
//! reply (see the README's "Adversarial replies").
//!
//! ```toml
//! [adversarial]
//! vary = ["llm.planner", "llm.critic", "executor.sandbox"]   # by default every rule
//! cases = 256                        # by default PROPTEST_CASES, else 256
//! status_in = ["completed", "degraded", "failed"]
//! exit_code_in = [0, 1]
//! max_llm_calls = 12
//! stream_input = "stream"            # the input key that asks the target to stream
//!
//! [adversarial.invariants]           # the language of `[expect]`
//! output."$.mode" = "resilient"
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::ExpectSpec;
use super::serde_util::deserialize_opt_duration;

/// The `[adversarial]` table of a scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdversarialSpec {
    /// The replies to vary: `llm` (every LLM rule), `llm.AGENT` (rules with that
    /// `when.agent`), `executor` (every executor rule), `executor.NAME`. Empty: all.
    #[serde(default)]
    pub vary: Vec<VaryTarget>,
    /// `hostile`, `tolerable` or both (the default).
    #[serde(default)]
    pub kinds: Vec<VariantKind>,
    /// Cases to try; `--cases` wins, PROPTEST_CASES is next, then 256.
    pub cases: Option<u32>,
    /// Stop trying new cases after this long (shrinking a found one still finishes).
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    pub time_budget: Option<Duration>,
    /// The statuses a run may end with, whatever the replies (at the target's status
    /// pointer). By default not checked.
    pub status_in: Option<Vec<String>>,
    /// The exit codes a run may end with, whatever the replies. By default not checked.
    pub exit_code_in: Option<Vec<i32>>,
    /// The most LLM requests a run may make, whatever the replies.
    pub max_llm_calls: Option<u32>,
    /// The input key that asks the target to stream its LLM calls (`stream` for refpipe):
    /// enables the streamed variants (the same reply streamed; a stream cut short). By
    /// default they are off.
    pub stream_input: Option<String>,
    /// The longest delay a "slow executor" variant adds; 200ms by default.
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    pub max_delay: Option<Duration>,
    /// Further checks that hold for any reply, in the language of `[expect]`.
    #[serde(default)]
    pub invariants: Invariants,
}

/// Which replies to vary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaryTarget {
    AllLlm,
    Agent(String),
    AllExecutors,
    Executor(String),
}

impl<'de> Deserialize<'de> for VaryTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "llm" => Ok(VaryTarget::AllLlm),
            "executor" => Ok(VaryTarget::AllExecutors),
            other => match (other.strip_prefix("llm."), other.strip_prefix("executor.")) {
                (Some(agent), _) if !agent.is_empty() => Ok(VaryTarget::Agent(agent.into())),
                (_, Some(name)) if !name.is_empty() => Ok(VaryTarget::Executor(name.into())),
                _ => Err(serde::de::Error::custom(format!(
                    "`{other}` is not something to vary (hint: use `llm`, `llm.AGENT`, `executor` or `executor.NAME`)"
                ))),
            },
        }
    }
}

/// Hostile variants are checked against the invariants; tolerable ones (the same meaning,
/// written differently) against the scenario's own `[expect]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantKind {
    Hostile,
    Tolerable,
}

/// `[adversarial.invariants]`: an `[expect]` table, kept as written too, so that a found
/// case can be written back with it.
#[derive(Debug, Default)]
pub struct Invariants {
    pub raw: toml::Table,
    pub expect: ExpectSpec,
}

impl<'de> Deserialize<'de> for Invariants {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = toml::Table::deserialize(d)?;
        let expect: ExpectSpec = toml::Value::Table(raw.clone())
            .try_into()
            .map_err(|e: toml::de::Error| serde::de::Error::custom(e.message().to_string()))?;
        for expr in expect.output.keys() {
            serde_json_path::JsonPath::parse(expr).map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid JSONPath `{expr}`: {e} (hint: JSONPath starts with `$`)"
                ))
            })?;
        }
        Ok(Invariants { raw, expect })
    }
}

impl AdversarialSpec {
    /// Whether variants of this kind are tried.
    pub fn tries(&self, kind: VariantKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        adversarial: AdversarialSpec,
    }

    #[test]
    fn a_table_reads_with_its_invariants() {
        let f: File = toml::from_str(
            r#"
            [adversarial]
            vary = ["llm.planner", "executor"]
            kinds = ["hostile"]
            status_in = ["completed", "failed"]
            exit_code_in = [0, 1]
            max_delay = "50ms"
            [adversarial.invariants]
            output."$.mode" = "resilient"
            "#,
        )
        .unwrap();
        let a = f.adversarial;
        assert_eq!(
            a.vary,
            [
                VaryTarget::Agent("planner".into()),
                VaryTarget::AllExecutors
            ]
        );
        assert!(a.tries(VariantKind::Hostile) && !a.tries(VariantKind::Tolerable));
        assert_eq!(a.max_delay, Some(Duration::from_millis(50)));
        assert_eq!(a.invariants.expect.output.len(), 1);
        assert!(a.invariants.raw.contains_key("output"));
    }

    #[test]
    fn mistakes_are_errors() {
        for (text, wanted) in [
            ("vary = [\"llm.\"]", "is not something to vary"),
            ("kinds = [\"mean\"]", "unknown variant `mean`"),
            ("cases = 3\nbogus = 1", "unknown field `bogus`"),
            ("invariants.output.\"no-dollar\" = 1", "invalid JSONPath"),
            ("invariants.statsu = \"x\"", "unknown field `statsu`"),
        ] {
            let err = toml::from_str::<File>(&format!("[adversarial]\n{text}")).unwrap_err();
            assert!(err.to_string().contains(wanted), "{text}: {err}");
        }
    }
}
