//! The compute-dtype policy: which element types the executor holds, and which of them a
//! dtype from a graph or a checkpoint is computed in.
//!
//! The vocabulary is [`ckpt_bundle::DType`] (TensorFlow's names: `float32`, `int64`, ...);
//! the runtime has no dtype enum of its own. Decoders that widen (`tensor_proto::decode`,
//! `Value::from_tensor`) follow this policy; the tests below hold them to it.

use ckpt_bundle::DType;
use ckpt_proto::DataType;

/// The dtypes a [`Value`](crate::Value) holds, one per variant.
pub(crate) const HELD: [DType; 9] = [
    DType::Float32,
    DType::Float16,
    DType::BFloat16,
    DType::Float64,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::Bool,
    DType::String,
];

/// TensorFlow numbers each reference type as its base type plus this (`kDataTypeRefOffset`
/// in `types.proto`'s comments and `types.h`): `DT_FLOAT_REF` is `DT_FLOAT` + 100.
const REF_OFFSET: i32 = 100;

/// The dtype the executor computes values of `stored` in, or `None` when it has no kernels
/// for that type.
///
/// - Reference types (`DT_FLOAT_REF`, ..., as TF1 variables declare them) map to their base
///   type.
/// - float32, float16 (`half`), bfloat16, float64, int32, int64, uint8, bool and string are
///   held as they are. Kernels compute float16 and bfloat16 in float32 and round their float
///   outputs back to the narrow type (round to nearest even), as TensorFlow's CPU kernels do.
/// - Everything else (int8, int16, wider unsigned integers, complex, quantized, float8,
///   variant, resource) is not supported.
pub fn compute_dtype(stored: DataType) -> Option<DType> {
    let raw = stored as i32;
    let base = if raw > REF_OFFSET {
        raw - REF_OFFSET
    } else {
        raw
    };
    match DType::from_proto(base)? {
        d if HELD.contains(&d) => Some(d),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_types_map_to_themselves_and_refs_to_their_base() {
        for d in HELD {
            assert_eq!(compute_dtype(d.to_proto()), Some(d), "{d}");
        }
        assert_eq!(compute_dtype(DataType::DtFloatRef), Some(DType::Float32));
        assert_eq!(compute_dtype(DataType::DtInt64Ref), Some(DType::Int64));
        assert_eq!(compute_dtype(DataType::DtStringRef), Some(DType::String));
        assert_eq!(compute_dtype(DataType::DtBoolRef), Some(DType::Bool));
    }

    #[test]
    fn half_precision_keeps_its_dtype() {
        assert_eq!(compute_dtype(DataType::DtHalfRef), Some(DType::Float16));
        assert_eq!(
            compute_dtype(DataType::DtBfloat16Ref),
            Some(DType::BFloat16)
        );
    }

    #[test]
    fn other_types_are_not_held() {
        for d in [
            DataType::DtInvalid,
            DataType::DtInt8,
            DataType::DtInt16,
            DataType::DtUint16,
            DataType::DtUint64,
            DataType::DtComplex64,
            DataType::DtQint8,
            DataType::DtResource,
            DataType::DtVariant,
            DataType::DtInt8Ref,
            DataType::DtResourceRef,
        ] {
            assert_eq!(compute_dtype(d), None, "{d:?}");
        }
        // Every bundle dtype the policy accepts is one a Value holds.
        for d in DType::ALL {
            if let Some(c) = compute_dtype(d.to_proto()) {
                assert!(HELD.contains(&c), "{d} computes in {c}");
            }
        }
    }
}
