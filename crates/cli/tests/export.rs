//! Behaviour tests of `ckpt export`: npz and safetensors files holding TensorFlow's bytes, and
//! nothing written when the export fails.

#[allow(dead_code)]
mod common;

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use common::npz::read_npz_file;
use common::{ckpt, copy_fixture, expected, file_names, fixture, flip_bit, Variable};

/// numpy's dtype string for a TensorFlow dtype name, as `ckpt export` writes npz files.
fn npz_descr(dtype: &str) -> Option<&'static str> {
    Some(match dtype {
        "float16" => "<f2",
        "float32" | "bfloat16" => "<f4",
        "float64" => "<f8",
        "int8" => "|i1",
        "int16" => "<i2",
        "int32" => "<i4",
        "int64" => "<i8",
        "uint8" => "|u1",
        "uint16" => "<u2",
        "uint32" => "<u4",
        "uint64" => "<u8",
        "bool" => "|b1",
        "complex64" => "<c8",
        "complex128" => "<c16",
        _ => return None,
    })
}

/// The safetensors dtype for a TensorFlow dtype name; `None` for what it cannot hold.
fn safetensors_dtype(dtype: &str) -> Option<safetensors::Dtype> {
    use safetensors::Dtype as S;
    Some(match dtype {
        "float16" => S::F16,
        "bfloat16" => S::BF16,
        "float32" => S::F32,
        "float64" => S::F64,
        "int8" => S::I8,
        "int16" => S::I16,
        "int32" => S::I32,
        "int64" => S::I64,
        "uint8" => S::U8,
        "uint16" => S::U16,
        "uint32" => S::U32,
        "uint64" => S::U64,
        "bool" => S::BOOL,
        _ => return None,
    })
}

/// A bfloat16 widened to float32: its two bytes become the high half of the float32.
fn widen_bfloat16(bytes: &[u8]) -> Vec<u8> {
    bytes
        .chunks_exact(2)
        .flat_map(|pair| [0, 0, pair[0], pair[1]])
        .collect()
}

#[test]
fn export_npz_holds_tensorflow_bytes_in_numpy_dtypes() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("dtypes.npz");
    let run = ckpt([Path::new("export"), &fixture("dtypes"), &out])?.success()?;
    run.stderr_has(&["wrote 40 tensors"])?;
    let arrays = read_npz_file(&out)?;
    let c = expected("dtypes")?.checkpoints.remove(0);
    let mut want = c.variables.clone();
    want.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
    let want_names: Vec<&str> = want.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, want_names);
    for ((name, array), v) in arrays.iter().zip(&want) {
        assert_eq!(array.shape, v.shape, "{name}");
        match (&v.bytes, &v.strings) {
            (Some(bytes), _) => {
                let descr =
                    npz_descr(&v.dtype).ok_or_else(|| anyhow!("{name}: dtype {}", v.dtype))?;
                assert_eq!(array.descr, descr, "{name}");
                let want_data = if v.dtype == "bfloat16" {
                    widen_bfloat16(bytes)
                } else {
                    bytes.clone()
                };
                assert_eq!(array.data, want_data, "{name}");
            }
            (None, Some(strings)) => {
                let width = strings.iter().map(Vec::len).max().unwrap_or(0).max(1);
                assert_eq!(array.descr, format!("|S{width}"), "{name}");
                let mut want_data = Vec::new();
                for s in strings {
                    want_data.extend_from_slice(s);
                    want_data.resize(want_data.len() + width - s.len(), 0);
                }
                assert_eq!(array.data, want_data, "{name}");
            }
            (None, None) => bail!("{name}: no reading in expected.json"),
        }
    }
    // bfloat16 widening, spelled out: 1.0 (0x3f80) -> 0x3f800000, -2.0 -> 0xc0000000.
    let (_, scalar) = arrays
        .iter()
        .find(|(n, _)| n == "scalar/bfloat16")
        .ok_or_else(|| anyhow!("no scalar/bfloat16"))?;
    assert_eq!(&scalar.data[..], (-2.0f32).to_le_bytes());
    Ok(())
}

