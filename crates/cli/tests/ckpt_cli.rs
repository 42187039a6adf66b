//! Behaviour tests of the `ckpt` binary: every subcommand run as a user runs it, on the
//! checkpoints real TensorFlow 2.21 wrote (`fixtures/`), compared with TensorFlow's own
//! readings of them (`expected.json`), and on damaged copies of them.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use ckpt_cli::npy::{read_npz, NpyArray, NpzWriter};
use common::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn read_npz_file(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    read_npz(Cursor::new(bytes), &path.display().to_string())
}

fn npy(descr: &str, shape: Vec<u64>, data: Vec<u8>) -> NpyArray {
    NpyArray {
        descr: descr.to_string(),
        shape,
        data,
    }
}

fn f32_npy(shape: Vec<u64>, values: &[f32]) -> NpyArray {
    npy(
        "<f4",
        shape,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

fn i64_npy(shape: Vec<u64>, values: &[i64]) -> NpyArray {
    npy(
        "<i8",
        shape,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

fn f64_npy(shape: Vec<u64>, values: &[f64]) -> NpyArray {
    npy(
        "<f8",
        shape,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

fn write_npz(path: &Path, arrays: &[(&str, &NpyArray)]) -> Result<()> {
    let mut npz = NpzWriter::new(Cursor::new(Vec::new()));
    for (name, array) in arrays {
        npz.add(name, array)?;
    }
    std::fs::write(path, npz.finish()?.into_inner())?;
    Ok(())
}

/// Writes `arrays` to NAME.npz in `dir` and imports it as checkpoint `dir/NAME/model.ckpt`.
fn make_checkpoint(
    dir: &Path,
    name: &str,
    arrays: &[(&str, &NpyArray)],
) -> Result<std::path::PathBuf> {
    let npz = dir.join(format!("{name}.npz"));
    write_npz(&npz, arrays)?;
    let prefix = dir.join(name).join("model.ckpt");
    ckpt([Path::new("import"), &npz, &prefix])?.success()?;
    Ok(prefix)
}

/// The names of `ckpt ls PATH`, one per line.
fn listed_names(path: &Path) -> Result<Vec<String>> {
    let run = ckpt([Path::new("ls"), path])?.success()?;
    Ok(run
        .stdout
        .lines()
        .map(|line| line.split('\t').next().unwrap_or_default().to_string())
        .collect())
}

/// The value text `ckpt show` prints (everything after the name, dtype and shape lines).
fn shown_values(path: &Path, name: &str) -> Result<String> {
    let run = ckpt([Path::new("show"), path, Path::new(name)])?.success()?;
    let mut lines = run.stdout.lines();
    ensure!(
        lines.next() == Some(&format!("name:  {name}")[..]),
        "{}",
        run.stdout
    );
    ensure!(
        lines.next().is_some_and(|l| l.starts_with("dtype: ")),
        "{}",
        run.stdout
    );
    ensure!(
        lines.next().is_some_and(|l| l.starts_with("shape: ")),
        "{}",
        run.stdout
    );
    Ok(lines.collect::<Vec<_>>().join("\n"))
}

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

/// Python's `repr` of a bytes value, as numpy prints the elements of an `S` array.
fn python_bytes(s: &[u8]) -> String {
    let quote = if s.contains(&b'\'') && !s.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = format!("b{quote}");
    for &b in s {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            b'\'' if quote == '\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

/// The value tokens of `ckpt show` text: brackets and the `...` of a summary removed.
fn value_tokens(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .filter(|t| !t.is_empty())
        .collect()
}

/// Checks that a printed float is TensorFlow's value: the text either reads back as the
/// element exactly (shortest round-trip text at the element's precision), or is the value
/// rounded to numpy's 8 fractional digits.
fn check_float(token: &str, value: f64, single: bool, context: &str) -> Result<()> {
    if value.is_nan() {
        ensure!(token == "nan", "{context}: {token:?} should be nan");
        return Ok(());
    }
    if value.is_infinite() {
        let want = if value > 0.0 { "inf" } else { "-inf" };
        ensure!(token == want, "{context}: {token:?} should be {want}");
        return Ok(());
    }
    let parsed: f64 = token
        .parse()
        .map_err(|e| anyhow!("{context}: cannot parse {token:?}: {e}"))?;
    let exact = if single {
        (parsed as f32).to_bits() == (value as f32).to_bits()
    } else {
        parsed.to_bits() == value.to_bits()
    };
    ensure!(
        exact || (parsed - value).abs() <= 5e-9,
        "{context}: printed {token:?}, TensorFlow read {value:e}"
    );
    Ok(())
}

/// Compares `ckpt show`'s value text of a fixed-size tensor with TensorFlow's bytes.
fn check_shown_values(text: &str, dtype: &str, bytes: &[u8], context: &str) -> Result<()> {
    let tokens = value_tokens(text);
    let size = match dtype {
        "int8" | "uint8" | "bool" => 1,
        "int16" | "uint16" | "float16" | "bfloat16" => 2,
        "int32" | "uint32" | "float32" => 4,
        "int64" | "uint64" | "float64" => 8,
        other => bail!("{context}: no value check for {other}"),
    };
    let elements: Vec<&[u8]> = bytes.chunks_exact(size).collect();
    ensure!(
        tokens.len() == elements.len(),
        "{context}: {} values printed, TensorFlow has {}: {text}",
        tokens.len(),
        elements.len()
    );
    for (i, (token, raw)) in tokens.iter().zip(elements).enumerate() {
        let context = format!("{context}[{i}]");
        let mut le = [0u8; 8];
        le[..size].copy_from_slice(raw);
        let want_int = |v: String| -> Result<()> {
            ensure!(
                *token == v,
                "{context}: printed {token:?}, TensorFlow read {v}"
            );
            Ok(())
        };
        match dtype {
            "int8" => want_int((raw[0] as i8).to_string())?,
            "uint8" => want_int(raw[0].to_string())?,
            "bool" => want_int(if raw[0] != 0 { "True" } else { "False" }.to_string())?,
            "int16" => want_int(i16::from_le_bytes([le[0], le[1]]).to_string())?,
            "uint16" => want_int(u16::from_le_bytes([le[0], le[1]]).to_string())?,
            "int32" => want_int(i32::from_le_bytes([le[0], le[1], le[2], le[3]]).to_string())?,
            "uint32" => want_int(u32::from_le_bytes([le[0], le[1], le[2], le[3]]).to_string())?,
            "int64" => want_int(i64::from_le_bytes(le).to_string())?,
            "uint64" => want_int(u64::from_le_bytes(le).to_string())?,
            "float16" => check_float(
                token,
                half::f16::from_le_bytes([le[0], le[1]]).to_f64(),
                true,
                &context,
            )?,
            "bfloat16" => check_float(
                token,
                half::bf16::from_le_bytes([le[0], le[1]]).to_f64(),
                true,
                &context,
            )?,
            "float32" => check_float(
                token,
                f32::from_le_bytes([le[0], le[1], le[2], le[3]]).into(),
                true,
                &context,
            )?,
            "float64" => check_float(token, f64::from_le_bytes(le), false, &context)?,
            _ => unreachable!("sizes above cover the dtypes"),
        }
    }
    Ok(())
}

/// The tensor an index entry stores: its key, or for a slice (`\0name\0...`) the name.
fn entry_tensor(key: &[u8]) -> Result<String> {
    let name = match key.split_first() {
        Some((0, rest)) => rest.split(|&b| b == 0).next().unwrap_or_default(),
        _ => key,
    };
    Ok(String::from_utf8(name.to_vec())?)
}

// ---------------------------------------------------------------------------------------
// ckpt ls
// ---------------------------------------------------------------------------------------

#[test]
fn ls_lists_what_tensorflow_reads_for_every_fixture() -> Result<()> {
    for name in CHECKPOINT_FIXTURES {
        let expected = expected(name)?;
        for c in &expected.checkpoints {
            let prefix = fixture(name).join(&c.prefix);
            let run = ckpt([Path::new("ls"), &prefix])?.success()?;
            ensure!(
                run.stdout == c.listing(),
                "{name}/{}: `ckpt ls` printed\n{}\nTensorFlow lists\n{}",
                c.prefix,
                run.stdout,
                c.listing()
            );
            ensure!(run.stderr.is_empty(), "{name}: stderr {:?}", run.stderr);
        }
        // The directory: its `checkpoint` file's latest, or its only checkpoint.
        let run = ckpt([Path::new("ls"), &fixture(name)])?.success()?;
        ensure!(
            run.stdout == expected.default_checkpoint()?.listing(),
            "{name} (directory): `ckpt ls` printed\n{}",
            run.stdout
        );
    }
    Ok(())
}

#[test]
fn ls_accepts_any_file_of_the_checkpoint() -> Result<()> {
    for name in CHECKPOINT_FIXTURES {
        for c in &expected(name)?.checkpoints {
            let dir = fixture(name);
            let mut files = vec![format!("{}.index", c.prefix)];
            files.extend(c.data_files.iter().cloned());
            let meta = format!("{}.meta", c.prefix);
            if dir.join(&meta).is_file() {
                files.push(meta);
            }
            for file in files {
                let run = ckpt([Path::new("ls"), &dir.join(&file)])?.success()?;
                ensure!(
                    run.stdout == c.listing(),
                    "{name}/{file}: `ckpt ls` printed\n{}",
                    run.stdout
                );
            }
        }
    }
    Ok(())
}

#[test]
fn ls_json_matches_tensorflow() -> Result<()> {
    for name in CHECKPOINT_FIXTURES {
        let expected = expected(name)?;
        let c = expected.default_checkpoint()?;
        let run = ckpt([Path::new("ls"), Path::new("--json"), &fixture(name)])?.success()?;
        let json: serde_json::Value = serde_json::from_str(&run.stdout)?;
        let items = json
            .as_array()
            .ok_or_else(|| anyhow!("{name}: --json is not an array"))?;
        let mut want = c.variables.clone();
        want.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        ensure!(
            items.len() == want.len(),
            "{name}: {} items, TensorFlow lists {}",
            items.len(),
            want.len()
        );
        for (item, v) in items.iter().zip(&want) {
            let object = item
                .as_object()
                .ok_or_else(|| anyhow!("{name}: item {item} is not an object"))?;
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort();
            ensure!(keys == ["dtype", "name", "shape"], "{name}: keys {keys:?}");
            let shape: Vec<u64> = serde_json::from_value(item["shape"].clone())?;
            ensure!(
                item["name"] == v.name.as_str()
                    && item["dtype"] == v.dtype.as_str()
                    && shape == v.shape,
                "{name}: item {item} should be {v:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn ls_lists_partitioned_variables_once_with_their_full_shape() -> Result<()> {
    let run = ckpt([Path::new("ls"), &fixture("partitioned")])?.success()?;
    assert_eq!(
        run.stdout,
        "part/embedding\tfloat32\t[7,3]\n\
         part/grid\tfloat32\t[4,6]\n\
         part/pv\tfloat32\t[6,2]\n\
         plain\tfloat32\t[3]\n"
    );
    Ok(())
}

#[test]
fn ls_lists_both_shards_and_tf2_object_keys() -> Result<()> {
    let run = ckpt([Path::new("ls"), &fixture("sharded")])?.success()?;
    assert_eq!(
        run.stdout,
        "dev0/step\tint64\t[]\n\
         dev0/weights\tfloat32\t[3,4]\n\
         dev1/bias\tfloat64\t[2]\n\
         dev1/weights\tfloat32\t[4,2]\n"
    );
    let run = ckpt([Path::new("ls"), &fixture("tf2_weights")])?.success()?;
    assert_eq!(
        run.stdout,
        "_CHECKPOINTABLE_OBJECT_GRAPH\tstring\t[]\n\
         layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE\tfloat32\t[8]\n\
         layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE\tfloat32\t[4,8]\n\
         layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE\tfloat32\t[3]\n\
         layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE\tfloat32\t[8,3]\n"
    );
    Ok(())
}

#[test]
fn path_forms_pick_the_checkpoint_the_user_means() -> Result<()> {
    let dir = fixture("tf1_saver");
    // The `checkpoint` file holds relative paths; its latest is model.ckpt-4000.
    for (path, step) in [
        (dir.clone(), "4000"),
        (dir.join("model.ckpt-2000"), "2000"),
        (dir.join("model.ckpt-3000.meta"), "3000"),
        (dir.join("model.ckpt-2000.index"), "2000"),
        (dir.join("model.ckpt-3000.data-00000-of-00001"), "3000"),
    ] {
        assert_eq!(
            shown_values(&path, "global_step")?,
            step,
            "{}",
            path.display()
        );
    }
    // TF2 CheckpointManager: latest ckpt-3, whose save counter is 3.
    assert_eq!(
        shown_values(&fixture("tf2"), "save_counter/.ATTRIBUTES/VARIABLE_VALUE")?,
        "3"
    );
    Ok(())
}

#[test]
fn checkpoint_file_with_an_absolute_path_is_followed() -> Result<()> {
    let (_temp, run_dir) = copy_fixture("tf1_saver")?;
    let elsewhere = run_dir
        .parent()
        .ok_or_else(|| anyhow!("no parent"))?
        .join("elsewhere");
    std::fs::create_dir(&elsewhere)?;
    let target = run_dir.join("model.ckpt-3000");
    std::fs::write(
        elsewhere.join("checkpoint"),
        format!(
            "model_checkpoint_path: {:?}\nall_model_checkpoint_paths: {:?}\n",
            target.display().to_string(),
            target.display().to_string()
        ),
    )?;
    assert_eq!(shown_values(&elsewhere, "global_step")?, "3000");
    Ok(())
}

#[test]
fn ls_of_nothing_names_the_path() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let missing = temp.path().join("no/such/model.ckpt");
    let run = ckpt([Path::new("ls"), &missing])?.failure()?;
    run.stderr_has(&[&missing.display().to_string()])?;
    // An empty directory: no `checkpoint` file and no index.
    let run = ckpt([Path::new("ls"), temp.path()])?.failure()?;
    run.stderr_has(&[&temp.path().display().to_string()])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ckpt show
// ---------------------------------------------------------------------------------------

#[test]
fn show_prints_dtype_shape_and_numpy_like_values() -> Result<()> {
    let dtypes = fixture("dtypes");
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "float32",
            "float32",
            "[14]",
            "[0. -0. 1. -2. 3.4028235e38 1.1754944e-38 1e-45 1.1754942e-38 inf -inf nan nan nan 0.33333334]",
        ),
        (
            "bfloat16",
            "bfloat16",
            "[12]",
            "[0. -0. 1. -2. 3.3895314e38 1.1754944e-38 9.1835e-41 inf -inf nan nan 0.33398438]",
        ),
        ("bool", "bool", "[5]", "[True False False True True]"),
        ("int8", "int8", "[8]", "[-128 127 0 1 126 -127 -1 -2]"),
        (
            "uint64",
            "uint64",
            "[6]",
            "[0 18446744073709551615 0 1 18446744073709551614 1]",
        ),
        (
            "complex64",
            "complex64",
            "[4]",
            "[1.+2.j -0.-0.j inf+nanj -1.5+1e-40j]",
        ),
        (
            "rank4/int16",
            "int16",
            "[2,1,3,2]",
            "[[[[-5 -4]\n   [-3 -2]\n   [-1 0]]]\n\n\n [[[1 2]\n   [3 4]\n   [5 6]]]]",
        ),
        ("scalar/float32", "float32", "[]", "-0."),
        ("scalar/float64", "float64", "[]", "3.14159265"),
        ("scalar/bfloat16", "bfloat16", "[]", "-2."),
        ("scalar/bool", "bool", "[]", "True"),
        ("scalar/uint64", "uint64", "[]", "18446744073709551615"),
        ("string/scalar", "string", "[]", "b'hello'"),
        (
            "string/matrix",
            "string",
            "[2,3]",
            "[[b'r0c0' b'r0c1' b'']\n [b'r1c0' b'\\xff' b'r1c2-longer']]",
        ),
        ("string/one_empty", "string", "[1]", "[b'']"),
        ("string/empty", "string", "[0]", "[]"),
        ("string/empty_2d", "string", "[2,0]", "[]"),
        ("empty/float32_3x0", "float32", "[3,0]", "[]"),
        ("empty/int64_0x5", "int64", "[0,5]", "[]"),
        ("unicode/üñî", "float64", "[1]", "[3.5]"),
    ];
    for (name, dtype, shape, values) in cases {
        let run = ckpt([Path::new("show"), &dtypes, Path::new(name)])?.success()?;
        assert_eq!(
            run.stdout,
            format!("name:  {name}\ndtype: {dtype}\nshape: {shape}\n{values}\n"),
            "ckpt show {name}"
        );
    }
    Ok(())
}

#[test]
fn shown_values_agree_with_tensorflow() -> Result<()> {
    let mut checked = 0;
    for name in ["dtypes", "partitioned", "sharded", "tf1_saver", "tf2"] {
        let expected = expected(name)?;
        let c = expected.default_checkpoint()?;
        for v in &c.variables {
            let Some(bytes) = &v.bytes else { continue };
            if v.dtype.starts_with("complex") {
                continue;
            }
            let text = shown_values(&fixture(name), &v.name)?;
            check_shown_values(&text, &v.dtype, bytes, &format!("{name}: {}", v.name))?;
            checked += 1;
        }
    }
    ensure!(checked > 50, "only {checked} tensors checked");
    Ok(())
}

#[test]
fn shown_strings_are_python_bytes_of_tensorflow_values() -> Result<()> {
    let c = expected("dtypes")?.checkpoints.remove(0);
    for v in c.variables.iter().filter(|v| v.dtype == "string") {
        let strings = v
            .strings
            .as_ref()
            .ok_or_else(|| anyhow!("{}: no strings", v.name))?;
        let text = shown_values(&fixture("dtypes"), &v.name)?;
        let want = match v.shape.as_slice() {
            [] => python_bytes(&strings[0]),
            [_] => format!(
                "[{}]",
                strings
                    .iter()
                    .map(|s| python_bytes(s))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            _ if strings.is_empty() => "[]".to_string(),
            [_, cols] => {
                let rows: Vec<String> = strings
                    .chunks(*cols as usize)
                    .map(|row| {
                        let items: Vec<String> = row.iter().map(|s| python_bytes(s)).collect();
                        format!("[{}]", items.join(" "))
                    })
                    .collect();
                format!("[{}]", rows.join("\n "))
            }
            other => bail!("{}: no expectation for shape {other:?}", v.name),
        };
        assert_eq!(text, want, "ckpt show {}", v.name);
    }
    Ok(())
}

#[test]
fn large_tensors_are_summarized_and_full_prints_everything() -> Result<()> {
    let mlp = fixture("mlp");
    // fc1/weights [784,256]: rows and columns cut to their first and last three.
    let text = shown_values(&mlp, "fc1/weights")?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert_eq!(lines[3], " ...");
    for line in lines.iter().filter(|l| **l != " ...") {
        let tokens = value_tokens(line);
        assert_eq!(tokens.len(), 7, "{line}");
        assert_eq!(tokens[3], "...", "{line}");
    }
    // The first row's first three values are TensorFlow's.
    let expected = expected("mlp")?;
    let head = expected
        .default_checkpoint()?
        .variable("fc1/weights")?
        .head
        .clone()
        .ok_or_else(|| anyhow!("no head_hex for fc1/weights"))?;
    let tokens = value_tokens(lines[0]);
    check_shown_values(
        &tokens[..3].join(" "),
        "float32",
        &head[..12],
        "fc1/weights",
    )?;

    // fc3/weights [128,10] has 1280 elements: summarized by default, whole with --full.
    let summarized = shown_values(&mlp, "fc3/weights")?;
    assert_eq!(summarized.lines().count(), 7);
    let run = ckpt([
        Path::new("show"),
        Path::new("--full"),
        &mlp,
        Path::new("fc3/weights"),
    ])?
    .success()?;
    let values = run.stdout.lines().skip(3).collect::<Vec<_>>().join("\n");
    assert_eq!(values.lines().count(), 128);
    assert!(!values.contains("..."));
    assert_eq!(value_tokens(&values).len(), 1280);
    Ok(())
}

#[test]
fn show_of_an_unknown_tensor_names_it_and_suggests() -> Result<()> {
    let run = ckpt([
        Path::new("show"),
        &fixture("tf1_saver"),
        Path::new("dense/kernl"),
    ])?
    .failure()?;
    run.stderr_has(&[
        "tensor \"dense/kernl\" not found",
        "model.ckpt-4000",
        "did you mean \"dense/kernel\"",
    ])?;
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let run = ckpt([Path::new("show"), &fixture("dtypes"), Path::new("")])?.failure()?;
    run.stderr_has(&["tensor \"\" not found"])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ckpt verify
// ---------------------------------------------------------------------------------------

#[test]
fn verify_passes_every_fixture_checkpoint() -> Result<()> {
    for name in CHECKPOINT_FIXTURES {
        for c in &expected(name)?.checkpoints {
            let run = ckpt([Path::new("verify"), &fixture(name).join(&c.prefix)])?.success()?;
            let want = format!(
                "ok: {} tensors, {} bytes verified in ",
                c.variables.len(),
                c.data_bytes()?
            );
            ensure!(
                run.stdout.starts_with(&want) && run.stdout.ends_with(" GB/s)\n"),
                "{name}/{}: `ckpt verify` printed {:?}, want {want:?}...",
                c.prefix,
                run.stdout
            );
        }
    }
    Ok(())
}

#[test]
fn a_flipped_bit_in_any_tensor_is_found_and_named() -> Result<()> {
    for name in ["dtypes", "partitioned", "sharded"] {
        let (_temp, dir) = copy_fixture(name)?;
        let expected = expected(name)?;
        let c = expected.default_checkpoint()?;
        for entry in c.entries.iter().filter(|e| e.size > 0) {
            let tensor = entry_tensor(&entry.key)?;
            let file = c
                .data_files
                .get(usize::try_from(entry.shard_id)?)
                .ok_or_else(|| anyhow!("{name}: no shard {}", entry.shard_id))?;
            let path = dir.join(file);
            for (at, bit) in [
                (entry.offset, 0),
                (entry.offset + entry.size / 2, 5),
                (entry.offset + entry.size - 1, 7),
            ] {
                flip_bit(&path, at, bit)?;
                let run = ckpt([Path::new("verify"), &dir])?.failure()?;
                run.stderr_has(&[file, &format!("tensor \"{tensor}\"")])?;
                ensure!(
                    run.stderr.contains("checksum mismatch") || run.stderr.contains("corrupt"),
                    "{name}: flip at {at}: {}",
                    run.stderr
                );
                // Reading the tensor meets the same damage.
                let run = ckpt([Path::new("show"), &dir, Path::new(&tensor)])?.failure()?;
                run.stderr_has(&[file, &format!("tensor \"{tensor}\"")])?;
                flip_bit(&path, at, bit)?;
            }
        }
        ckpt([Path::new("verify"), &dir])?.success()?;
    }
    Ok(())
}

#[test]
fn a_flipped_bit_in_an_index_data_block_is_refused() -> Result<()> {
    for name in ["dtypes", "many"] {
        let (_temp, dir) = copy_fixture(name)?;
        let expected = expected(name)?;
        let c = expected.default_checkpoint()?;
        ensure!(!c.index_blocks.is_empty());
        let index = dir.join(format!("{}.index", c.prefix));
        // The middle of the first, the middle and the last data block.
        let picks = [0, c.index_blocks.len() / 2, c.index_blocks.len() - 1];
        for &b in &picks {
            let (offset, size) = c.index_blocks[b];
            let at = offset + size / 2;
            flip_bit(&index, at, 2)?;
            for command in ["verify", "ls"] {
                let run = ckpt([Path::new(command), &dir])?.failure()?;
                run.stderr_has(&[
                    &format!("{}.index", c.prefix),
                    "checksum mismatch",
                    &format!("block at offset {offset}"),
                ])?;
            }
            flip_bit(&index, at, 2)?;
        }
    }
    Ok(())
}

/// Reads one varint64 of a table footer.
fn varint(bytes: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes
            .get(*at)
            .ok_or_else(|| anyhow!("footer ends in a varint"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("varint too long")
}

#[test]
fn every_single_bit_flip_in_an_index_is_refused_or_harmless() -> Result<()> {
    let (_temp, dir) = copy_fixture("dtypes")?;
    let index = dir.join("ckpt.index");
    let original = std::fs::read(&index)?;
    let len = original.len() as u64;
    // The footer's handles: the metaindex block (which TensorFlow never reads either), then
    // the index block. Each block is followed by a type byte and a crc32c.
    let mut at = original.len() - 48;
    let (_meta_offset, _meta_size) = (varint(&original, &mut at)?, varint(&original, &mut at)?);
    let (index_offset, index_size) = (varint(&original, &mut at)?, varint(&original, &mut at)?);
    let c = expected("dtypes")?.checkpoints.remove(0);
    let mut guarded: Vec<(u64, u64)> = c
        .index_blocks
        .iter()
        .map(|&(offset, size)| (offset, offset + size + 5))
        .collect();
    guarded.push((index_offset, index_offset + index_size + 5));
    guarded.push((len - 8, len)); // the magic number
    let mut refused = 0;
    for at in 0..len {
        let bit = (at % 8) as u8;
        flip_bit(&index, at, bit)?;
        let run = ckpt([Path::new("verify"), &dir])?;
        ensure!(
            !run.stderr.contains("panicked"),
            "flip at {at}: {}",
            run.stderr
        );
        let must_fail = guarded
            .iter()
            .any(|&(start, end)| (start..end).contains(&at));
        if must_fail || run.code != Some(0) {
            let run = run.failure().with_context(|| format!("flip at {at}"))?;
            run.stderr_has(&["ckpt.index"])?;
            refused += 1;
        } else {
            // A harmless flip must not change what is read.
            ensure!(
                run.stdout.starts_with("ok: 40 tensors, 1284 bytes"),
                "flip at {at}: {}",
                run.stdout
            );
        }
        flip_bit(&index, at, bit)?;
    }
    ensure!(refused > 1100, "only {refused} of {len} flips refused");
    ckpt([Path::new("verify"), &dir])?.success()?;
    Ok(())
}

#[test]
fn truncated_data_file_names_the_first_tensor_past_the_end() -> Result<()> {
    let (_temp, dir) = copy_fixture("dtypes")?;
    let c = expected("dtypes")?.checkpoints.remove(0);
    let data = dir.join("ckpt.data-00000-of-00001");
    for len in [1000, 1, 0] {
        truncate(&data, len)?;
        let mut cut: Vec<&Entry> = c
            .entries
            .iter()
            .filter(|e| e.size > 0 && e.offset + e.size > len)
            .collect();
        cut.sort_by(|a, b| a.key.cmp(&b.key));
        let first = entry_tensor(&cut[0].key)?;
        let run = ckpt([Path::new("verify"), &dir])?.failure()?;
        run.stderr_has(&[
            "ckpt.data-00000-of-00001",
            &format!("tensor \"{first}\""),
            "lies outside the file",
            &format!("({len} bytes)"),
        ])?;
    }
    Ok(())
}

#[test]
fn truncated_empty_or_garbage_index_is_refused() -> Result<()> {
    let original = std::fs::read(fixture("dtypes").join("ckpt.index"))?;
    let (_temp, dir) = copy_fixture("dtypes")?;
    let index = dir.join("ckpt.index");
    let len = original.len() as u64;
    for cut in [0, 1, 10, 47, 48, 500, len - 49, len - 1] {
        std::fs::write(&index, &original)?;
        truncate(&index, cut)?;
        for command in ["verify", "ls"] {
            let run = ckpt([Path::new(command), &dir])?
                .failure()
                .with_context(|| format!("index cut to {cut} bytes"))?;
            run.stderr_has(&["ckpt.index"])?;
        }
    }
    let run = {
        std::fs::write(&index, b"")?;
        ckpt([Path::new("verify"), &dir])?.failure()?
    };
    run.stderr_has(&["ckpt.index", "too short"])?;

    // Garbage of the right length; then garbage ending in the right magic number.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let garbage: Vec<u8> = (0..original.len())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&index, &garbage)?;
    let run = ckpt([Path::new("verify"), &dir])?.failure()?;
    run.stderr_has(&["ckpt.index", "bad magic"])?;
    let mut with_magic = garbage;
    let magic_at = with_magic.len() - 8;
    with_magic[magic_at..].copy_from_slice(&original[original.len() - 8..]);
    std::fs::write(&index, &with_magic)?;
    let run = ckpt([Path::new("verify"), &dir])?.failure()?;
    run.stderr_has(&["ckpt.index"])?;
    Ok(())
}

#[test]
fn garbage_data_file_is_a_checksum_error() -> Result<()> {
    let (_temp, dir) = copy_fixture("tf1_saver")?;
    let data = dir.join("model.ckpt-4000.data-00000-of-00001");
    let len = std::fs::metadata(&data)?.len();
    std::fs::write(&data, vec![0x5a; len as usize])?;
    let run = ckpt([Path::new("verify"), &dir])?.failure()?;
    // The first tensor in name order.
    run.stderr_has(&[
        "model.ckpt-4000.data-00000-of-00001",
        "tensor \"counter\"",
        "checksum mismatch",
    ])?;
    // The other checkpoints of the directory are untouched.
    ckpt([Path::new("verify"), &dir.join("model.ckpt-3000")])?.success()?;
    Ok(())
}

#[test]
fn a_missing_shard_is_named_with_a_tensor_that_needs_it() -> Result<()> {
    let c = expected("sharded")?.checkpoints.remove(0);
    for (shard, file) in c.data_files.iter().enumerate() {
        let (_temp, dir) = copy_fixture("sharded")?;
        std::fs::remove_file(dir.join(file))?;
        let needs: Vec<String> = c
            .entries
            .iter()
            .filter(|e| e.shard_id == shard as u64)
            .map(|e| entry_tensor(&e.key))
            .collect::<Result<_>>()?;
        for command in ["verify", "ls"] {
            let run = ckpt([Path::new(command), &dir])?.failure()?;
            run.stderr_has(&[file, "missing data file", &format!("shard {shard} of 2")])?;
            ensure!(
                needs
                    .iter()
                    .any(|t| run.stderr.contains(&format!("tensor \"{t}\""))),
                "stderr should name one of {needs:?}: {}",
                run.stderr
            );
        }
    }
    Ok(())
}

#[test]
fn a_missing_index_is_reported_not_guessed() -> Result<()> {
    let (_temp, dir) = copy_fixture("dtypes")?;
    std::fs::remove_file(dir.join("ckpt.index"))?;
    let index = dir.join("ckpt.index").display().to_string();
    for path in [
        dir.join("ckpt"),
        dir.join("ckpt.data-00000-of-00001"),
        dir.clone(),
    ] {
        let run = ckpt([Path::new("verify"), &path])?.failure()?;
        run.stderr_has(&["no checkpoint at", &path.display().to_string()])?;
        if path != dir {
            run.stderr_has(&[&index])?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ckpt export
// ---------------------------------------------------------------------------------------

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
    assert_eq!(scalar.data, (-2.0f32).to_le_bytes());
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
            assert_eq!(Some(&array.data), v.bytes.as_ref(), "{name}: {array_name}");
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

    let (_damaged_temp, dir) = copy_fixture("tf1_saver")?;
    flip_bit(&dir.join("model.ckpt-4000.data-00000-of-00001"), 20, 1)?;
    let out_dir = temp.path().join("out");
    std::fs::create_dir(&out_dir)?;
    for file in ["bad.npz", "bad.safetensors"] {
        let run = ckpt([Path::new("export"), &dir, &out_dir.join(file)])?.failure()?;
        run.stderr_has(&["checksum mismatch"])?;
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

// ---------------------------------------------------------------------------------------
// ckpt import
// ---------------------------------------------------------------------------------------

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
    let want_listing: String = c
        .listing()
        .lines()
        .map(|line| format!("{}\n", line.replace("\tbfloat16\t", "\tfloat32\t")))
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
    let refs: Vec<(&str, &NpyArray)> = arrays.iter().map(|(n, a)| (*n, a)).collect();
    let prefix = make_checkpoint(temp.path(), "hand", &refs)?;
    let run = ckpt([Path::new("ls"), &prefix])?.success()?;
    assert_eq!(
        run.stdout,
        "dense/kernel\tfloat32\t[2,3]\n\
         flags\tbool\t[3]\n\
         global_step\tint64\t[]\n\
         half\tfloat16\t[2]\n\
         names\tstring\t[2]\n\
         text\tstring\t[2]\n"
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
         step\tint64\t[]\n"
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
    import_fails(&empty, &[])?;

    let whole = dir.join("whole.npz");
    write_npz(&whole, &[("a", &good), ("b", &good)])?;
    let bytes = std::fs::read(&whole)?;
    for cut in [bytes.len() / 2, bytes.len() - 10] {
        let truncated = dir.join(format!("truncated{cut}.npz"));
        std::fs::write(&truncated, &bytes[..cut])?;
        import_fails(&truncated, &[])?;
    }

    // A good entry first, so the writer has started when the bad one comes.
    let short = dir.join("short.npz");
    write_npz(
        &short,
        &[("a", &good), ("bad", &npy("<f4", vec![10], vec![0; 8]))],
    )?;
    import_fails(&short, &["entry \"bad.npy\"", "8 bytes"])?;

    let big_endian = dir.join("big_endian.npz");
    write_npz(
        &big_endian,
        &[("a", &good), ("swapped", &npy(">f4", vec![1], vec![0; 4]))],
    )?;
    import_fails(&big_endian, &["entry \"swapped.npy\"", ">f4"])?;

    let object = dir.join("object.npz");
    write_npz(
        &object,
        &[("a", &good), ("obj", &npy("|O", vec![1], vec![0; 8]))],
    )?;
    import_fails(&object, &["entry \"obj.npy\""])?;

    let huge = dir.join("huge.npz");
    write_npz(
        &huge,
        &[("huge", &npy("<f8", vec![1 << 40, 1 << 40], vec![0; 16]))],
    )?;
    import_fails(&huge, &["entry \"huge.npy\""])?;

    let unnamed = dir.join("unnamed.npz");
    write_npz(&unnamed, &[("", &good)])?;
    import_fails(&unnamed, &["empty"])?;
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
    ckpt([Path::new("import"), &bad, &prefix])?.failure()?;
    assert_eq!(
        file_names(prefix.parent().ok_or_else(|| anyhow!("no parent"))?)?,
        ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    );
    assert_eq!(listed_names(&prefix)?, ["w"]);
    assert_eq!(shown_values(&prefix, "w")?, "[1. 2.]");
    ckpt([Path::new("verify"), &prefix])?.success()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ckpt merge, rename, drop
// ---------------------------------------------------------------------------------------

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
             shared\tint64\t[]\n"
        );
        assert_eq!(shown_values(&out, "shared")?, shared, "--prefer {prefer}");
        ckpt([Path::new("verify"), &out])?.success()?;
        let npz = dir.join(format!("{prefer}.npz"));
        ckpt([Path::new("export"), &out, &npz])?.success()?;
        let arrays: BTreeMap<String, NpyArray> = read_npz_file(&npz)?.into_iter().collect();
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
    assert_eq!(
        file_names(temp.path())?,
        ["merged.data-00000-of-00001", "merged.index"]
    );
    let mut want = expected("partitioned")?.checkpoints.remove(0).variables;
    want.extend(expected("sharded")?.checkpoints.remove(0).variables);
    want.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let listing: String = want
        .iter()
        .map(|v| format!("{}\t{}\t{}\n", v.name, v.dtype, shape_text(&v.shape)))
        .collect();
    assert_eq!(ckpt([Path::new("ls"), &out])?.success()?.stdout, listing);
    ckpt([Path::new("verify"), &out])?.success()?;
    let npz = temp.path().join("merged.npz");
    ckpt([Path::new("export"), &out, &npz])?.success()?;
    for (name, array) in read_npz_file(&npz)? {
        let v = want
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| anyhow!("unexpected {name}"))?;
        assert_eq!(Some(&array.data), v.bytes.as_ref(), "{name}");
    }
    Ok(())
}

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
         model/res_scale\tfloat64\t[2]\n"
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
            Some(&array.data),
            c.variable(&original)?.bytes.as_ref(),
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
    assert_eq!(file_names(temp.path())?, Vec::<String>::new());
    Ok(())
}

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
    .stderr_has(&["wrote 7 tensors", "(13 dropped)"])?;
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
    let arrays: Vec<(&str, &NpyArray)> = names.iter().map(|n| (*n, &one)).collect();
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
    let run = ckpt([
        Path::new("drop"),
        &fixture("tf1_saver"),
        &temp.path().join("none"),
        Path::new("--match"),
        Path::new("[z-a]"),
    ])?
    .failure()?;
    run.stderr_has(&["[z-a]"])?;
    assert_eq!(
        file_names(temp.path())?,
        ["out.data-00000-of-00001", "out.index"]
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// --help
// ---------------------------------------------------------------------------------------

#[test]
fn every_subcommand_has_help_naming_its_arguments() -> Result<()> {
    let cases: &[(&str, &[&str])] = &[
        ("ls", &["<PATH>", "--json"]),
        ("show", &["<PATH>", "<NAME>", "--full"]),
        ("verify", &["<PATH>"]),
        ("export", &["<PATH>", "<OUT>", ".npz", ".safetensors"]),
        ("import", &["<INPUT>", "<OUT_PREFIX>", "bfloat16"]),
        (
            "merge",
            &["<OUT_PREFIX>", "<INPUTS>...", "--prefer", "first", "last"],
        ),
        ("rename", &["<PATH>", "<OUT_PREFIX>", "--from", "--to"]),
        (
            "drop",
            &["<PATH>", "<OUT_PREFIX>", "--match", "--optimizer"],
        ),
    ];
    for (command, mentions) in cases {
        let run = ckpt([*command, "--help"])?.success()?;
        ensure!(
            run.stdout.contains(&format!("Usage: ckpt {command}")),
            "{command} --help: {}",
            run.stdout
        );
        for m in *mentions {
            ensure!(
                run.stdout.contains(m),
                "`ckpt {command} --help` should mention {m}: {}",
                run.stdout
            );
        }
    }
    let run = ckpt(["--help"])?.success()?;
    for (command, _) in cases {
        ensure!(
            run.stdout.contains(&format!("  {command} ")),
            "`ckpt --help` should list {command}: {}",
            run.stdout
        );
    }
    // No subcommand: a usage error, not a crash.
    let run = ckpt(Vec::<&str>::new())?;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("Usage: ckpt"), "{}", run.stderr);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Hostile index entries, written with the project's own table writer
// ---------------------------------------------------------------------------------------

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The key/value pairs of an `.index` file.
fn index_entries(path: &Path) -> Result<Entries> {
    let bytes = std::fs::read(path)?;
    let table = ckpt_table::Table::open(&bytes)?;
    table
        .iter()
        .map(|e| e.map(|(k, v)| (k, v.into_owned())).map_err(Into::into))
        .collect()
}

fn write_index(path: &Path, entries: &Entries) -> Result<()> {
    let mut builder =
        ckpt_table::TableBuilder::new(Vec::new(), ckpt_table::TableOptions::default());
    for (key, value) in entries {
        builder.add(key, value)?;
    }
    std::fs::write(path, builder.finish()?)?;
    Ok(())
}

fn decode_entry(value: &[u8]) -> Result<ckpt_proto::BundleEntryProto> {
    use ckpt_proto::Message;
    Ok(ckpt_proto::BundleEntryProto::decode(value)?)
}

fn encode<M: ckpt_proto::Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

#[test]
fn hostile_index_entries_are_refused_without_panic() -> Result<()> {
    use ckpt_proto::tensor_shape_proto::Dim;
    use ckpt_proto::{BundleHeaderProto, TensorShapeProto};

    let (_temp, dir) = copy_fixture("tf1_saver")?;
    let index = dir.join("model.ckpt-4000.index");
    let original = index_entries(&index)?;
    let header = original
        .iter()
        .find(|(k, _)| k.is_empty())
        .map(|(_, v)| BundleHeaderProto::decode(&v[..]))
        .transpose()?
        .ok_or_else(|| anyhow!("no header entry"))?;
    let kernel = original
        .iter()
        .find(|(k, _)| k == b"dense/kernel")
        .map(|(_, v)| decode_entry(v))
        .transpose()?
        .ok_or_else(|| anyhow!("no dense/kernel entry"))?;
    let dims = |sizes: &[i64]| {
        Some(TensorShapeProto {
            dim: sizes
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        })
    };

    use ckpt_proto::Message;
    type Mutation = Box<dyn Fn(&mut ckpt_proto::BundleEntryProto)>;
    // Changes to dense/kernel's entry, and what the error must say.
    let entry_cases: Vec<(&str, Mutation, &[&str])> = vec![
        (
            "shard id out of range",
            Box::new(|e| e.shard_id = 7),
            &["shard"],
        ),
        (
            "negative shard id",
            Box::new(|e| e.shard_id = -1),
            &["shard"],
        ),
        ("offset past the end", Box::new(|e| e.offset = 1 << 40), &[]),
        (
            "offset + size overflows",
            Box::new(|e| {
                e.offset = i64::MAX - 4;
                e.size = 48
            }),
            &[],
        ),
        ("negative offset", Box::new(|e| e.offset = -16), &[]),
        ("negative size", Box::new(|e| e.size = -48), &[]),
        ("size disagrees with shape", Box::new(|e| e.size = 44), &[]),
        (
            "element count overflows",
            Box::new(move |e| e.shape = dims(&[1 << 32, 1 << 32, 1 << 20])),
            &[],
        ),
        (
            "negative dimension",
            Box::new(move |e| e.shape = dims(&[-4, -3])),
            &[],
        ),
        ("unknown dtype", Box::new(|e| e.dtype = 999), &[]),
        ("invalid dtype", Box::new(|e| e.dtype = 0), &[]),
        (
            "wrong checksum",
            Box::new(|e| e.crc32c ^= 1),
            &["checksum mismatch"],
        ),
    ];
    for (what, mutate, mentions) in &entry_cases {
        let mut entry = kernel.clone();
        mutate(&mut entry);
        let entries: Entries = original
            .iter()
            .map(|(k, v)| {
                let v = if k == b"dense/kernel" {
                    encode(&entry)
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        write_index(&index, &entries)?;
        for command in ["verify", "export"] {
            let mut args = vec![Path::new(command), &dir];
            let out = dir.join("out.npz");
            if command == "export" {
                args.push(&out);
            }
            let run = ckpt(args)?.failure().with_context(|| what.to_string())?;
            run.stderr_has(&["model.ckpt-4000", "\"dense/kernel\""])
                .with_context(|| what.to_string())?;
            run.stderr_has(mentions).with_context(|| what.to_string())?;
            ensure!(!out.exists(), "{what}: export left {}", out.display());
        }
    }

    // Changes to the header entry.
    let header_cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "two billion shards",
            encode(&BundleHeaderProto {
                num_shards: 2_000_000_000,
                ..header.clone()
            }),
        ),
        (
            "no shards",
            encode(&BundleHeaderProto {
                num_shards: 0,
                ..header.clone()
            }),
        ),
        (
            "negative shards",
            encode(&BundleHeaderProto {
                num_shards: -3,
                ..header.clone()
            }),
        ),
        (
            "unknown endianness",
            encode(&BundleHeaderProto {
                endianness: 9,
                ..header.clone()
            }),
        ),
        ("garbage", b"\xff\xff\xff\xff\x0f".to_vec()),
    ];
    for (what, value) in &header_cases {
        let entries: Entries = original
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if k.is_empty() {
                        value.clone()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        write_index(&index, &entries)?;
        for command in ["verify", "ls"] {
            let run = ckpt([Path::new(command), &dir])?
                .failure()
                .with_context(|| what.to_string())?;
            run.stderr_has(&["model.ckpt-4000.index"])
                .with_context(|| what.to_string())?;
        }
    }

    // No header entry at all; garbage where an entry proto should be.
    let headless: Entries = original
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .cloned()
        .collect();
    write_index(&index, &headless)?;
    ckpt([Path::new("ls"), &dir])?
        .failure()?
        .stderr_has(&["model.ckpt-4000.index"])?;
    let garbled: Entries = original
        .iter()
        .map(|(k, v)| {
            let v = if k == b"dense/kernel" {
                b"\x0a\xff\xff\xff\xff\xff".to_vec()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    write_index(&index, &garbled)?;
    ckpt([Path::new("ls"), &dir])?
        .failure()?
        .stderr_has(&["model.ckpt-4000.index", "\"dense/kernel\""])?;

    // Put the original back: the copy is whole again.
    write_index(&index, &original)?;
    ckpt([Path::new("verify"), &dir])?.success()?;
    Ok(())
}

#[test]
fn unwritable_destinations_are_errors_naming_them() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let blocker = temp.path().join("not_a_dir");
    std::fs::write(&blocker, b"a file where a directory should be")?;

    let out = blocker.join("out.npz");
    let run = ckpt([Path::new("export"), &fixture("tf1_saver"), &out])?.failure()?;
    run.stderr_has(&["not_a_dir"])?;

    let input = temp.path().join("in.npz");
    write_npz(&input, &[("w", &f32_npy(vec![1], &[1.0]))])?;
    let prefix = blocker.join("model.ckpt");
    let run = ckpt([Path::new("import"), &input, &prefix])?.failure()?;
    run.stderr_has(&["not_a_dir"])?;

    let run = ckpt([Path::new("merge"), &prefix, &fixture("tf1_saver")])?.failure()?;
    run.stderr_has(&["not_a_dir"])?;
    let run = ckpt([
        Path::new("drop"),
        &fixture("tf1_saver"),
        &prefix,
        Path::new("--optimizer"),
    ])?
    .failure()?;
    run.stderr_has(&["not_a_dir"])?;
    assert_eq!(
        file_names(temp.path())?,
        ["in.npz".to_string(), "not_a_dir".to_string()]
    );
    Ok(())
}
