//! Element-wise arithmetic over tensor bytes for `diff`, `average`, `cast` and `show --stats`:
//! values are decoded to float64 in chunks (never a whole tensor at once), and chunks are
//! processed in parallel.

use std::borrow::Cow;

use anyhow::{bail, Result};
use ckpt_bundle::DType;
use half::{bf16, f16};
use rayon::prelude::*;

/// Elements per chunk of work: large enough to amortize scheduling, small enough that the
/// float64 scratch stays in cache.
const CHUNK: usize = 1 << 14;

/// How a dtype's elements decode to numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A floating-point component of this many bytes (complex tensors count as pairs of them).
    Float(FloatType),
    /// An integer or bool: its size and whether it is signed.
    Int { size: usize, signed: bool },
}

/// The floating-point types a checkpoint stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatType {
    F16,
    BF16,
    F32,
    F64,
}

impl FloatType {
    pub fn size(self) -> usize {
        match self {
            FloatType::F16 | FloatType::BF16 => 2,
            FloatType::F32 => 4,
            FloatType::F64 => 8,
        }
    }

    pub fn dtype(self) -> DType {
        match self {
            FloatType::F16 => DType::Float16,
            FloatType::BF16 => DType::BFloat16,
            FloatType::F32 => DType::Float32,
            FloatType::F64 => DType::Float64,
        }
    }

    /// Decodes little-endian elements, adding them to `acc` (`add`) or storing them.
    fn decode(self, bytes: &[u8], out: &mut [f64], add: bool) {
        macro_rules! go {
            ($n:literal, $conv:expr) => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact($n)) {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    let v: f64 = $conv(a);
                    if add {
                        *o += v;
                    } else {
                        *o = v;
                    }
                }
            };
        }
        match self {
            FloatType::F16 => go!(2, |a| f16::from_le_bytes(a).to_f64()),
            FloatType::BF16 => go!(2, |a| bf16::from_le_bytes(a).to_f64()),
            FloatType::F32 => go!(4, |a| f32::from_le_bytes(a) as f64),
            FloatType::F64 => go!(8, f64::from_le_bytes),
        }
    }

    /// Rounds each value to this type (to nearest, ties to even) and writes its bytes.
    fn encode(self, values: &[f64], out: &mut [u8]) {
        match self {
            FloatType::F16 => {
                for (v, o) in values.iter().zip(out.chunks_exact_mut(2)) {
                    o.copy_from_slice(&f16::from_f64(*v).to_le_bytes());
                }
            }
            FloatType::BF16 => {
                for (v, o) in values.iter().zip(out.chunks_exact_mut(2)) {
                    o.copy_from_slice(&bf16::from_f64(*v).to_le_bytes());
                }
            }
            FloatType::F32 => {
                for (v, o) in values.iter().zip(out.chunks_exact_mut(4)) {
                    o.copy_from_slice(&(*v as f32).to_le_bytes());
                }
            }
            FloatType::F64 => {
                for (v, o) in values.iter().zip(out.chunks_exact_mut(8)) {
                    o.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

/// The float type of a dtype's components (complex64 is pairs of float32), if it has one.
pub fn float_type(dtype: DType) -> Option<FloatType> {
    Some(match dtype {
        DType::Float16 => FloatType::F16,
        DType::BFloat16 => FloatType::BF16,
        DType::Float32 | DType::Complex64 => FloatType::F32,
        DType::Float64 | DType::Complex128 => FloatType::F64,
        _ => return None,
    })
}

/// How `dtype` decodes, or `None` for strings and other non-numeric types.
pub fn kind(dtype: DType) -> Option<Kind> {
    if let Some(f) = float_type(dtype) {
        return Some(Kind::Float(f));
    }
    Some(match dtype {
        DType::Int8 | DType::QInt8 => Kind::Int {
            size: 1,
            signed: true,
        },
        DType::UInt8 | DType::QUInt8 | DType::Bool => Kind::Int {
            size: 1,
            signed: false,
        },
        DType::Int16 | DType::QInt16 => Kind::Int {
            size: 2,
            signed: true,
        },
        DType::UInt16 | DType::QUInt16 => Kind::Int {
            size: 2,
            signed: false,
        },
        DType::Int32 | DType::QInt32 => Kind::Int {
            size: 4,
            signed: true,
        },
        DType::UInt32 => Kind::Int {
            size: 4,
            signed: false,
        },
        DType::Int64 => Kind::Int {
            size: 8,
            signed: true,
        },
        DType::UInt64 => Kind::Int {
            size: 8,
            signed: false,
        },
        _ => return None,
    })
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::Float(f) => f.size(),
            Kind::Int { size, .. } => size,
        }
    }

    fn decode(self, bytes: &[u8], out: &mut [f64]) {
        match self {
            Kind::Float(f) => f.decode(bytes, out, false),
            Kind::Int { size, signed } => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(size)) {
                    let mut a = [0u8; 8];
                    a[..size].copy_from_slice(c);
                    if signed && c.last().is_some_and(|b| b & 0x80 != 0) {
                        for x in &mut a[size..] {
                            *x = 0xff;
                        }
                    }
                    *o = if signed {
                        i64::from_le_bytes(a) as f64
                    } else {
                        u64::from_le_bytes(a) as f64
                    };
                }
            }
        }
    }
}

