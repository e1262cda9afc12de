//! Errors of the `chaos` crate, one type per operation.

use thiserror::Error;

/// A [`Schedule`](crate::Schedule) that can never mean what its author wanted.
///
/// Returned by [`Schedule::validate`](crate::Schedule::validate).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScheduleError {
    /// `EveryNth(0)`: there is no 0th event.
    #[error("the period of an every-nth schedule must be at least `1`, got `0`")]
    EveryNthZero,
    /// `Probability(p)` with `p` outside `0..=1` (or NaN).
    #[error("a probability must be between `0` and `1`, got `{0}`")]
    ProbabilityOutOfRange(f64),
}

/// A [`FaultRule`](crate::FaultRule) that cannot be armed.
///
/// Returned by [`FaultRule::validate`](crate::FaultRule::validate).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FaultRuleError {
    /// The rule's schedule is invalid.
    #[error("fault rule `{id}` has an invalid schedule")]
    Schedule {
        /// The rule's id, e.g. `chaos[1]`.
        id: String,
        /// What is wrong with the schedule.
        #[source]
        source: ScheduleError,
    },
    /// A status fault whose status is not an HTTP status code.
    #[error(
        "fault rule `{id}` injects status `{status}`, which is not an HTTP status (hint: use 100 to 599)"
    )]
    Status {
        /// The rule's id, e.g. `chaos[1]`.
        id: String,
        /// The offending status.
        status: u16,
    },
}
