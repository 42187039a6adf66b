//! Behaviour tests of `ckpt merge`: the union of checkpoints, duplicates refused unless a
//! preference is given, TensorFlow's slices and shards kept.

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Result};
use ckpt_cli::npy::NpyArray;
use common::npz::{f32_npy, i64_npy, make_checkpoint, npy, read_npz_file};
use common::{ckpt, expected, file_names, fixture, shape_text, shown_values};

fn f64_npy(shape: Vec<u64>, values: &[f64]) -> NpyArray<'static> {
    npy(
        "<f8",
        shape,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

#[test]
fn merge_makes_the_union_and_refuses_duplicates_unless_told() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    let a_w = f32_npy(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let b_w = f64_npy(vec![3], &[0.5, -0.25, 8.0]);
    let a = make_checkpoint(
        dir,
        "a",
        &[("a/w", &a_w), ("shared", &i64_npy(vec![], &[1]))],
    )?;
    let b = make_checkpoint(
        dir,
        "b",
        &[
            ("b/w", &b_w),
            ("shared", &i64_npy(vec![], &[2])),
            ("b/s", &npy("|S2", vec![2], b"hiyo".to_vec())),
        ],
    )?;

    let out = dir.join("merged/none");
    let run = ckpt([Path::new("merge"), &out, &a, &b])?.failure()?;
    run.stderr_has(&[
        "tensor \"shared\"",
        &a.display().to_string(),
        &b.display().to_string(),
    ])?;
    run.stderr_has(&[&format!(
        "tensor \"shared\" is in {} and {}",
        a.display(),
        b.display()
    )])?;
    assert_eq!(file_names(&dir.join("merged"))?, Vec::<String>::new());

    for (prefer, shared) in [("first", "1"), ("last", "2")] {
        let out = dir.join(format!("merged/{prefer}"));
        ckpt([
            Path::new("merge"),
            Path::new("--prefer"),
            Path::new(prefer),
            &out,
            &a,
            &b,
        ])?
        .success()?;
        let run = ckpt([Path::new("ls"), &out])?.success()?;
        assert_eq!(
            run.stdout,
            "a/w\tfloat32\t[2,2]\n\
             b/s\tstring\t[2]\n\
             b/w\tfloat64\t[3]\n\
             shared\tint64\t[]\n\
             # total: 4 tensors, 10 parameters, 52 bytes\n"
        );
        assert_eq!(shown_values(&out, "shared")?, shared, "--prefer {prefer}");
        ckpt([Path::new("verify"), &out])?.success()?;
        let npz = dir.join(format!("{prefer}.npz"));
        ckpt([Path::new("export"), &out, &npz])?.success()?;
        let arrays: BTreeMap<String, NpyArray<'static>> =
            read_npz_file(&npz)?.into_iter().collect();
        assert_eq!(arrays.get("a/w"), Some(&a_w));
        assert_eq!(arrays.get("b/w"), Some(&b_w));
        assert_eq!(arrays.get("b/s").map(|s| &s.data[..]), Some(&b"hiyo"[..]));
    }
    Ok(())
}

#[test]
fn merge_of_tensorflow_checkpoints_keeps_slices_and_shards() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("merged");
    ckpt([
        Path::new("merge"),
        &out,
        &fixture("partitioned"),
        &fixture("sharded"),
    ])?
    .success()?;
    // One data shard from `partitioned`, two from `sharded`: the shard count is kept.
    assert_eq!(
        file_names(temp.path())?,
        [
            "merged.data-00000-of-00003",
            "merged.data-00001-of-00003",
            "merged.data-00002-of-00003",
            "merged.index"
        ]
    );
    // Asked for one shard, one it is.
    let one = temp.path().join("one/merged");
    ckpt([
        Path::new("merge"),
        &one,
        &fixture("partitioned"),
        &fixture("sharded"),
        Path::new("--shards"),
        Path::new("1"),
    ])?
    .success()?;
    assert_eq!(
        file_names(&temp.path().join("one"))?,
        ["merged.data-00000-of-00001", "merged.index"]
    );
    let a = expected("partitioned")?.checkpoints.remove(0);
    let b = expected("sharded")?.checkpoints.remove(0);
    let (ta, pa, ba) = a.total();
    let (tb, pb, bb) = b.total();
    let mut want = a.variables;
    want.extend(b.variables);
    want.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let listing: String = want
        .iter()
        .map(|v| format!("{}\t{}\t{}\n", v.name, v.dtype, shape_text(&v.shape)))
        .chain(std::iter::once(format!(
            "# total: {} tensors, {} parameters, {} bytes\n",
            ta + tb,
            pa + pb,
            ba + bb
        )))
        .collect();
    assert_eq!(ckpt([Path::new("ls"), &out])?.success()?.stdout, listing);
    assert_eq!(ckpt([Path::new("ls"), &one])?.success()?.stdout, listing);
    // The partitioned variables are still stored as their slices.
    let merged = ckpt_bundle::Checkpoint::open(&out)?;
    for name in ["part/embedding", "part/grid", "part/pv"] {
        let stored = merged.storage(name)?;
        assert!(
            matches!(stored, ckpt_bundle::Storage::Partitioned(ref s) if s.len() > 1),
            "{name}: {stored:?}"
        );
    }
    ckpt([Path::new("verify"), &out])?.success()?;
    let npz = temp.path().join("merged.npz");
    ckpt([Path::new("export"), &out, &npz])?.success()?;
    for (name, array) in read_npz_file(&npz)? {
        let v = want
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| anyhow!("unexpected {name}"))?;
        assert_eq!(Some(&array.data[..]), v.bytes.as_deref(), "{name}");
    }
    Ok(())
}
