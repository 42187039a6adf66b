//! numpy-like text for tensor values: nested brackets, and `...` past 1000 elements.

use ckpt_bundle::{DType, Tensor, TensorData};

/// numpy prints every element up to this many, and summarizes beyond it.
const THRESHOLD: u64 = 1000;
/// Elements kept at each end of a summarized axis.
const EDGE_ITEMS: u64 = 3;
/// Deeper shapes print flattened, which also bounds the recursion below.
const MAX_NESTED_RANK: usize = 32;

/// Formats one element at `index` (row-major) of a fixed-size tensor's bytes.
fn element(dtype: DType, bytes: &[u8], index: usize) -> String {
    let size = dtype.element_size().unwrap_or(1);
    let Some(raw) = index
        .checked_mul(size)
        .and_then(|start| bytes.get(start..start + size))
    else {
        return "?".to_string();
    };
    let le = |n: usize| -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..n].copy_from_slice(&raw[..n]);
        out
    };
    match dtype {
        DType::Float32 => float(
            f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as f64,
            true,
            false,
        ),
        DType::Float64 => float(f64::from_le_bytes(le(8)), false, false),
        DType::Float16 => float(
            half::f16::from_le_bytes([raw[0], raw[1]]).to_f64(),
            true,
            false,
        ),
        DType::BFloat16 => float(
            half::bf16::from_le_bytes([raw[0], raw[1]]).to_f64(),
            true,
            false,
        ),
        DType::Int8 => (raw[0] as i8).to_string(),
        DType::Int16 => i16::from_le_bytes([raw[0], raw[1]]).to_string(),
        DType::Int32 => i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]).to_string(),
        DType::Int64 => i64::from_le_bytes(le(8)).to_string(),
        DType::UInt8 => raw[0].to_string(),
        DType::UInt16 => u16::from_le_bytes([raw[0], raw[1]]).to_string(),
        DType::UInt32 => u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]).to_string(),
        DType::UInt64 => u64::from_le_bytes(le(8)).to_string(),
        DType::Bool => if raw[0] != 0 { "True" } else { "False" }.to_string(),
        DType::Complex64 => {
            let re = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as f64;
            let im = f32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]) as f64;
            complex(re, im, true)
        }
        DType::Complex128 => {
            let mut re = [0u8; 8];
            let mut im = [0u8; 8];
            re.copy_from_slice(&raw[..8]);
            im.copy_from_slice(&raw[8..16]);
            complex(f64::from_le_bytes(re), f64::from_le_bytes(im), false)
        }
        _ => "?".to_string(),
    }
}

/// `single`: the value came from a 32-bit or narrower float, so it prints as the shortest
/// text that reads back as that float (f32 `1e-5`, not its f64 expansion `9.999999747378752e-6`).
fn float(v: f64, single: bool, signed: bool) -> String {
    let text = if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-4) {
        if single {
            format!("{:e}", v as f32)
        } else {
            format!("{v:e}")
        }
    } else if v.fract() == 0.0 {
        format!("{v}.")
    } else {
        let shortest = if single {
            (v as f32).to_string()
        } else {
            v.to_string()
        };
        // numpy's default precision: at most 8 fractional digits.
        match shortest.split_once('.') {
            Some((_, fraction)) if fraction.len() > 8 => {
                format!("{v:.8}").trim_end_matches('0').to_string()
            }
            _ => shortest,
        }
    };
    if signed && !text.starts_with('-') {
        format!("+{text}")
    } else {
        text
    }
}

fn complex(re: f64, im: f64, single: bool) -> String {
    format!("{}{}j", float(re, single, false), float(im, single, true))
}

