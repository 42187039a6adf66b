//! A CPU executor for TensorFlow graphs restored from checkpoints, without TensorFlow.
//!
//! Give it a [`ckpt_graph::Model`] (a `.meta` graph or a frozen `.pb`), the checkpoint's
//! [`ckpt_bundle::Checkpoint`] (V1 or V2), the tensors to fetch and the placeholders to feed: a
//! [`Session`] prunes the graph to what the fetches need, builds one kernel per node (ops it
//! lacks are an error here, all of them at once with an example node each, not halfway
//! through a run; [`unsupported_ops`] asks the same question without a checkpoint),
//! decodes constants and loads the variables once, then runs as often as you like. Kernels
//! compute in float32 (plus the int32/int64/bool that shape and control ops need), split work
//! over the session's threads above a size threshold (the thread running the plan and a team
//! of workers that spin briefly between sections), and multiply matrices with the `gemm`
//! crate.
//! TF1 control flow (`Switch`/`Merge`, with dead branches) and TF2's `If` over library
//! functions both run, so every form of dropout TensorFlow emits evaluates at inference; with
//! [`SessionOptions::inference`] recognized dropout subgraphs are removed altogether.
//! A SavedModel's signatures run through [`LoadedSavedModel`] and [`Session::for_signature`]:
//! variables are loaded once and passed into function bodies as constants of their plans.
//!
//! Dtypes are [`ckpt_bundle::DType`]s (re-exported here as [`DType`]); [`compute_dtype`] is
//! the policy saying which of them the executor holds and which one a graph's or a
//! checkpoint's dtype is computed in. A [`Value`] is a tensor of one [`Datum`] type.
//!
//! ```
//! use ckpt_graph::ckpt_proto::{attr_value, AttrValue, DataType, GraphDef, NodeDef};
//! use ckpt_graph::Model;
//! use ckpt_runtime::{Session, SessionOptions, Value};
//!
//! // x -> Relu -> y, as a GraphDef (a real model comes from `Model::load("model.ckpt.meta")`).
//! let float = AttrValue { value: Some(attr_value::Value::Type(DataType::DtFloat as i32)) };
//! let node = |name: &str, op: &str, inputs: &[&str], attr: &str| NodeDef {
//!     name: name.into(),
//!     op: op.into(),
//!     input: inputs.iter().map(|s| s.to_string()).collect(),
//!     attr: [(attr.to_string(), float.clone())].into(),
//!     ..Default::default()
//! };
//! let def = GraphDef {
//!     node: vec![node("x", "Placeholder", &[], "dtype"), node("y", "Relu", &["x"], "T")],
//!     ..Default::default()
//! };
//! let model = Model::from_graph_def(&def)?;
//! // No checkpoint needed: the graph has no variables.
//! let session = Session::new(&model, None, &["y"], &["x"], SessionOptions::default())?;
//! let x = Value::new(vec![2, 2], vec![-1.0f32, 2.0, 3.0, -4.0])?;
//! let out = session.run(&[("x", x)])?;
//! assert_eq!(out[0].as_f32(), Some(&[0.0, 2.0, 3.0, 0.0][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod dtype;
mod error;
mod fusion;
mod gemm;
mod half_precision;
mod list;
mod memory;
mod ops;
mod plan;
mod rewrite;
mod saved_model;
mod session;
mod support;
mod team;
mod tensor_proto;
mod tensor_value;
mod value;
mod variable;

pub use ckpt_bundle::DType;
pub use dtype::compute_dtype;
pub use error::Error;
pub use memory::{default_max_memory, max_memory, set_max_memory};
pub use ops::supported_ops;
pub use saved_model::LoadedSavedModel;
pub use session::{FeedInfo, Session, SessionOptions, StepTime};
pub use support::{unsupported_ops, MissingOp};
pub use value::{checked_num_elements, Datum, TensorArray, TensorBuf, TensorList, Value};
