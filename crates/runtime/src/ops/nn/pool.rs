//! `MaxPool` and `AvgPool` (NHWC, or NCHW transposed around the NHWC loop). Padding cells never win a max, and a SAME average divides
//! by the number of cells inside the input, as TensorFlow does. `MaxPool` over channels a
//! multiple of 8 takes 8 lanes per AVX2 `maxps` when the CPU has it.
#![allow(unsafe_code)] // AVX2 loads and stores of 8-float slices

use ckpt_graph::Node;

use super::window::{ksize, Geometry, Layout, Window};
use crate::ops::{
    expect_f32, fmt_shape, kernel, op_bail, parallel, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let layout = Layout::from_node(node)?;
    kernel(Pool {
        max: node.op == "MaxPool",
        ksize: ksize(node, layout)?,
        window: Window::from_node(node, layout)?,
        layout,
    })
}

#[derive(Debug)]
struct Pool {
    max: bool,
    ksize: [usize; 2],
    window: Window,
    layout: Layout,
}

impl Kernel for Pool {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let x = self.layout.to_nhwc(expect_f32(x, "input")?, "input")?;
        let y = pool(&x, self.max, self.ksize, &self.window)?;
        Ok(vec![Value::F32(self.layout.nhwc_to_layout(y)?)])
    }
}

fn pool(
    x: &TensorBuf<f32>,
    max: bool,
    [kh, kw]: [usize; 2],
    window: &Window,
) -> Result<TensorBuf<f32>, OpError> {
    let &[n, h, w, c] = x.shape() else {
        op_bail!("input must be NHWC (rank 4), got {}", fmt_shape(x.shape()));
    };
    let Geometry {
        out: [oh, ow],
        pad_before: [pt, pl],
    } = window.geometry([h, w], [kh, kw])?;
    let total = crate::ops::output_len(&[n, oh, ow, c], 4)?;
    let g = PoolRows {
        x: x.data(),
        max,
        h,
        w,
        c,
        oh,
        window: [kh, kw],
        stride: window.strides,
        pad: [pt, pl],
    };
    let out = parallel::rows_zeroed_in_task(total, ow * c, ow * c * kh * kw, |i, row| {
        g.row(i, row);
    });
    Ok(TensorBuf::from_parts(vec![n, oh, ow, c], out))
}

/// What pooling one output row needs.
struct PoolRows<'a> {
    x: &'a [f32],
    max: bool,
    h: usize,
    w: usize,
    c: usize,
    oh: usize,
    window: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
}

