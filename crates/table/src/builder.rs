//! Writing a table, byte for byte as TensorFlow's `TableBuilder` does
//! (docs/format.md §2.7, §2.8).

use std::io::Write;

use crate::block::{BLOCK_TYPE_RAW, BLOCK_TYPE_SNAPPY};
use crate::block_builder::BlockBuilder;
use crate::crc::block_checksum;
use crate::error::Error;
use crate::handle::{BlockHandle, Footer};

/// How data, metaindex and index blocks are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Type 0: stored as is. What TensorFlow writes for checkpoints.
    #[default]
    None,
    /// Type 1: raw snappy, used only for blocks it shrinks by at least 12.5%.
    /// Compressed bytes come from the `snap` crate and need not match C++
    /// snappy's, so such tables are valid but not byte-identical to TF's.
    Snappy,
}

/// Options for [`TableBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// A data block is closed once its uncompressed size estimate reaches this.
    pub block_size: usize,
    /// Entries between restart points in data blocks (0 is treated as 1).
    /// The index block always uses 1.
    pub block_restart_interval: usize,
    /// How data blocks are compressed (TensorFlow's bundle writer uses none).
    pub compression: Compression,
}

impl Default for TableOptions {
    /// What TensorFlow uses for bundle `.index` files: 256 KiB blocks,
    /// restarts every 16 entries, no compression.
    fn default() -> Self {
        TableOptions {
            block_size: 262_144,
            block_restart_interval: 16,
            compression: Compression::None,
        }
    }
}

/// Writes a table to `W`. Keys must be added in strictly increasing bytewise
/// order; [`finish`](Self::finish) writes the index and footer.
///
/// With [`Compression::None`] the output is byte-identical to TensorFlow's
/// `TableBuilder` given the same options and entries.
#[derive(Debug)]
pub struct TableBuilder<W: Write> {
    out: BlockWriter<W>,
    options: TableOptions,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    last_key: Vec<u8>,
    num_entries: u64,
    /// Handle of the last flushed data block, whose index entry waits for
    /// the next key so that a short separator can be chosen.
    pending_handle: Option<BlockHandle>,
    /// Set after an error that may have left a partial write behind.
    failed: bool,
}

impl<W: Write> TableBuilder<W> {
    /// A builder writing to `writer` with `options`; nothing is written until the first
    /// block fills or [`finish`](Self::finish) is called.
    pub fn new(writer: W, options: TableOptions) -> Self {
        TableBuilder {
            out: BlockWriter {
                writer,
                offset: 0,
                compression: options.compression,
                compressed: Vec::new(),
                encoder: snap::raw::Encoder::new(),
            },
            options,
            data_block: BlockBuilder::new(options.block_restart_interval),
            index_block: BlockBuilder::new(1),
            last_key: Vec::new(),
            num_entries: 0,
            pending_handle: None,
            failed: false,
        }
    }

    /// Number of entries added so far.
    pub fn num_entries(&self) -> u64 {
        self.num_entries
    }

    /// Bytes written to the writer so far.
    pub fn file_size(&self) -> u64 {
        self.out.offset
    }

