//! float16 and bfloat16 as TensorFlow's CPU kernels compute them: values keep their narrow
//! dtype between kernels; a kernel given narrow inputs computes on them widened to float32
//! (exactly) and rounds its float32 outputs back to the narrow type, to nearest even (what
//! `Eigen::half(float)` and `Eigen::bfloat16(float)` do). So a graph computing in bfloat16
//! gives values representable in bfloat16, as TensorFlow's do.
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
    match (v, to) {
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
/// statistics in float32, TensorFlow's `U`); with no narrow input it runs `inner` as it is.
pub(crate) struct Widening(pub Box<dyn Kernel>, pub Option<usize>);

/// How many leading outputs of `op` are of the input dtype `T` (the rest keep float32), when
/// not all of them.
pub(crate) fn narrowed_outputs(op: &str) -> Option<usize> {
    matches!(op, "FusedBatchNormV2" | "FusedBatchNormV3").then_some(1)
}

impl fmt::Debug for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Widening({:?})", self.0)
    }
}

impl Kernel for Widening {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let narrow_dtype = inputs
            .iter()
            .map(Value::dtype)
            .find(|d| matches!(d, DType::Float16 | DType::BFloat16));
        let Some(to) = narrow_dtype else {
            return self.0.run(inputs);
        };
        let widened = inputs.into_iter().map(|v| widen(&v).unwrap_or(v)).collect();
        let outputs = self.0.run(widened)?;
        let n = self.1.unwrap_or(usize::MAX);
        Ok(outputs
            .into_iter()
            .enumerate()
            .map(|(i, v)| if i < n { narrow(v, to) } else { v })
            .collect())
    }

    fn is_pure(&self) -> bool {
        self.0.is_pure()
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
        let out = Widening(k(), None).run(vec![x.clone()])?;
        assert_eq!(out[0].dtype(), DType::BFloat16);
        assert_eq!(
            out[1].get::<bf16>().map(|t| t.data()[0]),
            Some(bf16::from_f32(1.0 / 3.0))
        );
        let out = Widening(k(), narrowed_outputs("FusedBatchNormV3")).run(vec![x])?;
        assert_eq!(out[0].dtype(), DType::BFloat16);
        assert_eq!(out[1].as_f32(), Some(&[1.0f32 / 3.0][..]));
        // float32 inputs pass through untouched.
        let y = Value::F32(TensorBuf::from_parts(vec![1], vec![1.0]));
        assert_eq!(
            Widening(k(), None).run(vec![y])?[1].as_f32(),
            Some(&[1.0f32 / 3.0][..])
        );
        Ok(())
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
