//! The values of one stored slice: a `TensorProto` whose value list for the dtype holds one
//! entry per element (TensorFlow's `SaveTypeTraits` / `TensorProtoData` in
//! `tensorflow/core/util/saved_tensor_slice_util.h`; docs/format.md §3.11), turned into the
//! little-endian element bytes (or byte strings) a [`Tensor`](crate::Tensor) holds.

use ckpt_proto::TensorProto;

use crate::dtype::DType;

/// Decoded elements of one slice, row-major.
#[derive(Debug, PartialEq)]
pub(crate) enum Values {
    /// Little-endian element bytes of a fixed-size dtype.
    Bytes(Vec<u8>),
    /// One byte string per element.
    Strings(Vec<Vec<u8>>),
}

/// The `TensorProto` value list that holds a dtype in a V1 checkpoint, or `None` for dtypes a
/// V1 file cannot hold (variant, the float8 types). TensorFlow's own V1 writer stores float,
/// double, the integers up to 64 bits except uint32/uint64, bool, complex, string and half;
/// uint32, uint64 and bfloat16 are read from the lists a `TensorProto` keeps for them.
pub(crate) fn value_field(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::Float32 => "float_val",
        DType::Float64 => "double_val",
        DType::Int8
        | DType::Int16
        | DType::Int32
        | DType::UInt8
        | DType::UInt16
        | DType::QInt8
        | DType::QUInt8
        | DType::QInt16
        | DType::QUInt16
        | DType::QInt32 => "int_val",
        DType::Int64 => "int64_val",
        DType::UInt32 => "uint32_val",
        DType::UInt64 => "uint64_val",
        DType::Bool => "bool_val",
        DType::Complex64 => "scomplex_val",
        DType::Complex128 => "dcomplex_val",
        DType::Float16 | DType::BFloat16 => "half_val",
        DType::String => "string_val",
        DType::Float8E5M2
        | DType::Float8E4M3FN
        | DType::Float8E4M3FNUZ
        | DType::Float8E4M3B11FNUZ
        | DType::Float8E5M2FNUZ
        | DType::Variant => return None,
    })
}

/// The `count` elements of `dtype` in `proto`.
///
/// TensorFlow copies the list without looking at its length (and reads past its end when it is
/// short); here the list must hold exactly `count` entries (`2 * count` numbers for complex
/// dtypes), and every int or half value must fit the element type (TensorFlow would truncate
/// it). A non-empty `tensor_content` (never written by TensorFlow's V1 writer) is taken as the
/// raw little-endian elements instead, and must then be exactly `count` elements long.
///
/// Errors: the reason, for the caller to wrap with the file and tensor.
pub(crate) fn decode(dtype: DType, count: u64, proto: TensorProto) -> Result<Values, String> {
    let field = value_field(dtype)
        .ok_or_else(|| format!("dtype {dtype} cannot be stored in a V1 checkpoint"))?;
    if !proto.tensor_content.is_empty() {
        return from_content(dtype, count, proto.tensor_content);
    }
    let want = |per: u64| {
        count
            .checked_mul(per)
            .ok_or_else(|| format!("{count} elements overflow"))
    };
    let check = |found: usize, per: u64| -> Result<(), String> {
        let want = want(per)?;
        if found as u64 != want {
            return Err(format!(
                "{field} holds {found} values, but the slice has {count} elements{}",
                if per == 2 { " (two values each)" } else { "" }
            ));
        }
        Ok(())
    };
    Ok(match dtype {
        DType::Float32 => {
            check(proto.float_val.len(), 1)?;
            Values::Bytes(le_bytes(&proto.float_val, |v| v.to_le_bytes()))
        }
        DType::Float64 => {
            check(proto.double_val.len(), 1)?;
            Values::Bytes(le_bytes(&proto.double_val, |v| v.to_le_bytes()))
        }
        DType::Int32 | DType::QInt32 => {
            check(proto.int_val.len(), 1)?;
            Values::Bytes(le_bytes(&proto.int_val, |v| v.to_le_bytes()))
        }
        DType::Int8 | DType::QInt8 => {
            check(proto.int_val.len(), 1)?;
            Values::Bytes(narrow(dtype, &proto.int_val, |v| {
                i8::try_from(v).ok().map(i8::to_le_bytes)
            })?)
        }
        DType::UInt8 | DType::QUInt8 => {
            check(proto.int_val.len(), 1)?;
            Values::Bytes(narrow(dtype, &proto.int_val, |v| {
                u8::try_from(v).ok().map(u8::to_le_bytes)
            })?)
        }
        DType::Int16 | DType::QInt16 => {
            check(proto.int_val.len(), 1)?;
            Values::Bytes(narrow(dtype, &proto.int_val, |v| {
                i16::try_from(v).ok().map(i16::to_le_bytes)
            })?)
        }
        DType::UInt16 | DType::QUInt16 => {
            check(proto.int_val.len(), 1)?;
            Values::Bytes(narrow(dtype, &proto.int_val, |v| {
                u16::try_from(v).ok().map(u16::to_le_bytes)
            })?)
        }
        DType::Float16 | DType::BFloat16 => {
            check(proto.half_val.len(), 1)?;
            // The 16 bits of each element, as TensorFlow's `Fill` stores `half.x`.
            Values::Bytes(narrow(dtype, &proto.half_val, |v| {
                u16::try_from(v).ok().map(u16::to_le_bytes)
            })?)
        }
        DType::Int64 => {
            check(proto.int64_val.len(), 1)?;
            Values::Bytes(le_bytes(&proto.int64_val, |v| v.to_le_bytes()))
        }
        DType::UInt32 => {
            check(proto.uint32_val.len(), 1)?;
            Values::Bytes(le_bytes(&proto.uint32_val, |v| v.to_le_bytes()))
        }
        DType::UInt64 => {
            check(proto.uint64_val.len(), 1)?;
            Values::Bytes(le_bytes(&proto.uint64_val, |v| v.to_le_bytes()))
        }
        DType::Bool => {
            check(proto.bool_val.len(), 1)?;
            Values::Bytes(proto.bool_val.iter().map(|&b| u8::from(b)).collect())
        }
        DType::Complex64 => {
            check(proto.scomplex_val.len(), 2)?;
            Values::Bytes(le_bytes(&proto.scomplex_val, |v| v.to_le_bytes()))
        }
        DType::Complex128 => {
            check(proto.dcomplex_val.len(), 2)?;
            Values::Bytes(le_bytes(&proto.dcomplex_val, |v| v.to_le_bytes()))
        }
        DType::String => {
            check(proto.string_val.len(), 1)?;
            Values::Strings(proto.string_val)
        }
        // Refused by `value_field` above.
        other => return Err(format!("dtype {other} cannot be stored in a V1 checkpoint")),
    })
}