    /// Adds an entry. `key` must be strictly greater than the previous key,
    /// else `Error::KeyOrder`; a rejected key or an oversized entry changes
    /// nothing. After an I/O error every call returns `Error::BuilderFailed`.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        if self.failed {
            return Err(Error::BuilderFailed);
        }
        if self.num_entries > 0 && key <= self.last_key.as_slice() {
            return Err(Error::KeyOrder {
                previous: self.last_key.clone(),
                key: key.to_vec(),
            });
        }
        for len in [key.len(), value.len()] {
            if u32::try_from(len).is_err() {
                return Err(Error::EntryTooLarge { len });
            }
        }
        let result = self.add_checked(key, value);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn add_checked(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        // TensorFlow (not LevelDB) closes the current block before an entry
        // that would make it overly large on its own.
        let entry_len = key.len().saturating_add(value.len());
        if self.num_entries > 0 && entry_len >= self.options.block_size.saturating_mul(2) {
            self.flush()?;
        }
        if let Some(handle) = self.pending_handle.take() {
            shorten_separator(&mut self.last_key, key);
            add_index_entry(&mut self.index_block, &self.last_key, handle)?;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.num_entries += 1;
        self.data_block.add(key, value)?;
        if self.data_block.size_estimate() >= self.options.block_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the last data block, the (empty) metaindex block, the index
    /// block and the footer, flushes the writer and returns it.
    pub fn finish(mut self) -> Result<W, Error> {
        if self.failed {
            return Err(Error::BuilderFailed);
        }
        self.flush()?;
        // TF writes an empty metaindex block and never reads it back.
        let mut metaindex = BlockBuilder::new(self.options.block_restart_interval);
        let metaindex_handle = self.out.write_block(&mut metaindex)?;
        if let Some(handle) = self.pending_handle.take() {
            shortest_successor(&mut self.last_key);
            add_index_entry(&mut self.index_block, &self.last_key, handle)?;
        }
        let index_handle = self.out.write_block(&mut self.index_block)?;
        let footer = Footer {
            metaindex: metaindex_handle,
            index: index_handle,
        }
        .encode();
        self.out.writer.write_all(&footer)?;
        self.out.writer.flush()?;
        Ok(self.out.writer)
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.data_block.is_empty() {
            return Ok(());
        }
        self.pending_handle = Some(self.out.write_block(&mut self.data_block)?);
        Ok(())
    }
}

fn add_index_entry(index: &mut BlockBuilder, key: &[u8], handle: BlockHandle) -> Result<(), Error> {
    let mut encoded = Vec::with_capacity(BlockHandle::MAX_ENCODED_LEN);
    handle.encode_to(&mut encoded);
    index.add(key, &encoded)
}

/// The output side of the builder: blocks go out with their trailers.
#[derive(Debug)]
struct BlockWriter<W> {
    writer: W,
    /// Bytes written so far.
    offset: u64,
    compression: Compression,
    /// Reused output buffer for snappy.
    compressed: Vec<u8>,
    encoder: snap::raw::Encoder,
}

impl<W: Write> BlockWriter<W> {
    /// Finishes `block`, compresses it if asked and worthwhile, writes it
    /// with its trailer, and resets it.
    fn write_block(&mut self, block: &mut BlockBuilder) -> Result<BlockHandle, Error> {
        let raw = block.finish()?;
        let mut block_type = BLOCK_TYPE_RAW;
        let mut contents = raw;
        if self.compression == Compression::Snappy {
            self.compressed
                .resize(snap::raw::max_compress_len(raw.len()), 0);
            if let Ok(n) = self.encoder.compress(raw, &mut self.compressed) {
                // Keep the compressed form only if it saves at least 12.5%.
                if n < raw.len() - raw.len() / 8 {
                    self.compressed.truncate(n);
                    contents = &self.compressed;
                    block_type = BLOCK_TYPE_SNAPPY;
                }
            }
        }
        let handle = BlockHandle {
            offset: self.offset,
            size: contents.len() as u64,
        };
        let mut trailer = [block_type, 0, 0, 0, 0];
        if let Some(crc) = trailer.get_mut(1..) {
            crc.copy_from_slice(&block_checksum(contents, block_type).to_le_bytes());
        }
        self.writer.write_all(contents)?;
        self.writer.write_all(&trailer)?;
        self.offset += handle.size + trailer.len() as u64;
        block.reset();
        Ok(handle)
    }
}

/// TensorFlow's `FindShortestSeparator`: shortens `start` to a key that is
/// still `>= start` and `< limit`, where a single byte bump allows it.
fn shorten_separator(start: &mut Vec<u8>, limit: &[u8]) {
    let diff = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    // One key is a prefix of the other: leave it.
    let (Some(&byte), Some(&limit_byte)) = (start.get(diff), limit.get(diff)) else {
        return;
    };
    if byte < 0xff && byte + 1 < limit_byte {
        start.truncate(diff);
        start.push(byte + 1);
    }
}

/// TensorFlow's `FindShortSuccessor`: bumps the first byte that is not 0xff
/// and cuts after it; a key of only 0xff bytes stays as it is.
fn shortest_successor(key: &mut Vec<u8>) {
    if let Some(i) = key.iter().position(|&b| b != 0xff) {
        key.truncate(i + 1);
        if let Some(b) = key.last_mut() {
            *b += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sep(start: &[u8], limit: &[u8]) -> Vec<u8> {
        let mut s = start.to_vec();
        shorten_separator(&mut s, limit);
        s
    }

    fn succ(key: &[u8]) -> Vec<u8> {
        let mut k = key.to_vec();
        shortest_successor(&mut k);
        k
    }

    #[test]
    fn separators_follow_tensorflow() {
        assert_eq!(sep(b"the quick brown fox", b"the who"), b"the r");
        assert_eq!(sep(b"abc", b"abcd"), b"abc"); // prefix: unchanged
        assert_eq!(sep(b"abc", b"abd"), b"abc"); // c+1 == d: unchanged
        assert_eq!(sep(b"ab\xff", b"ac"), b"ab\xff"); // differs at index 1, b+1 == c
        assert_eq!(sep(b"a\xffz", b"b"), b"a\xffz");
        assert_eq!(sep(b"a\xfe", b"a\xff"), b"a\xfe");
        assert_eq!(sep(b"", b"x"), b"");
        assert_eq!(sep(b"a", b"c"), b"b");
    }

    #[test]
    fn successors_follow_tensorflow() {
        assert_eq!(succ(b"sv"), b"t");
        assert_eq!(succ(b"layer_05999/x"), b"m");
        assert_eq!(succ(b"\xff\xffa"), b"\xff\xffb");
        assert_eq!(succ(b"\xff\xff"), b"\xff\xff");
        assert_eq!(succ(b""), b"");
    }

    #[test]
    fn empty_table_layout() -> Result<(), Error> {
        let bytes = TableBuilder::new(Vec::new(), TableOptions::default()).finish()?;
        // Empty metaindex, empty index, footer.
        assert_eq!(bytes.len(), 13 + 13 + 48);
        assert_eq!(bytes[..8], [0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(bytes[13..21], [0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(bytes[26..30], [0, 8, 13, 8]);
        Ok(())
    }
}