/// Decodes little-endian elements of `kind` into `out` (as many as fit).
pub fn decode(kind: Kind, bytes: &[u8], out: &mut [f64]) {
    kind.decode(bytes, out);
}

/// How two tensors of the same dtype and shape differ.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Difference {
    /// Elements (components, for complex) whose values differ.
    pub differing: u64,
    /// The largest |a - b| (infinite where one side is NaN or infinite and the other not).
    pub max_abs: f64,
    /// The largest |a - b| / max(|a|, |b|).
    pub max_rel: f64,
}

impl Difference {
    fn merge(self, o: Difference) -> Difference {
        Difference {
            differing: self.differing + o.differing,
            max_abs: self.max_abs.max(o.max_abs),
            max_rel: self.max_rel.max(o.max_rel),
        }
    }
}

/// Elements handled side by side in the inner loops: independent accumulators the compiler
/// keeps in vector registers.
const LANES: usize = 8;

/// Elements per block of [`mean`]'s float64 accumulator (4 KiB: it stays in L1).
const BLOCK: usize = 512;

/// The `N` bytes at the start of `bytes` as an array (for `from_le_bytes`).
#[inline(always)]
fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&bytes[..N]);
    a
}

/// How one pair of values differs: (1 if they differ, |x - y|, |x - y| / max(|x|, |y|)), or
/// all zero when they are equal (0.0 and -0.0 included) or both NaN. Where one side is NaN
/// (and not both), or the difference is infinite, both differences are infinite.
#[inline(always)]
fn diff_one(x: f64, y: f64) -> (u64, f64, f64) {
    let same = (x == y) | (x.is_nan() & y.is_nan());
    let abs = if x.is_nan() | y.is_nan() {
        f64::INFINITY
    } else {
        (x - y).abs()
    };
    let (ax, ay) = (x.abs(), y.abs());
    // Selects rather than `f64::max`, so the loop vectorizes: no operand is NaN where the
    // result is used.
    let larger = if ax > ay { ax } else { ay };
    let rel = if abs == f64::INFINITY {
        f64::INFINITY
    } else {
        abs / larger
    };
    if same {
        (0, 0.0, 0.0)
    } else {
        (1, abs, rel)
    }
}

/// [`Difference`] of two equally long runs of `N`-byte elements that `get` decodes, with
/// [`LANES`] independent accumulators over whole groups and one for the tail.
#[inline(always)]
fn diff_kernel<const N: usize>(a: &[u8], b: &[u8], get: impl Fn([u8; N]) -> f64) -> Difference {
    let mut count = [0u64; LANES];
    let mut abs = [0f64; LANES];
    let mut rel = [0f64; LANES];
    let mut ga = a.chunks_exact(N * LANES);
    let mut gb = b.chunks_exact(N * LANES);
    for (ca, cb) in (&mut ga).zip(&mut gb) {
        for k in 0..LANES {
            let x = get(le(&ca[k * N..]));
            let y = get(le(&cb[k * N..]));
            let (d, s, r) = diff_one(x, y);
            count[k] += d;
            abs[k] = if s > abs[k] { s } else { abs[k] };
            rel[k] = if r > rel[k] { r } else { rel[k] };
        }
    }
    for (p, q) in ga
        .remainder()
        .chunks_exact(N)
        .zip(gb.remainder().chunks_exact(N))
    {
        let (d, s, r) = diff_one(get(le(p)), get(le(q)));
        count[0] += d;
        abs[0] = abs[0].max(s);
        rel[0] = rel[0].max(r);
    }
    Difference {
        differing: count.iter().sum(),
        max_abs: abs.iter().fold(0.0, |m, &x| m.max(x)),
        max_rel: rel.iter().fold(0.0, |m, &x| m.max(x)),
    }
}

/// [`Difference`] of one block of elements, with the loops compiled for AVX2 when the CPU has
/// it (4 float64 lanes instead of SSE2's 2; the same operations in the same order, so the
/// same results).
fn block_difference(kind: Kind, a: &[u8], b: &[u8]) -> Difference {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        #[allow(unsafe_code)]
        return unsafe { block_difference_avx2(kind, a, b) };
    }
    block_difference_any(kind, a, b)
}

/// [`block_difference_any`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_difference_avx2(kind: Kind, a: &[u8], b: &[u8]) -> Difference {
    block_difference_any(kind, a, b)
}

