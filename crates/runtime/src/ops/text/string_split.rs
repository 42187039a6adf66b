//! `StringSplitV2` and `StringSplit`: split each string of a vector into tokens, returned as a
//! sparse matrix (`indices` int64 `[n, 2]`, `values` string `[n]`, `shape` int64
//! `[batch, most tokens]`), as `tensorflow/core/kernels/string_split_op.cc` does.
//!
//! - `StringSplitV2(input, sep; maxsplit)` follows Python's `str.split`: with an empty `sep`,
//!   runs of ASCII whitespace separate tokens and leading or trailing whitespace gives none;
//!   otherwise every occurrence of `sep` separates (empty tokens kept; `""` gives one empty
//!   token). At most `maxsplit` splits when it is not negative, the rest of the string
//!   (trailing whitespace included) being the last token.
//! - `StringSplit(input, delimiter; skip_empty)`: every byte of `delimiter` separates; an
//!   empty delimiter splits into single bytes; `skip_empty` drops empty tokens.

use ckpt_graph::Node;

use crate::ops::{expect, kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build_v2(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Split::V2 {
        maxsplit: node.attr_i64_or("maxsplit", -1)?,
    })
}

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Split::V1 {
        skip_empty: node.attr_bool_or("skip_empty", true)?,
    })
}

#[derive(Debug)]
enum Split {
    V2 { maxsplit: i64 },
    V1 { skip_empty: bool },
}

const WHITESPACE: &[u8] = b" \t\n\x0b\x0c\r";

/// Python's `s.split(None, maxsplit)`.
fn split_whitespace(s: &[u8], maxsplit: i64) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut splits = 0i64;
    loop {
        while i < s.len() && WHITESPACE.contains(&s[i]) {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        if maxsplit >= 0 && splits >= maxsplit {
            // The rest, trailing whitespace included, as Python and TensorFlow keep it.
            out.push(&s[i..]);
            break;
        }
        let start = i;
        while i < s.len() && !WHITESPACE.contains(&s[i]) {
            i += 1;
        }
        out.push(&s[start..i]);
        splits += 1;
    }
    out
}

/// Python's `s.split(sep, maxsplit)` for a non-empty `sep`.
fn split_on<'a>(s: &'a [u8], sep: &[u8], maxsplit: i64) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + sep.len() <= s.len() {
        if maxsplit >= 0 && out.len() as i64 >= maxsplit {
            break;
        }
        if &s[i..i + sep.len()] == sep {
            out.push(&s[start..i]);
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// `StringSplit`'s tokens: any byte of `delims` separates (each byte alone when empty).
fn split_any<'a>(s: &'a [u8], delims: &[u8], skip_empty: bool) -> Vec<&'a [u8]> {
    if delims.is_empty() {
        return s.chunks(1).collect();
    }
    s.split(|b| delims.contains(b))
        .filter(|t| !(skip_empty && t.is_empty()))
        .collect()
}

impl Kernel for Split {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [input, sep] = take_inputs(inputs)?;
        let input = expect::<Vec<u8>>(input, "input")?;
        let sep = expect::<Vec<u8>>(sep, "the separator")?;
        if input.rank() != 1 {
            op_bail!("input must be a vector, got shape {:?}", input.shape());
        }
        let sep = match sep.data() {
            [s] if sep.rank() == 0 => s.as_slice(),
            _ => op_bail!(
                "the separator must be a scalar, got shape {:?}",
                sep.shape()
            ),
        };
        let mut indices = Vec::new();
        let mut values = Vec::new();
        let mut widest = 0usize;
        for (row, s) in input.data().iter().enumerate() {
            let tokens = match self {
                Split::V2 { maxsplit } if sep.is_empty() => split_whitespace(s, *maxsplit),
                Split::V2 { maxsplit } => split_on(s, sep, *maxsplit),
                Split::V1 { skip_empty } => split_any(s, sep, *skip_empty),
            };
            widest = widest.max(tokens.len());
            for (col, t) in tokens.into_iter().enumerate() {
                indices.extend([row as i64, col as i64]);
                values.push(t.to_vec());
            }
        }
        let n = values.len();
        Ok(vec![
            Value::I64(TensorBuf::new(vec![n, 2], indices)?),
            Value::Str(TensorBuf::new(vec![n], values)?),
            Value::I64(TensorBuf::new(
                vec![2],
                vec![input.len() as i64, widest as i64],
            )?),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: Vec<&[u8]>) -> Vec<String> {
        v.into_iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    #[test]
    fn follows_python_str_split() {
        // Python and tf.strings.split: "  a b  c ".split() == ['a', 'b', 'c'];
        // .split(None, 1) == ['a', 'b  c ']
        assert_eq!(texts(split_whitespace(b"  a b  c ", -1)), ["a", "b", "c"]);
        assert_eq!(texts(split_whitespace(b"  a b  c ", 1)), ["a", "b  c "]);
        assert!(split_whitespace(b"   ", -1).is_empty());
        // "a,,b".split(",") == ['a', '', 'b']; "a,b,c".split(",", 1) == ['a', 'b,c']
        assert_eq!(texts(split_on(b"a,,b", b",", -1)), ["a", "", "b"]);
        assert_eq!(texts(split_on(b"a,b,c", b",", 1)), ["a", "b,c"]);
        assert_eq!(texts(split_on(b"a<>b", b"<>", -1)), ["a", "b"]);
        assert_eq!(texts(split_on(b"", b",", -1)), [""]);
    }

    #[test]
    fn string_split_v1_splits_on_any_delimiter_byte() {
        assert_eq!(
            texts(split_any(b"a-b--c d", b" -", true)),
            ["a", "b", "c", "d"]
        );
        assert_eq!(texts(split_any(b"a--b", b"-", false)), ["a", "", "b"]);
        assert_eq!(texts(split_any(b"ab", b"", true)), ["a", "b"]);
    }

    #[test]
    fn outputs_a_sparse_matrix() -> Result<(), OpError> {
        let input = Value::new(vec![2], vec![b"a b".to_vec(), b"c".to_vec()])?;
        let out = Split::V2 { maxsplit: -1 }.run(vec![input, Value::scalar(Vec::new())])?;
        assert_eq!(out[0].as_i64(), Some(&[0, 0, 0, 1, 1, 0][..]));
        assert_eq!(out[1].as_strings().map(<[Vec<u8>]>::len), Some(3));
        assert_eq!(out[2].as_i64(), Some(&[2, 2][..]));
        Ok(())
    }
}
