//! Behaviour tests of `ckpt import`: checkpoints made from npz and safetensors files, round
//! trips, and malformed inputs refused without leaving anything behind.

#[allow(dead_code)]
mod common;

use std::path::Path;

use anyhow::{anyhow, ensure, Result};
use ckpt_cli::npy::NpyArray;
use common::npz::{f32_npy, i64_npy, make_checkpoint, npy, read_npz_file, write_npz};
use common::{ckpt, expected, file_names, fixture, listed_names, shown_values};

#[test]
fn npz_round_trips_through_a_checkpoint() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let first = temp.path().join("first.npz");
    ckpt([Path::new("export"), &fixture("dtypes"), &first])?.success()?;
    let prefix = temp.path().join("ckpt/model.ckpt-1");
    let run = ckpt([Path::new("import"), &first, &prefix])?.success()?;
    run.stderr_has(&["wrote 40 tensors"])?;
    assert_eq!(
        file_names(&temp.path().join("ckpt"))?,
        ["model.ckpt-1.data-00000-of-00001", "model.ckpt-1.index"]
    );
    ckpt([Path::new("verify"), &prefix])?.success()?;

    // bfloat16 came back as the float32 the npz held; every other dtype is kept.
    let c = expected("dtypes")?.checkpoints.remove(0);
    // npz's fixed-width `S` arrays cannot end a string with NUL bytes (numpy strips them), so
    // those bytes do not come back.
    let (tensors, parameters, bytes) = c.total();
    let trailing_nuls: u64 = c
        .variables
        .iter()
        .flat_map(|v| v.strings.iter().flatten())
        .map(|x| x.iter().rev().take_while(|&&b| b == 0).count() as u64)
        .sum();
    let bf16_elements: u64 = c
        .variables
        .iter()
        .filter(|v| v.dtype == "bfloat16")
        .map(|v| v.shape.iter().product::<u64>())
        .sum();
    let want_listing: String = c
        .names_listing()
        .lines()
        .map(|line| format!("{}\n", line.replace("\tbfloat16\t", "\tfloat32\t")))
        .chain(std::iter::once(format!(
            "# total: {tensors} tensors, {parameters} parameters, {} bytes\n",
            bytes + 2 * bf16_elements - trailing_nuls
        )))
        .collect();
    let run = ckpt([Path::new("ls"), &prefix])?.success()?;
    assert_eq!(run.stdout, want_listing);

    let second = temp.path().join("second.npz");
    ckpt([Path::new("export"), &prefix, &second])?.success()?;
    assert_eq!(read_npz_file(&second)?, read_npz_file(&first)?);
    Ok(())
}

#[test]
fn import_keeps_names_dtypes_and_values_of_hand_made_npz() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let mut unicode = Vec::new();
    for c in ['h', 'é', '\0', 'x', 'y', 'z'] {
        unicode.extend_from_slice(&(c as u32).to_le_bytes());
    }
    let arrays = [
        (
            "dense/kernel",
            f32_npy(vec![2, 3], &[1.0, -2.5, 3.0, 0.0, 1e-5, 7.0]),
        ),
        ("global_step", i64_npy(vec![], &[42])),
        ("half", npy("<f2", vec![2], vec![0x00, 0x3c, 0x00, 0xc0])),
        ("flags", npy("|b1", vec![3], vec![1, 0, 1])),
        ("names", npy("|S3", vec![2], b"ab\0xyz".to_vec())),
        ("text", npy("<U3", vec![2], unicode)),
    ];
    let refs: Vec<(&str, &NpyArray<'_>)> = arrays.iter().map(|(n, a)| (*n, a)).collect();
    let prefix = make_checkpoint(temp.path(), "hand", &refs)?;
    let run = ckpt([Path::new("ls"), &prefix])?.success()?;
    assert_eq!(
        run.stdout,
        "dense/kernel\tfloat32\t[2,3]\n\
         flags\tbool\t[3]\n\
         global_step\tint64\t[]\n\
         half\tfloat16\t[2]\n\
         names\tstring\t[2]\n\
         text\tstring\t[2]\n\
         # total: 6 tensors, 16 parameters, 50 bytes\n"
    );
    assert_eq!(
        shown_values(&prefix, "dense/kernel")?,
        "[[1. -2.5 3.]\n [0. 1e-5 7.]]"
    );
    assert_eq!(shown_values(&prefix, "global_step")?, "42");
    assert_eq!(shown_values(&prefix, "half")?, "[1. -2.]");
    assert_eq!(shown_values(&prefix, "flags")?, "[True False True]");
    assert_eq!(shown_values(&prefix, "names")?, "[b'ab' b'xyz']");
    assert_eq!(
        shown_values(&prefix, "text")?,
        "[b'h\\xc3\\xa9' b'xyz']",
        "U arrays become UTF-8"
    );
    Ok(())
}

