use crate::DType;

/// Everything that can go wrong building or running a plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Graph(Box<ckpt_graph::Error>),

    #[error("checkpoint tensor {key:?} for variable {node:?}: {source}")]
    Bundle {
        node: String,
        key: String,
        #[source]
        source: Box<ckpt_bundle::Error>,
    },

    #[error("shape {shape:?} does not hold {len} elements")]
    ShapeMismatch { shape: Vec<usize>, len: usize },

    #[error("cannot cast {from} to {to}")]
    Cast { from: DType, to: DType },

    #[error("node {node:?} ({op}): {message}")]
    Node {
        node: String,
        op: String,
        message: String,
    },

    #[error(
        "node {node:?} has unsupported op {op:?}; supported ops: {}",
        supported.join(", ")
    )]
    UnsupportedOp {
        node: String,
        op: String,
        supported: Vec<&'static str>,
    },

    #[error("the graph reads {} variable(s) but no checkpoint was given: {}", names.len(), names.join(", "))]
    NoCheckpoint { names: Vec<String> },

    #[error("{} variable(s) missing from the checkpoint: {}", names.len(), names.join(", "))]
    MissingVariables { names: Vec<String> },

    #[error("placeholder {name:?} must be fed{hint}")]
    UnfedPlaceholder { name: String, hint: String },

    #[error("feed {name:?} is not among the feeds the session was built with ({})", expected.join(", "))]
    UnknownFeed { name: String, expected: Vec<String> },

    #[error("feed {name:?} given twice")]
    DuplicateFeed { name: String },

    #[error("feed {name:?}: shape {found:?} does not match the placeholder's shape {expected}")]
    FeedShape {
        name: String,
        expected: String,
        found: Vec<usize>,
    },

    #[error("feed {name:?}: cannot convert {found} to the placeholder's dtype {expected}")]
    FeedDtype {
        name: String,
        expected: DType,
        found: DType,
    },

    #[error("fetch {name:?} is dead: it lies on a branch of a cond that was not taken")]
    DeadFetch { name: String },

    #[error("function {name:?} is not in the graph's function library (needed by node {node:?})")]
    UnknownFunction { node: String, name: String },

    #[error("functions nest deeper than {limit} levels at node {node:?}")]
    TooDeep { node: String, limit: usize },

    #[error("cannot build a thread pool: {0}")]
    ThreadPool(String),

    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ckpt_graph::Error> for Error {
    fn from(e: ckpt_graph::Error) -> Error {
        Error::Graph(Box::new(e))
    }
}
