//! Stateful rate limits at the stub, as providers enforce them: requests and (estimated
//! prompt) tokens per fixed window, windows timed from the stub's start. A call over a
//! limit is not counted and gets a 429 in its API's dialect, with `retry-after` (whole
//! seconds, rounded up) and `retry-after-ms` until the window ends; every call a limit
//! covers carries OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.

use std::sync::Mutex;
use std::time::Duration;

/// A quota of requests and tokens per window, e.g. 60 requests and 40 000 tokens a
/// minute, on one provider or on every one (each counted on its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// The provider it limits; by default every provider, each with its own count.
    pub provider: Option<String>,
    /// Requests per window; by default unlimited.
    pub requests: Option<u64>,
    /// Estimated prompt tokens per window (see the crate docs); by default unlimited.
    pub tokens: Option<u64>,
    /// The window; must not be zero.
    pub per: Duration,
}

/// What a limit decided for one call.
pub(crate) struct Verdict {
    /// `None`: allowed; `Some(wait)`: over the limit until the window ends in `wait`.
    pub(crate) over: Option<Over>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

pub(crate) struct Over {
    pub(crate) wait: Duration,
    pub(crate) message: String,
    /// `requests` or `tokens`.
    pub(crate) what: &'static str,
}

#[derive(Default)]
struct Window {
    index: u64,
    requests: u64,
    tokens: u64,
}

/// The counts of every limit, per provider.
pub(crate) struct Quotas {
    limits: Vec<RateLimit>,
    windows: Mutex<Vec<(usize, String, Window)>>,
}

impl Quotas {
    pub(crate) fn new(limits: Vec<RateLimit>) -> Self {
        Self {
            limits,
            windows: Mutex::new(Vec::new()),
        }
    }

    /// Counts a call of `tokens` to `provider` at `at` (since the stub started) against
    /// every limit that covers it; `None` when none does. `tokens` is only asked for when
    /// there are limits.
    pub(crate) fn check(
        &self,
        provider: &str,
        tokens: impl FnOnce() -> u64,
        at: Duration,
    ) -> Option<Verdict> {
        if self.limits.is_empty() {
            return None;
        }
        let tokens = tokens();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut verdict: Option<Verdict> = None;
        for (index, limit) in self.limits.iter().enumerate() {
            if limit
                .provider
                .as_deref()
                .is_some_and(|only| only != provider)
            {
                continue;
            }
            let per = limit.per.as_nanos().max(1);
            let window_index = u64::try_from(at.as_nanos() / per).unwrap_or(u64::MAX);
            let reset =
                Duration::from_nanos(u64::try_from(per - at.as_nanos() % per).unwrap_or(u64::MAX));
            let position = match windows
                .iter()
                .position(|(i, p, _)| *i == index && p == provider)
            {
                Some(position) => position,
                None => {
                    windows.push((index, provider.to_string(), Window::default()));
                    windows.len() - 1
                }
            };
            let window = &mut windows[position].2;
            if window.index != window_index {
                *window = Window {
                    index: window_index,
                    ..Window::default()
                };
            }
            let over_requests = limit.requests.is_some_and(|max| window.requests >= max);
            let over_tokens = limit.tokens.is_some_and(|max| window.tokens + tokens > max);
            let over = if over_requests || over_tokens {
                let (what, max, used, asked) = if over_requests {
                    ("requests", limit.requests.unwrap_or(0), window.requests, 1)
                } else {
                    ("tokens", limit.tokens.unwrap_or(0), window.tokens, tokens)
                };
                Some(Over {
                    wait: reset,
                    what,
                    message: format!(
                        "Rate limit reached for {what} (agent-harness quota of {max} per {}): Limit {max}, Used {used}, Requested {asked}. Please try again in {}.",
                        go_duration(limit.per),
                        go_duration(reset)
                    ),
                })
            } else {
                window.requests += 1;
                window.tokens += tokens;
                None
            };
            let mut headers = Vec::new();
            if let Some(max) = limit.requests {
                headers.push(("x-ratelimit-limit-requests", max.to_string()));
                headers.push((
                    "x-ratelimit-remaining-requests",
                    max.saturating_sub(window.requests).to_string(),
                ));
                headers.push(("x-ratelimit-reset-requests", go_duration(reset)));
            }
            if let Some(max) = limit.tokens {
                headers.push(("x-ratelimit-limit-tokens", max.to_string()));
                headers.push((
                    "x-ratelimit-remaining-tokens",
                    max.saturating_sub(window.tokens).to_string(),
                ));
                headers.push(("x-ratelimit-reset-tokens", go_duration(reset)));
            }
            // the first limit over wins; else the first that covers the call
            match &mut verdict {
                None => verdict = Some(Verdict { over, headers }),
                Some(first) if first.over.is_none() && over.is_some() => {
                    *first = Verdict { over, headers };
                }
                Some(_) => {}
            }
        }
        verdict
    }
}

/// Whole milliseconds, rounded up (as `retry-after-ms` carries a wait).
pub(crate) fn ceil_ms(d: Duration) -> u128 {
    d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000))
}

