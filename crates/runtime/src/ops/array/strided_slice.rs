//! `StridedSlice` (with begin/end/ellipsis/new-axis/shrink-axis masks) and `Slice`.
//!
//! The mask handling follows `ValidateStridedSliceOp` in
//! tensorflow/core/util/strided_slice_op.cc: the sparse spec is expanded to one entry per
//! input dimension (an ellipsis is implied at the end when absent), each dimension's begin and
//! end are canonicalized and clamped, and the final shape drops shrunk dimensions and inserts
//! new axes.

use ckpt_graph::Node;

use crate::ops::{
    expect, int_values, kernel, num_elements, op_bail, parallel, BuildCtx, Built, Kernel, OpError,
};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(StridedSlice {
        masks: Masks {
            begin: node.attr_i64_or("begin_mask", 0)?,
            end: node.attr_i64_or("end_mask", 0)?,
            ellipsis: node.attr_i64_or("ellipsis_mask", 0)?,
            new_axis: node.attr_i64_or("new_axis_mask", 0)?,
            shrink_axis: node.attr_i64_or("shrink_axis_mask", 0)?,
        },
    })
}

pub(crate) fn build_slice(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Slice)
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Masks {
    pub begin: i64,
    pub end: i64,
    pub ellipsis: i64,
    pub new_axis: i64,
    pub shrink_axis: i64,
}

/// A resolved slice: per input dimension a start, a step and a count, plus the output shape.
#[derive(Debug, PartialEq)]
pub(crate) struct SliceSpec {
    pub starts: Vec<i64>,
    pub steps: Vec<i64>,
    pub counts: Vec<usize>,
    pub out_shape: Vec<usize>,
}

fn bit(mask: i64, i: usize) -> bool {
    i < 63 && (mask >> i) & 1 == 1
}

