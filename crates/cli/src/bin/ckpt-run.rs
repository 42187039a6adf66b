//! `ckpt-run`: run a TensorFlow graph restored from a checkpoint, without TensorFlow.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = ckpt_cli::run::RunArgs::parse();
    match ckpt_cli::run::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ckpt_cli::report_error(&error),
    }
}
