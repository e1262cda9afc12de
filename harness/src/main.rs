//! `harness`: see `harness --help`.

fn main() -> std::process::ExitCode {
    harness::cli::main_with(std::env::args_os())
}
