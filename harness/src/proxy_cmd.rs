//! `harness proxy`: the TCP fault proxy on its own, in front of any loopback service, so a
//! user can put faults between their pipeline and a dependency by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use chaos::proxy::{FaultProxy, ProxyConfig, ProxyConfigError, ProxyError, Toxic, Upstream};
use clap::Args;
use serde::Deserialize;

use crate::errors::error_chain;
use crate::exit_codes;

#[derive(Debug, Clone, Args)]
pub struct ProxyArgs {
    /// The service to forward to, `host:port` (loopback only).
    #[arg(long)]
    pub upstream: String,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// A TOML file of `[[toxic]]` tables, in the shape scenario files use for `toxics`.
    #[arg(long)]
    pub toxics: Option<PathBuf>,
    /// The seed for per-connection toxicity draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToxicsFile {
    #[serde(default)]
    toxic: Vec<Toxic>,
}

pub fn execute(args: &ProxyArgs) -> ExitCode {
    let toxics = match &args.toxics {
        None => Vec::new(),
        Some(path) => {
            let source = match std::fs::read_to_string(path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: cannot read `{}`: {e}", path.display());
                    return ExitCode::from(exit_codes::INVALID_INPUT);
                }
            };
            match toml::from_str::<ToxicsFile>(&source) {
                Ok(f) => f.toxic,
                Err(e) => {
                    let shown = path.display().to_string();
                    eprintln!(
                        "{}",
                        crate::diagnostic::Diagnostic::from_toml(&shown, &source, &e).render()
                    );
                    return ExitCode::from(exit_codes::INVALID_INPUT);
                }
            }
        }
    };
    let upstream: Upstream = match args.upstream.parse() {
        Ok(u) => u,
        Err(e) => {
            eprintln!(
                "error: `--upstream {}` is not host:port: {e}",
                args.upstream
            );
            return ExitCode::from(exit_codes::INVALID_INPUT);
        }
    };
    let mut config = ProxyConfig::new(upstream);
    config.name = "proxy".into();
    config.listen = args.listen;
    config.toxics = toxics;
    if let Err(e) = config.validate() {
        eprintln!("error: {}", config_error(&e));
        return ExitCode::from(exit_codes::INVALID_INPUT);
    }
    let runtime = match crate::run_cmd::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let interrupt = crate::run_cmd::interrupt_signal();
        let proxy = match FaultProxy::start(config, args.seed).await {
            Ok(p) => p,
            Err(ProxyError::Config { source, .. }) => {
                eprintln!("error: {}", config_error(&source));
                return ExitCode::from(exit_codes::INVALID_INPUT);
            }
            Err(e) => {
                eprintln!("error: {}", error_chain(&e));
                return ExitCode::from(exit_codes::INVALID_INPUT);
            }
        };
        println!("proxy: {} -> {}", proxy.local_addr(), args.upstream);
        let _ = std::io::Write::flush(&mut std::io::stdout());
        for t in proxy.toxics() {
            eprintln!("  toxic {}", t.label());
        }
        eprintln!("serving until Ctrl-C");
        interrupt.await;
        for event in proxy.shutdown().await {
            eprintln!("{event}");
        }
        ExitCode::from(exit_codes::OK)
    })
}

/// A config error in the words of this command's flags: the library's hints name the
/// scenario file's `allow_non_loopback`, which `harness proxy` does not have (it stays on
/// loopback).
fn config_error(e: &ProxyConfigError) -> String {
    match e {
        ProxyConfigError::NonLoopbackListen { addr } => format!(
            "`--listen {addr}` is not a loopback address, and `harness proxy` listens on loopback only (hint: `--listen 127.0.0.1:0`, or a port of your choice on 127.0.0.1)"
        ),
        ProxyConfigError::NonLoopbackUpstream { upstream, addr } => format!(
            "`--upstream {upstream}` is `{addr}`, not a loopback address, and `harness proxy` forwards to loopback only (hint: start the service on 127.0.0.1 and give its port)"
        ),
        other => error_chain(other),
    }
}
