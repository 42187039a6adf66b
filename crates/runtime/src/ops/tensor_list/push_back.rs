//! `TensorListPushBack(input_handle, tensor) -> output_handle`: the list with `tensor`
//! appended, which must fit the element shape (and the list's `max_num_elements`).

use ckpt_graph::Node;

use crate::list::{PartialShape, MAX_LEN};
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{DType, Error, Value};

use super::{check_item_dtype, element_dtype, list};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(PushBack {
        dtype: element_dtype(node)?,
    })
}

#[derive(Debug)]
struct PushBack {
    dtype: DType,
}

impl Kernel for PushBack {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, item] = take_inputs(inputs)?;
        let mut l = list(handle)?;
        l.check_dtype(self.dtype)?;
        check_item_dtype(&l, &item)?;
        if !l.element_shape().accepts(item.shape()) {
            op_bail!(
                "tried to append a tensor with incompatible shape to a list; op element shape: {} list shape: {}",
                PartialShape::known(item.shape()),
                l.element_shape()
            );
        }
        let limit = l.max_len().unwrap_or(MAX_LEN).min(MAX_LEN);
        if l.len() >= limit {
            op_bail!(
                "tried to push item into a full list; list size: {} max_num_elements: {limit}",
                l.len()
            );
        }
        l.elements_mut().push(Some(item));
        Ok(vec![Value::List(l)])
    }
}
