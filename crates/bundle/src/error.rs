//! The crate's one error type.

use std::path::PathBuf;

use crate::DType;

/// Everything that can go wrong while reading, verifying, writing or merging a bundle.
///
/// Each variant carries the context a user needs to find the problem: the file, the
/// tensor, the byte offset, and what was expected against what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The path given does not lead to a checkpoint.
    #[error("no checkpoint at {}: {reason}", path.display())]
    CheckpointNotFound { path: PathBuf, reason: String },

    /// A data shard named by the index does not exist.
    #[error("{}: missing data file (shard {shard} of {num_shards}, needed by tensor \"{tensor}\")", path.display())]
    MissingShard {
        path: PathBuf,
        shard: u32,
        num_shards: u32,
        tensor: String,
    },

    /// The `.index` file is not a valid table.
    #[error("{}: {source}", path.display())]
    Table {
        path: PathBuf,
        #[source]
        source: ckpt_table::Error,
    },

    /// The bundle header (the entry under the empty key) is missing or unacceptable.
    #[error("{}: bad bundle header: {reason}", path.display())]
    Header { path: PathBuf, reason: String },

    /// A tensor's index entry is malformed.
    #[error("{}: tensor \"{tensor}\": bad index entry: {reason}", path.display())]
    Entry {
        path: PathBuf,
        tensor: String,
        reason: String,
    },

    /// A tensor's bytes lie outside its data file.
    #[error(
        "{}: tensor \"{tensor}\": data [{offset}, {offset}+{size}) lies outside the file ({file_len} bytes)",
        path.display()
    )]
    DataOutOfBounds {
        path: PathBuf,
        tensor: String,
        offset: u64,
        size: u64,
        file_len: u64,
    },

    /// A tensor's bytes do not match the checksum stored in the index.
    #[error(
        "{}: tensor \"{tensor}\": checksum mismatch at offset {offset} (stored 0x{stored:08x}, computed 0x{computed:08x})",
        path.display()
    )]
    ChecksumMismatch {
        path: PathBuf,
        tensor: String,
        offset: u64,
        stored: u32,
        computed: u32,
    },

    /// The bytes of a string or variant tensor do not follow the layout.
    #[error("{}: tensor \"{tensor}\": corrupt {dtype} data at offset {offset}: {reason}", path.display())]
    StringData {
        path: PathBuf,
        tensor: String,
        dtype: DType,
        offset: u64,
        reason: String,
    },

    /// A partitioned tensor's slices are inconsistent.
    #[error("{}: tensor \"{tensor}\": bad slices: {reason}", path.display())]
    Slices {
        path: PathBuf,
        tensor: String,
        reason: String,
    },

    /// No tensor of that name.
    #[error("tensor \"{tensor}\" not found in {}{}", prefix.display(), suggest(suggestions))]
    TensorNotFound {
        tensor: String,
        prefix: PathBuf,
        suggestions: Vec<String>,
    },

    /// A request that does not fit the tensor's element type.
    #[error("tensor of dtype {dtype}: {reason}")]
    DTypeMismatch { dtype: DType, reason: String },

    /// A tensor handed to the writer, or built by hand, is inconsistent.
    #[error("tensor \"{tensor}\": {reason}")]
    InvalidTensor { tensor: String, reason: String },

    /// The writer was given the same key twice.
    #[error("tensor \"{tensor}\" added twice to {}", prefix.display())]
    DuplicateTensor { tensor: String, prefix: PathBuf },

    /// An earlier write error left the writer unusable; its temporary files are gone.
    #[error("{}: writer failed earlier and was abandoned", prefix.display())]
    WriterFailed { prefix: PathBuf },

    /// The text of a `checkpoint` state file is malformed.
    #[error("checkpoint state, line {line}: {reason}")]
    StateSyntax { line: usize, reason: String },

    /// A `checkpoint` state file is malformed or unusable.
    #[error("{}: line {line}: {reason}", path.display())]
    StateFile {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    /// Bundles cannot be merged.
    #[error("merge into {}: {reason}", output.display())]
    Merge { output: PathBuf, reason: String },
}

fn suggest(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        format!(" (did you mean {}?)", quoted.join(", "))
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
