//! The command line: flags, help text, and the exit codes.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Knobs, Mode};
use crate::errors::{RequestError, chain};
use crate::flow::{Checkpoint, NoJournal, Pipeline};
use crate::output::{RunResult, Status};
use crate::progress::{Progress, human};
use crate::request::parse_request;
use crate::serve::{ServeOptions, serve};
use crate::store::Store;

/// The exit codes of refpipe, in one place.
pub(crate) mod exit {
    /// The run completed, or completed degraded (`serve`: shut down cleanly).
    pub(crate) const OK: u8 = 0;
    /// The run failed at runtime (`serve`: could not listen or serve).
    pub(crate) const FAILED: u8 = 1;
    /// Invalid input: the request, or the command line.
    pub(crate) const INVALID_INPUT: u8 = 2;
    /// A missing or invalid environment variable.
    pub(crate) const CONFIG: u8 = 3;
}

const ENVIRONMENT: &str = "\
Environment (read once at start; an empty value counts as unset):
  OPENAI_BASE_URL             required; e.g. http://127.0.0.1:8080/v1, requests go to
                              {base}/chat/completions (plain http only)
  OPENAI_API_KEY              required; sent as `Authorization: Bearer`
  REFPIPE_FALLBACK_BASE_URL   a fallback provider with the same API, tried when the
                              primary fails after its retries or its breaker is open
  REFPIPE_FALLBACK_API_KEY    the fallback's key [default: OPENAI_API_KEY]
  REFPIPE_MODEL               [default: gpt-4o-mini]
  EXECUTOR_URL                required; code goes to POST {EXECUTOR_URL}/execute
  REFPIPE_LLM_TIMEOUT         per HTTP attempt, connect to last byte [default: 30s]
  REFPIPE_EXECUTOR_TIMEOUT    per executor attempt [default: 60s]
  REFPIPE_MAX_RETRIES         retries after the first attempt, on 429, 5xx, connection
                              errors, timeouts and truncated streams [default: 3]
  REFPIPE_BACKOFF_BASE        backoff before retry n (from 0) is min(max, base × 2^n),
  REFPIPE_BACKOFF_MAX         half of it random; at least Retry-After [default: 200ms, 5s]
  REFPIPE_BREAKER_THRESHOLD   consecutive failed attempts that open a provider's circuit
                              breaker [default: 5]
  REFPIPE_BREAKER_COOLDOWN    how long an open breaker fails fast [default: 30s]
  REFPIPE_MAX_PROMPT_CHARS    longest prompt accepted, in characters [default: 8000]
  REFPIPE_PRICE_INPUT_PER_1K  USD per 1000 prompt tokens [default: 0.00015]
  REFPIPE_PRICE_OUTPUT_PER_1K USD per 1000 completion tokens [default: 0.0006]
  REFPIPE_SEED                seeds retry jitter, for reproducible runs [default: from the OS]
  REFPIPE_API_TOKEN           serve only: require `Authorization: Bearer <token>` on /runs
  REFPIPE_FRAGILE             1 turns the resilience off, like --fragile [default: 0]
  REFPIPE_STATE_DIR           serve only: persist runs in this directory, like --state-dir
Durations are like 30s, 200ms, 1m. HTTP_PROXY and NO_PROXY apply as usual.

Benchmark/test knobs (production runs leave them unset, which is off). They make
refpipe slower, leakier or buggier by a known amount, so that a harness can show that
its baseline comparison catches a real slowdown, its memory sampling a real leak and its
adversarial replies a real parsing bug:
  REFPIPE_WORK_DELAY          time refpipe spends after each agent step (the planner, the
                              coder, each executor call, the critic), modelling its own
                              processing; run and serve. A run of planner, coder, executor
                              and critic takes at least 4 times this longer [default: 0s]
  REFPIPE_LEAK_BYTES_PER_RUN  serve only: each finished run (any status) keeps this many
                              bytes, written, until the process exits, so resident memory
                              grows by about that much per run [default: 0]. run does one
                              run and exits, so there it has no lasting effect: it is
                              checked but nothing is retained
  REFPIPE_PLANTED_BUG         plants a known parsing bug, so that adversarial testing can
                              show it finds one [default: none]: `unchecked-plan` panics
                              on a planner reply that is JSON without a list at subtasks;
                              `critic-text-match` reads the critic's needs_refinement by
                              matching the text `\"needs_refinement\":true`, so a spaced
                              verdict is taken as approval
