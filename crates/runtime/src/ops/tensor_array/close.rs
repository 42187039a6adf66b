//! `TensorArrayCloseV3(handle)`: releases the elements; any later op on the array fails.

use ckpt_graph::Node;

use crate::ops::{kernel, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

use super::array;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Close)
}

#[derive(Debug)]
struct Close;

impl Kernel for Close {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle] = take_inputs(inputs)?;
        let mut state = array(&handle)?.lock()?;
        state.elements.clear();
        state.closed = true;
        Ok(Vec::new())
    }

    fn is_pure(&self) -> bool {
        false
    }
}
