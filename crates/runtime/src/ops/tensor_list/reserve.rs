//! `TensorListReserve(element_shape, num_elements) -> handle`: a list of `num_elements`
//! uninitialized elements, each reading as zeros once its shape is known.

use ckpt_graph::Node;

use crate::list::{PartialShape, TensorList};
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{DType, Error, Value};

use super::{element_dtype, scalar};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Reserve {
        dtype: element_dtype(node)?,
    })
}

#[derive(Debug)]
struct Reserve {
    dtype: DType,
}

impl Kernel for Reserve {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [shape, n] = take_inputs(inputs)?;
        let n = scalar(&n, "num_elements")?;
        let Ok(n) = usize::try_from(n) else {
            op_bail!("the num_elements to reserve must be a non negative number, but got {n}");
        };
        let shape = PartialShape::from_tensor(&shape)?;
        Ok(vec![Value::List(TensorList::reserved(
            self.dtype, shape, n, None,
        )?)])
    }
}
