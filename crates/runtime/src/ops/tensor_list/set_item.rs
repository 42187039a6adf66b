//! `TensorListSetItem(input_handle, index, item) -> output_handle`: the list with element
//! `index` set to `item`. `index` must be below the length unless
//! `resize_if_index_out_of_bounds`, which grows the list to hold it.

use ckpt_graph::Node;

use crate::list::{PartialShape, MAX_LEN};
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{DType, Error, Value};

use super::{check_item_dtype, element_dtype, list, scalar};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(SetItem {
        dtype: element_dtype(node)?,
        resize: node.attr_bool_or("resize_if_index_out_of_bounds", false)?,
    })
}

#[derive(Debug)]
struct SetItem {
    dtype: DType,
    resize: bool,
}

impl Kernel for SetItem {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, index, item] = take_inputs(inputs)?;
        let mut l = list(handle)?;
        l.check_dtype(self.dtype)?;
        check_item_dtype(&l, &item)?;
        let index = scalar(&index, "index")?;
        let len = l.len();
        let i = match usize::try_from(index) {
            Ok(i) if i < len || (self.resize && i < MAX_LEN) => i,
            _ => op_bail!("trying to modify element {index} in a list with {len} elements"),
        };
        if !l.element_shape().accepts(item.shape()) {
            op_bail!(
                "tried to set a tensor with incompatible shape at a list index; item element shape: {} list shape: {}",
                PartialShape::known(item.shape()),
                l.element_shape()
            );
        }
        let elements = l.elements_mut();
        if i >= elements.len() {
            elements.resize(i + 1, None);
        }
        elements[i] = Some(item);
        Ok(vec![Value::List(l)])
    }
}
