//! `trackable_object_graph.proto`: the object graph TF2 stores under `_CHECKPOINTABLE_OBJECT_GRAPH`.

/// `tensorflow.TrackableObjectGraph`. Node 0 is the root.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TrackableObjectGraph {
    #[prost(message, repeated, tag = "1")]
    pub nodes: Vec<trackable_object_graph::TrackableObject>,
}

pub mod trackable_object_graph {
    /// One object: its children, the tensors it saved and its slot variables.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct TrackableObject {
        #[prost(message, repeated, tag = "1")]
        pub children: Vec<trackable_object::ObjectReference>,
        #[prost(message, repeated, tag = "2")]
        pub attributes: Vec<trackable_object::SerializedTensor>,
        #[prost(message, repeated, tag = "3")]
        pub slot_variables: Vec<trackable_object::SlotVariableReference>,
        #[prost(message, optional, tag = "4")]
        pub registered_saver: Option<RegisteredSaver>,
        #[prost(message, optional, tag = "5")]
        pub has_checkpoint_values: Option<BoolValue>,
    }

    /// `google.protobuf.BoolValue`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct BoolValue {
        #[prost(bool, tag = "1")]
        pub value: bool,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct RegisteredSaver {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub object_name: String,
    }

    pub mod trackable_object {
        #[derive(Clone, PartialEq, ::prost::Message)]
        pub struct ObjectReference {
            #[prost(int32, tag = "1")]
            pub node_id: i32,
            #[prost(string, tag = "2")]
            pub local_name: String,
        }

        #[derive(Clone, PartialEq, ::prost::Message)]
        pub struct SerializedTensor {
            #[prost(string, tag = "1")]
            pub name: String,
            #[prost(string, tag = "2")]
            pub full_name: String,
            #[prost(string, tag = "3")]
            pub checkpoint_key: String,
        }

        #[derive(Clone, PartialEq, ::prost::Message)]
        pub struct SlotVariableReference {
            #[prost(int32, tag = "1")]
            pub original_variable_node_id: i32,
            #[prost(string, tag = "2")]
            pub slot_name: String,
            #[prost(int32, tag = "3")]
            pub slot_variable_node_id: i32,
        }
    }
}
