//! Reading a table from a byte slice (TensorFlow's `Table` and its
//! two-level iterator).

use std::borrow::Cow;
use std::iter::FusedIterator;
use std::ops::Range;
use std::sync::OnceLock;

use crate::block::{read_block, Block, BlockCursor};
use crate::error::{Error, HandleLocation};
use crate::handle::{BlockHandle, Footer};

/// A table opened over borrowed bytes (a memory map or a `Vec`).
///
/// [`open`](Self::open) checks the footer, reads the index block (checksum
/// verified) and checks that every index entry points to a block inside the
/// file. A data block is read, checksummed and, if snappy, decompressed the
/// first time a lookup or an iterator reaches it, then kept; `Table` is
/// `Sync`, so threads can share one.
pub struct Table<'a> {
    file: &'a [u8],
    footer: Footer,
    index: Block<'a>,
    /// Every index entry's handle, in order, checked to lie inside the file.
    data_blocks: Vec<BlockHandle>,
    /// Offset within the index block of the entry for each data block, to
    /// turn an index seek into a data block number.
    index_entry_offsets: Vec<usize>,
    /// Data blocks already verified, by number.
    loaded: Vec<OnceLock<Block<'a>>>,
}

impl<'a> Table<'a> {
    /// Opens a table held in `bytes`: decodes the footer and the index block (checksums
    /// checked); data blocks are read on first use.
    ///
    /// Errors: [`Error::TooShort`], [`Error::BadMagic`], [`Error::HandlePastEnd`],
    /// [`Error::ChecksumMismatch`] and the other decoding errors, with byte offsets.
    pub fn open(bytes: &'a [u8]) -> Result<Table<'a>, Error> {
        let footer = Footer::decode(bytes)?;
        footer.metaindex.ranges(bytes.len())?;
        let index = Block::new(read_block(bytes, footer.index)?, footer.index)?;

        // Each index entry takes at least 5 bytes, so these grow no faster
        // than the index block itself.
        let mut data_blocks = Vec::new();
        let mut index_entry_offsets = Vec::new();
        let mut cursor = BlockCursor::default();
        cursor.seek_to_first(&index)?;
        while cursor.advance(&index)? {
            let handle = decode_index_value(&index, &cursor)?;
            handle.ranges(bytes.len())?;
            data_blocks.push(handle);
            index_entry_offsets.push(cursor.entry_offset());
        }
        let loaded = data_blocks.iter().map(|_| OnceLock::new()).collect();
        Ok(Table {
            file: bytes,
            footer,
            index,
            data_blocks,
            index_entry_offsets,
            loaded,
        })
    }

    /// Exact-match lookup. Values borrow from the file when their block is
    /// stored raw.
    pub fn get(&self, key: &[u8]) -> Result<Option<Cow<'a, [u8]>>, Error> {
        // The index key is >= every key of its block and < every key of the
        // next, so `key` can only be in the first block whose index key is
        // >= `key`.
        let Some(number) = self.seek_index(key)? else {
            return Ok(None);
        };
        let block = self.data_block(number)?;
        let mut cursor = BlockCursor::default();
        if cursor.seek(block, key)? && cursor.key() == key {
            return value_of(block, cursor.value_range()).map(Some);
        }
        Ok(None)
    }

    /// Every entry of every data block, in key order.
    pub fn iter(&self) -> TableIter<'_, 'a> {
        TableIter::new(self)
    }

    /// Iteration from the first key `>= target`.
    pub fn seek(&self, target: &[u8]) -> TableIter<'_, 'a> {
        let mut iter = TableIter::new(self);
        if let Err(e) = iter.seek_to(target) {
            iter.error = Some(e);
        }
        iter
    }

    /// The number of data blocks the index lists.
    pub fn num_data_blocks(&self) -> usize {
        self.data_blocks.len()
    }

    /// Handles of the data blocks, in index order.
    pub fn data_block_handles(&self) -> &[BlockHandle] {
        &self.data_blocks
    }

    /// The footer's handle of the index block.
    pub fn index_handle(&self) -> BlockHandle {
        self.footer.index
    }

    /// The footer's handle of the metaindex block (never read: TF writes it empty).
    pub fn metaindex_handle(&self) -> BlockHandle {
        self.footer.metaindex
    }

