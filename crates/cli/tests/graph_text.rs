//! `ckpt-run` on text graphs (an Estimator's `graph.pbtxt`, `--checkpoint`) and on graphs written
//! before TensorFlow 1.0, against TensorFlow 2.21's outputs (fixtures `estimator`, `tf0_lenet`).

#[allow(dead_code)]
mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use ckpt_cli::npy::{read_npy, NpyArray};
use common::{ckpt, fixture, Run};

/// Runs the `ckpt-run` binary.
fn ckpt_run<I, S>(args: I) -> Result<Run>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_ckpt-run"))
        .args(&args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .context("cannot run ckpt-run")?;
    Ok(Run {
        args: args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}

fn npy(path: &Path) -> Result<NpyArray<'static>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    read_npy(&bytes, &path.display().to_string()).map(NpyArray::into_owned)
}

/// Each `name.npy` in `out` against TensorFlow's in `fixture`: integers exactly, float32
/// within 1e-5 relative (plus 1e-6 absolute), as the library's fixture tests compare.
fn assert_matches_tensorflow(out: &Path, fixture: &Path, names: &[&str]) -> Result<()> {
    for name in names {
        let got = npy(&out.join(format!("{name}.npy")))?;
        let want = npy(&fixture.join(format!("{name}.npy")))?;
        ensure!(
            got.descr == want.descr && got.shape == want.shape,
            "{name}: {} {:?}, TensorFlow has {} {:?}",
            got.descr,
            got.shape,
            want.descr,
            want.shape
        );
        if got.descr == "<f4" {
            let floats = |a: &NpyArray<'_>| -> Vec<f32> {
                a.data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            for (i, (g, w)) in floats(&got).iter().zip(floats(&want)).enumerate() {
                ensure!(
                    (g - w).abs() <= 1e-5 * w.abs() + 1e-6,
                    "{name}: element {i} is {g}, TensorFlow has {w}"
                );
            }
        } else {
            ensure!(
                got.data == want.data,
                "{name}: values differ from TensorFlow's"
            );
        }
    }
    Ok(())
}

fn feed_x(dir: &Path) -> String {
    format!("x={}", dir.join("x.npy").display())
}

#[test]
fn estimator_model_dir_runs_from_its_graph_pbtxt() -> Result<()> {
    let dir = fixture("estimator");
    let out = tempfile::tempdir()?;
    let run = ckpt([
        "run".as_ref(),
        dir.as_os_str(),
        "--feed".as_ref(),
        feed_x(&dir).as_ref(),
        "--fetch".as_ref(),
        "logits,probs,pred".as_ref(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ])?
    .success()?;
    // The `checkpoint` file names model.ckpt-30, which has no .meta: graph.pbtxt is used, and
    // the user is told so.
    let note = format!(
        "no {}; using the graph in {}\n",
        dir.join("model.ckpt-30.meta").display(),
        dir.join("graph.pbtxt").display()
    );
    ensure!(run.stderr.starts_with(&note), "stderr: {:?}", run.stderr);
    assert_matches_tensorflow(out.path(), &dir, &["logits", "probs", "pred"])
}

#[test]
fn text_graph_with_checkpoint_option_in_every_form() -> Result<()> {
    let dir = fixture("estimator");
    let want = npy(&dir.join("pred.npy"))?;
    for checkpoint in [
        dir.clone(),
        dir.join("model.ckpt-30"),
        dir.join("model.ckpt-30.index"),
    ] {
        let out = tempfile::tempdir()?;
        ckpt_run([
            dir.join("graph.pbtxt").as_os_str(),
            "--checkpoint".as_ref(),
            checkpoint.as_os_str(),
            "--feed".as_ref(),
            feed_x(&dir).as_ref(),
            "--fetch".as_ref(),
            "pred".as_ref(),
            "--out".as_ref(),
            out.path().as_os_str(),
        ])?
        .success()?;
        ensure!(
            npy(&out.path().join("pred.npy"))? == want,
            "--checkpoint {}: predictions differ from TensorFlow's",
            checkpoint.display()
        );
    }
    // The step-0 checkpoint holds the initial weights: other logits than TensorFlow's at step 30.
    let out = tempfile::tempdir()?;
    ckpt_run([
        dir.join("graph.pbtxt").as_os_str(),
        "--checkpoint".as_ref(),
        dir.join("model.ckpt-0").as_os_str(),
        "--feed".as_ref(),
        feed_x(&dir).as_ref(),
        "--fetch".as_ref(),
        "logits".as_ref(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ])?
    .success()?;
    ensure!(
        assert_matches_tensorflow(out.path(), &dir, &["logits"]).is_err(),
        "model.ckpt-0 gave the logits of model.ckpt-30"
    );
    Ok(())
}

#[test]
fn text_graph_without_a_checkpoint_asks_for_one() -> Result<()> {
    let dir = fixture("estimator");
    let run = ckpt_run([
        dir.join("graph.pbtxt").as_os_str(),
        "--feed".as_ref(),
        feed_x(&dir).as_ref(),
        "--fetch".as_ref(),
        "pred".as_ref(),
    ])?
    .failure()?;
    run.stderr_has(&[
        "the graph reads 5 variable(s) but no checkpoint was given",
        "hidden/kernel/part_0",
        "give the checkpoint with --checkpoint PATH",
    ])
}

#[test]
fn malformed_text_graph_names_file_line_and_problem() -> Result<()> {
    let src = fixture("estimator");
    let dir = tempfile::tempdir()?;
    for name in [
        "checkpoint",
        "model.ckpt-30.index",
        "model.ckpt-30.data-00000-of-00001",
    ] {
        std::fs::copy(src.join(name), dir.path().join(name))?;
    }
    let text = std::fs::read_to_string(src.join("graph.pbtxt"))?;
    let graph = dir.path().join("graph.pbtxt");
    for (edit, line, column, problem) in [
        // An unknown field on line 3.
        (
            text.replacen("  op: \"Const\"", "  opp: \"Const\"", 1),
            3,
            3,
            "field 'opp' not found for message 'tensorflow.NodeDef'",
        ),
        // A value of the wrong type at the end.
        (
            text.replacen("  producer: 2474", "  producer: \"x\"", 1),
            text.lines().count() - 1,
            13,
            "expected an integer, but found '\"x\"'",
        ),
        // A syntax error: a brace that is never closed.
        (
            format!("{text}node {{\n"),
            text.lines().count() + 2,
            1,
            "expected '}' or a field name, but reached end of input",
        ),
    ] {
        std::fs::write(&graph, edit)?;
        let run = ckpt_run([dir.path().as_os_str(), "--describe".as_ref()])?.failure()?;
        run.stderr_has(&[
            &format!("{}: cannot parse the text as a GraphDef", graph.display()),
            &format!("line {line}, column {column}: {problem}"),
        ])?;
    }
    Ok(())
}

#[test]
fn tf0_graph_runs_and_describes_its_shape_less_placeholders() -> Result<()> {
    let dir = fixture("tf0_lenet");
    let out = tempfile::tempdir()?;
    ckpt_run([
        dir.as_os_str(),
        "--feed".as_ref(),
        feed_x(&dir).as_ref(),
        "--feed".as_ref(),
        "keep_prob=1.0".as_ref(),
        "--fetch".as_ref(),
        "logits,pred".as_ref(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ])?
    .success()?;
    assert_matches_tensorflow(out.path(), &dir, &["logits", "pred"])?;

    // --inference drops the Div dropout: keep_prob 0.5 then gives TensorFlow's keep_prob=1 answer.
    let out = tempfile::tempdir()?;
    ckpt_run([
        dir.as_os_str(),
        "--feed".as_ref(),
        feed_x(&dir).as_ref(),
        "--feed".as_ref(),
        "keep_prob=0.5".as_ref(),
        "--inference".as_ref(),
        "--fetch".as_ref(),
        "logits".as_ref(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ])?
    .success()?;
    assert_matches_tensorflow(out.path(), &dir, &["logits"])?;

    // `shape {}` in a producer-17 graph is an unknown shape.
    let run = ckpt_run([dir.as_os_str(), "--describe".as_ref()])?.success()?;
    ensure!(
        run.stdout
            .starts_with("placeholders:\n  x\tfloat32\tunknown\n  keep_prob\tfloat32\tunknown\n"),
        "{}",
        run.stdout
    );
    Ok(())
}
