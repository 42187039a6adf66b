//! `TensorArrayScatterV3(handle, indices, value, flow_in) -> flow_out`: writes row `i` of
//! `value` at `indices[i]` (`tf.TensorArray.unstack` scatters `range(n)`).

use ckpt_graph::Node;

use crate::list::{rows, MAX_LEN};
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

use super::{array, index_vector};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Scatter)
}

#[derive(Debug)]
struct Scatter;

impl Kernel for Scatter {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, indices, value, flow] = take_inputs(inputs)?;
        let indices = index_vector(&indices, "indices")?;
        let Some(&n) = value.shape().first() else {
            op_bail!(
                "input value for unpack must be at least a vector but received shape: {:?}",
                value.shape()
            );
        };
        if indices.len() != n {
            op_bail!(
                "expected len(indices) == values.shape[0], but saw: {} vs. {n}",
                indices.len()
            );
        }
        let mut state = array(&handle)?.lock()?;
        if value.dtype() != state.dtype {
            op_bail!(
                "TensorArray dtype is {} but op is trying to write dtype {}",
                state.dtype,
                value.kind()
            );
        }
        let max_index = indices.iter().copied().max().unwrap_or(-1);
        let size = state.elements.len() as i64;
        let capacity = if state.dynamic_size {
            size.max(max_index.saturating_add(1)).min(MAX_LEN as i64)
        } else {
            size
        };
        if max_index >= capacity {
            op_bail!("max scatter index must be < array size ({max_index} vs. {capacity})");
        }
        for (row, &index) in indices.iter().enumerate() {
            state.write(index, rows(&value, row, 1, true)?)?;
        }
        Ok(vec![flow])
    }

    fn is_pure(&self) -> bool {
        false
    }
}
