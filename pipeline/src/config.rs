//! Configuration, read once from the environment at start.
//!
//! [`Config::from_lookup`] takes the variable source as a function, so tests need not
//! touch the process environment. A variable set to the empty string counts as unset.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::errors::ConfigError;
use crate::retry::RetryPolicy;

/// One OpenAI-compatible provider.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProviderConfig {
    /// The base URL without a trailing `/`; requests go to `{base_url}/chat/completions`.
    pub(crate) base_url: String,
    pub(crate) api_key: String,
}

/// USD per 1000 tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prices {
    pub(crate) input_per_1k: f64,
    pub(crate) output_per_1k: f64,
}

/// Whether refpipe's resilience is on; `mode` in the result document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// The product: retries, circuit breakers, the fallback provider, the re-ask of a
    /// malformed reply, degradation without the critic, failed executions fed back to the
    /// coder, and (`serve` with a state directory) runs that survive a restart.
    Resilient,
    /// All of that switched off (`REFPIPE_FRAGILE=1` or `--fragile`): the first failure is
    /// final, and the result's `error.message` ends in `(fragile mode: …)`, naming what was
    /// switched off. A chaos suite runs its scenarios against both modes to show that they
    /// bite: each must pass against `resilient` and fail against `fragile`.
    Fragile,
}

impl Mode {
    /// The mode asked for by `--fragile` (`flag`) or `REFPIPE_FRAGILE`, read leniently: for
    /// the document of a run refused before its configuration could be read.
    pub(crate) fn requested(flag: bool) -> Self {
        let env = Env(&|name: &str| std::env::var(name).ok());
        if flag || matches!(env.flag("REFPIPE_FRAGILE"), Ok(Some(true))) {
            Self::Fragile
        } else {
            Self::Resilient
        }
    }
}

/// Everything refpipe reads from the environment.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) primary: ProviderConfig,
    pub(crate) fallback: Option<ProviderConfig>,
    pub(crate) model: String,
    /// The executor's base URL without a trailing `/`.
    pub(crate) executor_url: String,
    pub(crate) llm_timeout: Duration,
    pub(crate) executor_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker_threshold: u32,
    pub(crate) breaker_cooldown: Duration,
    pub(crate) max_prompt_chars: usize,
    pub(crate) prices: Prices,
    /// Seeds retry jitter; from the OS when unset.
    pub(crate) seed: Option<u64>,
    /// When set, `serve` requires `Authorization: Bearer <token>` on `/runs`.
    pub(crate) api_token: Option<String>,
    /// `REFPIPE_FRAGILE`; `--fragile` overrides it.
    pub(crate) mode: Mode,
    /// `REFPIPE_STATE_DIR`: where `serve` persists its runs; `--state-dir` overrides it.
    pub(crate) state_dir: Option<PathBuf>,
    /// Benchmark/test knobs; production runs leave them unset.
    pub(crate) knobs: Knobs,
}

/// Benchmark and test knobs: they make refpipe slower or leakier by a known amount, so
/// that a harness can show that its baseline comparison catches a real slowdown and its
/// memory sampling a real leak. Production runs leave them unset (both default to 0, off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Knobs {
    /// `REFPIPE_WORK_DELAY`: time spent after each agent step (planner, coder, executor
    /// call, critic), modelling the pipeline's own processing; `run` and `serve`.
    pub(crate) work_delay: Duration,
    /// `REFPIPE_LEAK_BYTES_PER_RUN`: bytes each finished run retains for the rest of the
    /// process's life, pages touched; `serve` only (`run` does one run and exits).
    pub(crate) leak_bytes_per_run: usize,
    /// `REFPIPE_PLANTED_BUG`: a known parsing bug to plant, so that a harness can show
    /// that its adversarial replies find it; `run` and `serve`. None by default.
    pub(crate) planted_bug: Option<PlantedBug>,
}

