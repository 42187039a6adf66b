//! Reductions over axes given as an input: `Sum`, `Mean`, `Max`, `Min`, `Prod`, with
//! `keep_dims`. Contiguous axes reduce in place of an (outer, reduced, inner) view; other
//! axis sets are first transposed to the end. Sums accumulate in the order of the Eigen
//! reducers TensorFlow runs, so float results match it bit for bit in the common cases.

use ckpt_graph::Node;

use crate::ops::array::transpose::transpose;
use crate::ops::{
    int_values, kernel, node_error, normalize_axis, op_bail, parallel, take_inputs, BuildCtx,
    Built, Kernel, OpError,
};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{Error, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Reduction {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let op = match node.op.as_str() {
        "Sum" => Reduction::Sum,
        "Mean" => Reduction::Mean,
        "Max" => Reduction::Max,
        "Min" => Reduction::Min,
        "Prod" => Reduction::Prod,
        other => return Err(node_error(node, format!("not a reduction: {other}"))),
    };
    kernel(Reduce {
        op,
        keep_dims: node.attr_bool_or("keep_dims", false)?,
    })
}

#[derive(Debug)]
struct Reduce {
    op: Reduction,
    keep_dims: bool,
}

impl Kernel for Reduce {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, axes] = take_inputs(inputs)?;
        let axes = int_values(&axes, "reduction_indices")?;
        let (keep_dims, op) = (self.keep_dims, self.op);
        let y = dispatch_numbers!(x, |t| Value::from(reduce(&t, &axes, keep_dims, op)?), else {
            other => op_bail!("unsupported dtype {}", other.dtype()),
        });
        Ok(vec![y])
    }
}

pub(crate) fn reduce<T: Num>(
    x: &TensorBuf<T>,
    axes: &[i64],
    keep_dims: bool,
    op: Reduction,
) -> Result<TensorBuf<T>, OpError> {
    let shape = x.shape();
    let rank = shape.len();
    let mut reduced = vec![false; rank];
    for &a in axes {
        reduced[normalize_axis(a, rank)?] = true;
    }
    let out_shape: Vec<usize> = if keep_dims {
        shape
            .iter()
            .zip(&reduced)
            .map(|(&d, &r)| if r { 1 } else { d })
            .collect()
    } else {
        shape
            .iter()
            .zip(&reduced)
            .filter(|(_, &r)| !r)
            .map(|(&d, _)| d)
            .collect()
    };
    // Ignoring unit dimensions, are the reduced axes one contiguous run?
    let significant: Vec<(usize, bool)> = shape
        .iter()
        .zip(&reduced)
        .filter(|(&d, _)| d != 1)
        .map(|(&d, &r)| (d, r))
        .collect();
    let first = significant.iter().position(|&(_, r)| r);
    let last = significant.iter().rposition(|&(_, r)| r);
    let (outer, r, inner, source) = match (first, last) {
        (Some(f), Some(l)) if significant[f..=l].iter().all(|&(_, r)| r) => {
            let prod = |s: &[(usize, bool)]| s.iter().map(|&(d, _)| d).product::<usize>();
            (
                prod(&significant[..f]),
                prod(&significant[f..=l]),
                prod(&significant[l + 1..]),
                None,
            )
        }
        (Some(_), Some(_)) => {
            let perm: Vec<i64> = (0..rank)
                .filter(|&d| !reduced[d])
                .chain((0..rank).filter(|&d| reduced[d]))
                .map(|d| d as i64)
                .collect();
            let moved = transpose(x, &perm)?;
            let outer = (0..rank)
                .filter(|&d| !reduced[d])
                .map(|d| shape[d])
                .product();
            let r = (0..rank)
                .filter(|&d| reduced[d])
                .map(|d| shape[d])
                .product();
            (outer, r, 1, Some(moved))
        }
        // Only unit dimensions (or none) are reduced: the values are unchanged.
        _ => return Ok(x.clone().reshaped(out_shape)),
    };
    let data = source.as_ref().map_or(x.data(), |t| t.data());
    let out = reduce_3d(data, outer, r, inner, op);
    Ok(TensorBuf::from_parts(out_shape, out))
}

