//! `Enter(data)` (also `RefEnter`): passes `data` into the frame of the while loop named by
//! `frame_name`, for the first iteration only, or for every iteration when `is_constant`.
//! `parallel_iterations` bounds how many iterations TensorFlow runs at once; iterations here
//! run one after another, so it changes nothing. The plan routes the value (`plan::frames`):
//! the kernel is the identity.

use ckpt_graph::Node;

use crate::ops::array::identity::identity;
use crate::ops::{kernel, node_error, BuildCtx, Built, FnKernel};
use crate::Error;

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    if node.attr_string("frame_name")?.is_empty() {
        return Err(node_error(node, "Enter has an empty frame_name"));
    }
    node.attr_bool_or("is_constant", false)?;
    if node.attr_i64_or("parallel_iterations", 10)? < 1 {
        return Err(node_error(node, "parallel_iterations must be positive"));
    }
    kernel(FnKernel(identity))
}
