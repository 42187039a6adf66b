//! Variables, served from the checkpoint.
//!
//! `VariableV2`/`Variable` produce the value (read through an `Identity` named `name/read`);
//! a `VarHandleOp`'s handle is represented by the value itself, so `ReadVariableOp` forwards it.

use ckpt_graph::Node;

use super::identity::identity;
use crate::ops::{kernel, BuildCtx, Built, FnKernel};
use crate::Error;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    Ok(Built::Variable)
}

pub(crate) fn build_read(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(identity))
}
