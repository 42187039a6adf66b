//! `DepthwiseConv2dNative`: input [n,h,w,c], filter [kh,kw,c,m], output [n,oh,ow,c*m] (NCHW
//! inputs and outputs are transposed around the NHWC loop); a direct loop over output rows.
//! With a multiplier of 1, channels a multiple of 8 and AVX2+FMA, each block of 8 channels
//! is accumulated in registers for four output pixels at a time, one fused multiply-add per
//! tap in `(ky, kx)` order (`Rows::channel_blocks_avx2`; blocks of 16 channels with
//! AVX-512, the same operations in the same order); otherwise each pixel's taps are
//! accumulated in `(ky, kx)` order into a vector of all its channels. A fused bias
//! (a folded batch norm) seeds the accumulators and a fused activation runs on each row while
//! it is in cache. Padding, TensorFlow's SAME/VALID or explicit (a folded `Pad`), is handled
//! by skipping taps outside the input, never by copying it.
//!
//! float16 and bfloat16 inputs accumulate in the narrow type, as TensorFlow's CPU kernel does
//! (`DepthwiseConv2DKernel` in `tensorflow/core/kernels/depthwise_conv_op.cc`: an accumulator
//! packet of `T`, `vaccum = pmadd(filter, input, vaccum)` once per tap in `(ky, kx)` order, and
//! Eigen's `pmadd` for `half`/`bfloat16` packets computes in float32 and rounds the sum to `T`
//! to nearest even). A product of two narrow values is exact in float32, so each tap is
//! `acc = round(acc + x * f)`; taps in the padding add zero and are skipped.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use ckpt_graph::Node;

use super::activation::Activation;
use super::conv2d::Epilogue;
use super::window::{Geometry, Layout, Padding, Window};
use crate::half_precision::{narrow, widen};
use crate::ops::{fmt_shape, kernel, op_bail, parallel, BuildCtx, Built, Kernel, OpError};
use crate::value::TensorBuf;
use crate::{DType, Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    build_fused(node, Epilogue::default(), None)
}

/// A depthwise convolution with a bias (an extra, third input) and activation applied to each
/// output row when `epilogue` asks for them, and `padding` (a folded `Pad`) in place of the
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
    kernel(Depthwise {
        window,
        layout,
        epilogue,
    })
}

#[derive(Debug)]
struct Depthwise {
    window: Window,
    /// The input's and output's layout; the fusion only gives an NHWC one an epilogue.
    layout: Layout,
    epilogue: Epilogue,
}

impl Kernel for Depthwise {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        // The plan hands float16/bfloat16 inputs over as they are (TensorFlow accumulates in
        // them); the loop sees them widened to float32 and rounds after each tap.
        let narrow_dtype = inputs
            .iter()
            .map(Value::dtype)
            .find(|d| matches!(d, DType::Float16 | DType::BFloat16));
        let inputs = match narrow_dtype {
            Some(_) => inputs.into_iter().map(|v| widen(&v).unwrap_or(v)).collect(),
            None => inputs,
        };
        let round: Option<fn(f32) -> f32> = match narrow_dtype {
            Some(DType::Float16) => Some(|v| half::f16::from_f32(v).to_f32()),
            Some(_) => Some(|v| half::bf16::from_f32(v).to_f32()),
            None => None,
        };
        let (x, f, bias) = self.epilogue.take_inputs(inputs, ["input", "filter"])?;
        let x = self.layout.to_nhwc(x, "input")?;
        let y = depthwise(
            &x,
            &f,
            &self.window,
            self.epilogue,
            bias.as_ref().map(|b| b.data()),
            round,
        )?;
        let y = Value::F32(self.layout.nhwc_to_layout(y)?);
        // Exact: every accumulator value is already one of the narrow type.
        Ok(vec![match narrow_dtype {
            Some(to) => narrow(y, to),
            None => y,
        }])
    }
}

