//! Resilience: exponential backoff with jitter, `Retry-After`, a circuit breaker, and the
//! retry loop that combines them.
//!
//! The arithmetic is pure: [`RetryPolicy::delay`] takes the random source, and
//! [`CircuitBreaker`] takes the current [`Instant`] as an argument, so both are tested
//! without sleeping.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::errors::{AttemptError, CallError, chain};
use crate::progress::{Progress, human};

/// How often and how patiently a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) max_retries: u32,
    /// The backoff before the first retry, doubled before each further one.
    pub(crate) base: Duration,
    /// The cap of the exponential backoff.
    pub(crate) max: Duration,
}

impl RetryPolicy {
    /// `min(max, base × 2^retry)`, where `retry` counts from 0.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        2u32.checked_pow(retry)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The wait before retry number `retry` (from 0): "equal jitter" over
    /// [`backoff`](Self::backoff), i.e. half of it fixed and half uniformly random; if the
    /// server sent `Retry-After`, at least that.
    pub(crate) fn delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let cap = self.backoff(retry);
        let half = cap / 2;
        let jittered = half + rng.random_range(Duration::ZERO..=cap - half);
        retry_after.map_or(jittered, |ra| ra.max(jittered))
    }
}

/// Parses a `Retry-After` value given in seconds, whole or fractional (`"2"`, `"0.5"`).
/// The HTTP-date form is not supported and yields `None`, as does anything unparsable.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    if seconds < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// The random source for jitter, shared by every call of the process.
pub(crate) struct Jitter(Mutex<StdRng>);

impl Jitter {
    /// Seeded with `seed` for reproducible runs, from the OS otherwise.
    pub(crate) fn new(seed: Option<u64>) -> Self {
        Self(Mutex::new(
            seed.map_or_else(StdRng::from_os_rng, StdRng::seed_from_u64),
        ))
    }

    fn delay(&self, policy: &RetryPolicy, retry: u32, retry_after: Option<Duration>) -> Duration {
        policy.delay(retry, retry_after, &mut *lock(&self.0))
    }
}

/// A circuit breaker for one target.
///
/// Closed: calls go through, and consecutive failures are counted. After `threshold` of
/// them it opens: calls fail fast, without touching the network, for `cooldown`. Then it
/// is half-open: one trial call goes through; its success closes the breaker, its failure
/// opens it again. A trial that never reports back is replaced after another `cooldown`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: BreakerState,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BreakerState {
    Closed { failures: u32 },
    Open { since: Instant },
    HalfOpen { trial_since: Instant },
}

impl CircuitBreaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: BreakerState::Closed { failures: 0 },
        }
    }

    /// Whether a call may go out at `now`; `true` in half-open state claims the trial.
    pub(crate) fn try_acquire(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { since } | BreakerState::HalfOpen { trial_since: since } => {
                if now.saturating_duration_since(since) >= self.cooldown {
                    self.state = BreakerState::HalfOpen { trial_since: now };
                    true
                } else {
                    false
                }
            }
        }
    }

    /// The target answered: close.
    pub(crate) fn on_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    /// The target failed at `now`: count it, and open at the threshold or on a failed trial.
    pub(crate) fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            BreakerState::Closed { failures } if failures + 1 < self.threshold => {
                BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            _ => BreakerState::Open { since: now },
        };
    }

    #[cfg(test)]
    fn is_open(&self) -> bool {
        !matches!(self.state, BreakerState::Closed { .. })
    }
}

/// Calls `attempt` until it succeeds, fails for good, or `policy` is spent.
///
/// `attempt` receives the attempt number, from 1. Between attempts the loop sleeps for
/// [`RetryPolicy::delay`]. With a `breaker`, each attempt first asks it for permission and
/// reports its outcome to it: retryable failures count against the target, any answer
/// (even a 4xx) counts for it. `target` names the callee in errors; progress goes to `log`.
pub(crate) async fn with_retries<T, Fut>(
    target: &'static str,
    policy: &RetryPolicy,
    jitter: &Jitter,
    breaker: Option<&Mutex<CircuitBreaker>>,
    log: &Progress,
    mut attempt: impl FnMut(u32) -> Fut,
) -> Result<T, CallError>
where
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let mut last = None;
    let mut number = 1;
    loop {
        if let Some(breaker) = breaker
            && !lock(breaker).try_acquire(Instant::now())
        {
            return Err(CallError::BreakerOpen { target, last });
        }
        let error = match attempt(number).await {
            Ok(value) => {
                if let Some(breaker) = breaker {
                    lock(breaker).on_success();
                }
                return Ok(value);
            }
            Err(error) => error,
        };
        if let Some(breaker) = breaker {
            let mut breaker = lock(breaker);
            if error.is_retryable() {
                breaker.on_failure(Instant::now());
            } else {
                breaker.on_success();
            }
        }
        if !error.is_retryable() || number > policy.max_retries {
            return Err(CallError::Failed {
                target,
                attempts: number,
                source: error,
            });
        }
        let delay = jitter.delay(policy, number - 1, error.retry_after());
        log.say(format_args!(
            "{}; retry {number} of {} in {}",
            chain(&error),
            policy.max_retries,
            human(delay),
        ));
        tokio::time::sleep(delay).await;
        last = Some(error);
        number += 1;
    }
}

