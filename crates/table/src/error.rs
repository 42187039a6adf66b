//! The one error type of this crate.

/// Everything that can go wrong reading or writing a table.
///
/// Variants that come from reading carry the byte offsets needed to find the
/// problem in the file; `offset`/`size` of a block are those of its
/// [`BlockHandle`](crate::BlockHandle) (contents only, without the trailer).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is shorter than the 48-byte footer.
    #[error("file too short for footer ({len} bytes, need {need})")]
    TooShort {
        /// Length in bytes.
        len: usize,
        /// Bytes needed.
        need: usize,
    },

    /// The last 8 bytes are not the table magic number.
    #[error("not an sstable: bad magic number (found 0x{found:016x}, expected 0x{expected:016x})")]
    BadMagic {
        /// The value found.
        found: u64,
        /// The value expected.
        expected: u64,
    },

    /// A block handle (in the footer or an index entry) is not two valid varint64s.
    #[error("corrupt block handle in {location}")]
    BadHandle {
        /// Where the handle was read.
        location: HandleLocation,
    },

    /// A block handle points outside the file, or its end overflows.
    #[error("block handle ({offset}, {size}) past end of file ({file_len} bytes)")]
    HandlePastEnd {
        /// Byte offset of the block in the file.
        offset: u64,
        /// Size of the block's contents in bytes (without the trailer).
        size: u64,
        /// Length of the file in bytes.
        file_len: usize,
    },

    /// The masked CRC32C in a block trailer does not match the block.
    #[error(
        "block at offset {offset} (size {size}): checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})"
    )]
    ChecksumMismatch {
        /// Byte offset of the block in the file.
        offset: u64,
        /// Size of the block's contents in bytes (without the trailer).
        size: u64,
        /// The checksum in the trailer (unmasked).
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },

    /// The trailer's type byte is neither 0 (raw) nor 1 (snappy).
    #[error("block at offset {offset} (size {size}): bad block type {block_type}")]
    BadBlockType {
        /// Byte offset of the block in the file.
        offset: u64,
        /// Size of the block's contents in bytes (without the trailer).
        size: u64,
        /// The type byte found.
        block_type: u8,
    },

    /// A snappy block does not decompress.
    #[error("block at offset {offset} (size {size}): snappy decompression failed: {error}")]
    Snappy {
        /// Byte offset of the block in the file.
        offset: u64,
        /// Size of the block's contents in bytes (without the trailer).
        size: u64,
        /// The decompressor's error.
        error: snap::Error,
    },

    /// A snappy block claims an uncompressed length no valid snappy stream of its size can have.
    #[error(
        "block at offset {offset} (size {size}): snappy block claims {claimed} uncompressed bytes, more than {limit} possible"
    )]
    DecompressedTooLarge {
        /// Byte offset of the block in the file.
        offset: u64,
        /// Size of the block's contents in bytes (without the trailer).
        size: u64,
        /// The uncompressed length the block claims.
        claimed: usize,
        /// The most a block of this size can hold.
        limit: usize,
    },

    /// The restart array at the end of a block is malformed.
    #[error("block at offset {offset} (size {size}): {reason}")]
    BadBlockContents {
        /// Byte offset of the block in the file.
        offset: u64,
        /// Size of the block's contents in bytes (without the trailer).
        size: u64,
        /// What is wrong with the restart array.
        reason: BlockProblem,
    },

    /// An entry inside a block cannot be decoded (bad varint, lengths past the
    /// end of the entries, a shared prefix longer than the previous key, or a
    /// restart point whose entry shares a prefix).
    #[error("block at offset {block_offset}: corrupt block entry at offset {entry_offset}")]
    CorruptEntry {
        /// Byte offset of the block in the file.
        block_offset: u64,
        /// Byte offset of the entry within the block.
        entry_offset: usize,
    },

    /// `TableBuilder::add` was given a key not strictly greater than the previous one.
    #[error(
        "keys out of order: \"{}\" added after \"{}\" (keys must be strictly increasing bytewise)",
        .key.escape_ascii(),
        .previous.escape_ascii()
    )]
    KeyOrder {
        /// The key added before.
        previous: Vec<u8>,
        /// The key being added.
        key: Vec<u8>,
    },

    /// A key or value is longer than the format can describe (4 GiB - 1).
    #[error("entry too large: {len} bytes does not fit a 32-bit length")]
    EntryTooLarge {
        /// Length in bytes.
        len: usize,
    },

    /// A block grew past what its 32-bit restart offsets can address.
    #[error("block too large: {len} bytes does not fit 32-bit restart offsets")]
    BlockTooLarge {
        /// Length in bytes.
        len: usize,
    },

    /// The builder already failed on an I/O error and cannot continue.
    #[error("table builder already failed on an earlier i/o error")]
    BuilderFailed,

    /// Writing the table failed.
    #[error("i/o error writing table: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Io(error)
    }
}

/// Where a corrupt block handle was found.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleLocation {
    /// The footer's metaindex or index handle.
    Footer,
    /// The value of the index entry at `entry_offset` within the index block.
    IndexEntry {
        /// Byte offset of the entry within the block.
        entry_offset: usize,
    },
}

impl std::fmt::Display for HandleLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandleLocation::Footer => f.write_str("footer"),
            HandleLocation::IndexEntry { entry_offset } => {
                write!(f, "index entry at offset {entry_offset}")
            }
        }
    }
}

/// What is wrong with a block's restart array.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockProblem {
    /// Fewer than the 4 bytes of `num_restarts`.
    TooSmall {
        /// Length in bytes.
        len: usize,
    },
    /// `num_restarts` needs more bytes than the block has.
    TooManyRestarts {
        /// The restart count the block claims.
        num_restarts: u32,
        /// The most restarts the block has room for.
        max: usize,
    },
    /// A restart point lies past the end of the entries.
    RestartOutOfRange {
        /// Which restart point.
        index: usize,
        /// The offset it holds.
        restart: u32,
        /// Where the entries end (the restart array starts), in bytes.
        limit: usize,
    },
}

impl std::fmt::Display for BlockProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            BlockProblem::TooSmall { len } => {
                write!(f, "block too small ({len} bytes, need at least 4)")
            }
            BlockProblem::TooManyRestarts { num_restarts, max } => {
                write!(
                    f,
                    "num_restarts {num_restarts} exceeds the {max} the block can hold"
                )
            }
            BlockProblem::RestartOutOfRange {
                index,
                restart,
                limit,
            } => write!(
                f,
                "restart point {index} at offset {restart} is past the end of the entries ({limit})"
            ),
        }
    }
}
