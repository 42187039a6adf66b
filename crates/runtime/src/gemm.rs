//! A bounds-checked wrapper over `matrixmultiply::sgemm`, and matrix-vector loops compiled
//! for AVX2+FMA when the CPU has them: the one place this crate uses `unsafe`.

#![allow(unsafe_code)]

use crate::ops::{op_bail, OpError};

/// A read-only strided matrix view: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix.
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> MatRef<'a> {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, as a view (no copy).
    pub(crate) fn t(self) -> MatRef<'a> {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Whether every element the view addresses lies inside `data`.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1).checked_mul(self.row_stride).and_then(|r| {
            (self.cols - 1)
                .checked_mul(self.col_stride)
                .and_then(|c| r.checked_add(c))
        });
        matches!(last, Some(l) if l < self.data.len())
    }
}

/// `c = a · b` (or `c += a · b` when `accumulate`), `c` row-major `a.rows x b.cols` with row
/// stride `ldc >= b.cols`.
pub(crate) fn sgemm(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) -> Result<(), OpError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        op_bail!("inner dimensions disagree: {m}x{k} times {}x{n}", b.rows);
    }
    if !a.in_bounds() || !b.in_bounds() || ldc < n {
        op_bail!("matrix view out of bounds");
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let c_needed = (m - 1).checked_mul(ldc).and_then(|x| x.checked_add(n));
    if !matches!(c_needed, Some(need) if need <= c.len()) {
        op_bail!("output buffer too small for {m}x{n}");
    }
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(0.0);
            }
        }
        return Ok(());
    }
    let as_isize =
        |x: usize| isize::try_from(x).map_err(|_| OpError("matrix stride too large".into()));
    let (rsa, csa, rsb, csb, rsc) = (
        as_isize(a.row_stride)?,
        as_isize(a.col_stride)?,
        as_isize(b.row_stride)?,
        as_isize(b.col_stride)?,
        as_isize(ldc)?,
    );
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: `in_bounds` checked that every (i, j) of `a` and `b` lies inside their slices,
    // and `c_needed` that rows 0..m at stride `ldc >= n`, columns 0..n, lie inside `c`. The
    // output rows do not overlap (ldc >= n, column stride 1), and `c` is borrowed mutably, so
    // it aliases neither input. With beta == 0, matrixmultiply does not read `c`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            rsa,
            csa,
            b.data.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            1,
        );
    }
    Ok(())
}

/// `out[j] = sum over p of x[p] * b[p * row_stride + col0 + j]`: a row vector times a
/// row-major matrix, one output column block.
pub(crate) fn vec_mat(x: &[f32], b: &[f32], row_stride: usize, col0: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above), which is all
            // `vec_mat_avx2` requires; its body is safe code.
            unsafe { vec_mat_avx2(x, b, row_stride, col0, out) };
            return;
        }
    }
    vec_mat_portable(x, b, row_stride, col0, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn vec_mat_avx2(x: &[f32], b: &[f32], row_stride: usize, col0: usize, out: &mut [f32]) {
    vec_mat_portable(x, b, row_stride, col0, out);
}

/// Output columns accumulated in registers at once (eight AVX registers).
const VEC_MAT_BLOCK: usize = 64;

#[inline(always)]
fn vec_mat_portable(x: &[f32], b: &[f32], row_stride: usize, col0: usize, out: &mut [f32]) {
    let mut blocks = out.chunks_exact_mut(VEC_MAT_BLOCK);
    let mut j = col0;
    for block in &mut blocks {
        // The block's accumulators stay in registers while the weights stream past.
        let mut acc = [0.0f32; VEC_MAT_BLOCK];
        for (p, &w) in x.iter().enumerate() {
            let start = p * row_stride + j;
            let row = &b[start..start + VEC_MAT_BLOCK];
            for l in 0..VEC_MAT_BLOCK {
                acc[l] = w.mul_add(row[l], acc[l]);
            }
        }
        block.copy_from_slice(&acc);
        j += VEC_MAT_BLOCK;
    }
    let rest = blocks.into_remainder();
    rest.fill(0.0);
    let len = rest.len();
    for (p, &w) in x.iter().enumerate() {
        let start = p * row_stride + j;
        for (acc, &v) in rest.iter_mut().zip(&b[start..start + len]) {
            *acc = w.mul_add(v, *acc);
        }
    }
}

/// The dot product of two equal-length slices.
pub(crate) fn dot(x: &[f32], y: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above), which is all
            // `dot_avx2` requires; its body is safe code.
            return unsafe { dot_avx2(x, y) };
        }
    }
    dot_portable(x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(x: &[f32], y: &[f32]) -> f32 {
    dot_portable(x, y)
}

/// Sixteen independent accumulators, so the loop vectorizes.
#[inline(always)]
fn dot_portable(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (xc, yc) = (x.chunks_exact(16), y.chunks_exact(16));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..16 {
            acc[l] = a[l].mul_add(b[l], acc[l]);
        }
    }
    let tail: f32 = xr.iter().zip(yr).map(|(a, b)| a * b).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f32> {
        let mut c = vec![0.0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0f64;
                for p in 0..a.cols {
                    s += f64::from(a.data[i * a.row_stride + p * a.col_stride])
                        * f64::from(b.data[p * b.row_stride + j * b.col_stride]);
                }
                c[i * b.cols + j] = s as f32;
            }
        }
        c
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_reference_on_odd_shapes_and_transposes() -> Result<(), OpError> {
        for &(m, k, n) in &[
            (0, 3, 4),
            (1, 1, 1),
            (7, 0, 5),
            (7, 13, 5),
            (17, 257, 3),
            (64, 784, 10),
            (3, 5, 300),
        ] {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let cases = [
                (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n)),
                (
                    MatRef::row_major(&a, k, m).t(),
                    MatRef::row_major(&b, n, k).t(),
                ),
            ];
            for (ma, mb) in cases {
                let mut c = vec![f32::NAN; m * n];
                sgemm(ma, mb, &mut c, n, false)?;
                let r = reference(ma, mb);
                for (x, y) in c.iter().zip(&r) {
                    assert!(
                        (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                        "{m}x{k}x{n}: {x} vs {y}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn rejects_out_of_bounds_views() {
        let a = vec![0.0f32; 5];
        let mut c = vec![0.0f32; 4];
        let bad = MatRef::row_major(&a, 2, 3);
        assert_eq!(
            sgemm(bad, MatRef::row_major(&a, 3, 1), &mut c, 1, false).err(),
            Some(OpError("matrix view out of bounds".into()))
        );
        let ok = MatRef::row_major(&a, 1, 5);
        assert!(sgemm(ok, MatRef::row_major(&a, 5, 1), &mut c, 1, false).is_ok());
        assert_eq!(
            sgemm(ok, MatRef::row_major(&a, 4, 1), &mut c, 1, false).err(),
            Some(OpError("inner dimensions disagree: 1x5 times 4x1".into()))
        );
    }
}
