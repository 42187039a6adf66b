//! float16 and bfloat16 as TensorFlow's CPU kernels compute them: values keep their narrow
//! dtype between kernels; a kernel given narrow inputs computes on them widened to float32
//! (exactly) and rounds its float32 outputs back to the narrow type ([`Widening`]). So a graph
//! computing in bfloat16 gives values representable in bfloat16, as TensorFlow's do.
//!
//! How the float32 result is rounded follows TensorFlow 2.21's CPU kernels (built with
//! `TF_ENABLE_ONEDNN_OPTS=0`, i.e. the Eigen kernels; measured against TensorFlow on random
//! inputs, see `fixtures/half_precision`):
//!
//! - to nearest even (what `Eigen::half(float)` and `Eigen::bfloat16(float)` do) for almost
//!   every kernel: `Conv2D`, `BiasAdd`, element-wise arithmetic, `Relu`, `Tanh`, `Exp`, and
//!   bfloat16 `Sum`/`Mean` (TensorFlow reduces bfloat16 in float32);
//! - **toward zero for bfloat16 `MatMul` and `BatchMatMul*`** ([`Rounding::TowardZero`]):
//!   `BaseBatchMatMulOp` (`tensorflow/core/kernels/matmul_op_impl.h`) widens bfloat16 and
//!   float16 operands to float32, multiplies in float32 and narrows the product with
//!   `FastConvertFromFloat`, which for bfloat16 is `FloatToBFloat16`
//!   (`tensorflow/core/framework/bfloat16.cc`): a copy of the upper 16 bits of each float32,
//!   i.e. truncation. float16 products go through Eigen's cast, to nearest even;
//! - `DepthwiseConv2dNative` accumulates in the narrow type itself
//!   ([`crate::ops::nn::depthwise`]).
//!
//! Not reproduced bit for bit (measured, left as float32 computation rounded once): float16
//! `Sum`/`Mean` (Eigen accumulates them in float16, in its packet order), `Softmax`,
//! `Sigmoid` and `AvgPool` in either narrow type (Eigen evaluates their intermediate
//! expressions in the narrow type). These agree with TensorFlow to a few narrow ulps.
//!
//! `Cast` converts directly ([`crate::ops::array::cast`]); data-movement kernels give the same
//! result either way (widening and narrowing back is exact).

use std::fmt;

use half::{bf16, f16};

use crate::ops::{Kernel, OpError};
use crate::value::TensorBuf;
use crate::{DType, Value};

/// A float16 or bfloat16 value widened to float32 (exact); `None` for other dtypes.
pub(crate) fn widen(v: &Value) -> Option<Value> {
    let shape = || v.shape().to_vec();
    match v {
        Value::F16(t) => Some(Value::F32(TensorBuf::from_parts(
            shape(),
            t.data().iter().map(|x| x.to_f32()).collect(),
        ))),
        Value::BF16(t) => Some(Value::F32(TensorBuf::from_parts(
            shape(),
            t.data().iter().map(|x| x.to_f32()).collect(),
        ))),
        _ => None,
    }
}

/// A float32 value rounded to `to` (float16 or bfloat16), to nearest even; other values and
/// targets are returned unchanged.
pub(crate) fn narrow(v: Value, to: DType) -> Value {
    narrow_with(v, to, Rounding::NearestEven)
}

/// How a kernel's float32 result becomes bfloat16 (float16 is always rounded to nearest even).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rounding {
    /// To nearest, ties to even: `Eigen::bfloat16(float)`.
    NearestEven,
    /// The upper 16 bits of the float32, i.e. toward zero (NaNs whose payload lies only in
    /// the low bits become infinities, as there): TensorFlow's `FloatToBFloat16`.
    TowardZero,
}

