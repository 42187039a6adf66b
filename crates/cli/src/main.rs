//! `ckpt`: look inside, check, convert and edit TensorFlow checkpoints without TensorFlow.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ckpt_cli::commands::Cli::parse();
    match ckpt_cli::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ckpt_cli::report_error(&error),
    }
}
