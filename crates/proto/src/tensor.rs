//! `tensor.proto` and `resource_handle.proto`.

use crate::{DataType, TensorShapeProto};

/// `tensorflow.TensorProto`: a constant tensor, as Const nodes and attrs carry it.
///
/// `tensor_content` holds raw little-endian element bytes when non-empty; otherwise the
/// typed field of the dtype holds the values, the last one repeated to fill the shape.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TensorProto {
    #[prost(enumeration = "DataType", tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(int32, tag = "3")]
    pub version_number: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    /// DT_HALF and DT_BFLOAT16: each value is the 16-bit pattern, zero-extended.
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    /// DT_INT32, DT_INT16, DT_UINT16, DT_INT8, DT_UINT8 and the quantized types.
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
    /// (real, imag) pairs for DT_COMPLEX64.
    #[prost(float, repeated, tag = "9")]
    pub scomplex_val: Vec<f32>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
    /// (real, imag) pairs for DT_COMPLEX128.
    #[prost(double, repeated, tag = "12")]
    pub dcomplex_val: Vec<f64>,
    #[prost(message, repeated, tag = "14")]
    pub resource_handle_val: Vec<ResourceHandleProto>,
    #[prost(message, repeated, tag = "15")]
    pub variant_val: Vec<VariantTensorDataProto>,
    #[prost(uint32, repeated, tag = "16")]
    pub uint32_val: Vec<u32>,
    #[prost(uint64, repeated, tag = "17")]
    pub uint64_val: Vec<u64>,
    /// One byte per element for the float8 types.
    #[prost(bytes = "vec", tag = "18")]
    pub float8_val: Vec<u8>,
}

/// `tensorflow.VariantTensorDataProto`: the serialized form of one DT_VARIANT element.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct VariantTensorDataProto {
    #[prost(string, tag = "1")]
    pub type_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub metadata: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    pub tensors: Vec<TensorProto>,
}

/// `tensorflow.ResourceHandleProto`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ResourceHandleProto {
    #[prost(string, tag = "1")]
    pub device: String,
    #[prost(string, tag = "2")]
    pub container: String,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(uint64, tag = "4")]
    pub hash_code: u64,
    #[prost(string, tag = "5")]
    pub maybe_type_name: String,
    #[prost(message, repeated, tag = "6")]
    pub dtypes_and_shapes: Vec<resource_handle_proto::DtypeAndShape>,
}

pub mod resource_handle_proto {
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct DtypeAndShape {
        #[prost(enumeration = "crate::DataType", tag = "1")]
        pub dtype: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<crate::TensorShapeProto>,
    }
}
