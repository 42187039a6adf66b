//! `NextIteration(data)` (also `RefNextIteration`): passes a loop variable's new value to the
//! next iteration of its while loop, where the variable's `Merge` reads it (the loop's back
//! edge). The plan carries the value across iterations (`plan::LoopPlan`); the kernel is the
//! identity.

use ckpt_graph::Node;

use crate::ops::array::identity::identity;
use crate::ops::{kernel, BuildCtx, Built, FnKernel};
use crate::Error;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(identity))
}