/// A duration as OpenAI's reset headers write it: `20ms`, `1.5s`, `6m0s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = ceil_ms(d);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (minutes, ms) = (ms / 60_000, ms % 60_000);
    let seconds = format!("{}.{:03}", ms / 1000, ms % 1000);
    let seconds = seconds.trim_end_matches('0').trim_end_matches('.');
    if minutes == 0 {
        format!("{seconds}s")
    } else {
        format!("{minutes}m{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: Option<u64>, tokens: Option<u64>) -> RateLimit {
        RateLimit {
            provider: None,
            requests,
            tokens,
            per: Duration::from_secs(1),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn requests_over_the_limit_wait_for_the_window_to_end() {
        let quotas = Quotas::new(vec![limit(Some(2), None)]);
        for at in [0, 100] {
            let verdict = quotas.check("primary", || 5, ms(at)).unwrap();
            assert!(verdict.over.is_none());
        }
        let verdict = quotas.check("primary", || 5, ms(250)).unwrap();
        let over = verdict.over.unwrap();
        assert_eq!((over.what, over.wait), ("requests", ms(750)));
        assert!(
            verdict
                .headers
                .contains(&("x-ratelimit-remaining-requests", "0".into()))
        );
        assert!(
            verdict
                .headers
                .contains(&("x-ratelimit-reset-requests", "750ms".into()))
        );
        // a rejected call is not counted; the next window starts afresh
        assert!(
            quotas
                .check("primary", || 5, ms(1000))
                .unwrap()
                .over
                .is_none()
        );
        // each provider is counted on its own
        assert!(
            quotas
                .check("fallback", || 5, ms(260))
                .unwrap()
                .over
                .is_none()
        );
    }

    #[test]
    fn tokens_count_what_the_call_asks() {
        let quotas = Quotas::new(vec![limit(None, Some(100))]);
        assert!(quotas.check("p", || 60, ms(0)).unwrap().over.is_none());
        let over = quotas.check("p", || 60, ms(1)).unwrap().over.unwrap();
        assert_eq!(over.what, "tokens");
        assert!(
            over.message.contains("Limit 100, Used 60, Requested 60"),
            "{}",
            over.message
        );
        assert!(quotas.check("p", || 40, ms(2)).unwrap().over.is_none());
        assert!(Quotas::new(Vec::new()).check("p", || 1, ms(0)).is_none());
    }

    #[test]
    fn durations_as_openai_writes_them() {
        assert_eq!(go_duration(ms(20)), "20ms");
        assert_eq!(go_duration(Duration::from_micros(1)), "1ms");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(2000)), "2s");
        assert_eq!(go_duration(Duration::from_secs(360)), "6m0s");
    }
}
