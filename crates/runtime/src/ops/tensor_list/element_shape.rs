//! `TensorListElementShape(input_handle) -> element_shape`: the list's element shape as a
//! shape tensor of `shape_type` (int32 or int64): -1 for unknown dimensions, the scalar -1
//! for an unknown rank.

use ckpt_graph::ckpt_proto::DataType;
use ckpt_graph::Node;

use crate::ops::{kernel, node_error, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

use super::list;

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let int64 = match node.attr_dtype_or("shape_type", DataType::DtInt32)? {
        DataType::DtInt32 => false,
        DataType::DtInt64 => true,
        other => {
            return Err(node_error(
                node,
                format!("shape_type must be int32 or int64, got {other:?}"),
            ))
        }
    };
    kernel(ElementShape { int64 })
}

#[derive(Debug)]
struct ElementShape {
    int64: bool,
}

impl Kernel for ElementShape {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle] = take_inputs(inputs)?;
        let dims = list(handle)?.element_shape().to_dims();
        let (shape, dims) = match dims {
            None => (vec![], vec![-1]),
            Some(d) => (vec![d.len()], d),
        };
        let out = if self.int64 {
            Value::new(shape, dims)?
        } else {
            let dims: Vec<i32> = dims
                .iter()
                .map(|&d| i32::try_from(d).unwrap_or(i32::MAX))
                .collect();
            Value::new(shape, dims)?
        };
        Ok(vec![out])
    }
}
