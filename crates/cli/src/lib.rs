//! The `ckpt` and `ckpt-run` command-line tools. This is the only crate of the workspace that
//! prints, exits or uses `anyhow`; the libraries it drives are `ckpt-bundle` (read and write
//! checkpoints), `ckpt-graph` (import `.meta` graphs) and `ckpt-runtime` (run them).
// `deny`, not `forbid`: the only unsafe code is the call of the AVX2 builds of `numeric`'s
// loops once the CPU is known to support AVX2.
#![deny(unsafe_code)]

use std::process::ExitCode;

pub mod commands;
pub mod convert;
pub mod copy;
pub mod npy;
pub mod npy_header;
pub mod numeric;
pub mod object_graph;
pub mod optimizer;
pub mod run;
pub mod saved_model;
pub mod summary;
pub mod tools;

/// Prints an error with its chain of causes, as `error: outer: inner`, and picks the exit code.
///
/// Every library error of the workspace prints what it wraps in its own message and returns
/// no `source()`, so each cause appears exactly once in the chain.
pub fn report_error(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::FAILURE
}