impl PoolRows<'_> {
    /// `MaxPool` output row `row_index` for channels a multiple of 8: each pixel's channels
    /// in blocks of 8 lanes, `maxps(v, m)` per cell (`v > m ? v : m`, as the scalar loop: a NaN
    /// never wins), from `f32::MIN`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn max_row_avx2(&self, row_index: usize, row: &mut [f32]) {
        use std::arch::x86_64::{_mm256_loadu_ps, _mm256_max_ps, _mm256_set1_ps, _mm256_storeu_ps};
        let (h, w, c) = (self.h, self.w, self.c);
        let ([kh, kw], [sh, sw], [pt, pl]) = (self.window, self.stride, self.pad);
        let (b, oy) = (row_index / self.oh, row_index % self.oh);
        let ylo = (oy * sh).saturating_sub(pt).min(h);
        let yhi = (oy * sh + kh).saturating_sub(pt).min(h);
        for (ox, o) in row.chunks_exact_mut(c).enumerate() {
            let xlo = (ox * sw).saturating_sub(pl).min(w);
            let xhi = (ox * sw + kw).saturating_sub(pl).min(w);
            for cb in (0..c).step_by(8) {
                let mut m = _mm256_set1_ps(f32::MIN);
                for iy in ylo..yhi {
                    for ix in xlo..xhi {
                        let src = ((b * h + iy) * w + ix) * c + cb;
                        let cell = &self.x[src..src + 8];
                        // SAFETY: `cell` holds 8 floats.
                        m = _mm256_max_ps(unsafe { _mm256_loadu_ps(cell.as_ptr()) }, m);
                    }
                }
                let dst = &mut o[cb..cb + 8];
                // SAFETY: `dst` holds 8 floats.
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), m) };
            }
        }
    }

    /// Output row `row_index` (image `row_index / oh`, output row `row_index % oh`).
    fn row(&self, row_index: usize, row: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if self.max
                && self.c.is_multiple_of(8)
                && self.c > 0
                && std::arch::is_x86_feature_detected!("avx2")
            {
                // SAFETY: the CPU supports AVX2 (checked just above), all `max_row_avx2`
                // requires.
                unsafe { self.max_row_avx2(row_index, row) };
                return;
            }
        }
        let (h, w, c) = (self.h, self.w, self.c);
        let ([kh, kw], [sh, sw], [pt, pl]) = (self.window, self.stride, self.pad);
        let (b, oy) = (row_index / self.oh, row_index % self.oh);
        let y0 = (oy * sh) as isize - pt as isize;
        let (ylo, yhi) = (
            y0.max(0) as usize,
            ((y0 + kh as isize).min(h as isize)).max(0) as usize,
        );
        for (ox, o) in row.chunks_mut(c.max(1)).enumerate() {
            let x0 = (ox * sw) as isize - pl as isize;
            let (xlo, xhi) = (
                x0.max(0) as usize,
                ((x0 + kw as isize).min(w as isize)).max(0) as usize,
            );
            // Eigen's lowest finite value, as TensorFlow's MaxPool starts: NaN never wins, and
            // a window of NaN (or -inf) alone gives -FLT_MAX.
            o.fill(if self.max { f32::MIN } else { 0.0 });
            for iy in ylo..yhi {
                for ix in xlo..xhi {
                    let src = ((b * h + iy) * w + ix) * c;
                    let xin = &self.x[src..src + c];
                    if self.max {
                        for (o, &v) in o.iter_mut().zip(xin) {
                            *o = if v > *o { v } else { *o };
                        }
                    } else {
                        for (o, &v) in o.iter_mut().zip(xin) {
                            *o += v;
                        }
                    }
                }
            }
            if !self.max {
                let count = (yhi.saturating_sub(ylo) * xhi.saturating_sub(xlo)) as f32;
                let inv = if count > 0.0 { 1.0 / count } else { 0.0 };
                o.iter_mut().for_each(|v| *v *= inv);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv2d::tests::values;
    use super::super::window::Padding;
    use super::*;

    #[test]
    fn nchw_is_the_nhwc_result_transposed() -> Result<(), OpError> {
        use crate::ops::array::transpose::transpose;
        let window = Window {
            strides: [2, 2],
            dilations: [1, 1],
            padding: Padding::Same,
        };
        let xs = [2, 3, 7, 5]; // NCHW
        let x = TensorBuf::from_parts(xs.to_vec(), values(xs.iter().product(), 5));
        for max in [true, false] {
            let k = Pool {
                max,
                ksize: [3, 2],
                window,
                layout: Layout::Nchw,
            };
            let got = k.run(vec![Value::F32(x.clone())])?;
            let nhwc = pool(&transpose(&x, &[0, 2, 3, 1])?, max, [3, 2], &window)?;
            let want = transpose(&nhwc, &[0, 3, 1, 2])?;
            assert_eq!(got[0].shape(), &[2, 3, 4, 3]);
            assert_eq!(got[0].as_f32(), Some(want.data()));
        }
        Ok(())
    }

    #[test]
    fn max_pool_over_eight_channels_skips_nan_as_the_scalar_loop() -> Result<(), OpError> {
        // Two cells of 8 channels: lane 0 is NaN in the first cell only, lane 1 NaN in both.
        let mut xv = vec![1.0f32; 16];
        xv[0] = f32::NAN;
        xv[1] = f32::NAN;
        xv[9] = f32::NAN;
        let x = TensorBuf::from_parts(vec![1, 1, 2, 8], xv);
        let win = Window {
            strides: [1, 1],
            dilations: [1, 1],
            padding: Padding::Valid,
        };
        let got = pool(&x, true, [1, 2], &win)?;
        let mut want = vec![1.0f32; 8];
        want[1] = f32::MIN;
        assert_eq!(got.data(), want.as_slice());
        Ok(())
    }

    #[test]
    fn pooling_matches_reference() -> Result<(), OpError> {
        let cases: &[([usize; 4], [usize; 2], usize, Padding)] = &[
            ([2, 28, 28, 16], [2, 2], 2, Padding::Valid),
            ([1, 9, 8, 24], [3, 3], 2, Padding::Same),
            ([1, 7, 7, 3], [2, 2], 2, Padding::Same),
            ([1, 7, 9, 2], [3, 3], 2, Padding::Same),
            ([3, 5, 5, 1], [3, 3], 1, Padding::Same),
            ([1, 1, 1, 1], [1, 1], 1, Padding::Valid),
            ([0, 4, 4, 2], [2, 2], 2, Padding::Valid),
        ];
        for &(xs, [kh, kw], s, padding) in cases {
            let win = Window {
                strides: [s, s],
                dilations: [1, 1],
                padding,
            };
            let xv = values(xs.iter().product(), 11);
            let x = TensorBuf::from_parts(xs.to_vec(), xv.clone());
            let g = win.geometry([xs[1], xs[2]], [kh, kw])?;
            for max in [true, false] {
                let got = pool(&x, max, [kh, kw], &win)?;
                let [n, h, w, c] = xs;
                let [oh, ow] = g.out;
                assert_eq!(got.shape(), &[n, oh, ow, c]);
                for b in 0..n {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for ci in 0..c {
                                let mut cells = Vec::new();
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy = (oy * s + ky) as i64 - g.pad_before[0] as i64;
                                        let ix = (ox * s + kx) as i64 - g.pad_before[1] as i64;
                                        if iy >= 0 && ix >= 0 && iy < h as i64 && ix < w as i64 {
                                            cells.push(
                                                xv[((b * h + iy as usize) * w + ix as usize) * c
                                                    + ci],
                                            );
                                        }
                                    }
                                }
                                let want = if max {
                                    cells.iter().copied().fold(f32::NEG_INFINITY, f32::max)
                                } else {
                                    cells.iter().sum::<f32>() / cells.len() as f32
                                };
                                let v = got.data()[((b * oh + oy) * ow + ox) * c + ci];
                                assert!(
                                    (v - want).abs() <= 1e-6,
                                    "{xs:?} max={max}: {v} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