/// The NHWC depthwise convolution of `x` [n,h,w,c] by `f` [kh,kw,c,m]: [n,oh,ow,c*m]; with
/// `round`, each accumulator is rounded by it after every tap (a narrow type's accumulation).
fn depthwise(
    x: &TensorBuf<f32>,
    f: &TensorBuf<f32>,
    window: &Window,
    epilogue: Epilogue,
    bias: Option<&[f32]>,
    round: Option<fn(f32) -> f32>,
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
    let cm = c * m;
    if let Some(b) = bias {
        if b.len() != cm {
            op_bail!(
                "bias has {} elements, the convolution has {cm} output channels",
                b.len()
            );
        }
    }
    let Geometry {
        out: [oh, ow],
        pad_before: [pt, pl],
    } = window.geometry([h, w], [kh, kw])?;
    let total = crate::ops::output_len(&[n, oh, ow, cm], 4)?;
    // Every path of `Rows::row` stores every element of its row: the buffer is not zeroed.
    let mut out: Vec<f32> = crate::memory::f32_buffer(total);
    let g = Rows {
        x: x.data(),
        f: f.data(),
        bias,
        h,
        w,
        c,
        m,
        kh,
        kw,
        oh,
        stride: window.strides,
        dilation: window.dilations,
        pad: [pt, pl],
        round,
        activation: epilogue.activation,
    };
    let spare = &mut out.spare_capacity_mut()[..total];
    let work = parallel::vectorized_work(ow * cm * kh * kw);
    parallel::for_rows(spare, ow * cm, work, |row_index, row| {
        g.row(row_index, row);
    });
    // SAFETY: `for_rows` handed every row of the first `total` spare elements (n*oh rows of
    // ow*cm) to `Rows::row`, which stores every element of the row it is given.
    unsafe { out.set_len(total) };
    Ok(TensorBuf::from_parts(vec![n, oh, ow, cm], out))
}

/// float32 lanes in one AVX2 register: the channel block of the vectorized kernel.
const LANES: usize = 8;

/// One output row's valid kernel rows `(ky * kw, first input pixel of the input row)` and
/// where the row's output starts.
struct Pixel<'a> {
    rows: &'a [(usize, usize)],
    out: *mut f32,
    /// An [`Activation::in_register`] activation to apply before storing.
    act: Option<Activation>,
}

/// What computing one output row needs.
struct Rows<'a> {
    x: &'a [f32],
    f: &'a [f32],
    bias: Option<&'a [f32]>,
    h: usize,
    w: usize,
    c: usize,
    m: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 2],
    /// Rounds each accumulator after every tap (float16/bfloat16 accumulation), when set.
    round: Option<fn(f32) -> f32>,
    /// The fused activation: applied in registers by `channel_blocks_avx2` when
    /// [`Activation::in_register`], otherwise to each finished row.
    activation: Option<Activation>,
}

