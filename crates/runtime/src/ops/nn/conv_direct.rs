//! A direct NHWC convolution for inputs with few channels (a network's first layer, such as
//! MobileNet's 3x3 stride-2 convolution of an RGB image), where im2col would copy each input
//! value `kh*kw` times into a patch matrix only `kh*kw*c` columns wide, and for any filter
//! small enough to stay in cache (up to [`MAX_FILTER`] elements), where packing the operands
//! for a blocked GEMM costs more than it saves.
//!
//! Output pixels are computed four at a time along an output row, output channels in blocks
//! of 16 (then 8), or with AVX-512 eight at a time by 32 or 16 output channels (an 8-channel
//! tail still in AVX2): the accumulators stay in registers, each tap `(ky, kx, ci)` is one
//! broadcast input value times a vector of filter values, added with a fused multiply-add in
//! `(ky, kx, ci)` order starting from zero, as the im2col product accumulates its columns. The
//! bias is added to each finished sum, as the separate epilogue pass does, and a Relu or
//! Relu6 is applied before the store (other activations run over each finished row after).
//! Both widths give the same bits. Kernel rows that
//! fall in the top or bottom padding are skipped; columns in the left or right padding are
//! read as zeros from a padded copy of the row's input lines, as im2col's zero-filled patches
//! (and TensorFlow's padded input) give them.
//!
//! A 1x1 stride-1 convolution with a small filter is a matrix product of the `[n*h*w, c]`
//! input and the `[c, co]` filter: it takes the same register tiles without any copy.
#![allow(unsafe_code)] // SIMD intrinsics over pointers, and the output written before `set_len`

use std::mem::MaybeUninit;

use super::activation::Activation;
use super::conv2d::Epilogue;
use crate::ops::{parallel, OpError};
use crate::value::TensorBuf;

/// float32 lanes in one AVX2 register.
const LANES: usize = 8;

/// Largest number of input channels the direct kernel takes; more go through im2col.
pub(crate) const MAX_CHANNELS: usize = 7;

/// The geometry of one NHWC convolution with unit dilation along the width.
pub(crate) struct Direct<'a> {
    pub x: &'a [f32],
    /// HWIO: `[kh, kw, c, co]`.
    pub f: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub kh: usize,
    pub kw: usize,
    pub co: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: [usize; 2],
    /// Dilation along the height (the width's is 1).
    pub dilation_h: usize,
    pub pad: [usize; 2],
}

/// Largest filter (`kh*kw*c*co` floats, 1 MiB, half of a 2 MiB L2 cache) taken through the direct kernel when the
/// input has more than [`MAX_CHANNELS`] channels: each tile of pixels streams through the
/// whole filter, which must stay in cache; larger ones go through im2col and a blocked GEMM.
pub(crate) const MAX_FILTER: usize = 1 << 18;

/// Output pixels per task of a 1x1 convolution, at most.
const POINTWISE_BLOCK: usize = 512;

/// Output pixels of the widest (AVX-512) tile.
const TILE_PIXELS: usize = 8;

/// Multiply-adds from which a pointwise convolution with few pixels splits its output
/// channels over threads (about 10 µs of one core's work; a thread's hand-over to a spinning
/// worker costs a few µs).
const CHANNEL_SPLIT_WORK: usize = 1 << 18;

