//! `Bucketize`: for each element, how many of the sorted `boundaries` are at most it (C++'s
//! `upper_bound`), as int32. Integer and float32 inputs compare as float32, float64 inputs as
//! float64, as TensorFlow's kernel compares them with its float boundaries; NaN lands in the
//! last bucket.

// `!(x < b)` is C++'s upper_bound test, which puts NaN past every boundary; `x >= b` would not.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use ckpt_graph::Node;

use crate::ops::{kernel, node_error, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let boundaries = node.attr_floats("boundaries")?;
    if boundaries.windows(2).any(|w| !(w[0] <= w[1])) {
        return Err(node_error(
            node,
            format!("boundaries must be sorted, got {boundaries:?}"),
        ));
    }
    kernel(Bucketize { boundaries })
}

#[derive(Debug)]
struct Bucketize {
    boundaries: Vec<f32>,
}

impl Bucketize {
    fn bucket_f32(&self, x: f32) -> i32 {
        self.boundaries.partition_point(|&b| !(x < b)) as i32
    }

    fn bucket_f64(&self, x: f64) -> i32 {
        self.boundaries.partition_point(|&b| !(x < f64::from(b))) as i32
    }
}

impl Kernel for Bucketize {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let shape = x.shape().to_vec();
        let data: Vec<i32> = match &x {
            Value::F32(t) => t.data().iter().map(|&v| self.bucket_f32(v)).collect(),
            Value::F64(t) => t.data().iter().map(|&v| self.bucket_f64(v)).collect(),
            Value::I32(t) => t
                .data()
                .iter()
                .map(|&v| self.bucket_f32(v as f32))
                .collect(),
            Value::I64(t) => t
                .data()
                .iter()
                .map(|&v| self.bucket_f32(v as f32))
                .collect(),
            other => op_bail!("unsupported dtype {}", other.dtype()),
        };
        Ok(vec![Value::I32(TensorBuf::from_parts(shape, data))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tf.raw_ops.Bucketize` of the same inputs (TensorFlow 2.21).
    #[test]
    fn matches_tensorflow() -> Result<(), OpError> {
        let k = Bucketize {
            boundaries: vec![0.0, 1.0, 10.0],
        };
        let x = Value::new(vec![6], vec![-5.0f32, 0.0, 1.0, 1.5, 10.0, f32::NAN])?;
        assert_eq!(k.run(vec![x])?[0].as_i32(), Some(&[0, 1, 2, 2, 3, 3][..]));
        let x = Value::new(vec![5], vec![-5i64, 0, 1, 10, 11])?;
        assert_eq!(k.run(vec![x])?[0].as_i32(), Some(&[0, 1, 2, 3, 3][..]));
        let empty = Bucketize { boundaries: vec![] };
        assert_eq!(
            empty.run(vec![Value::scalar(3.0f64)])?[0].as_i32(),
            Some(&[0][..])
        );
        Ok(())
    }
}
