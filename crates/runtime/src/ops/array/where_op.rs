//! `Where` with one input: the int64 coordinates of the true (non-zero; NaN counts) elements,
//! one row each, in row-major order, shape `[count, rank]`.

use ckpt_graph::Node;

use crate::ops::{fmt_shape, kernel, op_bail, take_inputs, BuildCtx, Built, FnKernel, OpError};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(run))
}

fn run(inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
    let [x] = take_inputs(inputs)?;
    if x.shape().is_empty() {
        op_bail!(
            "input must have rank >= 1, got shape {}",
            fmt_shape(x.shape())
        );
    }
    let truth: Vec<bool> = dispatch_numbers!(&x, |t| nonzero(t), else {
        Value::Bool(t) => t.data().to_vec(),
        Value::F16(t) => t.data().iter().map(|v| v.to_f32() != 0.0).collect(),
        Value::BF16(t) => t.data().iter().map(|v| v.to_f32() != 0.0).collect(),
        other => op_bail!("unsupported input: a {}", other.kind()),
    });
    Ok(vec![Value::I64(coordinates(x.shape(), &truth))])
}

fn nonzero<T: Num>(t: &TensorBuf<T>) -> Vec<bool> {
    t.data().iter().map(|&v| v != T::ZERO).collect()
}

fn coordinates(shape: &[usize], truth: &[bool]) -> TensorBuf<i64> {
    let rank = shape.len();
    let count = truth.iter().filter(|&&b| b).count();
    let mut data = Vec::with_capacity(count * rank);
    let mut coord = vec![0i64; rank];
    for (flat, &b) in truth.iter().enumerate() {
        if b {
            let mut rem = flat;
            for d in (0..rank).rev() {
                coord[d] = (rem % shape[d]) as i64;
                rem /= shape[d];
            }
            data.extend_from_slice(&coord);
        }
    }
    TensorBuf::from_parts(vec![count, rank], data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tf.where` of the same inputs (TensorFlow 2.21).
    #[test]
    fn matches_tensorflow() -> Result<(), OpError> {
        let b = Value::new(vec![2, 2], vec![true, false, false, true])?;
        let out = run(vec![b])?;
        assert_eq!(out[0].shape(), &[2, 2]);
        assert_eq!(out[0].as_i64(), Some(&[0, 0, 1, 1][..]));
        let f = Value::new(vec![4], vec![0.0f32, 1.0, f32::NAN, -0.0])?;
        let out = run(vec![f])?;
        assert_eq!(out[0].shape(), &[2, 1]);
        assert_eq!(out[0].as_i64(), Some(&[1, 2][..]));
        let empty = Value::new(vec![2, 0], Vec::<bool>::new())?;
        assert_eq!(run(vec![empty])?[0].shape(), &[0, 2]);
        assert_eq!(
            run(vec![Value::scalar(true)]).err(),
            Some(OpError("input must have rank >= 1, got shape []".into()))
        );
        Ok(())
    }

    #[test]
    fn matches_reference_on_odd_shapes() -> Result<(), OpError> {
        let shape = [7usize, 3, 5];
        let data: Vec<i32> = (0..105).map(|i| i32::from(i % 4 == 1)).collect();
        let out = run(vec![Value::new(shape.to_vec(), data.clone())?])?;
        let coords = out[0].as_i64().ok_or(OpError("dtype".into()))?;
        let want: Vec<i64> = (0..105usize)
            .filter(|&i| data[i] != 0)
            .flat_map(|i| [(i / 15) as i64, (i / 5 % 3) as i64, (i % 5) as i64])
            .collect();
        assert_eq!(coords, want.as_slice());
        Ok(())
    }
}
