//! `Exit(data)` (also `RefExit`): passes a loop variable's final value out of its while loop,
//! to the frame the loop runs in. The plan routes the value (`plan::frames`); the kernel is
//! the identity.

use ckpt_graph::Node;

use crate::ops::array::identity::identity;
use crate::ops::{kernel, BuildCtx, Built, FnKernel};
use crate::Error;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(identity))
}
