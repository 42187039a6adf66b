//! `Conv2D` (NHWC or NCHW input, HWIO filter) as im2col + sgemm over blocks of output pixels, spread
//! over threads; a 1x1 stride-1 unpadded convolution is a single matrix product, and an
//! input with few channels goes through the direct kernel of [`super::conv_direct`]. Bias and
//! activation can be applied to each block while it is in cache (see the plan's fusion).

#![allow(unsafe_code)] // one `set_len` over the output the GEMM filled, see `conv2d`

use std::mem::MaybeUninit;

use ckpt_graph::Node;

use super::activation::{Activation, GeluErf};
use super::conv_direct::Direct;
use super::window::{Geometry, Layout, Padding, Window};
use crate::gemm::{sgemm_uninit, MatRef, Threads};
use crate::ops::{
    expect_f32, fmt_shape, kernel, op_bail, parallel, BuildCtx, Built, Kernel, OpError,
};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    build_fused(node, Epilogue::default(), None)
}

/// A `Conv2D`, with a bias (an extra, third input) and activation applied to each output
/// block when `epilogue` asks for them, and `padding` (a folded `Pad`) in place of the
/// node's own.
pub(crate) fn build_fused(
    node: &Node,
    epilogue: Epilogue,
    padding: Option<Padding>,
) -> Result<Built, Error> {
    let layout = Layout::from_node(node)?;
    let mut window = Window::from_node(node, layout)?;
    if let Some(p) = padding {
        window.padding = p;
    }
    kernel(Conv2D {
        window,
        layout,
        epilogue,
    })
}

/// Work applied to each output block after the product: a per-channel bias, then an activation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Epilogue {
    pub bias: bool,
    pub activation: Option<Activation>,
    /// A GELU spelled out in ops after the bias (only `MatMul` chains absorb one).
    pub gelu: Option<GeluErf>,
}

/// The f32 inputs of a kernel with an epilogue: two operands, then the bias when fused.
pub(crate) type EpilogueInputs = (TensorBuf<f32>, TensorBuf<f32>, Option<TensorBuf<f32>>);

impl Epilogue {
    /// Checks the input count (two, or three with a fused bias) and takes the inputs as f32,
    /// naming the operands `names` in errors.
    pub(crate) fn take_inputs(
        &self,
        inputs: Vec<Value>,
        names: [&str; 2],
    ) -> Result<EpilogueInputs, OpError> {
        let expected = if self.bias { 3 } else { 2 };
        if inputs.len() != expected {
            op_bail!("expected {expected} inputs, got {}", inputs.len());
        }
        let mut it = inputs.into_iter();
        let (Some(first), Some(second)) = (it.next(), it.next()) else {
            op_bail!("missing inputs");
        };
        let first = expect_f32(first, names[0])?;
        let second = expect_f32(second, names[1])?;
        let bias = it.next().map(|b| expect_f32(b, "bias")).transpose()?;
        Ok((first, second, bias))
    }

    /// Adds `bias` (one value per channel) to every row of `block` and applies the activation.
    pub(crate) fn apply(&self, block: &mut [f32], bias: Option<&[f32]>) {
        if let Some(bias) = bias {
            for row in block.chunks_mut(bias.len().max(1)) {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v += b;
                }
            }
        }
        if let Some(act) = self.activation {
            act.apply_f32(block);
        }
        if let Some(gelu) = self.gelu {
            gelu.apply_f32(block);
        }
    }
}

#[derive(Debug)]
pub(crate) struct Conv2D {
    pub window: Window,
    /// The input's and output's layout; the fusion only gives an NHWC one an epilogue.
    pub layout: Layout,
    pub epilogue: Epilogue,
}

impl Kernel for Conv2D {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let (x, f, bias) = self.epilogue.take_inputs(inputs, ["input", "filter"])?;
        let x = self.layout.to_nhwc(x, "input")?;
        let y = conv2d(
            &x,
            &f,
            &self.window,
            self.epilogue,
            bias.as_ref().map(|b| b.data()),
        )?;
        Ok(vec![Value::F32(self.layout.nhwc_to_layout(y)?)])
    }
}

