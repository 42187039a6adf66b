//! Tensors as read from or handed to a bundle: dtype, shape and element bytes.

use std::borrow::Cow;

use crate::dtype::{Bits, DType, Element};
use crate::error::{Error, Result};

/// A listed tensor: what `ckpt ls` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's key in the index (a partitioned tensor's full name).
    pub name: String,
    /// Its element type.
    pub dtype: DType,
    /// Its dimensions (the full shape for a partitioned tensor); empty for a scalar.
    pub shape: Vec<u64>,
}

impl TensorInfo {
    /// The product of the dimensions (1 for a scalar). Shapes were checked not to overflow
    /// when the bundle was opened.
    pub fn num_elements(&self) -> u64 {
        num_elements(&self.shape).unwrap_or(u64::MAX)
    }
}

/// How a tensor is stored: whole in one data shard, or as the slices of a partitioned
/// variable (docs/format.md §3.8), each in its own shard. Writing the same parts back with
/// [`BundleWriter::add_slice`](crate::BundleWriter::add_slice) keeps a variable partitioned
/// as TensorFlow's saver left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// One run of bytes in data shard `shard` (for a V1 checkpoint, the table file's index).
    Whole {
        /// The shard (0-based).
        shard: u32,
    },
    /// Stored slices, in the order the index lists them.
    Partitioned(Vec<StoredSlice>),
}

/// One stored slice of a partitioned tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSlice {
    /// `(start, length)` per dimension of the full shape.
    pub extents: Vec<(u64, u64)>,
    /// The data shard holding it (for a V1 checkpoint, the table file's index).
    pub shard: u32,
}

/// The product of `shape`, or `None` on overflow.
pub(crate) fn num_elements(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// A tensor's dtype, shape and elements. Fixed-size elements are borrowed straight from
/// the memory-mapped file when possible.
///
/// The constructors check that the data agrees with the dtype and shape, so every `Tensor`
/// is consistent: `bytes().len()` is the element count times the element size, or
/// `strings().len()` the element count.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<'a> {
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<u64>,
    pub(crate) data: TensorData<'a>,
}

