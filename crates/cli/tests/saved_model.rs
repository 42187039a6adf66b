//! `ckpt-run` on the SavedModel fixtures (fixtures/make_fixtures.py): signatures run by key
//! against TensorFlow's outputs, `--tag` / `--signature` selection, `--describe` against
//! `saved_model_cli show --all`, and the errors of bad SavedModels.

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use ckpt_cli::npy::{read_npy, NpyArray};
use common::{ckpt, fixture, Run};

fn npy(path: &Path) -> Result<NpyArray<'static>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    read_npy(&bytes, &path.display().to_string()).map(NpyArray::into_owned)
}

fn f32s(array: &NpyArray<'_>) -> Vec<f32> {
    array
        .data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `got` equals TensorFlow's `want`: same dtype and shape, float32 within 1e-5 relative (1e-6
/// absolute near zero), anything else bit for bit.
fn assert_matches(name: &str, got: &NpyArray, want: &NpyArray) -> Result<()> {
    ensure!(
        got.descr == want.descr && got.shape == want.shape,
        "{name}: {} {:?}, TensorFlow has {} {:?}",
        got.descr,
        got.shape,
        want.descr,
        want.shape
    );
    if got.descr == "<f4" {
        for (i, (g, w)) in f32s(got).iter().zip(f32s(want)).enumerate() {
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
    Ok(())
}

/// `ckpt run ARGS --out DIR`, which must succeed; the directory it wrote to.
fn run_into(args: &[String]) -> Result<tempfile::TempDir> {
    let out = tempfile::tempdir()?;
    let mut all = vec!["run".to_string()];
    all.extend(args.iter().cloned());
    all.extend(["--out".to_string(), out.path().display().to_string()]);
    ckpt(&all)?.success()?;
    Ok(out)
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn tf1_builder_default_signature_matches_tensorflow() -> Result<()> {
    let d = fixture("saved_model_tf1");
    let out = run_into(&[
        path_arg(&d.join("model")),
        "--feed".into(),
        format!("features={}", d.join("x.npy").display()),
    ])?;
    // No --signature, no --fetch: serving_default, every output, written by output key.
    for key in ["classes", "probs"] {
        assert_matches(
            key,
            &npy(&out.path().join(format!("{key}.npy")))?,
            &npy(&d.join(format!("serving_default__{key}.npy")))?,
        )?;
    }
    let written: Vec<_> = std::fs::read_dir(out.path())?.collect();
    assert_eq!(written.len(), 2);
    Ok(())
}

#[test]
fn tf1_signature_with_a_defaulted_input_and_a_scalar_feed() -> Result<()> {
    let d = fixture("saved_model_tf1");
    let out = run_into(&[
        path_arg(&d.join("model")),
        "--signature".into(),
        "scaled".into(),
        "--feed".into(),
        format!("features={}", d.join("x.npy").display()),
        "--feed".into(),
        "scale=0.5".into(),
    ])?;
    assert_matches(
        "scaled",
        &npy(&out.path().join("scaled.npy"))?,
        &npy(&d.join("scaled__scaled.npy"))?,
    )
}

#[test]
fn tag_selects_the_meta_graph() -> Result<()> {
    let d = fixture("saved_model_tf1");
    let out = run_into(&[
        path_arg(&d.join("model")),
        "--tag".into(),
        "train".into(),
        "--signature".into(),
        "logits".into(),
        "--feed".into(),
        format!("features={}", d.join("x.npy").display()),
    ])?;
    assert_matches(
        "logits",
        &npy(&out.path().join("logits.npy"))?,
        &npy(&d.join("logits__logits.npy"))?,
    )
}

#[test]
fn tf2_module_through_saved_model_pb_matches_tensorflow() -> Result<()> {
    let d = fixture("saved_model_tf2");
    // The saved_model.pb file works as well as its directory.
    let out = run_into(&[
        path_arg(&d.join("model/saved_model.pb")),
        "--feed".into(),
        format!("x={}", d.join("x.npy").display()),
        "--feed".into(),
        format!("a={}", d.join("a.npy").display()),
        "--fetch".into(),
        "y,n".into(),
    ])?;
    for key in ["n", "y"] {
        assert_matches(
            key,
            &npy(&out.path().join(format!("{key}.npy")))?,
            &npy(&d.join(format!("serving_default__{key}.npy")))?,
        )?;
    }
    let out = run_into(&[
        path_arg(&d.join("model")),
        "--signature".into(),
        "addc".into(),
        "--feed".into(),
        format!("v={}", d.join("v.npy").display()),
    ])?;
    assert_matches(
        "output_0",
        &npy(&out.path().join("output_0.npy"))?,
        &npy(&d.join("addc__output_0.npy"))?,
    )
}

#[test]
fn keras_model_matches_tensorflow() -> Result<()> {
    let d = fixture("saved_model_keras");
    let out = run_into(&[
        path_arg(&d.join("model")),
        "--feed".into(),
        format!("image={}", d.join("image.npy").display()),
    ])?;
    assert_matches(
        "probs",
        &npy(&out.path().join("probs.npy"))?,
        &npy(&d.join("serving_default__probs.npy"))?,
    )
}

#[test]
fn printed_outputs_are_named_by_key() -> Result<()> {
    let d = fixture("saved_model_tf1");
    let output = Command::new(env!("CARGO_BIN_EXE_ckpt-run"))
        .arg(d.join("model"))
        .args([
            "--feed",
            &format!("features={}", d.join("x.npy").display()),
            "--fetch",
            "classes",
        ])
        .output()?;
    ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let want = npy(&d.join("serving_default__classes.npy"))?;
    let classes: Vec<String> = want
        .data
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]).to_string())
        .collect();
    assert_eq!(
        String::from_utf8(output.stdout)?,
        format!("classes: int64 [5]\n[{}]\n", classes.join(" "))
    );
    Ok(())
}

/// `--describe` prints what `saved_model_cli show --all` prints for the signatures
/// (fixtures' `signatures.txt`, TensorFlow's own rendering), for all three kinds of export.
#[test]
fn describe_matches_saved_model_cli() -> Result<()> {
    for name in ["saved_model_tf1", "saved_model_tf2", "saved_model_keras"] {
        let d = fixture(name);
        let run = ckpt([
            "run".as_ref(),
            d.join("model").as_os_str(),
            "--describe".as_ref(),
        ])?
        .success()?;
        let want = std::fs::read_to_string(d.join("signatures.txt"))?;
        assert_eq!(run.stdout, want, "{name}");
    }
    Ok(())
}

fn fails(args: &[String]) -> Result<Run> {
    let mut all = vec!["run".to_string()];
    all.extend(args.iter().cloned());
    ckpt(&all)?.failure()
}

#[test]
fn unknown_tag_set_lists_the_tag_sets() -> Result<()> {
    let d = fixture("saved_model_tf1").join("model");
    let run = fails(&[
        path_arg(&d),
        "--tag".into(),
        "serve,gpu".into(),
        "--feed".into(),
        "features=1".into(),
    ])?;
    assert_eq!(
        run.stderr,
        format!(
            "error: {}: no meta graph has the tag set {{gpu, serve}}; its tag sets: {{serve}}, {{train}}\n",
            d.join("saved_model.pb").display()
        )
    );
    Ok(())
}

#[test]
fn unknown_signature_suggests_one() -> Result<()> {
    let d = fixture("saved_model_tf1").join("model");
    let run = fails(&[path_arg(&d), "--signature".into(), "scale".into()])?;
    assert_eq!(
        run.stderr,
        format!(
            "error: {} (tag set {{serve}}): no signature \"scale\"; did you mean \"scaled\"?; signatures: scaled, serving_default\n",
            d.join("saved_model.pb").display()
        )
    );
    Ok(())
}

#[test]
fn unknown_feed_key_lists_the_inputs() -> Result<()> {
    let d = fixture("saved_model_tf2");
    let run = fails(&[
        path_arg(&d.join("model")),
        "--feed".into(),
        format!("xx={}", d.join("x.npy").display()),
    ])?;
    run.stderr_has(&[
        "signature \"serving_default\" has no input \"xx\"",
        "its inputs: a, x",
    ])?;
    Ok(())
}

#[test]
fn tag_and_signature_need_a_saved_model() -> Result<()> {
    let mlp = fixture("mlp");
    let run = fails(&[
        path_arg(&mlp),
        "--signature".into(),
        "serving_default".into(),
    ])?;
    run.stderr_has(&["--tag and --signature apply to SavedModel directories"])?;
    Ok(())
}

#[test]
fn garbage_saved_model_is_refused_naming_the_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("saved_model.pb");
    std::fs::write(&file, b"\xff\xff\xff\xff garbage, not a protobuf")?;
    for args in [
        vec![path_arg(dir.path())],
        vec![path_arg(dir.path()), "--describe".into()],
    ] {
        let run = fails(&args)?;
        run.stderr_has(&[
            &file.display().to_string(),
            "cannot decode the bytes as a SavedModel",
        ])?;
    }
    Ok(())
}

#[test]
fn text_format_saved_model_runs() -> Result<()> {
    let d = fixture("saved_model_tf1");
    let out = run_into(&[
        path_arg(&d.join("text")),
        "--feed".into(),
        format!("x={}", d.join("x.npy").display()),
    ])?;
    assert_matches(
        "y",
        &npy(&out.path().join("y.npy"))?,
        &npy(&d.join("text__y.npy"))?,
    )
}

#[test]
fn missing_input_is_named_by_key() -> Result<()> {
    let d = fixture("saved_model_keras");
    let run = fails(&[path_arg(&d.join("model"))])?;
    run.stderr_has(&["signature \"serving_default\": input \"image\" (tensor serving_default_image:0) must be fed (float32, shape [-1,8,8,3])"])?;
    Ok(())
}
