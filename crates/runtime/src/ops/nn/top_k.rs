//! `TopKV2` (k as an input) and `TopK` (k as an attribute): the `k` largest entries of each
//! row of the last dimension, largest first, and their int32 indices. Equal values keep
//! their order (the lower index first) and NaN ranks below every number, as in TensorFlow's
//! CPU kernel. With `sorted = false` the results come sorted all the same, which TensorFlow
//! allows.

use std::cmp::Ordering;

use ckpt_graph::Node;

use crate::ops::{
    fmt_shape, int_scalar, kernel, op_bail, output_len, parallel, BuildCtx, Built, Kernel, OpError,
};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let k = if node.op == "TopK" {
        Some(node.attr_i64("k")?)
    } else {
        None
    };
    kernel(TopK { k })
}

#[derive(Debug)]
struct TopK {
    /// `TopK`'s attribute; `TopKV2` reads k from its second input.
    k: Option<i64>,
}

impl Kernel for TopK {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let mut it = inputs.into_iter();
        let Some(x) = it.next() else {
            op_bail!("TopK needs an input");
        };
        let k = match (self.k, it.next()) {
            (Some(k), None) => k,
            (None, Some(k)) => int_scalar(&k, "k")?,
            _ => op_bail!("TopK takes one input, TopKV2 two"),
        };
        let Ok(k) = usize::try_from(k) else {
            op_bail!("k must be non-negative, got {k}");
        };
        let (values, indices) = dispatch_numbers!(x, |t| {
            let (v, i) = top_k(&t, k)?;
            (Value::from(v), Value::I32(i))
        }, else {
            other => op_bail!("unsupported dtype {}", other.dtype()),
        });
        Ok(vec![values, indices])
    }
}

/// Larger first, NaN last; the caller breaks ties by index.
fn descending<T: Num>(a: T, b: T) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

fn top_k<T: Num>(x: &TensorBuf<T>, k: usize) -> Result<(TensorBuf<T>, TensorBuf<i32>), OpError> {
    let shape = x.shape();
    let Some(&n) = shape.last() else {
        op_bail!("input must be at least 1-D, got shape {}", fmt_shape(shape));
    };
    if k > n {
        op_bail!(
            "input must have at least k columns: shape {} has {n}, k is {k}",
            fmt_shape(shape)
        );
    }
    if i32::try_from(n).is_err() {
        op_bail!("rows of {n} elements are too long for int32 indices");
    }
    let mut out_shape = shape.to_vec();
    if let Some(last) = out_shape.last_mut() {
        *last = k;
    }
    let len = output_len(&out_shape, std::mem::size_of::<(T, i32)>())?;
    let mut pairs = vec![(T::ZERO, 0i32); len];
    if k > 0 {
        parallel::for_rows(&mut pairs, k, n * 4, |r, out| {
            let row = &x.data()[r * n..(r + 1) * n];
            let cmp = |&a: &usize, &b: &usize| descending(row[a], row[b]).then(a.cmp(&b));
            let mut order: Vec<usize> = (0..n).collect();
            if k < n {
                order.select_nth_unstable_by(k - 1, cmp);
                order.truncate(k);
            }
            order.sort_unstable_by(cmp);
            for (o, &i) in out.iter_mut().zip(&order) {
                *o = (row[i], i as i32);
            }
        });
    }
    let values = pairs.iter().map(|p| p.0).collect();
    let indices = pairs.iter().map(|p| p.1).collect();
    Ok((
        TensorBuf::from_parts(out_shape.clone(), values),
        TensorBuf::from_parts(out_shape, indices),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_tensorflow_on_ties_nan_and_infinities() -> Result<(), OpError> {
        let x = TensorBuf::from_parts(vec![1, 6], vec![1.0f32, 3.0, 3.0, 2.0, f32::NAN, 5.0]);
        let (v, i) = top_k(&x, 3)?;
        assert_eq!(v.data(), &[5.0, 3.0, 3.0]);
        assert_eq!(i.data(), &[5, 1, 2]);
        let x = TensorBuf::from_parts(vec![6], vec![1.0f32, 3.0, 3.0, 2.0, f32::NEG_INFINITY, 5.0]);
        let (v, i) = top_k(&x, 6)?;
        assert_eq!(v.data(), &[5.0, 3.0, 3.0, 2.0, 1.0, f32::NEG_INFINITY]);
        assert_eq!(i.data(), &[5, 1, 2, 3, 0, 4]);
        let (v, i) = top_k(&TensorBuf::from_parts(vec![4], vec![4i32, 1, 4, 9]), 2)?;
        assert_eq!((v.data(), i.data()), (&[9, 4][..], &[3, 0][..]));
        assert_eq!(
            top_k(&TensorBuf::from_parts(vec![2], vec![1.0f32, 2.0]), 3).err(),
            Some(OpError(
                "input must have at least k columns: shape [2] has 2, k is 3".into()
            ))
        );
        assert_eq!(
            top_k(&TensorBuf::from_parts(vec![], vec![1.0f32]), 0).err(),
            Some(OpError("input must be at least 1-D, got shape []".into()))
        );
        Ok(())
    }

    #[test]
    fn matches_a_full_sort_on_odd_shapes() -> Result<(), OpError> {
        for &(rows, n, k) in &[
            (1usize, 1usize, 1usize),
            (7, 17, 5),
            (17, 257, 257),
            (3, 0, 0),
            (0, 4, 2),
            (5, 9, 0),
        ] {
            let data: Vec<f32> = (0..rows * n)
                .map(|i| ((i * 37 % 23) as f32) - 11.0)
                .collect();
            let (v, i) = top_k(&TensorBuf::from_parts(vec![rows, n], data.clone()), k)?;
            assert_eq!(v.shape(), &[rows, k]);
            for r in 0..rows {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| data[r * n + b].total_cmp(&data[r * n + a]).then(a.cmp(&b)));
                for j in 0..k {
                    assert_eq!(i.data()[r * k + j] as usize, order[j]);
                    assert_eq!(v.data()[r * k + j], data[r * n + order[j]]);
                }
            }
        }
        Ok(())
    }
}
