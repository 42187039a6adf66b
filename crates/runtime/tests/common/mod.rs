//! Helpers shared by the behaviour tests: a small `.npy` reader and fixture loading.

#![allow(dead_code)]

use std::error::Error;
use std::path::{Path, PathBuf};

use ckpt_runtime::Value;

pub type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// The repository's `fixtures/` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Reads a little-endian, C-order `.npy` file (format versions 1 to 3).
pub fn read_npy(path: &Path) -> TestResult<Value> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format!("{}: not an npy file", path.display()).into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len])?;
    let field = |key: &str| -> TestResult<&str> {
        let at = header.find(key).ok_or(format!("no {key} in npy header"))?;
        Ok(header[at + key.len()..].trim_start_matches([':', ' ', '\'']))
    };
    let descr: String = field("'descr'")?
        .chars()
        .take_while(|&c| c != '\'')
        .collect();
    if field("'fortran_order'")?.starts_with("True") {
        return Err("fortran-order npy files are not supported".into());
    }
    let shape_text = field("'shape'")?;
    let shape_text = &shape_text[1..shape_text.find(')').ok_or("bad shape")?];
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let data = &bytes[start + header_len..];
    let value = match descr.as_str() {
        "<f4" => Value::new(
            shape,
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>(),
        )?,
        "<f8" => Value::new(
            shape,
            data.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect::<Vec<_>>(),
        )?,
        "<i4" => Value::new(
            shape,
            data.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>(),
        )?,
        "<i8" => Value::new(
            shape,
            data.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect::<Vec<_>>(),
        )?,
        "<f2" => Value::new(
            shape,
            data.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        )?,
        "|u1" => Value::new(shape, data.to_vec())?,
        "|b1" => Value::new(shape, data.iter().map(|&b| b != 0).collect::<Vec<_>>())?,
        d if d.starts_with("|S") || d.starts_with("<U") => {
            // Fixed-width bytes (trailing NULs dropped, as numpy does) or UTF-32 code points.
            let width: usize = d[2..].parse()?;
            let item = if d.starts_with("<U") {
                width * 4
            } else {
                width
            };
            let n: usize = shape.iter().product();
            let mut strings = Vec::with_capacity(n);
            for i in 0..n {
                let raw = data
                    .get(i * item..(i + 1) * item)
                    .ok_or("npy data too short")?;
                let s: Vec<u8> = if d.starts_with("<U") {
                    raw.chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .take_while(|&c| c != 0)
                        .filter_map(char::from_u32)
                        .collect::<String>()
                        .into_bytes()
                } else {
                    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                    raw[..end].to_vec()
                };
                strings.push(s);
            }
            Value::new(shape, strings)?
        }
        other => return Err(format!("{}: unsupported npy dtype {other}", path.display()).into()),
    };
    Ok(value)
}

/// Asserts `got` matches TensorFlow's `want`: same dtype and shape; floats within 1e-5
/// relative (plus a 1e-6 absolute floor), everything else exactly.
pub fn assert_close(name: &str, got: &Value, want: &Value) -> TestResult {
    assert_within(name, got, want, 1e-5, 1e-6)
}

/// As [`assert_close`], with floats within `rel` relative plus `abs` absolute.
pub fn assert_within(name: &str, got: &Value, want: &Value, rel: f32, abs: f32) -> TestResult {
    if got.shape() != want.shape() {
        return Err(format!(
            "{name}: shape {:?}, TensorFlow has {:?}",
            got.shape(),
            want.shape()
        )
        .into());
    }
    if got.dtype() != want.dtype() {
        return Err(format!(
            "{name}: dtype {}, TensorFlow has {}",
            got.dtype(),
            want.dtype()
        )
        .into());
    }
    match (got, want) {
        (Value::F32(g), Value::F32(w)) => {
            for (i, (&a, &b)) in g.data().iter().zip(w.data()).enumerate() {
                let ok =
                    (a - b).abs() <= rel * b.abs() + abs || (a.is_nan() && b.is_nan()) || a == b;
                if !ok {
                    return Err(format!(
                        "{name}: element {i} is {a}, TensorFlow has {b} (shape {:?})",
                        got.shape()
                    )
                    .into());
                }
            }
        }
        _ => {
            if got != want {
                return Err(format!(
                    "{name}: values differ from TensorFlow's: {got:?} vs {want:?}"
                )
                .into());
            }
        }
    }
    Ok(())
}
