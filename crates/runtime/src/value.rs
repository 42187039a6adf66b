//! Runtime tensors: a dtype tag over shared, immutable-unless-unique element buffers.
//!
//! A [`TensorBuf`] keeps its elements behind an `Arc`, so constants and checkpoint weights
//! loaded at plan time are handed to every run without copying; a kernel that receives the
//! only reference to a buffer may write into it in place. Dtypes are
//! [`ckpt_bundle::DType`]s; [`crate::compute_dtype`] says which ones a [`Value`] holds.

use std::fmt;
use std::sync::Arc;

pub use crate::list::{TensorArray, TensorList};
use crate::{DType, Error};

/// A dense row-major tensor of `T`: a shape and a shared element buffer.
#[derive(Clone, PartialEq)]
pub struct TensorBuf<T: 'static> {
    shape: Vec<usize>,
    data: Arc<Elements<T>>,
}

/// A tensor's element buffer. When the last reference to a float32 buffer goes, the buffer
/// goes back to the running plan's [`BufferPool`](crate::memory::BufferPool) (if any) for a
/// later kernel output to reuse.
#[derive(Clone, PartialEq)]
struct Elements<T: 'static>(Vec<T>);

impl<T: 'static> Drop for Elements<T> {
    fn drop(&mut self) {
        let any: &mut dyn std::any::Any = &mut self.0;
        if let Some(buf) = any.downcast_mut::<Vec<f32>>() {
            crate::memory::recycle_f32(std::mem::take(buf));
        }
    }
}

impl<T> TensorBuf<T> {
    /// A tensor of `shape` holding `data`; the element count must match the shape.
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Result<TensorBuf<T>, Error> {
        match checked_num_elements(&shape) {
            Some(n) if n == data.len() => Ok(TensorBuf {
                shape,
                data: Arc::new(Elements(data)),
            }),
            _ => Err(Error::ShapeMismatch {
                shape,
                len: data.len(),
            }),
        }
    }

    /// Builds a tensor whose element count the caller computed from `shape`.
    pub(crate) fn from_parts(shape: Vec<usize>, data: Vec<T>) -> TensorBuf<T> {
        debug_assert_eq!(checked_num_elements(&shape), Some(data.len()));
        TensorBuf {
            shape,
            data: Arc::new(Elements(data)),
        }
    }

    /// The dimensions; empty for a scalar.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[T] {
        &self.data.0
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.0.len()
    }

    /// Whether there are no elements (some dimension is 0).
    pub fn is_empty(&self) -> bool {
        self.data.0.is_empty()
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The same elements under another shape with the same element count.
    pub(crate) fn reshaped(self, shape: Vec<usize>) -> TensorBuf<T> {
        debug_assert_eq!(checked_num_elements(&shape), Some(self.data.0.len()));
        TensorBuf {
            shape,
            data: self.data,
        }
    }

    /// Mutable access when this is the only reference to the buffer.
    pub(crate) fn unique_mut(&mut self) -> Option<&mut [T]> {
        Arc::get_mut(&mut self.data).map(|v| v.0.as_mut_slice())
    }

    pub(crate) fn is_unique(&self) -> bool {
        Arc::strong_count(&self.data) == 1
    }
}

impl<T: Clone> TensorBuf<T> {
    /// The elements, copied only when the buffer is shared.
    pub fn into_vec(self) -> Vec<T> {
        match Arc::try_unwrap(self.data) {
            Ok(mut unique) => std::mem::take(&mut unique.0),
            Err(shared) => shared.0.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for TensorBuf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        write!(f, "{:?} [", self.shape)?;
        for (i, x) in self.data.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{x:?}")?;
        }
        if self.data.0.len() > SHOWN {
            f.write_str(", ...")?;
        }
        f.write_str("]")
    }
}

