//! `BatchMatMul`, `BatchMatMulV2` and `BatchMatMulV3`: matrix products over leading batch
//! dimensions, with `adj_x` / `adj_y` (transposes, as the executor holds no complex types).
//! `BatchMatMul` needs equal batch dimensions; `V2` and `V3` broadcast them as numpy does.
//! `V3`'s separate input and output dtypes must all be the same here.
//!
//! float32 goes through the GEMM `MatMul` uses, with the transposes as strides: many small
//! products (attention heads) are spread over threads one product each, a few large ones
//! split their rows. Other numeric types use a plain loop.
//!
//! The planner may fold a `Transpose` that feeds an input, or one applied to the product,
//! into the product ([`FoldedTransposes`], found by [`crate::fusion`]): the operands are then
//! read, and the product written, through the transposed strides, so attention's
//! `[batch, seq, heads, depth]` <-> `[batch, heads, seq, depth]` shuffles are never copied.
//! Each matrix product is computed by the same routine as without the fold, so the results
//! are bit-identical.

use std::sync::Mutex;

use ckpt_graph::Node;

use crate::gemm::{MatRef, Threads};
use crate::ops::array::transpose::transpose;
use crate::ops::broadcast::broadcast_shapes;
use crate::ops::math::matmul::product_into;
use crate::ops::{
    dtype_attr, fmt_shape, kernel, node_error, op_bail, output_len, parallel, take_inputs,
    BuildCtx, Built, Kernel, OpError,
};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    build_folded(node, FoldedTransposes::default())
}

/// A batch product whose operands are read through the permutations `folded` gives (the
/// `Transpose` nodes the planner folded into it) and whose product is written transposed.
pub(crate) fn build_folded(node: &Node, folded: FoldedTransposes) -> Result<Built, Error> {
    if node.op == "BatchMatMulV3" {
        let (ta, tb, tout) = (
            dtype_attr(node, "Ta")?,
            dtype_attr(node, "Tb")?,
            dtype_attr(node, "Tout")?,
        );
        if ta != tb || ta != tout {
            return Err(node_error(
                node,
                format!("mixed dtypes are not supported: Ta {ta}, Tb {tb}, Tout {tout}"),
            ));
        }
    }
    kernel(BatchMatMul {
        adj_x: node.attr_bool_or("adj_x", false)?,
        adj_y: node.attr_bool_or("adj_y", false)?,
        broadcast: node.op != "BatchMatMul",
        folded,
    })
}

/// `Transpose` permutations folded into a batch product at plan time (`perm` as the
/// `Transpose` op takes it: output axis `d` is input axis `perm[d]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FoldedTransposes {
    /// For `x` and `y`: the permutation of the `Transpose` whose input the product reads in
    /// place of its output.
    pub inputs: [Option<Vec<usize>>; 2],
    /// The permutation of the `Transpose` applied to the product, which the product is
    /// written through. It keeps the first axis first and the last axis last.
    pub output: Option<Vec<usize>>,
}

#[derive(Debug)]
pub(crate) struct BatchMatMul {
    pub adj_x: bool,
    pub adj_y: bool,
    /// Whether batch dimensions broadcast (`V2`, `V3`) or must be equal (`BatchMatMul`).
    pub broadcast: bool,
    pub folded: FoldedTransposes,
}

impl Kernel for BatchMatMul {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, y] = take_inputs(inputs)?;
        let out = match (x, y) {
            (Value::F32(x), Value::F32(y)) => Value::F32(self.f32(&x, &y)?),
            pair => dispatch_numbers!(pair, |x, y| Value::from(self.generic(&x, &y)?), else {
                (x, y) => op_bail!("unsupported dtypes {} and {}", x.dtype(), y.dtype()),
            }),
        };
        Ok(vec![out])
    }
}

/// How an operand's elements are laid out: its logical shape and the element stride of each
/// axis in the buffer (row-major, or a folded transpose's view of its input).
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
}

