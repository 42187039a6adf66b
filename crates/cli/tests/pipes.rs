//! A reader that closes stdout early (`ckpt show --full ... | head -1`) ends `ckpt` and
//! `ckpt-run` quietly by SIGPIPE, as `cat` or `ls` end: no panic ("failed printing to stdout"),
//! no error line, and the shell's conventional status 141 (128 + SIGPIPE).

#[allow(dead_code)]
mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};
use common::fixture;

/// SIGPIPE's number on Linux.
const SIGPIPE: i32 = 13;

/// Runs `program args` with its stdout a pipe whose reading end is closed at once (so its
/// first write fails, however small the output), then checks that the process was ended by
/// SIGPIPE with nothing on stderr.
fn ends_quietly_on_closed_pipe(program: &str, args: &[&str]) -> Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    drop(child.stdout.take().context("no stdout")?);
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.signal() == Some(SIGPIPE),
        "{program} {args:?} should end by SIGPIPE, got {:?}\nstderr: {stderr}",
        output.status
    );
    ensure!(
        stderr.is_empty(),
        "{program} {args:?} printed on stderr: {stderr}"
    );
    Ok(())
}

#[test]
fn show_full_into_a_closed_pipe_ends_quietly() -> Result<()> {
    let bert = fixture("bert");
    let name = "bert/embeddings/word_embeddings";
    ends_quietly_on_closed_pipe(
        env!("CARGO_BIN_EXE_ckpt"),
        &["show", bert.to_str().context("path")?, name, "--full"],
    )
}

#[test]
fn ls_of_many_tensors_into_a_closed_pipe_ends_quietly() -> Result<()> {
    let many = fixture("many");
    ends_quietly_on_closed_pipe(
        env!("CARGO_BIN_EXE_ckpt"),
        &["ls", many.to_str().context("path")?],
    )
}

#[test]
fn ckpt_run_describe_into_a_closed_pipe_ends_quietly() -> Result<()> {
    let bert = fixture("bert");
    ends_quietly_on_closed_pipe(
        env!("CARGO_BIN_EXE_ckpt-run"),
        &["--describe", bert.to_str().context("path")?],
    )
}

#[test]
fn ckpt_run_output_into_a_closed_pipe_ends_quietly() -> Result<()> {
    let mlp = fixture("mlp");
    let x = mlp.join("x.npy");
    ends_quietly_on_closed_pipe(
        env!("CARGO_BIN_EXE_ckpt-run"),
        &[
            mlp.to_str().context("path")?,
            "--feed",
            &format!("x={}", x.display()),
            "--feed",
            "keep_prob=1.0",
            "--fetch",
            "logits",
        ],
    )
}
