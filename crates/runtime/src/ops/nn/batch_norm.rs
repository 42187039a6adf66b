//! `FusedBatchNorm` / `FusedBatchNormV2` / `FusedBatchNormV3`, NHWC or NCHW (`data_format`).
//!
//! At inference (`is_training = false`) the kernel computes, per channel,
//! `y = fma((x - mean) * rsqrt(variance + epsilon), scale, offset)`: the order (and the fused
//! multiply-add) of TensorFlow 2.x's oneDNN kernel, which this reproduces bit for bit. With
//! `is_training = true` it normalizes with the batch's own statistics.

use ckpt_graph::Node;

use crate::ops::{
    expect_f32, kernel, node_error, op_bail, parallel, BuildCtx, Built, Kernel, OpError,
};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let nchw = match node.attr_string_or("data_format", "NHWC")?.as_str() {
        "NHWC" => false,
        "NCHW" => true,
        other => {
            return Err(node_error(
                node,
                format!("unsupported data_format {other:?}"),
            ))
        }
    };
    kernel(BatchNorm {
        epsilon: node.attr_f32_or("epsilon", 1e-4)?,
        is_training: node.attr_bool_or("is_training", true)?,
        nchw,
        v3: node.op == "FusedBatchNormV3",
    })
}

#[derive(Debug)]
struct BatchNorm {
    epsilon: f32,
    is_training: bool,
    nchw: bool,
    v3: bool,
}

impl Kernel for BatchNorm {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        if inputs.len() != 5 {
            op_bail!("expected 5 inputs, got {}", inputs.len());
        }
        let mut it = inputs.into_iter().map(|v| expect_f32(v, "input"));
        let mut next = || {
            it.next()
                .unwrap_or_else(|| Err(OpError("missing input".into())))
        };
        let (x, scale, offset, mean, var) = (next()?, next()?, next()?, next()?, next()?);
        let shape = x.shape().to_vec();
        if shape.len() != 4 {
            op_bail!("input must have rank 4, got shape {shape:?}");
        }
        let (c, inner) = if self.nchw {
            (shape[1], shape[2] * shape[3])
        } else {
            (shape[3], 1)
        };
        for (name, t) in [("scale", &scale), ("offset", &offset)] {
            if t.len() != c {
                op_bail!("{name} has {} elements, input has {c} channels", t.len());
            }
        }
        let (mean, var, reported_var) = if self.is_training {
            let (m, v) = batch_moments(x.data(), c, inner);
            let count = (x.len() / c.max(1)) as f32;
            let unbiased: Vec<f32> = v
                .iter()
                .map(|&v| {
                    if count > 1.0 {
                        v * count / (count - 1.0)
                    } else {
                        v
                    }
                })
                .collect();
            (m.clone(), v, unbiased)
        } else {
            for (name, t) in [("mean", &mean), ("variance", &var)] {
                if t.len() != c {
                    op_bail!("{name} has {} elements, input has {c} channels", t.len());
                }
            }
            (
                mean.data().to_vec(),
                var.data().to_vec(),
                var.data().to_vec(),
            )
        };
        let rsqrt: Vec<f32> = var
            .iter()
            .map(|&v| 1.0 / (v + self.epsilon).sqrt())
            .collect();
        let (scale, offset) = (scale.data(), offset.data());
        let normalize = |row: &mut [f32]| {
            if self.nchw {
                for (ch, plane) in row.chunks_mut(inner.max(1)).enumerate() {
                    let (m, r, s, o) = (mean[ch], rsqrt[ch], scale[ch], offset[ch]);
                    plane.iter_mut().for_each(|v| *v = fma((*v - m) * r, s, o));
                }
            } else {
                for (i, v) in row.iter_mut().enumerate() {
                    *v = fma((*v - mean[i]) * rsqrt[i], scale[i], offset[i]);
                }
            }
        };
        let row_len = c * inner;
        let mut y = x;
        let shape_y = y.shape().to_vec();
        let y = match y.unique_mut() {
            Some(data) => {
                parallel::for_rows(data, row_len, row_len, |_, row| normalize(row));
                y
            }
            None => {
                let mut data = y.data().to_vec();
                parallel::for_rows(&mut data, row_len, row_len, |_, row| normalize(row));
                TensorBuf::from_parts(shape_y, data)
            }
        };
        let vec1 = |v: Vec<f32>| Value::F32(TensorBuf::from_parts(vec![c], v));
        let mut outs = vec![
            Value::F32(y),
            vec1(mean.clone()),
            vec1(reported_var),
            vec1(mean),
            vec1(var),
        ];
        if self.v3 {
            outs.push(Value::F32(TensorBuf::from_parts(vec![0], Vec::new())));
        }
        Ok(outs)
    }
}