impl Direct<'_> {
    /// Whether the direct kernel computes this convolution on this CPU: few input channels,
    /// or a filter (`filter_len = kh*kw*c*co` elements) of at most [`MAX_FILTER`];
    /// output channels a multiple of 8; unit width dilation; AVX2 and FMA.
    pub(crate) fn applies(c: usize, co: usize, dilation_w: usize, filter_len: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let shape_fits =
                (1..=MAX_CHANNELS).contains(&c) || (c >= 1 && filter_len <= MAX_FILTER);
            shape_fits
                && co.is_multiple_of(LANES)
                && co > 0
                && dilation_w == 1
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (c, co, dilation_w, filter_len);
            false
        }
    }

    /// Whether this is a 1x1 stride-1 convolution without padding: a matrix product of the
    /// `[n*h*w, c]` input and the `[c, co]` filter.
    fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && [self.oh, self.ow] == [self.h, self.w]
    }

    /// The convolution `[n, oh, ow, co]`, the epilogue's activation applied to each output
    /// row. Errors when the slices do not match the geometry or [`Direct::applies`] is false.
    pub(crate) fn run(&self, epilogue: Epilogue) -> Result<TensorBuf<f32>, OpError> {
        let (n, h, w, c, co) = (self.n, self.h, self.w, self.c, self.co);
        let shape = [n, self.oh, self.ow, co];
        let total = crate::ops::output_len(&shape, 4)?;
        let pointwise = self.is_pointwise();
        let lengths_fit = Some(self.x.len()) == n.checked_mul(h * w * c)
            && Some(self.f.len()) == self.kh.checked_mul(self.kw * c * co)
            && self.bias.is_none_or(|b| b.len() == co);
        if !lengths_fit || !Self::applies(c, co, 1, self.f.len()) || self.stride.contains(&0) {
            return Err(OpError(
                "direct convolution: inputs do not match the geometry".into(),
            ));
        }
        // Relu and Relu6 are applied in registers as the tiles are stored; others after.
        let in_register = epilogue.activation.filter(|a| a.in_register());
        let activate = |block: &mut [f32]| {
            if let Some(act) = epilogue.activation.filter(|a| !a.in_register()) {
                act.apply_f32(block);
            }
            if let Some(gelu) = epilogue.gelu {
                gelu.apply_f32(block);
            }
        };
        let mut out: Vec<f32> = crate::memory::f32_buffer(total);
        let spare = &mut out.spare_capacity_mut()[..total];
        let pixels = n * h * w;
        let threads = parallel::num_threads();
        if pointwise && threads > 1 && self.splits_by_channels(pixels, threads) {
            // Few pixels, a large filter (late layers at batch 1): each thread takes all the
            // pixels and a contiguous share of the output channels, so that it reads only its
            // share of the filter. Splitting the pixels instead would have every thread
            // stream the whole filter for a part-filled tile.
            let groups = co.div_ceil(16);
            let per_task = groups.div_ceil(threads);
            let base = parallel::TaskOutput::new(spare.as_mut_ptr().cast::<f32>());
            parallel::tasks(groups.div_ceil(per_task), |t| {
                let channels = t * per_task * 16..((t + 1) * per_task * 16).min(co);
                #[cfg(target_arch = "x86_64")]
                {
                    // SAFETY: `applies` checked AVX2 and FMA above, and the lengths; the
                    // output holds all `pixels` rows of `co`, and each task stores only its
                    // own channels (16-aligned ranges that do not overlap) of every row.
                    unsafe { self.pointwise_avx2(0, pixels, base.get(), channels, in_register) };
                }
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (&base, channels);
            });
            // SAFETY: the tasks together stored every channel of every pixel.
            let done = unsafe { &mut *(spare as *mut [MaybeUninit<f32>] as *mut [f32]) };
            parallel::chunks_in_place(done, activate);
        } else if pointwise {
            // Tasks take whole groups of eight pixels (the widest tile), so that no task
            // but the last ends in a part-filled tile.
            parallel::for_row_blocks(
                spare,
                TILE_PIXELS * co,
                parallel::vectorized_work(TILE_PIXELS * c * co),
                POINTWISE_BLOCK / TILE_PIXELS,
                |first_group, block| {
                    #[cfg(target_arch = "x86_64")]
                    {
                        let pixels = block.len() / co;
                        // SAFETY: `applies` checked AVX2 and FMA above, and the lengths; the
                        // block holds pixels `first_group * 8..` + pixels, all channels.
                        unsafe {
                            self.pointwise_avx2(
                                first_group * TILE_PIXELS,
                                pixels,
                                block.as_mut_ptr().cast::<f32>(),
                                0..co,
                                in_register,
                            )
                        };
                    }
                    // SAFETY: `pointwise_avx2` stored every element of `block` (its contract).
                    activate(unsafe { &mut *(block as *mut [MaybeUninit<f32>] as *mut [f32]) });
                },
            );
        } else {
            let row_len = self.ow * co;
            let work = parallel::vectorized_work(row_len * self.kh * self.kw * c);
            parallel::for_row_blocks(spare, row_len, work, usize::MAX, |first, block| {
                // One set of per-row buffers for the task's rows (a row of LeNet's first
                // convolution is about a microsecond of work).
                let mut buffers = RowBuffers::default();
                for (i, row) in block.chunks_mut(row_len).enumerate() {
                    #[cfg(target_arch = "x86_64")]
                    {
                        // SAFETY: `applies` checked AVX2 and FMA above.
                        unsafe { self.row_avx2(first + i, row, in_register, &mut buffers) };
                    }
                    // SAFETY: `row_avx2` stored every element of `row` (its contract), so
                    // the elements are initialized f32 values.
                    activate(unsafe { &mut *(row as *mut [MaybeUninit<f32>] as *mut [f32]) });
                }
                #[cfg(not(target_arch = "x86_64"))]
                let _ = &mut buffers;
            });
        }
        // SAFETY: `for_rows` / `for_row_blocks` handed every row of the first `total` spare
        // elements (a whole number of rows) to the closure, whose kernel stored each element.
        unsafe { out.set_len(total) };
        Ok(TensorBuf::from_parts(shape.to_vec(), out))
    }

    /// Whether a pointwise convolution of `pixels` output pixels splits over `threads` by
    /// output channels rather than by pixels: when there are fewer than two eight-pixel tiles
    /// per thread and the product is worth splitting ([`CHANNEL_SPLIT_WORK`]).
    fn splits_by_channels(&self, pixels: usize, threads: usize) -> bool {
        pixels < 16 * threads
            && self.co >= 32 * threads
            && pixels.saturating_mul(self.c).saturating_mul(self.co) >= CHANNEL_SPLIT_WORK
    }

    /// Output pixels `first..first + pixels` of a pointwise convolution, output channels
    /// `channels`: stores those elements of the rows at `out` (row `p` of `co` floats at
    /// `out + p * co`, pixel `first + p`), four (eight with AVX-512) pixels by 16 (then 8)
    /// output channels at a time.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, `run`'s length checks must have passed, the pixels
    /// must lie inside the input (`(first + pixels) * c <= n*h*w*c`), `out` must be valid for
    /// writes of those rows' `channels`, and `channels` must start at a multiple of 16 and
    /// end at one or at `co`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pointwise_avx2(
        &self,
        first: usize,
        pixels: usize,
        out: *mut f32,
        channels: std::ops::Range<usize>,
        act: Option<Activation>,
    ) {
        let (c, co) = (self.c, self.co);
        let wide_end = channels.end - channels.end % 16;
        let tail = channels.end > wide_end;
        let mut p = 0;
        if wide_end > channels.start && std::arch::is_x86_feature_detected!("avx512f") {
            while p < pixels {
                let rows = (pixels - p).min(8);
                let offsets: [usize; 8] = std::array::from_fn(|q| if q < rows { q * c } else { 0 });
                // SAFETY: pixels p..p+rows are input pixels first+p.. (inside x by the
                // caller's contract), and their output rows lie inside `out`'s.
                let (x, o) = unsafe { (self.x.as_ptr().add((first + p) * c), out.add(p * co)) };
                let line = Line512 {
                    kernel_rows: &[0],
                    starts: &[x],
                    offsets,
                    run: c,
                };
                for cb in (channels.start..wide_end).step_by(32) {
                    // SAFETY: AVX-512F checked above; the line's taps are the pixels' inputs
                    // (offsets q*c + j < rows*c); cb + 16 (or 32) <= wide_end <= co.
                    unsafe {
                        if cb + 32 <= wide_end {
                            self.tile512::<2>(&line, o, rows, cb, act);
                        } else {
                            self.tile512::<1>(&line, o, rows, cb, act);
                        }
                    }
                }
                if tail {
                    for (q, part) in [(0, rows.min(4)), (4, rows.saturating_sub(4))] {
                        if part > 0 {
                            // SAFETY: as above, for pixels p+q..p+q+part; wide_end + 8 == co.
                            unsafe {
                                let (xq, oq) = (x.add(q * c), o.add(q * co));
                                self.tile::<1>(&Lines::flat(&xq, oq), 0, part, wide_end, act);
                            }
                        }
                    }
                }
                p += rows;
            }
            return;
        }
        while p < pixels {
            let rows = (pixels - p).min(4);
            // SAFETY: pixels p..p+rows are input pixels first+p.. (inside x by the caller's
            // contract), and their output rows lie inside `out`'s.
            let (x, o) = unsafe { (self.x.as_ptr().add((first + p) * c), out.add(p * co)) };
            for cb in (channels.start..wide_end).step_by(16) {
                // SAFETY: as above; cb + 16 <= wide_end <= co.
                unsafe { self.tile::<2>(&Lines::flat(&x, o), 0, rows, cb, act) };
            }
            if tail {
                // SAFETY: as above; co % 16 == 8 and the range ends at co, so wide_end + 8
                // == co.
                unsafe { self.tile::<1>(&Lines::flat(&x, o), 0, rows, wide_end, act) };
            }
            p += rows;
        }
    }

    /// Output row `row_index` (image `row_index / oh`, output row `row_index % oh`): stores
    /// every element of `row` (`ow * co` long; the lengths were checked by `run`). When some
    /// output column reaches into the left or right padding, the row's input rows are first
    /// copied between zero columns, so that every pixel takes the same four-wide path.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and `run`'s length checks must have passed.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_avx2(
        &self,
        row_index: usize,
        row: &mut [MaybeUninit<f32>],
        act: Option<Activation>,
        buffers: &mut RowBuffers,
    ) {
        let (b, oy) = (row_index / self.oh, row_index % self.oh);
        let (c, w, sx, pl, ow) = (self.c, self.w, self.stride[1], self.pad[1], self.ow);
        let RowBuffers {
            taps,
            padded: scratch,
            starts,
            kernel_rows,
        } = buffers;
        taps.clear();
        starts.clear();
        kernel_rows.clear();
        for ky in 0..self.kh {
            if let Some(iy) = (oy * self.stride[0] + ky * self.dilation_h).checked_sub(self.pad[0])
            {
                if iy < self.h {
                    taps.push((ky, (b * self.h + iy) * w * c));
                }
            }
        }
        // Input columns, counted from the first left padding column, that the last output
        // pixel's window reaches: beyond `pl + w` they are right padding.
        let reach = ow.saturating_sub(1) * sx + self.kw;
        let padded = pl > 0 || reach > pl + w;
        if padded {
            // Rows of `width` with the input at `pl * c`: the padding columns are zero from
            // when the buffer grew, and no row writes them (every row of the convolution has
            // the same width and left padding).
            let width = reach.max(pl + w) * c;
            if scratch.len() < taps.len() * width {
                scratch.resize(taps.len() * width, 0.0);
            }
            for (r, &(_, start)) in taps.iter().enumerate() {
                let dst = r * width + pl * c;
                scratch[dst..dst + w * c].copy_from_slice(&self.x[start..start + w * c]);
            }
            starts.extend((0..taps.len()).map(|r| scratch.as_ptr().wrapping_add(r * width)));
        } else {
            starts.extend(
                taps.iter()
                    .map(|&(_, start)| self.x.as_ptr().wrapping_add(start)),
            );
        }
        kernel_rows.extend(taps.iter().map(|&(ky, _)| ky));
        let (kernel_rows, starts) = (&kernel_rows[..], &starts[..]);
        let lines = Lines {
            kernel_rows,
            starts,
            out: row.as_mut_ptr() as *mut f32,
        };
        let wide = self.co - self.co % 16;
        let mut ox = 0;
        if wide > 0 && std::arch::is_x86_feature_detected!("avx512f") {
            let step = sx * c;
            while ox < ow {
                let pixels = (ow - ox).min(8);
                let offsets: [usize; 8] =
                    std::array::from_fn(|q| (ox + if q < pixels { q } else { 0 }) * step);
                let line = Line512 {
                    kernel_rows,
                    starts,
                    offsets,
                    run: self.kw * c,
                };
                // SAFETY: ox < ow, inside `row`.
                let o = unsafe { lines.out.add(ox * self.co) };
                for cb in (0..wide).step_by(32) {
                    // SAFETY: AVX-512F checked above; each pixel's taps lie in its input line
                    // (offset + kw*c <= ((ow-1)*sx + kw) * c); cb + 16 (or 32) <= co.
                    unsafe {
                        if cb + 32 <= wide {
                            self.tile512::<2>(&line, o, pixels, cb, act);
                        } else {
                            self.tile512::<1>(&line, o, pixels, cb, act);
                        }
                    }
                }
                if wide < self.co {
                    for (q, part) in [(0, pixels.min(4)), (4, pixels.saturating_sub(4))] {
                        if part > 0 {
                            // SAFETY: as for the AVX2 tiles below; wide + 8 == co.
                            unsafe { self.tile::<1>(&lines, ox + q, part, wide, act) };
                        }
                    }
                }
                ox += pixels;
            }
            return;
        }
        while ox < ow {
            let pixels = (ow - ox).min(4);
            for cb in (0..wide).step_by(16) {
                // SAFETY: forwarded from this function's contract; cb + 16 <= co; every
                // start is a row of `reach` (or, unpadded, w >= reach) input columns.
                unsafe { self.tile::<2>(&lines, ox, pixels, cb, act) };
            }
            if wide < self.co {
                // SAFETY: as above; co % 16 == 8, so wide + 8 == co.
                unsafe { self.tile::<1>(&lines, ox, pixels, wide, act) };
            }
            ox += pixels;
        }
    }

    /// Output channels `cb..cb + 8*V` of output pixels `ox..ox + pixels` (1 to 4) of one
    /// output row; the bias, then `act` (an [`Activation::in_register`] one), applied to each
    /// sum in registers before it is stored.
    ///
    /// # Safety
    /// AVX2 and FMA; `run`'s length checks passed; each of `lines.starts` is valid for reads
    /// at `(ox + p) * sx * c + j` for `p < pixels`, `j < kw * c`; `cb + 8*V <= co`;
    /// `lines.out` is valid for writes of pixels `ox..ox + pixels` (`co` apart).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const V: usize>(
        &self,
        lines: &Lines<'_>,
        ox: usize,
        pixels: usize,
        cb: usize,
        act: Option<Activation>,
    ) {
        use std::arch::x86_64::{
            _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps,
            _mm256_setzero_ps, _mm256_storeu_ps,
        };
        let (c, co, kw, sx) = (self.c, self.co, self.kw, self.stride[1]);
        let f = self.f.as_ptr();
        // With dilation 1 the taps (kx, ci) of one kernel row are one run of kw*c input
        // values, at a stride of sx*c from one pixel to the next. Pixels past `pixels` read
        // the first pixel's taps again (in bounds) and are not stored.
        let run = kw * c;
        let offset = |p: usize| {
            if p < pixels {
                (ox + p) * sx * c
            } else {
                ox * sx * c
            }
        };
        let offsets = [offset(0), offset(1), offset(2), offset(3)];
        let mut acc = [[_mm256_setzero_ps(); V]; 4];
        for (&ky, &start) in lines.kernel_rows.iter().zip(lines.starts) {
            // SAFETY: kernel row ky < kh holds run taps of co values; cb + 8*V <= co; each
            // pixel's taps lie in its input line (offset + run <= ((ow-1)*sx + kw) * c).
            unsafe {
                let fp = f.add(ky * run * co + cb);
                for j in 0..run {
                    let mut fv = [_mm256_setzero_ps(); V];
                    for (v, lane) in fv.iter_mut().enumerate() {
                        *lane = _mm256_loadu_ps(fp.add(j * co + v * LANES));
                    }
                    for (a, &off) in acc.iter_mut().zip(&offsets) {
                        let xv = _mm256_broadcast_ss(&*start.add(off + j));
                        for v in 0..V {
                            a[v] = _mm256_fmadd_ps(xv, fv[v], a[v]);
                        }
                    }
                }
            }
        }
        for (p, a) in acc.into_iter().enumerate().take(pixels) {
            for (v, mut lane) in a.into_iter().enumerate() {
                if let Some(bias) = self.bias {
                    // SAFETY: bias has co values and cb + 8*V <= co.
                    lane = _mm256_add_ps(lane, unsafe {
                        _mm256_loadu_ps(bias.as_ptr().add(cb + v * LANES))
                    });
                }
                if let Some(act) = act {
                    lane = act.apply_m256(lane);
                }
                // SAFETY: ox + p < ow and cb + 8*V <= co, inside the output row.
                unsafe { _mm256_storeu_ps(lines.out.add((ox + p) * co + cb + v * LANES), lane) };
            }
        }
    }
}

