//! `Split` (equal parts; the axis is input 0) and `SplitV` (given sizes, one of which may be
//! -1; the axis is input 2), as `split_op.cc` and `split_v_op.cc` define them.

use ckpt_graph::Node;

use crate::ops::{
    expect, fmt_shape, int_scalar, int_values, kernel, node_error, op_bail, take_inputs, BuildCtx,
    Built, Kernel, OpError,
};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Split {
        num_split: num_split(node)?,
        sizes_given: false,
    })
}

pub(crate) fn build_v(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Split {
        num_split: num_split(node)?,
        sizes_given: true,
    })
}

fn num_split(node: &Node) -> Result<usize, Error> {
    let n = node.attr_i64("num_split")?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| node_error(node, format!("num_split must be at least 1, got {n}")))
}

#[derive(Debug)]
struct Split {
    num_split: usize,
    /// `SplitV`: inputs are (value, size_splits, axis) instead of (axis, value).
    sizes_given: bool,
}

impl Kernel for Split {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let (value, axis, sizes) = if self.sizes_given {
            let [value, sizes, axis] = take_inputs(inputs)?;
            (value, axis, Some(int_values(&sizes, "size_splits")?))
        } else {
            let [axis, value] = take_inputs(inputs)?;
            (value, axis, None)
        };
        let shape = value.shape().to_vec();
        let rank = shape.len() as i64;
        let axis = int_scalar(&axis, "split_dim")?;
        if axis < -rank || axis >= rank {
            op_bail!(
                "split_dim {axis} is out of range for input shape {} (rank {rank})",
                fmt_shape(&shape)
            );
        }
        let axis = if axis < 0 { axis + rank } else { axis } as usize;
        let dim = shape[axis];
        let sizes = match sizes {
            Some(sizes) => split_sizes(&sizes, self.num_split, dim)?,
            None => {
                if dim % self.num_split != 0 {
                    op_bail!(
                        "num_split {} does not evenly divide dimension {axis} of shape {} (size {dim})",
                        self.num_split,
                        fmt_shape(&shape)
                    );
                }
                vec![dim / self.num_split; self.num_split]
            }
        };
        let dtype = value.dtype();
        with_dtype!(dtype, T => {
            let t = expect::<T>(value, "value")?;
            Ok(split(&t, axis, &sizes).into_iter().map(T::wrap).collect())
        }, else op_bail!("unsupported dtype {dtype}"))
    }
}

/// `SplitV`'s sizes resolved against a dimension of size `dim`: at most one -1, which takes
/// what the others leave; the sizes must add up to `dim`.
fn split_sizes(sizes: &[i64], num_split: usize, dim: usize) -> Result<Vec<usize>, OpError> {
    if sizes.len() != num_split {
        op_bail!(
            "size_splits has {} elements, num_split is {num_split}",
            sizes.len()
        );
    }
    let mut unknown = None;
    let mut known: usize = 0;
    let mut out = Vec::with_capacity(sizes.len());
    for (i, &s) in sizes.iter().enumerate() {
        if s == -1 {
            if unknown.is_some() {
                op_bail!("size_splits {sizes:?} has more than one -1");
            }
            unknown = Some(i);
            out.push(0);
            continue;
        }
        let Ok(s) = usize::try_from(s) else {
            op_bail!("size_splits {sizes:?} has a negative size {s}");
        };
        known = known.saturating_add(s);
        out.push(s);
    }
    match unknown {
        Some(i) if known <= dim => out[i] = dim - known,
        None if known == dim => {}
        _ => op_bail!("size_splits {sizes:?} do not add up to the split dimension's size {dim}"),
    }
    Ok(out)
}

