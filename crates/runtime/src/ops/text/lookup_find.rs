//! `LookupTableFindV2` / `LookupTableFind`: each key's value, or `default_value` (a scalar)
//! for keys the table lacks; the output has the keys' shape. Keys of another dtype than the
//! table's are an error naming both dtypes.

use std::sync::Arc;

use ckpt_graph::Node;

use super::table::Table;
use crate::ops::{kernel, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Find {
        table: ctx.table(node)?,
    })
}

#[derive(Debug)]
struct Find {
    table: Arc<Table>,
}

impl Kernel for Find {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [_handle, keys, default] = take_inputs(inputs)?;
        let positions = self.table.positions(&keys).map_err(OpError)?;
        let out = self
            .table
            .gather(&positions, &default, keys.shape().to_vec())
            .map_err(OpError)?;
        Ok(vec![out])
    }
}
