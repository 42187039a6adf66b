//! `EmptyTensorList(element_shape, max_num_elements) -> handle`: a list without elements,
//! which `TensorListPushBack` may grow to `max_num_elements` (-1: without limit).

use ckpt_graph::Node;

use crate::list::{PartialShape, TensorList};
use crate::ops::{kernel, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{DType, Error, Value};

use super::{element_dtype, scalar};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Empty {
        dtype: element_dtype(node)?,
    })
}

#[derive(Debug)]
struct Empty {
    dtype: DType,
}

impl Kernel for Empty {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [shape, max] = take_inputs(inputs)?;
        let max = usize::try_from(scalar(&max, "max_num_elements")?).ok();
        let shape = PartialShape::from_tensor(&shape)?;
        Ok(vec![Value::List(TensorList::reserved(
            self.dtype, shape, 0, max,
        )?)])
    }
}
