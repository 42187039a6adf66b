//! The crate's one error type.

use std::path::PathBuf;

use ckpt_suggest::did_you_mean;

/// `{serve}`, `{serve, gpu}`, `{}`: a tag set as error messages print it.
fn tag_set(tags: &[String]) -> String {
    format!("{{{}}}", tags.join(", "))
}

/// The tag sets of a SavedModel, or `none`.
fn tag_sets(sets: &[Vec<String>]) -> String {
    if sets.is_empty() {
        "none".to_owned()
    } else {
        sets.iter()
            .map(|t| tag_set(t))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

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

    /// The text is not a valid text-format message of the expected type; the wrapped error
    /// gives the line and column.
    #[error("cannot parse the text as a {what}: {error}")]
    Text {
        /// The message type parsed (`GraphDef`, `MetaGraphDef`).
        what: &'static str,
        /// The underlying error.
        error: ckpt_proto::Error,
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

    /// A path that is no SavedModel: a directory without `saved_model.pb` or
    /// `saved_model.pbtxt`.
    #[error("{}: not a SavedModel directory ({reason})", path.display())]
    NotASavedModel {
        /// The path given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },

    /// No meta graph of the SavedModel has exactly the requested tag set (TensorFlow's
    /// loader wants the same set, not a superset).
    #[error("{}: no meta graph has the tag set {}; its tag sets: {}", path.display(), tag_set(.tags), tag_sets(.available))]
    NoMetaGraph {
        /// The SavedModel file.
        path: PathBuf,
        /// The tags asked for, sorted.
        tags: Vec<String>,
        /// The tag set of each meta graph, in file order.
        available: Vec<Vec<String>>,
    },

    /// An error in one meta graph of a SavedModel.
    #[error("{} (tag set {}): {error}", path.display(), tag_set(.tags))]
    InMetaGraph {
        /// The SavedModel file.
        path: PathBuf,
        /// The meta graph's tags, sorted.
        tags: Vec<String>,
        /// The underlying error.
        error: Box<Error>,
    },

    /// A signature key the model does not have.
    #[error("no signature {name:?}{}; signatures: {}", did_you_mean(.suggestions), if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    UnknownSignature {
        /// The key asked for.
        name: String,
        /// The model's signature keys, sorted.
        available: Vec<String>,
        /// Keys close to the one given, best first.
        suggestions: Vec<String>,
    },

    /// A signature input or output naming a tensor that cannot be used.
    #[error("signature {signature:?}: {kind} {key:?}: {error}")]
    SignatureTensor {
        /// The signature's key.
        signature: String,
        /// `input` or `output`.
        kind: &'static str,
        /// The input or output key.
        key: String,
        /// The underlying error.
        error: Box<Error>,
    },

    /// A signature input or output that is not a plain tensor (a sparse or composite
    /// tensor), or another property that makes the signature unusable.
    #[error("signature {signature:?}: {reason}")]
    BadSignature {
        /// The signature's key.
        signature: String,
        /// What is wrong.
        reason: String,
    },

    /// An error found while checking the functions a signature calls.
    #[error("signature {signature:?}: {error}")]
    InSignature {
        /// The signature's key.
        signature: String,
        /// The underlying error.
        error: Box<Error>,
    },

    /// An error about one node (typically the function it calls).
    #[error("node {node:?}: {error}")]
    InNode {
        /// The node's name.
        node: String,
        /// The underlying error.
        error: Box<Error>,
    },

    /// A function that calls itself, directly or through others.
    #[error("function {function:?} calls itself ({})", chain.join(" -> "))]
    RecursiveFunction {
        /// The function.
        function: String,
        /// The calls from `function` back to itself.
        chain: Vec<String>,
    },

    /// A captured input of a TF2 signature's function call (`bound_inputs` of the
    /// SavedModel's object graph) that could not be bound to a value.
    #[error("signature {signature:?}: captured input {input} of node {node:?} (function {function:?}, object {object}): {reason}")]
    Capture {
        /// The signature's key.
        signature: String,
        /// The call node in the main graph.
        node: String,
        /// The function it calls.
        function: String,
        /// Which input of the call node.
        input: usize,
        /// The object-graph node the input is bound to.
        object: i32,
        /// What is wrong.
        reason: String,
    },
}
