//! A bounds-checked wrapper over the `gemm` crate's f32 matrix product (split into one block
//! per thread of the session's team for large products), and matrix-vector loops compiled for AVX2+FMA when the CPU
//! has them: the one place this crate uses `unsafe`.

#![allow(unsafe_code)]

use std::mem::MaybeUninit;

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
    pub(crate) fn in_bounds(&self) -> bool {
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

/// How many threads one product may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Threads {
    /// Only the calling thread (for callers that spread products over threads themselves).
    One,
    /// The session's threads, for a product large enough to pay for handing blocks over;
    /// smaller ones stay on the calling thread.
    Pool,
}

/// Multiply-adds (`m * k * n`) from which a product is split over the session's threads: below
/// it, waking a thread costs more than it saves (an LSTM step of batch 32 and 128 units,
/// 32 x 136 x 512, is above it).
pub(crate) const PARALLEL_WORK: usize = 1 << 19;

/// `c = a · b` (or `c += a · b` when `accumulate`), `c` row-major `a.rows x b.cols` with row
/// stride `ldc >= b.cols`, through the `gemm` crate's kernels (packing, register tiles for
/// the CPU's widest vectors, no packing for small products), split over the session's
/// threads when `threads` is [`Threads::Pool`] and the product is large.
///
/// Errors when the inner dimensions disagree, a view or `c` is too small for its shape and
/// strides, or a stride does not fit `isize`.
pub(crate) fn sgemm(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    threads: Threads,
) -> Result<(), OpError> {
    let (m, n) = check(a, b, c.len(), ldc)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if a.cols == 0 {
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(0.0);
            }
        }
        return Ok(());
    }
    // SAFETY: `check` verified that rows 0..m at stride `ldc >= n`, columns 0..n, lie inside
    // `c`, which is initialized and borrowed mutably for the call.
    unsafe { sgemm_raw(a, b, c.as_mut_ptr(), ldc, accumulate, threads) }
}

/// `a · b` as a new row-major `a.rows x b.cols` vector, written by the GEMM into fresh memory
/// (never zeroed first: the GEMM stores every element without reading any). Errors as
/// [`sgemm`], and when the product would pass the memory budget
/// ([`max_memory`](crate::max_memory)).
pub(crate) fn sgemm_new(
    a: MatRef<'_>,
    b: MatRef<'_>,
    threads: Threads,
) -> Result<Vec<f32>, OpError> {
    let (m, n) = (a.rows, b.cols);
    let len = crate::memory::output_len(&[m, n], 4)?;
    check(a, b, len, n)?;
    if len == 0 || a.cols == 0 {
        return Ok(vec![0.0; len]);
    }
    let mut c: Vec<f32> = crate::memory::f32_buffer(len);
    let spare = c.spare_capacity_mut();
    // SAFETY: `spare` holds `len` floats (capacity just reserved), which `check` verified is
    // what rows 0..m of n columns at stride n need. The GEMM is told not to read `c`
    // (accumulate false) and stores all m x n elements, so they are all initialized when it
    // returns without error, and then the length is set to cover exactly them.
    unsafe {
        sgemm_raw(a, b, spare.as_mut_ptr().cast::<f32>(), n, false, threads)?;
        c.set_len(len);
    }
    Ok(c)
}

/// `c = a · b` into uninitialized memory: `c` holds exactly `a.rows * b.cols` elements,
/// row-major. Returns `c` as the initialized floats the GEMM stored there (every element).
/// Errors as [`sgemm`], and when `c` has another length.
pub(crate) fn sgemm_uninit<'c>(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &'c mut [MaybeUninit<f32>],
    threads: Threads,
) -> Result<&'c mut [f32], OpError> {
    let (m, n) = (a.rows, b.cols);
    if m.checked_mul(n) != Some(c.len()) {
        op_bail!("output buffer of {} floats for a {m}x{n} product", c.len());
    }
    check(a, b, c.len(), n)?;
    if c.is_empty() || a.cols == 0 {
        for e in c.iter_mut() {
            e.write(0.0);
        }
    } else {
        // SAFETY: `c` holds m x n floats, rows of n at stride n, which `check` verified the
        // product fits; it is borrowed mutably for the call. The GEMM does not read it
        // (accumulate false) and stores every element.
        unsafe { sgemm_raw(a, b, c.as_mut_ptr().cast::<f32>(), n, false, threads)? };
    }
    // SAFETY: every element of `c` was written just above (the zero loop, or the GEMM, which
    // returned without error); `MaybeUninit<f32>` and `f32` have the same layout.
    Ok(unsafe { &mut *(std::ptr::from_mut::<[MaybeUninit<f32>]>(c) as *mut [f32]) })
}

