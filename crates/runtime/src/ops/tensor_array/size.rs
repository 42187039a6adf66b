//! `TensorArraySizeV3(handle, flow_in) -> size`: the number of elements, as an int32 scalar.

use ckpt_graph::Node;

use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

use super::array;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Size)
}

#[derive(Debug)]
struct Size;

impl Kernel for Size {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, _flow] = take_inputs(inputs)?;
        let n = array(&handle)?.lock()?.elements.len();
        let Ok(n) = i32::try_from(n) else {
            op_bail!("TensorArray size {n} does not fit int32");
        };
        Ok(vec![Value::scalar(n)])
    }

    fn is_pure(&self) -> bool {
        false
    }
}
