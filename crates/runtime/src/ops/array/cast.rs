//! `Cast`, with TensorFlow's conversion rules.

use ckpt_graph::Node;

use crate::ops::parallel;
use crate::ops::{dtype_attr, kernel, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::value::{dispatch_numbers, TensorBuf};
use crate::{DType, Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Cast {
        to: dtype_attr(node, "DstT")?,
    })
}

#[derive(Debug)]
struct Cast {
    to: DType,
}

impl Kernel for Cast {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let from = x.dtype();
        let y = cast_value(&x, self.to)
            .ok_or_else(|| OpError(format!("cannot cast {from} to {}", self.to)))?;
        Ok(vec![y])
    }
}

/// Element conversions as TensorFlow's CPU kernels do them on x86-64 (a C++
/// `static_cast`, compiled to `cvttss2si`/`cvttsd2si`): a float to an integer truncates
/// toward zero, and NaN, infinities and values out of the integer's range become its
/// minimum (`INT_MIN`, the "integer indefinite" value), not a saturated bound; to uint8, a
/// value goes through int32 and then a float32 keeps the low byte (`-3.7` gives 253, 300
/// gives 44) while a float64 saturates to 0..=255 (-7.4 gives 0, 600 gives 255), the two
/// vectorized paths Eigen takes; integers narrow by keeping their low bits; `!= 0` to bool (NaN is true); 0/1 from bool.
/// (tensorflow/core/kernels/cast_op_impl.h, the `CastFunctor` of Eigen's `scalar_cast_op`.)
trait CastTo: Copy + Sync {
    fn to_f32(self) -> f32;
    fn to_f64(self) -> f64;
    fn to_i32(self) -> i32;
    fn to_i64(self) -> i64;
    fn to_u8(self) -> u8;
    fn to_bool(self) -> bool;
}

/// `x` truncated toward zero, or `min` when it is NaN or outside `[min, max]` after
/// truncation (x86's integer-indefinite result).
fn truncate_x86(x: f64, min: f64, max_exclusive: f64) -> Option<f64> {
    let t = x.trunc();
    (t >= min && t < max_exclusive).then_some(t)
}

macro_rules! cast_float {
    ($t:ty, to_u8: $to_u8:expr) => {
        impl CastTo for $t {
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i32(self) -> i32 {
                truncate_x86(f64::from(self), -2_147_483_648.0, 2_147_483_648.0)
                    .map_or(i32::MIN, |t| t as i32)
            }
            fn to_i64(self) -> i64 {
                truncate_x86(
                    f64::from(self),
                    -9_223_372_036_854_775_808.0,
                    9_223_372_036_854_775_808.0,
                )
                .map_or(i64::MIN, |t| t as i64)
            }
            fn to_u8(self) -> u8 {
                $to_u8(self.to_i32())
            }
            fn to_bool(self) -> bool {
                self != 0.0
            }
        }
    };
}

cast_float!(f32, to_u8: |i: i32| i as u8);
cast_float!(f64, to_u8: |i: i32| i.clamp(0, 255) as u8);

