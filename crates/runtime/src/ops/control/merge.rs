//! `Merge(inputs...)`: forwards its first live input (output 0) and that input's index
//! (output 1, int32); dead only when every input is dead. The executor does the work.

use ckpt_graph::Node;

use crate::ops::{BuildCtx, Built};
use crate::Error;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    Ok(Built::Merge)
}
