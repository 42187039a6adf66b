//! `ExpandDims`: inserts a size-1 dimension at `dim` (`-rank-1 <= dim <= rank`).

use ckpt_graph::Node;

use crate::ops::{int_scalar, kernel, take_inputs, BuildCtx, Built, FnKernel, OpError};
use crate::{Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(run))
}

fn run(inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
    let [x, dim] = take_inputs(inputs)?;
    let dim = int_scalar(&dim, "dim")?;
    let mut shape = x.shape().to_vec();
    let axis = crate::ops::normalize_axis(dim, shape.len() + 1)?;
    shape.insert(axis, 1);
    Ok(vec![x.reshape(shape)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_axis() -> Result<(), OpError> {
        let x = Value::new(vec![2, 3], vec![0u8; 6])?;
        for (d, want) in [
            (0i32, vec![1, 2, 3]),
            (2, vec![2, 3, 1]),
            (-1, vec![2, 3, 1]),
            (-3, vec![1, 2, 3]),
        ] {
            let y = run(vec![x.clone(), Value::scalar(d)])?;
            assert_eq!(y[0].shape(), want.as_slice());
        }
        assert_eq!(
            run(vec![x.clone(), Value::scalar(3i32)]).err(),
            Some(OpError("axis 3 is out of range for rank 3".into()))
        );
        assert_eq!(
            run(vec![x, Value::scalar(-4i32)]).err(),
            Some(OpError("axis -4 is out of range for rank 3".into()))
        );
        Ok(())
    }
}