impl Layout {
    /// A row-major tensor of `shape`.
    fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: row_major_strides(shape),
        }
    }

    /// `Transpose(x, perm)` as a view of `x` (of `shape`), or `x` itself without `perm`.
    fn permuted(shape: &[usize], perm: Option<&[usize]>, what: &str) -> Result<Layout, OpError> {
        let Some(perm) = perm else {
            return Ok(Layout::contiguous(shape));
        };
        if !is_permutation(perm, shape.len()) {
            op_bail!(
                "the transpose folded into {what} has perm {perm:?}, which does not fit its \
                 input's shape {}",
                fmt_shape(shape)
            );
        }
        let strides = row_major_strides(shape);
        Ok(Layout {
            shape: perm.iter().map(|&a| shape[a]).collect(),
            strides: perm.iter().map(|&a| strides[a]).collect(),
        })
    }

    /// Matrix `offset` of this operand (`rows x cols` at the last two axes' strides),
    /// transposed when `adj`.
    fn matrix<'a>(&self, data: &'a [f32], offset: usize, adj: bool) -> Result<MatRef<'a>, OpError> {
        let r = self.shape.len();
        let Some(data) = data.get(offset..) else {
            op_bail!("matrix offset {offset} out of bounds");
        };
        let mat = MatRef {
            data,
            rows: self.shape[r - 2],
            cols: self.shape[r - 1],
            row_stride: self.strides[r - 2],
            col_stride: self.strides[r - 1],
        };
        Ok(if adj { mat.t() } else { mat })
    }
}

/// Whether `perm` holds each of `0..rank` once.
pub(crate) fn is_permutation(perm: &[usize], rank: usize) -> bool {
    let mut seen = vec![false; rank];
    perm.len() == rank
        && perm
            .iter()
            .all(|&a| a < rank && !std::mem::replace(&mut seen[a], true))
}

/// Element strides of a row-major tensor of `shape`.
fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1].saturating_mul(shape[d + 1]);
    }
    strides
}

/// The geometry of a batched product: `out[i] = x[..] · y[..]`, each `m x k` times `k x n`.
#[derive(Debug, PartialEq)]
struct Geometry {
    m: usize,
    k: usize,
    n: usize,
    out_shape: Vec<usize>,
    /// For each output matrix, the element offsets of the `x` and `y` matrices it multiplies.
    pairs: Vec<(usize, usize)>,
}

impl BatchMatMul {
    fn geometry(&self, x: &Layout, y: &Layout) -> Result<Geometry, OpError> {
        let (xs, ys) = (&x.shape, &y.shape);
        let shapes = || {
            let flags = match (self.adj_x, self.adj_y) {
                (false, false) => "",
                (true, false) => " (adj_x)",
                (false, true) => " (adj_y)",
                (true, true) => " (adj_x, adj_y)",
            };
            format!("{} x {}{flags}", fmt_shape(xs), fmt_shape(ys))
        };
        let (Some(xb), Some(yb)) = (xs.len().checked_sub(2), ys.len().checked_sub(2)) else {
            op_bail!("inputs must have rank >= 2: {}", shapes());
        };
        let (x_batch, y_batch) = (&xs[..xb], &ys[..yb]);
        let (xr, xc) = (xs[xb], xs[xb + 1]);
        let (yr, yc) = (ys[yb], ys[yb + 1]);
        let (m, k) = if self.adj_x { (xc, xr) } else { (xr, xc) };
        let (k2, n) = if self.adj_y { (yc, yr) } else { (yr, yc) };
        if k != k2 {
            op_bail!("inner dimensions disagree: {}", shapes());
        }
        let batch = if self.broadcast {
            broadcast_shapes(&[x_batch, y_batch])
                .map_err(|_| OpError(format!("batch dimensions do not broadcast: {}", shapes())))?
        } else {
            if x_batch != y_batch {
                op_bail!("batch dimensions must be equal: {}", shapes());
            }
            x_batch.to_vec()
        };
        let mut out_shape = batch.clone();
        out_shape.extend([m, n]);
        output_len(&out_shape, 8)?;
        let count: usize = batch.iter().product();
        let pairs = (0..count)
            .map(|i| {
                (
                    batch_offset(&batch, x_batch, &x.strides[..xb], i),
                    batch_offset(&batch, y_batch, &y.strides[..yb], i),
                )
            })
            .collect();
        Ok(Geometry {
            m,
            k,
            n,
            out_shape,
            pairs,
        })
    }

    /// The layouts of `x` and `y` (of shapes `xs` and `ys`) after the folded transposes.
    fn layouts(&self, xs: &[usize], ys: &[usize]) -> Result<(Layout, Layout), OpError> {
        let [px, py] = &self.folded.inputs;
        Ok((
            Layout::permuted(xs, px.as_deref(), "x")?,
            Layout::permuted(ys, py.as_deref(), "y")?,
        ))
    }

