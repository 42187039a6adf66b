//! `BiasAdd`: adds a vector along the channel dimension (last for NHWC, 1 for NCHW), in
//! place when the value's buffer is not shared.

use ckpt_graph::Node;

use crate::ops::math::binary::{binary, BinOp};
use crate::ops::{kernel, node_error, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let nchw = match node.attr_string_or("data_format", "NHWC")?.as_str() {
        "NHWC" | "" => false,
        "NCHW" => true,
        other => {
            return Err(node_error(
                node,
                format!("unsupported data_format {other:?}"),
            ))
        }
    };
    kernel(BiasAdd { nchw })
}

#[derive(Debug)]
pub(crate) struct BiasAdd {
    pub nchw: bool,
}

impl Kernel for BiasAdd {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, bias] = take_inputs(inputs)?;
        let shape = x.shape().to_vec();
        if shape.len() < 2 || bias.shape().len() != 1 {
            op_bail!(
                "value must have rank >= 2 and bias rank 1, got {:?} and {:?}",
                shape,
                bias.shape()
            );
        }
        let channel_axis = if self.nchw { 1 } else { shape.len() - 1 };
        if shape[channel_axis] != bias.len() {
            op_bail!(
                "bias has {} elements, value has {} channels (shape {:?})",
                bias.len(),
                shape[channel_axis],
                shape
            );
        }
        let bias = if self.nchw {
            let mut s = vec![1usize; shape.len() - 1];
            s[0] = bias.len();
            bias.reshape(s)?
        } else {
            bias
        };
        // In place when `x` is not shared; same dtype checks and messages as `Add`.
        Ok(vec![binary(BinOp::Add, x, bias)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_along_channels() -> Result<(), OpError> {
        let x = Value::new(vec![2, 3], vec![0.0f32; 6])?;
        let b = Value::new(vec![3], vec![1.0f32, 2.0, 3.0])?;
        let y = BiasAdd { nchw: false }.run(vec![x, b.clone()])?;
        assert_eq!(y[0].as_f32(), Some(&[1.0, 2.0, 3.0, 1.0, 2.0, 3.0][..]));
        let x = Value::new(vec![1, 3, 2], vec![0.0f32; 6])?;
        let y = BiasAdd { nchw: true }.run(vec![x, b.clone()])?;
        assert_eq!(y[0].as_f32(), Some(&[1.0, 1.0, 2.0, 2.0, 3.0, 3.0][..]));
        let x = Value::new(vec![2, 2], vec![0.0f32; 4])?;
        assert_eq!(
            BiasAdd { nchw: false }.run(vec![x, b]).err(),
            Some(OpError(
                "bias has 3 elements, value has 2 channels (shape [2, 2])".into()
            ))
        );
        Ok(())
    }
}
