//! Protobuf message types for TensorFlow checkpoints, graphs and the `checkpoint` state file.
//!
//! The types are written by hand as `prost` derive structs that mirror TensorFlow's own
//! `.proto` files field for field (numbers, wire types, packing), so building this crate
//! needs no `protoc`. Field numbers come from `tensorflow/core/framework/*.proto`,
//! `tensorflow/core/protobuf/{meta_graph,saver,tensor_bundle,trackable_object_graph}.proto`
//! and `tensorflow/python/training/checkpoint_state.proto`. Messages are flattened into
//! this crate's root; nested messages live in modules named after their parent, as
//! `prost-build` would lay them out.
//!
//! ```
//! use ckpt_proto::{BundleHeaderProto, Message, VersionDef};
//!
//! let header = BundleHeaderProto {
//!     num_shards: 1,
//!     version: Some(VersionDef { producer: 1, ..Default::default() }),
//!     ..Default::default()
//! };
//! // The exact six bytes TensorFlow writes on a little-endian machine.
//! assert_eq!(header.encode_to_vec(), [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
//! ```
#![forbid(unsafe_code)]

pub use prost::Message;

mod bundle;
mod graph;
mod meta_graph;
mod tensor;
mod trackable;
mod types;

pub use bundle::*;
pub use graph::*;
pub use meta_graph::*;
pub use tensor::*;
pub use trackable::*;
pub use types::*;
