//! `ConcatV2` (values..., axis) and the older `Concat` (axis, values...).

use ckpt_graph::Node;

use crate::ops::{
    expect, int_scalar, kernel, normalize_axis, num_elements, op_bail, BuildCtx, Built, Kernel,
    OpError,
};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build_concat_v2(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Concat { axis_first: false })
}

pub(crate) fn build_concat(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Concat { axis_first: true })
}

#[derive(Debug)]
struct Concat {
    axis_first: bool,
}

impl Kernel for Concat {
    fn run(&self, mut inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        if inputs.len() < 2 {
            op_bail!("expected at least 2 inputs, got {}", inputs.len());
        }
        let axis = if self.axis_first {
            inputs.remove(0)
        } else {
            inputs.remove(inputs.len() - 1)
        };
        let axis = int_scalar(&axis, "axis")?;
        let dtype = inputs[0].dtype();
        let out = with_dtype!(dtype, T => {
            let parts = inputs
                .into_iter()
                .enumerate()
                .map(|(i, v)| expect::<T>(v, &format!("input {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            T::wrap(concat(parts, axis)?)
        }, else op_bail!("unsupported dtype {dtype}"));
        Ok(vec![out])
    }
}

pub(crate) fn concat<T: Datum>(
    mut parts: Vec<TensorBuf<T>>,
    axis: i64,
) -> Result<TensorBuf<T>, OpError> {
    let Some(first) = parts.first() else {
        op_bail!("nothing to concatenate");
    };
    let rank = first.rank();
    let axis = normalize_axis(axis, rank.max(1))?;
    if rank == 0 {
        op_bail!("cannot concatenate scalars");
    }
    let mut out_shape = first.shape().to_vec();
    out_shape[axis] = 0;
    for (i, p) in parts.iter().enumerate() {
        let s = p.shape();
        let compatible = s.len() == rank
            && s.iter()
                .zip(first.shape())
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        if !compatible {
            op_bail!(
                "input {i} has shape {:?}, incompatible with input 0's {:?} along axis {axis}",
                s,
                first.shape()
            );
        }
        out_shape[axis] += s[axis];
    }
    if parts.len() == 1 {
        return Ok(parts.remove(0));
    }
    let outer: usize = out_shape[..axis].iter().product();
    let mut data = Vec::with_capacity(num_elements(&out_shape)?);
    let inners: Vec<usize> = parts
        .iter()
        .map(|p| p.shape()[axis..].iter().product())
        .collect();
    for o in 0..outer {
        for (p, &inner) in parts.iter().zip(&inners) {
            data.extend_from_slice(&p.data()[o * inner..(o + 1) * inner]);
        }
    }
    Ok(TensorBuf::from_parts(out_shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_matches_reference() -> Result<(), OpError> {
        let a = TensorBuf::from_parts(vec![2, 3], (0..6).collect::<Vec<i32>>());
        let b = TensorBuf::from_parts(vec![2, 1], vec![10, 11]);
        let c = TensorBuf::from_parts(vec![2, 0], vec![]);
        let out = concat(vec![a.clone(), b, c], -1)?;
        assert_eq!(out.shape(), &[2, 4]);
        assert_eq!(out.data(), &[0, 1, 2, 10, 3, 4, 5, 11]);
        let d = TensorBuf::from_parts(vec![1, 3], vec![7, 8, 9]);
        let out = concat(vec![a.clone(), d], 0)?;
        assert_eq!(out.shape(), &[3, 3]);
        assert_eq!(out.data(), &[0, 1, 2, 3, 4, 5, 7, 8, 9]);
        assert_eq!(
            concat(
                vec![a.clone(), TensorBuf::from_parts(vec![3, 1], vec![0; 3])],
                1
            )
            .err(),
            Some(OpError(
                "input 1 has shape [3, 1], incompatible with input 0's [2, 3] along axis 1".into()
            ))
        );
        Ok(())
    }

    #[test]
    fn concat_v2_takes_axis_last() -> Result<(), OpError> {
        let k = Concat { axis_first: false };
        let a = Value::new(vec![1, 2], vec![1.0f32, 2.0])?;
        let out = k.run(vec![a.clone(), a, Value::scalar(0i32)])?;
        assert_eq!(out[0].shape(), &[2, 2]);
        Ok(())
    }
}
