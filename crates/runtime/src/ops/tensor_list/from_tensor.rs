//! `TensorListFromTensor(tensor, element_shape) -> output_handle`: one element per index of
//! dimension 0 of `tensor`; the list's element shape is `element_shape`, which must accept
//! the rows.

use ckpt_graph::Node;

use crate::list::{rows, PartialShape, TensorList, MAX_LEN};
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{DType, Error, Value};

use super::element_dtype;

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FromTensor {
        dtype: element_dtype(node)?,
    })
}

#[derive(Debug)]
struct FromTensor {
    dtype: DType,
}

impl Kernel for FromTensor {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [tensor, shape] = take_inputs(inputs)?;
        if tensor.dtype() != self.dtype || matches!(tensor, Value::List(_) | Value::TensorArray(_))
        {
            op_bail!(
                "invalid data types; op elements {} but tensor is {}",
                self.dtype,
                tensor.kind()
            );
        }
        let Some((&n, rest)) = tensor.shape().split_first() else {
            op_bail!("tensor must be at least a vector, but saw shape: []");
        };
        let element_shape = PartialShape::from_tensor(&shape)?;
        if !element_shape.accepts(rest) {
            op_bail!(
                "specified a list with shape {element_shape} from a tensor with shape {}",
                PartialShape::known(tensor.shape())
            );
        }
        if n > MAX_LEN {
            op_bail!("a list of {n} elements is too long (at most {MAX_LEN})");
        }
        let elements = (0..n)
            .map(|i| rows(&tensor, i, 1, true))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vec![Value::List(TensorList::from_elements(
            self.dtype,
            element_shape,
            elements,
        ))])
    }
}
