//! `Assert`: checks its scalar bool condition whenever it runs and fails with TensorFlow's
//! message, `assertion failed: [data 0] [data 1] ...`, each data tensor summarized as
//! `Tensor::SummarizeValue` does (at most `summarize` elements, floats printed as
//! `strings::StrCat` prints them). It has no outputs: other nodes depend on it through control
//! edges, so it runs only when a fetch needs one of them.

use std::fmt::Write as _;

use ckpt_graph::Node;

use crate::ops::{fmt_shape, kernel, node_error, op_bail, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let summarize = node.attr_i64_or("summarize", 3)?;
    let summarize = usize::try_from(summarize)
        .map_err(|_| node_error(node, format!("summarize must be >= 0, got {summarize}")))?;
    kernel(Assert { summarize })
}

#[derive(Debug)]
struct Assert {
    summarize: usize,
}

impl Kernel for Assert {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let Some((condition, data)) = inputs.split_first() else {
            op_bail!("Assert needs a condition input");
        };
        let cond = match condition {
            Value::Bool(t) if t.rank() == 0 => t.data()[0],
            Value::Bool(t) => op_bail!(
                "condition must be a scalar, got shape {}",
                fmt_shape(t.shape())
            ),
            other => op_bail!("condition must be bool, got {}", other.dtype()),
        };
        if cond {
            return Ok(Vec::new());
        }
        let parts: Vec<String> = data
            .iter()
            .map(|v| format!("[{}]", summarize(v, self.summarize)))
            .collect();
        op_bail!("assertion failed: {}", parts.join(" "))
    }

    /// Failing is its effect: it runs every time, even on constant inputs.
    fn is_pure(&self) -> bool {
        false
    }
}

/// `Tensor::SummarizeValue(max_entries)` (not the `print_v2` form).
pub(crate) fn summarize(v: &Value, max_entries: usize) -> String {
    match v {
        Value::F32(t) => summarize_with(t.shape(), t.data(), max_entries, |x| float_text(*x)),
        Value::F64(t) => summarize_with(t.shape(), t.data(), max_entries, |x| double_text(*x)),
        Value::F16(t) => {
            summarize_with(t.shape(), t.data(), max_entries, |x| float_text(x.to_f32()))
        }
        Value::BF16(t) => {
            summarize_with(t.shape(), t.data(), max_entries, |x| float_text(x.to_f32()))
        }
        Value::I32(t) => summarize_with(t.shape(), t.data(), max_entries, i32::to_string),
        Value::I64(t) => summarize_with(t.shape(), t.data(), max_entries, i64::to_string),
        Value::U8(t) => summarize_with(t.shape(), t.data(), max_entries, u8::to_string),
        Value::Bool(t) => summarize_with(t.shape(), t.data(), max_entries, |&b| {
            u8::from(b).to_string()
        }),
        Value::Str(t) => summarize_with(t.shape(), t.data(), max_entries, |s| {
            String::from_utf8_lossy(s).into_owned()
        }),
        // What a variant's DebugString gives.
        Value::List(_) => "TensorList".to_string(),
        Value::TensorArray(_) => "TensorArray".to_string(),
    }
}

fn summarize_with<T>(
    shape: &[usize],
    data: &[T],
    max_entries: usize,
    text: impl Fn(&T) -> String,
) -> String {
    let limit = max_entries.min(data.len());
    let mut out = String::new();
    if shape.is_empty() {
        for (i, x) in data.iter().take(limit).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&text(x));
        }
    } else {
        let mut index = 0;
        print_dim(0, shape, limit, data, &mut index, &mut out, &text);
    }
    if data.len() > limit {
        out.push_str("...");
    }
    out
}

/// TensorFlow's `PrintOneDim`: nested brackets, elements separated by spaces, cut off after
/// `limit` elements.
fn print_dim<T>(
    dim: usize,
    shape: &[usize],
    limit: usize,
    data: &[T],
    index: &mut usize,
    out: &mut String,
    text: &impl Fn(&T) -> String,
) {
    if *index >= limit {
        return;
    }
    let count = shape[dim];
    if dim + 1 == shape.len() {
        for i in 0..count {
            if *index >= limit {
                if dim != 0 {
                    out.push_str("...");
                }
                return;
            }
            if i > 0 {
                out.push(' ');
            }
            if let Some(x) = data.get(*index) {
                out.push_str(&text(x));
            }
            *index += 1;
        }
        return;
    }
    for _ in 0..count {
        let opened = *index < limit;
        if opened {
            out.push('[');
        }
        print_dim(dim + 1, shape, limit, data, index, out, text);
        if *index < limit || opened {
            out.push(']');
        }
    }
}