/// Up to eight output pixels' inputs for [`Direct::tile512`]: for each valid kernel row, the
/// input line it reads; each pixel's first tap at `offsets[q]` in every line; `run` taps per
/// kernel row.
/// The buffers [`Direct::row_avx2`] fills for each output row, kept across a task's rows.
#[derive(Default)]
struct RowBuffers {
    /// The kernel rows inside the input: `(ky, first element of the input row)`.
    taps: Vec<(usize, usize)>,
    /// The taps' input rows between zero columns, when the row reaches into the padding.
    padded: Vec<f32>,
    /// Where each tap's input row starts (in `x` or in `padded`).
    starts: Vec<*const f32>,
    kernel_rows: Vec<usize>,
}

struct Line512<'a> {
    kernel_rows: &'a [usize],
    starts: &'a [*const f32],
    offsets: [usize; 8],
    run: usize,
}

impl Direct<'_> {
    /// Output channels `cb..cb + 16*V` of `pixels` (1 to 8) output pixels stored at `out`
    /// (pixel stride `co`): the AVX-512 tile, eight pixels by one or two 16-lane vectors,
    /// the same fused multiply-adds in the same order as the AVX2 tiles, then the bias and
    /// `act` (an [`Activation::in_register`] one) in registers.
    ///
    /// # Safety
    /// AVX-512F; `run`'s length checks passed; every `starts[r] + offsets[q] + j` for
    /// `j < run` is readable; kernel rows are below kh and `run` is `kw * c`; `cb + 16*V <=
    /// co`; `out` is valid for `pixels * co` writes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile512<const V: usize>(
        &self,
        line: &Line512<'_>,
        out: *mut f32,
        pixels: usize,
        cb: usize,
        act: Option<Activation>,
    ) {
        use std::arch::x86_64::{
            _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
            _mm512_storeu_ps,
        };
        const WIDE: usize = 16;
        let (co, run) = (self.co, line.run);
        let f = self.f.as_ptr();
        let mut acc = [[_mm512_setzero_ps(); V]; 8];
        for (&ky, &start) in line.kernel_rows.iter().zip(line.starts) {
            // SAFETY: the caller's contract: filter row ky holds run taps of co values, and
            // every pixel's run of taps is readable from its line.
            unsafe {
                let fp = f.add(ky * run * co + cb);
                for j in 0..run {
                    let mut fv = [_mm512_setzero_ps(); V];
                    for (v, lane) in fv.iter_mut().enumerate() {
                        *lane = _mm512_loadu_ps(fp.add(j * co + v * WIDE));
                    }
                    for (a, &off) in acc.iter_mut().zip(&line.offsets) {
                        let xv = _mm512_set1_ps(*start.add(off + j));
                        for v in 0..V {
                            a[v] = _mm512_fmadd_ps(xv, fv[v], a[v]);
                        }
                    }
                }
            }
        }
        for (q, a) in acc.into_iter().enumerate().take(pixels) {
            for (v, mut lane) in a.into_iter().enumerate() {
                if let Some(bias) = self.bias {
                    // SAFETY: bias has co values and cb + 16*V <= co.
                    lane = _mm512_add_ps(lane, unsafe {
                        _mm512_loadu_ps(bias.as_ptr().add(cb + v * WIDE))
                    });
                }
                if let Some(act) = act {
                    lane = act.apply_m512(lane);
                }
                // SAFETY: q < pixels and cb + 16*V <= co.
                unsafe { _mm512_storeu_ps(out.add(q * co + cb + v * WIDE), lane) };
            }
        }
    }
}

