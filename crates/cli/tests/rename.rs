//! Behaviour tests of `ckpt rename`: names rewritten by a regular expression, values kept, and
//! renamings that would lose a tensor refused.

#[allow(dead_code)]
mod common;

use std::path::Path;

use anyhow::Result;
use common::npz::read_npz_file;
use common::{ckpt, expected, file_names, fixture};

#[test]
fn rename_rewrites_names_and_keeps_values() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("renamed");
    ckpt([
        Path::new("rename"),
        &fixture("tf1_saver"),
        &out,
        Path::new("--from"),
        Path::new("^(dense|res)/"),
        Path::new("--to"),
        Path::new("model/${1}_"),
    ])?
    .success()?
    .stderr_has(&["wrote 7 tensors"])?;
    let run = ckpt([Path::new("ls"), &out])?.success()?;
    assert_eq!(
        run.stdout,
        "counter\tint32\t[]\n\
         global_step\tint64\t[]\n\
         model/dense_bias\tfloat32\t[3]\n\
         model/dense_kernel\tfloat32\t[4,3]\n\
         model/res_embedding\tfloat32\t[5,2]\n\
         model/res_flag\tbool\t[]\n\
         model/res_scale\tfloat64\t[2]\n\
         # total: 7 tensors, 30 parameters, 129 bytes\n"
    );
    let c = expected("tf1_saver")?
        .checkpoint("model.ckpt-4000")?
        .clone();
    let npz = temp.path().join("renamed.npz");
    ckpt([Path::new("export"), &out, &npz])?.success()?;
    for (name, array) in read_npz_file(&npz)? {
        let original = name
            .strip_prefix("model/")
            .map(|rest| rest.replacen('_', "/", 1))
            .unwrap_or_else(|| name.clone());
        assert_eq!(
            Some(&array.data[..]),
            c.variable(&original)?.bytes.as_deref(),
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn rename_refuses_collisions_empty_names_and_bad_patterns() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("out");
    let run = ckpt([
        Path::new("rename"),
        &fixture("tf1_saver"),
        &out,
        Path::new("--from"),
        Path::new("/.*"),
        Path::new("--to"),
        Path::new(""),
    ])?
    .failure()?;
    run.stderr_has(&["\"dense/bias\"", "\"dense/kernel\"", "\"dense\""])?;
    run.stderr_has(&["tensors \"dense/bias\" and \"dense/kernel\" would both be named \"dense\""])?;
    let run = ckpt([
        Path::new("rename"),
        &fixture("tf1_saver"),
        &out,
        Path::new("--from"),
        Path::new("^counter$"),
        Path::new("--to"),
        Path::new(""),
    ])?
    .failure()?;
    run.stderr_has(&["\"counter\"", "empty name"])?;
    run.stderr_has(&["tensor \"counter\" would be renamed to the empty name"])?;
    let run = ckpt([
        Path::new("rename"),
        &fixture("tf1_saver"),
        &out,
        Path::new("--from"),
        Path::new("(unclosed"),
        Path::new("--to"),
        Path::new("x"),
    ])?
    .failure()?;
    run.stderr_has(&["(unclosed"])?;
    run.stderr_has(&["bad --from pattern \"(unclosed\""])?;
    assert_eq!(file_names(temp.path())?, Vec::<String>::new());
    Ok(())
}