fn split<T: Datum>(t: &TensorBuf<T>, axis: usize, sizes: &[usize]) -> Vec<TensorBuf<T>> {
    let shape = t.shape();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let row = shape[axis] * inner;
    let mut start = 0;
    sizes
        .iter()
        .map(|&size| {
            let mut out_shape = shape.to_vec();
            out_shape[axis] = size;
            let (from, len) = (start * inner, size * inner);
            let mut data = Vec::with_capacity(outer * len);
            for o in 0..outer {
                data.extend_from_slice(&t.data()[o * row + from..o * row + from + len]);
            }
            start += size;
            TensorBuf::from_parts(out_shape, data)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(shape: &[usize]) -> Value {
        let n = shape.iter().product::<usize>();
        Value::new(shape.to_vec(), (0..n as i32).collect()).unwrap_or(Value::scalar(0))
    }

    /// Reference: element (o, j, i) of part p is element (o, offset_p + j, i) of the input.
    fn check(shape: &[usize], axis: usize, sizes: &[usize], parts: &[Value]) {
        let inner: usize = shape[axis + 1..].iter().product();
        let outer: usize = shape[..axis].iter().product();
        let mut offset = 0;
        for (p, &size) in parts.iter().zip(sizes) {
            let mut want_shape = shape.to_vec();
            want_shape[axis] = size;
            assert_eq!(p.shape(), want_shape.as_slice());
            let data = p.as_i32().unwrap_or_default();
            for o in 0..outer {
                for j in 0..size {
                    for i in 0..inner {
                        let src = (o * shape[axis] + offset + j) * inner + i;
                        assert_eq!(data[(o * size + j) * inner + i], src as i32);
                    }
                }
            }
            offset += size;
        }
    }

    #[test]
    fn split_matches_reference_on_odd_shapes() -> Result<(), OpError> {
        for (shape, axis, n) in [
            (vec![6usize], 0i64, 3usize),
            (vec![17, 257], 0, 17),
            (vec![7, 4, 6], 1, 2),
            (vec![7, 4, 6], -1, 3),
            (vec![2, 0, 4], 2, 4),
            (vec![5, 1], 1, 1),
        ] {
            let k = Split {
                num_split: n,
                sizes_given: false,
            };
            let parts = k.run(vec![Value::scalar(axis as i32), iota(&shape)])?;
            let a = if axis < 0 {
                axis + shape.len() as i64
            } else {
                axis
            } as usize;
            check(&shape, a, &vec![shape[a] / n; n], &parts);
        }
        Ok(())
    }

    #[test]
    fn split_v_resolves_minus_one() -> Result<(), OpError> {
        let k = Split {
            num_split: 3,
            sizes_given: true,
        };
        let sizes = Value::new(vec![3], vec![2i64, -1, 0])?;
        let parts = k.run(vec![iota(&[2, 7, 3]), sizes, Value::scalar(1i32)])?;
        check(&[2, 7, 3], 1, &[2, 5, 0], &parts);
        Ok(())
    }

    #[test]
    fn bad_splits_are_errors() {
        let k = Split {
            num_split: 2,
            sizes_given: false,
        };
        assert_eq!(
            k.run(vec![Value::scalar(1i32), iota(&[2, 5])]).err(),
            Some(OpError(
                "num_split 2 does not evenly divide dimension 1 of shape [2,5] (size 5)".into()
            ))
        );
        assert_eq!(
            k.run(vec![Value::scalar(2i32), iota(&[2, 5])]).err(),
            Some(OpError(
                "split_dim 2 is out of range for input shape [2,5] (rank 2)".into()
            ))
        );
        assert_eq!(
            split_sizes(&[2, 4], 2, 5).err(),
            Some(OpError(
                "size_splits [2, 4] do not add up to the split dimension's size 5".into()
            ))
        );
        assert_eq!(
            split_sizes(&[-1, -1], 2, 5).err(),
            Some(OpError("size_splits [-1, -1] has more than one -1".into()))
        );
        assert_eq!(
            split_sizes(&[-1, 9], 2, 5).err(),
            Some(OpError(
                "size_splits [-1, 9] do not add up to the split dimension's size 5".into()
            ))
        );
        assert_eq!(
            split_sizes(&[1, 2], 3, 3).err(),
            Some(OpError("size_splits has 2 elements, num_split is 3".into()))
        );
        assert_eq!(
            split_sizes(&[-2, 7], 2, 5).err(),
            Some(OpError("size_splits [-2, 7] has a negative size -2".into()))
        );
    }
}
