//! The crate's one error type.

use std::path::PathBuf;

use ckpt_suggest::did_you_mean;

/// Everything that can go wrong when importing or querying a graph.
///
/// Messages are lower-case and name what they are about: the file, the node and its op,
/// the attribute, the function. Wrapping variants ([`Error::InFile`], [`Error::InFunction`])
/// include the wrapped message in their own, so printing the outer error is enough.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read at all.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// The file decodes neither as a MetaGraphDef nor as a GraphDef with nodes.
    #[error("{}: not a MetaGraphDef or GraphDef protobuf ({reason})", path.display())]
    NotAGraph { path: PathBuf, reason: String },

    /// Some other error, found while importing a file.
    #[error("{}: {error}", path.display())]
    InFile { path: PathBuf, error: Box<Error> },

    /// The bytes are not a valid protobuf of the expected message.
    #[error("cannot decode the bytes as a {what}: {error}")]
    Decode {
        what: &'static str,
        error: prost::DecodeError,
    },

    /// The message decoded but holds no graph nodes.
    #[error("the {what} holds no graph nodes")]
    EmptyGraph { what: &'static str },

    /// A NodeDef without a name.
    #[error("node #{index} (op {op:?}) has an empty name")]
    EmptyNodeName { index: usize, op: String },

    /// A NodeDef without an op.
    #[error("node {node:?} has an empty op")]
    EmptyOp { node: String },

    /// Two nodes share a name.
    #[error("duplicate node name {node:?}")]
    DuplicateNode { node: String },

    /// An input string that is not `node`, `node:k` or `^node` (or, in a function body,
    /// `arg`, `node:out_arg:k` or `^node`), or that cannot be resolved.
    #[error("node {node:?}: malformed input {input:?} ({reason})")]
    MalformedInput {
        node: String,
        input: String,
        reason: String,
    },

    /// An input naming a node that does not exist.
    #[error("node {node:?}: input {input:?} names no node in the graph{}", did_you_mean(.suggestions))]
    DanglingInput {
        node: String,
        input: String,
        suggestions: Vec<String>,
    },

    /// The edges (data and control) of the walked part of the graph form a cycle.
    #[error("the graph has a cycle through node {node:?} (TF1 while loops are not supported)")]
    Cycle { node: String },

    /// A name the user gave (a fetch, a feed) that is not a node of the graph.
    #[error("no node named {name:?}{}", did_you_mean(.suggestions))]
    UnknownNode {
        name: String,
        suggestions: Vec<String>,
    },

    /// A tensor name that is not `node` or `node:k`.
    #[error("malformed tensor name {spec:?}: expected \"node\" or \"node:index\"")]
    MalformedTensorName { spec: String },

    /// A node id outside the graph (an `Output` built by hand, or a graph edited by hand).
    #[error("node id {id} is out of range (the graph has {len} nodes)")]
    NodeIdOutOfRange { id: usize, len: usize },

    /// A required attribute is not on the node.
    #[error("node {node:?} ({op}): attribute {attr:?} is missing")]
    MissingAttr {
        node: String,
        op: String,
        attr: String,
    },

    /// An attribute holds another kind of value than the caller asked for.
    #[error("node {node:?} ({op}): attribute {attr:?} has type {found}, expected {expected}")]
    AttrType {
        node: String,
        op: String,
        attr: String,
        found: &'static str,
        expected: &'static str,
    },

    /// An attribute of the right kind whose value is unusable (an unknown dtype, a negative
    /// dimension other than -1, ...).
    #[error("node {node:?} ({op}): attribute {attr:?} {reason}")]
    BadAttr {
        node: String,
        op: String,
        attr: String,
        reason: String,
    },

    /// An error inside the body of a library function.
    #[error("function {function:?}: {error}")]
    InFunction { function: String, error: Box<Error> },

    /// A FunctionDef whose signature or `ret` map cannot be used.
    #[error("function {function:?}: {reason}")]
    BadFunction { function: String, reason: String },

    /// A function name that is not in the graph's library.
    #[error("no function named {name:?} in the graph's library{}", did_you_mean(.suggestions))]
    UnknownFunction {
        name: String,
        suggestions: Vec<String>,
    },

    /// A library function that exists but could not be converted when the model was loaded.
    #[error("function {function:?} could not be imported: {reason}")]
    FunctionUnavailable { function: String, reason: String },
}