/// A float as `strings::StrCat` prints it: `%.6g`, or `%.9g` when that does not read back.
pub(crate) fn float_text(x: f32) -> String {
    let short = format_g(f64::from(x), 6);
    if short.parse::<f32>().ok() == Some(x) {
        short
    } else {
        format_g(f64::from(x), 9)
    }
}

/// A double as `strings::StrCat` prints it: `%.15g`, or `%.17g` when that does not read back.
pub(crate) fn double_text(x: f64) -> String {
    let short = format_g(x, 15);
    if short.parse::<f64>().ok() == Some(x) {
        short
    } else {
        format_g(x, 17)
    }
}

/// C's `%.{precision}g`.
fn format_g(x: f64, precision: usize) -> String {
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_nan() {
        return format!("{sign}nan");
    }
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    if x == 0.0 {
        return format!("{sign}0");
    }
    let p = precision.max(1);
    // Rounded to p significant digits, in scientific form: the exponent decides the style.
    let sci = format!("{:.*e}", p - 1, x);
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mut text = strip_zeros(mantissa).to_string();
        let _ = write!(
            text,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
        text
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

/// `1.500` -> `1.5`, `2.000` -> `2`; integers without a point are left alone.
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_data(data: Vec<Value>, summarize: usize) -> Option<OpError> {
        let mut inputs = vec![Value::scalar(false)];
        inputs.extend(data);
        Assert { summarize }.run(inputs).err()
    }

    /// Messages TensorFlow 2.21 printed for the same `tf.compat.v1.Assert` calls.
    #[test]
    fn messages_match_tensorflow() -> Result<(), OpError> {
        let data = vec![
            Value::scalar(b"msg here".to_vec()),
            Value::new(vec![2, 3], vec![1i32, 2, 3, 4, 5, 6])?,
            Value::scalar(2.5f32),
            Value::new(vec![10], (0..10).collect::<Vec<i32>>())?,
            Value::new(vec![0], Vec::<f32>::new())?,
            Value::scalar(-0.0f32),
            Value::scalar(1e20f32),
            Value::scalar(1.0f32 / 3.0),
            Value::scalar(f32::NAN),
            Value::scalar(1.0f64 / 3.0),
        ];
        assert_eq!(
            assert_data(data, 3),
            Some(OpError(
                "assertion failed: [msg here] [[1 2 3]...] [2.5] [0 1 2...] [] [-0] [1e+20] \
                 [0.333333343] [nan] [0.33333333333333331]"
                    .into()
            ))
        );
        let data = vec![
            Value::new(vec![2], vec![true, false])?,
            Value::new(vec![2], vec![b"a".to_vec(), b"b".to_vec()])?,
            Value::new(vec![2], vec![1.5f32, 2.25e-8])?,
        ];
        assert_eq!(
            assert_data(data, 3),
            Some(OpError(
                "assertion failed: [1 0] [a b] [1.5 2.25e-08]".into()
            ))
        );
        Ok(())
    }

    #[test]
    fn true_condition_passes_and_condition_must_be_a_scalar() -> Result<(), OpError> {
        let k = Assert { summarize: 3 };
        assert_eq!(
            k.run(vec![Value::scalar(true), Value::scalar(1i32)])?,
            vec![]
        );
        assert_eq!(
            k.run(vec![Value::new(vec![2], vec![true, false])?]).err(),
            Some(OpError("condition must be a scalar, got shape [2]".into()))
        );
        Ok(())
    }

    #[test]
    fn nested_summaries_cut_where_tensorflow_cuts() -> Result<(), OpError> {
        let t = Value::new(vec![2, 2, 3], (0..12).collect::<Vec<i64>>())?;
        assert_eq!(summarize(&t, 4), "[[0 1 2][3...]]...");
        assert_eq!(summarize(&t, 100), "[[0 1 2][3 4 5]][[6 7 8][9 10 11]]");
        assert_eq!(summarize(&t, 0), "...");
        Ok(())
    }

    #[test]
    fn format_g_matches_printf() {
        for (x, p, want) in [
            (0.0001234, 6, "0.0001234"),
            (0.00001234, 6, "1.234e-05"),
            (123456.0, 6, "123456"),
            (1234567.0, 6, "1.23457e+06"),
            (100.0, 6, "100"),
            (-2.5, 6, "-2.5"),
            (1e100, 15, "1e+100"),
            (f64::INFINITY, 6, "inf"),
            (f64::NEG_INFINITY, 6, "-inf"),
        ] {
            assert_eq!(format_g(x, p), want, "{x} {p}");
        }
    }
}
