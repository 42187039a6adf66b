//! `Conv2D` (NHWC input, HWIO filter) as im2col + sgemm over blocks of output pixels, spread
//! over threads; a 1x1 stride-1 unpadded convolution is a single matrix product. Bias and
//! activation can be applied to each block while it is in cache (see the plan's fusion).

use ckpt_graph::Node;

use super::activation::Activation;
use super::window::{Geometry, Window};
use crate::gemm::{sgemm, MatRef};
use crate::ops::{
    expect_f32, fmt_shape, kernel, op_bail, parallel, BuildCtx, Built, Kernel, OpError,
};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Conv2D {
        window: Window::from_node(node)?,
        epilogue: Epilogue::default(),
    })
}

/// Work applied to each output block after the product: a per-channel bias, then an activation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Epilogue {
    pub bias: bool,
    pub activation: Option<Activation>,
}

impl Epilogue {
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
    }
}

#[derive(Debug)]
pub(crate) struct Conv2D {
    pub window: Window,
    pub epilogue: Epilogue,
}

impl Kernel for Conv2D {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let expected = if self.epilogue.bias { 3 } else { 2 };
        if inputs.len() != expected {
            op_bail!("expected {expected} inputs, got {}", inputs.len());
        }
        let mut it = inputs.into_iter();
        let (Some(x), Some(f)) = (it.next(), it.next()) else {
            op_bail!("missing inputs");
        };
        let x = expect_f32(x, "input")?;
        let f = expect_f32(f, "filter")?;
        let bias = it.next().map(|b| expect_f32(b, "bias")).transpose()?;
        Ok(vec![Value::F32(conv2d(
            &x,
            &f,
            &self.window,
            self.epilogue,
            bias.as_ref().map(|b| b.data()),
        )?)])
    }
}

/// Target size of one block's im2col buffer, in floats (about a quarter of L2).
const PATCH_FLOATS: usize = 1 << 16;

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
    let rows = n * oh * ow;
    let k = kh * kw * c;
    let mut out = vec![0.0f32; rows * co];
    if rows == 0 || co == 0 {
        return Ok(TensorBuf::from_parts(vec![n, oh, ow, co], out));
    }
    let filter = MatRef::row_major(f.data(), k, co);
    let pointwise =
        kh == 1 && kw == 1 && window.strides == [1, 1] && oh == h && ow == w && pt == 0 && pl == 0;
    let xd = x.data();
    let [sh, sw] = window.strides;
    let [dh, dw] = window.dilations;
    let block_rows = (PATCH_FLOATS / k.max(1)).max(8);
    let result = std::sync::Mutex::new(Ok(()));
    parallel::for_row_blocks(&mut out, co, k * co, block_rows, |first, block| {
        let nrows = block.len() / co;
        let status = if pointwise {
            let a = MatRef::row_major(&xd[first * c..(first + nrows) * c], nrows, c);
            sgemm(a, filter, block, co, false)
        } else {
            let mut patch = vec![0.0f32; nrows * k];
            for (r, prow) in patch.chunks_mut(k).enumerate() {
                let pix = first + r;
                let (b, rem) = (pix / (oh * ow), pix % (oh * ow));
                let (oy, ox) = (rem / ow, rem % ow);
                for ky in 0..kh {
                    let iy = (oy * sh + ky * dh) as isize - pt as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..kw {
                        let ix = (ox * sw + kx * dw) as isize - pl as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        let src = ((b * h + iy as usize) * w + ix as usize) * c;
                        let dst = (ky * kw + kx) * c;
                        prow[dst..dst + c].copy_from_slice(&xd[src..src + c]);
                    }
                }
            }
            sgemm(
                MatRef::row_major(&patch, nrows, k),
                filter,
                block,
                co,
                false,
            )
        };
        match status {
            Ok(()) => epilogue.apply(block, bias),
            Err(e) => {
                if let Ok(mut slot) = result.lock() {
                    *slot = Err(e);
                }
            }
        }
    });
    result
        .into_inner()
        .map_err(|_| OpError("a convolution task panicked".into()))??;
    Ok(TensorBuf::from_parts(vec![n, oh, ow, co], out))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::window::Padding;
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
    fn mismatched_channels_are_errors() {
        let win = Window {
            strides: [1, 1],
            dilations: [1, 1],
            padding: Padding::Same,
        };
        let x = TensorBuf::from_parts(vec![1, 4, 4, 2], vec![0.0; 32]);
        let f = TensorBuf::from_parts(vec![3, 3, 3, 1], vec![0.0; 27]);
        assert!(conv2d(&x, &f, &win, Epilogue::default(), None).is_err());
    }
}
