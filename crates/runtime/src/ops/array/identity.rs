//! `Identity`, `IdentityN`, `StopGradient`, `Snapshot`: outputs are the inputs.

use ckpt_graph::Node;

use crate::ops::{kernel, take_inputs, BuildCtx, Built, FnKernel, OpError};
use crate::{Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(identity))
}

pub(crate) fn build_n(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(Ok))
}

pub(crate) fn identity(inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
    let [x] = take_inputs(inputs)?;
    Ok(vec![x])
}
