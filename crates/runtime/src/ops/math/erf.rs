//! `Erf` and `Erfc`, elementwise on float32 and float64.
//!
//! TensorFlow computes float32 `Erf` with Eigen's rational approximation (vectorized; a
//! few ulps from the true value) and float32 `Erfc` with the C library's `erfcf`, flushing
//! subnormal results to zero. Here float32 `Erf` is Eigen's 9/12-degree rational interpolant
//! (the same kind of approximation, which vectorizes and so keeps GELU layers fast), float32
//! `Erfc` is fdlibm's double-precision `erfc` rounded to float with subnormals flushed, and
//! float64 uses fdlibm's `erf` and `erfc` (what glibc computes). Every float32 result is
//! within a few ulps of TensorFlow's.

// The coefficients are written as fdlibm and Eigen publish them; the compiler rounds them.
#![allow(clippy::excessive_precision)]

use ckpt_graph::Node;

use crate::ops::math::unary::{map_reuse, map_reuse_f32};
use crate::ops::{kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(ErrorFunction {
        complement: node.op == "Erfc",
    })
}

#[derive(Debug)]
struct ErrorFunction {
    complement: bool,
}

impl Kernel for ErrorFunction {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let y = match (x, self.complement) {
            (Value::F32(t), false) => Value::F32(map_reuse_f32(t, erf_f32)),
            (Value::F32(t), true) => Value::F32(map_reuse(t, erfc_f32)),
            (Value::F64(t), false) => Value::F64(map_reuse(t, erf)),
            (Value::F64(t), true) => Value::F64(map_reuse(t, erfc)),
            (other, _) => op_bail!("unsupported dtype {}", other.dtype()),
        };
        Ok(vec![y])
    }
}

/// Eigen's `generic_fast_erf_float`: an odd 9-degree over even 12-degree rational function,
/// clamped to ±1 beyond erfinv(1 - 2^-23).
#[inline]
pub(crate) fn erf_f32(x: f32) -> f32 {
    // Eigen's literals as written, rounded to float by the compiler as C++ rounds them.
    const CLAMP: f32 = 3.832506856900711;
    const ALPHA: [f32; 5] = [
        1.128379143519084,
        0.18520832239976145,
        0.050955695062380861,
        0.0034082910107109506,
        0.00022905065861350646,
    ];
    const BETA: [f32; 7] = [
        1.0,
        0.49746925110067538,
        0.11098505178285362,
        0.014070470171167667,
        0.0010179625278914885,
        0.000023547966471313185,
        -1.1791602954361697e-7,
    ];
    let x2 = x * x;
    let mut p = x2 * ALPHA[4] + ALPHA[3];
    p = x2 * p + ALPHA[2];
    p = x2 * p + ALPHA[1];
    p = x2 * p + ALPHA[0];
    p *= x;
    let mut q = x2 * BETA[6] + BETA[5];
    q = x2 * q + BETA[4];
    q = x2 * q + BETA[3];
    q = x2 * q + BETA[2];
    q = x2 * q + BETA[1];
    q = x2 * q + BETA[0];
    if x.abs() >= CLAMP {
        1.0f32.copysign(x)
    } else {
        p / q
    }
}

/// `erfc` of a float, flushing subnormal results to zero as TensorFlow's threads do.
pub(crate) fn erfc_f32(x: f32) -> f32 {
    let y = erfc(f64::from(x)) as f32;
    if y.is_subnormal() {
        0.0
    } else {
        y
    }
}