/// Checks the shapes and views of a product into `c_len` floats at row stride `ldc`;
/// returns `(m, n)`.
fn check(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c_len: usize,
    ldc: usize,
) -> Result<(usize, usize), OpError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        op_bail!("inner dimensions disagree: {m}x{k} times {}x{n}", b.rows);
    }
    if !a.in_bounds() || !b.in_bounds() || ldc < n {
        op_bail!("matrix view out of bounds");
    }
    if m == 0 || n == 0 {
        return Ok((m, n));
    }
    let c_needed = (m - 1).checked_mul(ldc).and_then(|x| x.checked_add(n));
    if !matches!(c_needed, Some(need) if need <= c_len) {
        op_bail!("output buffer too small for {m}x{n}");
    }
    Ok((m, n))
}

/// The product behind [`sgemm`] and [`sgemm_new`].
///
/// # Safety
/// `a` and `b` passed [`check`] with `m, n >= 1` and `k >= 1`, and `c` points to memory
/// valid for writes (and, when `accumulate`, initialized reads) of rows 0..m at stride
/// `ldc >= n`, columns 0..n, that nothing else accesses during the call.
unsafe fn sgemm_raw(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    threads: Threads,
) -> Result<(), OpError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let as_isize =
        |x: usize| isize::try_from(x).map_err(|_| OpError("matrix stride too large".into()));
    let (rsa, csa, rsb, csb, rsc) = (
        as_isize(a.row_stride)?,
        as_isize(a.col_stride)?,
        as_isize(b.row_stride)?,
        as_isize(b.col_stride)?,
        as_isize(ldc)?,
    );
    let threads_here = crate::ops::parallel::num_threads();
    if threads == Threads::One
        || threads_here < 2
        || m.saturating_mul(k).saturating_mul(n) < PARALLEL_WORK
    {
        // One thread: matrixmultiply, whose sums (in the order of its kc blocks) stay within
        // the fixtures' 1e-5 of TensorFlow on the small classifier heads where gemm's order
        // drifted 2.5e-5 relative (lenet and layers_v1 logits).
        let beta = if accumulate { 1.0 } else { 0.0 };
        // SAFETY: `check` verified that every (i, j) of `a` and `b` lies inside their
        // slices; the caller guarantees `c`. With beta == 0, matrixmultiply does not read
        // `c` and stores every element of it.
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
                c,
                rsc,
                1,
            );
        }
        return Ok(());
    }
    // Split the product into one block per thread, along the longer of m and n, so that
    // the operand each block packs again (b for row blocks, a for column blocks) is the
    // smaller one.
    let by_rows = m >= n;
    let long = if by_rows { m } else { n };
    let per_block = long.div_ceil(threads_here);
    let out = crate::ops::parallel::TaskOutput::new(c);
    crate::ops::parallel::tasks(long.div_ceil(per_block), |t| {
        let first = t * per_block;
        let len = per_block.min(long - first);
        // `first < m` (or `< n`), so these offsets stay inside the views `check` verified.
        let (a_data, b_data, c_offset, rows, cols) = if by_rows {
            (&a.data[first * a.row_stride..], b.data, first * ldc, len, n)
        } else {
            (a.data, &b.data[first * b.col_stride..], first, m, len)
        };
        // SAFETY: `check` verified that every (i, j) of `a` and `b` lies inside their slices,
        // so the block's elements lie inside the sub-slices above; the caller guarantees `c`
        // for rows 0..m at stride `ldc >= n`, columns 0..n, and that nothing else touches it
        // (it aliases neither input); the blocks of `c` (rows first..first + len, or those
        // columns) are disjoint, one per task. With `read_dst` false, gemm does not read `c`:
        // it stores `1 · a · b` in every element (alpha, the factor of the old `c`, is then
        // unused); with it true it stores `1 · c + 1 · a · b`.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                out.get().add(c_offset),
                1,
                rsc,
                accumulate,
                a_data.as_ptr(),
                csa,
                rsa,
                b_data.as_ptr(),
                csb,
                rsb,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    });
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

/// `data[i] = f(data[i])`, the loop compiled for AVX2+FMA when the CPU has them, so that a
/// branch-free `f` (the `vmath` functions) runs eight lanes wide instead of SSE2's four.
/// `f`'s arithmetic is the same either way: results are bit-identical to the plain loop.
pub(crate) fn map_f32(data: &mut [f32], f: impl Fn(f32) -> f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above), which is all
            // `map_f32_avx2` requires; its body is safe code.
            unsafe { map_f32_avx2(data, &f) };
            return;
        }
    }
    map_f32_portable(data, &f);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn map_f32_avx2(data: &mut [f32], f: &impl Fn(f32) -> f32) {
    map_f32_portable(data, f);
}