/// Product of the dimensions, `None` on overflow.
pub fn checked_num_elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// A tensor of any supported dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// float32 (also what float16 and bfloat16 kernels compute in).
    F32(TensorBuf<f32>),
    /// float16 (IEEE half), kept as such between kernels; kernels compute in float32 and round
    /// their outputs to it.
    F16(TensorBuf<half::f16>),
    /// bfloat16, kept as such between kernels; kernels compute in float32 and round their
    /// outputs to it.
    BF16(TensorBuf<half::bf16>),
    /// float64.
    F64(TensorBuf<f64>),
    /// int32.
    I32(TensorBuf<i32>),
    /// int64.
    I64(TensorBuf<i64>),
    /// uint8.
    U8(TensorBuf<u8>),
    /// bool.
    Bool(TensorBuf<bool>),
    /// Byte strings (TensorFlow strings need not be UTF-8).
    Str(TensorBuf<Vec<u8>>),
    /// A list of tensors (a `DT_VARIANT` scalar holding a `TensorList` in TensorFlow), as
    /// control flow v2 loops carry sequences. Its [`shape`](Value::shape) is `[]`.
    List(TensorList),
    /// A handle to a TensorArray (a `DT_RESOURCE` scalar in TensorFlow), as control flow v1
    /// loops collect sequences. Its [`shape`](Value::shape) is `[]`.
    TensorArray(TensorArray),
}

/// Runs `$body` with `$t` bound to the `TensorBuf` of any tensor variant, or evaluates
/// `$other` for the values that are no tensors (lists and TensorArray handles).
macro_rules! map_any {
    ($value:expr, $t:ident => $body:expr, else $other:expr) => {
        match $value {
            $crate::Value::F32($t) => $body,
            $crate::Value::F16($t) => $body,
            $crate::Value::BF16($t) => $body,
            $crate::Value::F64($t) => $body,
            $crate::Value::I32($t) => $body,
            $crate::Value::I64($t) => $body,
            $crate::Value::U8($t) => $body,
            $crate::Value::Bool($t) => $body,
            $crate::Value::Str($t) => $body,
            $crate::Value::List(_) | $crate::Value::TensorArray(_) => $other,
        }
    };
}
pub(crate) use map_any;

/// Evaluates `$body` with the type alias `$T` bound to the element type of `$dtype`, or
/// `$fallback` for a dtype no [`Value`] holds (the executor's dtypes are a subset of
/// [`DType`]'s): `with_dtype!(dtype, T => T::wrap(...), else op_bail!(...))`.
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr, else $fallback:expr) => {
        match $dtype {
            $crate::DType::Float32 => {
                type $T = f32;
                $body
            }
            $crate::DType::Float64 => {
                type $T = f64;
                $body
            }
            $crate::DType::Float16 => {
                type $T = half::f16;
                $body
            }
            $crate::DType::BFloat16 => {
                type $T = half::bf16;
                $body
            }
            $crate::DType::Int32 => {
                type $T = i32;
                $body
            }
            $crate::DType::Int64 => {
                type $T = i64;
                $body
            }
            $crate::DType::UInt8 => {
                type $T = u8;
                $body
            }
            $crate::DType::Bool => {
                type $T = bool;
                $body
            }
            $crate::DType::String => {
                type $T = Vec<u8>;
                $body
            }
            _ => $fallback,
        }
    };
}
pub(crate) use with_dtype;

/// Dispatches values that share a numeric element type (`f32`, `f64`, `i32`, `i64`, `u8`) to
/// code generic over [`Num`], as tract's `dispatch_numbers!` and candle's `Map1`/`Map2` do:
/// when every value holds the same numeric type, each `$t` is bound to its `TensorBuf<T>`
/// (`&TensorBuf<T>` when the values are references) and `$body` is evaluated, compiled once
/// per type. Anything else goes to the `else` arms, match arms over the same values (a tuple
/// of them when there are several):
///
/// ```text
/// dispatch_numbers!((a, b), |a, b| Value::from(arith(op, a, b)?), else {
///     (a, b) => op_bail!("unsupported dtypes {} and {}", a.dtype(), b.dtype()),
/// })
/// ```
macro_rules! dispatch_numbers {
    ($value:expr, |$t:ident| $body:expr, else { $($fallback:tt)* }) => {
        match $value {
            $crate::Value::F32($t) => $body,
            $crate::Value::F64($t) => $body,
            $crate::Value::I32($t) => $body,
            $crate::Value::I64($t) => $body,
            $crate::Value::U8($t) => $body,
            $($fallback)*
        }
    };
    ($values:expr, |$($t:ident),+| $body:expr, else { $($fallback:tt)* }) => {
        match $values {
            ($($crate::Value::F32($t)),+) => $body,
            ($($crate::Value::F64($t)),+) => $body,
            ($($crate::Value::I32($t)),+) => $body,
            ($($crate::Value::I64($t)),+) => $body,
            ($($crate::Value::U8($t)),+) => $body,
            $($fallback)*
        }
    };
}
pub(crate) use dispatch_numbers;