#[test]
fn safetensors_bfloat16_stays_bfloat16() -> Result<()> {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    let temp = tempfile::tempdir()?;
    // bfloat16 1.0, -2.0, 0.5, 3.0; float16 1.0, -2.0; int64 7; bool [1, 0].
    let bf16: Vec<u8> = vec![0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f, 0x40, 0x40];
    let f16: Vec<u8> = vec![0x00, 0x3c, 0x00, 0xc0];
    let i64s: Vec<u8> = 7i64.to_le_bytes().to_vec();
    let bools: Vec<u8> = vec![1, 0];
    let tensors = vec![
        ("layer/w", TensorView::new(Dtype::BF16, vec![2, 2], &bf16)?),
        ("layer/h", TensorView::new(Dtype::F16, vec![2], &f16)?),
        ("step", TensorView::new(Dtype::I64, vec![], &i64s)?),
        ("mask", TensorView::new(Dtype::BOOL, vec![2], &bools)?),
    ];
    let input = temp.path().join("in.safetensors");
    std::fs::write(&input, safetensors::serialize(tensors, None)?)?;
    let prefix = temp.path().join("out/model");
    ckpt([Path::new("import"), &input, &prefix])?
        .success()?
        .stderr_has(&["wrote 4 tensors"])?;
    let run = ckpt([Path::new("ls"), &prefix])?.success()?;
    assert_eq!(
        run.stdout,
        "layer/h\tfloat16\t[2]\n\
         layer/w\tbfloat16\t[2,2]\n\
         mask\tbool\t[2]\n\
         step\tint64\t[]\n\
         # total: 4 tensors, 9 parameters, 22 bytes\n"
    );
    assert_eq!(shown_values(&prefix, "layer/w")?, "[[1. -2.]\n [0.5 3.]]");

    // And back out: the same dtypes and bytes.
    let back = temp.path().join("back.safetensors");
    ckpt([Path::new("export"), &prefix, &back])?.success()?;
    let bytes = std::fs::read(&back)?;
    let file = safetensors::SafeTensors::deserialize(&bytes)?;
    for (name, dtype, data) in [
        ("layer/w", Dtype::BF16, &bf16),
        ("layer/h", Dtype::F16, &f16),
        ("step", Dtype::I64, &i64s),
        ("mask", Dtype::BOOL, &bools),
    ] {
        let view = file.tensor(name)?;
        assert_eq!(view.dtype(), dtype, "{name}");
        assert_eq!(view.data(), &data[..], "{name}");
    }
    Ok(())
}

/// Runs a failing `ckpt import` and checks the error and that nothing is left behind.
fn import_fails(input: &Path, expect: &[&str]) -> Result<()> {
    let out_dir = input.with_extension("out");
    let prefix = out_dir.join("model.ckpt");
    let run = ckpt([Path::new("import"), input, &prefix])?.failure()?;
    run.stderr_has(&[&input.display().to_string()])?;
    run.stderr_has(expect)?;
    let left = file_names(&out_dir)?;
    ensure!(
        left.is_empty(),
        "{}: import failed but left {left:?}",
        input.display()
    );
    Ok(())
}

