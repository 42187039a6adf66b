//! `TensorListStack(input_handle, element_shape) -> tensor`: the elements stacked along a new
//! dimension 0. Uninitialized elements become zeros shaped like the set ones (or like a fully
//! known `element_shape`); the `num_elements` attribute, unless -1, must be the length.

use ckpt_graph::Node;

use crate::list::{join, zeros};
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{DType, Error, Value};

use super::{element_dtype, element_shape_from_input, list};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Stack {
        dtype: element_dtype(node)?,
        num_elements: node.attr_i64_or("num_elements", -1)?,
    })
}

#[derive(Debug)]
struct Stack {
    dtype: DType,
    num_elements: i64,
}

impl Kernel for Stack {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, shape] = take_inputs(inputs)?;
        let l = list(handle)?;
        l.check_dtype(self.dtype)?;
        if self.num_elements != -1 && usize::try_from(self.num_elements).ok() != Some(l.len()) {
            op_bail!(
                "operation expected a list with {} elements but got a list with {} elements",
                self.num_elements,
                l.len()
            );
        }
        let partial = element_shape_from_input(&l, &shape)?;
        if l.is_empty() && partial.to_shape().is_none() {
            op_bail!("tried to stack elements of an empty list with non-fully-defined element_shape: {partial}");
        }
        let partial = if l.element_shape().to_shape().is_none() {
            let mut merged = partial;
            for e in l.elements().iter().flatten() {
                merged = merged.merge(&crate::list::PartialShape::known(e.shape()))?;
            }
            merged
        } else {
            partial
        };
        let Some(element_shape) = partial.to_shape() else {
            op_bail!("tried to stack list which only contains uninitialized tensors and has a non-fully-defined element_shape: {partial}");
        };
        let zero = if l.elements().iter().any(Option::is_none) {
            Some(zeros(self.dtype, element_shape.clone())?)
        } else {
            None
        };
        let parts: Vec<&Value> = l
            .elements()
            .iter()
            .filter_map(|e| e.as_ref().or(zero.as_ref()))
            .collect();
        let shape = std::iter::once(l.len()).chain(element_shape).collect();
        Ok(vec![join(self.dtype, &parts, shape)?])
    }
}
