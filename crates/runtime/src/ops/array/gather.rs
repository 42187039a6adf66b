//! `GatherV2` (with `batch_dims = 0`).

use ckpt_graph::Node;

use crate::ops::{
    expect, int_scalar, int_values, kernel, node_error, normalize_axis, num_elements, op_bail,
    BuildCtx, Built, FnKernel, OpError,
};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::Error;

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    if node.attr_i64_or("batch_dims", 0)? != 0 {
        return Err(node_error(node, "batch_dims other than 0 is not supported"));
    }
    kernel(FnKernel(|inputs| {
        let [params, indices, axis] = crate::ops::take_inputs(inputs)?;
        let axis = int_scalar(&axis, "axis")?;
        let idx = int_values(&indices, "indices")?;
        let dtype = params.dtype();
        let out = with_dtype!(dtype, T => T::wrap(gather(&expect::<T>(params, "params")?, &idx, indices.shape(), axis)?), else op_bail!("unsupported dtype {dtype}"));
        Ok(vec![out])
    }))
}

fn gather<T: Datum>(
    params: &TensorBuf<T>,
    idx: &[i64],
    idx_shape: &[usize],
    axis: i64,
) -> Result<TensorBuf<T>, OpError> {
    let shape = params.shape();
    let axis = normalize_axis(axis, shape.len())?;
    let n = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape = shape[..axis].to_vec();
    out_shape.extend_from_slice(idx_shape);
    out_shape.extend_from_slice(&shape[axis + 1..]);
    let mut data = Vec::with_capacity(num_elements(&out_shape)?);
    for o in 0..outer {
        for &i in idx {
            let Some(i) = usize::try_from(i).ok().filter(|&i| i < n) else {
                op_bail!("index {i} is out of range [0, {n})");
            };
            let start = (o * n + i) * inner;
            data.extend_from_slice(&params.data()[start..start + inner]);
        }
    }
    Ok(TensorBuf::from_parts(out_shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_matches_reference() -> Result<(), OpError> {
        let p = TensorBuf::from_parts(vec![3, 2], (0..6).collect::<Vec<i32>>());
        let g = gather(&p, &[2, 0], &[2], 0)?;
        assert_eq!(g.shape(), &[2, 2]);
        assert_eq!(g.data(), &[4, 5, 0, 1]);
        let g = gather(&p, &[1], &[], 1)?;
        assert_eq!(g.shape(), &[3]);
        assert_eq!(g.data(), &[1, 3, 5]);
        assert_eq!(
            gather(&p, &[3], &[1], 0).err(),
            Some(OpError("index 3 is out of range [0, 3)".into()))
        );
        assert_eq!(
            gather(&p, &[-1], &[1], 0).err(),
            Some(OpError("index -1 is out of range [0, 3)".into()))
        );
        Ok(())
    }
}
