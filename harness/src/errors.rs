//! Errors of the harness library, one type per operation.

use std::path::PathBuf;

use thiserror::Error;

use crate::diagnostic::Diagnostic;

/// Reading scenario and target files.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is there but not valid; the diagnostic points at the place.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    #[error(
        "unknown target `{name}` for scenarios in `{scenario}` (hint: define it in a `targets.toml` next to the scenario or in a folder above it; known: {known})"
    )]
    UnknownTarget {
        name: String,
        scenario: PathBuf,
        known: String,
    },
    #[error(
        "`{scenario}` names no target, and the nearest `{targets}` defines {names} (hint: say which with `target = \"…\"` in the scenario or in a `defaults.toml` of its folder)"
    )]
    NoDefaultTarget {
        scenario: PathBuf,
        targets: PathBuf,
        names: String,
    },
    #[error("`{scenario}` has `[[step]]`s, which {problem} (hint: {hint})")]
    Steps {
        scenario: PathBuf,
        problem: String,
        hint: String,
    },
    #[error(
        "`{scenario}`: {what} reaches `{host}`, which is not loopback (hint: traffic goes only to 127.0.0.0/8 unless a drill file lists the host in `allow_hosts`)"
    )]
    NotLoopback {
        scenario: PathBuf,
        what: String,
        host: String,
    },
}

/// Running a scenario: the harness could not do its part (the target's failures are
/// results, not errors).
#[derive(Debug, Error)]
pub enum RunError {
    #[error("cannot start the `{stub}` stub")]
    Stub {
        stub: String,
        #[source]
        source: mocks::StubError,
    },
    #[error("cannot start target `{target}`: program `{program}` {problem}")]
    Spawn {
        target: String,
        program: String,
        problem: String,
    },
    #[error("cannot write reports to `{dir}`")]
    Reports {
        dir: PathBuf,
        #[source]
        source: reports::WriteError,
    },
    #[error("cannot start proxy `{name}`: {problem}")]
    Proxy { name: String, problem: String },
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("`{template}` in the environment of target `{target}`: {problem}")]
    Template {
        target: String,
        template: String,
        problem: String,
    },
}

/// A service that could not be started or did not become ready.
#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(
        "service `{name}`: program `{program}` could not be started (hint: install it, e.g. `apt-get install redis-server`, or give its path)"
    )]
    Spawn {
        name: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "service `{name}` exited with {status} before it was ready; its stderr ends:\n{stderr}"
    )]
    Exited {
        name: String,
        status: String,
        stderr: String,
    },
    #[error(
        "service `{name}` was not ready within {timeout} (hint: raise `ready_timeout`, or check `ready`); its stderr ends:\n{stderr}"
    )]
    NotReady {
        name: String,
        timeout: String,
        stderr: String,
    },
    #[error("service `{name}`: no free loopback port")]
    Port {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// Starting a warm worker: its program could not be run, or it ended (an import error)
/// before it said it was ready.
#[derive(Debug, Error)]
pub enum WorkerStartError {
    #[error(
        "target `{target}`: worker program `{program}` was not found next to the harness executable or on PATH"
    )]
    NotFound { target: String, program: String },
    #[error("target `{target}`: cannot start worker `{program}`")]
    Spawn {
        target: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("target `{target}`: the worker ended before it was ready ({how}){hint}\n{stderr}")]
    NotReady {
        target: String,
        how: String,
        hint: &'static str,
        stderr: String,
    },
}
