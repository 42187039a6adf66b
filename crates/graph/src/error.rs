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
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },

    /// The file decodes neither as a MetaGraphDef nor as a GraphDef with nodes.
    #[error("{}: not a MetaGraphDef or GraphDef protobuf ({reason})", path.display())]
    NotAGraph {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// Some other error, found while importing a file.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: Box<Error>,
    },

    /// The bytes are not a valid protobuf of the expected message.
    #[error("cannot decode the bytes as a {what}: {error}")]
    Decode {
        /// The message type decoded (`MetaGraphDef`, `GraphDef`, ...).
        what: &'static str,
        /// The underlying error.
        error: prost::DecodeError,
    },

    /// The message decoded but holds no graph nodes.
    #[error("the {what} holds no graph nodes")]
    EmptyGraph {
        /// The message type decoded (`MetaGraphDef`, `GraphDef`, ...).
        what: &'static str,
    },

    /// A NodeDef without a name.
    #[error("node #{index} (op {op:?}) has an empty name")]
    EmptyNodeName {
        /// Position of the node in the GraphDef's node list.
        index: usize,
        /// The node's op type.
        op: String,
    },

    /// A NodeDef without an op.
    #[error("node {node:?} has an empty op")]
    EmptyOp {
        /// The node's name.
        node: String,
    },

    /// Two nodes share a name.
    #[error("duplicate node name {node:?}")]
    DuplicateNode {
        /// The node's name.
        node: String,
    },

    /// An input string that is not `node`, `node:k` or `^node` (or, in a function body,
    /// `arg`, `node:out_arg:k` or `^node`), or that cannot be resolved.
    #[error("node {node:?}: malformed input {input:?} ({reason})")]
    MalformedInput {
        /// The node's name.
        node: String,
        /// The input string as written.
        input: String,
        /// What is wrong.
        reason: String,
    },

    /// An input naming a node that does not exist.
    #[error("node {node:?}: input {input:?} names no node in the graph{}", did_you_mean(.suggestions))]
    DanglingInput {
        /// The node's name.
        node: String,
        /// The input string as written.
        input: String,
        /// Names close to the one given, best first.
        suggestions: Vec<String>,
    },

    /// The edges (data and control) of the walked part of the graph form a cycle that is not a
    /// while loop's (whose only back edges run from a `NextIteration` into a `Merge`).
    #[error(
        "the graph has a cycle through node {node:?} that is not a while loop (a loop's only back edge runs from a NextIteration into a Merge)"
    )]
    Cycle {
        /// The node's name.
        node: String,
    },

    /// A name the user gave (a fetch, a feed) that is not a node of the graph.
    #[error("no node named {name:?}{}", did_you_mean(.suggestions))]
    UnknownNode {
        /// The name as given.
        name: String,
        /// Names close to the one given, best first.
        suggestions: Vec<String>,
    },

    /// A tensor name that is not `node` or `node:k`.
    #[error("malformed tensor name {spec:?}: expected \"node\" or \"node:index\"")]
    MalformedTensorName {
        /// The tensor name as given.
        spec: String,
    },

    /// A node id outside the graph (an `Output` built by hand, or a graph edited by hand).
    #[error("node id {id} is out of range (the graph has {len} nodes)")]
    NodeIdOutOfRange {
        /// The id used.
        id: usize,
        /// How many nodes the graph has.
        len: usize,
    },

    /// A required attribute is not on the node.
    #[error("node {node:?} ({op}): attribute {attr:?} is missing")]
    MissingAttr {
        /// The node's name.
        node: String,
        /// The node's op type.
        op: String,
        /// The attribute's name.
        attr: String,
    },

    /// An attribute holds another kind of value than the caller asked for.
    #[error("node {node:?} ({op}): attribute {attr:?} has type {found}, expected {expected}")]
    AttrType {
        /// The node's name.
        node: String,
        /// The node's op type.
        op: String,
        /// The attribute's name.
        attr: String,
        /// The kind of value the attribute holds.
        found: &'static str,
        /// The kind of value asked for.
        expected: &'static str,
    },

    /// An attribute of the right kind whose value is unusable (an unknown dtype, a negative
    /// dimension other than -1, ...).
    #[error("node {node:?} ({op}): attribute {attr:?} {reason}")]
    BadAttr {
        /// The node's name.
        node: String,
        /// The node's op type.
        op: String,
        /// The attribute's name.
        attr: String,
        /// What is wrong.
        reason: String,
    },

    /// An error inside the body of a library function.
    #[error("function {function:?}: {error}")]
    InFunction {
        /// The function's name.
        function: String,
        /// The underlying error.
        error: Box<Error>,
    },

    /// A FunctionDef whose signature or `ret` map cannot be used.
    #[error("function {function:?}: {reason}")]
    BadFunction {
        /// The function's name.
        function: String,
        /// What is wrong.
        reason: String,
    },

    /// A function name that is not in the graph's library.
    #[error("no function named {name:?} in the graph's library{}", did_you_mean(.suggestions))]
    UnknownFunction {
        /// The name as given.
        name: String,
        /// Names close to the one given, best first.
        suggestions: Vec<String>,
    },

    /// A library function that exists but could not be converted when the model was loaded.
    #[error("function {function:?} could not be imported: {reason}")]
    FunctionUnavailable {
        /// The function's name.
        function: String,
        /// What is wrong.
        reason: String,
    },
}
