//! `ClipByValue`: `min(max(t, clip_value_min), clip_value_max)` computed as TensorFlow's
//! Eigen expression `t.cwiseMin(max).cwiseMax(min)` is, so NaN stays NaN and a minimum above
//! the maximum wins. The bounds are scalars or of the input's shape.

use ckpt_graph::Node;

use crate::ops::broadcast::zip3;
use crate::ops::{fmt_shape, kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Clip)
}

#[derive(Debug)]
struct Clip;

impl Kernel for Clip {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [t, lo, hi] = take_inputs(inputs)?;
        for (name, bound) in [("clip_value_min", &lo), ("clip_value_max", &hi)] {
            if bound.len() != 1 && bound.shape() != t.shape() {
                op_bail!(
                    "{name} must be a scalar or of the input's shape {}, got {}",
                    fmt_shape(t.shape()),
                    fmt_shape(bound.shape())
                );
            }
        }
        let out = dispatch_numbers!((t, lo, hi), |t, lo, hi| Value::from(clip(&t, &lo, &hi)?), else {
            (t, lo, hi) => op_bail!(
                "input and bounds must have one dtype, got {}, {} and {}",
                t.dtype(),
                lo.dtype(),
                hi.dtype()
            ),
        });
        Ok(vec![out])
    }
}

fn clip<T: Num>(
    t: &TensorBuf<T>,
    lo: &TensorBuf<T>,
    hi: &TensorBuf<T>,
) -> Result<TensorBuf<T>, OpError> {
    // A scalar bound of shape [1] broadcasts like a scalar.
    let scalar = |b: &TensorBuf<T>| {
        if b.len() == 1 && b.shape() != t.shape() {
            TensorBuf::from_parts(Vec::new(), b.data().to_vec())
        } else {
            b.clone()
        }
    };
    let out = zip3(t, &scalar(lo), &scalar(hi), |x, lo, hi| {
        let y = if hi < x { hi } else { x };
        if y < lo {
            lo
        } else {
            y
        }
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tf.clip_by_value` / `tf.raw_ops.ClipByValue` of the same inputs (TensorFlow 2.21).
    #[test]
    fn matches_tensorflow_on_nan_and_crossed_bounds() -> Result<(), OpError> {
        let t = Value::new(vec![4], vec![1.0f32, f32::NAN, -5.0, 7.0])?;
        let out = Clip.run(vec![
            t.clone(),
            Value::scalar(-1.0f32),
            Value::scalar(3.0f32),
        ])?;
        let got = out[0].as_f32().ok_or(OpError("dtype".into()))?;
        assert_eq!((got[0], got[2], got[3]), (1.0, -1.0, 3.0));
        assert!(got[1].is_nan());
        let lo = Value::new(vec![4], vec![0.0f32; 4])?;
        let out = Clip.run(vec![t, lo, Value::scalar(5.0f32)])?;
        let got = out[0].as_f32().ok_or(OpError("dtype".into()))?;
        assert_eq!((got[0], got[2], got[3]), (1.0, 0.0, 5.0));
        let crossed = Clip.run(vec![
            Value::new(vec![3], vec![1i32, 2, 3])?,
            Value::scalar(3i32),
            Value::scalar(1i32),
        ])?;
        assert_eq!(crossed[0].as_i32(), Some(&[3, 3, 3][..]));
        assert_eq!(
            Clip.run(vec![
                Value::new(vec![2, 2], vec![1.0f32; 4])?,
                Value::new(vec![2], vec![0.0f32; 2])?,
                Value::scalar(5.0f32),
            ])
            .err(),
            Some(OpError(
                "clip_value_min must be a scalar or of the input's shape [2,2], got [2]".into()
            ))
        );
        Ok(())
    }
}
