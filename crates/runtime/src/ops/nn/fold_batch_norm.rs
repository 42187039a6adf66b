//! Folding an inference `FusedBatchNorm(V3)` into the convolution before it (a plan step,
//! not an op of the table): `bn(conv(x, w) + b)` is `conv(x, w * s) + (b - mean) * s + offset`
//! with `s = scale / sqrt(variance + epsilon)` per output channel, the identity TensorFlow's
//! grappler remapper and ONNX converters use. The plan evaluates it once when the filter and
//! the batch norm's parameters are constants; its errors name the batch norm node.

use crate::ops::{expect_f32, fmt_shape, op_bail, Kernel, OpError};
use crate::value::TensorBuf;
use crate::Value;

/// The folding step: inputs filter, scale, offset, mean, variance (and the bias of an absorbed
/// `BiasAdd` when `has_bias`); outputs the scaled filter and the bias.
pub(crate) fn kernel(epsilon: f32, has_bias: bool) -> Box<dyn Kernel> {
    Box::new(FoldBatchNorm { epsilon, has_bias })
}

#[derive(Debug)]
struct FoldBatchNorm {
    epsilon: f32,
    has_bias: bool,
}

impl Kernel for FoldBatchNorm {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let expected = if self.has_bias { 6 } else { 5 };
        if inputs.len() != expected {
            op_bail!("expected {expected} inputs, got {}", inputs.len());
        }
        let names = ["filter", "scale", "offset", "mean", "variance", "bias"];
        let mut t = Vec::with_capacity(expected);
        for (v, name) in inputs.into_iter().zip(names) {
            t.push(expect_f32(v, name)?);
        }
        let c = t[1].len();
        for (k, name) in names.iter().enumerate().take(expected).skip(2) {
            if t[k].len() != c {
                op_bail!("{name} has {} elements, scale has {c}", t[k].len());
            }
        }
        let shape = t[0].shape();
        let channels_last = shape.last() == Some(&c)
            || (shape.len() >= 2 && shape[shape.len() - 2] * shape[shape.len() - 1] == c);
        if !channels_last || c == 0 {
            op_bail!(
                "the batch norm has {c} channels, the filter before it has shape {}",
                fmt_shape(shape)
            );
        }
        Ok(fold(&t, self.epsilon))
    }
}

/// The scaled filter and the bias from `[filter, scale, offset, mean, variance, bias?]`.
fn fold(t: &[TensorBuf<f32>], epsilon: f32) -> Vec<Value> {
    let (scale, offset, mean, var) = (t[1].data(), t[2].data(), t[3].data(), t[4].data());
    let s: Vec<f32> = scale
        .iter()
        .zip(var)
        .map(|(&g, &v)| g / (v + epsilon).sqrt())
        .collect();
    let mut w = t[0].data().to_vec();
    for row in w.chunks_mut(s.len()) {
        for (x, &k) in row.iter_mut().zip(&s) {
            *x *= k;
        }
    }
    let bias: Vec<f32> = (0..s.len())
        .map(|i| {
            let b = t.get(5).map_or(0.0, |b| b.data()[i]);
            (b - mean[i]) * s[i] + offset[i]
        })
        .collect();
    vec![
        Value::F32(TensorBuf::from_parts(t[0].shape().to_vec(), w)),
        Value::F32(TensorBuf::from_parts(vec![s.len()], bias)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_scale_and_shift_per_channel() -> Result<(), OpError> {
        let v = |shape: Vec<usize>, d: Vec<f32>| Value::new(shape, d).map_err(OpError::from);
        let out = kernel(0.0, true).run(vec![
            v(vec![1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0])?,
            v(vec![2], vec![2.0, 1.0])?,
            v(vec![2], vec![0.5, -1.0])?,
            v(vec![2], vec![1.0, 2.0])?,
            v(vec![2], vec![4.0, 0.25])?,
            v(vec![2], vec![3.0, 0.0])?,
        ])?;
        // s = [2/2, 1/0.5] = [1, 2]
        assert_eq!(out[0].as_f32(), Some(&[1.0, 4.0, 3.0, 8.0][..]));
        // (3 - 1) * 1 + 0.5, (0 - 2) * 2 - 1
        assert_eq!(out[1].as_f32(), Some(&[2.5, -5.0][..]));
        Ok(())
    }

    #[test]
    fn mismatched_parameters_are_errors() -> Result<(), OpError> {
        let v = |n: usize| Value::new(vec![n], vec![1.0f32; n]).map_err(OpError::from);
        let err = kernel(1e-3, false)
            .run(vec![v(4)?, v(4)?, v(4)?, v(3)?, v(4)?])
            .err();
        assert_eq!(
            err,
            Some(OpError("mean has 3 elements, scale has 4".into()))
        );
        let err = kernel(1e-3, false)
            .run(vec![v(6)?, v(4)?, v(4)?, v(4)?, v(4)?])
            .err();
        assert_eq!(
            err,
            Some(OpError(
                "the batch norm has 4 channels, the filter before it has shape [6]".into()
            ))
        );
        Ok(())
    }
}