/// Raw little-endian elements from `tensor_content`.
fn from_content(dtype: DType, count: u64, content: Vec<u8>) -> Result<Values, String> {
    let Some(size) = dtype.element_size() else {
        return Err(format!(
            "tensor_content cannot hold {dtype} elements; expected string_val"
        ));
    };
    let want = count
        .checked_mul(size as u64)
        .ok_or_else(|| format!("{count} elements overflow"))?;
    if content.len() as u64 != want {
        return Err(format!(
            "tensor_content holds {} bytes, but {count} {dtype} elements take {want}",
            content.len()
        ));
    }
    Ok(Values::Bytes(content))
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len().saturating_mul(N));
    for &v in values {
        out.extend_from_slice(&to(v));
    }
    out
}

/// Stores each value in the narrower element type, refusing values that do not fit.
fn narrow<const N: usize>(
    dtype: DType,
    values: &[i32],
    to: impl Fn(i32) -> Option<[u8; N]>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(values.len().saturating_mul(N));
    for (i, &v) in values.iter().enumerate() {
        let bytes =
            to(v).ok_or_else(|| format!("value {v} of element {i} does not fit {dtype}"))?;
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: Result<Values, String>) -> Result<Vec<u8>, String> {
        match v? {
            Values::Bytes(b) => Ok(b),
            Values::Strings(_) => Err("strings".to_string()),
        }
    }

    #[test]
    fn every_list_decodes_to_little_endian_elements() -> Result<(), String> {
        let p = TensorProto {
            int_val: vec![-1, 127],
            ..Default::default()
        };
        assert_eq!(bytes(decode(DType::Int8, 2, p.clone()))?, [0xff, 0x7f]);
        assert_eq!(
            bytes(decode(DType::Int32, 2, p.clone()))?,
            [0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0]
        );
        assert_eq!(
            decode(DType::UInt8, 2, p),
            Err("value -1 of element 0 does not fit uint8".to_string())
        );
        let p = TensorProto {
            half_val: vec![0x3c00, 0xbc00],
            ..Default::default()
        };
        assert_eq!(
            bytes(decode(DType::Float16, 2, p))?,
            [0x00, 0x3c, 0x00, 0xbc]
        );
        let p = TensorProto {
            scomplex_val: vec![1.0, -2.0],
            ..Default::default()
        };
        assert_eq!(
            bytes(decode(DType::Complex64, 1, p.clone()))?,
            [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]
        );
        assert_eq!(
            decode(DType::Complex64, 2, p),
            Err(
                "scomplex_val holds 2 values, but the slice has 2 elements (two values each)"
                    .to_string()
            )
        );
        let p = TensorProto {
            bool_val: vec![true, false],
            ..Default::default()
        };
        assert_eq!(bytes(decode(DType::Bool, 2, p))?, [1, 0]);
        let p = TensorProto {
            string_val: vec![b"a".to_vec(), vec![]],
            ..Default::default()
        };
        assert!(
            matches!(decode(DType::String, 2, p), Ok(Values::Strings(s)) if s == [b"a".to_vec(), vec![]])
        );
        Ok(())
    }

    #[test]
    fn counts_and_content_are_checked() -> Result<(), String> {
        let p = TensorProto {
            float_val: vec![1.0; 3],
            ..Default::default()
        };
        assert_eq!(
            decode(DType::Float32, 4, p),
            Err("float_val holds 3 values, but the slice has 4 elements".to_string())
        );
        let p = TensorProto {
            tensor_content: vec![1, 0, 2, 0],
            ..Default::default()
        };
        assert_eq!(bytes(decode(DType::Int16, 2, p.clone()))?, [1, 0, 2, 0]);
        assert_eq!(
            decode(DType::Int32, 2, p.clone()),
            Err("tensor_content holds 4 bytes, but 2 int32 elements take 8".to_string())
        );
        assert!(decode(DType::String, 1, p).is_err());
        assert_eq!(
            decode(DType::Variant, 0, TensorProto::default()),
            Err("dtype variant cannot be stored in a V1 checkpoint".to_string())
        );
        assert_eq!(
            decode(DType::Float32, u64::MAX, TensorProto::default()),
            Err(format!(
                "float_val holds 0 values, but the slice has {} elements",
                u64::MAX
            ))
        );
        Ok(())
    }
}