pub(crate) fn conv2d(
    x: &TensorBuf<f32>,
    f: &TensorBuf<f32>,
    window: &Window,
    epilogue: Epilogue,
    bias: Option<&[f32]>,
) -> Result<TensorBuf<f32>, OpError> {
    let (&[n, h, w, c], &[kh, kw, fc, co]) = (x.shape(), f.shape()) else {
        op_bail!(
            "input must be NHWC and filter HWIO (rank 4), got {} and {}",
            fmt_shape(x.shape()),
            fmt_shape(f.shape())
        );
    };
    if fc != c {
        op_bail!(
            "filter has {fc} input channels, input has {c}: {} and {}",
            fmt_shape(x.shape()),
            fmt_shape(f.shape())
        );
    }
    if let Some(b) = bias {
        if b.len() != co {
            op_bail!(
                "bias has {} elements, the convolution has {co} output channels",
                b.len()
            );
        }
    }
    let Geometry {
        out: [oh, ow],
        pad_before: [pt, pl],
    } = window.geometry([h, w], [kh, kw])?;
    let total = crate::ops::output_len(&[n, oh, ow, co], 4)?;
    let rows = n * oh * ow;
    let k = kh * kw * c;
    if rows == 0 || co == 0 {
        return Ok(TensorBuf::from_parts(
            vec![n, oh, ow, co],
            vec![0.0f32; total],
        ));
    }
    let pointwise =
        kh == 1 && kw == 1 && window.strides == [1, 1] && oh == h && ow == w && pt == 0 && pl == 0;
    if Direct::applies(c, co, window.dilations[1], f.data().len()) {
        return Direct {
            x: x.data(),
            f: f.data(),
            bias,
            n,
            h,
            w,
            c,
            kh,
            kw,
            co,
            oh,
            ow,
            stride: window.strides,
            dilation_h: window.dilations[0],
            pad: [pt, pl],
        }
        .run(epilogue);
    }
    // The GEMM stores every output element, block by block: the buffer is never zeroed.
    let mut out: Vec<f32> = crate::memory::f32_buffer(total);
    let spare = &mut out.spare_capacity_mut()[..total];
    let filter = MatRef::row_major(f.data(), k, co);
    let xd = x.data();
    let g = Im2col {
        h,
        w,
        c,
        kh,
        kw,
        oh,
        ow,
        stride: window.strides,
        dilation: window.dilations,
        pad: [pt, pl],
    };
    // Few input channels: lay patches out tap-major, so an output row's worth of one tap is
    // one (often contiguous) run of the input. Otherwise pixel-major, copying channel runs.
    let tap_major = c < 8;
    // Small filters: blocks of output pixels are spread over the threads, one product each.
    // A large filter (k*co of 2^14 or more) makes each block's product large: blocks then run
    // in turn and gemm splits each product over the threads.
    let kn = k * co;
    let spread_blocks = kn * 2 < MM_THREADING;
    let block_rows = if spread_blocks {
        ((MM_THREADING - kn) / k.max(1))
            .min(PATCH_FLOATS / k.max(1))
            .max(8)
    } else {
        (PATCH_FLOATS / k.max(1)).max(64)
    };
    let threads = if spread_blocks {
        Threads::One
    } else {
        Threads::Pool
    };
    let result = std::sync::Mutex::new(Ok(()));
    let process = |first: usize, block: &mut [MaybeUninit<f32>]| {
        let nrows = block.len() / co;
        let status = if pointwise {
            let a = MatRef::row_major(&xd[first * c..(first + nrows) * c], nrows, c);
            sgemm_uninit(a, filter, block, threads)
        } else {
            let mut patch = vec![0.0f32; nrows * k];
            let a = if tap_major {
                g.fill_tap_major(xd, first, nrows, &mut patch);
                MatRef {
                    data: &patch,
                    rows: nrows,
                    cols: k,
                    row_stride: 1,
                    col_stride: nrows,
                }
            } else {
                g.fill_pixel_major(xd, first, nrows, &mut patch);
                MatRef::row_major(&patch, nrows, k)
            };
            sgemm_uninit(a, filter, block, threads)
        };
        match status {
            Ok(block) => epilogue.apply(block, bias),
            Err(e) => {
                if let Ok(mut slot) = result.lock() {
                    *slot = Err(e);
                }
            }
        }
    };
    if spread_blocks {
        parallel::for_row_blocks(spare, co, kn, block_rows, process);
    } else {
        for (i, block) in spare.chunks_mut(block_rows * co).enumerate() {
            process(i * block_rows, block);
        }
    }
    result
        .into_inner()
        .map_err(|_| OpError("a convolution task panicked".into()))??;
    // SAFETY: the blocks above partition the first `total` elements of the spare capacity,
    // and each was handed to `process`, whose `sgemm_uninit` stored every element of it: no
    // error was recorded (checked just above), so all `total` elements are initialized.
    unsafe { out.set_len(total) };
    Ok(TensorBuf::from_parts(vec![n, oh, ow, co], out))
}