/// The bfloat16 rounding TensorFlow's CPU kernel for `op` applies to its float32 result:
/// toward zero for the matrix products (`BaseBatchMatMulOp` narrows with `FloatToBFloat16`,
/// `tensorflow/core/kernels/matmul_op_impl.h`), to nearest even otherwise.
pub(crate) fn bf16_rounding(op: &str) -> Rounding {
    match op {
        "MatMul" | "BatchMatMul" | "BatchMatMulV2" | "BatchMatMulV3" => Rounding::TowardZero,
        _ => Rounding::NearestEven,
    }
}

/// bfloat16 `x` truncated: TensorFlow's `FloatToBFloat16` (the float32's upper 16 bits).
pub(crate) fn bf16_toward_zero(x: f32) -> bf16 {
    bf16::from_bits((x.to_bits() >> 16) as u16)
}

/// [`narrow`] with bfloat16 results rounded as `bf16_rule` says.
pub(crate) fn narrow_with(v: Value, to: DType, bf16_rule: Rounding) -> Value {
    match (v, to) {
        (Value::F32(t), DType::BFloat16) if bf16_rule == Rounding::TowardZero => {
            Value::BF16(TensorBuf::from_parts(
                t.shape().to_vec(),
                t.data().iter().map(|&x| bf16_toward_zero(x)).collect(),
            ))
        }
        (Value::F32(t), DType::Float16) => Value::F16(TensorBuf::from_parts(
            t.shape().to_vec(),
            t.data().iter().map(|&x| f16::from_f32(x)).collect(),
        )),
        (Value::F32(t), DType::BFloat16) => Value::BF16(TensorBuf::from_parts(
            t.shape().to_vec(),
            t.data().iter().map(|&x| bf16::from_f32(x)).collect(),
        )),
        (v, _) => v,
    }
}

/// Runs `inner` on narrow inputs widened to float32 and rounds its float32 outputs back to the
/// inputs' narrow dtype (only the first `narrowed` outputs when set: `FusedBatchNorm*` gives its
/// statistics in float32, TensorFlow's `U`), bfloat16 ones as `rounding` says; with no narrow
/// input it runs `inner` as it is.
pub(crate) struct Widening {
    /// The float32 kernel.
    pub inner: Box<dyn Kernel>,
    /// How many leading outputs are narrowed (all when `None`).
    pub narrowed: Option<usize>,
    /// How bfloat16 outputs are rounded.
    pub rounding: Rounding,
}

impl Widening {
    /// `inner` wrapped as TensorFlow's CPU kernel for `op` treats narrow inputs.
    pub(crate) fn for_op(inner: Box<dyn Kernel>, op: &str) -> Self {
        Widening {
            inner,
            narrowed: narrowed_outputs(op),
            rounding: bf16_rounding(op),
        }
    }
}

/// How many leading outputs of `op` are of the input dtype `T` (the rest keep float32), when
/// not all of them.
pub(crate) fn narrowed_outputs(op: &str) -> Option<usize> {
    matches!(op, "FusedBatchNormV2" | "FusedBatchNormV3").then_some(1)
}

impl fmt::Debug for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Widening({:?}, {:?})", self.inner, self.rounding)
    }
}

