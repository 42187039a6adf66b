//! `NoOp`: no outputs; it exists for its control edges.

use ckpt_graph::Node;

use crate::ops::{kernel, BuildCtx, Built, FnKernel};
use crate::Error;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(|_| Ok(Vec::new())))
}