    fn f32(&self, x: &TensorBuf<f32>, y: &TensorBuf<f32>) -> Result<TensorBuf<f32>, OpError> {
        let (xl, yl) = self.layouts(x.shape(), y.shape())?;
        let g = self.geometry(&xl, &yl)?;
        let (m, k, n) = (g.m, g.k, g.n);
        let len = output_len(&g.out_shape, 4)?;
        let operands = |i: usize| -> Result<(MatRef<'_>, MatRef<'_>), OpError> {
            let (xo, yo) = g.pairs[i];
            Ok((
                xl.matrix(x.data(), xo, self.adj_x)?,
                yl.matrix(y.data(), yo, self.adj_y)?,
            ))
        };
        let count = g.pairs.len();
        let threads = crate::ops::parallel::num_threads();
        // Many products run one per task on one thread each; a few split their rows over
        // the threads themselves. The folded and unfolded plans choose alike.
        let spread = count >= threads
            && m.saturating_mul(k).saturating_mul(n).saturating_mul(count)
                >= parallel::MIN_PARALLEL_WORK;
        // Where the product is written: row-major, or through the folded output transpose.
        let written = match &self.folded.output {
            Some(perm) => OutputLayout::transposed(&g.out_shape, perm)?,
            None => OutputLayout::contiguous(&g.out_shape),
        };
        if len == 0 {
            return Ok(TensorBuf::from_parts(written.shape, vec![]));
        }
        if spread && written.chunks < threads {
            // Too few independent slabs of the transposed output to spread the products
            // over: compute them row-major, then transpose.
            let plain = self.products(
                &operands,
                &OutputLayout::contiguous(&g.out_shape),
                spread,
                len,
            )?;
            let Some(perm) = &self.folded.output else {
                return Ok(plain);
            };
            let perm: Vec<i64> = perm.iter().map(|&a| a as i64).collect();
            return transpose(&plain, &perm);
        }
        self.products(&operands, &written, spread, len)
    }

    /// Computes every product of the batch into a buffer laid out as `written`.
    fn products<'a>(
        &self,
        operands: &(impl Fn(usize) -> Result<(MatRef<'a>, MatRef<'a>), OpError> + Sync),
        written: &OutputLayout,
        spread: bool,
        len: usize,
    ) -> Result<TensorBuf<f32>, OpError> {
        let mut out = vec![0.0f32; len];
        let chunk_len = len / written.chunks.max(1);
        let per_chunk = written.offsets.len() / written.chunks.max(1);
        let ldc = written.ldc;
        let chunk_products = |c: usize, chunk: &mut [f32], threads: Threads| {
            for p in c * per_chunk..(c + 1) * per_chunk {
                let (a, b) = operands(p)?;
                let start = written.offsets[p] - c * chunk_len;
                let Some(o) = chunk.get_mut(start..) else {
                    op_bail!("output offset {start} out of bounds");
                };
                product_into(a, b, o, ldc, threads)?;
            }
            Ok(())
        };
        if spread {
            // One task per independent slab of the output, on one thread each.
            let failure = Mutex::new(None);
            parallel::for_chunks(&mut out, chunk_len.max(1), |c, chunk| {
                if let Err(e) = chunk_products(c, chunk, Threads::One) {
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(e);
                    }
                }
            });
            if let Some(e) = failure.into_inner().ok().flatten() {
                return Err(e);
            }
        } else {
            for (c, chunk) in out.chunks_mut(chunk_len.max(1)).enumerate() {
                chunk_products(c, chunk, Threads::Pool)?;
            }
        }
        Ok(TensorBuf::from_parts(written.shape.clone(), out))
    }

    fn generic<T: Num>(&self, x: &TensorBuf<T>, y: &TensorBuf<T>) -> Result<TensorBuf<T>, OpError> {
        if self.folded != FoldedTransposes::default() {
            op_bail!("folded transposes need float32 operands");
        }
        let (xl, yl) = (Layout::contiguous(x.shape()), Layout::contiguous(y.shape()));
        let g = self.geometry(&xl, &yl)?;
        let (m, k, n) = (g.m, g.k, g.n);
        let mut out = vec![T::ZERO; output_len(&g.out_shape, std::mem::size_of::<T>())?];
        let (xd, yd) = (x.data(), y.data());
        for (o, &(xi, yi)) in out.chunks_mut((m * n).max(1)).zip(&g.pairs) {
            let (xm, ym) = (&xd[xi..], &yd[yi..]);
            for i in 0..m {
                for j in 0..n {
                    let mut acc = T::ZERO;
                    for p in 0..k {
                        let a = if self.adj_x {
                            xm[p * m + i]
                        } else {
                            xm[i * k + p]
                        };
                        let b = if self.adj_y {
                            ym[j * k + p]
                        } else {
                            ym[p * n + j]
                        };
                        acc = acc + a * b;
                    }
                    o[i * n + j] = acc;
                }
            }
        }
        Ok(TensorBuf::from_parts(g.out_shape, out))
    }
}

