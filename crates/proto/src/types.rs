//! `types.proto`, `tensor_shape.proto`, `tensor_slice.proto`, `versions.proto`.

/// `tensorflow.DataType` (`types.proto`). `*_REF` values (base + 100) appear only in graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum DataType {
    DtInvalid = 0,
    DtFloat = 1,
    DtDouble = 2,
    DtInt32 = 3,
    DtUint8 = 4,
    DtInt16 = 5,
    DtInt8 = 6,
    DtString = 7,
    DtComplex64 = 8,
    DtInt64 = 9,
    DtBool = 10,
    DtQint8 = 11,
    DtQuint8 = 12,
    DtQint32 = 13,
    DtBfloat16 = 14,
    DtQint16 = 15,
    DtQuint16 = 16,
    DtUint16 = 17,
    DtComplex128 = 18,
    DtHalf = 19,
    DtResource = 20,
    DtVariant = 21,
    DtUint32 = 22,
    DtUint64 = 23,
    DtFloat8E5m2 = 24,
    DtFloat8E4m3fn = 25,
    DtFloat8E4m3fnuz = 26,
    DtFloat8E4m3b11fnuz = 27,
    DtFloat8E5m2fnuz = 28,
    DtInt4 = 29,
    DtUint4 = 30,
    DtInt2 = 31,
    DtUint2 = 32,
    DtFloat4E2m1fn = 33,
    DtFloatRef = 101,
    DtDoubleRef = 102,
    DtInt32Ref = 103,
    DtUint8Ref = 104,
    DtInt16Ref = 105,
    DtInt8Ref = 106,
    DtStringRef = 107,
    DtComplex64Ref = 108,
    DtInt64Ref = 109,
    DtBoolRef = 110,
    DtQint8Ref = 111,
    DtQuint8Ref = 112,
    DtQint32Ref = 113,
    DtBfloat16Ref = 114,
    DtQint16Ref = 115,
    DtQuint16Ref = 116,
    DtUint16Ref = 117,
    DtComplex128Ref = 118,
    DtHalfRef = 119,
    DtResourceRef = 120,
    DtVariantRef = 121,
    DtUint32Ref = 122,
    DtUint64Ref = 123,
}

/// `tensorflow.TensorShapeProto`. There is no field 1; a scalar is an empty message.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<tensor_shape_proto::Dim>,
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

pub mod tensor_shape_proto {
    /// One dimension; `size == -1` means unknown.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Dim {
        #[prost(int64, tag = "1")]
        pub size: i64,
        #[prost(string, tag = "2")]
        pub name: String,
    }
}

/// `tensorflow.TensorSliceProto`: one extent per dimension.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TensorSliceProto {
    #[prost(message, repeated, tag = "1")]
    pub extent: Vec<tensor_slice_proto::Extent>,
}

pub mod tensor_slice_proto {
    /// A full extent leaves both `start` and `has_length` unset.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Extent {
        #[prost(int64, tag = "1")]
        pub start: i64,
        #[prost(oneof = "extent::HasLength", tags = "2")]
        pub has_length: Option<extent::HasLength>,
    }

    pub mod extent {
        #[derive(Clone, Copy, PartialEq, Eq, ::prost::Oneof)]
        pub enum HasLength {
            #[prost(int64, tag = "2")]
            Length(i64),
        }
    }
}

/// `tensorflow.VersionDef`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct VersionDef {
    #[prost(int32, tag = "1")]
    pub producer: i32,
    #[prost(int32, tag = "2")]
    pub min_consumer: i32,
    #[prost(int32, repeated, tag = "3")]
    pub bad_consumers: Vec<i32>,
}