/// [`Difference`] of one block of elements: one loop per element type, no dispatch inside.
#[inline(always)]
fn block_difference_any(kind: Kind, a: &[u8], b: &[u8]) -> Difference {
    match kind {
        Kind::Float(FloatType::F32) => diff_kernel::<4>(a, b, |x| f32::from_le_bytes(x) as f64),
        Kind::Float(FloatType::F64) => diff_kernel::<8>(a, b, f64::from_le_bytes),
        Kind::Float(FloatType::F16) => diff_kernel::<2>(a, b, |x| f16::from_le_bytes(x).to_f64()),
        Kind::Float(FloatType::BF16) => diff_kernel::<2>(a, b, |x| bf16::from_le_bytes(x).to_f64()),
        Kind::Int { size: 1, signed } => diff_kernel::<1>(a, b, |x| {
            if signed {
                i8::from_le_bytes(x) as f64
            } else {
                u8::from_le_bytes(x) as f64
            }
        }),
        Kind::Int { size: 2, signed } => diff_kernel::<2>(a, b, |x| {
            if signed {
                i16::from_le_bytes(x) as f64
            } else {
                u16::from_le_bytes(x) as f64
            }
        }),
        Kind::Int { size: 4, signed } => diff_kernel::<4>(a, b, |x| {
            if signed {
                i32::from_le_bytes(x) as f64
            } else {
                u32::from_le_bytes(x) as f64
            }
        }),
        Kind::Int { size: 8, signed } => diff_kernel::<8>(a, b, |x| {
            if signed {
                i64::from_le_bytes(x) as f64
            } else {
                u64::from_le_bytes(x) as f64
            }
        }),
        Kind::Int { .. } => {
            let n = a.len() / kind.size();
            let mut va = vec![0f64; n];
            let mut vb = vec![0f64; n];
            kind.decode(a, &mut va);
            kind.decode(b, &mut vb);
            let mut d = Difference::default();
            for (x, y) in va.iter().zip(&vb) {
                let (c, s, r) = diff_one(*x, *y);
                d.differing += c;
                d.max_abs = d.max_abs.max(s);
                d.max_rel = d.max_rel.max(r);
            }
            d
        }
    }
}

/// Compares two numeric tensors' bytes element by element: in parallel chunks straight from
/// the bytes, a chunk whose bytes are equal skipped after a `memcmp`. Elements that are equal
/// as numbers (0.0 and -0.0) or both NaN count as the same; where one side is NaN or the
/// difference is infinite, both the absolute and the relative difference are infinite. The
/// relative difference is |a - b| / max(|a|, |b|), computed in float64.
pub fn difference(kind: Kind, a: &[u8], b: &[u8]) -> Difference {
    let size = kind.size();
    let step = CHUNK * size;
    a.par_chunks(step)
        .zip(b.par_chunks(step))
        .map(|(ca, cb)| {
            if ca == cb {
                Difference::default()
            } else {
                block_difference(kind, ca, cb)
            }
        })
        .reduce(Difference::default, Difference::merge)
}

/// Bytes per chunk of [`difference_checked`] and [`mean_checked`]: each input's chunk is
/// checksummed and then used while it is still in the core's L2 cache.
const CHECKED_CHUNK_BYTES: usize = 256 << 10;

/// The crc32c of consecutive parts of a buffer, given as (crc32c, length) in order.
/// (`crc32c_combine` costs tens of microseconds: it is called once per segment, not per
/// chunk.)
fn combine_crcs(mut parts: impl Iterator<Item = (u32, usize)>) -> u32 {
    // The first part's crc32c is the start: combining it with the empty prefix's (0) would
    // give it back at the cost of a combine.
    let first = parts.next().map_or(0, |(crc, _)| crc);
    parts.fold(first, |acc, (crc, len)| {
        crc32c::crc32c_combine(acc, crc, len)
    })
}

/// Splits `len` bytes of `size`-byte elements into one contiguous segment per thread (at
/// least 1 MiB each): segments run in parallel, each going through its chunks in order so
/// that their checksums extend one another.
fn segments(len: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    let threads = rayon::current_num_threads().max(1);
    let elements = len / size.max(1);
    let per = elements
        .div_ceil(threads)
        .max((1 << 20) / size.max(1))
        .max(1)
        * size;
    (0..len.max(1))
        .step_by(per)
        .map(|start| start..(start + per).min(len))
        .collect()
}

/// [`difference`], also returning the crc32c of `a` and of `b` (equally long), computed in
/// the same pass over the bytes: each chunk is checksummed, then compared while it is hot in
/// cache. For tensors read with a deferred checksum check
/// ([`ckpt_bundle::Checkpoint::read_deferred`]).
pub fn difference_checked(kind: Kind, a: &[u8], b: &[u8]) -> (Difference, u32, u32) {
    let size = kind.size();
    let step = (CHECKED_CHUNK_BYTES / size).max(1) * size;
    let parts: Vec<(Difference, u32, u32, usize)> = segments(a.len().min(b.len()), size)
        .into_par_iter()
        .map(|range| {
            let (sa, sb) = (&a[range.clone()], &b[range]);
            let (mut crc_a, mut crc_b) = (0u32, 0u32);
            let mut d = Difference::default();
            for (ca, cb) in sa.chunks(step).zip(sb.chunks(step)) {
                crc_a = crc32c::crc32c_append(crc_a, ca);
                crc_b = crc32c::crc32c_append(crc_b, cb);
                if ca != cb {
                    d = d.merge(block_difference(kind, ca, cb));
                }
            }
            (d, crc_a, crc_b, sa.len())
        })
        .collect();
    let diff = parts
        .iter()
        .fold(Difference::default(), |acc, p| acc.merge(p.0));
    let crc_a = combine_crcs(parts.iter().map(|p| (p.1, p.3)));
    let crc_b = combine_crcs(parts.iter().map(|p| (p.2, p.3)));
    (diff, crc_a, crc_b)
}