/// A parsing bug of the kind real pipelines ship, planted on purpose by
/// `REFPIPE_PLANTED_BUG` (a benchmark/test knob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlantedBug {
    /// `unchecked-plan`: before validating the planner's reply, refpipe logs how many
    /// subtasks it has by indexing the parsed JSON without checking: a reply that is JSON
    /// but has no list at `subtasks` (`{}`, `null`, `{"subtasks": 1}`) panics the process,
    /// which then prints no result document.
    UncheckedPlan,
    /// `critic-text-match`: whether the critic asks for refinement is read by looking for
    /// the text `"needs_refinement":true` in its reply, so the same verdict written with a
    /// space or a newline in it is taken as approval: the run completes without the
    /// refinement the critic asked for. Nothing crashes; only the outcome differs.
    CriticTextMatch,
}

impl PlantedBug {
    pub(crate) const NAMES: &'static str = "`unchecked-plan`, `critic-text-match`";

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::UncheckedPlan => "unchecked-plan",
            Self::CriticTextMatch => "critic-text-match",
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Reads variables through `get`, which returns a variable's value if it is set.
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let api_key = env.secret_required("OPENAI_API_KEY", "the primary provider's API key")?;
        let primary = ProviderConfig {
            base_url: env.url_required("OPENAI_BASE_URL", "e.g. `http://127.0.0.1:8080/v1`")?,
            api_key: api_key.clone(),
        };
        let fallback = match env.url("REFPIPE_FALLBACK_BASE_URL")? {
            Some(base_url) => Some(ProviderConfig {
                base_url,
                api_key: env.secret("REFPIPE_FALLBACK_API_KEY")?.unwrap_or(api_key),
            }),
            None => None,
        };
        let retry = RetryPolicy {
            max_retries: env.number("REFPIPE_MAX_RETRIES", 3, 0)?,
            base: env.duration("REFPIPE_BACKOFF_BASE", Duration::from_millis(200), false)?,
            max: env.duration("REFPIPE_BACKOFF_MAX", Duration::from_secs(5), false)?,
        };
        Ok(Self {
            primary,
            fallback,
            model: env
                .get("REFPIPE_MODEL")
                .unwrap_or_else(|| "gpt-4o-mini".to_owned()),
            executor_url: env.url_required("EXECUTOR_URL", "e.g. `http://127.0.0.1:9090`")?,
            llm_timeout: env.duration("REFPIPE_LLM_TIMEOUT", Duration::from_secs(30), true)?,
            executor_timeout: env.duration(
                "REFPIPE_EXECUTOR_TIMEOUT",
                Duration::from_secs(60),
                true,
            )?,
            retry,
            breaker_threshold: env.number("REFPIPE_BREAKER_THRESHOLD", 5, 1)?,
            breaker_cooldown: env.duration(
                "REFPIPE_BREAKER_COOLDOWN",
                Duration::from_secs(30),
                false,
            )?,
            max_prompt_chars: env.number("REFPIPE_MAX_PROMPT_CHARS", 8000, 1)?,
            prices: Prices {
                input_per_1k: env.price("REFPIPE_PRICE_INPUT_PER_1K", 0.00015)?,
                output_per_1k: env.price("REFPIPE_PRICE_OUTPUT_PER_1K", 0.0006)?,
            },
            seed: env.optional_number("REFPIPE_SEED")?,
            api_token: env.secret("REFPIPE_API_TOKEN")?,
            mode: match env.flag("REFPIPE_FRAGILE")? {
                Some(true) => Mode::Fragile,
                Some(false) | None => Mode::Resilient,
            },
            state_dir: env.get("REFPIPE_STATE_DIR").map(PathBuf::from),
            knobs: Knobs {
                work_delay: env.duration("REFPIPE_WORK_DELAY", Duration::ZERO, false)?,
                leak_bytes_per_run: env.byte_count("REFPIPE_LEAK_BYTES_PER_RUN")?,
                planted_bug: env.planted_bug("REFPIPE_PLANTED_BUG")?,
            },
        })
    }
}