/// `out[o, i] = op over j of x[o, j, i]`.
fn reduce_3d<T: Num>(x: &[T], outer: usize, r: usize, inner: usize, op: Reduction) -> Vec<T> {
    // One monomorphized loop per reduction, so the combining step inlines and vectorizes.
    let mut out = match op {
        Reduction::Sum | Reduction::Mean => {
            reduce_3d_with(x, outer, r, inner, T::ZERO, |a, b| a + b)
        }
        Reduction::Prod => reduce_3d_with(x, outer, r, inner, T::ONE, |a, b| a * b),
        Reduction::Max => reduce_3d_with(x, outer, r, inner, T::LOWEST, |a: T, b: T| {
            if a.is_nan() || a > b {
                a
            } else {
                b
            }
        }),
        Reduction::Min => reduce_3d_with(x, outer, r, inner, T::HIGHEST, |a: T, b: T| {
            if a.is_nan() || a < b {
                a
            } else {
                b
            }
        }),
    };
    if op == Reduction::Mean {
        let count = T::from_usize(r);
        for v in &mut out {
            *v = v.div(count).unwrap_or(T::ZERO);
        }
    }
    out
}

fn reduce_3d_with<T: Num, F>(x: &[T], outer: usize, r: usize, inner: usize, init: T, f: F) -> Vec<T>
where
    F: Fn(T, T) -> T + Copy + Send + Sync,
{
    let mut out = vec![init; outer * inner];
    if inner == 1 {
        parallel::for_rows(&mut out, 1, r, |o, acc| {
            acc[0] = reduce_contiguous(&x[o * r..(o + 1) * r], init, f);
        });
    } else {
        parallel::for_rows(&mut out, inner, r * inner, |o, acc| {
            reduce_rows(&x[o * r * inner..(o + 1) * r * inner], inner, acc, init, f);
        });
    }
    out
}

/// The float32 `Mean` of one contiguous row, bit-identical to the `Mean` kernel's result for
/// a reduction over the last axis (for the fused layer norm).
pub(crate) fn mean_of_row(x: &[f32]) -> f32 {
    reduce_contiguous(x, 0.0, |a, b| a + b) / x.len() as f32
}

/// Lanes of Eigen's float packets in TensorFlow's x86 builds (AVX).
const LANES: usize = 8;

/// Reduces a contiguous run in the order of Eigen's vectorized inner-most reducer, which
/// TensorFlow uses: lane `l` accumulates elements `l, l + 8, ...`, the tail accumulates
/// separately, then the lanes combine pairwise and the tail is added.
fn reduce_contiguous<T: Num>(x: &[T], init: T, f: impl Fn(T, T) -> T) -> T {
    let mut lanes = [init; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(init, |a, &b| f(a, b));
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = f(*l, v);
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] = f(lanes[i], lanes[i + width]);
        }
    }
    f(tail, lanes[0])
}

