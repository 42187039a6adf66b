//! `TensorProto` -> [`Value`], following `Tensor::FromProto` (tensorflow/core/framework/tensor.cc):
//! non-empty `tensor_content` is the raw little-endian data; otherwise the dtype's typed field
//! holds the values, the last one repeated to fill the shape (zeros when the field is empty).
//! Values come out in their [`compute_dtype`](crate::compute_dtype) (half and bfloat16 are
//! kept as such).

use ckpt_proto::{DataType, TensorProto};
use half::{bf16, f16};

use crate::value::{checked_num_elements, TensorBuf};
use crate::Value;

/// Upper bound on the elements a constant may expand to by the repeat-last-value rule,
/// where the proto's size alone (not its bytes) would decide the allocation.
const MAX_FILL_ELEMENTS: usize = 1 << 27;

/// Decodes a constant tensor; the error message says what is wrong with it.
pub(crate) fn decode(proto: &TensorProto) -> Result<Value, String> {
    let dtype =
        DataType::try_from(proto.dtype).map_err(|_| format!("unknown dtype {}", proto.dtype))?;
    let shape = shape_of(proto)?;
    let n = checked_num_elements(&shape).ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let content = proto.tensor_content.as_slice();
    if content.is_empty() && n > MAX_FILL_ELEMENTS {
        return Err(format!(
            "shape {shape:?} is too large for a constant filled from a value list"
        ));
    }
    let value = match dtype {
        DataType::DtFloat => Value::F32(typed(
            shape,
            n,
            content,
            &proto.float_val,
            |b: &[u8; 4]| f32::from_le_bytes(*b),
        )?),
        DataType::DtDouble => Value::F64(typed(
            shape,
            n,
            content,
            &proto.double_val,
            |b: &[u8; 8]| f64::from_le_bytes(*b),
        )?),
        DataType::DtInt32 => {
            Value::I32(typed(shape, n, content, &proto.int_val, |b: &[u8; 4]| {
                i32::from_le_bytes(*b)
            })?)
        }
        DataType::DtInt64 => Value::I64(typed(
            shape,
            n,
            content,
            &proto.int64_val,
            |b: &[u8; 8]| i64::from_le_bytes(*b),
        )?),
        DataType::DtUint8 => {
            let vals: Vec<u8> = proto.int_val.iter().map(|&v| v as u8).collect();
            Value::U8(typed(shape, n, content, &vals, |b: &[u8; 1]| b[0])?)
        }
        DataType::DtBool => {
            Value::Bool(typed(shape, n, content, &proto.bool_val, |b: &[u8; 1]| {
                b[0] != 0
            })?)
        }
        DataType::DtHalf => {
            let vals: Vec<f16> = proto
                .half_val
                .iter()
                .map(|&v| f16::from_bits(v as u16))
                .collect();
            Value::F16(typed(shape, n, content, &vals, |b: &[u8; 2]| {
                f16::from_le_bytes(*b)
            })?)
        }
        DataType::DtBfloat16 => {
            let vals: Vec<bf16> = proto
                .half_val
                .iter()
                .map(|&v| bf16::from_bits(v as u16))
                .collect();
            Value::BF16(typed(shape, n, content, &vals, |b: &[u8; 2]| {
                bf16::from_le_bytes(*b)
            })?)
        }
        DataType::DtString => {
            if !content.is_empty() {
                return Err("string constants in tensor_content are not supported".to_string());
            }
            Value::Str(fill(shape, n, &proto.string_val))
        }
        other => return Err(format!("constants of dtype {other:?} are not supported")),
    };
    Ok(value)
}

fn shape_of(proto: &TensorProto) -> Result<Vec<usize>, String> {
    let Some(shape) = &proto.tensor_shape else {
        return Ok(Vec::new());
    };
    if shape.unknown_rank {
        return Err("constant has unknown rank".to_string());
    }
    shape
        .dim
        .iter()
        .map(|d| usize::try_from(d.size).map_err(|_| format!("constant has dimension {}", d.size)))
        .collect()
}

/// Decodes from `content` (`N`-byte little-endian elements) when it is non-empty, else from the
/// typed value list with TensorFlow's fill rule.
fn typed<T: Clone + Default, const N: usize>(
    shape: Vec<usize>,
    n: usize,
    content: &[u8],
    list: &[T],
    from_le: impl Fn(&[u8; N]) -> T,
) -> Result<TensorBuf<T>, String> {
    if content.is_empty() {
        return Ok(fill(shape, n, list));
    }
    let expected = n
        .checked_mul(N)
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    if content.len() != expected {
        return Err(format!(
            "tensor_content has {} bytes, shape {shape:?} needs {expected}",
            content.len()
        ));
    }
    let data = content
        .chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            from_le(&b)
        })
        .collect();
    Ok(TensorBuf::from_parts(shape, data))
}