/// Writes the mean of `inputs` (each as long as `out`) into `out`, [`BLOCK`] elements at a
/// time: the sum starts at +0.0, adds each input's value in input order in float64, is divided
/// by the number of inputs and rounded back by `put`.
#[inline(always)]
fn mean_kernel<const N: usize>(
    inputs: &[&[u8]],
    out: &mut [u8],
    get: impl Fn([u8; N]) -> f64,
    put: impl Fn(f64) -> [u8; N],
) {
    let n = inputs.len() as f64;
    // Dividing by a power of two is multiplying by its inverse, exactly (both are the one
    // correctly rounded result of the same quotient), and a multiplication costs far less.
    let inverse = inputs.len().is_power_of_two().then(|| 1.0 / n);
    let Some((first, rest)) = inputs.split_first() else {
        return;
    };
    let mut acc = [0f64; BLOCK];
    for (b, o) in out.chunks_mut(BLOCK * N).enumerate() {
        let start = b * BLOCK * N;
        let acc = &mut acc[..o.len() / N];
        // The sum starts at +0.0, with the first input added in the same pass (a separate
        // zeroing of the accumulator, a `memset` per block, cost a tenth of the run).
        let Some(src) = first.get(start..start + o.len()) else {
            return;
        };
        for (s, c) in acc.iter_mut().zip(src.chunks_exact(N)) {
            *s = 0.0 + get(le(c));
        }
        for input in rest {
            let Some(src) = input.get(start..start + o.len()) else {
                return;
            };
            for (s, c) in acc.iter_mut().zip(src.chunks_exact(N)) {
                *s += get(le(c));
            }
        }
        if let Some(inv) = inverse {
            for (s, c) in acc.iter().zip(o.chunks_exact_mut(N)) {
                c.copy_from_slice(&put(*s * inv));
            }
        } else {
            for (s, c) in acc.iter().zip(o.chunks_exact_mut(N)) {
                c.copy_from_slice(&put(*s / n));
            }
        }
    }
}

/// [`mean_kernel`] for float64, with Kahan–Neumaier compensation.
#[inline(always)]
fn mean_kernel_f64(inputs: &[&[u8]], out: &mut [u8]) {
    let n = inputs.len() as f64;
    let mut acc = [0f64; BLOCK];
    let mut comp = [0f64; BLOCK];
    for (b, o) in out.chunks_mut(BLOCK * 8).enumerate() {
        let start = b * BLOCK * 8;
        let count = o.len() / 8;
        let (acc, comp) = (&mut acc[..count], &mut comp[..count]);
        acc.fill(0.0);
        comp.fill(0.0);
        for input in inputs {
            let Some(src) = input.get(start..start + o.len()) else {
                return;
            };
            for ((s, c), x) in acc.iter_mut().zip(comp.iter_mut()).zip(src.chunks_exact(8)) {
                let x = f64::from_le_bytes(le(x));
                let t = *s + x;
                *c += if s.abs() >= x.abs() {
                    (*s - t) + x
                } else {
                    (x - t) + *s
                };
                *s = t;
            }
        }
        for ((s, c), o) in acc.iter().zip(comp.iter()).zip(o.chunks_exact_mut(8)) {
            o.copy_from_slice(&((*s + c) / n).to_le_bytes());
        }
    }
}

/// The mean of one chunk of each input into `out`, with the loops compiled for AVX2 when the
/// CPU has it (the same operations in the same order, so the same bits).
fn mean_chunk(float: FloatType, inputs: &[&[u8]], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        #[allow(unsafe_code)]
        return unsafe { mean_chunk_avx2(float, inputs, out) };
    }
    mean_chunk_any(float, inputs, out);
}

/// [`mean_chunk_any`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mean_chunk_avx2(float: FloatType, inputs: &[&[u8]], out: &mut [u8]) {
    mean_chunk_any(float, inputs, out);
}

/// The mean of one chunk: one loop per float type, no dispatch inside.
#[inline(always)]
fn mean_chunk_any(float: FloatType, inputs: &[&[u8]], out: &mut [u8]) {
    match float {
        FloatType::F32 => mean_kernel::<4>(
            inputs,
            out,
            |x| f32::from_le_bytes(x) as f64,
            |v| (v as f32).to_le_bytes(),
        ),
        FloatType::F64 => mean_kernel_f64(inputs, out),
        FloatType::F16 => mean_kernel::<2>(
            inputs,
            out,
            |x| f16::from_le_bytes(x).to_f64(),
            |v| f16::from_f64(v).to_le_bytes(),
        ),
        FloatType::BF16 => mean_kernel::<2>(
            inputs,
            out,
            |x| bf16::from_le_bytes(x).to_f64(),
            |v| bf16::from_f64(v).to_le_bytes(),
        ),
    }
}

/// The element-wise mean of `inputs` (little-endian bytes of one float type, the same
/// length), rounded to nearest even. float16, bfloat16 and float32 values are summed in
/// float64, where the sum of a few of them is exact or nearly; float64 values with
/// Kahan–Neumaier compensated summation. Works in parallel chunks straight from the bytes,
/// one loop per type.
///
/// Errors: no inputs, or inputs of different lengths.
pub fn mean(float: FloatType, inputs: &[&[u8]]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    mean_impl(float, inputs, false, &mut out)?;
    Ok(out)
}

/// [`mean`], also returning the crc32c of each input, computed in the same pass over the
/// bytes (each chunk of each input checksummed, then summed while it is hot in cache). For
/// tensors read with a deferred checksum check
/// ([`ckpt_bundle::Checkpoint::read_deferred`]).
///
/// Errors: those of [`mean`].
pub fn mean_checked(float: FloatType, inputs: &[&[u8]]) -> Result<(Vec<u8>, Vec<u32>)> {
    let mut out = Vec::new();
    let crcs = mean_impl(float, inputs, true, &mut out)?;
    Ok((out, crcs.inputs))
}

