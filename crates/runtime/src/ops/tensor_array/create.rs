//! `TensorArrayV3(size) -> (handle, flow)`: a new array of `size` unwritten elements of
//! `dtype`, each run (and each loop iteration it runs in) getting its own.

use ckpt_graph::Node;

use crate::list::{ArraySpec, PartialShape, TensorArray};
use crate::ops::{dtype_attr, kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

use super::scalar_index;

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let element_shape = if node.has_attr("element_shape") {
        node.attr_shape("element_shape")?
    } else {
        None
    };
    let name = node.attr_string_or("tensor_array_name", "")?;
    kernel(Create {
        name: if name.is_empty() {
            node.name.clone()
        } else {
            name
        },
        dtype: dtype_attr(node, "dtype")?,
        element_shape: PartialShape::from_attr(element_shape.as_deref())
            .map_err(|e| crate::ops::node_error(node, e.0))?,
        dynamic_size: node.attr_bool_or("dynamic_size", false)?,
        clear_after_read: node.attr_bool_or("clear_after_read", true)?,
        identical_element_shapes: node.attr_bool_or("identical_element_shapes", false)?,
    })
}

#[derive(Debug)]
struct Create {
    name: String,
    dtype: crate::DType,
    element_shape: PartialShape,
    dynamic_size: bool,
    clear_after_read: bool,
    identical_element_shapes: bool,
}

impl Kernel for Create {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [size] = take_inputs(inputs)?;
        let size = scalar_index(&size, "size")?;
        let Ok(size) = usize::try_from(size) else {
            op_bail!("size should be >= 0");
        };
        let array = TensorArray::new(
            ArraySpec {
                name: self.name.clone(),
                dtype: self.dtype,
                element_shape: self.element_shape.clone(),
                dynamic_size: self.dynamic_size,
                clear_after_read: self.clear_after_read,
                identical_element_shapes: self.identical_element_shapes,
            },
            size,
        )?;
        Ok(vec![Value::TensorArray(array), Value::scalar(0.0f32)])
    }

    fn is_pure(&self) -> bool {
        false
    }
}
