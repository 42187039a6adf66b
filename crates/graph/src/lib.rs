//! TensorFlow graphs as an owned, index-addressed IR.
//!
//! This crate imports a `.meta` file (a `MetaGraphDef`, as `tf.compat.v1.train.Saver`
//! writes it), a frozen `.pb` (a `GraphDef`) or their text forms (the `graph.pbtxt` of an
//! Estimator's `model_dir`, parsed by [`ckpt_proto::text`]) into a [`Model`]: a [`Graph`] whose nodes are
//! addressed by [`NodeId`] and whose inputs are resolved to [`Output`]s and control edges,
//! the library's functions as graphs of their own ([`Function`]), the saver and signatures,
//! and each variable's checkpoint key (from the saver's restore op, else the op name).
//! A SavedModel directory is read with [`SavedModel`]: the meta graph whose tag set equals the
//! requested one becomes a `Model` whose signatures [`Model::signature`] resolves to graph
//! tensors, with the captured inputs of TF2 signature functions bound to checkpoint keys.
//! Attributes are read through typed accessors whose errors name the node, op and attribute.
//! [`Graph::prune`] and [`Graph::topological_order`] never recurse, so graph depth is not
//! limited by the stack. Graphs written before TensorFlow 1.0 keep their meaning: the model
//! records the GraphDef's producer version, and [`Model::declared_shape`] applies TensorFlow's
//! legacy reading of placeholder and variable shapes. The crate decodes and describes graphs;
//! it does not run them.
//!
//! ```
//! use ckpt_graph::{ckpt_proto::{GraphDef, NodeDef}, Graph};
//!
//! let node = |name: &str, op: &str, inputs: &[&str]| NodeDef {
//!     name: name.into(),
//!     op: op.into(),
//!     input: inputs.iter().map(|s| s.to_string()).collect(),
//!     ..Default::default()
//! };
//! let def = GraphDef {
//!     node: vec![
//!         node("x", "Placeholder", &[]),
//!         node("w", "Const", &[]),
//!         node("logits", "MatMul", &["x", "w"]),
//!         node("pred", "ArgMax", &["logits:0"]),
//!         node("unused", "Softmax", &["logits"]),
//!     ],
//!     ..Default::default()
//! };
//! let graph = Graph::from_graph_def(&def)?;
//! let pred = graph.parse_output("pred")?;
//! let order = graph.prune(&[pred], &[])?;
//! let names: Vec<&str> = order.iter().map(|&id| graph.node(id).name.as_str()).collect();
//! assert_eq!(names, ["x", "w", "logits", "pred"]);
//!
//! // Unknown names suggest close ones.
//! let err = graph.parse_output("logit").unwrap_err();
//! assert_eq!(err.to_string(), "no node named \"logit\"; did you mean \"logits\"?");
//! # Ok::<(), ckpt_graph::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use ckpt_proto;

mod attrs;
mod error;
mod function;
mod graph;
mod model;
mod node;
mod ops;
mod saved_model;
mod wire;

pub use attrs::Attrs;
pub use error::Error;
pub use function::{Function, ARG_OP};
pub use graph::{Graph, NodeId, Output};
pub use model::{
    Model, PLACEHOLDER_OPS, SCALAR_PLACEHOLDER_PRODUCER, TEXT_EXTENSIONS, VARIABLE_OPS,
};
pub use node::Node;
pub use ops::{op_outputs, OutArity};
pub use saved_model::{
    Capture, CaptureBinding, SavedModel, Signature, SignatureTensor, DEFAULT_SIGNATURE,
    OBJECT_GRAPH_KEY, SAVED_MODEL_PB, SAVED_MODEL_PBTXT, SERVE_TAG,
};
