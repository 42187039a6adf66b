//! `Softmax` and `LogSoftmax` over the last dimension, computed as TensorFlow does:
//! shift by the row maximum, exponentiate, then scale by the reciprocal of the sum (or
//! subtract the log of the sum).

use ckpt_graph::Node;

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
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if log {
            let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
            let log_sum = sum.ln();
            row.iter_mut().for_each(|v| *v = (*v - max) - log_sum);
        } else {
            let mut sum = 0.0f32;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|v| *v *= inv);
        }
    });
    Ok(TensorBuf::from_parts(shape, data))
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
