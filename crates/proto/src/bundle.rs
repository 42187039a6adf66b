//! `tensor_bundle.proto` and `checkpoint_state.proto`.

use crate::{TensorShapeProto, TensorSliceProto, VersionDef};

/// The header stored under the empty key of a bundle's `.index`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct BundleHeaderProto {
    #[prost(int32, tag = "1")]
    pub num_shards: i32,
    #[prost(enumeration = "bundle_header_proto::Endianness", tag = "2")]
    pub endianness: i32,
    #[prost(message, optional, tag = "3")]
    pub version: Option<VersionDef>,
}

pub mod bundle_header_proto {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum Endianness {
        Little = 0,
        Big = 1,
    }
}

/// Describes one tensor of a bundle: where its bytes are and how to check them.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct BundleEntryProto {
    #[prost(enumeration = "crate::DataType", tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
    #[prost(int32, tag = "3")]
    pub shard_id: i32,
    #[prost(int64, tag = "4")]
    pub offset: i64,
    #[prost(int64, tag = "5")]
    pub size: i64,
    /// Masked crc32c, stored as fixed32 (wire type 5).
    #[prost(fixed32, tag = "6")]
    pub crc32c: u32,
    #[prost(message, repeated, tag = "7")]
    pub slices: Vec<TensorSliceProto>,
}

/// The `checkpoint` state file's message (stored as text format on disk).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CheckpointState {
    #[prost(string, tag = "1")]
    pub model_checkpoint_path: String,
    #[prost(string, repeated, tag = "2")]
    pub all_model_checkpoint_paths: Vec<String>,
    #[prost(double, repeated, tag = "3")]
    pub all_model_checkpoint_timestamps: Vec<f64>,
    #[prost(double, tag = "4")]
    pub last_preserved_timestamp: f64,
}
