//! `meta_graph.proto`, `saver.proto`, `variable.proto`.

use std::collections::BTreeMap;

use crate::{GraphDef, OpList, TensorProto, TensorShapeProto};

/// `tensorflow.MetaGraphDef`, the content of a `.meta` file. Field 7 (`object_graph_def`,
/// SavedModel only) is not modelled and is skipped when decoding.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetaGraphDef {
    #[prost(message, optional, tag = "1")]
    pub meta_info_def: Option<MetaInfoDef>,
    #[prost(message, optional, tag = "2")]
    pub graph_def: Option<GraphDef>,
    #[prost(message, optional, tag = "3")]
    pub saver_def: Option<SaverDef>,
    #[prost(btree_map = "string, message", tag = "4")]
    pub collection_def: BTreeMap<String, CollectionDef>,
    #[prost(btree_map = "string, message", tag = "5")]
    pub signature_def: BTreeMap<String, SignatureDef>,
    #[prost(message, repeated, tag = "6")]
    pub asset_file_def: Vec<AssetFileDef>,
}

/// `MetaGraphDef.MetaInfoDef`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetaInfoDef {
    #[prost(string, tag = "1")]
    pub meta_graph_version: String,
    #[prost(message, optional, tag = "2")]
    pub stripped_op_list: Option<OpList>,
    #[prost(message, optional, tag = "3")]
    pub any_info: Option<Any>,
    #[prost(string, repeated, tag = "4")]
    pub tags: Vec<String>,
    #[prost(string, tag = "5")]
    pub tensorflow_version: String,
    #[prost(string, tag = "6")]
    pub tensorflow_git_version: String,
    #[prost(bool, tag = "7")]
    pub stripped_default_attrs: bool,
    #[prost(btree_map = "string, string", tag = "8")]
    pub function_aliases: BTreeMap<String, String>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `tensorflow.CollectionDef`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CollectionDef {
    #[prost(oneof = "collection_def::Kind", tags = "1, 2, 3, 4, 5")]
    pub kind: Option<collection_def::Kind>,
}

pub mod collection_def {
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct NodeList {
        #[prost(string, repeated, tag = "1")]
        pub value: Vec<String>,
    }
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct BytesList {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub value: Vec<Vec<u8>>,
    }
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Int64List {
        #[prost(int64, repeated, tag = "1")]
        pub value: Vec<i64>,
    }
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct FloatList {
        #[prost(float, repeated, tag = "1")]
        pub value: Vec<f32>,
    }
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct AnyList {
        #[prost(message, repeated, tag = "1")]
        pub value: Vec<crate::Any>,
    }
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        NodeList(NodeList),
        #[prost(message, tag = "2")]
        BytesList(BytesList),
        #[prost(message, tag = "3")]
        Int64List(Int64List),
        #[prost(message, tag = "4")]
        FloatList(FloatList),
        #[prost(message, tag = "5")]
        AnyList(AnyList),
    }
}

/// `tensorflow.TensorInfo`: names a tensor of a signature.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TensorInfo {
    #[prost(enumeration = "crate::DataType", tag = "2")]
    pub dtype: i32,
    #[prost(message, optional, tag = "3")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(oneof = "tensor_info::Encoding", tags = "1, 4")]
    pub encoding: Option<tensor_info::Encoding>,
}

pub mod tensor_info {
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct CooSparse {
        #[prost(string, tag = "1")]
        pub values_tensor_name: String,
        #[prost(string, tag = "2")]
        pub indices_tensor_name: String,
        #[prost(string, tag = "3")]
        pub dense_shape_tensor_name: String,
    }
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Encoding {
        #[prost(string, tag = "1")]
        Name(String),
        #[prost(message, tag = "4")]
        CooSparse(CooSparse),
    }
}

/// `tensorflow.SignatureDef`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SignatureDef {
    #[prost(btree_map = "string, message", tag = "1")]
    pub inputs: BTreeMap<String, TensorInfo>,
    #[prost(btree_map = "string, message", tag = "2")]
    pub outputs: BTreeMap<String, TensorInfo>,
    #[prost(string, tag = "3")]
    pub method_name: String,
    #[prost(btree_map = "string, message", tag = "4")]
    pub defaults: BTreeMap<String, TensorProto>,
}

/// `tensorflow.AssetFileDef`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AssetFileDef {
    #[prost(message, optional, tag = "1")]
    pub tensor_info: Option<TensorInfo>,
    #[prost(string, tag = "2")]
    pub filename: String,
}

/// `tensorflow.SaverDef`: names the save and restore ops of a TF1 graph.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SaverDef {
    #[prost(string, tag = "1")]
    pub filename_tensor_name: String,
    #[prost(string, tag = "2")]
    pub save_tensor_name: String,
    #[prost(string, tag = "3")]
    pub restore_op_name: String,
    #[prost(int32, tag = "4")]
    pub max_to_keep: i32,
    #[prost(bool, tag = "5")]
    pub sharded: bool,
    #[prost(float, tag = "6")]
    pub keep_checkpoint_every_n_hours: f32,
    #[prost(enumeration = "saver_def::CheckpointFormatVersion", tag = "7")]
    pub version: i32,
}

pub mod saver_def {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum CheckpointFormatVersion {
        Legacy = 0,
        V1 = 1,
        V2 = 2,
    }
}

/// `tensorflow.VariableDef`, stored serialized in the `variables` collections of TF1 graphs.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct VariableDef {
    #[prost(string, tag = "1")]
    pub variable_name: String,
    #[prost(string, tag = "6")]
    pub initial_value_name: String,
    #[prost(string, tag = "2")]
    pub initializer_name: String,
    #[prost(string, tag = "3")]
    pub snapshot_name: String,
    #[prost(message, optional, tag = "4")]
    pub save_slice_info_def: Option<SaveSliceInfoDef>,
    #[prost(bool, tag = "5")]
    pub is_resource: bool,
    #[prost(bool, tag = "7")]
    pub trainable: bool,
    #[prost(int32, tag = "8")]
    pub synchronization: i32,
    #[prost(int32, tag = "9")]
    pub aggregation: i32,
}

/// `tensorflow.SaveSliceInfoDef`: where a partition sits in its full variable.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SaveSliceInfoDef {
    #[prost(string, tag = "1")]
    pub full_name: String,
    #[prost(int64, repeated, tag = "2")]
    pub full_shape: Vec<i64>,
    #[prost(int64, repeated, tag = "3")]
    pub var_offset: Vec<i64>,
    #[prost(int64, repeated, tag = "4")]
    pub var_shape: Vec<i64>,
}