    /// The bytes the table was opened over.
    pub fn bytes(&self) -> &'a [u8] {
        self.file
    }

    /// Number of the first data block whose index key is `>= target`.
    fn seek_index(&self, target: &[u8]) -> Result<Option<usize>, Error> {
        let mut cursor = BlockCursor::default();
        if !cursor.seek(&self.index, target)? {
            return Ok(None);
        }
        // A seek starts at a restart point; one that is not an entry the
        // walk in `open` found lies inside another entry.
        let offset = cursor.entry_offset();
        let number = self
            .index_entry_offsets
            .binary_search(&offset)
            .map_err(|_| Error::CorruptEntry {
                block_offset: self.footer.index.offset,
                entry_offset: offset,
            })?;
        Ok(Some(number))
    }

    /// Data block `number`, read and verified on first use.
    fn data_block(&self, number: usize) -> Result<&Block<'a>, Error> {
        let cell = self.loaded.get(number).ok_or(Error::CorruptEntry {
            block_offset: self.footer.index.offset,
            entry_offset: 0,
        })?;
        if let Some(block) = cell.get() {
            return Ok(block);
        }
        let handle = self.data_blocks.get(number).copied().unwrap_or_default();
        let block = Block::new(read_block(self.file, handle)?, handle)?;
        // Another thread may have won the race; its block is the same.
        Ok(cell.get_or_init(|| block))
    }
}

/// Decodes the block handle in the index entry under `cursor`.
fn decode_index_value(index: &Block<'_>, cursor: &BlockCursor) -> Result<BlockHandle, Error> {
    let bad = || Error::BadHandle {
        location: HandleLocation::IndexEntry {
            entry_offset: cursor.entry_offset(),
        },
    };
    let value = index.data().get(cursor.value_range()).ok_or_else(bad)?;
    // TF allows bytes after the handle, for future extensions.
    let (handle, _) = BlockHandle::decode(value).ok_or_else(bad)?;
    Ok(handle)
}

impl std::fmt::Debug for Table<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.file.len())
            .field("metaindex", &self.footer.metaindex)
            .field("index", &self.footer.index)
            .field("num_data_blocks", &self.data_blocks.len())
            .finish()
    }
}

/// The value at `range` of `block`: borrowed if the block is borrowed from
/// the file, copied out of a decompressed block otherwise.
fn value_of<'a>(block: &Block<'a>, range: Range<usize>) -> Result<Cow<'a, [u8]>, Error> {
    let corrupt = || Error::CorruptEntry {
        block_offset: block.handle().offset,
        entry_offset: range.start,
    };
    match block.data() {
        Cow::Borrowed(bytes) => {
            let bytes: &'a [u8] = bytes;
            bytes
                .get(range.clone())
                .map(Cow::Borrowed)
                .ok_or_else(corrupt)
        }
        Cow::Owned(bytes) => bytes
            .get(range.clone())
            .map(|v| Cow::Owned(v.to_vec()))
            .ok_or_else(corrupt),
    }
}

/// One table entry as iteration yields it: the key, and the value borrowed
/// from the file (raw blocks) or owned (snappy blocks).
pub type Entry<'a> = (Vec<u8>, Cow<'a, [u8]>);

/// Ordered iteration over a [`Table`]'s entries, from [`Table::iter`] or
/// [`Table::seek`]. Yields `(key, value)`; after an error it yields `None`.
pub struct TableIter<'t, 'a> {
    table: &'t Table<'a>,
    /// Number of the data block to load when the current one runs out.
    next_block: usize,
    block: Option<&'t Block<'a>>,
    cursor: BlockCursor,
    /// The cursor already sits on an entry not yet yielded (after a seek).
    pending: bool,
    /// An error found while positioning, yielded first.
    error: Option<Error>,
    done: bool,
}

impl<'t, 'a> TableIter<'t, 'a> {
    fn new(table: &'t Table<'a>) -> Self {
        TableIter {
            table,
            next_block: 0,
            block: None,
            cursor: BlockCursor::default(),
            pending: false,
            error: None,
            done: false,
        }
    }

    fn seek_to(&mut self, target: &[u8]) -> Result<(), Error> {
        let Some(number) = self.table.seek_index(target)? else {
            self.done = true;
            return Ok(());
        };
        let block = self.table.data_block(number)?;
        // If the block has no key >= target the cursor is left at its end,
        // and `next` moves on to the following block.
        self.pending = self.cursor.seek(block, target)?;
        self.block = Some(block);
        self.next_block = number + 1;
        Ok(())
    }

    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, Error> {
        loop {
            if let Some(block) = self.block {
                let found = std::mem::take(&mut self.pending) || self.cursor.advance(block)?;
                if found {
                    let value = value_of(block, self.cursor.value_range())?;
                    return Ok(Some((self.cursor.key().to_vec(), value)));
                }
                self.block = None;
            }
            if self.next_block >= self.table.num_data_blocks() {
                return Ok(None);
            }
            let block = self.table.data_block(self.next_block)?;
            self.next_block += 1;
            self.cursor.seek_to_first(block)?;
            self.block = Some(block);
        }
    }
}

impl<'a> Iterator for TableIter<'_, 'a> {
    type Item = Result<Entry<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        match self.next_entry() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for TableIter<'_, '_> {}

impl std::fmt::Debug for TableIter<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableIter")
            .field("table", &self.table)
            .field("block", &self.block.map(Block::handle))
            .field("key", &self.cursor.key().escape_ascii().to_string())
            .field("done", &self.done)
            .finish()
    }
}
