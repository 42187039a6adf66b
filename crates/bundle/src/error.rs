//! The crate's one error type.

use std::path::PathBuf;

use ckpt_suggest::did_you_mean;

use crate::DType;

/// Everything that can go wrong while reading, verifying, writing or merging a bundle.
///
/// Each variant carries the context a user needs to find the problem: the file, the
/// tensor, the byte offset, and what was expected against what was found. A wrapped error
/// (an I/O error, a table error) is part of the message and is not returned again by
/// [`std::error::Error::source`], so printing a chain of causes says everything once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error on a file.
    #[error("{}: {error}", ShortPath(path))]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },

    /// The path given does not lead to a checkpoint.
    #[error("no checkpoint at {}: {reason}", ShortPath(path))]
    CheckpointNotFound {
        /// The path as given.
        path: PathBuf,
        /// What was looked for and not found.
        reason: String,
    },

    /// A data shard named by the index does not exist.
    #[error(
        "{}: missing data file (shard {shard} of {num_shards}, needed by tensor \"{tensor}\")",
        ShortPath(path)
    )]
    MissingShard {
        /// The data file that should exist.
        path: PathBuf,
        /// Its shard id.
        shard: u32,
        /// The shard count the header declares.
        num_shards: u32,
        /// A tensor stored in it (empty if none is known).
        tensor: String,
    },

    /// The `.index` file is not a valid table.
    #[error("{}: {error}", ShortPath(path))]
    Table {
        /// The `.index` file.
        path: PathBuf,
        /// What the table reader or writer found.
        error: ckpt_table::Error,
    },

    /// The bundle header (the entry under the empty key) is missing or unacceptable.
    #[error("{}: bad bundle header: {reason}", ShortPath(path))]
    Header {
        /// The `.index` file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A tensor's index entry is malformed.
    #[error("{}: tensor \"{tensor}\": bad index entry: {reason}", ShortPath(path))]
    Entry {
        /// The `.index` file.
        path: PathBuf,
        /// The entry's key, shown readably (`name[0,2:-]` for a stored slice).
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A tensor's bytes lie outside its data file.
    #[error(
        "{}: tensor \"{tensor}\": data [{offset}, {offset}+{size}) lies outside the file ({file_len} bytes)",
        ShortPath(path)
    )]
    DataOutOfBounds {
        /// The data file.
        path: PathBuf,
        /// The tensor whose bytes these are.
        tensor: String,
        /// Where its bytes start, in bytes.
        offset: u64,
        /// How many bytes it claims.
        size: u64,
        /// The file's length in bytes.
        file_len: u64,
    },

    /// A tensor's bytes do not match the checksum stored in the index.
    #[error(
        "{}: tensor \"{tensor}\": checksum mismatch at offset {offset} (stored 0x{stored:08x}, computed 0x{computed:08x})",
        ShortPath(path)
    )]
    ChecksumMismatch {
        /// The data file.
        path: PathBuf,
        /// The tensor whose bytes these are.
        tensor: String,
        /// Where its bytes start, in bytes.
        offset: u64,
        /// The crc32c the index holds (unmasked).
        stored: u32,
        /// The crc32c of the bytes found.
        computed: u32,
    },

    /// The bytes of a string or variant tensor do not follow the layout.
    #[error(
        "{}: tensor \"{tensor}\": corrupt {dtype} data at offset {offset}: {reason}",
        ShortPath(path)
    )]
    StringData {
        /// The data file.
        path: PathBuf,
        /// The tensor whose bytes these are.
        tensor: String,
        /// `string` or `variant`.
        dtype: DType,
        /// Where the problem is, in bytes from the start of the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A partitioned tensor's slices are inconsistent.
    #[error("{}: tensor \"{tensor}\": bad slices: {reason}", ShortPath(path))]
    Slices {
        /// The `.index` file.
        path: PathBuf,
        /// The partitioned tensor.
        tensor: String,
        /// What is wrong with its slices.
        reason: String,
    },

    /// No tensor of that name.
    #[error(
        "tensor \"{tensor}\" not found in {}{}",
        ShortPath(prefix),
        did_you_mean(suggestions)
    )]
    TensorNotFound {
        /// The name asked for.
        tensor: String,
        /// The checkpoint searched.
        prefix: PathBuf,
        /// Listed names close to it, best first (see `ckpt-suggest`).
        suggestions: Vec<String>,
    },

    /// A request that does not fit the tensor's element type (`as_slice::<f32>()` of an
    /// int32 tensor, `to_f32_vec` of a string tensor).
    #[error("tensor of dtype {dtype}: {reason}")]
    DTypeMismatch {
        /// The tensor's dtype.
        dtype: DType,
        /// What was asked of it.
        reason: String,
    },

    /// A tensor handed to the writer, or built by hand, is inconsistent.
    #[error("tensor \"{tensor}\": {reason}")]
    InvalidTensor {
        /// The tensor's name (empty for a tensor not yet named).
        tensor: String,
        /// What disagrees.
        reason: String,
    },

    /// A slice spec (`"0,3:-"`) or shape-and-slice spec (`"6 2 0,3:-"`) that is malformed or
    /// does not fit the tensor.
    #[error("slice spec {spec:?}: {reason}")]
    SliceSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The writer was given the same key twice.
    #[error("tensor \"{tensor}\" added twice to {}", ShortPath(prefix))]
    DuplicateTensor {
        /// The tensor (or slice, as `name[0,2:-]`).
        tensor: String,
        /// The checkpoint being written.
        prefix: PathBuf,
    },

    /// An earlier write error left the writer unusable; its temporary files are gone.
    #[error("{}: writer failed earlier and was abandoned", ShortPath(prefix))]
    WriterFailed {
        /// The checkpoint that was being written.
        prefix: PathBuf,
    },

    /// The text of a `checkpoint` state file is malformed (from
    /// [`parse_state`](crate::state::parse_state), which has no file name).
    #[error("checkpoint state, line {line}: {reason}")]
    StateSyntax {
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// A `checkpoint` state file is malformed or unusable.
    #[error("{}: line {line}: {reason}", ShortPath(path))]
    StateFile {
        /// The state file.
        path: PathBuf,
        /// 1-based line of the problem (0 when it concerns the whole file).
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// Bundles cannot be merged.
    #[error("merge into {}: {reason}", ShortPath(output))]
    Merge {
        /// The checkpoint that would have been written.
        output: PathBuf,
        /// Why not.
        reason: String,
    },
}

/// Shows a path in an error message, its middle elided past [`ShortPath::MAX_BYTES`], so a
/// hostile 10 MB path does not make a 20 MB message.
#[derive(Debug, Clone, Copy)]
pub struct ShortPath<'a>(pub &'a std::path::Path);

