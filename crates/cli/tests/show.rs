//! Behaviour tests of `ckpt show`: the values it prints, numpy-like, against TensorFlow's own
//! readings of the fixtures.

#[allow(dead_code)]
mod common;

use std::path::Path;

use anyhow::{anyhow, bail, ensure, Result};
use common::{ckpt, expected, fixture, shown_values};

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
