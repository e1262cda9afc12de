//! Schedules: which of the events a fault's filter matches the fault is applied to, and the
//! per-scenario state that decides it (and draws random delays).

use std::fmt;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::errors::ScheduleError;
use crate::fault::{HttpFault, MAX_DRAWN_DELAY};

/// Which matching events a fault applies to. Events are counted from 1, per rule.
///
/// ```
/// use std::time::Duration;
/// use chaos::Schedule;
///
/// // "with p=0.3 between 2s and 10s after the stub started"
/// let schedule = Schedule::Probability(0.3).within(Duration::from_secs(2), Some(Duration::from_secs(10)));
/// assert_eq!(schedule.to_string(), "p=0.3 between 2s and 10s");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every matching event.
    Always,
    /// The first `n` matching events, then never again (`First(0)` never fires).
    First(u32),
    /// Events `n`, `2n`, `3n`, … (`EveryNth(1)` is every event; `EveryNth(0)` is invalid).
    EveryNth(u32),
    /// Each matching event independently with probability `p` in `0..=1`, drawn from the
    /// scenario's seeded RNG.
    Probability(f64),
    /// `schedule`, over the events that happen in a time window, relative to when the
    /// [`FaultState`] was created (a stub's start): from `after` (inclusive) until `until`
    /// (exclusive; `None` for no end). Events outside the window are not counted and draw
    /// nothing, so `First(2)` within a window is the first two events inside it, and the
    /// RNG stream of a probability is only consumed by events inside it. Windows nest
    /// (an event must be inside each).
    Window {
        /// Start of the window, since the state was created.
        after: Duration,
        /// End of the window, since the state was created; `None` for no end.
        until: Option<Duration>,
        /// What decides inside the window.
        schedule: Box<Schedule>,
    },
}

impl Schedule {
    /// This schedule, applied only to events from `after` until `until` (see
    /// [`Schedule::Window`]).
    pub fn within(self, after: Duration, until: Option<Duration>) -> Schedule {
        Schedule::Window {
            after,
            until,
            schedule: Box::new(self),
        }
    }

    /// Checks that the schedule means something: `EveryNth` at least 1, `Probability`
    /// within `0..=1`, a window that ends after it starts.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match self {
            Schedule::EveryNth(0) => Err(ScheduleError::EveryNthZero),
            Schedule::Probability(p) if !(0.0..=1.0).contains(p) => {
                Err(ScheduleError::ProbabilityOutOfRange(*p))
            }
            Schedule::Window {
                after,
                until: Some(until),
                ..
            } if until <= after => Err(ScheduleError::EmptyWindow {
                after: *after,
                until: *until,
            }),
            Schedule::Window { schedule, .. } => schedule.validate(),
            _ => Ok(()),
        }
    }
}

/// `always`, `first 2`, `every 3rd`, `p=0.25`, `p=0.3 between 2s and 10s`, `always after 2s`.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Always => f.write_str("always"),
            Schedule::First(n) => write!(f, "first {n}"),
            Schedule::EveryNth(n) => write!(f, "every {n}{}", ordinal_suffix(*n)),
            Schedule::Probability(p) => write!(f, "p={p}"),
            Schedule::Window {
                after,
                until,
                schedule,
            } => {
                let human = humantime::format_duration;
                match until {
                    Some(until) => {
                        write!(
                            f,
                            "{schedule} between {} and {}",
                            human(*after),
                            human(*until)
                        )
                    }
                    None => write!(f, "{schedule} after {}", human(*after)),
                }
            }
        }
    }
}