impl Rows<'_> {
    /// Output row `row_index` (image `row_index / oh`, output row `row_index % oh`), the
    /// activation applied: stores every element of `row`.
    fn row(&self, row_index: usize, row: &mut [MaybeUninit<f32>]) {
        #[cfg(target_arch = "x86_64")]
        {
            if self.round.is_none()
                && self.m == 1
                && self.c.is_multiple_of(LANES)
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above), which is what
                // `channel_blocks_avx2` requires beyond its own bounds checks; `row` is valid
                // for `row.len()` writes.
                if unsafe {
                    self.channel_blocks_avx2(row_index, row.as_mut_ptr().cast(), row.len())
                } {
                    if let Some(act) = self.activation.filter(|a| !a.in_register()) {
                        // SAFETY: `channel_blocks_avx2` returned true: it stored every element.
                        act.apply_f32(unsafe {
                            &mut *(row as *mut [MaybeUninit<f32>] as *mut [f32])
                        });
                    }
                    return;
                }
            }
        }
        row.fill(MaybeUninit::new(0.0));
        // SAFETY: every element was just stored.
        let row = unsafe { &mut *(row as *mut [MaybeUninit<f32>] as *mut [f32]) };
        self.row_filled(row_index, row);
        if let Some(act) = self.activation {
            act.apply_f32(row);
        }
    }

    /// Output row `row_index` into `row` (initialized) on the paths other than
    /// `channel_blocks_avx2`.
    fn row_filled(&self, row_index: usize, row: &mut [f32]) {
        if let Some(round) = self.round {
            self.row_with(row_index, row, round);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above), all `row_avx2`
                // requires; its body is safe code.
                unsafe { self.row_avx2(row_index, row) };
                return;
            }
        }
        self.row_portable(row_index, row);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn row_avx2(&self, row_index: usize, row: &mut [f32]) {
        self.row_portable(row_index, row);
    }

    /// Output row `row_index` for a multiplier of 1 and channels a multiple of [`LANES`]:
    /// for each block of 8 channels, the output pixels whose taps all fall inside the input
    /// are computed four at a time, each accumulator in a register seeded with the bias and
    /// updated by one fused multiply-add per tap in `(ky, kx)` order; the pixels near the
    /// edges skip the taps in the padding and take four channel blocks at a time, so that
    /// their accumulation chains overlap too. Every output value sees the same operations in
    /// the same order on either path. Returns whether it stored all `len` values at `out`:
    /// false, without writing, when the lengths do not fit the geometry (the caller's checks
    /// make that impossible).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and `out` must be valid for `len` writes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn channel_blocks_avx2(&self, row_index: usize, out: *mut f32, len: usize) -> bool {
        use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_loadu_ps, _mm256_storeu_ps};
        let c = self.c;
        let (b, oy) = (row_index / self.oh, row_index % self.oh);
        let ow = len / c.max(1);
        let [sy, sx] = self.stride;
        let [dy, dx] = self.dilation;
        let [pt, pl] = self.pad;
        // Every index below stays inside these lengths: input pixels (b, iy < h, ix < w),
        // taps ky < kh, kx < kw, output pixels ox < ow, channels cb + 8 <= c.
        let fits = c.is_multiple_of(LANES)
            && self.m == 1
            && len == ow * c
            && (b + 1)
                .checked_mul(self.h * self.w * c)
                .is_some_and(|n| n <= self.x.len())
            && self.f.len() == self.kh * self.kw * c
            && self.bias.is_none_or(|bias| bias.len() == c);
        if !fits || c == 0 {
            return false;
        }
        let mut rows = Vec::with_capacity(self.kh);
        for ky in 0..self.kh {
            if let Some(iy) = (oy * sy + ky * dy).checked_sub(pt) {
                if iy < self.h {
                    rows.push((ky * self.kw, (b * self.h + iy) * self.w));
                }
            }
        }
        // Output columns whose every tap is inside the input: ox*sx >= pl and
        // ox*sx + (kw-1)*dx - pl <= w - 1.
        let first = pl.div_ceil(sx).min(ow);
        let end = match (self.w + pl).checked_sub(self.kw.saturating_sub(1) * dx + 1) {
            Some(last_start) => (last_start / sx + 1).clamp(first, ow),
            None => first,
        };
        let act = self.activation.filter(|a| a.in_register());
        let pixel = Pixel {
            rows: &rows,
            out,
            act,
        };
        for ox in (0..first).chain(end..ow) {
            let mut cb = 0;
            while cb + 4 * LANES <= c {
                // SAFETY: ox < ow and cb + 32 <= c; the rest as checked above.
                unsafe { self.edge_pixel::<4>(&pixel, ox, cb) };
                cb += 4 * LANES;
            }
            while cb < c {
                // SAFETY: as above, with cb + 8 <= c.
                unsafe { self.edge_pixel::<1>(&pixel, ox, cb) };
                cb += LANES;
            }
        }
        if c.is_multiple_of(2 * LANES) && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F checked just above; the rest as checked at the top.
            unsafe { self.interior_avx512(&pixel, first, end) };
            return true;
        }
        let (x, f, kw) = (self.x.as_ptr(), self.f.as_ptr(), self.kw);
        let step = sx * c;
        for cb in (0..c).step_by(LANES) {
            // SAFETY: bias has c elements and cb + 8 <= c.
            let seed = unsafe { self.seed(cb) };
            let mut ox = first;
            while ox + 4 <= end {
                let (mut a0, mut a1, mut a2, mut a3) = (seed, seed, seed, seed);
                for &(tap_row, base) in &rows {
                    for kx in 0..kw {
                        // SAFETY: first <= ox and ox + 3 < end, so every input column
                        // (ox+i)*sx + kx*dx - pl lies in 0..w; base is image b's input row
                        // iy < h; the tap index is below kh*kw and cb + 8 <= c.
                        unsafe {
                            let p = x.add((base + ox * sx + kx * dx - pl) * c + cb);
                            let fv = _mm256_loadu_ps(f.add((tap_row + kx) * c + cb));
                            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p), fv, a0);
                            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p.add(step)), fv, a1);
                            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(p.add(2 * step)), fv, a2);
                            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(p.add(3 * step)), fv, a3);
                        }
                    }
                }
                if let Some(act) = act {
                    (a0, a1, a2, a3) = (
                        act.apply_m256(a0),
                        act.apply_m256(a1),
                        act.apply_m256(a2),
                        act.apply_m256(a3),
                    );
                }
                // SAFETY: ox + 3 < ow and cb + 8 <= c, inside `row`.
                unsafe {
                    let o = out.add(ox * c + cb);
                    _mm256_storeu_ps(o, a0);
                    _mm256_storeu_ps(o.add(c), a1);
                    _mm256_storeu_ps(o.add(2 * c), a2);
                    _mm256_storeu_ps(o.add(3 * c), a3);
                }
                ox += 4;
            }
            for ox in ox..end {
                // SAFETY: ox < ow and cb + 8 <= c.
                unsafe { self.edge_pixel::<1>(&pixel, ox, cb) };
            }
        }
        true
    }

    /// Output columns `first..end` (those whose taps all fall inside the input) of one output
    /// row, channels in blocks of 16: four pixels at a time in AVX-512 registers, the rest one
    /// at a time as at the edges. The same multiply-adds in the same order as the AVX2 loop.
    ///
    /// # Safety
    /// AVX-512F, AVX2 and FMA; `channel_blocks_avx2`'s length checks passed; `c` is a
    /// multiple of 16; `first..end` are the interior columns of this row.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn interior_avx512(&self, pixel: &Pixel<'_>, first: usize, end: usize) {
        use std::arch::x86_64::{
            _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_setzero_ps, _mm512_storeu_ps,
        };
        const WIDE: usize = 16;
        let (c, kw, sx, dx, pl) = (
            self.c,
            self.kw,
            self.stride[1],
            self.dilation[1],
            self.pad[1],
        );
        let (x, f, out) = (self.x.as_ptr(), self.f.as_ptr(), pixel.out);
        let step = sx * c;
        for cb in (0..c).step_by(WIDE) {
            let seed = match self.bias {
                // SAFETY: bias has c elements and cb + 16 <= c.
                Some(bias) => unsafe { _mm512_loadu_ps(bias.as_ptr().add(cb)) },
                None => _mm512_setzero_ps(),
            };
            let mut ox = first;
            while ox + 4 <= end {
                let mut acc = [seed; 4];
                for &(tap_row, base) in pixel.rows {
                    for kx in 0..kw {
                        // SAFETY: first <= ox and ox + 3 < end, so every input column
                        // (ox+i)*sx + kx*dx - pl lies in 0..w; base is image b's input row
                        // iy < h; the tap index is below kh*kw and cb + 16 <= c.
                        unsafe {
                            let p = x.add((base + ox * sx + kx * dx - pl) * c + cb);
                            let fv = _mm512_loadu_ps(f.add((tap_row + kx) * c + cb));
                            for (i, a) in acc.iter_mut().enumerate() {
                                *a = _mm512_fmadd_ps(_mm512_loadu_ps(p.add(i * step)), fv, *a);
                            }
                        }
                    }
                }
                for (i, mut a) in acc.into_iter().enumerate() {
                    if let Some(act) = pixel.act {
                        a = act.apply_m512(a);
                    }
                    // SAFETY: ox + i < ow and cb + 16 <= c, inside the output row.
                    unsafe { _mm512_storeu_ps(out.add((ox + i) * c + cb), a) };
                }
                ox += 4;
            }
            for ox in ox..end {
                // SAFETY: ox < ow and cb + 16 <= c.
                unsafe { self.edge_pixel::<2>(pixel, ox, cb) };
            }
        }
    }

    /// The bias of channels `cb..cb + 8` (zeros without a bias).
    ///
    /// # Safety
    /// AVX2; `cb + 8 <= c` and a bias, if any, has `c` elements.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn seed(&self, cb: usize) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::{_mm256_loadu_ps, _mm256_setzero_ps};
        match self.bias {
            // SAFETY: the caller's contract.
            Some(bias) => unsafe { _mm256_loadu_ps(bias.as_ptr().add(cb)) },
            None => _mm256_setzero_ps(),
        }
    }

    /// Channels `cb..cb + 8*G` of output pixel `ox`, taps outside the input skipped.
    ///
    /// # Safety
    /// AVX2 and FMA; `channel_blocks_avx2`'s length checks passed; `ox < ow`, `cb + 8*G <= c`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn edge_pixel<const G: usize>(&self, pixel: &Pixel<'_>, ox: usize, cb: usize) {
        use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_loadu_ps, _mm256_storeu_ps};
        let c = self.c;
        let (x, f) = (self.x.as_ptr(), self.f.as_ptr());
        let mut acc = [std::arch::x86_64::_mm256_setzero_ps(); G];
        for (g, a) in acc.iter_mut().enumerate() {
            // SAFETY: cb + 8*g + 8 <= c.
            *a = unsafe { self.seed(cb + g * LANES) };
        }
        for &(tap_row, base) in pixel.rows {
            for kx in 0..self.kw {
                let Some(ix) =
                    (ox * self.stride[1] + kx * self.dilation[1]).checked_sub(self.pad[1])
                else {
                    continue;
                };
                if ix >= self.w {
                    continue;
                }
                // SAFETY: base + ix is an input pixel of image b (iy < h, ix < w), the tap
                // index is below kh*kw, and cb + 8*G <= c.
                unsafe {
                    let xp = x.add((base + ix) * c + cb);
                    let fp = f.add((tap_row + kx) * c + cb);
                    for (g, a) in acc.iter_mut().enumerate() {
                        let xv = _mm256_loadu_ps(xp.add(g * LANES));
                        *a = _mm256_fmadd_ps(xv, _mm256_loadu_ps(fp.add(g * LANES)), *a);
                    }
                }
            }
        }
        for (g, mut a) in acc.into_iter().enumerate() {
            if let Some(act) = pixel.act {
                a = act.apply_m256(a);
            }
            // SAFETY: ox < ow and cb + 8*G <= c, inside the output row.
            unsafe { _mm256_storeu_ps(pixel.out.add(ox * c + cb + g * LANES), a) };
        }
    }

    #[inline(always)]
    fn row_portable(&self, row_index: usize, row: &mut [f32]) {
        self.row_with(row_index, row, |v| v);
    }

    /// Output row `row_index`, each accumulator replaced by `round` of itself after each tap.
    #[inline(always)]
    fn row_with(&self, row_index: usize, row: &mut [f32], round: impl Fn(f32) -> f32) {
        let (c, m) = (self.c, self.m);
        let cm = c * m;
        let (b, oy) = (row_index / self.oh, row_index % self.oh);
        // The kernel rows inside the input for this output row.
        let rows: Vec<(usize, usize)> = (0..self.kh)
            .filter_map(|ky| {
                let iy = (oy * self.stride[0] + ky * self.dilation[0]).checked_sub(self.pad[0])?;
                (iy < self.h).then_some((ky, (b * self.h + iy) * self.w))
            })
            .collect();
        for (ox, o) in row.chunks_exact_mut(cm).enumerate() {
            match self.bias {
                Some(bias) => o.copy_from_slice(bias),
                None => o.fill(0.0),
            }
            for &(ky, base) in &rows {
                for kx in 0..self.kw {
                    let Some(ix) =
                        (ox * self.stride[1] + kx * self.dilation[1]).checked_sub(self.pad[1])
                    else {
                        continue;
                    };
                    if ix >= self.w {
                        continue;
                    }
                    let src = (base + ix) * c;
                    let xin = &self.x[src..src + c];
                    let tap = (ky * self.kw + kx) * cm;
                    let fk = &self.f[tap..tap + cm];
                    if m == 1 {
                        for ((o, &xv), &fv) in o.iter_mut().zip(xin).zip(fk) {
                            *o = round(*o + xv * fv);
                        }
                    } else {
                        for (ci, &xv) in xin.iter().enumerate() {
                            let (oc, fc) =
                                (&mut o[ci * m..(ci + 1) * m], &fk[ci * m..(ci + 1) * m]);
                            for (o, &fv) in oc.iter_mut().zip(fc) {
                                *o = round(*o + xv * fv);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::activation::Activation;
    use super::super::conv2d::tests::values;
    use super::*;

    #[test]
    fn nchw_is_the_nhwc_result_transposed() -> Result<(), OpError> {
        use crate::ops::array::transpose::transpose;
        let window = Window {
            strides: [1, 2],
            dilations: [1, 1],
            padding: Padding::Valid,
        };
        let xs = [1, 3, 6, 7]; // NCHW
        let x = TensorBuf::from_parts(xs.to_vec(), values(xs.iter().product(), 2));
        let f = TensorBuf::from_parts(vec![2, 3, 3, 2], values(36, 3));
        let k = Depthwise {
            window,
            layout: Layout::Nchw,
            epilogue: Epilogue::default(),
        };
        let got = k.run(vec![Value::F32(x.clone()), Value::F32(f.clone())])?;
        let nhwc = depthwise(
            &transpose(&x, &[0, 2, 3, 1])?,
            &f,
            &window,
            Epilogue::default(),
            None,
            None,
        )?;
        let want = transpose(&nhwc, &[0, 3, 1, 2])?;
        assert_eq!(got[0].shape(), &[1, 6, 5, 3]);
        assert_eq!(got[0].as_f32(), Some(want.data()));
        Ok(())
    }

    #[test]
    fn depthwise_matches_reference() -> Result<(), OpError> {
        type Case = ([usize; 4], [usize; 4], Padding, usize, usize);
        let cases: &[Case] = &[
            ([2, 9, 9, 8], [3, 3, 8, 1], Padding::Same, 1, 1),
            ([1, 10, 7, 3], [3, 3, 3, 2], Padding::Same, 2, 1),
            ([1, 8, 8, 5], [3, 3, 5, 1], Padding::Valid, 1, 2),
            ([1, 1, 1, 1], [1, 1, 1, 1], Padding::Valid, 1, 1),
            ([0, 3, 3, 2], [3, 3, 2, 1], Padding::Same, 1, 1),
            ([2, 17, 15, 24], [3, 3, 24, 1], Padding::Same, 2, 1),
            (
                [1, 13, 13, 17],
                [3, 3, 17, 1],
                Padding::Explicit([(0, 1), (0, 1)]),
                2,
                1,
            ),
            // The vectorized path (channels a multiple of 8): dilated with uneven padding,
            // and a window wider than the input (no pixel away from the edges).
            (
                [1, 11, 12, 16],
                [3, 3, 16, 1],
                Padding::Explicit([(2, 0), (1, 2)]),
                1,
                2,
            ),
            ([3, 7, 3, 8], [5, 5, 8, 1], Padding::Same, 2, 1),
            ([2, 6, 9, 40], [3, 3, 40, 1], Padding::Same, 1, 1),
            (
                [1, 6, 5, 9],
                [3, 3, 9, 1],
                Padding::Explicit([(1, 1), (2, 0)]),
                1,
                1,
            ),
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
                Epilogue::default(),
                None,
                None,
            )?;
            // Fused bias + ReLU6 equals the unfused ops.
            let bias = values(xs[3] * fs[3], 9);
            let fused = depthwise(
                &TensorBuf::from_parts(xs.to_vec(), xv.clone()),
                &TensorBuf::from_parts(fs.to_vec(), fv.clone()),
                &win,
                Epilogue {
                    bias: true,
                    activation: Some(Activation::Relu6),
                    gelu: None,
                },
                Some(&bias),
                None,
            )?;
            for (i, (a, b)) in fused.data().iter().zip(got.data()).enumerate() {
                let want = (b + bias[i % bias.len()]).clamp(0.0, 6.0);
                assert!((a - want).abs() <= 1e-6, "{a} vs {want}");
            }
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

    /// The vectorized path's arithmetic in plain code: each output value starts from its bias
    /// (or zero) and takes one fused multiply-add per tap inside the input, in `(ky, kx)` order.
    #[test]
    fn vectorized_path_is_plain_fused_multiply_adds_bit_for_bit() -> Result<(), OpError> {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return Ok(());
        }
        type Case = ([usize; 4], [usize; 2], Padding, usize, usize);
        let cases: &[Case] = &[
            ([2, 13, 14, 48], [3, 3], Padding::Same, 1, 1),
            (
                [1, 12, 11, 16],
                [3, 3],
                Padding::Explicit([(0, 1), (0, 1)]),
                2,
                1,
            ),
            (
                [1, 9, 10, 72],
                [5, 5],
                Padding::Explicit([(3, 1), (2, 4)]),
                1,
                2,
            ),
            // A kernel 18 rows high: most output rows see only part of it.
            ([1, 20, 6, 16], [18, 3], Padding::Same, 1, 1),
        ];
        for (i, &([n, h, w, c], [kh, kw], padding, s, d)) in cases.iter().enumerate() {
            let win = Window {
                strides: [s, s],
                dilations: [d, d],
                padding,
            };
            let xv = values(n * h * w * c, 20 + i as u64);
            let fv = values(kh * kw * c, 21 + i as u64);
            let bias = values(c, 22 + i as u64);
            let got = depthwise(
                &TensorBuf::from_parts(vec![n, h, w, c], xv.clone()),
                &TensorBuf::from_parts(vec![kh, kw, c, 1], fv.clone()),
                &win,
                Epilogue {
                    bias: true,
                    activation: None,
                    gelu: None,
                },
                Some(&bias),
                None,
            )?;
            let g = win.geometry([h, w], [kh, kw])?;
            let [oh, ow] = g.out;
            let [pt, pl] = g.pad_before;
            let mut want = Vec::new();
            for b in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ci in 0..c {
                            let mut acc = bias[ci];
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * s + ky * d).checked_sub(pt).filter(|&v| v < h);
                                    let ix = (ox * s + kx * d).checked_sub(pl).filter(|&v| v < w);
                                    if let (Some(iy), Some(ix)) = (iy, ix) {
                                        let xv = xv[((b * h + iy) * w + ix) * c + ci];
                                        acc = xv.mul_add(fv[(ky * kw + kx) * c + ci], acc);
                                    }
                                }
                            }
                            want.push(acc);
                        }
                    }
                }
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(got.data()), bits(&want), "case {i}");
        }
        Ok(())
    }
}
