//! `BatchMatMul`, `BatchMatMulV2` and `BatchMatMulV3`: matrix products over leading batch
//! dimensions, with `adj_x` / `adj_y` (transposes, as the executor holds no complex types).
//! `BatchMatMul` needs equal batch dimensions; `V2` and `V3` broadcast them as numpy does.
//! `V3`'s separate input and output dtypes must all be the same here.
//!
//! float32 goes through the GEMM `MatMul` uses, with the transposes as strides: many small
//! products (attention heads) are spread over threads one product each, a few large ones
//! split their rows. Other numeric types use a plain loop.

use std::sync::Mutex;

use ckpt_graph::Node;
use rayon::prelude::*;

use crate::gemm::MatRef;
use crate::ops::broadcast::broadcast_shapes;
use crate::ops::math::matmul::{product, product_serial};
use crate::ops::{
    dtype_attr, fmt_shape, kernel, node_error, op_bail, output_len, parallel, take_inputs,
    BuildCtx, Built, Kernel, OpError,
};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
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
    })
}

#[derive(Debug)]
pub(crate) struct BatchMatMul {
    pub adj_x: bool,
    pub adj_y: bool,
    /// Whether batch dimensions broadcast (`V2`, `V3`) or must be equal (`BatchMatMul`).
    pub broadcast: bool,
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

/// The geometry of a batched product: `out[i] = x[x_batch(i)] · y[y_batch(i)]`, each
/// `m x k` times `k x n`.
#[derive(Debug, PartialEq)]
struct Geometry {
    m: usize,
    k: usize,
    n: usize,
    out_shape: Vec<usize>,
    /// For each output matrix, the index of the `x` and `y` matrices it multiplies.
    pairs: Vec<(usize, usize)>,
}

impl BatchMatMul {
    fn geometry(&self, xs: &[usize], ys: &[usize]) -> Result<Geometry, OpError> {
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
                    batch_index(&batch, x_batch, i),
                    batch_index(&batch, y_batch, i),
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

    fn f32(&self, x: &TensorBuf<f32>, y: &TensorBuf<f32>) -> Result<TensorBuf<f32>, OpError> {
        let g = self.geometry(x.shape(), y.shape())?;
        let (m, k, n) = (g.m, g.k, g.n);
        let mut out = vec![0.0f32; output_len(&g.out_shape, 4)?];
        if out.is_empty() {
            return Ok(TensorBuf::from_parts(g.out_shape, out));
        }
        let (xr, xc) = if self.adj_x { (k, m) } else { (m, k) };
        let (yr, yc) = if self.adj_y { (n, k) } else { (k, n) };
        let operands = |i: usize| {
            let (xi, yi) = g.pairs[i];
            (
                view(x.data(), xi, xr, xc, self.adj_x),
                view(y.data(), yi, yr, yc, self.adj_y),
            )
        };
        let threads = crate::ops::parallel::num_threads();
        let per_product = m * k * n;
        if g.pairs.len() >= threads && per_product * g.pairs.len() >= parallel::MIN_PARALLEL_WORK {
            // One product per task, each on one thread.
            let failure = Mutex::new(None);
            parallel::section(|| {
                out.par_chunks_mut(m * n).enumerate().for_each(|(i, o)| {
                    let (a, b) = operands(i);
                    if let Err(e) = product_serial(a, b, o) {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                    }
                })
            });
            if let Some(e) = failure.into_inner().ok().flatten() {
                return Err(e);
            }
        } else {
            // Few products: each splits its rows over the threads itself.
            for (i, o) in out.chunks_mut(m * n).enumerate() {
                let (a, b) = operands(i);
                product(a, b, o)?;
            }
        }
        Ok(TensorBuf::from_parts(g.out_shape, out))
    }

    fn generic<T: Num>(&self, x: &TensorBuf<T>, y: &TensorBuf<T>) -> Result<TensorBuf<T>, OpError> {
        let g = self.geometry(x.shape(), y.shape())?;
        let (m, k, n) = (g.m, g.k, g.n);
        let mut out = vec![T::ZERO; output_len(&g.out_shape, std::mem::size_of::<T>())?];
        let (xd, yd) = (x.data(), y.data());
        for (o, &(xi, yi)) in out.chunks_mut((m * n).max(1)).zip(&g.pairs) {
            let (xm, ym) = (&xd[xi * m * k..], &yd[yi * k * n..]);
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

/// Matrix `i` of a batch of row-major `rows x cols` matrices, transposed when `adj`.
fn view(data: &[f32], i: usize, rows: usize, cols: usize, adj: bool) -> MatRef<'_> {
    let size = rows * cols;
    let mat = MatRef::row_major(&data[i * size..(i + 1) * size], rows, cols);
    if adj {
        mat.t()
    } else {
        mat
    }
}

/// Which matrix of an input with batch dimensions `input` (right-aligned, size-1 dimensions
/// broadcast) output matrix `i` of batch shape `out` reads.
fn batch_index(out: &[usize], input: &[usize], i: usize) -> usize {
    let offset = out.len() - input.len();
    let mut rem = i;
    let mut index = 0;
    let mut stride = 1;
    for d in (0..out.len()).rev() {
        let coord = rem % out[d].max(1);
        rem /= out[d].max(1);
        if d >= offset {
            let size = input[d - offset];
            if size != 1 {
                index += coord * stride;
            }
            stride *= size;
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
        };
        assert_eq!(
            k.geometry(&[8, 128, 64], &[8, 32, 128]).err(),
            Some(OpError(
                "inner dimensions disagree: [8,128,64] x [8,32,128] (adj_y)".into()
            ))
        );
        assert_eq!(
            k.geometry(&[8, 3, 4], &[4, 5, 4]).err(),
            Some(OpError(
                "batch dimensions do not broadcast: [8,3,4] x [4,5,4] (adj_y)".into()
            ))
        );
        assert_eq!(
            k.geometry(&[4], &[4, 5]).err(),
            Some(OpError(
                "inputs must have rank >= 2: [4] x [4,5] (adj_y)".into()
            ))
        );
        let v1 = BatchMatMul {
            adj_x: false,
            adj_y: false,
            broadcast: false,
        };
        assert_eq!(
            v1.geometry(&[1, 3, 4], &[2, 4, 5]).err(),
            Some(OpError(
                "batch dimensions must be equal: [1,3,4] x [2,4,5]".into()
            ))
        );
        assert!(matches!(
            v1.geometry(&[1 << 20, 1 << 20, 1], &[1 << 20, 1, 1 << 20]),
            Err(OpError(m)) if m.contains("memory budget")
        ));
    }

    #[test]
    fn integer_products() -> Result<(), OpError> {
        let k = BatchMatMul {
            adj_x: false,
            adj_y: false,
            broadcast: true,
        };
        let x = Value::new(vec![1, 2, 2], vec![1i32, 2, 3, 4])?;
        let y = Value::new(vec![2, 2], vec![5i32, 6, 7, 8])?;
        let out = k.run(vec![x, y])?;
        assert_eq!(out[0].shape(), &[1, 2, 2]);
        assert_eq!(out[0].as_i32(), Some(&[19, 22, 43, 50][..]));
        Ok(())
    }
}