pub(crate) fn resolve(
    shape: &[usize],
    begin: &[i64],
    end: &[i64],
    strides: &[i64],
    masks: Masks,
) -> Result<SliceSpec, OpError> {
    let n = begin.len();
    if end.len() != n || strides.len() != n {
        op_bail!(
            "begin, end and strides must have the same length, got {}, {} and {}",
            n,
            end.len(),
            strides.len()
        );
    }
    if n > 62 {
        op_bail!("too many slice dimensions ({n})");
    }
    if masks.ellipsis.count_ones() > 1 {
        op_bail!("multiple ellipses in slice spec not allowed");
    }
    // Sparse spec, with an implicit trailing ellipsis.
    let mut ellipsis = masks.ellipsis;
    let mut sparse_dims = n;
    if ellipsis == 0 {
        ellipsis |= 1 << n;
        sparse_dims += 1;
    }
    let ellipsis_pos = (0..sparse_dims)
        .find(|&i| bit(ellipsis, i))
        .unwrap_or(sparse_dims);
    let new_axis_after_ellipsis = (ellipsis_pos + 1..sparse_dims)
        .filter(|&i| bit(masks.new_axis, i))
        .count();

    // Dense spec: one entry per input dimension.
    enum Gather {
        Dim(usize),
        NewAxis,
        Shrink,
    }
    let dims = shape.len();
    let mut d_begin = vec![0i64; dims];
    let mut d_end = vec![0i64; dims];
    let mut d_stride = vec![1i64; dims];
    let mut d_begin_mask = vec![false; dims];
    let mut d_end_mask = vec![false; dims];
    let mut d_shrink = vec![false; dims];
    let mut gather: Vec<Gather> = Vec::new();
    let mut full = 0usize;
    for i in 0..sparse_dims {
        if bit(ellipsis, i) {
            let next = (dims + 1 + new_axis_after_ellipsis)
                .saturating_sub(sparse_dims - i)
                .min(dims);
            while full < next {
                d_begin_mask[full] = true;
                d_end_mask[full] = true;
                gather.push(Gather::Dim(full));
                full += 1;
            }
        } else if bit(masks.new_axis, i) {
            gather.push(Gather::NewAxis);
        } else {
            if full >= dims {
                op_bail!("index out of range using input dim {full}; input has only {dims} dims");
            }
            d_begin[full] = begin[i];
            d_end[full] = end[i];
            d_stride[full] = strides[i];
            d_begin_mask[full] = bit(masks.begin, i);
            d_end_mask[full] = bit(masks.end, i);
            if bit(masks.shrink_axis, i) {
                d_shrink[full] = true;
                gather.push(Gather::Shrink);
            } else {
                gather.push(Gather::Dim(full));
            }
            full += 1;
        }
    }

    let mut starts = Vec::with_capacity(dims);
    let mut counts = Vec::with_capacity(dims);
    for d in 0..dims {
        let stride = d_stride[d];
        if stride == 0 {
            op_bail!("strides[{d}] must be non-zero");
        }
        let size = shape[d] as i64;
        let (start, count) = if d_shrink[d] {
            let b = if d_begin[d] < 0 {
                d_begin[d].saturating_add(size)
            } else {
                d_begin[d]
            };
            if b < 0 || b >= size {
                op_bail!(
                    "slice index {} of dimension {d} out of bounds (size {size})",
                    d_begin[d]
                );
            }
            (b, 1usize)
        } else {
            let (lo, hi) = if stride > 0 {
                (0, size)
            } else {
                (-1, size - 1)
            };
            let canonical = |x: i64, masked: bool, is_end: bool| -> i64 {
                if masked {
                    if (stride > 0) != is_end {
                        lo
                    } else {
                        hi
                    }
                } else {
                    let fwd = if x < 0 { x.saturating_add(size) } else { x };
                    fwd.clamp(lo, hi)
                }
            };
            let b = canonical(d_begin[d], d_begin_mask[d], false);
            let e = canonical(d_end[d], d_end_mask[d], true);
            let len = e - b;
            let count = if len == 0 || (len < 0) != (stride < 0) {
                0
            } else {
                (len / stride + i64::from(len % stride != 0)) as usize
            };
            (b, count)
        };
        starts.push(start);
        counts.push(count);
    }
    let out_shape = gather
        .iter()
        .filter_map(|g| match g {
            Gather::Dim(d) => Some(counts[*d]),
            Gather::NewAxis => Some(1),
            Gather::Shrink => None,
        })
        .collect();
    Ok(SliceSpec {
        starts,
        steps: d_stride,
        counts,
        out_shape,
    })
}

/// Copies the elements a [`SliceSpec`] selects.
pub(crate) fn apply<T: Datum + Default>(
    x: &TensorBuf<T>,
    spec: &SliceSpec,
) -> Result<TensorBuf<T>, OpError> {
    let shape = x.shape();
    let rank = shape.len();
    let total = num_elements(&spec.counts)?;
    let mut out = vec![T::default(); total];
    if total > 0 {
        let mut in_strides = vec![1i64; rank];
        for i in (0..rank.saturating_sub(1)).rev() {
            in_strides[i] = in_strides[i + 1] * shape[i + 1] as i64;
        }
        let (inner, inner_step) = match (spec.counts.last(), spec.steps.last(), in_strides.last()) {
            (Some(&c), Some(&s), Some(&st)) => (c, s * st),
            _ => (1, 0),
        };
        let src = x.data();
        parallel::for_rows(&mut out, inner, inner, |r, row| {
            let mut rem = r;
            let mut off =
                spec.starts.last().copied().unwrap_or(0) * in_strides.last().copied().unwrap_or(0);
            for d in (0..rank.saturating_sub(1)).rev() {
                let idx = (rem % spec.counts[d]) as i64;
                rem /= spec.counts[d];
                off += (spec.starts[d] + idx * spec.steps[d]) * in_strides[d];
            }
            for (j, o) in row.iter_mut().enumerate() {
                *o = src[(off + j as i64 * inner_step) as usize].clone();
            }
        });
    }
    Ok(TensorBuf::from_parts(spec.out_shape.clone(), out))
}

