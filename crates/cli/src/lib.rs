//! The `ckpt` and `ckpt-run` command-line tools. This is the only crate of the workspace that
//! prints, exits or uses `anyhow`; the libraries it drives are `ckpt-bundle` (read and write
//! checkpoints), `ckpt-graph` (import `.meta` graphs) and `ckpt-runtime` (run them).
#![forbid(unsafe_code)]

use std::process::ExitCode;

pub mod commands;
pub mod convert;
pub mod npy;
pub mod run;
pub mod summary;

/// Prints an error with its chain of causes, as `error: outer: inner`, and picks the exit code.
pub fn report_error(error: &anyhow::Error) -> ExitCode {
    let mut message = format!("error: {error}");
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        // Library errors often repeat their source's text; print each piece once.
        if !message.contains(&cause) {
            message.push_str(&format!(": {cause}"));
        }
    }
    eprintln!("{message}");
    ExitCode::FAILURE
}
