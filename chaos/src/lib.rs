//! The fault model of agent-harness: what can go wrong ([`HttpFault`]), when it goes wrong
//! ([`Schedule`]), and the per-scenario state that decides it ([`FaultState`]).
//!
//! This crate owns faults, not servers: the stubs in `mocks` filter the requests they
//! receive, ask a [`FaultState`] whether a matching [`FaultRule`] fires, and send the
//! fault's [`FaultResponse`] (or hold the reply back for a [`HttpFault::Delay`]).
//! For now the faults are HTTP-level; TCP proxies and process faults are to come.
//!
//! ```
//! use std::time::Duration;
//! use chaos::{FaultRule, FaultState, HttpFault, Schedule};
//!
//! // "the first two calls from the planner get a 429 with Retry-After: 1"
//! let rule = FaultRule {
//!     id: "chaos[1]".into(),
//!     fault: HttpFault::Status { status: 429, message: "slow down".into(), retry_after: Some(Duration::from_secs(1)) },
//!     schedule: Schedule::First(2),
//! };
//! rule.validate().unwrap();
//!
//! let mut state = FaultState::new(42); // one per scenario, seeded from the scenario seed
//! let fired: Vec<bool> = (0..3).map(|_| state.decide(0, &rule.schedule)).collect();
//! assert_eq!(fired, [true, true, false]);
//!
//! let response = rule.fault.response().unwrap();
//! assert_eq!((response.status, response.headers[0].1.as_str()), (429, "1"));
//! assert_eq!(rule.to_string(), "chaos[1]: 429 retry-after=1s");
//! ```
//!
//! Decisions are deterministic for a given seed and order of events, so a failing scenario
//! replays exactly with its recorded seed.

mod api_error;
mod errors;
mod fault;
mod schedule;

pub use api_error::{ApiError, default_error_code, default_error_type, retry_after_secs};
pub use errors::{FaultRuleError, ScheduleError};
pub use fault::{FaultResponse, FaultRule, HttpFault, MALFORMED_JSON_BODY};
pub use schedule::{FaultState, Schedule};
