//! `TensorArraySplitV3(handle, value, lengths, flow_in) -> flow_out`: cuts `value` along
//! dimension 0 into consecutive pieces of `lengths[i]` rows and writes piece `i` at index `i`.

use ckpt_graph::Node;

use crate::list::rows;
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

use super::{array, index_vector};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Split)
}

#[derive(Debug)]
struct Split;

impl Kernel for Split {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, value, lengths, flow] = take_inputs(inputs)?;
        let lengths = index_vector(&lengths, "lengths")?;
        let Some(&n) = value.shape().first() else {
            op_bail!(
                "expected value to be at least a vector, but received shape: {:?}",
                value.shape()
            );
        };
        let lengths: Vec<usize> = lengths
            .iter()
            .map(|&l| usize::try_from(l))
            .collect::<Result<_, _>>()
            .map_err(|_| OpError("lengths must not be negative".into()))?;
        let total = lengths.iter().try_fold(0usize, |a, &l| a.checked_add(l));
        if total != Some(n) {
            op_bail!(
                "expected sum of lengths to be equal to values.shape[0], but sum of lengths is {} and value's shape is: {:?}",
                total.map_or_else(|| "too large".to_string(), |t| t.to_string()),
                value.shape()
            );
        }
        let mut state = array(&handle)?.lock()?;
        let size = state.elements.len();
        if !(size == lengths.len() || (state.dynamic_size && size < lengths.len())) {
            op_bail!(
                "TensorArray's size is not equal to the size of lengths ({size} vs. {}), and the TensorArray is not marked as dynamically resizeable",
                lengths.len()
            );
        }
        if value.dtype() != state.dtype {
            op_bail!(
                "TensorArray dtype is {} but op is trying to write dtype {}",
                state.dtype,
                value.kind()
            );
        }
        let mut start = 0;
        for (i, &len) in lengths.iter().enumerate() {
            state.write(i as i64, rows(&value, start, len, false)?)?;
            start += len;
        }
        Ok(vec![flow])
    }

    fn is_pure(&self) -> bool {
        false
    }
}
