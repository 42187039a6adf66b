//! Behaviour tests of `ckpt drop`: optimizer slots of TF1 and TF2 checkpoints, and tensors
//! matched by regular expressions, removed; everything else kept.

#[allow(dead_code)]
mod common;

use std::path::Path;

use anyhow::Result;
use ckpt_cli::npy::NpyArray;
use common::npz::{f32_npy, make_checkpoint, read_npz_file};
use common::{ckpt, expected, file_names, fixture, listed_names, shown_values};

#[test]
fn drop_optimizer_removes_slots_of_tf1_and_tf2() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("tf2");
    ckpt([
        Path::new("drop"),
        &fixture("tf2"),
        &out,
        Path::new("--optimizer"),
    ])?
    .success()?
    .stderr_has(&[
        "wrote 7 tensors",
        "(13 dropped, object graph rewritten without them)",
    ])?;
    assert_eq!(
        listed_names(&out)?,
        [
            "_CHECKPOINTABLE_OBJECT_GRAPH",
            "model/layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE",
            "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE",
            "model/layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE",
            "model/layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE",
            "odd..name.Swith..S/.ATTRIBUTES/VARIABLE_VALUE",
            "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
        ]
    );
    // The kept tensors are TensorFlow's bytes.
    let c = expected("tf2")?.checkpoint("ckpt-3")?.clone();
    let npz = temp.path().join("tf2.npz");
    ckpt([Path::new("export"), &out, &npz])?.success()?;
    for (name, array) in read_npz_file(&npz)? {
        if let Some(bytes) = &c.variable(&name)?.bytes {
            assert_eq!(&array.data, bytes, "{name}");
        }
    }

    let out = temp.path().join("tf2_newopt");
    ckpt([
        Path::new("drop"),
        &fixture("tf2_newopt"),
        &out,
        Path::new("--optimizer"),
    ])?
    .success()?;
    assert_eq!(
        listed_names(&out)?,
        [
            "_CHECKPOINTABLE_OBJECT_GRAPH",
            "model/layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE",
            "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE",
            "model/layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE",
            "model/layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE",
            "odd..name.Swith..S/.ATTRIBUTES/VARIABLE_VALUE",
            "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
        ]
    );

    // TF1 slot names, made by hand.
    let one = f32_npy(vec![1], &[1.0]);
    let names = [
        "Adamant/kernel",
        "beta1_power",
        "beta2_power",
        "conv/w",
        "conv/w/Momentum",
        "dense/kernel",
        "dense/kernel/Adam",
        "dense/kernel/Adam_1",
        "dense/kernel/RMSProp",
        "global_step",
    ];
    let arrays: Vec<(&str, &NpyArray<'_>)> = names.iter().map(|n| (*n, &one)).collect();
    let prefix = make_checkpoint(temp.path(), "tf1", &arrays)?;
    let out = temp.path().join("tf1_clean");
    ckpt([Path::new("drop"), &prefix, &out, Path::new("--optimizer")])?.success()?;
    assert_eq!(
        listed_names(&out)?,
        ["Adamant/kernel", "conv/w", "dense/kernel", "global_step"]
    );
    Ok(())
}

#[test]
fn drop_match_removes_exactly_the_matches() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("out");
    ckpt([
        Path::new("drop"),
        &fixture("tf1_saver"),
        &out,
        Path::new("--match"),
        Path::new("^res/"),
        Path::new("--match"),
        Path::new("step$"),
    ])?
    .success()?
    .stderr_has(&["wrote 3 tensors", "(4 dropped)"])?;
    assert_eq!(
        listed_names(&out)?,
        ["counter", "dense/bias", "dense/kernel"]
    );
    assert_eq!(shown_values(&out, "counter")?, "10");

    let run = ckpt([
        Path::new("drop"),
        &fixture("tf1_saver"),
        &temp.path().join("none"),
    ])?
    .failure()?;
    run.stderr_has(&["--match", "--optimizer"])?;
    run.stderr_has(&["nothing to drop"])?;
    let run = ckpt([
        Path::new("drop"),
        &fixture("tf1_saver"),
        &temp.path().join("none"),
        Path::new("--match"),
        Path::new("[z-a]"),
    ])?
    .failure()?;
    run.stderr_has(&["[z-a]"])?;
    run.stderr_has(&["bad --match pattern \"[z-a]\""])?;
    assert_eq!(
        file_names(temp.path())?,
        ["out.data-00000-of-00001", "out.index"]
    );
    Ok(())
}
