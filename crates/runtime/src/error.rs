use crate::DType;

/// Everything that can go wrong building or running a plan.
///
/// A wrapped error is printed in the message and not returned by
/// [`source()`](std::error::Error::source), so a caller printing the chain shows it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The graph could not be read or queried: an unknown fetch or feed name (with close
    /// names suggested), a malformed attribute, a cycle. Printed as the graph crate's error.
    #[error(transparent)]
    Graph(Box<ckpt_graph::Error>),

    /// Reading variable `node`'s checkpoint tensor `key` failed in the bundle reader (a
    /// corrupt or truncated shard, a checksum mismatch), while the plan was built.
    #[error("checkpoint tensor {key:?} for variable {node:?}: {error}")]
    Bundle {
        /// The node's name.
        node: String,
        /// The checkpoint key read.
        key: String,
        /// The underlying error.
        error: Box<ckpt_bundle::Error>,
    },

    /// A tensor was made from `len` elements that do not fill `shape` (or the shape's element
    /// count overflows): [`Value::new`](crate::Value::new),
    /// [`Value::reshape`](crate::Value::reshape).
    #[error("shape {shape:?} does not hold {len} elements")]
    ShapeMismatch {
        /// The shape given.
        shape: Vec<usize>,
        /// The number of elements given.
        len: usize,
    },

    /// [`Value::cast`](crate::Value::cast) between dtypes that do not convert: a string and
    /// a non-string, or a dtype the executor does not hold.
    #[error("cannot cast {from} to {to}")]
    Cast {
        /// The value's dtype.
        from: DType,
        /// The dtype asked for.
        to: DType,
    },

    /// Node `node` (op `op`) cannot be built or failed while running: a bad attribute value,
    /// inputs of the wrong dtype or shape, a checkpoint tensor that disagrees with the graph.
    /// The message says what, as the kernel reported it.
    #[error("node {node:?} ({op}): {message}")]
    Node {
        /// The node's name.
        node: String,
        /// The node's op type.
        op: String,
        /// What went wrong.
        message: String,
    },

    /// The fetches need ops the executor has no kernel for (and that are not library
    /// functions), found when the plan is built, before any kernel is: each op type once, with
    /// how many nodes use it and one of them, in the order the graph needs them:
    /// `3 unsupported ops: ResourceGather (1 node, e.g. bert/embeddings/Gather), ...`.
    /// [`supported_ops`](crate::supported_ops) lists what the executor has.
    #[error(
        "{} unsupported op{}: {}",
        ops.len(),
        if ops.len() == 1 { "" } else { "s" },
        ops.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    UnsupportedOps {
        /// The missing ops.
        ops: Vec<crate::MissingOp>,
    },

    /// The fetches need the variables `names`, but the session was built without a
    /// checkpoint.
    #[error("the graph reads {} variable(s) but no checkpoint was given: {}", names.len(), names.join(", "))]
    NoCheckpoint {
        /// The variables, by checkpoint key (and node when they differ).
        names: Vec<String>,
    },

    /// The checkpoint has no tensor for the variables `names` (each named by its checkpoint
    /// key, and its node when that differs); all are listed at once.
    #[error("{} variable(s) missing from the checkpoint: {}", names.len(), names.join(", "))]
    MissingVariables {
        /// The variables, by checkpoint key (and node when they differ).
        names: Vec<String>,
    },

    /// The fetches need placeholder `name` but it was not among the session's feeds, or not
    /// fed to [`Session::run`](crate::Session::run). `hint` describes its dtype and shape, and
    /// says what to feed when the name looks like a dropout rate or a training flag.
    #[error("placeholder {name:?} must be fed{hint}")]
    UnfedPlaceholder {
        /// The feed or fetch as given.
        name: String,
        /// A hint on what to feed, or nothing.
        hint: String,
    },

    /// The outputs of signature `signature` need its input `key` (the placeholder `tensor`),
    /// which was not among the inputs given to
    /// [`Session::for_signature`](crate::Session::for_signature). `hint` gives its dtype and
    /// shape.
    #[error("signature {signature:?}: input {key:?} (tensor {tensor}) must be fed{hint}")]
    UnfedSignatureInput {
        /// The signature's key.
        signature: String,
        /// The input key.
        key: String,
        /// The tensor the input feeds.
        tensor: String,
        /// Its dtype and shape.
        hint: String,
    },

    /// [`Session::run`](crate::Session::run) was fed `name`, which is not among the feeds the
    /// session was built with (`expected`).
    #[error("feed {name:?} is not among the feeds the session was built with ({})", expected.join(", "))]
    UnknownFeed {
        /// The feed or fetch as given.
        name: String,
        /// The feeds the session was built with.
        expected: Vec<String>,
    },

    /// The same feed was named twice, to [`Session::new`](crate::Session::new) or to
    /// [`Session::run`](crate::Session::run).
    #[error("feed {name:?} given twice")]
    DuplicateFeed {
        /// The feed or fetch as given.
        name: String,
    },

    /// The value fed to `name` has shape `found`, which the placeholder's static shape
    /// `expected` (printed with `?` for any size) does not allow.
    #[error("feed {name:?}: shape {found:?} does not match the placeholder's shape {expected}")]
    FeedShape {
        /// The feed or fetch as given.
        name: String,
        /// What the placeholder declares.
        expected: String,
        /// What was fed.
        found: Vec<usize>,
    },

    /// The value fed to `name` has dtype `found`, which does not cast to the placeholder's
    /// dtype `expected` (a string fed to a number, or the reverse).
    #[error("feed {name:?}: cannot convert {found} to the placeholder's dtype {expected}")]
    FeedDtype {
        /// The feed or fetch as given.
        name: String,
        /// What the placeholder declares.
        expected: DType,
        /// What was fed.
        found: DType,
    },

    /// Fetch `name` was computed on the untaken branch of a TF1 cond (a `Switch` routed the
    /// data the other way), so this run has no value for it.
    #[error("fetch {name:?} is dead: it lies on a branch of a cond that was not taken")]
    DeadFetch {
        /// The feed or fetch as given.
        name: String,
    },

    /// Node `node` calls function `name`, which the graph's function library lacks. The
    /// executor reports this through [`Error::Node`] today; the variant is kept for callers
    /// that match on it.
    #[error("function {name:?} is not in the graph's function library (needed by node {node:?})")]
    UnknownFunction {
        /// The node's name.
        node: String,
        /// The feed or fetch as given.
        name: String,
    },

    /// Library functions calling functions nest deeper than `limit` levels at node `node`
    /// (most likely a recursive function), found when the plan is built.
    #[error("functions nest deeper than {limit} levels at node {node:?}")]
    TooDeep {
        /// The node's name.
        node: String,
        /// The deepest nesting allowed.
        limit: usize,
    },

    /// Planning the graph needed more than `limit` function bodies (each call site of a
    /// function is planned on its own: functions that each call the next several times
    /// multiply), found at node `node` when the plan is built.
    #[error("more than {limit} function bodies to plan (at node {node:?}): the function library calls itself too many ways")]
    TooManyFunctionPlans {
        /// The calling node where the limit was reached.
        node: String,
        /// The most function bodies one session plans.
        limit: usize,
    },

    /// A name given to [`Session::for_signature`](crate::Session::for_signature) that is
    /// neither a key of the signature nor a tensor of the graph.
    #[error(
        "signature {signature:?} has no {kind} {name:?} and the graph no tensor of that name; its {kind}s: {}",
        if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
    )]
    UnknownSignatureTensor {
        /// The signature's key.
        signature: String,
        /// `input` or `output`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// The signature's keys of that kind, sorted.
        keys: Vec<String>,
    },

    /// A SavedModel's variables checkpoint could not be opened or its object graph
    /// (`_CHECKPOINTABLE_OBJECT_GRAPH`) could not be read.
    #[error("SavedModel variables {}: {error}", path.display())]
    SavedModelVariables {
        /// The checkpoint prefix (`<dir>/variables/variables`).
        path: std::path::PathBuf,
        /// The underlying error.
        error: Box<ckpt_bundle::Error>,
    },

    /// A SavedModel's variables checkpoint holds a `_CHECKPOINTABLE_OBJECT_GRAPH` that is not
    /// a serialized `TrackableObjectGraph` in a string scalar.
    #[error("SavedModel variables {}: _CHECKPOINTABLE_OBJECT_GRAPH: {reason}", path.display())]
    BadObjectGraph {
        /// The checkpoint prefix (`<dir>/variables/variables`).
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// [`SessionOptions::threads`](crate::SessionOptions::threads) asked for worker threads
    /// that could not be started; the message is the operating system's.
    #[error("cannot start the worker threads: {0}")]
    ThreadPool(String),

    /// [`SessionOptions::threads`](crate::SessionOptions::threads) asked for more than
    /// [`SessionOptions::MAX_THREADS`](crate::SessionOptions::MAX_THREADS) threads.
    #[error("{requested} threads asked for; at most {limit} are allowed")]
    TooManyThreads {
        /// The thread count asked for.
        requested: usize,
        /// [`SessionOptions::MAX_THREADS`](crate::SessionOptions::MAX_THREADS).
        limit: usize,
    },

    /// A broken invariant of the executor itself (a value read before it was computed, a
    /// plan run with the wrong number of feeds): a bug to report, not a problem with the
    /// graph or the inputs.
    #[error("internal error: {0}")]
    Internal(String),

    /// A tensor (a checkpoint variable, a feed) of a dtype the executor does not compute with
    /// (see [`compute_dtype`](crate::compute_dtype)).
    #[error("dtype {dtype} is not supported by the executor")]
    UnsupportedDType {
        /// The tensor's dtype.
        dtype: DType,
    },

    /// A list or a TensorArray handle (`kind`) was asked for as a tensor, to be fetched or
    /// written out: read its elements with the graph's own ops instead.
    #[error("a {kind} is not a tensor: fetch a tensor read from it (such as TensorListStack's or TensorArrayGatherV3's output) instead")]
    NotATensor {
        /// `"TensorList"` or `"TensorArray"`.
        kind: &'static str,
    },

    /// A while loop ran more than `limit` iterations
    /// ([`SessionOptions::max_iterations`](crate::SessionOptions::max_iterations)): `frame`
    /// names it, by its TF1 frame name (`while/while_context`) or its TF2 `While` node.
    #[error("loop {frame:?} did not finish within {limit} iterations (the limit is SessionOptions::max_iterations, --max-iterations in ckpt-run)")]
    IterationLimit {
        /// The loop's frame name, or the `While` node's name.
        frame: String,
        /// The limit that was reached.
        limit: u64,
    },
}

impl From<ckpt_graph::Error> for Error {
    fn from(e: ckpt_graph::Error) -> Error {
        Error::Graph(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn bundle_error_is_printed_not_chained() {
        let e = Error::Bundle {
            node: "w".into(),
            key: "layer/w".into(),
            error: Box::new(ckpt_bundle::Error::Header {
                path: "m.index".into(),
                reason: "too short".into(),
            }),
        };
        assert_eq!(
            e.to_string(),
            "checkpoint tensor \"layer/w\" for variable \"w\": m.index: bad bundle header: too short"
        );
        assert!(e.source().is_none());
    }
}
