//! Element types a bundle can hold, with their TensorFlow enum values, names and sizes.

use std::fmt;

use ckpt_proto::DataType;

/// The element type of a stored tensor (TensorFlow's `DataType`, minus the kinds that
/// never appear in a bundle: `DT_RESOURCE`, the `*_REF` types, and the sub-byte integers
/// whose layout is not settled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE half precision (`DT_HALF`, numpy `float16`), 2 bytes.
    Float16,
    /// bfloat16 (`DT_BFLOAT16`): the top 16 bits of a float32, 2 bytes.
    BFloat16,
    /// IEEE single precision (`DT_FLOAT`), 4 bytes.
    Float32,
    /// IEEE double precision (`DT_DOUBLE`), 8 bytes.
    Float64,
    /// Signed 8-bit integer (`DT_INT8`).
    Int8,
    /// Signed 16-bit integer (`DT_INT16`).
    Int16,
    /// Signed 32-bit integer (`DT_INT32`).
    Int32,
    /// Signed 64-bit integer (`DT_INT64`).
    Int64,
    /// Unsigned 8-bit integer (`DT_UINT8`).
    UInt8,
    /// Unsigned 16-bit integer (`DT_UINT16`).
    UInt16,
    /// Unsigned 32-bit integer (`DT_UINT32`).
    UInt32,
    /// Unsigned 64-bit integer (`DT_UINT64`).
    UInt64,
    /// Boolean (`DT_BOOL`), one byte, 0 or 1.
    Bool,
    /// Complex of two float32s, real part first (`DT_COMPLEX64`), 8 bytes.
    Complex64,
    /// Complex of two float64s, real part first (`DT_COMPLEX128`), 16 bytes.
    Complex128,
    /// Byte strings of any length (`DT_STRING`); not necessarily UTF-8.
    String,
    /// Quantized signed 8-bit integer (`DT_QINT8`), stored as int8.
    QInt8,
    /// Quantized unsigned 8-bit integer (`DT_QUINT8`), stored as uint8.
    QUInt8,
    /// Quantized signed 16-bit integer (`DT_QINT16`), stored as int16.
    QInt16,
    /// Quantized unsigned 16-bit integer (`DT_QUINT16`), stored as uint16.
    QUInt16,
    /// Quantized signed 32-bit integer (`DT_QINT32`), stored as int32.
    QInt32,
    /// 8-bit float with 5 exponent and 2 mantissa bits (`DT_FLOAT8_E5M2`).
    Float8E5M2,
    /// 8-bit float, 4 exponent and 3 mantissa bits, finite only (`DT_FLOAT8_E4M3FN`).
    Float8E4M3FN,
    /// 8-bit float, 4 exponent and 3 mantissa bits, finite, unsigned zero (`DT_FLOAT8_E4M3FNUZ`).
    Float8E4M3FNUZ,
    /// 8-bit float, 4 exponent bits with bias 11, finite, unsigned zero (`DT_FLOAT8_E4M3B11FNUZ`).
    Float8E4M3B11FNUZ,
    /// 8-bit float, 5 exponent and 2 mantissa bits, finite, unsigned zero (`DT_FLOAT8_E5M2FNUZ`).
    Float8E5M2FNUZ,
    /// Serialized `VariantTensorDataProto`s; handed out as raw bytes.
    Variant,
}

/// One row of the dtype table: (dtype, proto enum, TensorFlow name, element size, numpy descr).
type Row = (
    DType,
    DataType,
    &'static str,
    Option<usize>,
    Option<&'static str>,
);