// fdlibm's s_erf.c (Sun Microsystems, 1993), the algorithm and coefficients glibc uses.
const ERX: f64 = 8.450_629_115_104_675_292_97e-1;
const EFX: f64 = 1.283_791_670_955_125_863_16e-1;
const EFX8: f64 = 1.027_033_336_764_100_690_53;
const PP: [f64; 5] = [
    1.283_791_670_955_125_585_61e-1,
    -3.250_421_072_470_014_993_70e-1,
    -2.848_174_957_559_851_047_66e-2,
    -5.770_270_296_489_441_591_57e-3,
    -2.376_301_665_665_016_260_84e-5,
];
const QQ: [f64; 5] = [
    3.979_172_239_591_553_528_19e-1,
    6.502_224_998_876_729_444_85e-2,
    5.081_306_281_875_765_627_76e-3,
    1.324_947_380_043_216_445_26e-4,
    -3.960_228_278_775_368_123_20e-6,
];
const PA: [f64; 7] = [
    -2.362_118_560_752_659_440_77e-3,
    4.148_561_186_837_483_316_66e-1,
    -3.722_078_760_357_013_238_47e-1,
    3.183_466_199_011_617_536_74e-1,
    -1.108_946_942_823_966_774_76e-1,
    3.547_830_432_561_823_593_71e-2,
    -2.166_375_594_868_790_843_00e-3,
];
const QA: [f64; 6] = [
    1.064_208_804_008_442_282_86e-1,
    5.403_979_177_021_710_489_37e-1,
    7.182_865_441_419_626_628_68e-2,
    1.261_712_198_087_616_421_12e-1,
    1.363_708_391_202_905_073_62e-2,
    1.198_449_984_679_910_741_70e-2,
];
const RA: [f64; 8] = [
    -9.864_944_034_847_148_227_05e-3,
    -6.938_585_727_071_817_643_72e-1,
    -1.055_862_622_532_329_098_14e1,
    -6.237_533_245_032_600_603_96e1,
    -1.623_966_694_625_734_703_55e2,
    -1.846_050_929_067_110_359_94e2,
    -8.128_743_550_630_659_342_46e1,
    -9.814_329_344_169_145_485_92,
];
const SA: [f64; 8] = [
    1.965_127_166_743_925_712_92e1,
    1.376_577_541_435_190_426_00e2,
    4.345_658_774_752_292_288_21e2,
    6.453_872_717_332_678_803_36e2,
    4.290_081_400_275_678_333_86e2,
    1.086_350_055_417_794_351_34e2,
    6.570_249_770_319_281_701_35,
    -6.042_441_521_485_809_874_38e-2,
];
const RB: [f64; 7] = [
    -9.864_942_924_700_099_285_97e-3,
    -7.992_832_376_805_230_065_74e-1,
    -1.775_795_491_775_475_198_89e1,
    -1.606_363_848_558_219_160_62e2,
    -6.375_664_433_683_896_277_22e2,
    -1.025_095_131_611_077_249_54e3,
    -4.835_191_916_086_513_970_19e2,
];
const SB: [f64; 7] = [
    3.033_806_074_348_245_829_24e1,
    3.257_925_129_965_739_188_26e2,
    1.536_729_586_084_436_959_94e3,
    3.199_858_219_508_595_539_08e3,
    2.553_050_406_433_164_425_83e3,
    4.745_285_412_069_553_672_15e2,
    -2.244_095_244_658_581_833_62e1,
];
const TINY: f64 = 1e-300;

/// `c0 + s*(c1 + s*(...))`.
fn poly(s: f64, c: &[f64]) -> f64 {
    c.iter().rev().fold(0.0, |acc, &k| acc * s + k)
}

/// `1 + s*(c0 + s*(c1 + ...))`.
fn poly1(s: f64, c: &[f64]) -> f64 {
    1.0 + s * poly(s, c)
}

fn high_word(x: f64) -> u32 {
    (x.to_bits() >> 32) as u32
}

/// `exp(-x²)/x`-type tail shared by erf and erfc for |x| >= 1.25: returns
/// `exp(-z*z - 0.5625) * exp((z - x)*(z + x) + R/S)` with `z` = `x` with its low word cleared.
fn tail(x: f64, ix: u32, erfc_bound: bool) -> f64 {
    let s = 1.0 / (x * x);
    let bound = if erfc_bound { 0x4006_DB6D } else { 0x4006_DB6E };
    let (r, q) = if ix < bound {
        (poly(s, &RA), poly1(s, &SA))
    } else {
        (poly(s, &RB), poly1(s, &SB))
    };
    let z = f64::from_bits(x.to_bits() & 0xffff_ffff_0000_0000);
    (-z * z - 0.5625).exp() * ((z - x) * (z + x) + r / q).exp()
}

/// fdlibm's `erf`.
pub(crate) fn erf(x: f64) -> f64 {
    let hx = high_word(x);
    let ix = hx & 0x7fff_ffff;
    let negative = hx >> 31 == 1;
    if ix >= 0x7ff0_0000 {
        return if x.is_nan() { x } else { 1.0f64.copysign(x) };
    }
    if ix < 0x3feb_0000 {
        if ix < 0x3e30_0000 {
            if ix < 0x0080_0000 {
                return 0.125 * (8.0 * x + EFX8 * x);
            }
            return x + EFX * x;
        }
        let z = x * x;
        let y = poly(z, &PP) / poly1(z, &QQ);
        return x + x * y;
    }
    if ix < 0x3ff4_0000 {
        let s = x.abs() - 1.0;
        let p = poly(s, &PA) / poly1(s, &QA);
        return if negative { -ERX - p } else { ERX + p };
    }
    if ix >= 0x4018_0000 {
        return if negative { TINY - 1.0 } else { 1.0 - TINY };
    }
    let ax = x.abs();
    let r = tail(ax, ix, false);
    if negative {
        r / ax - 1.0
    } else {
        1.0 - r / ax
    }
}

