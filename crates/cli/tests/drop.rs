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

#[test]
fn kept_tensors_are_copied_byte_for_byte_and_their_checksums_checked() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let big: Vec<f32> = (0..300_000).map(|i| i as f32 * 0.25 - 7.0).collect();
    let input = make_checkpoint(
        temp.path(),
        "in",
        &[
            ("a", &f32_npy(vec![2], &[1.5, -2.0])),
            ("b", &f32_npy(vec![300_000], &big)),
            ("c", &f32_npy(vec![], &[9.0])),
        ],
    )?;
    let data_of = |prefix: &Path| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(".data-00000-of-00001");
        std::path::PathBuf::from(name)
    };
    // Dropping the last tensor leaves the first two, whose bytes are the input's first ones.
    let out = temp.path().join("out/model.ckpt");
    ckpt([
        Path::new("drop"),
        &input,
        &out,
        Path::new("--match"),
        Path::new("^c$"),
    ])?
    .success()?;
    let (written, original) = (
        std::fs::read(data_of(&out))?,
        std::fs::read(data_of(&input))?,
    );
    assert_eq!(written.len(), 8 + 1_200_000);
    assert_eq!(&written[..], &original[..written.len()]);
    ckpt([Path::new("verify"), &out])?.success()?;

    // One bit of "b" damaged: drop refuses, naming it, and writes nothing ...
    common::flip_bit(&data_of(&input), 8 + 4321, 3)?;
    let refused = temp.path().join("refused/model.ckpt");
    ckpt([
        Path::new("drop"),
        &input,
        &refused,
        Path::new("--match"),
        Path::new("^c$"),
    ])?
    .failure()?
    .stderr_has(&["\"b\"", "checksum"])?;
    assert!(file_names(&temp.path().join("refused"))?.is_empty());

    // ... unless told not to check: then the damaged bytes keep the input's checksum, so the
    // output fails verification as the input does.
    let trusted = temp.path().join("trusted/model.ckpt");
    ckpt([
        Path::new("drop"),
        &input,
        &trusted,
        Path::new("--match"),
        Path::new("^c$"),
        Path::new("--no-verify"),
    ])?
    .success()?;
    ckpt([Path::new("verify"), &trusted])?
        .failure()?
        .stderr_has(&["\"b\"", "checksum"])?;
    Ok(())
}