/// Target size of one block's im2col buffer, in floats (about a quarter of L2).
const PATCH_FLOATS: usize = 1 << 16;

/// Twice the filter size (`k*co`) from which a convolution's blocks run in turn, each product
/// split over the threads by gemm, rather than spread over the threads one block each.
const MM_THREADING: usize = 1 << 15;

/// Convolution geometry for building im2col patch matrices.
struct Im2col {
    h: usize,
    w: usize,
    c: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 2],
}

impl Im2col {
    /// Input row of output row `oy` for kernel row `ky`, if inside the input.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.stride[0] + ky * self.dilation[0]).checked_sub(self.pad[0])?;
        (iy < self.h).then_some(iy)
    }

    /// The kernel columns `kx` whose input column `ox*sw + kx*dw - pl` is inside the input.
    fn valid_taps(&self, ox: usize) -> (usize, usize) {
        let (sw, dw, pl) = (self.stride[1], self.dilation[1], self.pad[1]);
        let start = ox * sw; // input column of kx = 0, before padding
        let lo = pl.saturating_sub(start).div_ceil(dw);
        // ix < w  <=>  start + kx*dw < w + pl
        let hi = (self.w + pl)
            .saturating_sub(start)
            .div_ceil(dw)
            .min(self.kw);
        (lo.min(hi), hi)
    }

    /// The output columns `ox` (in `ox0..ox1`) whose input column for kernel column `kx` is
    /// inside the input.
    fn valid_columns(&self, kx: usize, ox0: usize, ox1: usize) -> (usize, usize) {
        let (sw, dw, pl) = (self.stride[1], self.dilation[1], self.pad[1]);
        let shift = kx * dw; // ix = ox*sw + shift - pl
        let lo = pl.saturating_sub(shift).div_ceil(sw);
        let hi = (self.w + pl).saturating_sub(shift).div_ceil(sw);
        (lo.clamp(ox0, ox1), hi.clamp(ox0, ox1))
    }

    /// Patch rows `first..first+nrows`, row-major: row r holds taps (ky, kx, ci).
    fn fill_pixel_major(&self, x: &[f32], first: usize, nrows: usize, patch: &mut [f32]) {
        let (c, kw) = (self.c, self.kw);
        let k = self.kh * kw * c;
        for (r, prow) in patch.chunks_mut(k).enumerate().take(nrows) {
            let pix = first + r;
            let (b, rem) = (pix / (self.oh * self.ow), pix % (self.oh * self.ow));
            let (oy, ox) = (rem / self.ow, rem % self.ow);
            let (lo, hi) = self.valid_taps(ox);
            if lo >= hi {
                continue;
            }
            for ky in 0..self.kh {
                let Some(iy) = self.input_row(oy, ky) else {
                    continue;
                };
                let row = (b * self.h + iy) * self.w;
                if self.dilation[1] == 1 {
                    // Consecutive taps read consecutive input pixels: one copy per kernel row.
                    let ix = ox * self.stride[1] + lo - self.pad[1];
                    let src = &x[(row + ix) * c..(row + ix + hi - lo) * c];
                    prow[(ky * kw + lo) * c..(ky * kw + hi) * c].copy_from_slice(src);
                } else {
                    for kx in lo..hi {
                        let ix = ox * self.stride[1] + kx * self.dilation[1] - self.pad[1];
                        let dst = (ky * kw + kx) * c;
                        prow[dst..dst + c].copy_from_slice(&x[(row + ix) * c..(row + ix + 1) * c]);
                    }
                }
            }
        }
    }

    /// Patch rows `first..first+nrows`, tap-major: element (r, tap*c + ci) at
    /// `patch[(tap*c + ci) * nrows + r]`.
    fn fill_tap_major(&self, x: &[f32], first: usize, nrows: usize, patch: &mut [f32]) {
        let (c, kw, ow) = (self.c, self.kw, self.ow);
        let mut r = 0;
        while r < nrows {
            let pix = first + r;
            let (b, rem) = (pix / (self.oh * ow), pix % (self.oh * ow));
            let (oy, ox0) = (rem / ow, rem % ow);
            // A run of output pixels on the same output row.
            let ox1 = (ox0 + nrows - r).min(ow);
            for ky in 0..self.kh {
                let Some(iy) = self.input_row(oy, ky) else {
                    continue;
                };
                let row = (b * self.h + iy) * self.w;
                for kx in 0..kw {
                    let (lo, hi) = self.valid_columns(kx, ox0, ox1);
                    if lo >= hi {
                        continue;
                    }
                    let ix_lo = lo * self.stride[1] + kx * self.dilation[1] - self.pad[1];
                    for ci in 0..c {
                        let start = ((ky * kw + kx) * c + ci) * nrows + r + (lo - ox0);
                        let dst = &mut patch[start..start + (hi - lo)];
                        if c == 1 && self.stride[1] == 1 {
                            dst.copy_from_slice(&x[row + ix_lo..row + ix_lo + (hi - lo)]);
                        } else {
                            let step = self.stride[1] * c;
                            let base = (row + ix_lo) * c + ci;
                            for (j, d) in dst.iter_mut().enumerate() {
                                *d = x[base + j * step];
                            }
                        }
                    }
                }
            }
            r += ox1 - ox0;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
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

    /// Direct convolution, straight from the definition.
    fn reference(
        x: &[f32],
        xs: [usize; 4],
        f: &[f32],
        fs: [usize; 4],
        win: &Window,
    ) -> Result<(Vec<usize>, Vec<f32>), OpError> {
        let [n, h, w, c] = xs;
        let [kh, kw, _, co] = fs;
        let g = win.geometry([h, w], [kh, kw])?;
        let [oh, ow] = g.out;
        let mut out = vec![0.0f32; n * oh * ow * co];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for o in 0..co {
                        let mut s = 0.0f64;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * win.strides[0] + ky * win.dilations[0]) as i64
                                    - g.pad_before[0] as i64;
                                let ix = (ox * win.strides[1] + kx * win.dilations[1]) as i64
                                    - g.pad_before[1] as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                    continue;
                                }
                                for ci in 0..c {
                                    let xv = x[((b * h + iy as usize) * w + ix as usize) * c + ci];
                                    let fv = f[((ky * kw + kx) * c + ci) * co + o];
                                    s += f64::from(xv) * f64::from(fv);
                                }
                            }
                        }
                        out[((b * oh + oy) * ow + ox) * co + o] = s as f32;
                    }
                }
            }
        }
        Ok((vec![n, oh, ow, co], out))
    }

    #[test]
    fn conv2d_matches_reference() -> Result<(), OpError> {
        type Case = ([usize; 4], [usize; 4], Padding, usize, usize);
        let cases: &[Case] = &[
            ([2, 28, 28, 1], [5, 5, 1, 16], Padding::Same, 1, 1),
            ([3, 14, 14, 16], [3, 3, 16, 32], Padding::Same, 2, 1),
            ([1, 7, 9, 3], [3, 2, 3, 5], Padding::Valid, 1, 2),
            ([2, 5, 5, 4], [1, 1, 4, 7], Padding::Valid, 1, 1),
            (
                [1, 6, 6, 2],
                [3, 3, 2, 2],
                Padding::Explicit([(1, 2), (0, 1)]),
                2,
                1,
            ),
            ([1, 1, 1, 1], [1, 1, 1, 1], Padding::Same, 1, 1),
            ([0, 4, 4, 2], [3, 3, 2, 3], Padding::Same, 1, 1),
            ([2, 17, 3, 5], [4, 1, 5, 6], Padding::Same, 3, 1),
            ([1, 9, 9, 8], [3, 3, 8, 4], Padding::Same, 1, 2),
            ([2, 9, 10, 9], [3, 3, 9, 4], Padding::Valid, 2, 1),
            ([4, 29, 31, 3], [3, 3, 3, 8], Padding::Same, 1, 1),
            ([3, 29, 31, 1], [5, 5, 1, 6], Padding::Same, 2, 1),
            // The direct kernel (few input channels, output channels a multiple of 8): an
            // RGB stem, 24 output channels (a block of 16 and one of 8) with uneven padding,
            // and a window wider than the input.
            ([2, 19, 20, 3], [3, 3, 3, 16], Padding::Same, 2, 1),
            (
                [1, 13, 11, 5],
                [3, 3, 5, 24],
                Padding::Explicit([(2, 1), (0, 3)]),
                1,
                1,
            ),
            ([2, 3, 2, 2], [5, 5, 2, 8], Padding::Same, 1, 1),
        ];
        for &(xs, fs, padding, s, d) in cases {
            let win = Window {
                strides: [s, s],
                dilations: [d, d],
                padding,
            };
            let xv = values(xs.iter().product(), 3);
            let fv = values(fs.iter().product(), 4);
            let x = TensorBuf::from_parts(xs.to_vec(), xv.clone());
            let f = TensorBuf::from_parts(fs.to_vec(), fv.clone());
            let got = conv2d(&x, &f, &win, Epilogue::default(), None)?;
            let (shape, want) = reference(&xv, xs, &fv, fs, &win)?;
            assert_eq!(got.shape(), shape.as_slice(), "{xs:?} {fs:?}");
            for (a, b) in got.data().iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{xs:?} {fs:?}: {a} vs {b}"
                );
            }
            // Fused bias + relu equals the unfused ops.
            let bias = values(fs[3], 5);
            let fused = conv2d(
                &x,
                &f,
                &win,
                Epilogue {
                    bias: true,
                    activation: Some(Activation::Relu),
                    gelu: None,
                },
                Some(&bias),
            )?;
            for (i, (a, b)) in fused.data().iter().zip(got.data()).enumerate() {
                assert_eq!(*a, (b + bias[i % fs[3]]).max(0.0));
            }
        }
        Ok(())
    }

    #[test]
    fn nchw_is_the_nhwc_result_transposed() -> Result<(), OpError> {
        use crate::ops::array::transpose::transpose;
        let win = Window {
            strides: [2, 1],
            dilations: [1, 1],
            padding: Padding::Same,
        };
        let xs = [2, 3, 7, 5]; // NCHW
        let x = TensorBuf::from_parts(xs.to_vec(), values(xs.iter().product(), 7));
        let f = TensorBuf::from_parts(vec![3, 2, 3, 4], values(72, 8));
        let nhwc = conv2d(
            &transpose(&x, &[0, 2, 3, 1])?,
            &f,
            &win,
            Epilogue::default(),
            None,
        )?;
        let k = Conv2D {
            window: win,
            layout: Layout::Nchw,
            epilogue: Epilogue::default(),
        };
        let got = k.run(vec![Value::F32(x), Value::F32(f.clone())])?;
        let want = transpose(&nhwc, &[0, 3, 1, 2])?;
        assert_eq!(got[0].shape(), &[2, 4, 4, 5]);
        assert_eq!(got[0].as_f32(), Some(want.data()));
        let flat = Value::new(vec![3, 7, 5], vec![0.0f32; 105]).map_err(OpError::from)?;
        assert_eq!(
            k.run(vec![flat, Value::F32(f)]).err(),
            Some(OpError("input must be NCHW (rank 4), got [3,7,5]".into()))
        );
        Ok(())
    }

    #[test]
    fn fused_relu_keeps_nan_and_clears_negative_zero() {
        // As the unfused Relu/Relu6 kernels (and TensorFlow): NaN stays NaN, -0.0 becomes +0.0.
        let run = |activation| {
            let mut block = [f32::NAN, -0.0, -1.0, 0.5, 7.0, f32::NEG_INFINITY];
            Epilogue {
                bias: false,
                activation: Some(activation),
                gelu: None,
            }
            .apply(&mut block, None);
            block.map(f32::to_bits)
        };
        let bits = |v: [f32; 6]| v.map(f32::to_bits);
        let nan = f32::NAN;
        assert_eq!(run(Activation::Relu), bits([nan, 0.0, 0.0, 0.5, 7.0, 0.0]));
        assert_eq!(run(Activation::Relu6), bits([nan, 0.0, 0.0, 0.5, 6.0, 0.0]));
    }

    #[test]
    fn mismatched_channels_are_errors() {
        let win = Window {
            strides: [1, 1],
            dilations: [1, 1],
            padding: Padding::Same,
        };
        let x = TensorBuf::from_parts(vec![1, 4, 4, 2], vec![0.0; 32]);
        let f = TensorBuf::from_parts(vec![3, 3, 3, 1], vec![0.0; 27]);
        assert_eq!(
            conv2d(&x, &f, &win, Epilogue::default(), None).err(),
            Some(OpError(
                "filter has 3 input channels, input has 2: [1,4,4,2] and [3,3,3,1]".into()
            ))
        );
    }
}
