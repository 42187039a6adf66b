//! The one place where arrays change form: checkpoint tensors, runtime values, numpy `.npy`
//! arrays (and so `.npz` members) and safetensors dtypes. `ckpt export`, `ckpt import` and
//! `ckpt-run` (feeds, `--out`, printed results) all go through here, so a dtype converts the
//! same way everywhere. Bytes are kept unchanged where the target can hold them.

use std::borrow::Cow;

use anyhow::{anyhow, bail, Result};
use ckpt_bundle::{DType, Tensor, TensorData};
use ckpt_runtime::Value;

use crate::npy::NpyArray;

/// Turns a checkpoint tensor into an npy array: numpy's own dtype where numpy has one
/// ([`DType::numpy_descr`]), bfloat16 widened to float32 (exactly: a bfloat16 is the top half
/// of a float32), strings into fixed-width `S` bytes padded with NULs.
///
/// Errors name the tensor when numpy has no such dtype (float8, variant).
pub fn tensor_to_npy(name: &str, tensor: &Tensor<'_>) -> Result<NpyArray<'static>> {
    let shape = tensor.shape().to_vec();
    match (tensor.data(), tensor.dtype()) {
        (TensorData::Bytes(bytes), DType::BFloat16) => {
            let data: Vec<u8> = bytes
                .chunks_exact(2)
                .flat_map(|pair| [0, 0, pair[0], pair[1]])
                .collect();
            Ok(NpyArray {
                descr: "<f4".into(),
                shape,
                data: data.into(),
            })
        }
        (TensorData::Bytes(bytes), dtype) => {
            let descr = dtype.numpy_descr().ok_or_else(|| {
                anyhow!(
                    "tensor {name:?}: dtype {} has no numpy equivalent",
                    dtype.name()
                )
            })?;
            Ok(NpyArray {
                descr: descr.into(),
                shape,
                data: bytes.to_vec().into(),
            })
        }
        (TensorData::Strings(strings), _) => {
            // numpy gives an all-empty bytes array the width 1.
            let width = strings.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
            let mut data = Vec::with_capacity(width.saturating_mul(strings.len()));
            for s in strings {
                data.extend_from_slice(s);
                data.resize(data.len() + width - s.len(), 0);
            }
            Ok(NpyArray {
                descr: format!("|S{width}"),
                shape,
                data: data.into(),
            })
        }
    }
}

/// The most elements of a zero-width string array (`|S0`, `<U0`) converted: they hold no
/// bytes, so nothing else bounds the work they ask for.
pub const MAX_ZERO_WIDTH_ELEMENTS: usize = 1 << 24;

/// Turns an npy array into a checkpoint tensor, its dtype read with
/// [`DType::from_numpy_descr`]. `S` arrays lose their trailing NULs (as numpy's own `bytes`
/// values do); `U` arrays become UTF-8 strings.
///
/// Errors name the entry: a descriptor TensorFlow has no dtype for (no silent fallback), data
/// that does not fill the shape, an invalid code point.
pub fn npy_to_tensor<'b>(name: &str, array: &'b NpyArray<'_>) -> Result<Tensor<'b>> {
    let descr = array.descr.as_str();
    let dtype = DType::from_numpy_descr(descr).ok_or_else(|| {
        anyhow!("entry {name:?}: numpy dtype {descr:?} has no TensorFlow equivalent")
    })?;
    if dtype != DType::String {
        return Ok(Tensor::from_bytes(
            dtype,
            array.shape.clone(),
            &array.data[..],
        )?);
    }
    let unicode = descr.get(1..2) == Some("U");
    let width: usize = descr.get(2..).and_then(|w| w.parse().ok()).unwrap_or(0);
    let item = if unicode { width * 4 } else { width };
    let count = usize::try_from(array.num_elements()?)?;
    // Work is bounded by the bytes present, except for zero-width elements (`|S0`), which
    // claim elements without bytes: those are capped.
    if item == 0 && count > MAX_ZERO_WIDTH_ELEMENTS {
        bail!(
            "entry {name:?}: {count} zero-width {descr} elements; at most {MAX_ZERO_WIDTH_ELEMENTS} are read"
        );
    }
    let mut strings = Vec::with_capacity(count.min(array.data.len()));
    for i in 0..count {
        let raw = if item == 0 {
            &[][..]
        } else {
            array
                .data
                .get(i * item..(i + 1) * item)
                .ok_or_else(|| anyhow!("entry {name:?}: data ends inside element {i}"))?
        };
        let value = if unicode {
            let mut text = String::new();
            for unit in raw.chunks_exact(4) {
                let code = u32::from_le_bytes([unit[0], unit[1], unit[2], unit[3]]);
                if code == 0 {
                    break;
                }
                text.push(char::from_u32(code).ok_or_else(|| {
                    anyhow!("entry {name:?}: invalid unicode code point {code:#x}")
                })?);
            }
            text.into_bytes()
        } else {
            let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            raw[..end].to_vec()
        };
        strings.push(Cow::Owned(value));
    }
    Ok(Tensor::from_strings(
        DType::String,
        array.shape.clone(),
        strings,
    )?)
}

/// Turns an npy array fed to `ckpt-run` into a value: as [`npy_to_tensor`], then integer types
/// narrower than the executor holds widened exactly (int8, int16 and uint16 to int32, uint32
/// to int64) and [`Value::from_tensor`]'s compute-dtype policy (float16 kept). The
/// session then casts it to the placeholder's dtype, as `feed_dict` does.
///
/// Errors name the feed's dtype when the executor cannot hold it (uint64, complex).
pub fn npy_to_value(name: &str, array: &NpyArray<'_>) -> Result<Value> {
    let tensor = npy_to_tensor(name, array)?;
    let shape = tensor.shape().to_vec();
    let widened = match tensor.dtype() {
        DType::Int8 => Some(widen::<i8, i32>(&tensor, shape)?),
        DType::Int16 => Some(widen::<i16, i32>(&tensor, shape)?),
        DType::UInt16 => Some(widen::<u16, i32>(&tensor, shape)?),
        DType::UInt32 => Some(widen::<u32, i64>(&tensor, shape)?),
        _ => None,
    };
    Ok(Value::from_tensor(widened.as_ref().unwrap_or(&tensor))?)
}

fn widen<T: ckpt_bundle::Element, U: ckpt_bundle::Element + From<T>>(
    tensor: &Tensor<'_>,
    shape: Vec<u64>,
) -> Result<Tensor<'static>> {
    let values: Vec<U> = tensor
        .as_slice::<T>()?
        .iter()
        .map(|&v| U::from(v))
        .collect();
    Ok(Tensor::from_vec(shape, values)?)
}

