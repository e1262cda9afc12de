//! refpipe: the reference multi-agent pipeline.
//!
//! A planner, a coder and a critic talk to an OpenAI-compatible chat-completions API; an
//! executor runs the code. refpipe is agent-harness's default system under test, written
//! like a product: it knows nothing of the harness. The entry point is [`Cli`], parsed
//! by the `refpipe` binary; everything else is internal.
//!
//! # Flow
//!
//! The planner is asked once for subtasks. Then, in a loop: the coder writes a program,
//! the executor runs it. A failed execution goes back to the coder with the executor's
//! errors while the refinement budget (`max_iterations`) lasts, and fails the run with
//! `executor_failed` once it is spent. A successful one goes to the critic; while it asks
//! for refinement and the budget lasts, its issues go back to the coder. Otherwise the run
//! completes, with the critic's last verdict even if it still wanted refinement.
//!
//! # Modes
//!
//! - `refpipe run [--fragile]` reads one request from stdin and writes exactly one JSON
//!   result document to stdout, also on failure; progress lines (`refpipe: planner:
//!   calling http://…`) go to stderr.
//! - `refpipe serve [--listen ADDR] [--max-concurrent-runs N] [--fragile] [--state-dir DIR]`
//!   (default `127.0.0.1:0`, 8, resilient, in memory) prints `listening on
//!   http://127.0.0.1:PORT` as its first stdout line, then serves `POST /runs` (202
//!   `{"id"}`; 400 with the result document if invalid; 503 `{"error": {"kind":
//!   "storage", "message"}}` if the run cannot be saved in the state directory),
//!   `GET /runs/{id}` (`{"id", "state": "queued"|"running"|"done", "result": doc|null,
//!   "resumed": bool, "resume_count": n}`; 404 if unknown) and `GET /health`
//!   (`{"status": "ok"}`). With `REFPIPE_API_TOKEN` set, `/runs` routes need
//!   `Authorization: Bearer <token>` (else 401 with `{"error": {"kind": "unauthorized",
//!   "message"}}`). Stops cleanly (exit code 0) on SIGINT/SIGTERM.
//!
//! # Fragile mode
//!
//! `REFPIPE_FRAGILE=1` or `--fragile` (on `run` and `serve`) turns the resilience off, so
//! that a chaos suite can prove its scenarios bite: each must pass against refpipe and fail
//! against fragile refpipe. In fragile mode there are no retries (the first failure is
//! final; `Retry-After` is ignored), no circuit breaker, no fallback provider, no re-ask of
//! a malformed reply; a failed critic fails the run instead of degrading it; a failed
//! execution fails the run (`executor_failed`) instead of going back to the coder; and
//! `serve` keeps runs in memory only (the state directory is not used). The flow itself
//! (planner, coder, executor, the critic's refinement loop, timeouts, validation) is
//! unchanged, so a run without faults still completes.
//!
//! A failure that resilient mode would have handled ends its `error.message` with
//! `(fragile mode: …)`, naming each piece of resilience that was missing: `no retries`,
//! `Retry-After ignored`, `no fallback provider`, `no re-ask of a malformed reply`,
//! `a critic failure fails the run instead of degrading it`, `a failed execution is not fed
//! back to the coder`. For example, a planner answered with a 429:
//!
//! ```text
//! planner agent's LLM call failed: primary provider failed: HTTP 429 Too Many Requests
//! from `http://…/chat/completions`: slow down (fragile mode: no retries, Retry-After ignored)
//! ```
//!
//! `error.kind` and `error.agent` are those of the failure itself (`llm_error`, `planner`
//! here). A failure that resilience would not have helped either (a 404, a reply still
//! malformed after the re-ask, a spent refinement budget) reads as it does in resilient
//! mode. The result document says which mode ran in `mode`. In `serve`, a 404 for an
//! unknown run says `(fragile mode: runs are kept in memory only, …)`.
//!
//! # Persistent serve state
//!
//! With `REFPIPE_STATE_DIR=<dir>` or `--state-dir <dir>` (the flag wins; created if missing;
//! an unusable one is a configuration error, exit code 3), `serve` saves every run in
//! `<dir>/run-N.json` as it progresses: the request, the state, a checkpoint after each
//! finished step (the plan, the code, the execution, the critic's verdict, the iteration
//! and attempt counters, the LLM request counts and usage, and the step to take next), and
//! the result document once done. Each save writes a temporary file, fsyncs it, renames it
//! over the old one and fsyncs the directory, so a crash never leaves half a file.
//!
//! At start, `serve` reads the directory back: finished runs are served as they were; runs
//! that were queued or running when the last process stopped (SIGTERM, SIGKILL, a crash)
//! are resumed at the step after their last finished one, without repeating the LLM calls
//! of the steps before it, and run to the end. `GET /runs/{id}` reports `"resumed": true`
//! and `resume_count`, the number of takeovers. The result's counters and usage cover the
//! finished steps; a call that was in flight when the process stopped is made again, and
//! counted once. Run ids are never reused across restarts.
//! A file that is not a run record (half-written by something else, not JSON, another
//! format) is reported on stderr and skipped. A save that fails later (a full disk) is
//! reported on stderr and the run goes on in memory. One process per state directory.
//!
//! # Request
//!
//! `{"prompt": string, "max_iterations": int = 3, "stream": bool = false,
//! "language": string = "python"}`; unknown fields are ignored. Refused (exit code 2,
//! `error.kind` `validation`): a body that is not JSON or not of this shape, a prompt that
//! is empty or whitespace, a prompt longer than `REFPIPE_MAX_PROMPT_CHARS` characters, an
//! empty language.
//!
//! # Exit codes
//!
//! | Code | Meaning                                                                        |
//! |------|--------------------------------------------------------------------------------|
//! | 0    | status `completed` or `degraded`                                               |
//! | 1    | status `failed` at runtime (`serve`: could not listen)                          |
//! | 2    | invalid input: the request (`error.kind` `validation`) or the command line     |
//! | 3    | configuration error (`error.kind` `config`; `serve` reports it on stderr only) |
//!
//! # Environment
//!
//! Read once at start. An empty value counts as unset. An invalid value is a configuration
//! error naming the variable and the value (secrets are shown as `<redacted>`).
//!
//! | Variable                      | Default       | Meaning                                        |
//! |-------------------------------|---------------|------------------------------------------------|
//! | `OPENAI_BASE_URL`             | required      | e.g. `http://127.0.0.1:8080/v1`; requests go to `{base}/chat/completions`; `http://` only (no TLS in this build) |
//! | `OPENAI_API_KEY`              | required      | sent as `Authorization: Bearer`                |
//! | `REFPIPE_FALLBACK_BASE_URL`   | none          | fallback provider, same API                    |
//! | `REFPIPE_FALLBACK_API_KEY`    | `OPENAI_API_KEY` | the fallback's key                          |
//! | `REFPIPE_MODEL`               | `gpt-4o-mini` | `model` of every request                       |
//! | `EXECUTOR_URL`                | required      | code goes to `POST {EXECUTOR_URL}/execute`     |
//! | `REFPIPE_LLM_TIMEOUT`         | `30s`         | per HTTP attempt, connect to last byte          |
//! | `REFPIPE_EXECUTOR_TIMEOUT`    | `60s`         | per executor attempt                           |
//! | `REFPIPE_BACKOFF_BASE`        | `200ms`       | backoff before the first retry                 |
//! | `REFPIPE_BACKOFF_MAX`         | `5s`          | cap of the backoff                             |
//! | `REFPIPE_BREAKER_COOLDOWN`    | `30s`         | how long an open breaker fails fast            |
//! | `REFPIPE_MAX_RETRIES`         | `3`           | retries after the first attempt                |
//! | `REFPIPE_BREAKER_THRESHOLD`   | `5`           | consecutive failed attempts that open a breaker (≥ 1) |
//! | `REFPIPE_MAX_PROMPT_CHARS`    | `8000`        | longest prompt, in characters (≥ 1)            |
//! | `REFPIPE_PRICE_INPUT_PER_1K`  | `0.00015`     | USD per 1000 prompt tokens                     |
//! | `REFPIPE_PRICE_OUTPUT_PER_1K` | `0.0006`      | USD per 1000 completion tokens                 |
//! | `REFPIPE_SEED`                | from the OS   | seeds retry jitter                             |
//! | `REFPIPE_API_TOKEN`           | none          | `serve`: bearer token required on `/runs`      |
//! | `REFPIPE_FRAGILE`             | `0`           | `1` (or `true`, `yes`, `on`) for fragile mode, like `--fragile` |
//! | `REFPIPE_STATE_DIR`           | none          | `serve`: persist runs here, like `--state-dir`  |
//! | `REFPIPE_WORK_DELAY`          | `0s`          | benchmark/test knob: time spent after each agent step (see below) |
//! | `REFPIPE_LEAK_BYTES_PER_RUN`  | `0`           | benchmark/test knob, `serve`: bytes each finished run leaks (see below) |
//! | `REFPIPE_PLANTED_BUG`         | none          | benchmark/test knob: a known parsing bug to plant (see below) |
//!
//! Durations are humantime strings (`30s`, `200ms`); timeouts must be above zero.
//!
//! # Benchmark/test knobs
//!
//! Three variables make refpipe slower, leakier or buggier by a known amount, injected from
//! outside, so that a harness can show that its baseline comparison catches a real
//! slowdown, its memory sampling a real leak and its adversarial replies a real parsing
//! bug. Production runs leave them unset, which is off. Set, each is announced on stderr at start (`refpipe: benchmark knob: …`). An
//! invalid value is a configuration error like any other (exit code 3).
//!
//! - `REFPIPE_WORK_DELAY` (a humantime duration, `0s` allowed): after each agent step (the
//!   planner's answer, the coder's, each executor call, the critic's, re-asks and retries
//!   included in their step), whether the step succeeded or not, refpipe spends this long
//!   before going on, modelling the pipeline's own processing of the answer. It is a timer
//!   wait, so in `serve` concurrent runs are not held up by each other's delay. In `run`
//!   and `serve`, resilient and fragile. A run of planner, coder, executor and critic thus
//!   takes at least 4 × the delay longer; each refinement adds 2 (coder, executor) or 3
//!   (with the critic) more.
//! - `REFPIPE_LEAK_BYTES_PER_RUN` (a non-negative integer of bytes, at most `isize::MAX`):
//!   in `serve`, every run that finishes (whatever its status; resumed runs too; not a
//!   request refused with 400) keeps a block of that many bytes for the rest of the
//!   process's life. The bytes are written with non-zero data before the run shows as
//!   `done`, so the process's resident memory (`VmRSS`) really grows by about that much per
//!   run; a block the system cannot provide aborts the process, as any failed allocation
//!   does. In `run` it is checked but has no lasting effect: the process does one run and
//!   exits, so nothing is retained.
//! - `REFPIPE_PLANTED_BUG` (`unchecked-plan` or `critic-text-match`): plants one parsing
//!   bug of the kind pipelines ship, in `run` and `serve`, resilient and fragile.
//!   `unchecked-plan`: before validating the planner's reply, refpipe logs its number of
//!   subtasks by indexing the parsed JSON unchecked, so a reply that is JSON without a list
//!   at `subtasks` (`{}`, `null`, `{"subtasks": 1}`) panics the process: exit code 101, no
//!   result document. `critic-text-match`: the critic's `needs_refinement` is read by
//!   looking for the text `"needs_refinement":true` in its reply, so the same verdict
//!   written with a space or a newline is taken as approval and the run completes without
//!   the refinement asked for; nothing crashes, only the outcome differs.
//!
//! # LLM requests
//!
//! `POST {base}/chat/completions` with `X-Agent-Role: <role>` (`planner`, `coder`,
//! `critic`) and body `{"model", "messages": [{"role": "system", "content": "You are the
//! <role> agent. …"}, {"role": "user", …}], "response_format": {"type": "json_object"}}`.
//! The coder's request adds `"tools"` with one function, `write_code` (`code`, `language`).
//! With `"stream": true` in the run request, every LLM request adds `"stream": true,
//! "stream_options": {"include_usage": true}` and the response is read incrementally as
//! server-sent events (a `application/json` response is accepted too); a stream that ends
//! before `data: [DONE]` is retried like a connection error.
//!
//! An agent's payload is the JSON object in `choices[0].message.content`, or, if the
//! message has tool calls, the first one's `function.arguments`, after surrounding
//! whitespace and a Markdown code fence around it (```` ```json ```` … ```` ``` ````, with
//! or without a language) are taken off:
//!
//! - planner: `{"subtasks": [string, …]}`, not empty;
//! - coder: `{"code": string, "language"?: string}`, code not blank; the language, if
//!   given, replaces the requested one;
//! - critic: `{"score": number, "needs_refinement": bool, "issues"?: [string]}`.
//!
//! A malformed payload is re-asked once, with the bad reply and what is wrong with it
//! appended; malformed again, the run fails with `malformed_llm_output` (the critic too).
//! In fragile mode the first malformed payload fails the run.
//! The `usage` of every response is summed; `cost_usd` prices it.
//!
//! # Resilience
//!
//! - Retries on 429, 5xx, connection errors, timeouts and broken streams, up to
//!   `REFPIPE_MAX_RETRIES`; the wait before retry `n` (from 0) is
//!   `min(max, base × 2^n)` with equal jitter (half fixed, half random), and at least the
//!   response's `Retry-After` (whole or fractional seconds). Other 4xx fail at once with
//!   `llm_error`, whose message carries the status and the body's `error.message`.
//! - A circuit breaker per provider opens after `REFPIPE_BREAKER_THRESHOLD` consecutive
//!   failed attempts, fails fast for `REFPIPE_BREAKER_COOLDOWN`, then lets one trial through.
//! - When the primary provider fails after its retries, or its breaker is open, the same
//!   request goes to the fallback provider, with its own retries and breaker. A refusal
//!   (non-retryable 4xx) is not sent to the fallback.
//! - The critic is optional: if its call fails for any reason but a malformed payload,
//!   the run ends `degraded`, with `degraded_reason`, `critic: null` and exit code 0.
//! - The executor is retried like the LLM (429, 5xx, connection errors, timeouts), without
//!   a breaker; after that the run fails with `executor_error`.
//! - All of this is off in fragile mode (see above).
//!
//! # Result document
//!
//! Every key is always present, `null` where unknown:
//!
//! ```json
//! {"status": "completed" | "degraded" | "failed", "mode": "resilient" | "fragile",
//!  "subtasks": [string], "code": string | null, "language": string | null,
//!  "execution": {"success", "artifacts", "logs", "errors"} | null,
//!  "critic": {"score", "needs_refinement", "issues"} | null,
//!  "refinement_iterations": n, "execution_attempts": n,
//!  "llm_requests": {"planner": n, "coder": n, "critic": n},
//!  "provider_calls": {"primary": n, "fallback": n},
//!  "usage": {"prompt_tokens", "completion_tokens", "total_tokens"},
//!  "cost_usd": f, "degraded_reason": string | null,
//!  "error": {"kind", "message", "agent"?} | null}
//! ```
//!
//! `llm_requests` and `provider_calls` count HTTP attempts, retries and re-asks included;
//! `execution_attempts` counts programs sent to the executor (the `attempt` field of its
//! request). `error.kind` is `validation`, `config`, `llm_error`, `malformed_llm_output`,
//! `executor_error` (the executor could not be reached or answered badly) or
//! `executor_failed` (the program failed and the budget is spent, or, in fragile mode, it
//! failed at all); `error.agent` names
//! `planner`, `coder`, `critic` or `executor` for runtime failures and is absent otherwise.

mod agents;
mod cli;
mod config;
mod errors;
mod executor;
mod flow;
mod http;
mod llm;
mod output;
mod progress;
mod request;
mod retry;
mod serve;
mod sse;
mod store;

pub use cli::Cli;
