//! `TensorListGetItem(input_handle, index, element_shape) -> item`: element `index`. An
//! uninitialized element reads as zeros of `element_shape` merged with the list's element
//! shape and the shapes of the set elements, which must make it fully known.

use ckpt_graph::Node;

use crate::list::zeros;
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{DType, Error, Value};

use super::{element_dtype, element_shape_from_input, list, scalar};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(GetItem {
        dtype: element_dtype(node)?,
    })
}

#[derive(Debug)]
struct GetItem {
    dtype: DType,
}

impl Kernel for GetItem {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, index, shape] = take_inputs(inputs)?;
        let l = list(handle)?;
        l.check_dtype(self.dtype)?;
        let index = scalar(&index, "index")?;
        let Some(i) = usize::try_from(index).ok().filter(|&i| i < l.len()) else {
            op_bail!(
                "trying to access element {index} in a list with {} elements",
                l.len()
            );
        };
        if let Some(v) = l.get(i) {
            return Ok(vec![v.clone()]);
        }
        let shape = l.inferred_element_shape(element_shape_from_input(&l, &shape)?)?;
        let Some(dims) = shape.to_shape() else {
            op_bail!(
                "trying to read an uninitialized tensor but element_shape is not fully defined: {shape} and no list element is set"
            );
        };
        Ok(vec![zeros(self.dtype, dims)?])
    }
}
