//! `harness stubs SCENARIO`: start a scenario's stubs and serve until interrupted.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::console::render_load_error;
use crate::errors::error_chain;
use crate::exit_codes;
use crate::plan::{Selection, plan};
use crate::stubs::ScenarioStubs;

pub fn execute(args: &StubsArgs) -> ExitCode {
    let selection = Selection {
        paths: vec![args.scenario.clone()],
        filter: args.filter.clone(),
        ..Selection::default()
    };
    let planned = match plan(&selection, args.seed) {
        Ok(mut p) if p.scenarios.len() == 1 => p.scenarios.remove(0),
        Ok(p) if p.scenarios.len() > 1 => {
            let ids: Vec<String> = p
                .scenarios
                .iter()
                .map(|s| format!("`{}`", s.scenario.id))
                .collect();
            eprintln!(
                "error: `{}` makes {} scenarios: {} (hint: pick one with `--filter`, e.g. `--filter '[{}]'`)",
                args.scenario.display(),
                ids.len(),
                ids.join(", "),
                p.scenarios[0].scenario.id.case().unwrap_or_default()
            );
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
        Ok(_) => {
            eprintln!(
                "error: `{}` is not one scenario file",
                args.scenario.display()
            );
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{}\n", render_load_error(e));
            }
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
    };
    let runtime = match crate::run_cmd::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let interrupt = crate::run_cmd::interrupt_signal();
        let stubs = match ScenarioStubs::start(&planned.scenario, &planned.target, args.seed).await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {}", error_chain(&e));
                return ExitCode::from(exit_codes::HARNESS_ERROR);
            }
        };
        println!("llm: {}", stubs.llm.base_url("primary"));
        for (name, url) in stubs.executor_urls() {
            println!("executor.{name}: {url}");
        }
        // for the clients that add the API version themselves (Anthropic, Gemini, Azure)
        println!("llm_root: {}", stubs.llm.uri());
        eprintln!(
            "serving the stubs of `{}`; Ctrl-C stops them",
            planned.scenario.id
        );
        // The URLs are for other programs to read: make sure they are out now.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        interrupt.await;
        for e in stubs.journal() {
            eprintln!(
                "{} {} {} {} → {}",
                e.source, e.method, e.path, e.summary, e.served
            );
        }
        ExitCode::from(exit_codes::OK)
    })
}

/// `harness stubs`: which scenario's stubs, with which seed.
#[derive(Debug, Clone, Args)]
pub struct StubsArgs {
    /// The scenario whose stubs to start.
    pub scenario: PathBuf,
    /// The seed for the stubs' fault schedules.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// For a file with a `[matrix]`: the case whose id contains this (e.g. `size=5`).
    #[arg(long)]
    pub filter: Option<String>,
}