/// The elements of a tensor.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // the variants are documented below, their fields are the data
pub enum TensorData<'a> {
    /// Little-endian element bytes in row-major order (every dtype but string and variant).
    Bytes(Cow<'a, [u8]>),
    /// One byte string per element, row-major (string; for variant, each element's
    /// serialized `VariantTensorDataProto`).
    Strings(Vec<Cow<'a, [u8]>>),
}

impl<'a> Tensor<'a> {
    /// A tensor of a fixed-size dtype from its little-endian bytes; checks the length.
    pub fn from_bytes(
        dtype: DType,
        shape: Vec<u64>,
        bytes: impl Into<Cow<'a, [u8]>>,
    ) -> Result<Self> {
        let t = Tensor {
            dtype,
            shape,
            data: TensorData::Bytes(bytes.into()),
        };
        t.check("")?;
        Ok(t)
    }

    /// A string (or variant) tensor; checks the element count.
    pub fn from_strings(
        dtype: DType,
        shape: Vec<u64>,
        strings: Vec<Cow<'a, [u8]>>,
    ) -> Result<Self> {
        let t = Tensor {
            dtype,
            shape,
            data: TensorData::Strings(strings),
        };
        t.check("")?;
        Ok(t)
    }

    /// A tensor borrowing a typed slice, without copying.
    pub fn from_slice<T: Element>(shape: Vec<u64>, values: &'a [T]) -> Result<Self> {
        Self::from_bytes(T::DTYPE, shape, bytemuck::cast_slice::<T, u8>(values))
    }

    /// A tensor owning a copy of `values`.
    pub fn from_vec<T: Element>(shape: Vec<u64>, values: Vec<T>) -> Result<Tensor<'static>> {
        let bytes: Vec<u8> = bytemuck::cast_slice::<T, u8>(&values).to_vec();
        Tensor::from_bytes(T::DTYPE, shape, bytes)
    }

    /// A string scalar (dtype `string`, shape `[]`).
    pub fn scalar_string(s: impl Into<Cow<'a, [u8]>>) -> Self {
        Tensor {
            dtype: DType::String,
            shape: Vec::new(),
            data: TensorData::Strings(vec![s.into()]),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The dimensions; empty for a scalar.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The elements.
    pub fn data(&self) -> &TensorData<'a> {
        &self.data
    }

    /// Dtype, shape and elements, taken apart.
    pub fn into_parts(self) -> (DType, Vec<u64>, TensorData<'a>) {
        (self.dtype, self.shape, self.data)
    }

    /// The same elements under another shape with the same element count.
    ///
    /// Errors: [`Error::InvalidTensor`] when the element counts differ.
    pub fn reshape(self, shape: Vec<u64>) -> Result<Self> {
        let t = Tensor { shape, ..self };
        t.check("")?;
        Ok(t)
    }

    /// The product of the dimensions (saturating; a tensor that passed [`Tensor::check`]
    /// never overflows).
    pub fn num_elements(&self) -> u64 {
        num_elements(&self.shape).unwrap_or(u64::MAX)
    }

    /// The element bytes, for fixed-size dtypes.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            TensorData::Bytes(b) => Some(b),
            TensorData::Strings(_) => None,
        }
    }

    /// The elements of a string or variant tensor.
    pub fn strings(&self) -> Option<&[Cow<'a, [u8]>]> {
        match &self.data {
            TensorData::Strings(s) => Some(s),
            TensorData::Bytes(_) => None,
        }
    }

    /// Checks that the data agrees with the dtype and shape; `name` goes into the error.
    pub fn check(&self, name: &str) -> Result<()> {
        let bad = |reason: String| Error::InvalidTensor {
            tensor: name.to_string(),
            reason,
        };
        let count = num_elements(&self.shape)
            .ok_or_else(|| bad(format!("element count of shape {:?} overflows", self.shape)))?;
        // TensorFlow's shapes are int64: a larger dimension cannot be stored or read back.
        if let Some(d) = self.shape.iter().position(|&n| n > i64::MAX as u64) {
            return Err(bad(format!(
                "dimension {d} of shape {:?} does not fit TensorFlow's int64 sizes",
                self.shape
            )));
        }
        match (&self.data, self.dtype.element_size()) {
            (TensorData::Bytes(b), Some(size)) => {
                let want = count
                    .checked_mul(size as u64)
                    .ok_or_else(|| bad(format!("byte size of shape {:?} overflows", self.shape)))?;
                if b.len() as u64 != want {
                    return Err(bad(format!(
                        "{} bytes of data, but {} {:?} needs {want}",
                        b.len(),
                        self.dtype,
                        self.shape
                    )));
                }
            }
            (TensorData::Strings(s), None) => {
                if s.len() as u64 != count {
                    return Err(bad(format!(
                        "{} strings, but shape {:?} has {count} elements",
                        s.len(),
                        self.shape
                    )));
                }
            }
            (TensorData::Bytes(_), None) => {
                return Err(bad(format!(
                    "dtype {} needs string data, got bytes",
                    self.dtype
                )))
            }
            (TensorData::Strings(_), Some(_)) => {
                return Err(bad(format!(
                    "dtype {} needs bytes, got strings",
                    self.dtype
                )))
            }
        }
        Ok(())
    }

    /// The elements as a slice of `T`, which must be the dtype's own element type
    /// ([`Element::DTYPE`]: `f32` for float32, `half::bf16` for bfloat16, `[f32; 2]` for
    /// complex64, ...). Borrowed when the bytes are aligned for `T`, copied otherwise
    /// (bundles promise no alignment).
    ///
    /// Errors: [`Error::DTypeMismatch`] when `T` is another dtype's type (an int32 tensor
    /// does not read as `f32`; use [`as_bits`](Self::as_bits) to see raw element bits).
    pub fn as_slice<T: Element>(&self) -> Result<Cow<'_, [T]>> {
        if self.dtype != T::DTYPE {
            return Err(Error::DTypeMismatch {
                dtype: self.dtype,
                reason: format!("requested as {}", T::DTYPE),
            });
        }
        self.view::<T>()
    }

    /// The raw bits of each element as an unsigned integer of the element's size: float16
    /// and bfloat16 as `u16`, float32 as `u32`, qint8 as `u8`, complex128 as `u128`. An
    /// explicit reinterpretation, for code that handles the bits itself.
    ///
    /// Errors: [`Error::DTypeMismatch`] when `T`'s size differs from the element size, or for
    /// string and variant tensors.
    pub fn as_bits<T: Bits>(&self) -> Result<Cow<'_, [T]>> {
        self.view::<T>()
    }

    /// The elements viewed as any plain type of the element's size.
    pub(crate) fn view<T: bytemuck::Pod>(&self) -> Result<Cow<'_, [T]>> {
        let size = std::mem::size_of::<T>();
        let bytes = match (&self.data, self.dtype.element_size()) {
            (TensorData::Bytes(b), Some(s)) if s == size && size > 0 => b,
            _ => {
                return Err(Error::DTypeMismatch {
                    dtype: self.dtype,
                    reason: format!(
                        "cannot view elements as a {size}-byte type ({} is {})",
                        self.dtype,
                        self.dtype
                            .element_size()
                            .map_or("variable-length".to_string(), |s| format!("{s} bytes"))
                    ),
                })
            }
        };
        match bytemuck::try_cast_slice::<u8, T>(bytes) {
            Ok(s) => Ok(Cow::Borrowed(s)),
            Err(bytemuck::PodCastError::TargetAlignmentGreaterAndInputNotAligned) => {
                Ok(Cow::Owned(bytemuck::pod_collect_to_vec::<u8, T>(bytes)))
            }
            Err(e) => Err(Error::DTypeMismatch {
                dtype: self.dtype,
                reason: format!(
                    "{} bytes do not divide into {size}-byte elements ({e})",
                    bytes.len()
                ),
            }),
        }
    }

    /// The elements widened to `f32`: float16, bfloat16 and float32.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        Ok(match self.dtype {
            DType::Float32 => self.as_slice::<f32>()?.into_owned(),
            DType::Float16 => self
                .as_slice::<half::f16>()?
                .iter()
                .map(|v| v.to_f32())
                .collect(),
            DType::BFloat16 => self
                .as_slice::<half::bf16>()?
                .iter()
                .map(|v| v.to_f32())
                .collect(),
            other => {
                return Err(Error::DTypeMismatch {
                    dtype: other,
                    reason: "to_f32_vec takes float16, bfloat16 or float32".to_string(),
                })
            }
        })
    }

    /// The elements converted to `f64`: every real numeric dtype and bool (int64 and
    /// uint64 beyond 2^53 round to the nearest double).
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        fn conv<T: bytemuck::Pod>(t: &Tensor<'_>, f: impl Fn(T) -> f64) -> Result<Vec<f64>> {
            Ok(t.view::<T>()?.iter().map(|&v| f(v)).collect())
        }
        match self.dtype {
            DType::Float16 => conv(self, |v: half::f16| v.to_f64()),
            DType::BFloat16 => conv(self, |v: half::bf16| v.to_f64()),
            DType::Float32 => conv(self, |v: f32| f64::from(v)),
            DType::Float64 => conv(self, |v: f64| v),
            DType::Int8 | DType::QInt8 => conv(self, |v: i8| f64::from(v)),
            DType::Int16 | DType::QInt16 => conv(self, |v: i16| f64::from(v)),
            DType::Int32 | DType::QInt32 => conv(self, |v: i32| f64::from(v)),
            DType::Int64 => conv(self, |v: i64| v as f64),
            DType::UInt8 | DType::QUInt8 | DType::Bool => conv(self, |v: u8| f64::from(v)),
            DType::UInt16 | DType::QUInt16 => conv(self, |v: u16| f64::from(v)),
            DType::UInt32 => conv(self, |v: u32| f64::from(v)),
            DType::UInt64 => conv(self, |v: u64| v as f64),
            other => Err(Error::DTypeMismatch {
                dtype: other,
                reason: "to_f64_vec takes real numeric dtypes and bool".to_string(),
            }),
        }
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> Tensor<'static> {
        Tensor {
            dtype: self.dtype,
            shape: self.shape,
            data: match self.data {
                TensorData::Bytes(b) => TensorData::Bytes(Cow::Owned(b.into_owned())),
                TensorData::Strings(s) => {
                    TensorData::Strings(s.into_iter().map(|c| Cow::Owned(c.into_owned())).collect())
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_views() -> Result<()> {
        let v = [1.0f32, -2.0, 3.5];
        let t = Tensor::from_slice(vec![3], &v)?;
        assert_eq!(t.bytes().map(<[u8]>::len), Some(12));
        assert_eq!(&*t.as_slice::<f32>()?, &v);
        assert!(matches!(
            t.as_slice::<i32>(),
            Err(Error::DTypeMismatch { dtype: DType::Float32, ref reason }) if reason == "requested as int32"
        ));
        assert_eq!(
            &*t.as_bits::<u32>()?,
            &[0x3f80_0000, 0xc000_0000, 0x4060_0000]
        );
        assert!(matches!(
            t.as_bits::<u16>(),
            Err(Error::DTypeMismatch { ref reason, .. }) if reason.contains("2-byte")
        ));
        assert_eq!(t.to_f32_vec()?, v);
        assert_eq!(t.to_f64_vec()?, [1.0, -2.0, 3.5]);
        Ok(())
    }

    #[test]
    fn unaligned_bytes_are_copied() -> Result<()> {
        // An aligned backing store, viewed at an odd offset.
        let mut store = [0u32; 4];
        let raw: &mut [u8] = bytemuck::cast_slice_mut(&mut store);
        raw[1..5].copy_from_slice(&1.5f32.to_le_bytes());
        raw[5..9].copy_from_slice(&(-1.0f32).to_le_bytes());
        raw[9..13].copy_from_slice(&7.0f32.to_le_bytes());
        let t = Tensor::from_bytes(DType::Float32, vec![3], &raw[1..13])?;
        let s = t.as_slice::<f32>()?;
        assert!(matches!(s, Cow::Owned(_)));
        assert_eq!(&*s, &[1.5, -1.0, 7.0]);
        let t = Tensor::from_bytes(DType::Float32, vec![3], &raw[4..16])?;
        assert!(matches!(t.as_slice::<f32>()?, Cow::Borrowed(_)));
        Ok(())
    }

    #[test]
    fn half_types_widen() -> Result<()> {
        let t = Tensor::from_bytes(DType::BFloat16, vec![2], vec![0x80, 0x3f, 0x00, 0xc0])?;
        assert_eq!(t.to_f32_vec()?, [1.0, -2.0]);
        let t = Tensor::from_bytes(DType::Float16, vec![1], vec![0x00, 0x3c])?;
        assert_eq!(t.to_f32_vec()?, [1.0]);
        Ok(())
    }

    #[test]
    fn checks_lengths() {
        let reason = |r: Result<Tensor<'_>>| match r {
            Err(Error::InvalidTensor { reason, .. }) => reason,
            other => format!("unexpected {other:?}"),
        };
        assert_eq!(
            reason(Tensor::from_bytes(DType::Float32, vec![2], vec![0u8; 7])),
            "7 bytes of data, but float32 [2] needs 8"
        );
        assert_eq!(
            reason(Tensor::from_bytes(DType::String, vec![], vec![0u8; 1])),
            "dtype string needs string data, got bytes"
        );
        assert_eq!(
            reason(Tensor::from_bytes(DType::Int8, vec![u64::MAX, 2], vec![])),
            format!("element count of shape {:?} overflows", [u64::MAX, 2])
        );
        // Zero elements, but a dimension TensorFlow cannot store.
        assert_eq!(
            reason(Tensor::from_bytes(DType::Int8, vec![0, u64::MAX], vec![])),
            format!(
                "dimension 1 of shape {:?} does not fit TensorFlow's int64 sizes",
                [0, u64::MAX]
            )
        );
        assert_eq!(
            reason(Tensor::from_strings(
                DType::String,
                vec![2],
                vec![Cow::Borrowed(&b"a"[..])]
            )),
            "1 strings, but shape [2] has 2 elements"
        );
        assert_eq!(
            reason(Tensor::from_strings(
                DType::Float32,
                vec![1],
                vec![Cow::Borrowed(&b"a"[..])]
            )),
            "dtype float32 needs bytes, got strings"
        );
        assert!(Tensor::from_bytes(DType::Float32, vec![0, 3], vec![]).is_ok());
    }
}
