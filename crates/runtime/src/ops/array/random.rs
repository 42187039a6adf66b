//! `RandomUniform`: uniform values in [0, 1) from a deterministic generator seeded by the
//! node's `seed`/`seed2` attributes, so runs repeat exactly. The values differ from
//! TensorFlow's Philox stream; graphs use them only in dropout masks, where a keep
//! probability of 1 (or a rate of 0) makes them irrelevant.

use ckpt_graph::Node;

use crate::ops::{
    dims_from, dtype_attr, int_values, kernel, node_error, take_inputs, BuildCtx, Built, Kernel,
    OpError,
};
use crate::value::TensorBuf;
use crate::{DType, Error, Value};

/// Ops that draw random numbers (dropout masks).
pub(crate) const RANDOM_OPS: &[&str] = &[
    "RandomUniform",
    "RandomUniformInt",
    "RandomStandardNormal",
    "TruncatedNormal",
    "StatelessRandomUniform",
    "StatelessRandomUniformV2",
];

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let dtype = dtype_attr(node, "dtype")?;
    if !matches!(dtype, DType::Float32 | DType::Float64) {
        return Err(node_error(
            node,
            format!("dtype must be float32 or float64, got {dtype}"),
        ));
    }
    let seed = node.attr_i64_or("seed", 0)? as u64;
    let seed2 = node.attr_i64_or("seed2", 0)? as u64;
    kernel(RandomUniform {
        dtype,
        seed: seed.rotate_left(32) ^ seed2 ^ 0x5851_f42d_4c95_7f2d,
    })
}

#[derive(Debug)]
struct RandomUniform {
    dtype: DType,
    seed: u64,
}

/// SplitMix64: a small, fast, statistically sound generator.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Kernel for RandomUniform {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [shape] = take_inputs(inputs)?;
        let shape = dims_from(&int_values(&shape, "shape")?, "shape")?;
        let n = crate::ops::output_len(&shape, crate::ops::element_bytes(self.dtype))?;
        let mut state = self.seed;
        let out = match self.dtype {
            DType::Float64 => Value::F64(TensorBuf::from_parts(
                shape,
                (0..n)
                    .map(|_| (splitmix(&mut state) >> 11) as f64 * (1.0 / (1u64 << 53) as f64))
                    .collect(),
            )),
            _ => Value::F32(TensorBuf::from_parts(
                shape,
                (0..n)
                    .map(|_| (splitmix(&mut state) >> 40) as f32 * (1.0 / (1u32 << 24) as f32))
                    .collect(),
            )),
        };
        Ok(vec![out])
    }

    fn is_pure(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_in_unit_interval_and_repeatable() -> Result<(), OpError> {
        let k = RandomUniform {
            dtype: DType::Float32,
            seed: 42,
        };
        let a = k.run(vec![Value::new(vec![2], vec![100i32, 100])?])?;
        let b = k.run(vec![Value::new(vec![2], vec![100i32, 100])?])?;
        assert_eq!(a, b);
        let v = a[0].as_f32().ok_or(OpError("dtype".into()))?;
        assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        Ok(())
    }
}
