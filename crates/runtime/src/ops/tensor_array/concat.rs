//! `TensorArrayConcatV3(handle, flow_in) -> (value, lengths)`: every element joined along
//! dimension 0, and each element's length along it (int64). The elements must agree on the
//! other dimensions, and be at least vectors; an empty array needs `element_shape_except0`.

use ckpt_graph::Node;

use crate::list::{join, PartialShape};
use crate::ops::{
    dtype_attr, kernel, node_error, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::{DType, Error, Value};

use super::array;

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let except0 = if node.has_attr("element_shape_except0") {
        node.attr_shape("element_shape_except0")?
    } else {
        None
    };
    kernel(Concat {
        dtype: dtype_attr(node, "dtype")?,
        except0: PartialShape::from_attr(except0.as_deref()).map_err(|e| node_error(node, e.0))?,
    })
}

#[derive(Debug)]
struct Concat {
    dtype: DType,
    except0: PartialShape,
}

impl Kernel for Concat {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [handle, _flow] = take_inputs(inputs)?;
        let mut state = array(&handle)?.lock()?;
        state.check_dtype(self.dtype)?;
        let size = state.elements.len();
        if size == 0 {
            let Some(rest) = self.except0.to_shape() else {
                op_bail!(
                    "TensorArray has size zero, but element_shape_except0 {} is not fully defined; only static shapes are supported when concatenating zero-size TensorArrays",
                    self.except0
                );
            };
            let shape = std::iter::once(0).chain(rest).collect();
            return Ok(vec![
                join(self.dtype, &[], shape)?,
                Value::new(vec![0], Vec::<i64>::new())?,
            ]);
        }
        let values = (0..size as i64)
            .map(|i| state.read(i))
            .collect::<Result<Vec<_>, _>>()?;
        drop(state);
        let mut lengths = Vec::with_capacity(values.len());
        let mut rest: Option<&[usize]> = None;
        for (i, v) in values.iter().enumerate() {
            let Some((&len, tail)) = v.shape().split_first() else {
                op_bail!("concat saw a scalar shape at index {i} but requires at least vectors; did you mean to call pack?");
            };
            match rest {
                None => {
                    if !self.except0.accepts(tail) {
                        op_bail!(
                            "TensorArray was passed element_shape_except0 {} but index 0 has (excepting dimension 0) shape: {} which does not match",
                            self.except0,
                            PartialShape::known(tail)
                        );
                    }
                    rest = Some(tail);
                }
                Some(r) if r != tail => op_bail!(
                    "TensorArray has inconsistent shapes; index 0 has (excepting dimension 0) shape: {} but index {i} has (excepting dimension 0) shape: {}",
                    PartialShape::known(r),
                    PartialShape::known(tail)
                ),
                Some(_) => {}
            }
            lengths.push(len);
        }
        let total: usize = lengths.iter().sum();
        let shape = std::iter::once(total)
            .chain(rest.unwrap_or(&[]).iter().copied())
            .collect();
        let refs: Vec<&Value> = values.iter().collect();
        let lengths: Vec<i64> = lengths.iter().map(|&l| l as i64).collect();
        Ok(vec![
            join(self.dtype, &refs, shape)?,
            Value::new(vec![lengths.len()], lengths)?,
        ])
    }

    fn is_pure(&self) -> bool {
        false
    }
}