impl Value {
    /// A tensor of `shape` holding `data`.
    ///
    /// ```
    /// use ckpt_runtime::Value;
    /// let v = Value::new(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0])?;
    /// assert_eq!(v.shape(), &[2, 2]);
    /// # Ok::<(), ckpt_runtime::Error>(())
    /// ```
    pub fn new<T: Datum>(shape: Vec<usize>, data: Vec<T>) -> Result<Value, Error> {
        Ok(T::wrap(TensorBuf::new(shape, data)?))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Datum>(x: T) -> Value {
        T::wrap(TensorBuf::from_parts(Vec::new(), vec![x]))
    }

    /// The dimensions; empty for a scalar, a list or a TensorArray handle.
    pub fn shape(&self) -> &[usize] {
        map_any!(self, t => t.shape(), else &[])
    }

    /// The element type (one of the dtypes [`compute_dtype`](crate::compute_dtype) yields).
    /// Lists and TensorArray handles are [`DType::Variant`]: [`DType`] is the checkpoint
    /// formats' vocabulary, which has no resource type.
    pub fn dtype(&self) -> DType {
        match self {
            Value::F32(_) => DType::Float32,
            Value::F16(_) => DType::Float16,
            Value::BF16(_) => DType::BFloat16,
            Value::F64(_) => DType::Float64,
            Value::I32(_) => DType::Int32,
            Value::I64(_) => DType::Int64,
            Value::U8(_) => DType::UInt8,
            Value::Bool(_) => DType::Bool,
            Value::Str(_) => DType::String,
            Value::List(_) | Value::TensorArray(_) => DType::Variant,
        }
    }

    /// What kind of value this is, for messages: the dtype's name, `"TensorList"` or
    /// `"TensorArray"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::List(_) => "TensorList",
            Value::TensorArray(_) => "TensorArray",
            other => other.dtype().name(),
        }
    }

    /// Number of elements (1 for a list or a TensorArray handle, which are scalars).
    pub fn len(&self) -> usize {
        map_any!(self, t => t.len(), else 1)
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer when the dtype is `T`.
    pub fn get<T: Datum>(&self) -> Option<&TensorBuf<T>> {
        T::view(self)
    }

    /// The elements of a float32 value.
    pub fn as_f32(&self) -> Option<&[f32]> {
        self.get::<f32>().map(TensorBuf::data)
    }

    /// The elements of a float64 value.
    pub fn as_f64(&self) -> Option<&[f64]> {
        self.get::<f64>().map(TensorBuf::data)
    }

    /// The elements of an int32 value.
    pub fn as_i32(&self) -> Option<&[i32]> {
        self.get::<i32>().map(TensorBuf::data)
    }

    /// The elements of an int64 value.
    pub fn as_i64(&self) -> Option<&[i64]> {
        self.get::<i64>().map(TensorBuf::data)
    }

    /// The elements of a uint8 value.
    pub fn as_u8(&self) -> Option<&[u8]> {
        self.get::<u8>().map(TensorBuf::data)
    }

    /// The elements of a bool value.
    pub fn as_bool(&self) -> Option<&[bool]> {
        self.get::<bool>().map(TensorBuf::data)
    }

    /// The elements of a string value.
    pub fn as_strings(&self) -> Option<&[Vec<u8>]> {
        self.get::<Vec<u8>>().map(TensorBuf::data)
    }

    /// Converts elements to `dtype` with TensorFlow's `Cast` rules: float to integer
    /// truncates toward zero (NaN and out-of-range values give the integer minimum, as on
    /// x86-64), anything to bool is `!= 0`, bool to number is 0/1.
    /// Strings convert only to strings.
    pub fn cast(&self, dtype: DType) -> Result<Value, Error> {
        crate::ops::array::cast::cast_value(self, dtype).ok_or(Error::Cast {
            from: self.dtype(),
            to: dtype,
        })
    }

    /// The same elements under `shape` (same element count).
    pub fn reshape(self, shape: Vec<usize>) -> Result<Value, Error> {
        let tensor = !matches!(self, Value::List(_) | Value::TensorArray(_));
        if checked_num_elements(&shape) != Some(self.len()) || !(tensor || shape.is_empty()) {
            return Err(Error::ShapeMismatch {
                shape,
                len: self.len(),
            });
        }
        Ok(map_any!(self, t => Datum::wrap(t.reshaped(shape)), else self))
    }

    /// The rows (slices along axis 0) repeated in turn, or cut, to `rows` rows: `[a, b]` to 5
    /// rows is `[a, b, a, b, a]`, as `np.concatenate([x] * k)[:rows]` does. A scalar, or a
    /// tensor with no rows, is returned unchanged.
    ///
    /// Errors with [`Error::ShapeMismatch`] when the new shape is too large to index.
    pub fn tile_rows(&self, rows: usize) -> Result<Value, Error> {
        let Some(&have) = self.shape().first() else {
            return Ok(self.clone());
        };
        if have == 0 {
            return Ok(self.clone());
        }
        let mut shape = self.shape().to_vec();
        shape[0] = rows;
        let Some(len) = checked_num_elements(&shape) else {
            return Err(Error::ShapeMismatch { shape, len: 0 });
        };
        let per_row = self.len() / have;
        Ok(map_any!(self, t => {
            let data: Vec<_> = t.data().chunks(per_row.max(1)).cycle().flatten().take(len).cloned().collect();
            Datum::wrap(TensorBuf::from_parts(shape, data))
        }, else self.clone()))
    }

    /// The element at flat index `i` as an `f64` (numbers and bools only), for summaries.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        dispatch_numbers!(self, |t| t.data().get(i).map(|&x| x.as_f64()), else {
            Value::Bool(t) => t.data().get(i).map(|&x| if x { 1.0 } else { 0.0 }),
            Value::F16(t) => t.data().get(i).map(|&x| f64::from(x.to_f32())),
            Value::BF16(t) => t.data().get(i).map(|&x| f64::from(x.to_f32())),
            Value::Str(_) | Value::List(_) | Value::TensorArray(_) => None,
        })
    }
}

