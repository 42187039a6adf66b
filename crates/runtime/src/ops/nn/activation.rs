//! Elementwise activations: `Relu`, `Relu6`, `LeakyRelu`, `Elu`, `Sigmoid`, `Tanh`.
//! `Relu` is `max(x, 0)` and `Relu6` `min(max(x, 0), 6)` with NaN propagated, as TensorFlow's
//! kernels (`cwiseMax<PropagateNaN>`, tensorflow/core/kernels/relu_op_functor.h): NaN stays
//! NaN and -0.0 becomes +0.0.
//! Computed in place when the input buffer is not shared; float32 `Sigmoid` and `Tanh` with
//! the vectorizable approximations of [`vmath`], as TensorFlow's Eigen kernels do.

use ckpt_graph::Node;

use super::vmath;
use crate::gemm;
use crate::ops::math::erf::erf_f32;
use crate::ops::math::unary::{map_reuse, map_reuse_f32};
use crate::ops::{kernel, node_error, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Activation {
    Relu,
    Relu6,
    LeakyRelu(f32),
    Elu,
    Sigmoid,
    Tanh,
    Softplus,
}

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(parse(node)?)
}

/// The activation a node computes.
pub(crate) fn parse(node: &Node) -> Result<Activation, Error> {
    Ok(match node.op.as_str() {
        "Relu" => Activation::Relu,
        "Relu6" => Activation::Relu6,
        "LeakyRelu" => Activation::LeakyRelu(node.attr_f32_or("alpha", 0.2)?),
        "Elu" => Activation::Elu,
        "Sigmoid" => Activation::Sigmoid,
        "Tanh" => Activation::Tanh,
        "Softplus" => Activation::Softplus,
        other => return Err(node_error(node, format!("not an activation: {other}"))),
    })
}

/// `log(1 + exp(x))`, switching to `x` and `exp(x)` far from 0 as TensorFlow does.
macro_rules! softplus {
    ($f:ty) => {
        |x: $f| {
            let threshold = <$f>::EPSILON.ln() + 2.0;
            if x > -threshold {
                x
            } else if x < threshold {
                x.exp()
            } else {
                x.exp().ln_1p()
            }
        }
    };
}

macro_rules! activate {
    ($act:expr, $t:expr, $f:ty, sigmoid: $sigmoid:expr, tanh: $tanh:expr) => {
        match $act {
            Activation::Relu => map_reuse($t, |x: $f| if x.is_nan() || x > 0.0 { x } else { 0.0 }),
            Activation::Relu6 => map_reuse($t, |x: $f| {
                let r = if x.is_nan() || x > 0.0 { x } else { 0.0 };
                if r > 6.0 {
                    6.0
                } else {
                    r
                }
            }),
            Activation::LeakyRelu(alpha) => {
                let alpha = alpha as $f;
                map_reuse($t, move |x: $f| if x > 0.0 { x } else { x * alpha })
            }
            Activation::Elu => map_reuse($t, |x: $f| if x < 0.0 { x.exp_m1() } else { x }),
            Activation::Sigmoid => map_reuse($t, $sigmoid),
            Activation::Tanh => map_reuse($t, $tanh),
            Activation::Softplus => map_reuse($t, softplus!($f)),
        }
    };
}

impl Activation {
    /// Whether [`Activation::apply_m256`] computes this activation in a register.
    pub(crate) fn in_register(self) -> bool {
        matches!(self, Activation::Relu | Activation::Relu6)
    }