/// Locks `mutex`, ignoring poisoning: the guarded state stays consistent on every path.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use reqwest::StatusCode;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            base: 200 * MS,
            max: 5000 * MS,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy();
        let steps: Vec<_> = (0..7).map(|r| p.backoff(r)).collect();
        assert_eq!(
            steps,
            [200, 400, 800, 1600, 3200, 5000, 5000].map(|n| n * MS)
        );
        assert_eq!(p.backoff(u32::MAX), 5000 * MS, "no overflow");
    }

    #[test]
    fn equal_jitter_stays_between_half_and_full_backoff() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 0..6 {
            let cap = p.backoff(retry);
            for _ in 0..100 {
                let d = p.delay(retry, None, &mut rng);
                assert!(
                    d >= cap / 2 && d <= cap,
                    "{d:?} outside [{:?}, {cap:?}]",
                    cap / 2
                );
            }
        }
    }

    #[test]
    fn jitter_is_reproducible_from_a_seed() {
        let p = policy();
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..4)
                .map(|r| p.delay(r, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(p.delay(0, Some(7000 * MS), &mut rng), 7000 * MS);
        let d = p.delay(0, Some(MS), &mut rng);
        assert!(d >= 100 * MS && d <= 200 * MS, "{d:?}");
    }

    #[test]
    fn zero_base_means_no_wait() {
        let p = RetryPolicy {
            base: Duration::ZERO,
            ..policy()
        };
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(p.delay(2, None, &mut rng), Duration::ZERO);
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("2"), Some(2000 * MS));
        assert_eq!(parse_retry_after(" 0.25 "), Some(250 * MS));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("1e400"), None);
    }

    #[test]
    fn breaker_opens_after_threshold_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(3, 30_000 * MS);
        for _ in 0..2 {
            assert!(b.try_acquire(t0));
            b.on_failure(t0);
        }
        assert!(!b.is_open());
        b.on_success();
        for _ in 0..2 {
            b.on_failure(t0);
        }
        assert!(!b.is_open(), "a success resets the count");
        b.on_failure(t0);
        assert!(b.is_open());
        assert!(
            !b.try_acquire(t0 + 29_999 * MS),
            "fails fast during the cooldown"
        );
    }

    #[test]
    fn half_open_lets_one_trial_through() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(1, 1000 * MS);
        b.on_failure(t0);
        let t1 = t0 + 1000 * MS;
        assert!(b.try_acquire(t1), "the trial");
        assert!(!b.try_acquire(t1), "only one trial at a time");
        b.on_success();
        assert!(!b.is_open());
        assert!(b.try_acquire(t1));
    }

    #[test]
    fn failed_trial_reopens_for_a_full_cooldown() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(5, 1000 * MS);
        for _ in 0..5 {
            b.on_failure(t0);
        }
        let t1 = t0 + 1500 * MS;
        assert!(b.try_acquire(t1));
        b.on_failure(t1);
        assert!(!b.try_acquire(t1 + 999 * MS));
        assert!(b.try_acquire(t1 + 1000 * MS));
    }

    #[test]
    fn lost_trial_is_replaced_after_a_cooldown() {
        let t0 = Instant::now();
        let mut b = CircuitBreaker::new(1, 1000 * MS);
        b.on_failure(t0);
        assert!(b.try_acquire(t0 + 1000 * MS));
        assert!(!b.try_acquire(t0 + 1999 * MS));
        assert!(b.try_acquire(t0 + 2000 * MS));
    }

    fn unavailable() -> AttemptError {
        AttemptError::Status {
            url: "u".into(),
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "busy".into(),
            retry_after: None,
        }
    }

    fn instant_policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base: Duration::ZERO,
            max: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn retries_until_success() {
        let calls = Cell::new(0);
        let result = with_retries(
            "t",
            &instant_policy(3),
            &Jitter::new(Some(0)),
            None,
            &Progress::silent(),
            |n| {
                calls.set(n);
                async move { if n < 3 { Err(unavailable()) } else { Ok(n) } }
            },
        )
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test]
    async fn gives_up_after_max_retries() {
        let result: Result<(), _> = with_retries(
            "t",
            &instant_policy(2),
            &Jitter::new(Some(0)),
            None,
            &Progress::silent(),
            |_| async { Err(unavailable()) },
        )
        .await;
        assert!(matches!(result, Err(CallError::Failed { attempts: 3, .. })));
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let result: Result<(), _> = with_retries(
            "t",
            &instant_policy(3),
            &Jitter::new(Some(0)),
            None,
            &Progress::silent(),
            |_| async {
                Err(AttemptError::Status {
                    url: "u".into(),
                    status: StatusCode::UNAUTHORIZED,
                    message: "bad key".into(),
                    retry_after: None,
                })
            },
        )
        .await;
        assert!(matches!(result, Err(CallError::Failed { attempts: 1, .. })));
    }

    #[tokio::test]
    async fn open_breaker_stops_the_loop_without_calling() {
        let breaker = Mutex::new(CircuitBreaker::new(2, 60_000 * MS));
        let calls = Cell::new(0);
        let result: Result<(), _> = with_retries(
            "t",
            &instant_policy(5),
            &Jitter::new(Some(0)),
            Some(&breaker),
            &Progress::silent(),
            |n| {
                calls.set(n);
                async { Err(unavailable()) }
            },
        )
        .await;
        assert_eq!(calls.get(), 2);
        assert!(matches!(
            result,
            Err(CallError::BreakerOpen { last: Some(_), .. })
        ));
    }
}