/// The checksums [`mean_checked_into`] computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeanCrcs {
    /// The crc32c of each input.
    pub inputs: Vec<u32>,
    /// The crc32c of the output bytes.
    pub output: u32,
}

/// [`mean_checked`] into `out`, a buffer reused from tensor to tensor (resized to the
/// output's length: bytes already there are overwritten, not zeroed first), also returning the
/// crc32c of the output, computed chunk by chunk right after the chunk is written, while it is
/// in cache (so the checkpoint writer need not go over the output again).
///
/// Errors: those of [`mean`].
pub fn mean_checked_into(
    float: FloatType,
    inputs: &[&[u8]],
    out: &mut Vec<u8>,
) -> Result<MeanCrcs> {
    mean_impl(float, inputs, true, out)
}

/// [`mean`] into `out` and, if `crc`, the crc32c of each input and of the output (else none).
fn mean_impl(float: FloatType, inputs: &[&[u8]], crc: bool, out: &mut Vec<u8>) -> Result<MeanCrcs> {
    let Some(first) = inputs.first() else {
        bail!("no inputs to average");
    };
    if inputs.iter().any(|i| i.len() != first.len()) {
        bail!("inputs differ in size");
    }
    let size = float.size();
    // Every byte is written below: only a buffer that grows gets (its new part) zeroed.
    out.resize(first.len() / size * size, 0);
    if !crc {
        let step = CHUNK * size;
        out.par_chunks_mut(step).enumerate().for_each(|(c, o)| {
            let start = c * step;
            let parts: Vec<&[u8]> = inputs.iter().map(|i| &i[start..start + o.len()]).collect();
            mean_chunk(float, &parts, o);
        });
        return Ok(MeanCrcs {
            inputs: Vec::new(),
            output: 0,
        });
    }
    // One segment per thread, its chunks in order, each input's chunk checksummed and then
    // summed while it is in cache.
    let step = (CHECKED_CHUNK_BYTES / size).max(1) * size;
    let mut pieces: Vec<(usize, &mut [u8])> = Vec::new();
    let mut rest: &mut [u8] = out;
    for range in segments(first.len() / size * size, size) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(range.len());
        pieces.push((range.start, head));
        rest = tail;
    }
    // Per segment: the crc32c of each input, then of the output.
    let parts: Vec<(Vec<u32>, usize)> = pieces
        .into_par_iter()
        .map(|(start, segment)| {
            let mut crcs = vec![0u32; inputs.len() + 1];
            let len = segment.len();
            for (c, o) in segment.chunks_mut(step).enumerate() {
                let at = start + c * step;
                let parts: Vec<&[u8]> = inputs.iter().map(|i| &i[at..at + o.len()]).collect();
                for (crc, p) in crcs.iter_mut().zip(&parts) {
                    *crc = crc32c::crc32c_append(*crc, p);
                }
                mean_chunk(float, &parts, o);
                if let Some(crc) = crcs.last_mut() {
                    *crc = crc32c::crc32c_append(*crc, o);
                }
            }
            (crcs, len)
        })
        .collect();
    let mut crcs: Vec<u32> = (0..=inputs.len())
        .map(|i| combine_crcs(parts.iter().map(|(c, len)| (c[i], *len))))
        .collect();
    let output = crcs.pop().unwrap_or(0);
    Ok(MeanCrcs {
        inputs: crcs,
        output,
    })
}

/// What a cast did to one tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rounding {
    /// The largest |original - cast| over finite originals that stayed finite.
    pub max_error: f64,
    /// Finite values that became infinite (too large for the new type).
    pub overflowed: u64,
}

/// Converts `bytes` of type `from` to `to`, rounding to nearest even.
pub fn cast(from: FloatType, to: FloatType, bytes: &[u8]) -> (Vec<u8>, Rounding) {
    let (fs, ts) = (from.size(), to.size());
    let count = bytes.len() / fs;
    let mut out = vec![0u8; count * ts];
    let rounding = out
        .par_chunks_mut(CHUNK * ts)
        .zip(bytes.par_chunks(CHUNK * fs))
        .map(|(o, i)| {
            let n = i.len() / fs;
            let mut v = vec![0f64; n];
            from.decode(i, &mut v, false);
            to.encode(&v, o);
            let mut back = vec![0f64; n];
            to.decode(o, &mut back, false);
            let mut r = Rounding::default();
            for (x, y) in v.iter().zip(&back) {
                if x.is_finite() && y.is_infinite() {
                    r.overflowed += 1;
                } else if x.is_finite() {
                    r.max_error = r.max_error.max((x - y).abs());
                }
            }
            r
        })
        .reduce(Rounding::default, |a, b| Rounding {
            max_error: a.max_error.max(b.max_error),
            overflowed: a.overflowed + b.overflowed,
        });
    (out, rounding)
}

/// Summary statistics of a numeric tensor. `min`, `max`, `mean` and `std` (population
/// standard deviation) are over the finite elements; NaN and infinities are counted apart.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub finite: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Sum of squared deviations from the mean (Chan et al.'s parallel merge).
    m2: f64,
    pub zeros: u64,
    pub nan: u64,
    pub pos_inf: u64,
    pub neg_inf: u64,
}

