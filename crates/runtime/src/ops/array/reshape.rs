//! `Reshape`, with at most one `-1` dimension inferred.

use ckpt_graph::Node;

use crate::ops::{
    fmt_shape, int_values, kernel, op_bail, take_inputs, BuildCtx, Built, FnKernel, OpError,
};
use crate::{Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(run))
}

fn run(inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
    let [x, shape] = take_inputs(inputs)?;
    let requested = int_values(&shape, "shape")?;
    let dims = resolve(&requested, x.len(), x.shape())?;
    let y = x.reshape(dims).map_err(|e| OpError(e.to_string()))?;
    Ok(vec![y])
}

/// The target shape for `len` elements, filling in a `-1`.
pub(crate) fn resolve(
    requested: &[i64],
    len: usize,
    from: &[usize],
) -> Result<Vec<usize>, OpError> {
    let mut unknown = None;
    let mut known: usize = 1;
    let mut dims = Vec::with_capacity(requested.len());
    for (i, &d) in requested.iter().enumerate() {
        if d == -1 {
            if unknown.replace(i).is_some() {
                op_bail!("only one dimension of the shape may be -1, got {requested:?}");
            }
            dims.push(0);
        } else {
            let Ok(d) = usize::try_from(d) else {
                op_bail!("shape {requested:?} has a negative dimension");
            };
            known = known
                .checked_mul(d)
                .ok_or_else(|| OpError(format!("shape {requested:?} is too large")))?;
            dims.push(d);
        }
    }
    if let Some(i) = unknown {
        if known == 0 || !len.is_multiple_of(known) {
            op_bail!(
                "cannot reshape a tensor of shape {} ({len} elements) into {requested:?}",
                fmt_shape(from)
            );
        }
        dims[i] = len / known;
    } else if known != len {
        op_bail!(
            "cannot reshape a tensor of shape {} ({len} elements) into {requested:?} ({known} elements)",
            fmt_shape(from)
        );
    }
    Ok(dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_minus_one() -> Result<(), OpError> {
        assert_eq!(
            resolve(&[-1, 784], 64 * 784, &[64, 28, 28, 1])?,
            vec![64, 784]
        );
        assert_eq!(resolve(&[], 1, &[1, 1])?, Vec::<usize>::new());
        assert_eq!(resolve(&[0, 3], 0, &[0])?, vec![0, 3]);
        assert_eq!(
            resolve(&[-1, 0], 0, &[0]).err(),
            Some(OpError(
                "cannot reshape a tensor of shape [0] (0 elements) into [-1, 0]".into()
            ))
        );
        assert_eq!(
            resolve(&[-1, -1], 4, &[4]).err(),
            Some(OpError(
                "only one dimension of the shape may be -1, got [-1, -1]".into()
            ))
        );
        assert_eq!(
            resolve(&[-1, 3], 4, &[4]).err(),
            Some(OpError(
                "cannot reshape a tensor of shape [4] (4 elements) into [-1, 3]".into()
            ))
        );
        assert_eq!(
            resolve(&[5], 4, &[4]).err(),
            Some(OpError(
                "cannot reshape a tensor of shape [4] (4 elements) into [5] (5 elements)".into()
            ))
        );
        assert_eq!(
            resolve(&[-2], 4, &[4]).err(),
            Some(OpError("shape [-2] has a negative dimension".into()))
        );
        Ok(())
    }

    #[test]
    fn reshape_keeps_the_buffer() -> Result<(), OpError> {
        let x = Value::new(vec![2, 3], (0..6).collect::<Vec<i32>>())
            .map_err(|e| OpError(e.to_string()))?;
        let out = run(vec![
            x,
            Value::new(vec![2], vec![3i64, -1]).map_err(|e| OpError(e.to_string()))?,
        ])?;
        assert_eq!(out[0].shape(), &[3, 2]);
        assert_eq!(out[0].as_i32(), Some(&[0, 1, 2, 3, 4, 5][..]));
        Ok(())
    }
}
