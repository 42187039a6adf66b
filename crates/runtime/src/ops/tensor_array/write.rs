//! `TensorArrayWriteV3(handle, index, value, flow_in) -> flow_out`: stores `value` at
//! `index`, once (a second write is an error); an array of `dynamic_size` grows to hold it.

use ckpt_graph::Node;

use crate::ops::{kernel, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

use super::{array, scalar_index};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Write)
}

#[derive(Debug)]
struct Write;

impl Kernel for Write {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, index, value, flow] = take_inputs(inputs)?;
        let index = scalar_index(&index, "index")?;
        array(&handle)?.lock()?.write(index, value)?;
        Ok(vec![flow])
    }

    fn is_pure(&self) -> bool {
        false
    }
}
