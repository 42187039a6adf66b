//! `DepthwiseConv2dNative`: input [n,h,w,c], filter [kh,kw,c,m], output [n,oh,ow,c*m];
//! a direct loop over output rows, vectorized over channels. Taps accumulate in (ky, kx)
//! order with fused multiply-adds, as TensorFlow's kernel does, so results match it bit for
//! bit.

use ckpt_graph::Node;

use super::batch_norm::fma;
use super::window::{Geometry, Window};
use crate::ops::{
    expect_f32, fmt_shape, kernel, op_bail, parallel, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Depthwise {
        window: Window::from_node(node)?,
    })
}

#[derive(Debug)]
struct Depthwise {
    window: Window,
}

impl Kernel for Depthwise {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, f] = take_inputs(inputs)?;
        let (x, f) = (expect_f32(x, "input")?, expect_f32(f, "filter")?);
        Ok(vec![Value::F32(depthwise(&x, &f, &self.window)?)])
    }
}

fn depthwise(
    x: &TensorBuf<f32>,
    f: &TensorBuf<f32>,
    window: &Window,
) -> Result<TensorBuf<f32>, OpError> {
    let (&[n, h, w, c], &[kh, kw, fc, m]) = (x.shape(), f.shape()) else {
        op_bail!(
            "input must be NHWC and filter [kh,kw,c,m], got {} and {}",
            fmt_shape(x.shape()),
            fmt_shape(f.shape())
        );
    };
    if fc != c {
        op_bail!("filter has {fc} channels, input has {c}");
    }
    let Geometry {
        out: [oh, ow],
        pad_before: [pt, pl],
    } = window.geometry([h, w], [kh, kw])?;
    let cm = c * m;
    let mut out = vec![0.0f32; crate::ops::output_len(&[n, oh, ow, cm], 4)?];
    let (xd, fd) = (x.data(), f.data());
    let [sh, sw] = window.strides;
    let [dh, dw] = window.dilations;
    parallel::for_rows(&mut out, ow * cm, ow * cm * kh * kw, |row_index, row| {
        let (b, oy) = (row_index / oh, row_index % oh);
        for (ox, o) in row.chunks_mut(cm).enumerate() {
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
                    let xin = &xd[src..src + c];
                    let fk = &fd[(ky * kw + kx) * cm..(ky * kw + kx + 1) * cm];
                    if m == 1 {
                        for ((o, &xv), &fv) in o.iter_mut().zip(xin).zip(fk) {
                            *o = fma(xv, fv, *o);
                        }
                    } else {
                        for (ci, &xv) in xin.iter().enumerate() {
                            for mi in 0..m {
                                o[ci * m + mi] = fma(xv, fk[ci * m + mi], o[ci * m + mi]);
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(TensorBuf::from_parts(vec![n, oh, ow, cm], out))
}

#[cfg(test)]
mod tests {
    use super::super::conv2d::tests::values;
    use super::super::window::Padding;
    use super::*;

    #[test]
    fn depthwise_matches_reference() -> Result<(), OpError> {
        type Case = ([usize; 4], [usize; 4], Padding, usize, usize);
        let cases: &[Case] = &[
            ([2, 9, 9, 8], [3, 3, 8, 1], Padding::Same, 1, 1),
            ([1, 10, 7, 3], [3, 3, 3, 2], Padding::Same, 2, 1),
            ([1, 8, 8, 5], [3, 3, 5, 1], Padding::Valid, 1, 2),
            ([1, 1, 1, 1], [1, 1, 1, 1], Padding::Valid, 1, 1),
            ([0, 3, 3, 2], [3, 3, 2, 1], Padding::Same, 1, 1),
        ];
        for &(xs, fs, padding, s, d) in cases {
            let win = Window {
                strides: [s, s],
                dilations: [d, d],
                padding,
            };
            let xv = values(xs.iter().product(), 7);
            let fv = values(fs.iter().product(), 8);
            let got = depthwise(
                &TensorBuf::from_parts(xs.to_vec(), xv.clone()),
                &TensorBuf::from_parts(fs.to_vec(), fv.clone()),
                &win,
            )?;
            let [n, h, w, c] = xs;
            let [kh, kw, _, m] = fs;
            let g = win.geometry([h, w], [kh, kw])?;
            let [oh, ow] = g.out;
            assert_eq!(got.shape(), &[n, oh, ow, c * m]);
            for b in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ci in 0..c {
                            for mi in 0..m {
                                let mut acc = 0.0f64;
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy = (oy * s + ky * d) as i64 - g.pad_before[0] as i64;
                                        let ix = (ox * s + kx * d) as i64 - g.pad_before[1] as i64;
                                        if iy >= 0 && ix >= 0 && iy < h as i64 && ix < w as i64 {
                                            let xv = xv[((b * h + iy as usize) * w + ix as usize)
                                                * c
                                                + ci];
                                            acc += f64::from(xv)
                                                * f64::from(fv[((ky * kw + kx) * c + ci) * m + mi]);
                                        }
                                    }
                                }
                                let v = got.data()[((b * oh + oy) * ow + ox) * c * m + ci * m + mi];
                                assert!((f64::from(v) - acc).abs() <= 1e-5, "{v} vs {acc}");
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
