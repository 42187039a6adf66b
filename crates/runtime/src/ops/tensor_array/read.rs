//! `TensorArrayReadV3(handle, index, flow_in) -> value`: the element at `index`; an unwritten
//! element reads as zeros when the array's element shape is known, and is an error otherwise.
//! With `clear_after_read` (the default) an element reads only once.

use ckpt_graph::Node;

use crate::ops::{dtype_attr, kernel, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{DType, Error, Value};

use super::{array, scalar_index};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Read {
        dtype: dtype_attr(node, "dtype")?,
    })
}

#[derive(Debug)]
struct Read {
    dtype: DType,
}

impl Kernel for Read {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, index, _flow] = take_inputs(inputs)?;
        let index = scalar_index(&index, "index")?;
        let mut state = array(&handle)?.lock()?;
        state.check_dtype(self.dtype)?;
        Ok(vec![state.read(index)?])
    }

    fn is_pure(&self) -> bool {
        false
    }
}
