//! `Pad`, `PadV2` (constant padding) and `MirrorPad` (`REFLECT` / `SYMMETRIC`).

use ckpt_graph::Node;

use crate::ops::{
    expect, int_values, kernel, node_error, op_bail, parallel, BuildCtx, Built, Kernel, OpError,
};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::{Error, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Constant,
    Reflect,
    Symmetric,
}

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Pad {
        mode: Mode::Constant,
        has_value: false,
    })
}

pub(crate) fn build_v2(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Pad {
        mode: Mode::Constant,
        has_value: true,
    })
}

pub(crate) fn build_mirror(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let mode = match node.attr_string_or("mode", "")?.as_str() {
        "REFLECT" => Mode::Reflect,
        "SYMMETRIC" => Mode::Symmetric,
        other => {
            return Err(node_error(
                node,
                format!("attribute \"mode\": unknown mode {other:?}"),
            ))
        }
    };
    kernel(Pad {
        mode,
        has_value: false,
    })
}

#[derive(Debug)]
struct Pad {
    mode: Mode,
    has_value: bool,
}

#[allow(clippy::clone_on_copy)] // generic over numbers and strings
impl Kernel for Pad {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let expected = if self.has_value { 3 } else { 2 };
        if inputs.len() != expected {
            op_bail!("expected {expected} inputs, got {}", inputs.len());
        }
        let mut inputs = inputs.into_iter();
        let (Some(x), Some(paddings)) = (inputs.next(), inputs.next()) else {
            op_bail!("missing inputs");
        };
        let constant = inputs.next();
        let pads = int_values(&paddings, "paddings")?;
        let dtype = x.dtype();
        let out = with_dtype!(dtype, T => {
            let fill = match constant {
                Some(c) => {
                    let c = expect::<T>(c, "constant_values")?;
                    match c.data() {
                        [v] => v.clone(),
                        _ => op_bail!("constant_values must be a scalar, got shape {:?}", c.shape()),
                    }
                }
                None => T::default(),
            };
            T::wrap(pad(&expect::<T>(x, "input")?, &pads, self.mode, fill)?)
        }, else op_bail!("unsupported dtype {dtype}"));
        Ok(vec![out])
    }
}

