//! `Softmax` and `LogSoftmax` over the last dimension, computed as TensorFlow does:
//! shift by the row maximum, exponentiate, then scale by the reciprocal of the sum (or
//! subtract the log of the sum). `Softmax` exponentiates with [`vmath::exp`] (a few ulps, as
//! Eigen's vectorized `exp` in TensorFlow's kernel), in eight-lane loops compiled for AVX2
//! when the CPU has it.

#![allow(unsafe_code)]

use ckpt_graph::Node;

use crate::ops::nn::vmath;
use crate::ops::{
    expect_f32, kernel, op_bail, parallel, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Softmax {
        log: node.op == "LogSoftmax",
    })
}

#[derive(Debug)]
struct Softmax {
    log: bool,
}

impl Kernel for Softmax {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let x = expect_f32(x, "logits")?;
        Ok(vec![Value::F32(softmax(x, self.log)?)])
    }
}

fn softmax(x: TensorBuf<f32>, log: bool) -> Result<TensorBuf<f32>, OpError> {
    let Some(&classes) = x.shape().last() else {
        op_bail!("logits must have rank >= 1, got a scalar");
    };
    let shape = x.shape().to_vec();
    let mut data = x.into_vec();
    parallel::for_rows(&mut data, classes, classes * 8, |_, row| {
        if log {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
            let log_sum = sum.ln();
            row.iter_mut().for_each(|v| *v = (*v - max) - log_sum);
        } else {
            softmax_row(row);
        }
    });
    Ok(TensorBuf::from_parts(shape, data))
}

/// Lanes of the row loops: one AVX register of float32.
const LANES: usize = 8;

/// One row of `Softmax`, in place.
fn softmax_row(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above), all
            // `softmax_row_avx2` requires; its body is safe code.
            unsafe { softmax_row_avx2(row) };
            return;
        }
    }
    softmax_row_portable(row);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_row_avx2(row: &mut [f32]) {
    softmax_row_portable(row);
}

#[inline(always)]
fn softmax_row_portable(row: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = l.max(v);
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sums = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (s, v) in sums.iter_mut().zip(c) {
            *v = vmath::exp(*v - max);
            *s += *v;
        }
    }
    let mut sum = 0.0f32;
    for v in chunks.into_remainder() {
        *v = vmath::exp(*v - max);
        sum += *v;
    }
    let sum = sums.iter().sum::<f32>() + sum;
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_matches_reference() -> Result<(), OpError> {
        for &(rows, cols) in &[(1usize, 1usize), (7, 10), (17, 257), (0, 5)] {
            let data: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 13 % 29) as f32) / 3.0 - 4.0)
                .collect();
            let x = TensorBuf::from_parts(vec![rows, cols], data.clone());
            let y = softmax(x.clone(), false)?;
            let ly = softmax(x, true)?;
            for r in 0..rows {
                let row: Vec<f64> = data[r * cols..(r + 1) * cols]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
                for (c, &v) in row.iter().enumerate() {
                    let want = (v - max).exp() / sum;
                    let got = f64::from(y.data()[r * cols + c]);
                    assert!((got - want).abs() <= 1e-6 * (1.0 + want), "{got} vs {want}");
                    let lwant = (v - max) - sum.ln();
                    let lgot = f64::from(ly.data()[r * cols + c]);
                    assert!(
                        (lgot - lwant).abs() <= 1e-5 * (1.0 + lwant.abs()),
                        "{lgot} vs {lwant}"
                    );
                }
            }
        }
        assert_eq!(
            softmax(TensorBuf::from_parts(vec![], vec![1.0]), false).err(),
            Some(OpError("logits must have rank >= 1, got a scalar".into()))
        );
        Ok(())
    }
}
