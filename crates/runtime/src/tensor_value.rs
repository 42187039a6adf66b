//! Checkpoint tensors ([`ckpt_bundle::Tensor`]) as runtime [`Value`]s and back: how variables
//! are loaded, feeds are read and fetched results are handed to a writer.

use std::borrow::Cow;

use ckpt_bundle::Tensor;

use crate::{DType, Error, Value};

impl Value {
    /// A checkpoint tensor as a value of its [`compute_dtype`](crate::compute_dtype): bools are
    /// bytes `!= 0`, strings are copied;
    /// the other held dtypes keep their elements. The elements are copied out of the tensor
    /// (which may borrow a memory map) into an owned, aligned buffer.
    ///
    /// Errors: [`Error::UnsupportedDType`] for dtypes the executor does not compute with
    /// (int8, int16, uint16..uint64, complex, quantized, float8, variant).
    pub fn from_tensor(t: &Tensor<'_>) -> Result<Value, Error> {
        let shape: Vec<usize> = t
            .shape()
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()
            .map_err(|_| Error::Internal(format!("shape {:?} does not fit usize", t.shape())))?;
        let bundle = |e: ckpt_bundle::Error| Error::Internal(e.to_string());
        match t.dtype() {
            DType::Float32 => Value::new(shape, t.as_slice::<f32>().map_err(bundle)?.into_owned()),
            DType::Float16 => Value::new(
                shape,
                t.as_slice::<half::f16>().map_err(bundle)?.into_owned(),
            ),
            DType::BFloat16 => Value::new(
                shape,
                t.as_slice::<half::bf16>().map_err(bundle)?.into_owned(),
            ),
            DType::Float64 => Value::new(shape, t.as_slice::<f64>().map_err(bundle)?.into_owned()),
            DType::Int32 => Value::new(shape, t.as_slice::<i32>().map_err(bundle)?.into_owned()),
            DType::Int64 => Value::new(shape, t.as_slice::<i64>().map_err(bundle)?.into_owned()),
            DType::UInt8 => Value::new(shape, t.as_slice::<u8>().map_err(bundle)?.into_owned()),
            DType::Bool => Value::new(
                shape,
                t.as_bits::<u8>()
                    .map_err(bundle)?
                    .iter()
                    .map(|&b| b != 0)
                    .collect::<Vec<bool>>(),
            ),
            DType::String => {
                let strings = t
                    .strings()
                    .ok_or_else(|| Error::Internal("string tensor without strings".into()))?;
                Value::new(shape, strings.iter().map(|s| s.to_vec()).collect())
            }
            dtype => Err(Error::UnsupportedDType { dtype }),
        }
    }

    /// This value as a checkpoint tensor of the same dtype and shape: bools as bytes 0 and 1,
    /// strings as byte strings. What `ckpt-run --out` writes and `ckpt-run` prints. A list or
    /// a TensorArray handle is no tensor: [`Error::NotATensor`].
    pub fn to_tensor(&self) -> Result<Tensor<'static>, Error> {
        let shape: Vec<u64> = self.shape().iter().map(|&d| d as u64).collect();
        let tensor = match self {
            Value::F32(t) => Tensor::from_vec(shape, t.data().to_vec()),
            Value::F64(t) => Tensor::from_vec(shape, t.data().to_vec()),
            Value::F16(t) => Tensor::from_vec(shape, t.data().to_vec()),
            Value::BF16(t) => Tensor::from_vec(shape, t.data().to_vec()),
            Value::I32(t) => Tensor::from_vec(shape, t.data().to_vec()),
            Value::I64(t) => Tensor::from_vec(shape, t.data().to_vec()),
            Value::U8(t) => Tensor::from_vec(shape, t.data().to_vec()),
            Value::Bool(t) => Tensor::from_bytes(
                DType::Bool,
                shape,
                t.data().iter().map(|&b| u8::from(b)).collect::<Vec<u8>>(),
            ),
            Value::Str(t) => Tensor::from_strings(
                DType::String,
                shape,
                t.data().iter().map(|s| Cow::Owned(s.clone())).collect(),
            ),
            Value::List(_) | Value::TensorArray(_) => {
                return Err(Error::NotATensor { kind: self.kind() })
            }
        };
        tensor.map_err(|e| Error::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_bundle_tensors() -> Result<(), Box<dyn std::error::Error>> {
        let t = Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0])?;
        let v = Value::from_tensor(&t)?;
        assert_eq!(v.shape(), &[2, 2]);
        assert_eq!(v.as_f32(), Some(&[1.0, 2.0, 3.0, 4.0][..]));
        assert_eq!(v.to_tensor()?, t);
        let t = Tensor::from_vec(vec![], vec![7i64])?;
        assert_eq!(Value::from_tensor(&t)?.as_i64(), Some(&[7][..]));
        let t = Tensor::from_bytes(DType::Bool, vec![3], vec![0u8, 1, 2])?;
        let v = Value::from_tensor(&t)?;
        assert_eq!(v.as_bool(), Some(&[false, true, true][..]));
        assert_eq!(v.to_tensor()?.bytes(), Some(&[0u8, 1, 1][..]));
        let words = vec![Cow::Borrowed(&b"a"[..]), Cow::Borrowed(&b""[..])];
        let t = Tensor::from_strings(DType::String, vec![2], words)?;
        assert_eq!(Value::from_tensor(&t)?.to_tensor()?, t);
        assert!(matches!(
            Value::from_tensor(&Tensor::from_vec(vec![1], vec![1i16])?),
            Err(Error::UnsupportedDType {
                dtype: DType::Int16
            })
        ));
        Ok(())
    }

    #[test]
    fn follows_the_compute_dtype_policy() -> Result<(), Box<dyn std::error::Error>> {
        let half = [half::f16::from_f32(1.5), half::f16::from_f32(-2.0)];
        let tensors = [
            Tensor::from_vec(vec![2], half.to_vec())?,
            Tensor::from_vec(vec![1], vec![half::bf16::from_f32(0.5)])?,
            Tensor::from_vec(vec![1], vec![3u8])?,
            Tensor::from_vec(vec![1], vec![3.0f64])?,
        ];
        for t in tensors {
            let v = Value::from_tensor(&t)?;
            assert_eq!(Some(v.dtype()), crate::compute_dtype(t.dtype().to_proto()));
        }
        let t = Tensor::from_vec(vec![2], half.to_vec())?;
        assert_eq!(
            Value::from_tensor(&t)?.get::<half::f16>().map(|t| t.data()),
            Some(&half[..])
        );
        assert_eq!(Value::from_tensor(&t)?.to_tensor()?, t);
        Ok(())
    }
}
