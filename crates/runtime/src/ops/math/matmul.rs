//! `MatMul` (float32, with `transpose_a` / `transpose_b`): transposes are strides handed to
//! sgemm, never copies. A product with few rows (batch-1 inference) takes a matrix-vector
//! path that streams the weights once, split over threads by output columns.

use ckpt_graph::Node;

use crate::gemm::{dot, sgemm, sgemm_new, vec_mat, MatRef, Threads};
use crate::ops::nn::conv2d::Epilogue;
use crate::ops::parallel;
use crate::ops::{fmt_shape, kernel, op_bail, BuildCtx, Built, Kernel, OpError};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    build_fused(node, Epilogue::default())
}

/// A `MatMul`, with a bias (an extra, third input) and activation applied to its rows when
/// `epilogue` asks for them.
pub(crate) fn build_fused(node: &Node, epilogue: Epilogue) -> Result<Built, Error> {
    kernel(MatMul {
        transpose_a: node.attr_bool_or("transpose_a", false)?,
        transpose_b: node.attr_bool_or("transpose_b", false)?,
        epilogue,
    })
}

#[derive(Debug)]
pub(crate) struct MatMul {
    pub transpose_a: bool,
    pub transpose_b: bool,
    pub epilogue: Epilogue,
}

impl Kernel for MatMul {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let (a, b, bias) = self.epilogue.take_inputs(inputs, ["a", "b"])?;
        let mut out = matmul(&a, &b, self.transpose_a, self.transpose_b)?;
        if self.epilogue != Epilogue::default() {
            let n = out.shape()[1];
            let bias = bias.as_ref().map(|t| t.data());
            if let Some(b) = bias {
                if b.len() != n {
                    op_bail!("bias has {} elements, the product has {n} columns", b.len());
                }
            }
            if let Some(data) = out.unique_mut() {
                parallel::for_rows(data, n.max(1), n, |_, row| self.epilogue.apply(row, bias));
            }
        }
        Ok(vec![Value::F32(out)])
    }
}

/// Weights (k*n) from which a matrix-vector product is split over threads: below this, waking
/// threads costs more than streaming the weights on one core.
const GEMV_PARALLEL_WORK: usize = 1 << 20;

/// Rows up to which the matrix-vector path beats packing for sgemm.
const GEMV_MAX_ROWS: usize = 4;

pub(crate) fn matmul(
    a: &TensorBuf<f32>,
    b: &TensorBuf<f32>,
    ta: bool,
    tb: bool,
) -> Result<TensorBuf<f32>, OpError> {
    let (&[a0, a1], &[b0, b1]) = (a.shape(), b.shape()) else {
        op_bail!(
            "MatMul needs matrices, got shapes {} and {}",
            fmt_shape(a.shape()),
            fmt_shape(b.shape())
        );
    };
    let am = MatRef::row_major(a.data(), a0, a1);
    let bm = MatRef::row_major(b.data(), b0, b1);
    let am = if ta { am.t() } else { am };
    let bm = if tb { bm.t() } else { bm };
    if am.cols != bm.rows {
        let flags = match (ta, tb) {
            (false, false) => "",
            (true, false) => " (transpose_a)",
            (false, true) => " (transpose_b)",
            (true, true) => " (transpose_a, transpose_b)",
        };
        op_bail!(
            "inner dimensions disagree: {} x {}{flags}",
            fmt_shape(a.shape()),
            fmt_shape(b.shape())
        );
    }
    let (m, n) = (am.rows, bm.cols);
    // The operands' element counts do not bound the product's ([1, 0] x [0, huge] is empty
    // times empty): check it against the budget before either path allocates.
    let len = crate::ops::output_len(&[m, n], 4)?;
    let out = if uses_gemv(am, bm) {
        let mut out = crate::memory::f32_zeros(len);
        product(am, bm, &mut out)?;
        out
    } else {
        // Written by the GEMM into fresh memory, without zeroing it first.
        sgemm_new(am, bm, Threads::Pool)?
    };
    Ok(TensorBuf::from_parts(vec![m, n], out))
}

/// `out = a · b`, `out` row-major `a.rows x b.cols`; a large product is split over the
/// threads (by `gemm`, or by output columns on the matrix-vector path).
pub(crate) fn product(a: MatRef<'_>, b: MatRef<'_>, out: &mut [f32]) -> Result<(), OpError> {
    product_into(a, b, out, b.cols, Threads::Pool)
}

