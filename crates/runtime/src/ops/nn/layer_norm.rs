//! Layer normalization as graphs spell it out with `tf.nn.moments` and
//! `tf.nn.batch_normalization` (google-research/bert's and `tf.contrib.layers.layer_norm`'s
//! `LayerNorm`), run as one kernel by the fusion ([`crate::fusion`]):
//!
//! ```text
//! mean = Mean(x, axes, keep_dims)        var = Mean(SquaredDifference(x, mean), axes, keep_dims)
//! m = Rsqrt(var + epsilon) * gamma       y = x * m + (beta - mean * m)
//! ```
//!
//! When the axes are the last dimension and `gamma`/`beta` hold one value per element of it,
//! each row is normalized while it is in cache, with the float32 operations of the unfused
//! ops in their order (the mean's sum in the Eigen order of the `Mean` kernel), so the result
//! is bit-identical to them. Any other shapes run the unfused ops' kernels one after another.

use crate::ops::broadcast::zip2;
use crate::ops::math::reduce::{mean_of_row, reduce, Reduction};
use crate::ops::{expect_f32, int_values, normalize_axis, parallel, take_inputs, Kernel, OpError};
use crate::value::TensorBuf;
use crate::Value;

/// The fused kernel. Inputs: `x`, the reduction axes, `epsilon`, `gamma`, `beta`.
#[derive(Debug)]
pub(crate) struct LayerNorm;

impl Kernel for LayerNorm {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, axes, epsilon, gamma, beta] = take_inputs(inputs)?;
        let axes = int_values(&axes, "reduction_indices")?;
        let x = expect_f32(x, "x")?;
        let epsilon = expect_f32(epsilon, "epsilon")?;
        let gamma = expect_f32(gamma, "gamma")?;
        let beta = expect_f32(beta, "beta")?;
        let rank = x.shape().len();
        let last_axis_only =
            rank > 0 && axes.len() == 1 && normalize_axis(axes[0], rank).ok() == Some(rank - 1);
        let d = x.shape().last().copied().unwrap_or(0);
        let y = if last_axis_only
            && d > 0
            && epsilon.len() == 1
            && gamma.shape() == [d]
            && beta.shape() == [d]
        {
            rows(&x, epsilon.data()[0], gamma.data(), beta.data())
        } else {
            unfused(&x, &axes, &epsilon, &gamma, &beta)?
        };
        Ok(vec![Value::F32(y)])
    }
}

/// Every row of `x` (last dimension `gamma.len()`) normalized in one pass.
fn rows(x: &TensorBuf<f32>, epsilon: f32, gamma: &[f32], beta: &[f32]) -> TensorBuf<f32> {
    let d = gamma.len();
    let src = x.data();
    let mut out = vec![0.0f32; src.len()];
    parallel::for_rows(&mut out, d, d * 8, |r, row| {
        let xr = &src[r * d..(r + 1) * d];
        let mean = mean_of_row(xr);
        // SquaredDifference into the output row, then its mean.
        for (o, &v) in row.iter_mut().zip(xr) {
            let diff = v - mean;
            *o = diff * diff;
        }
        let var = mean_of_row(row);
        let rs = 1.0 / (var + epsilon).sqrt();
        for (((o, &v), &g), &b) in row.iter_mut().zip(xr).zip(gamma).zip(beta) {
            let m = rs * g;
            *o = v * m + (b - mean * m);
        }
    });
    TensorBuf::from_parts(x.shape().to_vec(), out)
}

/// The unfused ops' kernels in order, for shapes [`rows`] does not cover.
fn unfused(
    x: &TensorBuf<f32>,
    axes: &[i64],
    epsilon: &TensorBuf<f32>,
    gamma: &TensorBuf<f32>,
    beta: &TensorBuf<f32>,
) -> Result<TensorBuf<f32>, OpError> {
    let mean = reduce(x, axes, true, Reduction::Mean)?;
    let squared = zip2(x, &mean, |a, b| {
        let diff = a - b;
        diff * diff
    })?;
    let var = reduce(&squared, axes, true, Reduction::Mean)?;
    let shifted = zip2(&var, epsilon, |a, b| a + b)?;
    let rs = TensorBuf::from_parts(
        shifted.shape().to_vec(),
        shifted.data().iter().map(|&v| 1.0 / v.sqrt()).collect(),
    );
    let m = zip2(&rs, gamma, |a, b| a * b)?;
    let xm = zip2(x, &m, |a, b| a * b)?;
    let mean_m = zip2(&mean, &m, |a, b| a * b)?;
    let shift = zip2(beta, &mean_m, |a, b| a - b)?;
    zip2(&xm, &shift, |a, b| a + b)
}