/// A value computed by `ckpt-run` as an npy array (see [`tensor_to_npy`]).
pub fn value_to_npy(name: &str, value: &Value) -> Result<NpyArray<'static>> {
    tensor_to_npy(name, &value.to_tensor()?)
}

/// The safetensors dtype for a checkpoint dtype, if safetensors has one.
pub fn safetensors_dtype(dtype: DType) -> Option<safetensors::Dtype> {
    use safetensors::Dtype as S;
    Some(match dtype {
        DType::Float16 => S::F16,
        DType::BFloat16 => S::BF16,
        DType::Float32 => S::F32,
        DType::Float64 => S::F64,
        DType::Int8 => S::I8,
        DType::Int16 => S::I16,
        DType::Int32 => S::I32,
        DType::Int64 => S::I64,
        DType::UInt8 => S::U8,
        DType::UInt16 => S::U16,
        DType::UInt32 => S::U32,
        DType::UInt64 => S::U64,
        DType::Bool => S::BOOL,
        _ => return None,
    })
}

/// The checkpoint dtype for a safetensors dtype, if TensorFlow has one.
pub fn dtype_from_safetensors(dtype: safetensors::Dtype) -> Option<DType> {
    use safetensors::Dtype as S;
    Some(match dtype {
        S::F16 => DType::Float16,
        S::BF16 => DType::BFloat16,
        S::F32 => DType::Float32,
        S::F64 => DType::Float64,
        S::I8 => DType::Int8,
        S::I16 => DType::Int16,
        S::I32 => DType::Int32,
        S::I64 => DType::Int64,
        S::U8 => DType::UInt8,
        S::U16 => DType::UInt16,
        S::U32 => DType::UInt32,
        S::U64 => DType::UInt64,
        S::BOOL => DType::Bool,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfloat16_widens_exactly() -> Result<()> {
        // 1.0 and -2.0 in bfloat16 (docs/format.md §3.6).
        let t = Tensor::from_bytes(
            DType::BFloat16,
            vec![2],
            Cow::Owned(vec![0x80, 0x3f, 0x00, 0xc0]),
        )?;
        let npy = tensor_to_npy("t", &t)?;
        assert_eq!(npy.descr, "<f4");
        let values: Vec<f32> = npy
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(values, [1.0, -2.0]);
        Ok(())
    }

    #[test]
    fn strings_become_fixed_width_bytes_and_back() -> Result<()> {
        let strings = vec![
            Cow::Borrowed(&b"a"[..]),
            Cow::Borrowed(&b"bcd"[..]),
            Cow::Borrowed(&b""[..]),
        ];
        let t = Tensor::from_strings(DType::String, vec![3], strings)?;
        let npy = tensor_to_npy("t", &t)?;
        assert_eq!(npy.descr, "|S3");
        assert_eq!(&npy.data[..], b"a\0\0bcd\0\0\0");
        let back = npy_to_tensor("t", &npy)?;
        match back.data() {
            TensorData::Strings(s) => {
                assert_eq!(*s, vec![b"a".to_vec(), b"bcd".to_vec(), Vec::new()])
            }
            TensorData::Bytes(_) => bail!("expected strings"),
        }
        Ok(())
    }

    #[test]
    fn unknown_descriptors_are_errors_not_float32() {
        for descr in ["<M8", "|O", ">f4", "|V4"] {
            let npy = NpyArray {
                descr: descr.into(),
                shape: vec![1],
                data: vec![0; 8].into(),
            };
            let err = npy_to_tensor("w", &npy).err().map(|e| e.to_string());
            assert_eq!(
                err,
                Some(format!(
                    "entry \"w\": numpy dtype {descr:?} has no TensorFlow equivalent"
                ))
            );
        }
    }

    #[test]
    fn zero_width_strings_are_capped() -> Result<()> {
        let npy = NpyArray {
            descr: "|S0".into(),
            shape: vec![100_000, 100_000],
            data: Vec::new().into(),
        };
        let err = npy_to_tensor("s", &npy).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("entry \"s\": 10000000000 zero-width |S0 elements; at most 16777216 are read")
        );
        let small = NpyArray {
            descr: "|S0".into(),
            shape: vec![3],
            data: Vec::new().into(),
        };
        assert_eq!(
            npy_to_tensor("s", &small)?.strings().map(<[_]>::len),
            Some(3)
        );
        Ok(())
    }

    #[test]
    fn feeds_widen_narrow_integers_exactly() -> Result<()> {
        let npy = NpyArray {
            descr: "|i1".into(),
            shape: vec![2],
            data: vec![0xff, 0x7f].into(),
        };
        assert_eq!(npy_to_value("x", &npy)?.as_i32(), Some(&[-1, 127][..]));
        let npy = NpyArray {
            descr: "<u4".into(),
            shape: vec![1],
            data: u32::MAX.to_le_bytes().to_vec().into(),
        };
        assert_eq!(npy_to_value("x", &npy)?.as_i64(), Some(&[4294967295][..]));
        let npy = NpyArray {
            descr: "<f2".into(),
            shape: vec![1],
            data: vec![0x00, 0x3c].into(),
        };
        // float16 stays float16 (the session casts it to the placeholder's dtype).
        let half = npy_to_value("x", &npy)?;
        assert_eq!(half.dtype(), DType::Float16);
        assert_eq!(half.cast(DType::Float32)?.as_f32(), Some(&[1.0][..]));
        let npy = NpyArray {
            descr: "<u8".into(),
            shape: vec![1],
            data: vec![0; 8].into(),
        };
        let err = npy_to_value("x", &npy).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("dtype uint64 is not supported by the executor")
        );
        // Values go back to npy with numpy's dtypes.
        let v = Value::new(vec![2], vec![true, false])?;
        let npy = value_to_npy("b", &v)?;
        assert_eq!((npy.descr.as_str(), &npy.data[..]), ("|b1", &[1u8, 0][..]));
        Ok(())
    }

    #[test]
    fn unicode_arrays_become_utf8() -> Result<()> {
        let mut data = Vec::new();
        for c in ['h', 'é', '\0'] {
            data.extend_from_slice(&(c as u32).to_le_bytes());
        }
        let npy = NpyArray {
            descr: "<U3".into(),
            shape: vec![],
            data: data.into(),
        };
        match npy_to_tensor("u", &npy)?.data() {
            TensorData::Strings(s) => assert_eq!(s[0].as_ref(), "hé".as_bytes()),
            TensorData::Bytes(_) => bail!("expected strings"),
        }
        Ok(())
    }
}
