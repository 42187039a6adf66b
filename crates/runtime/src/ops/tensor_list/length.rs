//! `TensorListLength(input_handle) -> length`: the number of elements, as an int32 scalar.

use ckpt_graph::Node;

use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, FnKernel};
use crate::{Error, Value};

use super::list;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(|inputs| {
        let [handle] = take_inputs(inputs)?;
        let n = list(handle)?.len();
        let Ok(n) = i32::try_from(n) else {
            op_bail!("list length {n} does not fit int32");
        };
        Ok(vec![Value::scalar(n)])
    }))
}