/// The first `n` values of `list`, the last one repeated when it is shorter, default values
/// when it is empty.
fn fill<T: Clone + Default>(shape: Vec<usize>, n: usize, list: &[T]) -> TensorBuf<T> {
    let mut data: Vec<T> = list.iter().take(n).cloned().collect();
    let last = data.last().cloned().unwrap_or_default();
    data.resize(n, last);
    TensorBuf::from_parts(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ckpt_proto::{tensor_shape_proto::Dim, TensorShapeProto};

    fn proto(dtype: DataType, dims: &[i64]) -> TensorProto {
        TensorProto {
            dtype: dtype as i32,
            tensor_shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&size| Dim {
                        size,
                        name: String::new(),
                    })
                    .collect(),
                unknown_rank: false,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn tensor_content_int32() -> Result<(), String> {
        // `flatten/Const` from docs/format.md §4.4: [-1, 784].
        let mut p = proto(DataType::DtInt32, &[2]);
        p.tensor_content = vec![0xff, 0xff, 0xff, 0xff, 0x10, 0x03, 0x00, 0x00];
        assert_eq!(decode(&p)?.as_i32(), Some(&[-1, 784][..]));
        Ok(())
    }

    #[test]
    fn typed_field_repeats_last_value() -> Result<(), String> {
        let mut p = proto(DataType::DtFloat, &[2, 2]);
        p.float_val = vec![1.5, 2.5];
        assert_eq!(decode(&p)?.as_f32(), Some(&[1.5, 2.5, 2.5, 2.5][..]));
        let p = proto(DataType::DtFloat, &[3]);
        assert_eq!(decode(&p)?.as_f32(), Some(&[0.0; 3][..]));
        let mut p = proto(DataType::DtInt64, &[]);
        p.int64_val = vec![7, 8];
        let v = decode(&p)?;
        assert_eq!(v.shape(), &[] as &[usize]);
        assert_eq!(v.as_i64(), Some(&[7][..]));
        Ok(())
    }

    #[test]
    fn half_and_bfloat16_keep_their_dtype() -> Result<(), String> {
        let widened = |v: Value| -> Vec<f32> {
            crate::half_precision::widen(&v)
                .and_then(|w| w.as_f32().map(<[f32]>::to_vec))
                .unwrap_or_default()
        };
        let mut p = proto(DataType::DtHalf, &[2]);
        p.half_val = vec![0x3c00, 0xc000]; // 1.0, -2.0
        let v = decode(&p)?;
        assert_eq!(v.dtype(), crate::DType::Float16);
        assert_eq!(widened(v), vec![1.0, -2.0]);
        let mut p = proto(DataType::DtBfloat16, &[1]);
        p.half_val = vec![0x3fc0]; // 1.5
        let v = decode(&p)?;
        assert_eq!(v.dtype(), crate::DType::BFloat16);
        assert_eq!(widened(v), vec![1.5]);
        let mut p = proto(DataType::DtHalf, &[1]);
        p.tensor_content = vec![0x00, 0x3c];
        assert_eq!(widened(decode(&p)?), vec![1.0]);
        Ok(())
    }

    #[test]
    fn decoded_dtypes_follow_the_compute_dtype_policy() -> Result<(), String> {
        for dtype in [
            DataType::DtFloat,
            DataType::DtDouble,
            DataType::DtInt32,
            DataType::DtInt64,
            DataType::DtUint8,
            DataType::DtBool,
            DataType::DtHalf,
            DataType::DtBfloat16,
            DataType::DtString,
        ] {
            let v = decode(&proto(dtype, &[1]))?;
            assert_eq!(Some(v.dtype()), crate::compute_dtype(dtype), "{dtype:?}");
        }
        Ok(())
    }

    #[test]
    fn bool_and_string_lists() -> Result<(), String> {
        let mut p = proto(DataType::DtBool, &[]);
        p.bool_val = vec![false];
        assert_eq!(decode(&p)?.as_bool(), Some(&[false][..]));
        let mut p = proto(DataType::DtString, &[2]);
        p.string_val = vec![b"a".to_vec()];
        assert_eq!(
            decode(&p)?.as_strings(),
            Some(&[b"a".to_vec(), b"a".to_vec()][..])
        );
        Ok(())
    }

    #[test]
    fn hostile_sizes_are_errors() {
        let mut p = proto(DataType::DtFloat, &[3]);
        p.tensor_content = vec![0; 8];
        assert_eq!(
            decode(&p).err().as_deref(),
            Some("tensor_content has 8 bytes, shape [3] needs 12")
        );
        let p = proto(DataType::DtFloat, &[1 << 40]);
        assert_eq!(
            decode(&p).err().as_deref(),
            Some("shape [1099511627776] is too large for a constant filled from a value list")
        );
        let p = proto(DataType::DtFloat, &[-1]);
        assert_eq!(
            decode(&p).err().as_deref(),
            Some("constant has dimension -1")
        );
        let p = proto(DataType::DtFloat, &[i64::MAX, i64::MAX]);
        assert_eq!(
            decode(&p).err().as_deref(),
            Some("shape [9223372036854775807, 9223372036854775807] overflows")
        );
    }
}