/// fdlibm's `erfc`.
pub(crate) fn erfc(x: f64) -> f64 {
    let hx = high_word(x);
    let ix = hx & 0x7fff_ffff;
    let negative = hx >> 31 == 1;
    if ix >= 0x7ff0_0000 {
        return if x.is_nan() {
            x
        } else if negative {
            2.0
        } else {
            0.0
        };
    }
    if ix < 0x3feb_0000 {
        if ix < 0x3c70_0000 {
            return 1.0 - x;
        }
        let z = x * x;
        let y = poly(z, &PP) / poly1(z, &QQ);
        if hx < 0x3fd0_0000 {
            return 1.0 - (x + x * y);
        }
        let r = x * y + (x - 0.5);
        return 0.5 - r;
    }
    if ix < 0x3ff4_0000 {
        let s = x.abs() - 1.0;
        let p = poly(s, &PA) / poly1(s, &QA);
        return if negative {
            1.0 + (ERX + p)
        } else {
            (1.0 - ERX) - p
        };
    }
    if ix < 0x403c_0000 {
        if negative && ix >= 0x4018_0000 {
            return 2.0 - TINY;
        }
        let ax = x.abs();
        let r = tail(ax, ix, true);
        return if negative { 2.0 - r / ax } else { r / ax };
    }
    if negative {
        2.0 - TINY
    } else {
        TINY * TINY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TensorFlow 2.21's float32 `tf.math.erf` and `tf.math.erfc` of the same inputs.
    const INPUTS: [f32; 23] = [
        -10.0, -3.0, -1.0, -0.5, 0.0, 0.3, 0.5, 0.7, 0.9, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0, 9.0,
        9.2, 10.0, 10.05, 12.0, 15.0, 30.0,
    ];
    const TF_ERFC: [f32; 23] = [
        2.0,
        1.999_977_9,
        1.842_700_7,
        1.520_5,
        1.0,
        0.671_373_2,
        0.479_500_1,
        0.322_198_8,
        0.203_091_8,
        0.157_299_22,
        0.033_894_856,
        0.004_677_735,
        2.209_049_7e-5,
        1.541_725_9e-8,
        1.537_46e-12,
        4.183_825_7e-23,
        4.137_031_7e-37,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ];
    const TF_ERF: [f32; 23] = [
        -1.0,
        -0.999_978,
        -0.842_700_84,
        -0.520_499_9,
        0.0,
        0.328_626_78,
        0.520_499_9,
        0.677_801_2,
        0.796_908_2,
        0.842_700_84,
        0.966_105_1,
        0.995_322_35,
        0.999_978,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
    ];

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn float32_results_are_within_a_few_ulps_of_tensorflow() {
        for ((&x, &e), &c) in INPUTS.iter().zip(&TF_ERF).zip(&TF_ERFC) {
            assert!(
                ulps(erf_f32(x), e) <= 8,
                "erf({x}) = {}, TF {e}",
                erf_f32(x)
            );
            assert!(
                ulps(erfc_f32(x), c) <= 2,
                "erfc({x}) = {}, TF {c}",
                erfc_f32(x)
            );
        }
    }

    #[test]
    fn double_precision_matches_reference_values() {
        // glibc's erf and erfc (Python's math.erf, math.erfc).
        for (x, e, c) in [
            (0.1, 0.112_462_916_018_284_9, 0.887_537_083_981_715_2),
            (0.5, 0.520_499_877_813_046_5, 0.479_500_122_186_953_5),
            (1.0, 0.842_700_792_949_714_9, 0.157_299_207_050_285_13),
            (2.0, 0.995_322_265_018_952_7, 0.004_677_734_981_047_265),
            (3.5, 0.999_999_256_901_627_6, 7.430_983_723_414_128e-7),
            (6.5, 1.0, 3.842_148_327_120_647_5e-20),
            (-2.0, -0.995_322_265_018_952_7, 1.995_322_265_018_952_8),
        ] {
            assert!(
                (erf(x) - e).abs() <= 2.3e-16 * e.abs(),
                "erf({x}) = {}",
                erf(x)
            );
            assert!(
                (erfc(x) - c).abs() <= 4e-16 * c.abs(),
                "erfc({x}) = {}, want {c}",
                erfc(x)
            );
        }
        assert!(erfc(27.0) > 5.237e-319 && erfc(27.0) < 5.238e-319);
        assert!(erf(f64::NAN).is_nan() && erfc(f64::NAN).is_nan());
        assert_eq!((erf(f64::INFINITY), erf(f64::NEG_INFINITY)), (1.0, -1.0));
        assert_eq!((erfc(f64::INFINITY), erfc(f64::NEG_INFINITY)), (0.0, 2.0));
    }

    #[test]
    fn float32_erf_is_accurate_everywhere() {
        let mut x = -5.0f32;
        while x < 5.0 {
            let want = erf(f64::from(x)) as f32;
            assert!(
                ulps(erf_f32(x), want) <= 6,
                "erf({x}) = {} vs {want}",
                erf_f32(x)
            );
            x += 0.0013;
        }
        assert!(erf_f32(f32::NAN).is_nan());
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
    }
}