/// `out = a · b`, row `i` of the product at `out[i * ldc..]` (`ldc >= b.cols`), split over
/// the pool's threads only when `threads` is [`Threads::Pool`] and the product is large. The
/// arithmetic does not depend on `ldc`.
///
/// Errors when the inner dimensions disagree or a view or `out` is too small.
pub(crate) fn product_into(
    a: MatRef<'_>,
    b: MatRef<'_>,
    out: &mut [f32],
    ldc: usize,
    threads: Threads,
) -> Result<(), OpError> {
    let (m, n) = (a.rows, b.cols);
    let fits = m
        .checked_sub(1)
        .and_then(|r| r.checked_mul(ldc))
        .and_then(|r| r.checked_add(n));
    if uses_gemv(a, b) && ldc >= n && fits.is_some_and(|f| f <= out.len()) {
        for i in 0..m {
            gemv_row(a, i, b, &mut out[i * ldc..i * ldc + n], threads);
        }
        return Ok(());
    }
    sgemm(a, b, out, ldc, false, threads)
}

/// Whether `a · b` takes the matrix-vector path (few rows, `b` contiguous along one axis).
fn uses_gemv(a: MatRef<'_>, b: MatRef<'_>) -> bool {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    m <= GEMV_MAX_ROWS
        && m > 0
        && n > 0
        && (b.col_stride == 1 || b.row_stride == 1)
        && b.rows == k
        && b.in_bounds()
        && a.in_bounds()
}

/// `out = a[i, :] · b`.
fn gemv_row(a: MatRef<'_>, i: usize, b: MatRef<'_>, out: &mut [f32], threads: Threads) {
    let k = a.cols;
    let x: Vec<f32> = (0..k)
        .map(|p| a.data[i * a.row_stride + p * a.col_stride])
        .collect();
    let n = out.len();
    let pool = crate::ops::parallel::num_threads();
    let block = if k * n < GEMV_PARALLEL_WORK || pool < 2 || threads == Threads::One {
        n
    } else {
        n.div_ceil(pool * 2).next_multiple_of(16)
    };
    let compute = |j0: usize, o: &mut [f32]| {
        if b.col_stride == 1 {
            // b is row-major: accumulate scaled rows (axpy), contiguous in j.
            vec_mat(&x, b.data, b.row_stride, j0, o);
        } else {
            // b is a transposed row-major matrix: each output is a contiguous dot product.
            for (jj, acc) in o.iter_mut().enumerate() {
                let start = (j0 + jj) * b.col_stride;
                *acc = dot(&x, &b.data[start..start + k]);
            }
        }
    };
    if block >= n {
        compute(0, out);
    } else {
        crate::ops::parallel::for_chunks(out, block, |t, o| compute(t * block, o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_times_empty_product_past_the_budget_is_an_error() {
        // No operand element bounds the product: [m, 0] x [0, 2^40] asks for m * 2^40 floats.
        for m in [1, 64] {
            let a = TensorBuf::from_parts(vec![m, 0], Vec::new());
            let b = TensorBuf::from_parts(vec![0, 1 << 40], Vec::new());
            match matmul(&a, &b, false, false) {
                Err(e) => assert!(e.0.contains("memory budget"), "{}", e.0),
                Ok(_) => panic!("a 4 TiB product was allocated"),
            }
        }
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    fn reference(
        a: &[f32],
        b: &[f32],
        m: usize,
        k: usize,
        n: usize,
        ta: bool,
        tb: bool,
    ) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    let x = if ta { a[p * m + i] } else { a[i * k + p] };
                    let y = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += f64::from(x) * f64::from(y);
                }
                out[i * n + j] = s as f32;
            }
        }
        out
    }

    #[test]
    fn matches_reference_on_odd_shapes() -> Result<(), OpError> {
        for &(m, k, n) in &[
            (0, 3, 5),
            (1, 1, 1),
            (1, 784, 256),
            (2, 17, 257),
            (7, 0, 3),
            (17, 257, 7),
            (64, 784, 10),
            (5, 300, 300),
            // Large enough to split rows over threads (uneven last block).
            (301, 257, 129),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let av = values(m * k, 1);
                let bv = values(k * n, 2);
                let a = TensorBuf::from_parts(if ta { vec![k, m] } else { vec![m, k] }, av.clone());
                let b = TensorBuf::from_parts(if tb { vec![n, k] } else { vec![k, n] }, bv.clone());
                let out = matmul(&a, &b, ta, tb)?;
                assert_eq!(out.shape(), &[m, n]);
                let want = reference(&av, &bv, m, k, n, ta, tb);
                for (x, y) in out.data().iter().zip(&want) {
                    assert!(
                        (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                        "{m}x{k}x{n} {ta} {tb}: {x} vs {y}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn shape_mismatch_names_both_shapes() {
        let a = TensorBuf::from_parts(vec![64, 784], vec![0.0f32; 64 * 784]);
        let b = TensorBuf::from_parts(vec![300, 10], vec![0.0f32; 3000]);
        let err = matmul(&a, &b, false, false).err();
        assert_eq!(
            err,
            Some(OpError(
                "inner dimensions disagree: [64,784] x [300,10]".into()
            ))
        );
    }
}
