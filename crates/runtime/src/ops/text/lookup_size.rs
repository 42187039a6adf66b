//! `LookupTableSizeV2` / `LookupTableSize`: the number of entries, an int64 scalar.

use std::sync::Arc;

use ckpt_graph::Node;

use super::table::Table;
use crate::ops::{kernel, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Size {
        table: ctx.table(node)?,
    })
}

#[derive(Debug)]
struct Size {
    table: Arc<Table>,
}

impl Kernel for Size {
    fn run(&self, _inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        Ok(vec![Value::scalar(self.table.len() as i64)])
    }
}
