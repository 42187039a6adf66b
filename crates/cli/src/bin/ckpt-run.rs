//! `ckpt-run`: run a TensorFlow graph restored from a checkpoint, without TensorFlow.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc reuses freed pages across runs and ops (see the cli crate's Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A closed stdout (`ckpt ... | head`) ends the process quietly by SIGPIPE, as other Unix
    // tools do, instead of a panic or an error line.
    sigpipe::reset();
    let args = ckpt_cli::run::RunArgs::parse();
    match ckpt_cli::run::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ckpt_cli::report_error(&error),
    }
}