    /// `Relu` or `Relu6` of 8 lanes, bit for bit as [`Activation::apply_f32`] (NaN stays NaN,
    /// -0.0 becomes +0.0); any other activation returns `v` unchanged (see
    /// [`Activation::in_register`]). For kernels that store finished sums from registers.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub(crate) fn apply_m256(self, v: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::_mm256_setzero_ps;
        use std::arch::x86_64::{_mm256_add_ps, _mm256_max_ps, _mm256_min_ps, _mm256_set1_ps};
        // `maxps(a, b)` is `a > b ? a : b`: with the lane second, a NaN lane is kept; adding
        // +0.0 then turns the -0.0 it keeps against 0.0 into +0.0. `minps(6, r)` keeps a NaN
        // `r` the same way.
        let relu = |v| _mm256_add_ps(_mm256_max_ps(_mm256_setzero_ps(), v), _mm256_setzero_ps());
        match self {
            Activation::Relu => relu(v),
            Activation::Relu6 => _mm256_min_ps(_mm256_set1_ps(6.0), relu(v)),
            _ => v,
        }
    }

    /// [`Activation::apply_m256`] on 16 lanes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn apply_m512(self, v: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::_mm512_setzero_ps;
        use std::arch::x86_64::{_mm512_add_ps, _mm512_max_ps, _mm512_min_ps, _mm512_set1_ps};
        let relu = |v| _mm512_add_ps(_mm512_max_ps(_mm512_setzero_ps(), v), _mm512_setzero_ps());
        match self {
            Activation::Relu => relu(v),
            Activation::Relu6 => _mm512_min_ps(_mm512_set1_ps(6.0), relu(v)),
            _ => v,
        }
    }

    /// Applies the activation to a float32 slice in place (for fused kernels).
    pub(crate) fn apply_f32(self, data: &mut [f32]) {
        match self {
            // Branch-free selects, eight lanes wide through `map_f32`.
            Activation::Relu => {
                gemm::map_f32(data, |x| if x.is_nan() || x > 0.0 { x } else { 0.0 })
            }
            Activation::Relu6 => gemm::map_f32(data, |x| {
                let r = if x.is_nan() || x > 0.0 { x } else { 0.0 };
                if r > 6.0 {
                    6.0
                } else {
                    r
                }
            }),
            Activation::LeakyRelu(a) => gemm::map_f32(data, |x| if x > 0.0 { x } else { x * a }),
            Activation::Elu => data
                .iter_mut()
                .for_each(|x| *x = if *x < 0.0 { x.exp_m1() } else { *x }),
            Activation::Sigmoid => gemm::map_f32(data, vmath::sigmoid),
            Activation::Tanh => gemm::map_f32(data, vmath::tanh),
            Activation::Softplus => {
                let f = softplus!(f32);
                data.iter_mut().for_each(|x| *x = f(*x))
            }
        }
    }
}

/// GELU with the exact error function, which graphs spell out op by op (google-research/bert's
/// `gelu`, Keras' `gelu(approximate=False)`); the fusion recognizes the two spellings and
/// computes each in its own order of float32 operations, so results are bit-identical to the
/// unfused ops. `√2` is `sqrt(2.0)` in float32 and `erf` is [`erf_f32`], as the `Erf` op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum GeluErf {
    /// `(x * 0.5) * (1 + erf(x / √2))` (Keras).
    HalfXTimesCdf,
    /// `x * (0.5 * (1 + erf(x / √2)))` (google-research/bert).
    XTimesHalfCdf,
}

impl GeluErf {
    /// Applies GELU to a float32 slice in place (for fused kernels), at the CPU's vector width.
    pub(crate) fn apply_f32(self, data: &mut [f32]) {
        let sqrt2 = 2.0f32.sqrt();
        match self {
            GeluErf::HalfXTimesCdf => {
                gemm::map_f32(data, |x| (x * 0.5) * (1.0 + erf_f32(x / sqrt2)))
            }
            GeluErf::XTimesHalfCdf => {
                gemm::map_f32(data, |x| x * (0.5 * (1.0 + erf_f32(x / sqrt2))))
            }
        }
    }
}