Invalid values are configuration errors, like those of the other variables.

Exit codes:
  0  the run completed, or completed degraded (the critic was unavailable)
  1  the run failed (error.kind llm_error, malformed_llm_output, executor_error,
     executor_failed); serve: could not listen
  2  invalid input: the request (error.kind validation) or the command line
  3  configuration error (error.kind config)";

const RUN_HELP: &str = "\
Runs one request and prints its result document.

Reads one JSON request from stdin:
  {\"prompt\": \"…\", \"max_iterations\": 3, \"stream\": false, \"language\": \"python\"}
Only `prompt` is required; unknown fields are ignored. Writes exactly one JSON result
document to stdout, also when the run fails or is refused, and progress to stderr:
  {\"status\": \"completed\"|\"degraded\"|\"failed\", \"subtasks\", \"code\", \"language\",
   \"execution\", \"critic\", \"refinement_iterations\", \"execution_attempts\",
   \"llm_requests\": {\"planner\", \"coder\", \"critic\"}, \"provider_calls\": {\"primary\",
   \"fallback\"}, \"usage\", \"cost_usd\", \"degraded_reason\", \"error\": {\"kind\", \"message\",
   \"agent\"}, \"mode\": \"resilient\"|\"fragile\"}

Fragile mode (--fragile or REFPIPE_FRAGILE=1) turns the resilience off, so that a chaos
suite can show its scenarios bite (they must pass normally and fail in fragile mode): no
retries (the first failure is final, Retry-After is ignored), no circuit breaker, no
fallback provider, no re-ask of a malformed reply, a failed critic fails the run instead
of degrading it, and a failed execution fails it (executor_failed) instead of going back
to the coder. Such a failure's error.message ends in `(fragile mode: …)`, naming what was
switched off, e.g. `… HTTP 429 Too Many Requests … (fragile mode: no retries)`.";

const SERVE_HELP: &str = "\
Serves runs over HTTP, state in memory, or also on disk with --state-dir.

Prints `listening on http://ADDR` as the first line on stdout, then serves:
  POST /runs       the run request as body -> 202 {\"id\"}; 400 with the result document
                   if the request is invalid; 503 if it cannot be saved in the state dir
  GET /runs/{id}   -> {\"id\", \"state\": \"queued\"|\"running\"|\"done\", \"result\",
                   \"resumed\": bool, \"resume_count\": n}; 404 if unknown
  GET /health      -> {\"status\": \"ok\"}
With REFPIPE_API_TOKEN set, /runs routes answer 401 without `Authorization: Bearer <token>`.
Stops on SIGINT or SIGTERM.

With a state directory (--state-dir or REFPIPE_STATE_DIR), every run is saved there as one
JSON file, atomically, as it progresses: queued, running, after each step (plan, code,
execution, critic verdict, with the iteration count and usage), done. After a restart,
even a SIGKILL, finished runs are served as they were, and runs that were queued or
running are resumed at the step after their last finished one, without repeating the LLM
calls before it (`resumed: true`). Run ids stay unique across restarts. A file that is not
a run record is reported on stderr and skipped. One process per state directory. An
unusable directory is a configuration error (exit code 3). In fragile mode the state
directory is not used.";

/// refpipe: a reference multi-agent pipeline (planner, coder, executor, critic) over an
/// OpenAI-compatible API.
#[derive(Debug, Parser)]
#[command(
    name = "refpipe",
    version,
    after_help = "Run `refpipe --help` for the environment variables and exit codes.",
    after_long_help = ENVIRONMENT
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one request read from stdin; print its result document on stdout.
    #[command(long_about = RUN_HELP, after_long_help = ENVIRONMENT)]
    Run(RunArgs),
    /// Serve runs over HTTP: submit, poll, health.
    #[command(long_about = SERVE_HELP, after_long_help = ENVIRONMENT)]
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Turn the resilience off: no retries, breaker, fallback, re-ask, degradation or
    /// refinement after a failed execution; the first failure is final
    /// [env: REFPIPE_FRAGILE=1].
    #[arg(long)]
    fragile: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Runs executed at once; later ones wait in state `queued`.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_runs: u32,
    /// Turn the resilience off, as for `run`; runs are then kept in memory only
    /// [env: REFPIPE_FRAGILE=1].
    #[arg(long)]
    fragile: bool,
    /// Persist runs in DIR (created if missing), so that they survive a restart
    /// [env: REFPIPE_STATE_DIR].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

impl Cli {
    /// Runs the command and returns the process's exit code.
    pub fn run(self) -> ExitCode {
        ExitCode::from(match self.command {
            Command::Run(args) => run_once(args),
            Command::Serve(args) => serve_forever(args),
        })
    }
}

fn run_once(args: RunArgs) -> u8 {
    let log = Progress::stderr();
    let mode = Mode::requested(args.fragile);
    let refuse = |kind, error: &dyn std::error::Error, code| refuse(&log, mode, kind, error, code);
    let mut config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return refuse("config", &error, exit::CONFIG),
    };
    if args.fragile {
        config.mode = Mode::Fragile;
    }
    announce_mode(&log, config.mode);
    announce_knobs(&log, config.knobs, false);
    let mut body = Vec::new();
    if let Err(error) = io::stdin().read_to_end(&mut body) {
        return refuse(
            "validation",
            &RequestError::Read(error),
            exit::INVALID_INPUT,
        );
    }
    let request = match parse_request(&body, config.max_prompt_chars) {
        Ok(request) => request,
        Err(error) => return refuse("validation", &error, exit::INVALID_INPUT),
    };
    let pipeline = match Pipeline::new(&config) {
        Ok(pipeline) => pipeline,
        Err(error) => return refuse("config", &error, exit::CONFIG),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            log.say(format_args!(
                "error: cannot start the async runtime: {error}"
            ));
            return exit::FAILED;
        }
    };
    let started = Instant::now();
    let result = runtime.block_on(pipeline.run(&request, Checkpoint::start(), &NoJournal, &log));
    log.say(format_args!(
        "run {} in {}",
        result.status.as_str(),
        human(started.elapsed())
    ));
    emit(&result);
    match result.status {
        Status::Completed | Status::Degraded => exit::OK,
        Status::Failed => exit::FAILED,
    }
}

/// Reports a run refused before it started: on stderr, and as the result document.
fn refuse(
    log: &Progress,
    mode: Mode,
    kind: &'static str,
    error: &dyn std::error::Error,
    code: u8,
) -> u8 {
    log.say(format_args!("error: {}", chain(error)));
    emit(&RunResult::refused(mode, kind, error));
    code
}

fn announce_mode(log: &Progress, mode: Mode) {
    if mode == Mode::Fragile {
        log.say(
            "fragile mode: no retries, circuit breaker, fallback provider, re-ask, \
             degradation or refinement after a failed execution",
        );
    }
}

/// Says which benchmark knobs are set, so that nobody mistakes a slowed or leaking refpipe
/// for the product.
fn announce_knobs(log: &Progress, knobs: Knobs, serve: bool) {
    if !knobs.work_delay.is_zero() {
        log.say(format_args!(
            "benchmark knob: REFPIPE_WORK_DELAY adds {} after each agent step",
            human(knobs.work_delay)
        ));
    }
    if let Some(bug) = knobs.planted_bug {
        log.say(format_args!(
            "benchmark knob: REFPIPE_PLANTED_BUG plants the `{}` parsing bug",
            bug.name()
        ));
    }
    if knobs.leak_bytes_per_run > 0 {
        let n = knobs.leak_bytes_per_run;
        if serve {
            log.say(format_args!(
                "benchmark knob: REFPIPE_LEAK_BYTES_PER_RUN leaks {n} bytes per finished run"
            ));
        } else {
            log.say(format_args!(
                "benchmark knob: REFPIPE_LEAK_BYTES_PER_RUN ({n} bytes) has no lasting \
                 effect in `run`, which does one run and exits"
            ));
        }
    }
}

fn emit(result: &RunResult) {
    let mut stdout = io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut stdout, result)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(stdout))
        .and_then(|()| stdout.flush());
    if let Err(error) = written {
        eprintln!("refpipe: error: cannot write the result to stdout: {error}");
    }
}

fn serve_forever(args: ServeArgs) -> u8 {
    let log = Progress::stderr();
    let mut config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            log.say(format_args!("error: {}", chain(&error)));
            return exit::CONFIG;
        }
    };
    if args.fragile {
        config.mode = Mode::Fragile;
    }
    announce_mode(&log, config.mode);
    announce_knobs(&log, config.knobs, true);
    let state_dir = match (args.state_dir.or(config.state_dir.take()), config.mode) {
        (Some(dir), Mode::Fragile) => {
            log.say(format_args!(
                "fragile mode: the state directory `{}` is not used; runs are kept in memory only",
                dir.display()
            ));
            None
        }
        (dir, _) => dir,
    };
    let pipeline = match Pipeline::new(&config) {
        Ok(pipeline) => pipeline,
        Err(error) => {
            log.say(format_args!("error: {}", chain(&error)));
            return exit::CONFIG;
        }
    };
    let state = match state_dir {
        Some(dir) => match Store::open(&dir, &log.scoped("state")) {
            Ok(opened) => Some(opened),
            Err(error) => {
                log.say(format_args!("error: {}", chain(&error)));
                return exit::CONFIG;
            }
        },
        None => None,
    };
    let options = ServeOptions {
        listen: args.listen,
        max_concurrent_runs: args.max_concurrent_runs as usize,
        api_token: config.api_token,
        max_prompt_chars: config.max_prompt_chars,
        state,
        leak_bytes_per_run: config.knobs.leak_bytes_per_run,
    };
    let served = tokio::runtime::Runtime::new()
        .map_err(crate::errors::ServeError::Serve)
        .and_then(|runtime| runtime.block_on(serve(options, pipeline, log.clone())));
    match served {
        Ok(()) => exit::OK,
        Err(error) => {
            log.say(format_args!("error: {}", chain(&error)));
            exit::FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults() {
        let cli = Cli::try_parse_from(["refpipe", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.listen.to_string(), "127.0.0.1:0");
        assert_eq!(args.max_concurrent_runs, 8);
        assert!(!args.fragile);
        assert_eq!(args.state_dir, None);
    }

    #[test]
    fn fragile_and_state_dir_flags() {
        let cli = Cli::try_parse_from(["refpipe", "run", "--fragile"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Run(RunArgs { fragile: true })
        ));
        let cli = Cli::try_parse_from(["refpipe", "serve", "--fragile", "--state-dir", "/tmp/s"])
            .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert!(args.fragile);
        assert_eq!(args.state_dir, Some(PathBuf::from("/tmp/s")));
    }

    #[test]
    fn help_documents_the_switches() {
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for needle in [
            "REFPIPE_FRAGILE",
            "REFPIPE_STATE_DIR",
            "--fragile",
            "--state-dir",
            "\"resumed\"",
            "resume_count",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
        let help = command
            .find_subcommand_mut("run")
            .unwrap()
            .render_long_help()
            .to_string();
        for needle in ["--fragile", "(fragile mode: no retries)", "\"mode\""] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
        for help in [
            help,
            command.render_long_help().to_string(),
            command
                .find_subcommand_mut("serve")
                .unwrap()
                .render_long_help()
                .to_string(),
        ] {
            for needle in [
                "Benchmark/test knobs (production runs leave them unset",
                "REFPIPE_WORK_DELAY",
                "REFPIPE_LEAK_BYTES_PER_RUN",
                "no lasting",
            ] {
                assert!(help.contains(needle), "{needle} missing from:\n{help}");
            }
        }
    }
}
