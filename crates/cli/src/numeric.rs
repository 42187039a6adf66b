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

/// Compares two numeric tensors' bytes element by element.
pub fn difference(kind: Kind, a: &[u8], b: &[u8]) -> Difference {
    let size = kind.size();
    let step = CHUNK * size;
    a.par_chunks(step)
        .zip(b.par_chunks(step))
        .map(|(ca, cb)| {
            if ca == cb {
                return Difference::default();
            }
            let n = ca.len() / size;
            let mut va = vec![0f64; n];
            let mut vb = vec![0f64; n];
            kind.decode(ca, &mut va);
            kind.decode(cb, &mut vb);
            let mut d = Difference::default();
            for (x, y) in va.iter().zip(&vb) {
                let (x, y) = (*x, *y);
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
        })
        .reduce(Difference::default, Difference::merge)
}

/// The element-wise mean of `inputs` (little-endian bytes of one float type, the same
/// length), rounded to nearest even. float16, bfloat16 and float32 values are summed in
/// float64, where the sum of a few of them is exact or nearly; float64 values with
/// Kahan–Neumaier compensated summation.
pub fn mean(float: FloatType, inputs: &[&[u8]]) -> Result<Vec<u8>> {
    let Some(first) = inputs.first() else {
        bail!("no inputs to average");
    };
    if inputs.iter().any(|i| i.len() != first.len()) {
        bail!("inputs differ in size");
    }
    let size = float.size();
    let n = inputs.len() as f64;
    let mut out = vec![0u8; first.len()];
    let step = CHUNK * size;
    out.par_chunks_mut(step).enumerate().for_each(|(c, o)| {
        let start = c * step;
        let count = o.len() / size;
        let mut sum = vec![0f64; count];
        let range = start..start + o.len();
        if float == FloatType::F64 {
            let mut comp = vec![0f64; count];
            let mut v = vec![0f64; count];
            for input in inputs {
                float.decode(&input[range.clone()], &mut v, false);
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
                float.decode(&input[range.clone()], &mut sum, true);
            }
            for s in &mut sum {
                *s /= n;
            }
        }
        float.encode(&sum, o);
    });
    Ok(out)
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