/// One row per dtype, in declaration order.
const TABLE: &[Row] = &[
    (
        DType::Float16,
        DataType::DtHalf,
        "float16",
        Some(2),
        Some("<f2"),
    ),
    (
        DType::BFloat16,
        DataType::DtBfloat16,
        "bfloat16",
        Some(2),
        None,
    ),
    (
        DType::Float32,
        DataType::DtFloat,
        "float32",
        Some(4),
        Some("<f4"),
    ),
    (
        DType::Float64,
        DataType::DtDouble,
        "float64",
        Some(8),
        Some("<f8"),
    ),
    (DType::Int8, DataType::DtInt8, "int8", Some(1), Some("|i1")),
    (
        DType::Int16,
        DataType::DtInt16,
        "int16",
        Some(2),
        Some("<i2"),
    ),
    (
        DType::Int32,
        DataType::DtInt32,
        "int32",
        Some(4),
        Some("<i4"),
    ),
    (
        DType::Int64,
        DataType::DtInt64,
        "int64",
        Some(8),
        Some("<i8"),
    ),
    (
        DType::UInt8,
        DataType::DtUint8,
        "uint8",
        Some(1),
        Some("|u1"),
    ),
    (
        DType::UInt16,
        DataType::DtUint16,
        "uint16",
        Some(2),
        Some("<u2"),
    ),
    (
        DType::UInt32,
        DataType::DtUint32,
        "uint32",
        Some(4),
        Some("<u4"),
    ),
    (
        DType::UInt64,
        DataType::DtUint64,
        "uint64",
        Some(8),
        Some("<u8"),
    ),
    (DType::Bool, DataType::DtBool, "bool", Some(1), Some("|b1")),
    (
        DType::Complex64,
        DataType::DtComplex64,
        "complex64",
        Some(8),
        Some("<c8"),
    ),
    (
        DType::Complex128,
        DataType::DtComplex128,
        "complex128",
        Some(16),
        Some("<c16"),
    ),
    (DType::String, DataType::DtString, "string", None, None),
    (
        DType::QInt8,
        DataType::DtQint8,
        "qint8",
        Some(1),
        Some("|i1"),
    ),
    (
        DType::QUInt8,
        DataType::DtQuint8,
        "quint8",
        Some(1),
        Some("|u1"),
    ),
    (
        DType::QInt16,
        DataType::DtQint16,
        "qint16",
        Some(2),
        Some("<i2"),
    ),
    (
        DType::QUInt16,
        DataType::DtQuint16,
        "quint16",
        Some(2),
        Some("<u2"),
    ),
    (
        DType::QInt32,
        DataType::DtQint32,
        "qint32",
        Some(4),
        Some("<i4"),
    ),
    (
        DType::Float8E5M2,
        DataType::DtFloat8E5m2,
        "float8_e5m2",
        Some(1),
        None,
    ),
    (
        DType::Float8E4M3FN,
        DataType::DtFloat8E4m3fn,
        "float8_e4m3fn",
        Some(1),
        None,
    ),
    (
        DType::Float8E4M3FNUZ,
        DataType::DtFloat8E4m3fnuz,
        "float8_e4m3fnuz",
        Some(1),
        None,
    ),
    (
        DType::Float8E4M3B11FNUZ,
        DataType::DtFloat8E4m3b11fnuz,
        "float8_e4m3b11fnuz",
        Some(1),
        None,
    ),
    (
        DType::Float8E5M2FNUZ,
        DataType::DtFloat8E5m2fnuz,
        "float8_e5m2fnuz",
        Some(1),
        None,
    ),
    (DType::Variant, DataType::DtVariant, "variant", None, None),
];

impl DType {
    /// Every dtype, in the order of the table above.
    pub const ALL: [DType; 27] = [
        DType::Float16,
        DType::BFloat16,
        DType::Float32,
        DType::Float64,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Bool,
        DType::Complex64,
        DType::Complex128,
        DType::String,
        DType::QInt8,
        DType::QUInt8,
        DType::QInt16,
        DType::QUInt16,
        DType::QInt32,
        DType::Float8E5M2,
        DType::Float8E4M3FN,
        DType::Float8E4M3FNUZ,
        DType::Float8E4M3B11FNUZ,
        DType::Float8E5M2FNUZ,
        DType::Variant,
    ];

