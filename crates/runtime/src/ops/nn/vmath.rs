//! Float32 `exp`, `tanh` and the logistic sigmoid without branches or library calls, so that a
//! loop over a slice compiles to SIMD code. Recurrent cells apply them to every gate of every
//! step, where calling libm element by element cost half the run time. Like TensorFlow's
//! Eigen kernels (which approximate the same way), they are accurate to a few ulps (relative
//! errors below 3.2e-7, 1.4e-7 and 0.8e-7 for `tanh`, `sigmoid` and `exp`):
//!
//! - `exp`: Cephes' `expf` (range reduction by `ln 2` in two parts, a degree-6 polynomial,
//!   the power of two built in the exponent bits), for inputs clamped to `[-87.3, 88.3]`;
//! - `tanh`: Eigen's `generic_fast_tanh_float`, a 13/6-degree rational function on inputs
//!   clamped to ±7.905 (where it reaches ±1), and `x` itself below 0.0004 in magnitude;
//! - `sigmoid`: `1 / (1 + exp(-x))` with the `exp` above.

/// `e^x`, within 2 ulps over `[-87.3, 88.3]`; `e^88.3` above that range and exactly 0 below
/// it (where `e^x` is subnormal or smaller: subnormal results would slow every later
/// multiplication by them, such as a softmax of masked attention scores).
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as Cephes writes them
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (for |v| < 2^22).
    const ROUND: f32 = 12_582_912.0;
    let x_in = x;
    let x = x.clamp(-87.3, 88.3);
    let v = x * LOG2E + ROUND;
    let n = v - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    // n is in [-126, 127]: 2^n is a normal float built from its exponent bits. `v` is
    // 1.5 * 2^23 + n, whose low mantissa bits hold n in two's complement: adding the bias 127
    // and shifting keeps exactly (n + 127) << 23, with integer operations that vectorize
    // (a float-to-int cast, saturating in Rust, does not).
    let bits = v.to_bits().wrapping_add(127) << 23;
    let y = e * f32::from_bits(bits);
    if x_in < -87.3 {
        0.0
    } else {
        y
    }
}

/// `tanh(x)`, Eigen's rational approximation (at most 3.2e-7 relative error, 6 ulps just
/// below ±1).
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as Eigen writes them
pub(crate) fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.90531110763549805;
    let c = x.clamp(-CLAMP, CLAMP);
    let x2 = c * c;
    let p = -2.76076847742355e-16_f32;
    let p = p * x2 + 2.00018790482477e-13;
    let p = p * x2 + -8.60467152213735e-11;
    let p = p * x2 + 5.12229709037114e-08;
    let p = p * x2 + 1.48572235717979e-05;
    let p = p * x2 + 6.37261928875436e-04;
    let p = p * x2 + 4.89352455891786e-03;
    let p = p * c;
    let q = 1.19825839466702e-06_f32;
    let q = q * x2 + 1.18534705686654e-04;
    let q = q * x2 + 2.26843463243900e-03;
    let q = q * x2 + 4.89352518554385e-03;
    if x.abs() < 4e-4 {
        x
    } else {
        p / q
    }
}

/// The logistic sigmoid `1 / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `|got - want| / |want|`.
    fn rel(got: f32, want: f64) -> f64 {
        (f64::from(got) - want).abs() / want.abs().max(1e-300)
    }

    /// Every function against the `f64` formula on a dense grid and at the edges.
    #[test]
    fn within_a_few_ulps_of_the_exact_values() {
        let mut xs: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 1e-3).collect();
        xs.extend([
            1e-7, -1e-7, 3.9e-4, 4.1e-4, 7.9, -7.9, 9.0, 15.0, -15.0, 30.0,
        ]);
        for &x in &xs {
            let xd = f64::from(x);
            if x != 0.0 {
                assert!(rel(tanh(x), xd.tanh()) <= 4e-7, "tanh({x}) = {}", tanh(x));
            }
            let s = 1.0 / (1.0 + (-xd).exp());
            assert!(rel(sigmoid(x), s) <= 2e-7, "sigmoid({x}) = {}", sigmoid(x));
            assert!(rel(exp(x), xd.exp()) <= 1.5e-7, "exp({x}) = {}", exp(x));
        }
        for x in (-87..=88).map(|i| i as f32 + 0.25) {
            assert!(rel(exp(x), f64::from(x).exp()) <= 1.5e-7, "exp({x})");
        }
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert_eq!(sigmoid(100.0), 1.0);
        assert!(sigmoid(-100.0) < 1e-37);
        assert_eq!(exp(-87.5), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
    }
}
