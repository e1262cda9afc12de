//! `benchkit`: the processes `cargo xtask bench` measures and measures with. Built in
//! release, run as separate processes, loopback only:
//!
//! - `benchkit llm-stub`: the real [`mocks::LlmStub`] with one realistic rule (a critic's
//!   verdict, the agent recognised as refpipe sends it);
//! - `benchkit floor --body FILE`: a minimal hyper server answering every request with the
//!   same bytes: what HTTP on loopback costs with no stub logic at all;
//! - `benchkit fetch --url URL --out FILE`: one request, as the load client sends it; the
//!   response body to a file (to give WireMock and the floor the stub's exact bytes);
//! - `benchkit bare --refpipe PATH`: refpipe runs against one stub, no harness (the floor
//!   of scenarios per second);
//! - `benchkit load …`: the load client: keep-alive connections, closed loop, for a time or
//!   a number of requests, its report as one JSON document on stdout.
//!
//! The servers print `url URL` on stdout once they answer, and serve until their stdin
//! closes (so they end with the process that started them, even if it is killed) or they
//! get SIGTERM.

mod bare;
mod load;
mod proc_stat;
mod servers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "benchkit")]
enum Command {
    /// Serve the real LLM stub with one realistic rule until stdin closes.
    LlmStub(servers::LlmStubArgs),
    /// Serve FILE's bytes to every request (the floor: HTTP on loopback, no stub logic).
    Floor {
        /// The response body.
        #[arg(long)]
        body: PathBuf,
        /// The response body to a request with `"stream":true` (an SSE body), sent as
        /// `text/event-stream`; without it, every request gets --body.
        #[arg(long)]
        stream_body: Option<PathBuf>,
        /// Threads, each with an accept loop on the one socket (as the LLM stub serves).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Send one request, as the load client does, and write the response body to a file.
    Fetch {
        #[arg(long)]
        url: String,
        #[arg(long)]
        out: PathBuf,
        /// Ask for the streamed reply, as `load --stream` does.
        #[arg(long)]
        stream: bool,
    },
    /// Drive one or more servers with keep-alive connections in a closed loop.
    Load(load::LoadArgs),
    /// The bare-target floor: `refpipe run` against one LLM stub and one executor stub,
    /// --jobs at a time, no harness; prints runs, completed and seconds as JSON.
    Bare(bare::BareArgs),
}

fn main() -> ExitCode {
    let result = match Command::parse() {
        Command::LlmStub(args) => servers::llm_stub(&args),
        Command::Floor {
            body,
            stream_body,
            threads,
        } => servers::floor(&body, stream_body.as_deref(), threads),
        Command::Fetch { url, out, stream } => load::fetch(&url, &out, stream),
        Command::Load(args) => load::run(&args),
        Command::Bare(args) => bare::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchkit: error: {e}");
            ExitCode::FAILURE
        }
    }
}