#[derive(Debug)]
struct StridedSlice {
    masks: Masks,
}

impl Kernel for StridedSlice {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, begin, end, strides] = crate::ops::take_inputs(inputs)?;
        let spec = resolve(
            x.shape(),
            &int_values(&begin, "begin")?,
            &int_values(&end, "end")?,
            &int_values(&strides, "strides")?,
            self.masks,
        )?;
        let dtype = x.dtype();
        let out = with_dtype!(dtype, T => T::wrap(apply(&expect::<T>(x, "input")?, &spec)?), else op_bail!("unsupported dtype {dtype}"));
        Ok(vec![out])
    }
}

#[derive(Debug)]
struct Slice;

impl Kernel for Slice {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, begin, size] = crate::ops::take_inputs(inputs)?;
        let begin = int_values(&begin, "begin")?;
        let size = int_values(&size, "size")?;
        let shape = x.shape();
        if begin.len() != shape.len() || size.len() != shape.len() {
            op_bail!(
                "begin and size must have {} entries, got {} and {}",
                shape.len(),
                begin.len(),
                size.len()
            );
        }
        let mut counts = Vec::with_capacity(shape.len());
        for d in 0..shape.len() {
            let n = shape[d] as i64;
            let b = begin[d];
            let s = if size[d] == -1 {
                n.saturating_sub(b)
            } else {
                size[d]
            };
            if b < 0 || s < 0 || b.saturating_add(s) > n {
                op_bail!(
                    "slice begin {b} size {} out of bounds for dimension {d} of size {n}",
                    size[d]
                );
            }
            counts.push(s as usize);
        }
        let spec = SliceSpec {
            starts: begin,
            steps: vec![1; shape.len()],
            out_shape: counts.clone(),
            counts,
        };
        let dtype = x.dtype();
        let out = with_dtype!(dtype, T => T::wrap(apply(&expect::<T>(x, "input")?, &spec)?), else op_bail!("unsupported dtype {dtype}"));
        Ok(vec![out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(
        shape: &[usize],
        b: &[i64],
        e: &[i64],
        s: &[i64],
        m: Masks,
    ) -> Result<(Vec<usize>, Vec<i32>), OpError> {
        let n: usize = shape.iter().product();
        let x = TensorBuf::from_parts(shape.to_vec(), (0..n as i32).collect());
        let spec = resolve(shape, b, e, s, m)?;
        let y = apply(&x, &spec)?;
        Ok((y.shape().to_vec(), y.data().to_vec()))
    }

    #[test]
    fn python_style_slices() -> Result<(), OpError> {
        let m = Masks::default();
        // x[1:3]
        assert_eq!(slice(&[5], &[1], &[3], &[1], m)?, (vec![2], vec![1, 2]));
        // x[::-1]
        let rev = Masks {
            begin: 1,
            end: 1,
            ..m
        };
        assert_eq!(
            slice(&[4], &[0], &[0], &[-1], rev)?,
            (vec![4], vec![3, 2, 1, 0])
        );
        // x[-1] (shrink)
        let shrink = Masks {
            shrink_axis: 1,
            ..m
        };
        assert_eq!(slice(&[4], &[-1], &[0], &[1], shrink)?, (vec![], vec![3]));
        // x[:, 1] on [2,3]
        let col = Masks {
            begin: 1,
            end: 1,
            shrink_axis: 2,
            ..m
        };
        assert_eq!(
            slice(&[2, 3], &[0, 1], &[0, 2], &[1, 1], col)?,
            (vec![2], vec![1, 4])
        );
        // x[..., 0] on [2,2,2]
        let ell = Masks {
            ellipsis: 1,
            shrink_axis: 2,
            ..m
        };
        assert_eq!(
            slice(&[2, 2, 2], &[0, 0], &[0, 1], &[1, 1], ell)?,
            (vec![2, 2], vec![0, 2, 4, 6])
        );
        // x[tf.newaxis, 1:] on [3]
        let new = Masks { new_axis: 1, ..m };
        assert_eq!(
            slice(&[3], &[0, 1], &[0, 3], &[1, 1], new)?,
            (vec![1, 2], vec![1, 2])
        );
        // out-of-range ends clamp; x[5:10] is empty
        assert_eq!(slice(&[4], &[5], &[10], &[1], m)?, (vec![0], vec![]));
        // x[1:-1:2] on [7]
        assert_eq!(slice(&[7], &[1], &[-1], &[2], m)?, (vec![3], vec![1, 3, 5]));
        // flatten's `strided_slice`: shape[0:1] with shrink
        assert_eq!(slice(&[4], &[0], &[1], &[1], shrink)?, (vec![], vec![0]));
        // strided row/column selection on [17, 257]
        let (shape, data) = slice(&[17, 257], &[3, -1], &[17, 0], &[5, -7], m)?;
        assert_eq!(shape, vec![3, 37]);
        assert_eq!(data[0], 3 * 257 + 256);
        assert_eq!(data[37 + 1], 8 * 257 + 256 - 7);
        Ok(())
    }

    #[test]
    fn extreme_indices_clamp_or_fail_without_overflow() -> Result<(), OpError> {
        let m = Masks::default();
        assert_eq!(
            slice(&[4], &[i64::MIN], &[i64::MAX], &[1], m)?,
            (vec![4], vec![0, 1, 2, 3])
        );
        assert_eq!(
            slice(&[4], &[i64::MAX], &[i64::MIN], &[-1], m)?,
            (vec![4], vec![3, 2, 1, 0])
        );
        assert_eq!(slice(&[4], &[0], &[4], &[i64::MAX], m)?, (vec![1], vec![0]));
        assert_eq!(
            slice(
                &[4],
                &[i64::MIN],
                &[0],
                &[1],
                Masks {
                    shrink_axis: 1,
                    ..m
                }
            )
            .err(),
            Some(OpError(
                "slice index -9223372036854775808 of dimension 0 out of bounds (size 4)".into()
            ))
        );
        Ok(())
    }

    #[test]
    fn bad_specs_are_errors() {
        let m = Masks::default();
        assert_eq!(
            slice(&[4], &[0], &[1], &[0], m).err(),
            Some(OpError("strides[0] must be non-zero".into()))
        );
        assert_eq!(
            slice(
                &[4],
                &[4],
                &[5],
                &[1],
                Masks {
                    shrink_axis: 1,
                    ..m
                }
            )
            .err(),
            Some(OpError(
                "slice index 4 of dimension 0 out of bounds (size 4)".into()
            ))
        );
        assert_eq!(
            slice(&[4], &[0, 0], &[1, 1], &[1, 1], m).err(),
            Some(OpError(
                "index out of range using input dim 1; input has only 1 dims".into()
            ))
        );
        assert_eq!(
            slice(&[4], &[0], &[1, 2], &[1], m).err(),
            Some(OpError(
                "begin, end and strides must have the same length, got 1, 2 and 1".into()
            ))
        );
    }

    #[test]
    fn slice_op() -> Result<(), OpError> {
        let x = Value::new(vec![3, 4], (0..12).collect::<Vec<i32>>())?;
        let out = Slice.run(vec![
            x.clone(),
            Value::new(vec![2], vec![1i32, 1])?,
            Value::new(vec![2], vec![-1i32, 2])?,
        ])?;
        assert_eq!(out[0].shape(), &[2, 2]);
        assert_eq!(out[0].as_i32(), Some(&[5, 6, 9, 10][..]));
        assert_eq!(
            Slice
                .run(vec![
                    x,
                    Value::new(vec![2], vec![1i32, 3])?,
                    Value::new(vec![2], vec![1i32, 2])?
                ])
                .err(),
            Some(OpError(
                "slice begin 3 size 2 out of bounds for dimension 1 of size 4".into()
            ))
        );
        Ok(())
    }
}