/// One output row's valid kernel rows, the input line each reads (its first tap column,
/// possibly a zero-padded copy) and where the row's output goes.
struct Lines<'a> {
    kernel_rows: &'a [usize],
    starts: &'a [*const f32],
    out: *mut f32,
}

impl<'a> Lines<'a> {
    /// The single line of a 1x1 stride-1 convolution's pixels: consecutive pixels of `c`
    /// inputs starting at `*start`, outputs at `out` (the `tile` offsets with kw = sx = 1).
    fn flat(start: &'a *const f32, out: *mut f32) -> Lines<'a> {
        Lines {
            kernel_rows: &[0],
            starts: std::slice::from_ref(start),
            out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv2d::tests::values;
    use super::*;

    /// The kernel's arithmetic in plain code: per output value, fused multiply-adds from zero
    /// in `(ky, kx, ci)` order over the kernel rows inside the input (columns in the padding
    /// reading zeros), then the bias.
    fn reference(d: &Direct<'_>) -> Vec<f32> {
        let mut out = Vec::new();
        for b in 0..d.n {
            for oy in 0..d.oh {
                for ox in 0..d.ow {
                    for o in 0..d.co {
                        let mut acc = 0.0f32;
                        for ky in 0..d.kh {
                            let Some(iy) = (oy * d.stride[0] + ky * d.dilation_h)
                                .checked_sub(d.pad[0])
                                .filter(|&iy| iy < d.h)
                            else {
                                continue;
                            };
                            for kx in 0..d.kw {
                                let ix = (ox * d.stride[1] + kx)
                                    .checked_sub(d.pad[1])
                                    .filter(|&ix| ix < d.w);
                                for ci in 0..d.c {
                                    // A column in the padding reads a zero.
                                    let xv = ix.map_or(0.0, |ix| {
                                        d.x[((b * d.h + iy) * d.w + ix) * d.c + ci]
                                    });
                                    let fv = d.f[((ky * d.kw + kx) * d.c + ci) * d.co + o];
                                    acc = xv.mul_add(fv, acc);
                                }
                            }
                        }
                        out.push(match d.bias {
                            Some(bias) => acc + bias[o],
                            None => acc,
                        });
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_plain_fused_multiply_adds_bit_for_bit() -> Result<(), OpError> {
        if !Direct::applies(3, 8, 1, 3 * 8) {
            return Ok(()); // no AVX2/FMA here: conv2d takes the im2col path
        }
        // ((n, h, w, c, kh, kw, co, stride, dilation_h), pad, [oh, ow])
        type Case = (
            usize,
            usize,
            usize,
            usize,
            usize,
            usize,
            usize,
            [usize; 2],
            usize,
        );
        let cases: &[(Case, [usize; 2], [usize; 2])] = &[
            ((2, 17, 19, 3, 3, 3, 16, [2, 2], 1), [0, 0], [8, 9]),
            ((1, 9, 13, 5, 3, 3, 24, [1, 1], 1), [1, 1], [9, 13]),
            ((3, 11, 7, 1, 5, 5, 8, [1, 2], 2), [4, 2], [11, 4]),
            ((1, 4, 3, 7, 5, 5, 40, [1, 1], 1), [2, 2], [4, 3]),
            // 1x1 stride 1: the pointwise path, with a tail of 2 pixels and of 3.
            ((2, 5, 7, 19, 1, 1, 40, [1, 1], 1), [0, 0], [5, 7]),
            ((1, 3, 9, 96, 1, 1, 16, [1, 1], 1), [0, 0], [3, 9]),
            // 48 output channels: a 32-wide and a 16-wide AVX-512 block; 11 pixels a row.
            ((1, 6, 11, 2, 3, 3, 48, [1, 1], 1), [1, 1], [6, 11]),
            ((2, 3, 5, 12, 1, 1, 48, [1, 1], 1), [0, 0], [3, 5]),
            // Many input channels through a 3x3 stride-2 window (a small filter).
            ((2, 9, 8, 16, 3, 3, 32, [2, 2], 1), [1, 0], [5, 4]),
            // Few pixels, many channels: on 2 or 3 threads, split by output channels (an
            // 8-channel tail in the last share for 200; 1280 in 16-aligned shares).
            ((1, 3, 3, 160, 1, 1, 200, [1, 1], 1), [0, 0], [3, 3]),
            ((1, 2, 3, 96, 1, 1, 1280, [1, 1], 1), [0, 0], [2, 3]),
            // Many input channels and pixels: 45 pixels of 400 channels, 8-pixel tiles.
            ((1, 5, 9, 400, 1, 1, 48, [1, 1], 1), [0, 0], [5, 9]),
        ];
        for (i, &((n, h, w, c, kh, kw, co, stride, dilation_h), pad, [oh, ow])) in
            cases.iter().enumerate()
        {
            let x = values(n * h * w * c, 11 + i as u64);
            let f = values(kh * kw * c * co, 12 + i as u64);
            let bias = values(co, 13 + i as u64);
            for with_bias in [false, true] {
                let d = Direct {
                    x: &x,
                    f: &f,
                    bias: with_bias.then_some(bias.as_slice()),
                    n,
                    h,
                    w,
                    c,
                    kh,
                    kw,
                    co,
                    oh,
                    ow,
                    stride,
                    dilation_h,
                    pad,
                };
                let want = reference(&d);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                // One thread, then teams of 2 and 3 (pixel or channel shares), with no
                // activation, one applied in registers and one applied after.
                for threads in [1, 2, 3] {
                    for activation in [None, Some(Activation::Relu6), Some(Activation::Tanh)] {
                        let epilogue = Epilogue {
                            bias: false,
                            activation,
                            gelu: None,
                        };
                        let got = match crate::team::Team::new(threads) {
                            Ok(team) if threads > 1 => {
                                parallel::with_team(team.shared(), || d.run(epilogue))?
                            }
                            _ => d.run(epilogue)?,
                        };
                        assert_eq!(got.shape(), &[n, oh, ow, co]);
                        let mut want = want.clone();
                        if let Some(act) = activation {
                            act.apply_f32(&mut want);
                        }
                        assert_eq!(
                            bits(got.data()),
                            bits(&want),
                            "case {i}, bias {with_bias}, {threads} threads, {activation:?}"
                        );
                    }
                }
            }
        }
        // The shapes above that should split by channels do.
        let pointwise = |c, co, pixels| Direct {
            x: &[],
            f: &[],
            bias: None,
            n: 1,
            h: 1,
            w: pixels,
            c,
            kh: 1,
            kw: 1,
            co,
            oh: 1,
            ow: pixels,
            stride: [1, 1],
            dilation_h: 1,
            pad: [0, 0],
        };
        assert!(pointwise(160, 200, 9).splits_by_channels(9, 2));
        assert!(pointwise(96, 1280, 6).splits_by_channels(6, 3));
        assert!(!pointwise(96, 1280, 144).splits_by_channels(144, 2));
        Ok(())
    }

    #[test]
    fn rejects_slices_that_do_not_match_the_geometry() {
        let x = vec![0.0f32; 10];
        let f = vec![0.0f32; 9 * 3 * 8];
        let d = Direct {
            x: &x,
            f: &f,
            bias: None,
            n: 1,
            h: 2,
            w: 2,
            c: 3,
            kh: 3,
            kw: 3,
            co: 8,
            oh: 2,
            ow: 2,
            stride: [1, 1],
            dilation_h: 1,
            pad: [1, 1],
        };
        assert_eq!(
            d.run(Epilogue::default()).err(),
            Some(OpError(
                "direct convolution: inputs do not match the geometry".into()
            ))
        );
    }
}