/// `acc[i] = op over j of rows[j * inner + i]` in the order of Eigen's reducer for a
/// preserved inner dimension: four interleaved accumulators, combined in order, then the
/// leftover rows.
fn reduce_rows<T: Num>(rows: &[T], inner: usize, acc: &mut [T], init: T, f: impl Fn(T, T) -> T) {
    let r = rows.len() / inner;
    let add = |acc: &mut [T], j: usize| {
        for (a, &b) in acc.iter_mut().zip(&rows[j * inner..(j + 1) * inner]) {
            *a = f(*a, b);
        }
    };
    let unrolled = r / 4 * 4;
    if unrolled > 0 {
        let mut extra = vec![init; 3 * inner];
        let (a1, rest) = extra.split_at_mut(inner);
        let (a2, a3) = rest.split_at_mut(inner);
        for j in (0..unrolled).step_by(4) {
            add(acc, j);
            add(a1, j + 1);
            add(a2, j + 2);
            add(a3, j + 3);
        }
        for part in [&*a1, &*a2, &*a3] {
            for (a, &b) in acc.iter_mut().zip(part) {
                *a = f(*a, b);
            }
        }
    }
    for j in unrolled..r {
        add(acc, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: visit every input element, add it to its output cell.
    fn reference(shape: &[usize], data: &[f64], axes: &[usize], op: Reduction) -> Vec<f64> {
        let kept: Vec<usize> = shape
            .iter()
            .enumerate()
            .map(|(d, &n)| if axes.contains(&d) { 1 } else { n })
            .collect();
        let n_out: usize = kept.iter().product();
        let init = match op {
            Reduction::Sum | Reduction::Mean => 0.0,
            Reduction::Prod => 1.0,
            Reduction::Max => f64::NEG_INFINITY,
            Reduction::Min => f64::INFINITY,
        };
        let mut out = vec![init; n_out];
        let mut counts = vec![0usize; n_out];
        for (i, &v) in data.iter().enumerate() {
            // Map the input index to the output index by zeroing reduced coordinates.
            let mut rem = i;
            let mut coords = vec![0; shape.len()];
            for d in (0..shape.len()).rev() {
                coords[d] = rem % shape[d];
                rem /= shape[d];
            }
            let mut o = 0;
            for d in 0..shape.len() {
                o = o * kept[d] + if axes.contains(&d) { 0 } else { coords[d] };
            }
            counts[o] += 1;
            out[o] = match op {
                Reduction::Sum | Reduction::Mean => out[o] + v,
                Reduction::Prod => out[o] * v,
                Reduction::Max => out[o].max(v),
                Reduction::Min => out[o].min(v),
            };
        }
        if op == Reduction::Mean {
            for (v, c) in out.iter_mut().zip(&counts) {
                *v /= *c as f64;
            }
        }
        out
    }

    #[test]
    fn reductions_match_reference() -> Result<(), OpError> {
        let cases: &[(&[usize], &[usize])] = &[
            (&[7], &[0]),
            (&[17, 257], &[0]),
            (&[17, 257], &[1]),
            (&[17, 257], &[0, 1]),
            (&[2, 3, 4, 5], &[1, 2]),
            (&[2, 3, 4, 5], &[0, 2]),
            (&[2, 1, 4, 1], &[1, 3]),
            (&[3, 1, 5], &[0, 1]),
            (&[4, 0, 3], &[1]),
        ];
        for &(shape, axes) in cases {
            let n: usize = shape.iter().product();
            let data: Vec<f64> = (0..n)
                .map(|i| ((i * 37 % 101) as f64) / 7.0 - 5.0)
                .collect();
            let t = TensorBuf::from_parts(shape.to_vec(), data.clone());
            let ax: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
            for op in [
                Reduction::Sum,
                Reduction::Mean,
                Reduction::Max,
                Reduction::Min,
                Reduction::Prod,
            ] {
                let out = reduce(&t, &ax, true, op)?;
                let want = reference(shape, &data, axes, op);
                assert_eq!(out.len(), want.len());
                for (x, y) in out.data().iter().zip(&want) {
                    let close = x == y
                        || (x - y).abs() <= 1e-9 * (1.0 + y.abs())
                        || (x.is_nan() && y.is_nan());
                    assert!(close, "{shape:?} {axes:?} {op:?}: {x} vs {y}");
                }
                let dropped = reduce(&t, &ax, false, op)?;
                let want_shape: Vec<usize> = shape
                    .iter()
                    .enumerate()
                    .filter(|(d, _)| !axes.contains(d))
                    .map(|(_, &n)| n)
                    .collect();
                assert_eq!(dropped.shape(), want_shape.as_slice());
            }
        }
        Ok(())
    }

    #[test]
    fn integer_mean_and_bad_axes() -> Result<(), OpError> {
        let t = TensorBuf::from_parts(vec![2, 2], vec![1i32, 2, 3, 5]);
        assert_eq!(reduce(&t, &[1], false, Reduction::Mean)?.data(), &[1, 4]);
        assert_eq!(reduce(&t, &[-1, 0], false, Reduction::Sum)?.data(), &[11]);
        assert_eq!(
            reduce(&t, &[], false, Reduction::Sum)?.data(),
            &[1, 2, 3, 5]
        );
        assert_eq!(
            reduce(&t, &[2], false, Reduction::Sum).err(),
            Some(OpError("axis 2 is out of range for rank 2".into()))
        );
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn sum_and_max_match_reference_on_random_axes(
            shape in proptest::collection::vec(0usize..6, 1..5),
            axes_mask in proptest::collection::vec(proptest::bool::ANY, 5),
            keep in proptest::bool::ANY,
        ) {
            let n: usize = shape.iter().product();
            let data: Vec<f64> = (0..n).map(|i| ((i * 31 % 17) as f64) - 8.0).collect();
            let t = TensorBuf::from_parts(shape.clone(), data.clone());
            let axes: Vec<usize> = (0..shape.len()).filter(|&d| axes_mask[d]).collect();
            let ax: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
            for op in [Reduction::Sum, Reduction::Max, Reduction::Mean] {
                let got = reduce(&t, &ax, keep, op).map_err(|e| proptest::test_runner::TestCaseError::fail(e.0))?;
                let want = reference(&shape, &data, &axes, op);
                proptest::prop_assert_eq!(got.len(), want.len());
                for (x, y) in got.data().iter().zip(&want) {
                    // Small integers: every summation order is exact.
                    proptest::prop_assert!(x == y || (x.is_nan() && y.is_nan()), "{:?} {:?} {:?}: {} vs {}", shape, axes, op, x, y);
                }
            }
        }
    }
}