/// `a * b + c` rounded once, as a fused multiply-add does: the product of two `f32`s is exact
/// in `f64`, so only the sum rounds before the final conversion (a double rounding that
/// differs from a true fma only in rare halfway cases), and it vectorizes, unlike `mul_add`
/// without a hardware-fma target.
#[inline]
pub(crate) fn fma(a: f32, b: f32, c: f32) -> f32 {
    (f64::from(a) * f64::from(b) + f64::from(c)) as f32
}

/// Per-channel mean and (biased) variance.
fn batch_moments(x: &[f32], c: usize, inner: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0.0f64; c];
    let mut sq = vec![0.0f64; c];
    for row in x.chunks(c * inner.max(1)) {
        for (i, &v) in row.iter().enumerate() {
            let ch = i / inner.max(1);
            sum[ch] += f64::from(v);
            sq[ch] += f64::from(v) * f64::from(v);
        }
    }
    let count = (x.len() / c.max(1)).max(1) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / count) as f32).collect();
    let var: Vec<f32> = sum
        .iter()
        .zip(&sq)
        .map(|(s, q)| ((q / count) - (s / count).powi(2)).max(0.0) as f32)
        .collect();
    (mean, var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_matches_formula() -> Result<(), OpError> {
        let c = 3;
        let xv: Vec<f32> = (0..2 * 2 * 2 * c).map(|i| i as f32 * 0.5 - 3.0).collect();
        let scale = vec![1.0f32, 2.0, 0.5];
        let offset = vec![0.1f32, -0.2, 0.0];
        let mean = vec![0.5f32, -1.0, 2.0];
        let var = vec![1.0f32, 4.0, 0.25];
        let k = BatchNorm {
            epsilon: 0.001,
            is_training: false,
            nchw: false,
            v3: true,
        };
        let v = |shape: Vec<usize>, d: &Vec<f32>| Value::new(shape, d.clone());
        let out = k.run(vec![
            v(vec![2, 2, 2, c], &xv)?,
            v(vec![c], &scale)?,
            v(vec![c], &offset)?,
            v(vec![c], &mean)?,
            v(vec![c], &var)?,
        ])?;
        assert_eq!(out.len(), 6);
        let y = out[0].as_f32().ok_or(OpError("dtype".into()))?;
        for (i, &x) in xv.iter().enumerate() {
            let ch = i % c;
            let r = 1.0 / (var[ch] + 0.001f32).sqrt();
            let want = ((x - mean[ch]) * r).mul_add(scale[ch], offset[ch]);
            assert_eq!(y[i], want);
        }
        Ok(())
    }

    #[test]
    fn training_mode_normalizes_each_channel() -> Result<(), OpError> {
        let xv: Vec<f32> = (0..8).map(|i| i as f32).collect(); // [2,2,1,2]
        let k = BatchNorm {
            epsilon: 0.0,
            is_training: true,
            nchw: false,
            v3: false,
        };
        let ones = Value::new(vec![2], vec![1.0f32, 1.0])?;
        let zeros = Value::new(vec![2], vec![0.0f32, 0.0])?;
        let empty = Value::new(vec![0], Vec::<f32>::new())?;
        let out = k.run(vec![
            Value::new(vec![2, 2, 1, 2], xv)?,
            ones,
            zeros,
            empty.clone(),
            empty,
        ])?;
        let y = out[0].as_f32().ok_or(OpError("dtype".into()))?;
        let mean0: f32 = (0..4).map(|i| y[2 * i]).sum::<f32>() / 4.0;
        assert!(mean0.abs() < 1e-6);
        assert_eq!(out[1].as_f32(), Some(&[3.0, 4.0][..]));
        Ok(())
    }
}
