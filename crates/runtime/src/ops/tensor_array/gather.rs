//! `TensorArrayGatherV3(handle, indices, flow_in) -> value`: the elements at `indices`,
//! stacked along a new dimension 0 (`tf.TensorArray.stack` gathers `range(size)`). The
//! `element_shape` attribute refines the array's element shape first, so unwritten elements
//! read as zeros once it is known; an empty gather needs it fully known.

use ckpt_graph::Node;

use crate::list::{join, PartialShape};
use crate::ops::{
    dtype_attr, kernel, node_error, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::{DType, Error, Value};

use super::{array, index_vector};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let element_shape = if node.has_attr("element_shape") {
        node.attr_shape("element_shape")?
    } else {
        None
    };
    kernel(Gather {
        dtype: dtype_attr(node, "dtype")?,
        element_shape: PartialShape::from_attr(element_shape.as_deref())
            .map_err(|e| node_error(node, e.0))?,
    })
}

#[derive(Debug)]
struct Gather {
    dtype: DType,
    element_shape: PartialShape,
}

impl Kernel for Gather {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, indices, _flow] = take_inputs(inputs)?;
        let indices = index_vector(&indices, "indices")?;
        let mut state = array(&handle)?.lock()?;
        state.check_dtype(self.dtype)?;
        state.refine_element_shape(&self.element_shape)?;
        if indices.is_empty() {
            let Some(shape) = self.element_shape.to_shape() else {
                op_bail!(
                    "TensorArray has size zero, but element shape {} is not fully defined; only static shapes are supported when packing zero-size TensorArrays",
                    self.element_shape
                );
            };
            let shape = std::iter::once(0).chain(shape).collect();
            return Ok(vec![join(self.dtype, &[], shape)?]);
        }
        let values = indices
            .iter()
            .map(|&i| state.read(i))
            .collect::<Result<Vec<_>, _>>()?;
        drop(state);
        let first = values[0].shape();
        if !self.element_shape.accepts(first) {
            op_bail!(
                "TensorArray was passed element_shape {} which does not match the Tensor at index 0: {}",
                self.element_shape,
                PartialShape::known(first)
            );
        }
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| v.shape() != first) {
            op_bail!(
                "TensorArray has inconsistent shapes; index 0 has shape: {} but index {i} has shape: {}",
                PartialShape::known(first),
                PartialShape::known(v.shape())
            );
        }
        let shape = std::iter::once(values.len())
            .chain(first.iter().copied())
            .collect();
        let refs: Vec<&Value> = values.iter().collect();
        Ok(vec![join(self.dtype, &refs, shape)?])
    }

    fn is_pure(&self) -> bool {
        false
    }
}