mod sealed {
    pub trait Sealed {}
}

/// An element type a [`Value`] can hold (tract's name for the idea). Sealed: implemented
/// for `f32`, `half::f16`, `half::bf16`, `f64`, `i32`, `i64`, `u8`, `bool` and `Vec<u8>`
/// (strings).
///
/// Not to be confused with [`ckpt_bundle::Element`], the plain-old-data types whose bytes a
/// bundle stores.
pub trait Datum: sealed::Sealed + Clone + Send + Sync + fmt::Debug + 'static {
    /// The dtype of a [`Value`] holding this type.
    const DTYPE: DType;
    /// The value holding `t`.
    fn wrap(t: TensorBuf<Self>) -> Value;
    /// The buffer of `v` when its elements are `Self`.
    fn view(v: &Value) -> Option<&TensorBuf<Self>>;
    /// The buffer of `v` when its elements are `Self`, or `v` back.
    fn take(v: Value) -> Result<TensorBuf<Self>, Value>;
}

macro_rules! datum {
    ($t:ty, $variant:ident, $dtype:ident) => {
        impl sealed::Sealed for $t {}
        impl Datum for $t {
            const DTYPE: DType = DType::$dtype;
            fn wrap(t: TensorBuf<Self>) -> Value {
                Value::$variant(t)
            }
            fn view(v: &Value) -> Option<&TensorBuf<Self>> {
                match v {
                    Value::$variant(t) => Some(t),
                    _ => None,
                }
            }
            fn take(v: Value) -> Result<TensorBuf<Self>, Value> {
                match v {
                    Value::$variant(t) => Ok(t),
                    other => Err(other),
                }
            }
        }
        impl From<TensorBuf<$t>> for Value {
            fn from(t: TensorBuf<$t>) -> Value {
                Value::$variant(t)
            }
        }
    };
}

datum!(f32, F32, Float32);
datum!(f64, F64, Float64);
datum!(half::f16, F16, Float16);
datum!(half::bf16, BF16, BFloat16);
datum!(i32, I32, Int32);
datum!(i64, I64, Int64);
datum!(u8, U8, UInt8);
datum!(bool, Bool, Bool);
datum!(Vec<u8>, Str, String);

