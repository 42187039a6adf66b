//! `ckpt`: look inside, check, convert and edit TensorFlow checkpoints without TensorFlow.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A closed stdout (`ckpt ... | head`) ends the process quietly by SIGPIPE, as other Unix
    // tools do, instead of a panic or an error line.
    sigpipe::reset();
    let cli = ckpt_cli::commands::Cli::parse();
    match ckpt_cli::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ckpt_cli::report_error(&error),
    }
}