    fn row(self) -> &'static Row {
        // TABLE lists the variants in declaration order, so the discriminant indexes it.
        &TABLE[self as usize]
    }

    /// The dtype for a `DataType` enum value as stored in a `BundleEntryProto`, or `None`
    /// for values a bundle cannot hold (invalid, resource, `*_REF`, sub-byte, unknown).
    pub fn from_proto(v: i32) -> Option<DType> {
        TABLE.iter().find(|row| row.1 as i32 == v).map(|row| row.0)
    }

    /// The `DataType` enum value TensorFlow uses for this dtype.
    pub fn to_proto(self) -> DataType {
        self.row().1
    }

    /// TensorFlow's name (`tf.DType.name`): `"float32"`, `"bfloat16"`, `"string"`, ...
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// The dtype with TensorFlow name `name` (also accepts `"half"`, `"float"`, `"double"`).
    pub fn from_name(name: &str) -> Option<DType> {
        match name {
            "half" => Some(DType::Float16),
            "float" => Some(DType::Float32),
            "double" => Some(DType::Float64),
            _ => TABLE.iter().find(|row| row.2 == name).map(|row| row.0),
        }
    }

    /// Bytes per element, or `None` for the variable-length string and variant types.
    pub fn element_size(self) -> Option<usize> {
        self.row().3
    }

    /// numpy's array-protocol type string (`"<f4"`, `"|b1"`, `"<c8"`...), where numpy has
    /// the type; `None` for bfloat16, float8, string and variant.
    pub fn numpy_descr(self) -> Option<&'static str> {
        self.row().4
    }

    /// The dtype of numpy's array-protocol type string: `"<f4"` is float32, `"|b1"` bool,
    /// `"<c8"` complex64, `"|S5"` and `"<U3"` (fixed-width bytes and unicode) string. The
    /// byte order must be little-endian (`<`), not applicable (`|`) or native (`=`; this
    /// crate assumes a little-endian host). `None` for big-endian descriptors and for numpy
    /// types TensorFlow has no dtype for (`"<M8"`, `"|O"`, `"|V4"`, ...). The inverse of
    /// [`numpy_descr`](Self::numpy_descr), except that the quantized dtypes share their
    /// integer types' descriptors and read back as those.
    pub fn from_numpy_descr(descr: &str) -> Option<DType> {
        let body = descr.strip_prefix(['<', '|', '='])?;
        let (kind, width) = body.split_at_checked(1)?;
        if matches!(kind, "S" | "U") && width.bytes().all(|b| b.is_ascii_digit()) {
            return Some(DType::String);
        }
        TABLE
            .iter()
            .find(|row| row.4.and_then(|d| d.get(1..)) == Some(body))
            .map(|row| row.0)
    }

    /// The size of the units byte-swapped between big- and little-endian files: the element
    /// size, except for complex types, whose real and imaginary parts swap separately.
    pub(crate) fn swap_unit(self) -> usize {
        match self {
            DType::Complex64 => 4,
            DType::Complex128 => 8,
            other => other.element_size().unwrap_or(1),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type whose values are a dtype's elements, byte for byte (little-endian host).
///
/// Sealed: implemented for the primitive numeric types and `half`'s `f16`/`bf16`.
pub trait Element: bytemuck::Pod + sealed::Sealed {
    /// The dtype whose elements this type holds.
    const DTYPE: DType;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(
            impl sealed::Sealed for $t {}
            impl Element for $t {
                const DTYPE: DType = DType::$d;
            }
        )*
    };
}

element! {
    [f32; 2] => Complex64,
    [f64; 2] => Complex128,
    half::f16 => Float16,
    half::bf16 => BFloat16,
    f32 => Float32,
    f64 => Float64,
    i8 => Int8,
    i16 => Int16,
    i32 => Int32,
    i64 => Int64,
    u8 => UInt8,
    u16 => UInt16,
    u32 => UInt32,
    u64 => UInt64,
}

/// An unsigned integer type that holds the raw bits of one element: `u8`, `u16`, `u32`,
/// `u64` or `u128` (see [`Tensor::as_bits`](crate::Tensor::as_bits)). Sealed.
pub trait Bits: bytemuck::Pod + sealed::Sealed {}

impl sealed::Sealed for u128 {}
impl Bits for u8 {}
impl Bits for u16 {}
impl Bits for u32 {}
impl Bits for u64 {}
impl Bits for u128 {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order() {
        for (i, d) in DType::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].0, *d);
            assert_eq!(*d as usize, i);
        }
        assert_eq!(TABLE.len(), DType::ALL.len());
    }

    #[test]
    fn proto_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_proto(d.to_proto() as i32), Some(d));
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_proto(1), Some(DType::Float32));
        assert_eq!(DType::from_proto(14), Some(DType::BFloat16));
        assert_eq!(DType::from_proto(19), Some(DType::Float16));
        assert_eq!(DType::from_proto(7), Some(DType::String));
        assert_eq!(DType::from_proto(0), None);
        assert_eq!(DType::from_proto(20), None, "resource");
        assert_eq!(DType::from_proto(29), None, "int4");
        assert_eq!(DType::from_proto(101), None, "float_ref");
        assert_eq!(DType::from_proto(-1), None);
        assert_eq!(DType::from_proto(1000), None);
    }

    #[test]
    fn names_and_sizes() {
        assert_eq!(DType::Float32.name(), "float32");
        assert_eq!(DType::Float16.name(), "float16");
        assert_eq!(DType::Complex64.name(), "complex64");
        assert_eq!(DType::Complex128.element_size(), Some(16));
        assert_eq!(DType::String.element_size(), None);
        assert_eq!(DType::Variant.element_size(), None);
        assert_eq!(DType::Bool.element_size(), Some(1));
        assert_eq!(DType::Complex64.swap_unit(), 4);
        assert_eq!(DType::from_name("half"), Some(DType::Float16));
        assert_eq!(<half::bf16 as Element>::DTYPE, DType::BFloat16);
    }

    #[test]
    fn numpy_descriptors() {
        for d in DType::ALL {
            if let Some(descr) = d.numpy_descr() {
                let back = DType::from_numpy_descr(descr);
                let base = match d {
                    DType::QInt8 => DType::Int8,
                    DType::QUInt8 => DType::UInt8,
                    DType::QInt16 => DType::Int16,
                    DType::QUInt16 => DType::UInt16,
                    DType::QInt32 => DType::Int32,
                    other => other,
                };
                assert_eq!(back, Some(base), "{descr}");
            }
        }
        assert_eq!(DType::from_numpy_descr("=f8"), Some(DType::Float64));
        assert_eq!(DType::from_numpy_descr("|S7"), Some(DType::String));
        assert_eq!(DType::from_numpy_descr("<U0"), Some(DType::String));
        for unknown in [">f4", "<f3", "|O", "<M8", "|V4", "f4", "", "<", "|Sx"] {
            assert_eq!(DType::from_numpy_descr(unknown), None, "{unknown}");
        }
    }
}