#[test]
fn malformed_npz_is_refused_naming_file_and_entry() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    let good = f32_npy(vec![2], &[1.0, 2.0]);

    let garbage = dir.join("garbage.npz");
    std::fs::write(&garbage, b"this is not a zip archive at all, just text")?;
    import_fails(&garbage, &["not a zip"])?;

    let empty = dir.join("empty.npz");
    std::fs::write(&empty, b"")?;
    import_fails(&empty, &["not a zip (npz) archive"])?;

    let whole = dir.join("whole.npz");
    write_npz(&whole, &[("a", &good), ("b", &good)])?;
    let bytes = std::fs::read(&whole)?;
    for cut in [bytes.len() / 2, bytes.len() - 10] {
        let truncated = dir.join(format!("truncated{cut}.npz"));
        std::fs::write(&truncated, &bytes[..cut])?;
        // Each cut takes away all or part of the end-of-central-directory record a zip
        // reader starts from.
        import_fails(&truncated, &["not a zip (npz) archive"])?;
    }

    // A good entry first, so the writer has started when the bad one comes.
    let short = dir.join("short.npz");
    write_npz(
        &short,
        &[("a", &good), ("bad", &npy("<f4", vec![10], vec![0; 8]))],
    )?;
    import_fails(
        &short,
        &["entry \"bad.npy\"", "8 bytes", "shape [10] of <f4 needs 40"],
    )?;

    let big_endian = dir.join("big_endian.npz");
    write_npz(
        &big_endian,
        &[("a", &good), ("swapped", &npy(">f4", vec![1], vec![0; 4]))],
    )?;
    import_fails(
        &big_endian,
        &["entry \"swapped.npy\"", ">f4", "unsupported npy dtype"],
    )?;

    let object = dir.join("object.npz");
    write_npz(
        &object,
        &[("a", &good), ("obj", &npy("|O", vec![1], vec![0; 8]))],
    )?;
    import_fails(
        &object,
        &["entry \"obj.npy\"", "unsupported npy dtype \"|O\""],
    )?;

    let huge = dir.join("huge.npz");
    write_npz(
        &huge,
        &[("huge", &npy("<f8", vec![1 << 40, 1 << 40], vec![0; 16]))],
    )?;
    import_fails(
        &huge,
        &[
            "entry \"huge.npy\"",
            "shape [1099511627776, 1099511627776] has too many elements",
        ],
    )?;

    let unnamed = dir.join("unnamed.npz");
    write_npz(&unnamed, &[("", &good)])?;
    import_fails(
        &unnamed,
        &["empty", "entry \"\"", "tensor names must not be empty"],
    )?;
    Ok(())
}

#[test]
fn malformed_safetensors_is_refused_naming_file_and_entry() -> Result<()> {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    let temp = tempfile::tempdir()?;
    let dir = temp.path();

    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, [0xff; 64])?;
    import_fails(&garbage, &["not a valid safetensors file"])?;

    let empty = dir.join("empty.safetensors");
    std::fs::write(&empty, b"")?;
    import_fails(&empty, &["not a valid safetensors file"])?;

    let data = [0u8; 16];
    let good = safetensors::serialize(
        vec![
            ("a", TensorView::new(Dtype::F32, vec![2], &data[..8])?),
            ("b", TensorView::new(Dtype::F32, vec![2], &data[8..])?),
        ],
        None,
    )?;
    for cut in [4, 20, good.len() - 1] {
        let truncated = dir.join(format!("truncated{cut}.safetensors"));
        std::fs::write(&truncated, &good[..cut])?;
        import_fails(&truncated, &["not a valid safetensors file"])?;
    }

    // A dtype TensorFlow has no equivalent for, after a good entry.
    let fp8 = safetensors::serialize(
        vec![
            ("a", TensorView::new(Dtype::F32, vec![2], &data[..8])?),
            ("fp8", TensorView::new(Dtype::F8_E4M3, vec![4], &data[..4])?),
        ],
        None,
    )?;
    let unsupported = dir.join("fp8.safetensors");
    std::fs::write(&unsupported, fp8)?;
    import_fails(&unsupported, &["entry \"fp8\"", "F8_E4M3"])?;
    Ok(())
}

#[test]
fn failed_import_leaves_an_existing_checkpoint_untouched() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let prefix = make_checkpoint(
        temp.path(),
        "keep",
        &[("w", &f32_npy(vec![2], &[1.0, 2.0]))],
    )?;
    let bad = temp.path().join("bad.npz");
    write_npz(
        &bad,
        &[
            ("v", &f32_npy(vec![1], &[9.0])),
            ("w", &npy("<f4", vec![3], vec![0; 4])),
        ],
    )?;
    // Without --force the existing checkpoint is not even considered for replacement.
    ckpt([Path::new("import"), &bad, &prefix])?
        .failure()?
        .stderr_has(&["already holds a checkpoint", "--force"])?;
    // With it, the bad input fails before anything replaces the old checkpoint.
    ckpt([Path::new("import"), &bad, &prefix, Path::new("--force")])?
        .failure()?
        .stderr_has(&[
            &bad.display().to_string(),
            "entry \"w.npy\"",
            "npy data holds 4 bytes, shape [3] of <f4 needs 12",
        ])?;
    assert_eq!(
        file_names(prefix.parent().ok_or_else(|| anyhow!("no parent"))?)?,
        ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    );
    assert_eq!(listed_names(&prefix)?, ["w"]);
    assert_eq!(shown_values(&prefix, "w")?, "[1. 2.]");
    ckpt([Path::new("verify"), &prefix])?.success()?;
    Ok(())
}
