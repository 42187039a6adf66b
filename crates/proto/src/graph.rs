//! `graph.proto`, `node_def.proto`, `attr_value.proto`, `function.proto`, `op_def.proto`.

use std::collections::BTreeMap;

use crate::VersionDef;

/// `tensorflow.GraphDef`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GraphDef {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeDef>,
    #[prost(message, optional, tag = "4")]
    pub versions: Option<VersionDef>,
    /// Deprecated single version number of very old graphs.
    #[prost(int32, tag = "3")]
    pub version: i32,
    #[prost(message, optional, tag = "2")]
    pub library: Option<FunctionDefLibrary>,
}

/// `tensorflow.NodeDef`. Inputs are `"node"`, `"node:k"` or `"^node"` (control).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NodeDef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub op: String,
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    #[prost(string, tag = "4")]
    pub device: String,
    #[prost(btree_map = "string, message", tag = "5")]
    pub attr: BTreeMap<String, AttrValue>,
}

/// `tensorflow.AttrValue`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AttrValue {
    #[prost(oneof = "attr_value::Value", tags = "2, 3, 4, 5, 6, 7, 8, 1, 10, 9")]
    pub value: Option<attr_value::Value>,
}

pub mod attr_value {
    use crate::{NameAttrList, TensorProto, TensorShapeProto};

    /// `AttrValue.ListValue`. Field 1 is unused.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ListValue {
        #[prost(bytes = "vec", repeated, tag = "2")]
        pub s: Vec<Vec<u8>>,
        #[prost(int64, repeated, tag = "3")]
        pub i: Vec<i64>,
        #[prost(float, repeated, tag = "4")]
        pub f: Vec<f32>,
        #[prost(bool, repeated, tag = "5")]
        pub b: Vec<bool>,
        #[prost(enumeration = "crate::DataType", repeated, tag = "6")]
        pub r#type: Vec<i32>,
        #[prost(message, repeated, tag = "7")]
        pub shape: Vec<TensorShapeProto>,
        #[prost(message, repeated, tag = "8")]
        pub tensor: Vec<TensorProto>,
        #[prost(message, repeated, tag = "9")]
        pub func: Vec<NameAttrList>,
    }

    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Value {
        #[prost(bytes, tag = "2")]
        S(Vec<u8>),
        #[prost(int64, tag = "3")]
        I(i64),
        #[prost(float, tag = "4")]
        F(f32),
        #[prost(bool, tag = "5")]
        B(bool),
        #[prost(enumeration = "crate::DataType", tag = "6")]
        Type(i32),
        #[prost(message, tag = "7")]
        Shape(TensorShapeProto),
        #[prost(message, boxed, tag = "8")]
        Tensor(Box<TensorProto>),
        #[prost(message, tag = "1")]
        List(ListValue),
        #[prost(string, tag = "9")]
        Placeholder(String),
        #[prost(message, tag = "10")]
        Func(NameAttrList),
    }
}

/// `tensorflow.NameAttrList`: a function name with attrs.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NameAttrList {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(btree_map = "string, message", tag = "2")]
    pub attr: BTreeMap<String, AttrValue>,
}

/// `tensorflow.FunctionDefLibrary`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct FunctionDefLibrary {
    #[prost(message, repeated, tag = "1")]
    pub function: Vec<FunctionDef>,
    #[prost(message, repeated, tag = "2")]
    pub gradient: Vec<GradientDef>,
}

/// `tensorflow.GradientDef`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GradientDef {
    #[prost(string, tag = "1")]
    pub function_name: String,
    #[prost(string, tag = "2")]
    pub gradient_func: String,
}

/// `tensorflow.FunctionDef`. Body inputs are `arg` or `node:output_arg:index`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct FunctionDef {
    #[prost(message, optional, tag = "1")]
    pub signature: Option<OpDef>,
    #[prost(btree_map = "string, message", tag = "5")]
    pub attr: BTreeMap<String, AttrValue>,
    #[prost(message, repeated, tag = "3")]
    pub node_def: Vec<NodeDef>,
    #[prost(btree_map = "string, string", tag = "4")]
    pub ret: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "6")]
    pub control_ret: BTreeMap<String, String>,
}

/// `tensorflow.OpList`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct OpList {
    #[prost(message, repeated, tag = "1")]
    pub op: Vec<OpDef>,
}

/// `tensorflow.OpDef`: an op's (or a function's) signature.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct OpDef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    pub input_arg: Vec<op_def::ArgDef>,
    #[prost(message, repeated, tag = "3")]
    pub output_arg: Vec<op_def::ArgDef>,
    #[prost(string, repeated, tag = "20")]
    pub control_output: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub attr: Vec<op_def::AttrDef>,
    #[prost(string, tag = "5")]
    pub summary: String,
    #[prost(string, tag = "6")]
    pub description: String,
    #[prost(bool, tag = "16")]
    pub is_aggregate: bool,
    #[prost(bool, tag = "17")]
    pub is_stateful: bool,
    #[prost(bool, tag = "18")]
    pub is_commutative: bool,
    #[prost(bool, tag = "19")]
    pub allows_uninitialized_input: bool,
}

pub mod op_def {
    use crate::AttrValue;

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ArgDef {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub description: String,
        #[prost(enumeration = "crate::DataType", tag = "3")]
        pub r#type: i32,
        #[prost(string, tag = "4")]
        pub type_attr: String,
        #[prost(string, tag = "5")]
        pub number_attr: String,
        #[prost(string, tag = "6")]
        pub type_list_attr: String,
        #[prost(bool, tag = "16")]
        pub is_ref: bool,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct AttrDef {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub r#type: String,
        #[prost(message, optional, tag = "3")]
        pub default_value: Option<AttrValue>,
        #[prost(string, tag = "4")]
        pub description: String,
        #[prost(bool, tag = "5")]
        pub has_minimum: bool,
        #[prost(int64, tag = "6")]
        pub minimum: i64,
        #[prost(message, optional, tag = "7")]
        pub allowed_values: Option<AttrValue>,
    }
}
