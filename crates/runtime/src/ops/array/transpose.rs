//! `Transpose`.

use ckpt_graph::Node;

use crate::ops::{
    expect, int_values, kernel, op_bail, parallel, take_inputs, BuildCtx, Built, FnKernel, OpError,
};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(run))
}

fn run(inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
    let [x, perm] = take_inputs(inputs)?;
    let perm = int_values(&perm, "perm")?;
    let dtype = x.dtype();
    let out = with_dtype!(dtype, T => T::wrap(transpose(&expect::<T>(x, "x")?, &perm)?), else op_bail!("unsupported dtype {dtype}"));
    Ok(vec![out])
}

pub(crate) fn transpose<T: Datum + Default>(
    x: &TensorBuf<T>,
    perm: &[i64],
) -> Result<TensorBuf<T>, OpError> {
    let shape = x.shape();
    let rank = shape.len();
    if perm.len() != rank {
        op_bail!("perm {perm:?} does not match rank {rank}");
    }
    let mut seen = vec![false; rank];
    let mut p = Vec::with_capacity(rank);
    for &a in perm {
        let a = usize::try_from(a).ok().filter(|&a| a < rank && !seen[a]);
        let Some(a) = a else {
            op_bail!("perm {perm:?} is not a permutation of 0..{rank}");
        };
        seen[a] = true;
        p.push(a);
    }
    if p.iter().enumerate().all(|(i, &a)| i == a) {
        return Ok(x.clone());
    }
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * shape[i + 1];
    }
    let out_shape: Vec<usize> = p.iter().map(|&a| shape[a]).collect();
    let strides: Vec<usize> = p.iter().map(|&a| in_strides[a]).collect();
    let n = x.len();
    let mut out = vec![T::default(); n];
    if n > 0 {
        let inner = out_shape[rank - 1];
        let inner_stride = strides[rank - 1];
        let src = x.data();
        parallel::for_rows(&mut out, inner, inner, |r, row| {
            let mut rem = r;
            let mut off = 0;
            for d in (0..rank - 1).rev() {
                off += (rem % out_shape[d]) * strides[d];
                rem /= out_shape[d];
            }
            if inner_stride == 1 {
                // The last axis stays last: each output row is a contiguous input run.
                row.clone_from_slice(&src[off..off + inner]);
            } else {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = src[off + j * inner_stride].clone();
                }
            }
        });
    }
    Ok(TensorBuf::from_parts(out_shape, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_reference() -> Result<(), OpError> {
        let shape = vec![2usize, 3, 4];
        let x = TensorBuf::from_parts(shape.clone(), (0..24).collect::<Vec<i64>>());
        for perm in [[0i64, 1, 2], [2, 1, 0], [1, 2, 0], [0, 2, 1], [1, 0, 2]] {
            let y = transpose(&x, &perm)?;
            let ys = y.shape().to_vec();
            for i in 0..ys[0] {
                for j in 0..ys[1] {
                    for k in 0..ys[2] {
                        let mut src = [0usize; 3];
                        src[perm[0] as usize] = i;
                        src[perm[1] as usize] = j;
                        src[perm[2] as usize] = k;
                        let want = x.data()[(src[0] * 3 + src[1]) * 4 + src[2]];
                        assert_eq!(y.data()[(i * ys[1] + j) * ys[2] + k], want);
                    }
                }
            }
        }
        let big = TensorBuf::from_parts(vec![17, 257], (0..17 * 257).map(|i| i as f32).collect());
        let t = transpose(&big, &[1, 0])?;
        assert_eq!(t.shape(), &[257, 17]);
        assert_eq!(t.data()[5 * 17 + 3], big.data()[3 * 257 + 5]);
        assert_eq!(
            transpose(&x, &[0, 0, 1]).err(),
            Some(OpError(
                "perm [0, 0, 1] is not a permutation of 0..3".into()
            ))
        );
        assert_eq!(
            transpose(&x, &[0, 1]).err(),
            Some(OpError("perm [0, 1] does not match rank 3".into()))
        );
        let empty = TensorBuf::from_parts(vec![0, 3], Vec::<f32>::new());
        assert_eq!(transpose(&empty, &[1, 0])?.shape(), &[3, 0]);
        Ok(())
    }
}
