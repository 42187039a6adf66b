//! `Tile` (repeat along each dimension) and `BroadcastTo` (numpy broadcasting to a shape).

use ckpt_graph::Node;

use crate::ops::broadcast::broadcast_shapes;
use crate::ops::{
    dims_from, expect, int_values, kernel, op_bail, parallel, take_inputs, BuildCtx, Built,
    FnKernel, OpError,
};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::Error;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(|inputs| {
        let [x, multiples] = take_inputs(inputs)?;
        let m = dims_from(&int_values(&multiples, "multiples")?, "multiples")?;
        if m.len() != x.shape().len() {
            op_bail!(
                "multiples has {} entries, the input has rank {}",
                m.len(),
                x.shape().len()
            );
        }
        let out_shape = x
            .shape()
            .iter()
            .zip(&m)
            .map(|(&d, &k)| d.checked_mul(k))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| OpError("tiled shape overflows".into()))?;
        let dtype = x.dtype();
        Ok(vec![
            with_dtype!(dtype, T => T::wrap(repeat(&expect::<T>(x, "input")?, out_shape)?), else op_bail!("unsupported dtype {dtype}")),
        ])
    }))
}

pub(crate) fn build_broadcast_to(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(|inputs| {
        let [x, shape] = take_inputs(inputs)?;
        let target = dims_from(&int_values(&shape, "shape")?, "shape")?;
        let out_shape = broadcast_shapes(&[x.shape(), &target])?;
        if out_shape != target {
            op_bail!("cannot broadcast shape {:?} to {:?}", x.shape(), target);
        }
        let dtype = x.dtype();
        Ok(vec![
            with_dtype!(dtype, T => T::wrap(repeat(&expect::<T>(x, "input")?, out_shape)?), else op_bail!("unsupported dtype {dtype}")),
        ])
    }))
}

/// Output index `i` reads input index `i % n` in each dimension (the input aligned on the
/// right): tiling, and also broadcasting, where `n` is 1 or the output's size.
fn repeat<T: Datum + Default>(
    x: &TensorBuf<T>,
    out_shape: Vec<usize>,
) -> Result<TensorBuf<T>, OpError> {
    let total = crate::ops::output_len(&out_shape, std::mem::size_of::<T>())?;
    let rank = out_shape.len();
    let in_shape: Vec<usize> = {
        let offset = rank - x.shape().len();
        (0..rank)
            .map(|d| if d < offset { 1 } else { x.shape()[d - offset] })
            .collect()
    };
    let mut in_strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        in_strides[d] = in_strides[d + 1] * in_shape[d + 1];
    }
    if rank == 0 {
        return Ok(TensorBuf::from_parts(out_shape, x.data().to_vec()));
    }
    let mut out = vec![T::default(); total];
    if total > 0 {
        let src = x.data();
        let inner = out_shape[rank - 1];
        let (in_inner, in_inner_stride) = (in_shape[rank - 1], in_strides[rank - 1]);
        parallel::for_rows(&mut out, inner, inner, |r, row| {
            let mut rem = r;
            let mut off = 0;
            for d in (0..rank - 1).rev() {
                let i = rem % out_shape[d];
                rem /= out_shape[d];
                off += (i % in_shape[d]) * in_strides[d];
            }
            for (j, o) in row.iter_mut().enumerate() {
                *o = src[off + (j % in_inner) * in_inner_stride].clone();
            }
        });
    }
    Ok(TensorBuf::from_parts(out_shape, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_and_broadcast_to() -> Result<(), OpError> {
        let x = TensorBuf::from_parts(vec![2, 2], vec![1i32, 2, 3, 4]);
        let t = repeat(&x, vec![4, 6])?;
        assert_eq!(&t.data()[..6], &[1, 2, 1, 2, 1, 2]);
        assert_eq!(&t.data()[6..12], &[3, 4, 3, 4, 3, 4]);
        assert_eq!(&t.data()[12..18], &[1, 2, 1, 2, 1, 2]);
        let v = TensorBuf::from_parts(vec![3], vec![1.0f32, 2.0, 3.0]);
        let b = repeat(&v, vec![2, 3])?;
        assert_eq!(b.data(), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        let c = TensorBuf::from_parts(vec![2, 1], vec![1u8, 2]);
        let b = repeat(&c, vec![2, 3])?;
        assert_eq!(b.data(), &[1, 1, 1, 2, 2, 2]);
        let s = TensorBuf::from_parts(vec![], vec![5i64]);
        assert_eq!(repeat(&s, vec![])?.data(), &[5]);
        assert_eq!(repeat(&s, vec![0, 2])?.len(), 0);
        Ok(())
    }
}
