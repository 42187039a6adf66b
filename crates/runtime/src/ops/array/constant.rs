//! `Const`: decoded once, at plan time.

use ckpt_graph::Node;

use crate::ops::{node_error, BuildCtx, Built};
use crate::Error;

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let proto = node.attr_tensor("value")?;
    let value = crate::tensor_proto::decode(proto)
        .map_err(|m| node_error(node, format!("attribute \"value\": {m}")))?;
    Ok(Built::Constant(vec![value]))
}