/// Where each product of the batch goes in the output buffer.
#[derive(Debug)]
struct OutputLayout {
    /// The output's shape (the folded transpose's output shape when there is one).
    shape: Vec<usize>,
    /// Element offset of each product's first element.
    offsets: Vec<usize>,
    /// Element stride between a product's rows (its columns are contiguous).
    ldc: usize,
    /// How many equal, contiguous slabs the buffer splits into with whole products in each:
    /// one per product for a row-major output, one per index of the first axis for a
    /// transposed one.
    chunks: usize,
}

impl OutputLayout {
    fn contiguous(out_shape: &[usize]) -> OutputLayout {
        let r = out_shape.len();
        let (m, n) = (out_shape[r - 2], out_shape[r - 1]);
        let count: usize = out_shape[..r - 2].iter().product();
        OutputLayout {
            shape: out_shape.to_vec(),
            offsets: (0..count).map(|i| i * m * n).collect(),
            ldc: n,
            chunks: count,
        }
    }

    /// The product of shape `out_shape` written as `Transpose(product, perm)`.
    fn transposed(out_shape: &[usize], perm: &[usize]) -> Result<OutputLayout, OpError> {
        let r = out_shape.len();
        if !is_permutation(perm, r) || r < 3 || perm[0] != 0 || perm[r - 1] != r - 1 {
            op_bail!(
                "the transpose folded into the output has perm {perm:?}, which does not fit the \
                 product's shape {}",
                fmt_shape(out_shape)
            );
        }
        let shape: Vec<usize> = perm.iter().map(|&a| out_shape[a]).collect();
        let t_strides = row_major_strides(&shape);
        // Product axis `a` is output axis `d` where perm[d] == a.
        let mut strides = vec![0usize; r];
        for (d, &a) in perm.iter().enumerate() {
            strides[a] = t_strides[d];
        }
        let batch = &out_shape[..r - 2];
        let count: usize = batch.iter().product();
        let offsets = (0..count)
            .map(|i| batch_offset(batch, batch, &strides[..r - 2], i))
            .collect();
        Ok(OutputLayout {
            shape,
            offsets,
            ldc: strides[r - 2],
            chunks: out_shape[0],
        })
    }
}