#[test]
fn export_npz_assembles_partitioned_and_sharded_tensors() -> Result<()> {
    let temp = tempfile::tempdir()?;
    for name in ["partitioned", "sharded", "tf1_saver"] {
        let out = temp.path().join(format!("{name}.npz"));
        ckpt([Path::new("export"), &fixture(name), &out])?.success()?;
        let arrays = read_npz_file(&out)?;
        let expected = expected(name)?;
        let c = expected.default_checkpoint()?;
        assert_eq!(arrays.len(), c.variables.len(), "{name}");
        for (array_name, array) in &arrays {
            let v = c.variable(array_name)?;
            assert_eq!(array.shape, v.shape, "{name}: {array_name}");
            assert_eq!(
                Some(&array.data[..]),
                v.bytes.as_deref(),
                "{name}: {array_name}"
            );
        }
    }
    Ok(())
}

#[test]
fn export_safetensors_keeps_bfloat16_and_warns_about_what_it_skips() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("dtypes.safetensors");
    let run = ckpt([Path::new("export"), &fixture("dtypes"), &out])?.success()?;
    let c = expected("dtypes")?.checkpoints.remove(0);
    let mut want = c.variables.clone();
    want.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let (kept, skipped): (Vec<&Variable>, Vec<&Variable>) = want
        .iter()
        .partition(|v| safetensors_dtype(&v.dtype).is_some());
    assert_eq!(skipped.len(), 9, "{skipped:?}");

    // One warning line per skipped tensor, naming it, in name order; nothing else warned.
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), skipped.len(), "{}", run.stderr);
    for (line, v) in warnings.iter().zip(&skipped) {
        assert!(
            line.contains(&format!("\"{}\"", v.name)) && line.contains(&v.dtype),
            "warning {line:?} should name {} ({})",
            v.name,
            v.dtype
        );
    }
    run.stderr_has(&[&format!("wrote {} tensors", kept.len())])?;

    let bytes = std::fs::read(&out)?;
    let file = safetensors::SafeTensors::deserialize(&bytes)?;
    let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
    names.sort();
    let kept_names: Vec<String> = kept.iter().map(|v| v.name.clone()).collect();
    assert_eq!(names, kept_names);
    for v in kept {
        let view = file.tensor(&v.name)?;
        assert_eq!(
            Some(view.dtype()),
            safetensors_dtype(&v.dtype),
            "{}",
            v.name
        );
        let shape: Vec<u64> = view.shape().iter().map(|&d| d as u64).collect();
        assert_eq!(shape, v.shape, "{}", v.name);
        assert_eq!(Some(view.data()), v.bytes.as_deref(), "{}", v.name);
    }
    assert_eq!(
        file.tensor("bfloat16")?.dtype(),
        safetensors::Dtype::BF16,
        "bfloat16 stays BF16"
    );
    Ok(())
}

#[test]
fn export_to_an_unknown_format_or_from_a_damaged_checkpoint_writes_nothing() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("weights.h5");
    let run = ckpt([Path::new("export"), &fixture("dtypes"), &out])?.failure()?;
    run.stderr_has(&["weights.h5", ".npz", ".safetensors"])?;
    run.stderr_has(&[&format!("{}: unknown format", out.display())])?;

    let (_damaged_temp, dir) = copy_fixture("tf1_saver")?;
    flip_bit(&dir.join("model.ckpt-4000.data-00000-of-00001"), 20, 1)?;
    let out_dir = temp.path().join("out");
    std::fs::create_dir(&out_dir)?;
    for file in ["bad.npz", "bad.safetensors"] {
        let run = ckpt([Path::new("export"), &dir, &out_dir.join(file)])?.failure()?;
        run.stderr_has(&["checksum mismatch"])?;
        // Byte 20 lies in dense/kernel's data (offset 16, 48 bytes).
        run.stderr_has(&[
            "model.ckpt-4000.data-00000-of-00001",
            "tensor \"dense/kernel\"",
        ])?;
    }
    assert_eq!(file_names(&out_dir)?, Vec::<String>::new());
    assert_eq!(file_names(temp.path())?, vec!["out".to_string()]);
    Ok(())
}

#[cfg(unix)]
#[test]
fn exported_files_get_ordinary_permissions() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir()?;
    let reference = temp.path().join("reference");
    std::fs::File::create(&reference)?;
    let ordinary = std::fs::metadata(&reference)?.permissions().mode() & 0o777;
    for file in ["out.npz", "out.safetensors"] {
        let out = temp.path().join(file);
        ckpt([Path::new("export"), &fixture("tf1_saver"), &out])?.success()?;
        let mode = std::fs::metadata(&out)?.permissions().mode() & 0o777;
        assert_eq!(
            mode, ordinary,
            "{file}: mode {mode:o}, File::create gives {ordinary:o}"
        );
    }
    Ok(())
}