impl Stats {
    pub fn std(&self) -> f64 {
        if self.finite == 0 {
            f64::NAN
        } else {
            (self.m2 / self.finite as f64).sqrt()
        }
    }

    fn merge(a: Stats, b: Stats) -> Stats {
        if a.count == 0 {
            return b;
        }
        if b.count == 0 {
            return a;
        }
        let finite = a.finite + b.finite;
        let (mean, m2) = if finite == 0 {
            (0.0, 0.0)
        } else {
            let delta = b.mean - a.mean;
            let (na, nb, n) = (a.finite as f64, b.finite as f64, finite as f64);
            (
                a.mean + delta * nb / n,
                a.m2 + b.m2 + delta * delta * na * nb / n,
            )
        };
        let pick = |x: f64, y: f64, f: fn(f64, f64) -> f64| match (a.finite, b.finite) {
            (0, _) => y,
            (_, 0) => x,
            _ => f(x, y),
        };
        Stats {
            count: a.count + b.count,
            finite,
            min: pick(a.min, b.min, f64::min),
            max: pick(a.max, b.max, f64::max),
            mean,
            m2,
            zeros: a.zeros + b.zeros,
            nan: a.nan + b.nan,
            pos_inf: a.pos_inf + b.pos_inf,
            neg_inf: a.neg_inf + b.neg_inf,
        }
    }
}

/// Statistics of numeric tensor bytes (complex tensors: over both components).
pub fn stats(kind: Kind, bytes: &[u8]) -> Stats {
    let size = kind.size();
    bytes
        .par_chunks(CHUNK * size)
        .map(|c| {
            let mut v = vec![0f64; c.len() / size];
            kind.decode(c, &mut v);
            let mut s = Stats {
                count: v.len() as u64,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                ..Stats::default()
            };
            let mut sum = 0f64;
            for &x in &v {
                if x.is_nan() {
                    s.nan += 1;
                } else if x.is_infinite() {
                    if x > 0.0 {
                        s.pos_inf += 1;
                    } else {
                        s.neg_inf += 1;
                    }
                } else {
                    s.finite += 1;
                    sum += x;
                    s.min = s.min.min(x);
                    s.max = s.max.max(x);
                    if x == 0.0 {
                        s.zeros += 1;
                    }
                }
            }
            if s.finite > 0 {
                s.mean = sum / s.finite as f64;
                s.m2 = v
                    .iter()
                    .filter(|x| x.is_finite())
                    .map(|x| (x - s.mean) * (x - s.mean))
                    .sum();
            }
            s
        })
        .reduce(Stats::default, Stats::merge)
}

