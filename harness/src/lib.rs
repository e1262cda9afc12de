//! agent-harness: runs declarative scenario files against multi-agent LLM pipelines.
//!
//! The main type is [`runner::Planned`]: a validated [`scenario::Scenario`] with its
//! [`target::TargetSpec`] and seed, built by [`plan::plan`] from paths on the command line.
//! [`runner::run_all`] runs planned scenarios, each with its own LLM stub and fake
//! executors on 127.0.0.1 (crate `mocks`), opens a session with the target (a process per
//! run, a warm worker, or a service; see `target`) with the stub URLs in its environment,
//! checks the scenario's expectations ([`expect`]) and returns a `reports::RunReport`,
//! which `reports::write_all` turns into JUnit XML, JSON and Markdown. What a run shares
//! between its scenarios (warm workers) is its [`target::RunContext`]
//! ([`runner::run_all_in`]). A scenario file may expand into several scenarios (a
//! `[matrix]`), each with its own [`scenario::ScenarioId`]; folder `defaults.toml` files
//! are merged in when it is loaded.
//!
//! ```no_run
//! use harness::plan::{Selection, plan};
//! use harness::runner::{NoopReporter, RunConfig, run_all};
//!
//! # async fn demo() {
//! let selection = Selection { paths: vec!["scenarios".into()], ..Selection::default() };
//! let plan = plan(&selection, 42).expect("valid scenarios");
//! let config = RunConfig::new(2, 42);
//! let report = run_all(plan.scenarios, &config, &mut NoopReporter, std::future::pending()).await;
//! assert!(report.scenarios.iter().all(|s| s.outcome == reports::Outcome::Passed));
//! # }
//! ```
//!
//! The `harness` binary and `cargo xtask gate` are thin layers over [`cli::main_with`].

pub mod baseline;
pub mod cli;
mod compare;
pub mod console;
pub mod diagnostic;
pub mod drill;
pub mod errors;
pub mod events;
pub mod exit_codes;
mod expect;
mod faults;
pub mod fuzz;
pub mod gates;
mod load;
mod merge_cmd;
mod metrics;
mod netpolicy;
pub mod perf_cmd;
pub mod plan;
mod proxy_cmd;
pub mod reaper;
mod run_cmd;
pub mod runner;
mod sampler;
pub mod scenario;
mod service;
mod source;
mod spans;
mod steady;
mod stubs;
mod stubs_cmd;
pub mod target;
mod template;
