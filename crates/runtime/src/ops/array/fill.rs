//! `Fill`, `ZerosLike`, `OnesLike`.

use ckpt_graph::Node;

use crate::ops::{
    dims_from, int_values, kernel, op_bail, take_inputs, BuildCtx, Built, FnKernel, OpError,
};
use crate::value::{map_any, Datum, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(run))
}

pub(crate) fn build_zeros_like(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(|inputs| {
        let [x] = take_inputs(inputs)?;
        let shape = x.shape().to_vec();
        let zero = match &x {
            Value::Str(_) => Value::scalar(Vec::<u8>::new()),
            other => Value::scalar(0u8).cast(other.dtype())?,
        };
        Ok(vec![broadcast_scalar(&zero, shape)?])
    }))
}

pub(crate) fn build_ones_like(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(|inputs| {
        let [x] = take_inputs(inputs)?;
        let shape = x.shape().to_vec();
        let one = Value::scalar(1u8).cast(x.dtype())?;
        Ok(vec![broadcast_scalar(&one, shape)?])
    }))
}

fn run(inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
    let [dims, value] = take_inputs(inputs)?;
    let shape = dims_from(&int_values(&dims, "dims")?, "dims")?;
    if value.len() != 1 {
        op_bail!("value must be a scalar, got shape {:?}", value.shape());
    }
    Ok(vec![broadcast_scalar(&value, shape)?])
}

/// A tensor of `shape` with every element equal to the one element of `v`.
#[allow(clippy::clone_on_copy)] // generic over numbers and strings
fn broadcast_scalar(v: &Value, shape: Vec<usize>) -> Result<Value, OpError> {
    let n = crate::ops::output_len(&shape, crate::ops::element_bytes(v.dtype()))?;
    map_any!(v, t => {
        let Some(x) = t.data().first() else { op_bail!("empty fill value") };
        Ok(Datum::wrap(TensorBuf::from_parts(shape, vec![x.clone(); n])))
    }, else op_bail!("cannot fill with a {}", v.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_likes() -> Result<(), OpError> {
        let y = run(vec![
            Value::new(vec![2], vec![2i32, 3])?,
            Value::scalar(1.5f32),
        ])?;
        assert_eq!(y[0].shape(), &[2, 3]);
        assert_eq!(y[0].as_f32(), Some(&[1.5; 6][..]));
        let y = run(vec![
            Value::new(vec![2], vec![0i32, 3])?,
            Value::scalar(1.5f32),
        ])?;
        assert_eq!(y[0].len(), 0);
        assert_eq!(
            run(vec![
                Value::new(vec![1], vec![-1i32])?,
                Value::scalar(1.5f32)
            ])
            .err(),
            Some(OpError("dims has negative dimension -1".into()))
        );
        Ok(())
    }
}
