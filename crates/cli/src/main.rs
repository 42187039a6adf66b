//! `ckpt`: look inside, check, convert and edit TensorFlow checkpoints without TensorFlow.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc reuses freed pages across runs and ops (see the cli crate's Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A closed stdout (`ckpt ... | head`) ends the process quietly by SIGPIPE, as other Unix
    // tools do, instead of a panic or an error line.
    sigpipe::reset();
    let cli = ckpt_cli::commands::Cli::parse();
    // `diff` exits 1 when the checkpoints differ, so its errors exit 2, as diff(1)'s do.
    let is_diff = matches!(cli.command, ckpt_cli::commands::Command::Diff { .. });
    match ckpt_cli::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            let code = ckpt_cli::report_error(&error);
            if is_diff {
                ExitCode::from(2)
            } else {
                code
            }
        }
    }
}
