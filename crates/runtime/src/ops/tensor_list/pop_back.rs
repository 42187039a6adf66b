//! `TensorListPopBack(input_handle, element_shape) -> (output_handle, tensor)`: the list
//! without its last element, and that element (zeros when it was never set, which needs a
//! fully known shape).

use ckpt_graph::Node;

use crate::list::zeros;
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{DType, Error, Value};

use super::{element_dtype, element_shape_from_input, list};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(PopBack {
        dtype: element_dtype(node)?,
    })
}

#[derive(Debug)]
struct PopBack {
    dtype: DType,
}

impl Kernel for PopBack {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, shape] = take_inputs(inputs)?;
        let mut l = list(handle)?;
        l.check_dtype(self.dtype)?;
        if l.is_empty() {
            op_bail!("trying to pop from an empty list");
        }
        let shape = element_shape_from_input(&l, &shape)?;
        let last = l.elements_mut().pop().flatten();
        let item = match last {
            Some(v) => v,
            None => match shape.to_shape() {
                Some(dims) => zeros(self.dtype, dims)?,
                None => op_bail!(
                    "trying to read an uninitialized tensor but element_shape is not fully defined: {shape}"
                ),
            },
        };
        Ok(vec![Value::List(l), item])
    }
}