impl Kernel for Activation {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let y = match x {
            // The recurrent cells' gates: vmath's branch-free forms at the CPU's vector width.
            Value::F32(t) if *self == Activation::Sigmoid => {
                Value::F32(map_reuse_f32(t, vmath::sigmoid))
            }
            Value::F32(t) if *self == Activation::Tanh => Value::F32(map_reuse_f32(t, vmath::tanh)),
            Value::F32(t) => Value::F32(activate!(*self, t, f32,
                sigmoid: vmath::sigmoid, tanh: vmath::tanh)),
            Value::F64(t) => Value::F64(activate!(*self, t, f64,
                sigmoid: |x: f64| 1.0 / (1.0 + (-x).exp()), tanh: f64::tanh)),
            other => op_bail!("unsupported dtype {}", other.dtype()),
        };
        Ok(vec![y])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn in_register_relus_are_the_slice_ones_bit_for_bit() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let xs = [f32::NAN, -0.0, 0.0, -1.0, 0.5, 6.0, 7.0, f32::NEG_INFINITY];
        for act in [Activation::Relu, Activation::Relu6] {
            assert!(act.in_register());
            let mut want = xs;
            act.apply_f32(&mut want);
            let mut got = [0.0f32; 8];
            // SAFETY: AVX2 is present (checked above); the pointers cover 8 floats each.
            #[allow(unsafe_code)]
            unsafe {
                use std::arch::x86_64::{_mm256_loadu_ps, _mm256_storeu_ps};
                _mm256_storeu_ps(
                    got.as_mut_ptr(),
                    act.apply_m256(_mm256_loadu_ps(xs.as_ptr())),
                );
            }
            assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "{act:?}");
        }
        assert!(!Activation::Elu.in_register());
        if std::arch::is_x86_feature_detected!("avx512f") {
            let wide: [f32; 16] = std::array::from_fn(|i| xs[i % 8]);
            for act in [Activation::Relu, Activation::Relu6] {
                let mut want = wide;
                act.apply_f32(&mut want);
                let mut got = [0.0f32; 16];
                // SAFETY: AVX-512F is present (checked above); 16 floats each.
                #[allow(unsafe_code)]
                unsafe {
                    use std::arch::x86_64::{_mm512_loadu_ps, _mm512_storeu_ps};
                    let v = act.apply_m512(_mm512_loadu_ps(wide.as_ptr()));
                    _mm512_storeu_ps(got.as_mut_ptr(), v);
                }
                assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "{act:?}");
            }
        }
    }

    #[test]
    fn activations_match_formulas() -> Result<(), OpError> {
        let xs = vec![-3.0f32, -0.5, 0.0, 0.5, 7.0];
        type Case = (Activation, fn(f32) -> f32);
        let cases: [Case; 7] = [
            (Activation::Relu, |x| x.max(0.0)),
            (Activation::Relu6, |x| x.clamp(0.0, 6.0)),
            (Activation::LeakyRelu(0.2), |x| {
                if x > 0.0 {
                    x
                } else {
                    0.2 * x
                }
            }),
            (Activation::Elu, |x| if x < 0.0 { x.exp() - 1.0 } else { x }),
            (Activation::Sigmoid, |x| 1.0 / (1.0 + (-x).exp())),
            (Activation::Tanh, f32::tanh),
            (Activation::Softplus, |x| (1.0 + x.exp()).ln()),
        ];
        for (act, f) in cases {
            let y = act.run(vec![Value::new(vec![5], xs.clone())?])?;
            let got = y[0].as_f32().ok_or(OpError("dtype".into()))?;
            for (&g, &x) in got.iter().zip(&xs) {
                assert!((g - f(x)).abs() <= 1e-6, "{act:?}({x}) = {g}");
            }
            let mut inplace = xs.clone();
            act.apply_f32(&mut inplace);
            assert_eq!(inplace.as_slice(), got);
        }
        assert_eq!(
            Activation::Relu.run(vec![Value::scalar(1i32)]).err(),
            Some(OpError("unsupported dtype int32".into()))
        );
        Ok(())
    }

    /// TensorFlow 2.21's float32 `tf.tanh` and `tf.sigmoid` of the same inputs. TF computes
    /// them with Eigen's vectorized approximations; ours are within a few ulps of those.
    #[test]
    fn tanh_and_sigmoid_match_tensorflow() -> Result<(), OpError> {
        let xs = vec![
            -20.0f32, -8.0, -3.0, -0.5, -1e-5, 0.0, 1e-5, 0.5, 3.0, 8.0, 20.0,
        ];
        let tanh = [
            -1.0f32,
            -1.0,
            -0.995_054_7,
            -0.462_117_14,
            -1e-5,
            0.0,
            1e-5,
            0.462_117_14,
            0.995_054_7,
            1.0,
            1.0,
        ];
        let sigmoid = [
            2.061_154_1e-9f32,
            3.353_500_8e-4,
            0.047_425_866,
            0.377_540_68,
            0.499_997_5,
            0.5,
            0.500_002_5,
            0.622_459_35,
            0.952_574_13,
            0.999_664_66,
            1.0,
        ];
        for (act, want) in [(Activation::Tanh, tanh), (Activation::Sigmoid, sigmoid)] {
            let y = act.run(vec![Value::new(vec![xs.len()], xs.clone())?])?;
            let got = y[0].as_f32().ok_or(OpError("dtype".into()))?;
            for ((&g, &w), &x) in got.iter().zip(&want).zip(&xs) {
                assert!(
                    (g - w).abs() <= 3e-7 * w.abs(),
                    "{act:?}({x}) = {g}, TF {w}"
                );
            }
        }
        Ok(())
    }
}