fn ordinal_suffix(n: u32) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// The fault state of one scenario: an event counter per fault rule, one RNG seeded from
/// the scenario seed for probabilities, one per rule for random delays, and the instant
/// time windows count from.
///
/// Decisions are a pure function of the seed and the order (and, for windows, the times) of
/// [`FaultState::decide`] calls: replaying the same events with the same seed injects the
/// same faults. Only [`Schedule::Probability`] draws from the shared RNG, one draw per
/// matching event inside its windows, so adding an `Always` rule does not shift the draws
/// of a probabilistic one. Random delays ([`FaultState::draw_delay`]) draw from an RNG of
/// their rule's own, derived from the seed and the rule's index, so they shift neither the
/// probabilities nor each other. (The RNG is rand's `StdRng`, whose stream is fixed for the
/// version pinned in `Cargo.lock`.)
#[derive(Debug, Clone)]
pub struct FaultState {
    seed: u64,
    started: Instant,
    rng: StdRng,
    events: Vec<u64>,
    injected: Vec<u64>,
    delay_rngs: Vec<Option<StdRng>>,
}

impl FaultState {
    /// Fresh counters and an RNG seeded from `seed`; time windows count from now.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            started: Instant::now(),
            rng: StdRng::seed_from_u64(seed),
            events: Vec::new(),
            injected: Vec::new(),
            delay_rngs: Vec::new(),
        }
    }

    /// Counts one event matched by rule `rule_index`, happening now, and says whether to
    /// inject its fault. See [`FaultState::decide_at`].
    pub fn decide(&mut self, rule_index: usize, schedule: &Schedule) -> bool {
        let elapsed = self.started.elapsed();
        self.decide_at(rule_index, schedule, elapsed)
    }

    /// Counts one event matched by rule `rule_index`, happening `elapsed` after the state
    /// was created (a stub passes the request's time since it started), and says whether
    /// to inject its fault. An event outside the schedule's window is not counted.
    ///
    /// An invalid schedule never fires (`EveryNth(0)`; a probability outside `0..=1` is
    /// clamped, NaN never fires): validate schedules when rules are loaded.
    pub fn decide_at(&mut self, rule_index: usize, schedule: &Schedule, elapsed: Duration) -> bool {
        let mut schedule = schedule;
        while let Schedule::Window {
            after,
            until,
            schedule: inner,
        } = schedule
        {
            if elapsed < *after || until.is_some_and(|until| elapsed >= until) {
                return false;
            }
            schedule = inner;
        }
        if self.events.len() <= rule_index {
            self.events.resize(rule_index + 1, 0);
            self.injected.resize(rule_index + 1, 0);
        }
        self.events[rule_index] += 1;
        let n = self.events[rule_index];
        let inject = match *schedule {
            Schedule::Always => true,
            Schedule::First(first) => n <= u64::from(first),
            Schedule::EveryNth(period) => period != 0 && n.is_multiple_of(u64::from(period)),
            Schedule::Probability(p) => self.rng.random::<f64>() < p,
            Schedule::Window { .. } => unreachable!("windows are unwrapped above"),
        };
        if inject {
            self.injected[rule_index] += 1;
        }
        inject
    }

    /// The wait of a delay fault of rule `rule_index` for one exchange: the fixed wait of a
    /// [`HttpFault::Delay`], or a draw for a [`HttpFault::DelayUniform`] or
    /// [`HttpFault::DelayLogNormal`] from the rule's own RNG (seeded from the scenario seed
    /// and `rule_index`), rounded to whole microseconds and capped at
    /// [`MAX_DRAWN_DELAY`]; `None` for a fault that is not a delay.
    ///
    /// The nth draw of a rule is a pure function of the seed, the rule's index and `n`.
    pub fn draw_delay(&mut self, rule_index: usize, fault: &HttpFault) -> Option<Duration> {
        let secs = match *fault {
            HttpFault::Delay(delay) => return Some(delay),
            HttpFault::DelayUniform { min, max } => {
                let u: f64 = self.delay_rng(rule_index).random();
                let (min, max) = (min.as_secs_f64(), max.as_secs_f64());
                min + (max - min).max(0.0) * u
            }
            HttpFault::DelayLogNormal { median, sigma } => {
                let rng = self.delay_rng(rule_index);
                // Box-Muller: 1 - u is in (0, 1], so its log is finite
                let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                median.as_secs_f64() * (sigma * z).exp()
            }
            _ => return None,
        };
        let micros = (secs * 1e6).round();
        let capped = if micros.is_finite() && micros >= 0.0 {
            Duration::from_micros(micros.min(MAX_DRAWN_DELAY.as_micros() as f64) as u64)
        } else if micros > 0.0 {
            MAX_DRAWN_DELAY
        } else {
            Duration::ZERO
        };
        Some(capped.min(MAX_DRAWN_DELAY))
    }

    fn delay_rng(&mut self, rule_index: usize) -> &mut StdRng {
        if self.delay_rngs.len() <= rule_index {
            self.delay_rngs.resize(rule_index + 1, None);
        }
        let seed = self.seed;
        self.delay_rngs[rule_index].get_or_insert_with(|| {
            StdRng::seed_from_u64(splitmix64(seed ^ splitmix64(rule_index as u64 + 1)))
        })
    }

    /// How many events rule `rule_index` has matched so far (inside its windows).
    pub fn events(&self, rule_index: usize) -> u64 {
        self.events.get(rule_index).copied().unwrap_or(0)
    }

    /// How many times rule `rule_index` has fired so far.
    pub fn injected(&self, rule_index: usize) -> u64 {
        self.injected.get(rule_index).copied().unwrap_or(0)
    }

    /// The seed this state was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// When this state was created: time windows count from here.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The scenario's RNG, for other seeded choices (e.g. jitter) that should replay with
    /// the faults. Drawing from it shifts later `Probability` decisions.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}

