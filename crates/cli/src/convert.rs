//! Moving tensors between checkpoints and numpy / safetensors files, bytes unchanged where the
//! target format can hold them.

use std::borrow::Cow;

use anyhow::{anyhow, bail, Result};
use ckpt_bundle::{DType, Tensor, TensorData};

use crate::npy::NpyArray;

/// Turns a checkpoint tensor into an npy array: bfloat16 widened to float32 (exactly: a
/// bfloat16 is the top half of a float32), strings into fixed-width `S` bytes padded with NULs.
pub fn tensor_to_npy(name: &str, tensor: &Tensor<'_>) -> Result<NpyArray> {
    let shape = tensor.shape().to_vec();
    match (&tensor.data(), tensor.dtype()) {
        (TensorData::Bytes(bytes), DType::BFloat16) => {
            let data = bytes
                .chunks_exact(2)
                .flat_map(|pair| [0, 0, pair[0], pair[1]])
                .collect();
            Ok(NpyArray {
                descr: "<f4".into(),
                shape,
                data,
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
                data: bytes.to_vec(),
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
                data,
            })
        }
    }
}

/// Turns an npy array into a tensor for the checkpoint writer. `S` arrays lose their trailing
/// NULs (as numpy's own `bytes` values do); `U` arrays become UTF-8 strings.
pub fn npy_to_tensor(name: &str, array: &NpyArray) -> Result<Tensor<'static>> {
    let descr = array.descr.as_str();
    let kind = descr.get(1..2).unwrap_or("");
    let width: usize = descr.get(2..).and_then(|w| w.parse().ok()).unwrap_or(0);
    let count = usize::try_from(array.num_elements()?)?;
    if kind == "S" || kind == "U" {
        let item = if kind == "U" { width * 4 } else { width };
        let mut strings = Vec::with_capacity(count.min(array.data.len()));
        for i in 0..count {
            let raw = if item == 0 {
                &[][..]
            } else {
                &array.data[i * item..(i + 1) * item]
            };
            let value = if kind == "S" {
                let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                raw[..end].to_vec()
            } else {
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
            };
            strings.push(Cow::Owned(value));
        }
        return Ok(Tensor::from_strings(
            DType::String,
            array.shape.clone(),
            strings,
        )?);
    }
    let dtype = match descr.trim_start_matches(['<', '|', '=']) {
        "f2" => DType::Float16,
        "f4" => DType::Float32,
        "f8" => DType::Float64,
        "i1" => DType::Int8,
        "i2" => DType::Int16,
        "i4" => DType::Int32,
        "i8" => DType::Int64,
        "u1" => DType::UInt8,
        "u2" => DType::UInt16,
        "u4" => DType::UInt32,
        "u8" => DType::UInt64,
        "b1" => DType::Bool,
        "c8" => DType::Complex64,
        "c16" => DType::Complex128,
        other => bail!("entry {name:?}: numpy dtype {other:?} has no TensorFlow equivalent"),
    };
    Ok(Tensor::from_bytes(
        dtype,
        array.shape.clone(),
        array.data.clone(),
    )?)
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
        assert_eq!(npy.data, b"a\0\0bcd\0\0\0");
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
    fn unicode_arrays_become_utf8() -> Result<()> {
        let mut data = Vec::new();
        for c in ['h', 'é', '\0'] {
            data.extend_from_slice(&(c as u32).to_le_bytes());
        }
        let npy = NpyArray {
            descr: "<U3".into(),
            shape: vec![],
            data,
        };
        match npy_to_tensor("u", &npy)?.data() {
            TensorData::Strings(s) => assert_eq!(s[0].as_ref(), "hé".as_bytes()),
            TensorData::Bytes(_) => bail!("expected strings"),
        }
        Ok(())
    }
}