/// The bytes of a tensor as a borrowed or owned buffer (for the kernels above).
pub fn bytes_of<'a>(tensor: &'a ckpt_bundle::Tensor<'_>) -> Option<Cow<'a, [u8]>> {
    tensor.bytes().map(Cow::Borrowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le32(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn mean_of_float32_is_rounded_once() -> Result<()> {
        let a = le32(&[1.0, 0.1, f32::MAX, -3.0]);
        let b = le32(&[2.0, 0.2, f32::MAX, 3.0]);
        let c = le32(&[4.0, 0.3, f32::MAX, 0.5]);
        let out = mean(FloatType::F32, &[&a, &b, &c])?;
        let got: Vec<f32> = out
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let want0 = 7.0f64 / 3.0;
        let want1 = (0.1f32 as f64 + 0.2f32 as f64 + 0.3f32 as f64) / 3.0;
        // No overflow: the sum is taken in float64.
        assert_eq!(got, [want0 as f32, want1 as f32, f32::MAX, 0.5f32 / 3.0]);
        Ok(())
    }

    #[test]
    fn float64_mean_is_compensated() -> Result<()> {
        let v = |x: f64| x.to_le_bytes().to_vec();
        let (a, b, c) = (v(1e16), v(1.0), v(-1e16));
        let out = mean(FloatType::F64, &[&a, &b, &c])?;
        assert_eq!(f64::from_le_bytes(out[..8].try_into()?), 1.0 / 3.0);
        assert!(mean(FloatType::F64, &[&a, &b[..4]]).is_err());
        Ok(())
    }

    #[test]
    fn bfloat16_casts_round_to_nearest_even() {
        // 1 + 2^-8 is halfway between two bfloat16 values: ties go to the even one (1.0);
        // 1 + 3*2^-8 rounds up to 1 + 2^-6.
        let src = le32(&[
            1.0 + 1.0 / 256.0,
            1.0 + 3.0 / 256.0,
            1e39f64 as f32,
            f32::NAN,
        ]);
        let (out, r) = cast(FloatType::F32, FloatType::BF16, &src);
        let got: Vec<u16> = out
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(got[0], 0x3f80);
        assert_eq!(got[1], 0x3f82);
        assert_eq!(r.max_error, 1.0 / 256.0);
        assert_eq!(
            r.overflowed, 0,
            "f32::MAX-sized values fit bfloat16's range"
        );
        assert!(bf16::from_bits(got[3]).is_nan());
        let (_, r) = cast(FloatType::F32, FloatType::F16, &le32(&[70000.0, 1.0]));
        assert_eq!(
            r,
            Rounding {
                max_error: 0.0,
                overflowed: 1
            }
        );
    }

    /// The element-by-element definitions the kernels must match: the loops `difference` and
    /// `mean` had before they were vectorized.
    fn reference_difference(kind: Kind, a: &[u8], b: &[u8]) -> Difference {
        let n = a.len() / kind.size();
        let (mut va, mut vb) = (vec![0f64; n], vec![0f64; n]);
        kind.decode(a, &mut va);
        kind.decode(b, &mut vb);
        let mut d = Difference::default();
        for (&x, &y) in va.iter().zip(&vb) {
            if x == y || (x.is_nan() && y.is_nan()) {
                continue;
            }
            d.differing += 1;
            let abs = if x.is_nan() || y.is_nan() {
                f64::INFINITY
            } else {
                (x - y).abs()
            };
            let rel = if abs.is_infinite() {
                f64::INFINITY
            } else {
                abs / x.abs().max(y.abs())
            };
            d.max_abs = d.max_abs.max(abs);
            d.max_rel = d.max_rel.max(rel);
        }
        d
    }

    fn reference_mean(float: FloatType, inputs: &[&[u8]]) -> Vec<u8> {
        let size = float.size();
        let count = inputs[0].len() / size;
        let mut sum = vec![0f64; count];
        let mut out = vec![0u8; count * size];
        let n = inputs.len() as f64;
        if float == FloatType::F64 {
            let mut comp = vec![0f64; count];
            let mut v = vec![0f64; count];
            for input in inputs {
                float.decode(input, &mut v, false);
                for ((s, c), x) in sum.iter_mut().zip(&mut comp).zip(&v) {
                    let t = *s + x;
                    if s.abs() >= x.abs() {
                        *c += (*s - t) + x;
                    } else {
                        *c += (x - t) + *s;
                    }
                    *s = t;
                }
            }
            for (s, c) in sum.iter_mut().zip(&comp) {
                *s = (*s + c) / n;
            }
        } else {
            for input in inputs {
                float.decode(input, &mut sum, true);
            }
            for s in &mut sum {
                *s /= n;
            }
        }
        float.encode(&sum, &mut out);
        out
    }

    /// Deterministic bytes with special values mixed in: NaN (two payloads), ±inf, ±0,
    /// subnormals, the extremes, and ordinary values, each a given dtype's bytes.
    fn special_values(seed: u64, count: usize, float: FloatType) -> Vec<u8> {
        let specials = [
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MIN_POSITIVE / 4.0,
            1e-40,
            -1e-40,
            6e-8,
            f64::MAX,
            -f64::MAX,
            3.4e38,
            65504.0,
            1.0,
            -1.0,
        ];
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let v = if state.is_multiple_of(5) {
                specials[(state >> 8) as usize % specials.len()]
            } else if state.is_multiple_of(7) {
                // Equal in every input: exercises the "same" branch inside a differing chunk.
                2.5
            } else {
                ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e3
            };
            values.push(v);
        }
        let mut out = vec![0u8; count * float.size()];
        float.encode(&values, &mut out);
        out
    }

    /// Asserts that `got` and `want` hold the same bits element by element, except that a NaN
    /// may be any NaN: which NaN an addition of two NaNs gives depends on the order of its
    /// operands, which Rust leaves to the compiler.
    fn assert_same_values(float: FloatType, got: &[u8], want: &[u8]) {
        assert_eq!(got.len(), want.len());
        let size = float.size();
        let mut decoded = [0f64; 2];
        for (i, (g, w)) in got
            .chunks_exact(size)
            .zip(want.chunks_exact(size))
            .enumerate()
        {
            float.decode(g, &mut decoded[..1], false);
            float.decode(w, &mut decoded[1..], false);
            assert!(
                g == w || (decoded[0].is_nan() && decoded[1].is_nan()),
                "{float:?} element {i} of {}: {g:?} != {w:?}",
                got.len() / size
            );
        }
    }

    #[test]
    fn kernels_match_the_element_by_element_definitions() -> Result<()> {
        let floats = [
            FloatType::F32,
            FloatType::F64,
            FloatType::F16,
            FloatType::BF16,
        ];
        // Lengths around the lane, block and chunk sizes, odd ones included.
        for count in [
            0,
            1,
            7,
            8,
            9,
            511,
            513,
            1000,
            CHUNK - 1,
            CHUNK + 13,
            3 * CHUNK + 5,
        ] {
            for float in floats {
                let a = special_values(1, count, float);
                let b = special_values(2, count, float);
                let c = special_values(3, count, float);
                let kind = Kind::Float(float);
                let got = difference(kind, &a, &b);
                let want = reference_difference(kind, &a, &b);
                assert_eq!(got, want, "{float:?} x {count}");
                assert_eq!(difference(kind, &a, &a), Difference::default());
                for inputs in [
                    vec![&a[..], &b[..]],
                    vec![&a[..], &b[..], &c[..], &a[..], &b[..]],
                ] {
                    assert_same_values(
                        float,
                        &mean(float, &inputs)?,
                        &reference_mean(float, &inputs),
                    );
                }
            }
            for (size, signed) in [
                (1, true),
                (1, false),
                (2, true),
                (4, true),
                (8, true),
                (8, false),
            ] {
                let kind = Kind::Int { size, signed };
                let a = special_values(4, count * size, FloatType::F64);
                let b = special_values(5, count * size, FloatType::F64);
                let (a, b) = (&a[..count * size], &b[..count * size]);
                assert_eq!(
                    difference(kind, a, b),
                    reference_difference(kind, a, b),
                    "int{size} signed {signed} x {count}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn checked_kernels_give_the_same_results_and_the_inputs_checksums() -> Result<()> {
        // Over several segments and chunks, none of them whole.
        for (float, count) in [
            (FloatType::F32, 700_001),
            (FloatType::F64, 300_007),
            (FloatType::BF16, 1_100_003),
            (FloatType::F16, 5),
            (FloatType::F32, 0),
        ] {
            let a = special_values(7, count, float);
            let b = special_values(8, count, float);
            let c = special_values(9, count, float);
            let kind = Kind::Float(float);
            let (d, crc_a, crc_b) = difference_checked(kind, &a, &b);
            assert_eq!(d, difference(kind, &a, &b), "{float:?} x {count}");
            assert_eq!(d, reference_difference(kind, &a, &b), "{float:?} x {count}");
            assert_eq!(
                (crc_a, crc_b),
                (crc32c::crc32c(&a), crc32c::crc32c(&b)),
                "{float:?} x {count}"
            );
            let inputs = [&a[..], &b[..], &c[..]];
            let (m, crcs) = mean_checked(float, &inputs)?;
            assert_same_values(float, &m, &reference_mean(float, &inputs));
            assert_eq!(
                crcs,
                inputs.iter().map(|i| crc32c::crc32c(i)).collect::<Vec<_>>()
            );
            // Into a reused buffer: one left longer, with other bytes in it, from before.
            let mut out = vec![0xA5u8; m.len() + 13];
            let both = mean_checked_into(float, &inputs, &mut out)?;
            assert_eq!(out, m, "{float:?} x {count}");
            assert_eq!(both.inputs, crcs);
            assert_eq!(both.output, crc32c::crc32c(&m));
        }
        Ok(())
    }

    #[test]
    fn nan_inf_and_signed_zero_keep_their_meaning() -> Result<()> {
        let f = Kind::Float(FloatType::F32);
        // NaN equals NaN; 0.0 equals -0.0; inf equals inf: nothing differs.
        let a = le32(&[f32::NAN, 0.0, f32::INFINITY, f32::NEG_INFINITY, 1.0]);
        let b = le32(&[-f32::NAN, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1.0]);
        assert_eq!(difference(f, &a, &b), Difference::default());
        // NaN against a number, and inf against -inf or a number: infinite differences.
        for (x, y) in [
            (f32::NAN, 1.0),
            (0.0, f32::NAN),
            (f32::INFINITY, f32::NEG_INFINITY),
            (f32::INFINITY, 3.0),
        ] {
            let d = difference(f, &le32(&[1.0, x, 2.0]), &le32(&[1.0, y, 2.0]));
            assert_eq!(
                d,
                Difference {
                    differing: 1,
                    max_abs: f64::INFINITY,
                    max_rel: f64::INFINITY
                },
                "{x} vs {y}"
            );
        }
        // 0 against a tiny value: relative difference 1.
        let d = difference(
            f,
            &le32(&[0.0; 9]),
            &le32(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1e-45]),
        );
        assert_eq!((d.differing, d.max_rel), (1, 1.0));
        // Means: -0.0 averages to +0.0 (the sum starts at +0.0), NaN and inf propagate.
        let m = mean(
            FloatType::F32,
            &[
                &le32(&[-0.0, f32::NAN, f32::INFINITY, f32::INFINITY]),
                &le32(&[-0.0, 1.0, 1.0, f32::NEG_INFINITY]),
            ],
        )?;
        let got: Vec<u32> = m
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(got[0], 0.0f32.to_bits());
        assert!(f32::from_bits(got[1]).is_nan());
        assert_eq!(got[2], f32::INFINITY.to_bits());
        assert!(f32::from_bits(got[3]).is_nan());
        Ok(())
    }

    #[test]
    fn differences_and_stats() {
        let a = le32(&[1.0, 2.0, f32::NAN, 0.0, 4.0]);
        let b = le32(&[1.0, 2.5, f32::NAN, 0.0, -4.0]);
        let d = difference(Kind::Float(FloatType::F32), &a, &b);
        assert_eq!(
            d,
            Difference {
                differing: 2,
                max_abs: 8.0,
                max_rel: 2.0
            }
        );
        let s = stats(
            Kind::Float(FloatType::F32),
            &le32(&[1.0, f32::INFINITY, 3.0, 0.0, f32::NAN]),
        );
        assert_eq!(
            (s.count, s.finite, s.zeros, s.nan, s.pos_inf),
            (5, 3, 1, 1, 1)
        );
        assert_eq!((s.min, s.max, s.mean), (0.0, 3.0, 4.0 / 3.0));
        assert!((s.std() - (14.0f64 / 9.0).sqrt()).abs() < 1e-15);
        let ints: Vec<u8> = [-3i16, 5].iter().flat_map(|x| x.to_le_bytes()).collect();
        let s = stats(
            Kind::Int {
                size: 2,
                signed: true,
            },
            &ints,
        );
        assert_eq!((s.min, s.max), (-3.0, 5.0));
    }
}