/// SplitMix64's finaliser: spreads nearby inputs (rule indices, seeds) over unrelated seeds.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: &mut FaultState, schedule: Schedule, events: usize) -> Vec<bool> {
        (0..events).map(|_| state.decide(0, &schedule)).collect()
    }

    #[test]
    fn always_first_and_every_nth_count_per_rule() {
        let mut state = FaultState::new(7);
        assert_eq!(run(&mut state, Schedule::Always, 3), [true, true, true]);

        let mut state = FaultState::new(7);
        assert_eq!(
            run(&mut state, Schedule::First(2), 4),
            [true, true, false, false]
        );
        assert_eq!(state.events(0), 4);
        assert_eq!(state.injected(0), 2);

        let mut state = FaultState::new(7);
        assert_eq!(
            run(&mut state, Schedule::EveryNth(3), 6),
            [false, false, true, false, false, true]
        );
    }

    #[test]
    fn rules_have_their_own_counters() {
        let mut state = FaultState::new(0);
        assert!(state.decide(1, &Schedule::First(1)));
        assert!(state.decide(0, &Schedule::First(1)));
        assert!(!state.decide(1, &Schedule::First(1)));
        assert_eq!(
            (state.events(0), state.events(1), state.events(9)),
            (1, 2, 0)
        );
    }

    #[test]
    fn probability_is_deterministic_for_a_seed_and_event_order() {
        let decisions = |seed| {
            let mut state = FaultState::new(seed);
            run(&mut state, Schedule::Probability(0.5), 64)
        };
        assert_eq!(decisions(42), decisions(42));
        assert_ne!(decisions(42), decisions(43));
        let fired = decisions(42).iter().filter(|&&d| d).count();
        assert!((16..=48).contains(&fired), "{fired} of 64 fired at p=0.5");
    }

    /// Recorded seeds must replay across builds: this pins the stream of decisions, so a
    /// dependency update that changes `StdRng` fails here rather than in a replayed scenario.
    #[test]
    fn probability_decisions_for_seed_42_are_pinned() {
        let mut state = FaultState::new(42);
        let decisions: String = run(&mut state, Schedule::Probability(0.5), 32)
            .into_iter()
            .map(|fired| if fired { '1' } else { '0' })
            .collect();
        assert_eq!(decisions, "00011100110011011010010111011010");
    }

    #[test]
    fn only_probability_draws_from_the_rng() {
        let mut alone = FaultState::new(5);
        let mut interleaved = FaultState::new(5);
        for _ in 0..32 {
            interleaved.decide(1, &Schedule::Always);
            interleaved.decide(2, &Schedule::EveryNth(2));
            assert_eq!(
                alone.decide(0, &Schedule::Probability(0.3)),
                interleaved.decide(0, &Schedule::Probability(0.3))
            );
        }
    }

    #[test]
    fn probability_edges_and_invalid_schedules() {
        let mut state = FaultState::new(1);
        assert!(
            run(&mut state, Schedule::Probability(1.0), 16)
                .iter()
                .all(|&d| d)
        );
        assert!(
            !run(&mut state, Schedule::Probability(0.0), 16)
                .iter()
                .any(|&d| d)
        );
        assert!(
            !run(&mut state, Schedule::Probability(f64::NAN), 4)
                .iter()
                .any(|&d| d)
        );
        assert!(!run(&mut state, Schedule::EveryNth(0), 4).iter().any(|&d| d));
        assert_eq!(
            Schedule::EveryNth(0).validate(),
            Err(ScheduleError::EveryNthZero)
        );
        assert!(Schedule::Probability(f64::NAN).validate().is_err());
        assert!(Schedule::Probability(-0.1).validate().is_err());
        assert!(Schedule::Probability(1.0).validate().is_ok());
        assert!(Schedule::First(0).validate().is_ok());
    }

    #[test]
    fn windows_count_and_draw_only_inside() {
        let secs = Duration::from_secs;
        let window = Schedule::First(2).within(secs(2), Some(secs(10)));
        let mut state = FaultState::new(0);
        let at = |state: &mut FaultState, s: u64| state.decide_at(0, &window, secs(s));
        assert!(!at(&mut state, 1));
        assert_eq!(
            state.events(0),
            0,
            "an event before the window is not counted"
        );
        assert!(at(&mut state, 2));
        assert!(at(&mut state, 5));
        assert!(!at(&mut state, 6));
        assert!(!at(&mut state, 10), "the end is exclusive");
        assert_eq!(state.events(0), 3);

        // the probability stream is consumed by events inside the window only
        let p = Schedule::Probability(0.5);
        let windowed = p.clone().within(secs(1), None);
        let mut plain = FaultState::new(9);
        let mut state = FaultState::new(9);
        for _ in 0..16 {
            assert!(!state.decide_at(0, &windowed, Duration::ZERO));
        }
        for _ in 0..32 {
            assert_eq!(
                plain.decide_at(0, &p, Duration::ZERO),
                state.decide_at(0, &windowed, secs(3))
            );
        }

        // windows nest: both must hold
        let nested = Schedule::Always
            .within(secs(2), None)
            .within(Duration::ZERO, Some(secs(4)));
        let mut state = FaultState::new(0);
        let fired: Vec<bool> = [1, 3, 5]
            .iter()
            .map(|&s| state.decide_at(0, &nested, secs(s)))
            .collect();
        assert_eq!(fired, [false, true, false]);
        assert!(FaultState::new(0).decide(0, &Schedule::Always.within(Duration::ZERO, None)));
        assert!(!FaultState::new(0).decide(0, &Schedule::Always.within(secs(3600), None)));
    }

    #[test]
    fn window_validation_and_display() {
        let secs = Duration::from_secs;
        assert_eq!(
            Schedule::Always.within(secs(2), Some(secs(2))).validate(),
            Err(ScheduleError::EmptyWindow {
                after: secs(2),
                until: secs(2)
            })
        );
        assert_eq!(
            Schedule::Always
                .within(secs(5), Some(secs(2)))
                .validate()
                .unwrap_err()
                .to_string(),
            "a window from `5s` until `2s` is empty (hint: `until` must be later than `after`)"
        );
        assert_eq!(
            Schedule::EveryNth(0).within(secs(1), None).validate(),
            Err(ScheduleError::EveryNthZero)
        );
        assert!(
            Schedule::Always
                .within(secs(1), Some(secs(2)))
                .validate()
                .is_ok()
        );
        assert_eq!(
            Schedule::Probability(0.3)
                .within(secs(2), Some(secs(10)))
                .to_string(),
            "p=0.3 between 2s and 10s"
        );
        assert_eq!(
            Schedule::Always
                .within(Duration::from_millis(1500), None)
                .to_string(),
            "always after 1s 500ms"
        );
    }

    fn draws(seed: u64, rule_index: usize, fault: &HttpFault, n: usize) -> Vec<Duration> {
        let mut state = FaultState::new(seed);
        (0..n)
            .map(|_| state.draw_delay(rule_index, fault).unwrap())
            .collect()
    }

    #[test]
    fn uniform_delays_are_in_range_and_replay_per_seed() {
        let ms = Duration::from_millis;
        let fault = HttpFault::uniform(ms(10), ms(50));
        let first = draws(42, 0, &fault, 200);
        assert_eq!(first, draws(42, 0, &fault, 200));
        assert_ne!(first, draws(43, 0, &fault, 200));
        assert_ne!(
            first,
            draws(42, 1, &fault, 200),
            "each rule has its own stream"
        );
        assert!(first.iter().all(|d| (ms(10)..=ms(50)).contains(d)));
        assert!(
            first.iter().all(|d| d.subsec_nanos() % 1000 == 0),
            "whole microseconds"
        );
        let spread = first
            .iter()
            .max()
            .unwrap()
            .saturating_sub(*first.iter().min().unwrap());
        assert!(
            spread > ms(30),
            "200 draws cover most of the range: {spread:?}"
        );
        assert_eq!(
            draws(1, 0, &HttpFault::uniform(ms(7), ms(7)), 3),
            [ms(7); 3]
        );
    }

    #[test]
    fn lognormal_delays_centre_on_the_median() {
        let ms = Duration::from_millis;
        let fault = HttpFault::lognormal(ms(200), 0.5);
        let mut sorted = draws(7, 0, &fault, 1001);
        assert_eq!(sorted, draws(7, 0, &fault, 1001));
        sorted.sort();
        let median = sorted[500];
        assert!(
            (ms(170)..=ms(235)).contains(&median),
            "median of 1001 draws: {median:?}"
        );
        assert_eq!(
            draws(7, 0, &HttpFault::lognormal(ms(200), 0.0), 3),
            [ms(200); 3]
        );
        let wild = draws(
            7,
            0,
            &HttpFault::lognormal(Duration::from_secs(3000), 50.0),
            50,
        );
        assert!(wild.iter().all(|d| *d <= MAX_DRAWN_DELAY));
        assert!(wild.contains(&MAX_DRAWN_DELAY) && wild.contains(&Duration::ZERO));
    }

    /// Recorded seeds must replay across builds: this pins the first draws of rule 0.
    #[test]
    fn delay_draws_for_seed_42_are_pinned() {
        let ms = Duration::from_millis;
        let uniform = draws(42, 0, &HttpFault::uniform(ms(0), ms(1000)), 4);
        let lognormal = draws(42, 0, &HttpFault::lognormal(ms(100), 1.0), 4);
        assert_eq!(
            format!("{uniform:?} {lognormal:?}"),
            "[30.409ms, 919.891ms, 220.053ms, 582.892ms] [124.321ms, 54.251ms, 281.874ms, 586.545ms]"
        );
    }

    #[test]
    fn delay_draws_do_not_shift_probabilities() {
        let ms = Duration::from_millis;
        let mut alone = FaultState::new(5);
        let mut drawing = FaultState::new(5);
        for _ in 0..32 {
            drawing.draw_delay(1, &HttpFault::uniform(ms(1), ms(9)));
            assert_eq!(
                alone.decide(0, &Schedule::Probability(0.3)),
                drawing.decide(0, &Schedule::Probability(0.3))
            );
        }
        assert_eq!(drawing.draw_delay(0, &HttpFault::Delay(ms(3))), Some(ms(3)));
        assert_eq!(drawing.draw_delay(0, &HttpFault::Hang), None);
    }

    #[test]
    fn display() {
        assert_eq!(Schedule::First(2).to_string(), "first 2");
        assert_eq!(Schedule::EveryNth(2).to_string(), "every 2nd");
        assert_eq!(Schedule::EveryNth(11).to_string(), "every 11th");
        assert_eq!(Schedule::Probability(0.25).to_string(), "p=0.25");
    }
}
