//! The fault model of agent-harness: what can go wrong, when, and how it is undone.
//!
//! Faults come in three layers, by where they are injected:
//!
//! ```text
//!                   ┌──────────── target (the pipeline under test) ────────────┐
//!   process faults ─▶ kill, pause (SIGSTOP/SIGCONT), rlimits, CPU contention    │  chaos::process
//!                   └───────┬──────────────────────────────────────────────────┘
//!                           │ TCP
//!   TCP faults      ─▶ FaultProxy on 127.0.0.1: latency, bandwidth, slicer,        chaos::proxy
//!                           │ slow close, timeout, reset, limit data
//!                           ▼
//!   HTTP faults     ─▶ LLM stub / fake executor (in `mocks`) asks a FaultState     chaos (root)
//!                      whether a FaultRule fires, answers it in the request's API
//! ```
//!
//! - **HTTP** ([`HttpFault`], [`FaultRule`], [`Schedule`], [`FaultState`]): this crate owns
//!   the faults, not the servers. The stubs in `mocks` filter the requests they receive,
//!   ask a [`FaultState`] whether a matching rule fires, and act on the fault at its
//!   [`FaultStage`]: hold the reply back (a fixed delay, or one drawn uniformly or
//!   log-normally from the seeded state), replace it (an [`ApiError`] the stub writes in the
//!   request's API, a malformed or empty body, a hang, a reset before the response), pace or stall a stream, or end the response early (truncated,
//!   reset after some bytes, a cut stream). [`Schedule`]s can be limited to a time
//!   window since the stub started.
//! - **TCP** ([`proxy`]): a [`FaultProxy`](proxy::FaultProxy) sits between the target and
//!   a dependency and applies Toxiproxy's toxics to the byte streams; toxics can be
//!   changed while it runs, and it keeps a journal.
//! - **Process** ([`process`]): signals and limits aimed at the target's process group,
//!   each lasting fault a guard that undoes it on drop.
//!
//! A [`Rollback`] collects undo steps across the layers and runs them in reverse order at
//! the end of a scenario, or on drop when it panics.
//!
//! Everything random draws from an RNG seeded with the scenario's seed ([`FaultState`],
//! one per proxy), so a failing scenario replays exactly with its recorded seed.
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
//! // neutral: the stub writes it in the shape of the API the request was for
//! let error = rule.fault.api_error().unwrap();
//! assert_eq!((error.status, error.retry_after_header().as_deref()), (429, Some("1")));
//! assert_eq!(rule.to_string(), "chaos[1]: 429 retry-after=1s");
//! ```
//!
//! # Adding a new fault
//!
//! 1. Pick the layer by where the fault acts: on one HTTP exchange (a variant of
//!    [`HttpFault`] with its [`FaultStage`], and how the stubs answer it if it replaces
//!    the reply (neutral here: an [`ApiError`], a corruption; each stub's API writes it); if only a server that controls the socket can inject it, say so in
//!    [`HttpFault::needs_socket`] and implement it in the LLM stub's server in `mocks`),
//!    on the bytes of a connection (a variant of [`ToxicKind`](proxy::ToxicKind), handled
//!    in `proxy/link.rs`'s `plan`/`toxic_end`), or on the target process (a function in
//!    `process.rs` returning a guard if it lasts).
//! 2. Say what it really does on the wire or the system, and what it does not, in the
//!    variant's docs (and the table in [`process`] for a process fault).
//! 3. Validate its parameters with a precise error in `errors.rs` (lowercase, values in
//!    backticks, a hint where the fix is known), and make a config-file form for it
//!    (serde, `deny_unknown_fields`, durations as `"200ms"`).
//! 4. Draw anything random from the seeded RNG of its layer, never from the OS.
//! 5. Make it undoable: a guard whose `Drop` undoes it, so a [`Rollback`] can hold it.
//! 6. Test it from outside: a real client, server or child process observes the fault
//!    (lower bounds on time only; events, not sleeps, for readiness).

mod api_error;
mod errors;
mod fault;
pub mod process;
pub mod proxy;
mod rollback;
mod schedule;
mod serde_duration;

pub use api_error::{ApiError, retry_after_secs};
pub use errors::{FaultRuleError, ScheduleError};
pub use fault::{FaultRule, FaultStage, HttpFault, MAX_DRAWN_DELAY, Truncation};
pub use rollback::{Rollback, RollbackStep};
pub use schedule::{FaultState, Schedule};
pub use serde_duration::{MAX_DURATION, check_range as check_duration_range};