#[inline(always)]
fn map_f32_portable(data: &mut [f32], f: &impl Fn(f32) -> f32) {
    for x in data.iter_mut() {
        *x = f(*x);
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
                sgemm(ma, mb, &mut c, n, false, Threads::One)?;
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

    /// Padded strides, `ldc > n`, accumulation into existing values, and both thread modes
    /// on teams of 1, 2 and 3 threads, on shapes below and above [`PARALLEL_WORK`] (the RNN
    /// step's 32 x 136 x 512, odd ones that split unevenly, few rows with many columns).
    #[test]
    fn strided_accumulating_and_threaded_products_match_reference() -> Result<(), OpError> {
        let shapes = [
            (5, 7, 3),
            (32, 136, 512),
            (97, 131, 67),
            (3, 1000, 257),
            (300, 33, 301),
        ];
        for threads in [1, 2, 3] {
            let team = crate::team::Team::new(threads).map_err(|e| OpError(e.to_string()))?;
            for &(m, k, n) in &shapes {
                // a: m x k inside rows of k + 3; b: k x n transposed, columns of k + 2.
                let (lda, ldb, ldc) = (k + 3, k + 2, n + 5);
                let av = values(m * lda, 3);
                let bv = values(n * ldb, 4);
                let a = MatRef {
                    data: &av,
                    rows: m,
                    cols: k,
                    row_stride: lda,
                    col_stride: 1,
                };
                let b = MatRef {
                    data: &bv,
                    rows: n,
                    cols: k,
                    row_stride: ldb,
                    col_stride: 1,
                }
                .t();
                let r = reference(a, b);
                let start = values(m * ldc, 5);
                for mode in [Threads::One, Threads::Pool] {
                    for accumulate in [false, true] {
                        let mut c = start.clone();
                        crate::ops::parallel::with_team(team.shared(), || {
                            sgemm(a, b, &mut c, ldc, accumulate, mode)
                        })?;
                        for i in 0..m {
                            for j in 0..ldc {
                                let (got, old) = (c[i * ldc + j], start[i * ldc + j]);
                                if j >= n {
                                    assert_eq!(got.to_bits(), old.to_bits(), "padding written");
                                    continue;
                                }
                                let want = r[i * n + j] + if accumulate { old } else { 0.0 };
                                assert!(
                                    (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                    "{m}x{k}x{n} {threads} threads {mode:?} \
                                     accumulate {accumulate}: ({i},{j}) {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn rejects_short_output_and_empty_inner_dimension_zeroes() -> Result<(), OpError> {
        let a = values(6, 1);
        let b = values(6, 2);
        let (ma, mb) = (MatRef::row_major(&a, 2, 3), MatRef::row_major(&b, 3, 2));
        let mut short = vec![0.0f32; 3];
        assert_eq!(
            sgemm(ma, mb, &mut short, 2, false, Threads::Pool).err(),
            Some(OpError("output buffer too small for 2x2".into()))
        );
        let mut c = vec![0.0f32; 4];
        assert_eq!(
            sgemm(ma, mb, &mut c, 1, false, Threads::Pool).err(),
            Some(OpError("matrix view out of bounds".into()))
        );
        // k = 0: the product is zero, or leaves c alone when accumulating.
        let empty: [f32; 0] = [];
        let (ea, eb) = (
            MatRef::row_major(&empty, 2, 0),
            MatRef::row_major(&empty, 0, 2),
        );
        let mut c = vec![7.0f32; 4];
        sgemm(ea, eb, &mut c, 2, true, Threads::One)?;
        assert_eq!(c, [7.0; 4]);
        sgemm(ea, eb, &mut c, 2, false, Threads::One)?;
        assert_eq!(c, [0.0; 4]);
        Ok(())
    }

    #[test]
    fn map_f32_is_the_plain_loop() {
        let xs: Vec<f32> = (0..1037).map(|i| (i as f32 - 500.0) * 0.037).collect();
        let f = |x: f32| 1.0 / (1.0 + (x * 0.5 - 0.25).abs());
        let mut got = xs.clone();
        map_f32(&mut got, f);
        for (&g, &x) in got.iter().zip(&xs) {
            assert_eq!(g.to_bits(), f(x).to_bits(), "at {x}");
        }
    }

    #[test]
    fn rejects_out_of_bounds_views() {
        let a = vec![0.0f32; 5];
        let mut c = vec![0.0f32; 4];
        let bad = MatRef::row_major(&a, 2, 3);
        assert_eq!(
            sgemm(
                bad,
                MatRef::row_major(&a, 3, 1),
                &mut c,
                1,
                false,
                Threads::One
            )
            .err(),
            Some(OpError("matrix view out of bounds".into()))
        );
        let ok = MatRef::row_major(&a, 1, 5);
        assert!(sgemm(
            ok,
            MatRef::row_major(&a, 5, 1),
            &mut c,
            1,
            false,
            Threads::One
        )
        .is_ok());
        assert_eq!(
            sgemm(
                ok,
                MatRef::row_major(&a, 4, 1),
                &mut c,
                1,
                false,
                Threads::One
            )
            .err(),
            Some(OpError("inner dimensions disagree: 1x5 times 4x1".into()))
        );
    }
}