fn string_element(s: &[u8]) -> String {
    let mut out = String::from("b'");
    for &b in s {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('\'');
    out
}

/// numpy-style rendering of a tensor, summarized past 1000 elements.
pub fn summarize(tensor: &Tensor<'_>) -> String {
    render(tensor, tensor.num_elements() > THRESHOLD)
}

/// numpy-style rendering; with `summarize`, long axes show only their first and last 3 items.
pub fn render(tensor: &Tensor<'_>, summarize: bool) -> String {
    let format_one = |i: usize| -> String {
        match &tensor.data() {
            TensorData::Bytes(bytes) => element(tensor.dtype(), bytes, i),
            TensorData::Strings(strings) => strings
                .get(i)
                .map(|s| string_element(s))
                .unwrap_or_default(),
        }
    };
    if tensor.shape().is_empty() {
        return format_one(0);
    }
    if tensor.num_elements() == 0 {
        // numpy prints every empty array, whatever its shape, as `[]`.
        return "[]".to_string();
    }
    if tensor.shape().len() > MAX_NESTED_RANK {
        // Beyond any real model's rank: print flat rather than nest brackets that deep.
        let flat = [tensor.num_elements()];
        let mut out = String::new();
        render_axis(&flat, 0, 0, summarize, &format_one, &mut out);
        return format!("{out} (flattened from rank {})", tensor.shape().len());
    }
    let mut out = String::new();
    render_axis(tensor.shape(), 0, 0, summarize, &format_one, &mut out);
    out
}

/// Renders the sub-array of `shape[axis..]` starting at flat element `base`.
/// Recursion depth is the tensor rank, which TensorFlow caps at 254.
fn render_axis(
    shape: &[u64],
    axis: usize,
    base: u64,
    summarize: bool,
    one: &dyn Fn(usize) -> String,
    out: &mut String,
) {
    let len = shape[axis];
    let inner: u64 = shape[axis + 1..].iter().product();
    let indices: Vec<Option<u64>> = if summarize && len > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((len - EDGE_ITEMS..len).map(Some))
            .collect()
    } else {
        (0..len).map(Some).collect()
    };
    out.push('[');
    let last_axis = axis + 1 == shape.len();
    let separator = if last_axis {
        " ".to_string()
    } else {
        format!(
            "{}{}",
            "\n".repeat(shape.len() - axis - 1),
            " ".repeat(axis + 1)
        )
    };
    for (n, index) in indices.iter().enumerate() {
        if n > 0 {
            out.push_str(&separator);
        }
        match index {
            None => out.push_str("..."),
            Some(i) if last_axis => out.push_str(&one((base + i) as usize)),
            Some(i) => render_axis(shape, axis + 1, base + i * inner, summarize, one, out),
        }
    }
    out.push(']');
}

/// `[10,4]`-style shape text, `[]` for a scalar.
pub fn shape_text(shape: &[u64]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn f32_tensor(shape: Vec<u64>, values: &[f32]) -> Tensor<'static> {
        Tensor::from_vec(shape, values.to_vec()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn matrix_prints_like_numpy() {
        let t = f32_tensor(vec![2, 3], &[1.0, 2.5, -3.0, 0.0, 1e-5, 7.0]);
        assert_eq!(summarize(&t), "[[1. 2.5 -3.]\n [0. 1e-5 7.]]");
    }

    #[test]
    fn large_vectors_are_summarized() {
        let values: Vec<f32> = (0..2000).map(|v| v as f32).collect();
        let t = f32_tensor(vec![2000], &values);
        assert_eq!(summarize(&t), "[0. 1. 2. ... 1997. 1998. 1999.]");
    }

    #[test]
    fn strings_print_as_python_bytes() {
        let t = Tensor::from_strings(
            DType::String,
            vec![3],
            vec![
                Cow::Borrowed(b"a"),
                Cow::Borrowed(b""),
                Cow::Borrowed(b"\x00\xff'"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summarize(&t), "[b'a' b'' b'\\x00\\xff\\'']");
    }

    #[test]
    fn floats_print_at_their_own_precision() {
        // The f32 nearest 1e-5 is 9.999999747378752e-6: shortest as an f32, not as an f64.
        let t = f32_tensor(vec![3], &[0.1, 1e-5, 123456.79]);
        assert_eq!(summarize(&t), "[0.1 1e-5 123456.79]");
        let t = Tensor::from_vec(vec![3], vec![1e-5f32 as f64, 1e-5, 1.0 / 3.0])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summarize(&t), "[9.999999747378752e-6 1e-5 0.33333333]");
    }

    #[test]
    fn empty_arrays_print_as_brackets_whatever_their_shape() {
        for shape in [vec![0], vec![3, 0], vec![0, 5], vec![2, 0, 4]] {
            assert_eq!(summarize(&f32_tensor(shape, &[])), "[]");
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(shape_text(&[]), "[]");
        assert_eq!(shape_text(&[10, 4]), "[10,4]");
    }
}