macro_rules! cast_num {
    ($t:ty, $zero:expr) => {
        impl CastTo for $t {
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i32(self) -> i32 {
                self as i32
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn to_u8(self) -> u8 {
                self as u8
            }
            fn to_bool(self) -> bool {
                self != $zero
            }
        }
    };
}

cast_num!(i32, 0);
cast_num!(i64, 0);
cast_num!(u8, 0);

impl CastTo for bool {
    fn to_f32(self) -> f32 {
        u8::from(self).into()
    }
    fn to_f64(self) -> f64 {
        u8::from(self).into()
    }
    fn to_i32(self) -> i32 {
        self.into()
    }
    fn to_i64(self) -> i64 {
        self.into()
    }
    fn to_u8(self) -> u8 {
        self.into()
    }
    fn to_bool(self) -> bool {
        self
    }
}

fn convert<T: CastTo>(t: &TensorBuf<T>, to: DType) -> Option<Value> {
    let shape = t.shape().to_vec();
    let d = t.data();
    Some(match to {
        DType::Float32 => Value::F32(TensorBuf::from_parts(shape, parallel::map(d, T::to_f32))),
        DType::Float64 => Value::F64(TensorBuf::from_parts(shape, parallel::map(d, T::to_f64))),
        DType::Int32 => Value::I32(TensorBuf::from_parts(shape, parallel::map(d, T::to_i32))),
        DType::Int64 => Value::I64(TensorBuf::from_parts(shape, parallel::map(d, T::to_i64))),
        DType::UInt8 => Value::U8(TensorBuf::from_parts(shape, parallel::map(d, T::to_u8))),
        DType::Bool => Value::Bool(TensorBuf::from_parts(shape, parallel::map(d, T::to_bool))),
        // Strings convert only to strings, and other dtypes are not held.
        _ => return None,
    })
}

/// `v` converted to `to`; `None` when one side is a string and the other is not.
///
/// float16 and bfloat16 convert through float32, as Eigen's `half` and `bfloat16` do: a
/// narrow input widens exactly, and a narrow result is the float32 conversion rounded to
/// nearest even (so float64 and int64 sources are rounded twice, as in TensorFlow).
pub(crate) fn cast_value(v: &Value, to: DType) -> Option<Value> {
    if v.dtype() == to {
        return Some(v.clone());
    }
    if let Some(wide) = crate::half_precision::widen(v) {
        return cast_value(&wide, to);
    }
    if matches!(to, DType::Float16 | DType::BFloat16) {
        let wide = cast_value(v, DType::Float32)?;
        return Some(crate::half_precision::narrow(wide, to));
    }
    dispatch_numbers!(v, |t| convert(t, to), else {
        Value::Bool(t) => convert(t, to),
        Value::Str(_) | Value::F16(_) | Value::BF16(_) | Value::List(_) | Value::TensorArray(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensorflow_cast_rules() -> Result<(), Error> {
        let x = Value::new(vec![5], vec![-1.7f32, -0.5, 0.0, 2.9, 1e10])?;
        assert_eq!(
            x.cast(DType::Int32)?.as_i32(),
            Some(&[-1, 0, 0, 2, i32::MIN][..])
        );
        assert_eq!(
            x.cast(DType::Bool)?.as_bool(),
            Some(&[true, true, false, true, true][..])
        );
        // To bfloat16 rounds to nearest even (1 + 2^-8 is halfway: 1); back is exact.
        let f = Value::new(vec![3], vec![1.0f32 + 2f32.powi(-8), 3.0e38, -0.0])?;
        let bf = f.cast(DType::BFloat16)?;
        assert_eq!(bf.dtype(), DType::BFloat16);
        assert_eq!(
            bf.cast(DType::Float32)?.as_f32(),
            Some(&[1.0, half::bf16::from_f32(3.0e38).to_f32(), -0.0][..])
        );
        let h = Value::new(vec![2], vec![70000.0f64, 0.1])?.cast(DType::Float16)?;
        assert_eq!(
            h.cast(DType::Float64)?.as_f64(),
            Some(&[f64::INFINITY, f64::from(half::f16::from_f32(0.1).to_f32())][..])
        );
        assert_eq!(bf.cast(DType::Int32)?.as_i32(), Some(&[1, i32::MIN, 0][..]));
        let b = Value::new(vec![2], vec![true, false])?;
        assert_eq!(b.cast(DType::Float32)?.as_f32(), Some(&[1.0, 0.0][..]));
        let i = Value::new(vec![2], vec![300i64, -1])?;
        assert_eq!(i.cast(DType::UInt8)?.as_u8(), Some(&[44, 255][..]));
        assert!(matches!(
            i.cast(DType::String),
            Err(Error::Cast {
                from: DType::Int64,
                to: DType::String
            })
        ));
        Ok(())
    }
}