fn pad<T: Datum + Default>(
    x: &TensorBuf<T>,
    pads: &[i64],
    mode: Mode,
    fill: T,
) -> Result<TensorBuf<T>, OpError> {
    let shape = x.shape();
    let rank = shape.len();
    if pads.len() != rank * 2 {
        op_bail!(
            "paddings must have shape [{rank}, 2], got {} values",
            pads.len()
        );
    }
    // Per dimension, the source index of each output index (None: padding value).
    let mut maps: Vec<Vec<Option<usize>>> = Vec::with_capacity(rank);
    let mut out_shape = Vec::with_capacity(rank);
    for (d, &n) in shape.iter().enumerate() {
        let (before, after) = (pads[2 * d], pads[2 * d + 1]);
        let (Ok(before), Ok(after)) = (usize::try_from(before), usize::try_from(after)) else {
            op_bail!("paddings must be non-negative, got {before}, {after} for dimension {d}");
        };
        let limit = match mode {
            Mode::Constant => usize::MAX,
            Mode::Reflect => n.saturating_sub(1),
            Mode::Symmetric => n,
        };
        if before > limit || after > limit {
            op_bail!(
                "paddings {before}, {after} too large for dimension {d} of size {n} in mirror mode"
            );
        }
        let len = before
            .checked_add(n)
            .and_then(|x| x.checked_add(after))
            .ok_or_else(|| OpError("padded size overflows".into()))?;
        // The index map of this dimension, and the output so far, within the memory budget
        // before either is allocated (paddings of 2^40 are refused here).
        crate::ops::output_len(&[len], std::mem::size_of::<Option<usize>>())?;
        let mut so_far = out_shape.clone();
        so_far.push(len);
        crate::ops::output_len(&so_far, std::mem::size_of::<T>())?;
        let map = (0..len)
            .map(|o| {
                let i = o as i64 - before as i64;
                let n = n as i64;
                let src = match mode {
                    Mode::Constant => (0..n).contains(&i).then_some(i),
                    Mode::Reflect => Some(if i < 0 {
                        -i
                    } else if i >= n {
                        2 * (n - 1) - i
                    } else {
                        i
                    }),
                    Mode::Symmetric => Some(if i < 0 {
                        -i - 1
                    } else if i >= n {
                        2 * n - 1 - i
                    } else {
                        i
                    }),
                };
                src.map(|s| s as usize)
            })
            .collect();
        maps.push(map);
        out_shape.push(len);
    }
    let total = crate::ops::output_len(&out_shape, std::mem::size_of::<T>())?;
    let mut out = vec![fill.clone(); total];
    if total > 0 {
        let inner_len = out_shape.last().copied().unwrap_or(1);
        let mut in_strides = vec![1usize; rank];
        for i in (0..rank.saturating_sub(1)).rev() {
            in_strides[i] = in_strides[i + 1] * shape[i + 1];
        }
        let src = x.data();
        let outer_rank = rank.saturating_sub(1);
        parallel::for_rows(&mut out, inner_len, inner_len, |r, row| {
            let mut rem = r;
            let mut off = 0;
            for d in (0..outer_rank).rev() {
                let idx = rem % out_shape[d];
                rem /= out_shape[d];
                match maps[d][idx] {
                    Some(s) => off += s * in_strides[d],
                    None => return, // the whole row is padding
                }
            }
            match maps.last() {
                Some(inner) => {
                    for (o, m) in row.iter_mut().zip(inner) {
                        if let Some(s) = m {
                            *o = src[off + s].clone();
                        }
                    }
                }
                None => row[0] = src[0].clone(),
            }
        });
    }
    Ok(TensorBuf::from_parts(out_shape, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_pad_matches_reference() -> Result<(), OpError> {
        let x = TensorBuf::from_parts(vec![2, 3], (1..=6).collect::<Vec<i32>>());
        let y = pad(&x, &[1, 0, 0, 2], Mode::Constant, -1)?;
        assert_eq!(y.shape(), &[3, 5]);
        assert_eq!(
            y.data(),
            &[-1, -1, -1, -1, -1, 1, 2, 3, -1, -1, 4, 5, 6, -1, -1]
        );
        let s = TensorBuf::from_parts(vec![], vec![7i32]);
        assert_eq!(pad(&s, &[], Mode::Constant, 0)?.data(), &[7]);
        assert_eq!(
            pad(&x, &[1, 0], Mode::Constant, 0).err(),
            Some(OpError(
                "paddings must have shape [2, 2], got 2 values".into()
            ))
        );
        assert_eq!(
            pad(&x, &[-1, 0, 0, 0], Mode::Constant, 0).err(),
            Some(OpError(
                "paddings must be non-negative, got -1, 0 for dimension 0".into()
            ))
        );
        Ok(())
    }

    #[test]
    fn mirror_pad_matches_tensorflow_examples() -> Result<(), OpError> {
        // tf.pad docstring: t = [[1, 2, 3], [4, 5, 6]], paddings = [[1, 1], [2, 2]].
        let x = TensorBuf::from_parts(vec![2, 3], (1..=6).collect::<Vec<i32>>());
        let r = pad(&x, &[1, 1, 2, 2], Mode::Reflect, 0)?;
        assert_eq!(
            r.data(),
            &[6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1]
        );
        let s = pad(&x, &[1, 1, 2, 2], Mode::Symmetric, 0)?;
        assert_eq!(
            s.data(),
            &[2, 1, 1, 2, 3, 3, 2, 2, 1, 1, 2, 3, 3, 2, 5, 4, 4, 5, 6, 6, 5, 5, 4, 4, 5, 6, 6, 5]
        );
        assert_eq!(
            pad(&x, &[2, 0, 0, 0], Mode::Reflect, 0).err(),
            Some(OpError(
                "paddings 2, 0 too large for dimension 0 of size 2 in mirror mode".into()
            ))
        );
        Ok(())
    }
}