/// Numeric element types: arithmetic, comparisons and reductions are generic over these.
pub(crate) trait Num:
    Datum + Copy + Default + PartialOrd + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const IS_FLOAT: bool;
    /// Smallest value, used as the identity of `Max` (`-inf` for floats).
    const LOWEST: Self;
    /// Largest value, used as the identity of `Min` (`+inf` for floats).
    const HIGHEST: Self;
    /// Eigen's `NumTraits::lowest()`, the most negative finite value (`-FLT_MAX` for
    /// float32): where TensorFlow's `ArgMax` and `MaxPool` start, so that NaN never wins.
    const LOWEST_FINITE: Self;
    /// Eigen's `NumTraits::highest()` (`FLT_MAX` for float32): where `ArgMin` starts.
    const HIGHEST_FINITE: Self;
    fn as_f64(self) -> f64;
    fn from_f64(x: f64) -> Self;
    fn from_usize(x: usize) -> Self;
    fn sub(self, other: Self) -> Self;
    /// `None` for an integer division by zero.
    fn div(self, other: Self) -> Option<Self>;
    fn neg(self) -> Self;
    fn is_nan(self) -> bool;
}

macro_rules! num_float {
    ($t:ty) => {
        impl Num for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const IS_FLOAT: bool = true;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            const LOWEST_FINITE: Self = <$t>::MIN;
            const HIGHEST_FINITE: Self = <$t>::MAX;
            fn as_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn from_usize(x: usize) -> Self {
                x as $t
            }
            fn sub(self, other: Self) -> Self {
                self - other
            }
            fn div(self, other: Self) -> Option<Self> {
                Some(self / other)
            }
            fn neg(self) -> Self {
                -self
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}

macro_rules! num_int {
    ($t:ty) => {
        impl Num for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const IS_FLOAT: bool = false;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            const LOWEST_FINITE: Self = <$t>::MIN;
            const HIGHEST_FINITE: Self = <$t>::MAX;
            fn as_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn from_usize(x: usize) -> Self {
                x as $t
            }
            fn sub(self, other: Self) -> Self {
                self.wrapping_sub(other)
            }
            fn div(self, other: Self) -> Option<Self> {
                // TensorFlow's integer division truncates toward zero; MIN / -1 wraps.
                if other == 0 {
                    None
                } else {
                    Some(self.wrapping_div(other))
                }
            }
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            fn is_nan(self) -> bool {
                false
            }
        }
    };
}

num_float!(f32);
num_float!(f64);
num_int!(i32);
num_int!(i64);
num_int!(u8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_element_count() -> Result<(), Error> {
        let v = Value::new(vec![2, 3], vec![0i32; 6])?;
        assert_eq!(v.shape(), &[2, 3]);
        assert_eq!(v.dtype(), DType::Int32);
        assert!(matches!(
            Value::new(vec![2, 3], vec![0i32; 5]),
            Err(Error::ShapeMismatch { shape, len: 5 }) if shape == [2, 3]
        ));
        assert!(matches!(
            Value::new(vec![usize::MAX, 3], vec![0i32; 5]),
            Err(Error::ShapeMismatch { shape, len: 5 }) if shape == [usize::MAX, 3]
        ));
        Ok(())
    }

    #[test]
    fn datum_dtypes_are_the_held_dtypes() {
        let dtypes = [
            f32::DTYPE,
            half::f16::DTYPE,
            half::bf16::DTYPE,
            f64::DTYPE,
            i32::DTYPE,
            i64::DTYPE,
            u8::DTYPE,
            bool::DTYPE,
            Vec::<u8>::DTYPE,
        ];
        assert_eq!(dtypes, crate::dtype::HELD);
        assert_eq!(Value::scalar(1u8).dtype().name(), "uint8");
        assert_eq!(Value::scalar(vec![b'a']).dtype().name(), "string");
    }

    #[test]
    fn scalar_has_empty_shape() {
        let v = Value::scalar(3.5f32);
        assert_eq!(v.shape(), &[] as &[usize]);
        assert_eq!(v.as_f32(), Some(&[3.5f32][..]));
    }

    #[test]
    fn unique_buffers_are_mutable_shared_are_not() -> Result<(), Error> {
        let mut a = TensorBuf::new(vec![2], vec![1.0f32, 2.0])?;
        assert!(a.unique_mut().is_some());
        let b = a.clone();
        assert!(a.unique_mut().is_none());
        assert_eq!(b.into_vec(), vec![1.0, 2.0]);
        assert!(a.unique_mut().is_some());
        Ok(())
    }
}