impl Kernel for Widening {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let narrow_dtype = inputs
            .iter()
            .map(Value::dtype)
            .find(|d| matches!(d, DType::Float16 | DType::BFloat16));
        let Some(to) = narrow_dtype else {
            return self.inner.run(inputs);
        };
        let widened = inputs.into_iter().map(|v| widen(&v).unwrap_or(v)).collect();
        let outputs = self.inner.run(widened)?;
        let n = self.narrowed.unwrap_or(usize::MAX);
        Ok(outputs
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                if i < n {
                    narrow_with(v, to, self.rounding)
                } else {
                    v
                }
            })
            .collect())
    }

    fn is_pure(&self) -> bool {
        self.inner.is_pure()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::FnKernel;

    #[test]
    fn kernels_see_float32_and_give_the_narrow_type() -> Result<(), OpError> {
        // A kernel returning its input and its input times 1/3: both rounded to bfloat16,
        // unless only the first output is of T (FusedBatchNormV3).
        let k = || {
            Box::new(FnKernel(|inputs: Vec<Value>| {
                let x = inputs
                    .into_iter()
                    .next()
                    .and_then(|v| v.as_f32().map(<[f32]>::to_vec))
                    .ok_or_else(|| OpError("expected float32".into()))?;
                let third: Vec<f32> = x.iter().map(|v| v / 3.0).collect();
                Ok(vec![
                    Value::F32(TensorBuf::from_parts(vec![x.len()], x)),
                    Value::F32(TensorBuf::from_parts(vec![third.len()], third)),
                ])
            })) as Box<dyn Kernel>
        };
        let x = Value::BF16(TensorBuf::from_parts(vec![1], vec![bf16::from_f32(1.0)]));
        let w = |op: &str| Widening::for_op(k(), op);
        let out = w("Relu").run(vec![x.clone()])?;
        assert_eq!(out[0].dtype(), DType::BFloat16);
        assert_eq!(
            out[1].get::<bf16>().map(|t| t.data()[0]),
            Some(bf16::from_f32(1.0 / 3.0))
        );
        let out = w("FusedBatchNormV3").run(vec![x.clone()])?;
        assert_eq!(out[0].dtype(), DType::BFloat16);
        assert_eq!(out[1].as_f32(), Some(&[1.0f32 / 3.0][..]));
        // float32 inputs pass through untouched.
        let y = Value::F32(TensorBuf::from_parts(vec![1], vec![1.0]));
        assert_eq!(
            w("Relu").run(vec![y])?[1].as_f32(),
            Some(&[1.0f32 / 3.0][..])
        );
        // bfloat16 matrix products are truncated: 1/3 = 0x3eaaaaab rounds up to 0x3eab but
        // truncates to 0x3eaa.
        let out = w("MatMul").run(vec![x])?;
        assert_eq!(
            out[1].get::<bf16>().map(|t| t.data()[0].to_bits()),
            Some(0x3eaa)
        );
        assert_eq!(bf16::from_f32(1.0 / 3.0).to_bits(), 0x3eab);
        // float16 products are rounded to nearest even all the same.
        let h = Value::F16(TensorBuf::from_parts(vec![1], vec![f16::from_f32(1.0)]));
        let out = w("MatMul").run(vec![h])?;
        assert_eq!(
            out[1].get::<f16>().map(|t| t.data()[0]),
            Some(f16::from_f32(1.0 / 3.0))
        );
        Ok(())
    }

    #[test]
    fn truncation_keeps_the_upper_bits() {
        for (x, bits) in [
            (-1.0f32 - 2f32.powi(-8) - 2f32.powi(-9), 0xbf80u16),
            (1.0 + 2f32.powi(-7), 0x3f81),
            (f32::INFINITY, 0x7f80),
            (-0.0, 0x8000),
        ] {
            assert_eq!(bf16_toward_zero(x).to_bits(), bits, "{x}");
        }
    }

    #[test]
    fn rounds_to_nearest_even() {
        // 1 + 2^-8 lies halfway between two bfloat16s (1 and 1 + 2^-7): even wins (1).
        let halfway = 1.0f32 + 2f32.powi(-8);
        let above = 1.0f32 + 2f32.powi(-8) + 2f32.powi(-20);
        let v = Value::F32(TensorBuf::from_parts(vec![2], vec![halfway, above]));
        let n = narrow(v, DType::BFloat16);
        let got: Vec<f32> = n
            .get::<bf16>()
            .map(|t| t.data().iter().map(|x| x.to_f32()).collect())
            .unwrap_or_default();
        assert_eq!(got, vec![1.0, 1.0 + 2f32.powi(-7)]);
        // float16: 2049 is halfway between 2048 and 2050: even mantissa (2048).
        let v = Value::F32(TensorBuf::from_parts(vec![2], vec![2049.0, 2051.0]));
        let got: Vec<f32> = narrow(v, DType::Float16)
            .get::<f16>()
            .map(|t| t.data().iter().map(|x| x.to_f32()).collect())
            .unwrap_or_default();
        assert_eq!(got, vec![2048.0, 2052.0]);
    }
}
