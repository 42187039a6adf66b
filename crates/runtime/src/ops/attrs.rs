//! Attribute reading with defaults, on top of the graph IR's typed accessors (whose errors
//! already name the node, op and attribute).

use ckpt_graph::Node;

use super::node_error;
use crate::{DType, Error};

pub(crate) fn ints_or(node: &Node, name: &str, default: &[i64]) -> Result<Vec<i64>, Error> {
    match node.attr(name) {
        Some(_) => Ok(node.attr_ints(name)?),
        None => Ok(default.to_vec()),
    }
}

pub(crate) fn string_or(node: &Node, name: &str, default: &str) -> Result<String, Error> {
    match node.attr(name) {
        Some(_) => Ok(node.attr_string(name)?),
        None => Ok(default.to_string()),
    }
}

pub(crate) fn bool_or(node: &Node, name: &str, default: bool) -> Result<bool, Error> {
    match node.attr(name) {
        Some(_) => Ok(node.attr_bool(name)?),
        None => Ok(default),
    }
}

pub(crate) fn f32_or(node: &Node, name: &str, default: f32) -> Result<f32, Error> {
    match node.attr(name) {
        Some(_) => Ok(node.attr_f32(name)?),
        None => Ok(default),
    }
}

pub(crate) fn i64_or(node: &Node, name: &str, default: i64) -> Result<i64, Error> {
    match node.attr(name) {
        Some(_) => Ok(node.attr_i64(name)?),
        None => Ok(default),
    }
}

/// A type attribute as a runtime dtype; an error names types the executor cannot hold.
pub(crate) fn dtype(node: &Node, name: &str) -> Result<DType, Error> {
    let dt = node.attr_dtype(name)?;
    DType::from_proto(dt).ok_or_else(|| {
        node_error(
            node,
            format!("attribute {name:?}: dtype {dt:?} is not supported"),
        )
    })
}

pub(crate) fn dtype_or(node: &Node, name: &str, default: DType) -> Result<DType, Error> {
    match node.attr(name) {
        Some(_) => dtype(node, name),
        None => Ok(default),
    }
}

/// The static shape in attribute `name` (`None`: unknown rank; `-1`: unknown dimension).
pub(crate) fn shape_or_unknown(node: &Node, name: &str) -> Result<Option<Vec<i64>>, Error> {
    match node.attr(name) {
        Some(_) => Ok(node.attr_shape(name)?),
        None => Ok(None),
    }
}