/// Typed accessors over a lookup function; each error names the variable and its value.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    fn invalid(var: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            var,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    fn url(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.get(var) else {
            return Ok(None);
        };
        let parsed = reqwest::Url::parse(value.trim())
            .map_err(|e| Self::invalid(var, &value, format!("not a URL ({e})")))?;
        if parsed.scheme() != "http" {
            return Err(Self::invalid(
                var,
                &value,
                format!(
                    "scheme `{}` is not supported (hint: this build speaks plain `http://`; \
                     put a TLS-terminating proxy in front of an `https://` service)",
                    parsed.scheme()
                ),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(Self::invalid(var, &value, "the URL has no host"));
        }
        Ok(Some(value.trim().trim_end_matches('/').to_owned()))
    }

    fn url_required(&self, var: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.url(var)?.ok_or(ConfigError::Missing { var, hint })
    }

    /// A secret: checked to fit in an HTTP header, never echoed in errors.
    fn secret(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.get(var) else {
            return Ok(None);
        };
        if !value.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(Self::invalid(
                var,
                "<redacted>",
                "it contains characters that cannot be sent in an HTTP header",
            ));
        }
        Ok(Some(value))
    }

    fn secret_required(
        &self,
        var: &'static str,
        hint: &'static str,
    ) -> Result<String, ConfigError> {
        self.secret(var)?.ok_or(ConfigError::Missing { var, hint })
    }

    fn duration(
        &self,
        var: &'static str,
        default: Duration,
        positive: bool,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = self.get(var) else {
            return Ok(default);
        };
        let parsed = humantime::parse_duration(value.trim()).map_err(|e| {
            Self::invalid(
                var,
                &value,
                format!("not a duration ({e}; e.g. `30s`, `200ms`)"),
            )
        })?;
        if positive && parsed.is_zero() {
            return Err(Self::invalid(var, &value, "it must be greater than zero"));
        }
        Ok(parsed)
    }

    fn optional_number<T>(&self, var: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.number_with(var, |_| Ok(()))
    }

    fn number<T>(&self, var: &'static str, default: T, min: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
        T::Err: std::fmt::Display,
    {
        let parsed = self.number_with(var, |n: &T| {
            if *n < min {
                Err(format!("it must be at least {min}"))
            } else {
                Ok(())
            }
        })?;
        Ok(parsed.unwrap_or(default))
    }

    /// Parses a non-negative integer and applies `check` to it.
    fn number_with<T>(
        &self,
        var: &'static str,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let Some(value) = self.get(var) else {
            return Ok(None);
        };
        let parsed = value
            .trim()
            .parse::<T>()
            .map_err(|e| Self::invalid(var, &value, format!("not a non-negative integer ({e})")))?;
        check(&parsed).map_err(|reason| Self::invalid(var, &value, reason))?;
        Ok(Some(parsed))
    }

    /// A number of bytes (a non-negative integer, default 0) that one allocation can hold.
    fn byte_count(&self, var: &'static str) -> Result<usize, ConfigError> {
        let parsed = self.number_with(var, |n: &usize| {
            if isize::try_from(*n).is_err() {
                Err(format!("it must be at most {} bytes", isize::MAX))
            } else {
                Ok(())
            }
        })?;
        Ok(parsed.unwrap_or(0))
    }

    /// A planted bug by name; none when unset.
    fn planted_bug(&self, var: &'static str) -> Result<Option<PlantedBug>, ConfigError> {
        let Some(value) = self.get(var) else {
            return Ok(None);
        };
        match value.trim() {
            "unchecked-plan" => Ok(Some(PlantedBug::UncheckedPlan)),
            "critic-text-match" => Ok(Some(PlantedBug::CriticTextMatch)),
            _ => Err(Self::invalid(
                var,
                &value,
                format!("not a planted bug (hint: use one of {})", PlantedBug::NAMES),
            )),
        }
    }

    /// A switch: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`, in any case.
    fn flag(&self, var: &'static str) -> Result<Option<bool>, ConfigError> {
        let Some(value) = self.get(var) else {
            return Ok(None);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(Self::invalid(
                var,
                &value,
                "not a switch (hint: use `1` to turn it on, `0` to turn it off)",
            )),
        }
    }

    fn price(&self, var: &'static str, default: f64) -> Result<f64, ConfigError> {
        let Some(value) = self.get(var) else {
            return Ok(default);
        };
        match value.trim().parse::<f64>() {
            Ok(price) if price.is_finite() && price >= 0.0 => Ok(price),
            _ => Err(Self::invalid(
                var,
                &value,
                "not a non-negative number of USD per 1000 tokens",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("OPENAI_BASE_URL", "http://127.0.0.1:1/v1/"),
            ("OPENAI_API_KEY", "sk-test"),
            ("EXECUTOR_URL", "http://127.0.0.1:2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in vars {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.primary.base_url, "http://127.0.0.1:1/v1");
        assert_eq!(c.primary.api_key, "sk-test");
        assert_eq!(c.fallback, None);
        assert_eq!(c.model, "gpt-4o-mini");
        assert_eq!(c.executor_url, "http://127.0.0.1:2");
        assert_eq!(c.llm_timeout, Duration::from_secs(30));
        assert_eq!(c.executor_timeout, Duration::from_secs(60));
        assert_eq!(c.retry.max_retries, 3);
        assert_eq!(c.retry.base, Duration::from_millis(200));
        assert_eq!(c.retry.max, Duration::from_secs(5));
        assert_eq!(c.breaker_threshold, 5);
        assert_eq!(c.breaker_cooldown, Duration::from_secs(30));
        assert_eq!(c.max_prompt_chars, 8000);
        assert_eq!(c.prices.input_per_1k, 0.00015);
        assert_eq!(c.prices.output_per_1k, 0.0006);
        assert_eq!(c.seed, None);
        assert_eq!(c.api_token, None);
        assert_eq!(c.mode, Mode::Resilient);
        assert_eq!(c.state_dir, None);
        assert_eq!(c.knobs, Knobs::default());
        assert_eq!(c.knobs.work_delay, Duration::ZERO);
        assert_eq!(c.knobs.leak_bytes_per_run, 0);
    }

    #[test]
    fn benchmark_knobs() {
        let c = config(&[
            ("REFPIPE_WORK_DELAY", "250ms"),
            ("REFPIPE_LEAK_BYTES_PER_RUN", "1048576"),
        ])
        .unwrap();
        assert_eq!(c.knobs.work_delay, Duration::from_millis(250));
        assert_eq!(c.knobs.leak_bytes_per_run, 1_048_576);
        let c = config(&[
            ("REFPIPE_WORK_DELAY", "0s"),
            ("REFPIPE_LEAK_BYTES_PER_RUN", " 0 "),
        ])
        .unwrap();
        assert_eq!(c.knobs, Knobs::default());
        let c = config(&[
            ("REFPIPE_WORK_DELAY", "1m 5s"),
            ("REFPIPE_LEAK_BYTES_PER_RUN", ""),
        ])
        .unwrap();
        assert_eq!(c.knobs.work_delay, Duration::from_secs(65));
        assert_eq!(c.knobs.leak_bytes_per_run, 0);
        let cases = [
            ("REFPIPE_WORK_DELAY", "soon", "not a duration"),
            ("REFPIPE_WORK_DELAY", "-1s", "not a duration"),
            ("REFPIPE_WORK_DELAY", "250", "not a duration"),
            (
                "REFPIPE_LEAK_BYTES_PER_RUN",
                "-1",
                "not a non-negative integer",
            ),
            (
                "REFPIPE_LEAK_BYTES_PER_RUN",
                "1MiB",
                "not a non-negative integer",
            ),
            (
                "REFPIPE_LEAK_BYTES_PER_RUN",
                "1.5",
                "not a non-negative integer",
            ),
            (
                "REFPIPE_LEAK_BYTES_PER_RUN",
                "18446744073709551615",
                "it must be at most",
            ),
        ];
        for (var, value, reason) in cases {
            let message = config(&[(var, value)]).unwrap_err().to_string();
            let expected =
                format!("environment variable `{var}` has invalid value `{value}`: {reason}");
            assert!(message.starts_with(&expected), "{message}");
        }
    }

    #[test]
    fn planted_bugs_by_name() {
        assert_eq!(config(&[]).unwrap().knobs.planted_bug, None);
        for bug in [PlantedBug::UncheckedPlan, PlantedBug::CriticTextMatch] {
            let c = config(&[("REFPIPE_PLANTED_BUG", bug.name())]).unwrap();
            assert_eq!(c.knobs.planted_bug, Some(bug));
        }
        let message = config(&[("REFPIPE_PLANTED_BUG", "crash")])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(
                "environment variable `REFPIPE_PLANTED_BUG` has invalid value `crash`: not a planted bug (hint: use one of `unchecked-plan`, `critic-text-match`)"
            ),
            "{message}"
        );
    }

    #[test]
    fn fragile_switch_and_state_dir() {
        for on in ["1", "true", "YES", "on"] {
            assert_eq!(
                config(&[("REFPIPE_FRAGILE", on)]).unwrap().mode,
                Mode::Fragile
            );
        }
        for off in ["0", "false", "No", "off", ""] {
            let mode = config(&[("REFPIPE_FRAGILE", off)]).unwrap().mode;
            assert_eq!(mode, Mode::Resilient, "{off:?}");
        }
        let message = config(&[("REFPIPE_FRAGILE", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(
                "environment variable `REFPIPE_FRAGILE` has invalid value `maybe`: not a switch"
            ),
            "{message}"
        );
        let c = config(&[("REFPIPE_STATE_DIR", "/var/lib/refpipe")]).unwrap();
        assert_eq!(c.state_dir, Some(PathBuf::from("/var/lib/refpipe")));
    }

    #[test]
    fn fallback_key_defaults_to_primary_key() {
        let c = config(&[("REFPIPE_FALLBACK_BASE_URL", "http://127.0.0.1:3/v1")]).unwrap();
        let fallback = c.fallback.unwrap();
        assert_eq!(fallback.base_url, "http://127.0.0.1:3/v1");
        assert_eq!(fallback.api_key, "sk-test");
        let c = config(&[
            ("REFPIPE_FALLBACK_BASE_URL", "http://127.0.0.1:3/v1"),
            ("REFPIPE_FALLBACK_API_KEY", "sk-other"),
        ])
        .unwrap();
        assert_eq!(c.fallback.unwrap().api_key, "sk-other");
    }

    #[test]
    fn missing_required_variable_is_named() {
        let err = config(&[("OPENAI_BASE_URL", "")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("environment variable `OPENAI_BASE_URL` is not set")
        );
    }

    #[test]
    fn invalid_values_name_variable_and_value() {
        let cases = [
            ("REFPIPE_LLM_TIMEOUT", "soon"),
            ("REFPIPE_LLM_TIMEOUT", "0s"),
            ("REFPIPE_MAX_RETRIES", "-1"),
            ("REFPIPE_BREAKER_THRESHOLD", "0"),
            ("REFPIPE_PRICE_INPUT_PER_1K", "cheap"),
            ("REFPIPE_SEED", "x"),
            ("OPENAI_BASE_URL", "not a url"),
            ("EXECUTOR_URL", "https://example.com"),
        ];
        for (var, value) in cases {
            let message = config(&[(var, value)]).unwrap_err().to_string();
            let expected = format!("environment variable `{var}` has invalid value `{value}`");
            assert!(message.starts_with(&expected), "{message}");
        }
    }

    #[test]
    fn secrets_are_not_echoed() {
        let message = config(&[("OPENAI_API_KEY", "sk-\u{7}secret")])
            .unwrap_err()
            .to_string();
        assert!(message.contains("`<redacted>`"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn explicit_values() {
        let c = config(&[
            ("REFPIPE_BACKOFF_BASE", "1ms"),
            ("REFPIPE_MAX_RETRIES", "0"),
            ("REFPIPE_SEED", "42"),
            ("REFPIPE_API_TOKEN", "t0k"),
        ])
        .unwrap();
        assert_eq!(c.retry.base, Duration::from_millis(1));
        assert_eq!(c.retry.max_retries, 0);
        assert_eq!(c.seed, Some(42));
        assert_eq!(c.api_token.as_deref(), Some("t0k"));
    }
}