/// The element offset of the matrix that output matrix `i` (of batch shape `out`) reads from
/// an input with batch dimensions `input` (right-aligned, size-1 dimensions broadcast) and
/// batch strides `strides`.
fn batch_offset(out: &[usize], input: &[usize], strides: &[usize], i: usize) -> usize {
    let offset = out.len() - input.len();
    let mut rem = i;
    let mut index = 0;
    for d in (0..out.len()).rev() {
        let coord = rem % out[d].max(1);
        rem /= out[d].max(1);
        if d >= offset && input[d - offset] != 1 {
            index += coord * strides[d - offset];
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Reference: every output element from the broadcast index arithmetic written out.
    fn reference(
        xs: &[usize],
        x: &[f32],
        ys: &[usize],
        y: &[f32],
        adj_x: bool,
        adj_y: bool,
    ) -> (Vec<usize>, Vec<f32>) {
        let (xb, yb) = (&xs[..xs.len() - 2], &ys[..ys.len() - 2]);
        let rank = xb.len().max(yb.len());
        let pad = |b: &[usize]| {
            let mut v = vec![1usize; rank - b.len()];
            v.extend_from_slice(b);
            v
        };
        let (xb, yb) = (pad(xb), pad(yb));
        let batch: Vec<usize> = xb.iter().zip(&yb).map(|(&a, &b)| a.max(b)).collect();
        let (xr, xc) = (xs[xs.len() - 2], xs[xs.len() - 1]);
        let (yr, yc) = (ys[ys.len() - 2], ys[ys.len() - 1]);
        let (m, k) = if adj_x { (xc, xr) } else { (xr, xc) };
        let n = if adj_y { yr } else { yc };
        let count: usize = batch.iter().product();
        let mut out = Vec::new();
        for bi in 0..count {
            let mut coord = vec![0; rank];
            let mut rem = bi;
            for d in (0..rank).rev() {
                coord[d] = rem % batch[d];
                rem /= batch[d];
            }
            let flat = |b: &[usize]| {
                (0..rank).fold(0, |acc, d| {
                    acc * b[d] + if b[d] == 1 { 0 } else { coord[d] }
                })
            };
            let (xo, yo) = (flat(&xb) * xr * xc, flat(&yb) * yr * yc);
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0f64;
                    for p in 0..k {
                        let a = if adj_x {
                            x[xo + p * xc + i]
                        } else {
                            x[xo + i * xc + p]
                        };
                        let b = if adj_y {
                            y[yo + j * yc + p]
                        } else {
                            y[yo + p * yc + j]
                        };
                        s += f64::from(a) * f64::from(b);
                    }
                    out.push(s as f32);
                }
            }
        }
        let mut shape = batch;
        shape.extend([m, n]);
        (shape, out)
    }

    #[test]
    fn matches_reference_on_odd_shapes_with_adjoints_and_broadcasting() -> Result<(), OpError> {
        let cases: &[(&[usize], &[usize])] = &[
            (&[1, 1], &[1, 1]),
            (&[2, 3, 4], &[2, 4, 5]),
            (&[7, 1, 3], &[7, 3, 17]),
            (&[0, 3, 4], &[0, 4, 5]),
            (&[3, 0, 4], &[3, 4, 2]),
            (&[2, 3, 0], &[2, 0, 5]),
            (&[17, 257], &[257, 7]),
            (&[2, 1, 5, 6], &[3, 6, 7]),
            (&[5, 6], &[4, 2, 6, 3]),
            (&[8, 4, 128, 16], &[8, 4, 16, 128]),
            (&[32, 9, 33], &[1, 33, 31]),
        ];
        for &(xs, ys) in cases {
            for (adj_x, adj_y) in [(false, false), (true, false), (false, true), (true, true)] {
                let swap = |s: &[usize], adj: bool| {
                    let mut s = s.to_vec();
                    let r = s.len();
                    if adj {
                        s.swap(r - 1, r - 2);
                    }
                    s
                };
                let (xs, ys) = (swap(xs, adj_x), swap(ys, adj_y));
                let x = values(xs.iter().product(), 1);
                let y = values(ys.iter().product(), 2);
                let k = BatchMatMul {
                    adj_x,
                    adj_y,
                    broadcast: true,
                    folded: FoldedTransposes::default(),
                };
                let out = k.f32(
                    &TensorBuf::from_parts(xs.clone(), x.clone()),
                    &TensorBuf::from_parts(ys.clone(), y.clone()),
                )?;
                let (shape, want) = reference(&xs, &x, &ys, &y, adj_x, adj_y);
                assert_eq!(out.shape(), shape.as_slice(), "{xs:?} {ys:?}");
                for (g, w) in out.data().iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                        "{xs:?} {ys:?} {adj_x} {adj_y}: {g} vs {w}"
                    );
                }
                // The plain loop agrees (float64 path).
                let k64 = k.generic(
                    &TensorBuf::from_parts(xs.clone(), x.iter().map(|&v| f64::from(v)).collect()),
                    &TensorBuf::from_parts(ys.clone(), y.iter().map(|&v| f64::from(v)).collect()),
                )?;
                for (g, w) in k64.data().iter().zip(&want) {
                    assert!((*g as f32 - w).abs() <= 1e-5 * (1.0 + w.abs()));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn mismatches_name_both_shapes() {
        let k = BatchMatMul {
            adj_x: false,
            adj_y: true,
            broadcast: true,
            folded: FoldedTransposes::default(),
        };
        assert_eq!(
            k.geometry(
                &Layout::contiguous(&[8, 128, 64]),
                &Layout::contiguous(&[8, 32, 128])
            )
            .err(),
            Some(OpError(
                "inner dimensions disagree: [8,128,64] x [8,32,128] (adj_y)".into()
            ))
        );
        assert_eq!(
            k.geometry(
                &Layout::contiguous(&[8, 3, 4]),
                &Layout::contiguous(&[4, 5, 4])
            )
            .err(),
            Some(OpError(
                "batch dimensions do not broadcast: [8,3,4] x [4,5,4] (adj_y)".into()
            ))
        );
        assert_eq!(
            k.geometry(&Layout::contiguous(&[4]), &Layout::contiguous(&[4, 5]))
                .err(),
            Some(OpError(
                "inputs must have rank >= 2: [4] x [4,5] (adj_y)".into()
            ))
        );
        let v1 = BatchMatMul {
            adj_x: false,
            adj_y: false,
            broadcast: false,
            folded: FoldedTransposes::default(),
        };
        assert_eq!(
            v1.geometry(
                &Layout::contiguous(&[1, 3, 4]),
                &Layout::contiguous(&[2, 4, 5])
            )
            .err(),
            Some(OpError(
                "batch dimensions must be equal: [1,3,4] x [2,4,5]".into()
            ))
        );
        assert!(matches!(
            v1.geometry(
                &Layout::contiguous(&[1 << 20, 1 << 20, 1]),
                &Layout::contiguous(&[1 << 20, 1, 1 << 20])
            ),
            Err(OpError(m)) if m.contains("memory budget")
        ));
    }

    #[test]
    fn integer_products() -> Result<(), OpError> {
        let k = BatchMatMul {
            adj_x: false,
            adj_y: false,
            broadcast: true,
            folded: FoldedTransposes::default(),
        };
        let x = Value::new(vec![1, 2, 2], vec![1i32, 2, 3, 4])?;
        let y = Value::new(vec![2, 2], vec![5i32, 6, 7, 8])?;
        let out = k.run(vec![x, y])?;
        assert_eq!(out[0].shape(), &[1, 2, 2]);
        assert_eq!(out[0].as_i32(), Some(&[19, 22, 43, 50][..]));
        Ok(())
    }

    /// Attention's transposes folded into the products give the bits of the products of the
    /// transposed copies, on odd shapes and on BERT's (4 heads of 64).
    #[test]
    fn folded_transposes_give_the_unfolded_bits() -> Result<(), OpError> {
        let perm = vec![0usize, 2, 1, 3];
        let perm64: Vec<i64> = vec![0, 2, 1, 3];
        let kernel = |adj_y: bool, folded: FoldedTransposes| BatchMatMul {
            adj_x: false,
            adj_y,
            broadcast: true,
            folded,
        };
        let bits = |t: &TensorBuf<f32>| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for &(b, s, h, d) in &[(2, 5, 3, 4), (1, 7, 2, 3), (3, 33, 4, 16), (2, 128, 4, 64)] {
            let shape = vec![b, s, h, d];
            let q = TensorBuf::from_parts(shape.clone(), values(b * s * h * d, 1));
            let k = TensorBuf::from_parts(shape.clone(), values(b * s * h * d, 2));
            let v = TensorBuf::from_parts(shape.clone(), values(b * s * h * d, 3));
            let plain = kernel(true, FoldedTransposes::default())
                .f32(&transpose(&q, &perm64)?, &transpose(&k, &perm64)?)?;
            let folded = kernel(
                true,
                FoldedTransposes {
                    inputs: [Some(perm.clone()), Some(perm.clone())],
                    output: None,
                },
            )
            .f32(&q, &k)?;
            assert_eq!(folded.shape(), &[b, h, s, s]);
            assert_eq!(bits(&folded), bits(&plain), "scores {shape:?}");
            let context = transpose(
                &kernel(false, FoldedTransposes::default())
                    .f32(&plain, &transpose(&v, &perm64)?)?,
                &perm64,
            )?;
            let folded = kernel(
                false,
                FoldedTransposes {
                    inputs: [None, Some(perm.clone())],
                    output: Some(perm.clone()),
                },
            )
            .f32(&plain, &v)?;
            assert_eq!(folded.shape(), &[b, s, h, d]);
            assert_eq!(bits(&folded), bits(&context), "context {shape:?}");
        }
        let q = TensorBuf::from_parts(vec![2, 3, 4], values(24, 1));
        let misfit = kernel(
            true,
            FoldedTransposes {
                inputs: [Some(perm.clone()), None],
                output: None,
            },
        );
        assert_eq!(
            misfit.f32(&q, &q).err(),
            Some(OpError(
                "the transpose folded into x has perm [0, 2, 1, 3], which does not fit its \
                 input's shape [2,3,4]"
                    .into()
            ))
        );
        Ok(())
    }
}