impl ShortPath<'_> {
    /// Paths longer than this (in bytes of their display form) are shortened.
    pub const MAX_BYTES: usize = 300;
}

impl std::fmt::Display for ShortPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.to_string_lossy();
        if text.len() <= Self::MAX_BYTES {
            return f.write_str(&text);
        }
        let keep = Self::MAX_BYTES / 2;
        let head = text.get(..floor_char(&text, keep)).unwrap_or_default();
        let tail_start = ceil_char(&text, text.len() - keep);
        let tail = text.get(tail_start..).unwrap_or_default();
        write!(
            f,
            "{head}...({} bytes)...{tail}",
            text.len() - head.len() - tail.len()
        )
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_shortened_in_messages() {
        let long = format!("/{}/model.ckpt", "d\u{e9}".repeat(400_000));
        let e = Error::CheckpointNotFound {
            path: PathBuf::from(&long),
            reason: "x".into(),
        };
        let text = e.to_string();
        assert!(text.len() < 400, "{} bytes", text.len());
        assert!(text.starts_with("no checkpoint at /d\u{e9}d"));
        assert!(text.contains("bytes)..."));
        assert!(text.ends_with("/model.ckpt: x"));
        let short = Error::CheckpointNotFound {
            path: PathBuf::from("/a/b"),
            reason: "x".into(),
        };
        assert_eq!(short.to_string(), "no checkpoint at /a/b: x");
    }
}
