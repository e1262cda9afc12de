//! `cargo xtask test`: the test suite on any machine. Installs what the tests need beyond
//! Rust when it is missing (each step says what it does), then runs
//! `cargo test --workspace` with any extra arguments.

use std::process::{Command, ExitCode};

use harness::exit_codes;

#[derive(Debug, clap::Args)]
pub struct Test {
    /// Do not install anything; fail if a prerequisite is missing.
    #[arg(long)]
    no_install: bool,
    /// Passed on to `cargo test --workspace` (e.g. `-- --nocapture`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cargo_args: Vec<String>,
}

/// A prerequisite: how to tell it is there, and how to install it.
struct Prerequisite {
    what: &'static str,
    why: &'static str,
    check: &'static [&'static str],
    install: Install,
}

enum Install {
    /// Python packages (requirement specifiers separated by spaces), with pip.
    Pip(&'static str),
    /// A shell command.
    Shell(&'static str),
}

impl Install {
    fn argv(&self) -> Vec<&'static str> {
        match self {
            Install::Pip(specs) => [
                "python3",
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--root-user-action=ignore",
            ]
            .into_iter()
            .chain(specs.split_whitespace())
            .collect(),
            Install::Shell(script) => vec!["sh", "-c", script],
        }
    }
}

const PREREQUISITES: &[Prerequisite] = &[
    Prerequisite {
        what: "the `openai` Python package",
        why: "the stub-compatibility tests drive the LLM stub with the official SDK (chat, Responses, embeddings, Azure)",
        // the Responses API (client.responses) came in 1.66
        check: &["python3", "-c", "import openai.resources.responses"],
        install: Install::Pip("openai>=1.66,<4"),
    },
    Prerequisite {
        what: "the `anthropic` Python package",
        why: "the client-compatibility tests drive the LLM stub's Anthropic Messages API with it",
        check: &["python3", "-c", "import anthropic"],
        install: Install::Pip("anthropic>=0.40,<1"),
    },
    Prerequisite {
        what: "the `google-genai` Python package",
        why: "the client-compatibility tests drive the LLM stub's Gemini API with it",
        check: &["python3", "-c", "from google import genai"],
        install: Install::Pip("google-genai>=1,<2"),
    },
    Prerequisite {
        what: "the `langchain-openai` Python package",
        why: "the client-compatibility tests drive the LLM stub's Responses API with `use_responses_api=True`; the QA orchestrator example runs on it",
        check: &["python3", "-c", "import langchain_openai"],
        install: Install::Pip("langchain-openai>=0.3,<2"),
    },
    Prerequisite {
        what: "the `openai-agents` Python package",
        why: "the client-compatibility tests run an agent on its default (Responses) model against the LLM stub",
        check: &["python3", "-c", "import agents"],
        install: Install::Pip("openai-agents>=0.2,<1"),
    },
    Prerequisite {
        what: "the `openai` Node package (mocks/tests/node, from its package-lock.json)",
        why: "the client-compatibility tests drive the LLM stub with the official Node SDK",
        check: &[
            "sh",
            "-c",
            "command -v node && test -d mocks/tests/node/node_modules/openai",
        ],
        install: Install::Shell(
            "command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm); cd mocks/tests/node && npm ci --no-audit --no-fund",
        ),
    },
    Prerequisite {
        what: "the `junitparser` Python package",
        why: "an independent JUnit consumer reads junit.xml back",
        // 3.x drops <flakyFailure> when reading, so the test needs 4 or newer.
        check: &[
            "python3",
            "-c",
            "import importlib.metadata as m, sys; sys.exit(int(m.version('junitparser').split('.')[0]) < 4)",
        ],
        install: Install::Pip("junitparser>=4,<6"),
    },
    Prerequisite {
        what: "the `pytest` and `pytest-httpserver` Python packages",
        why: "`cargo xtask bench python` times the Python example's checks as a pytest suite",
        check: &["python3", "-c", "import pytest, pytest_httpserver"],
        install: Install::Pip("pytest>=8,<10 pytest-httpserver>=1.1,<2"),
    },
    Prerequisite {
        what: "Chromium and xmllint (Debian packages `chromium`, `libxml2-utils`)",
        why: "report.html is rendered in headless Chromium; junit.xml is validated against an XSD",
        check: &["sh", "-c", "command -v chromium && command -v xmllint"],
        install: Install::Shell(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libxml2-utils",
        ),
    },
    Prerequisite {
        what: "the `setproctitle` Python package",
        why: "`cargo xtask examples` runs the web-test generator example, whose agents name their processes (`webtestgen agent NAME`), which is how a scenario aims a kill at one of them",
        check: &["python3", "-c", "import setproctitle"],
        install: Install::Pip("setproctitle>=1.3,<2"),
    },
    Prerequisite {
        what: "redis-server (Debian package `redis-server`) and the `redis` Python package",
        why: "`[[service]]` scenarios start a real redis-server per scenario; the workflow platform's results store and the web-test generator's message bus run on it",
        check: &[
            "sh",
            "-c",
            "command -v redis-server && command -v redis-cli && python3 -c 'import redis'",
        ],
        install: Install::Shell(
            "(command -v redis-server >/dev/null || (apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server)) && python3 -m pip install -q 'redis>=5,<7'",
        ),
    },
    Prerequisite {
        what: "the `langchain-anthropic` Python package",
        why: "`cargo xtask examples` runs the QA orchestrator example, built on it",
        check: &["python3", "-c", "import langchain_anthropic"],
        install: Install::Pip("langchain-anthropic>=0.3,<2"),
    },
];

impl Test {
    pub fn run(self) -> ExitCode {
        // the prerequisites name paths in the workspace (mocks/tests/node)
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(std::path::Path::new("."));
        if let Err(e) = std::env::set_current_dir(root) {
            eprintln!(
                "error: cannot enter the workspace root `{}`: {e}",
                root.display()
            );
            return ExitCode::from(exit_codes::HARNESS_ERROR);
        }
        for p in PREREQUISITES {
            if succeeds(p.check, true) {
                continue;
            }
            let install = p.install.argv();
            if self.no_install {
                eprintln!(
                    "error: {} is missing ({}); install it with `{}`",
                    p.what,
                    p.why,
                    install.join(" ")
                );
                return ExitCode::from(exit_codes::INVALID_INPUT);
            }
            eprintln!("  Installing {} ({}): {}", p.what, p.why, install.join(" "));
            if !succeeds(&install, false) || !succeeds(p.check, true) {
                eprintln!(
                    "error: could not install {}; run `{}` yourself",
                    p.what,
                    install.join(" ")
                );
                return ExitCode::from(exit_codes::HARNESS_ERROR);
            }
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        match Command::new(cargo)
            .args(["test", "--workspace"])
            .args(&self.cargo_args)
            .status()
        {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: cannot run cargo: {e}");
                ExitCode::from(exit_codes::HARNESS_ERROR)
            }
        }
    }
}

/// Runs `argv`; `quiet` hides its output (for checks; installs show theirs).
fn succeeds(argv: &[&str], quiet: bool) -> bool {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    if quiet {
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    }
    cmd.status().is_ok_and(|s| s.success())
}
