//! Reading blocks: the trailer check, decompression, and a cursor over the
//! prefix-compressed entries (docs/format.md §2.2 - §2.4).

use std::borrow::Cow;
use std::ops::Range;

use crate::coding::{fixed32, varint32};
use crate::crc::block_checksum;
use crate::error::{BlockProblem, Error};
use crate::handle::BlockHandle;

/// Trailer type byte of a block stored as is.
pub(crate) const BLOCK_TYPE_RAW: u8 = 0;
/// Trailer type byte of a block stored as raw (unframed) snappy.
pub(crate) const BLOCK_TYPE_SNAPPY: u8 = 1;

/// No valid snappy stream expands by more than about 21x (a 3-byte copy
/// emits at most 64 bytes), so a larger claimed length is corruption and
/// must not size an allocation.
const MAX_SNAPPY_EXPANSION: usize = 32;

/// Reads the block `handle` points to, verifies its trailer, and returns its
/// uncompressed contents: borrowed from `file` when stored raw, owned when
/// stored as snappy.
pub(crate) fn read_block<'a>(file: &'a [u8], handle: BlockHandle) -> Result<Cow<'a, [u8]>, Error> {
    let (contents_range, trailer_range) = handle.ranges(file.len())?;
    let past_end = || Error::HandlePastEnd {
        offset: handle.offset,
        size: handle.size,
        file_len: file.len(),
    };
    let contents = file.get(contents_range).ok_or_else(past_end)?;
    let trailer = file.get(trailer_range).ok_or_else(past_end)?;
    let (&block_type, _) = trailer.split_first().ok_or_else(past_end)?;
    let stored = fixed32(trailer, 1).ok_or_else(past_end)?;
    let computed = block_checksum(contents, block_type);
    if stored != computed {
        return Err(Error::ChecksumMismatch {
            offset: handle.offset,
            size: handle.size,
            stored,
            computed,
        });
    }
    match block_type {
        BLOCK_TYPE_RAW => Ok(Cow::Borrowed(contents)),
        BLOCK_TYPE_SNAPPY => decompress(contents, handle).map(Cow::Owned),
        other => Err(Error::BadBlockType {
            offset: handle.offset,
            size: handle.size,
            block_type: other,
        }),
    }
}

fn decompress(contents: &[u8], handle: BlockHandle) -> Result<Vec<u8>, Error> {
    let snappy_err = |error| Error::Snappy {
        offset: handle.offset,
        size: handle.size,
        error,
    };
    let claimed = snap::raw::decompress_len(contents).map_err(snappy_err)?;
    let limit = contents.len().saturating_mul(MAX_SNAPPY_EXPANSION);
    if claimed > limit {
        return Err(Error::DecompressedTooLarge {
            offset: handle.offset,
            size: handle.size,
            claimed,
            limit,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(contents)
        .map_err(snappy_err)
}

/// The uncompressed contents of one block, with its restart array checked.
#[derive(Debug)]
pub(crate) struct Block<'a> {
    data: Cow<'a, [u8]>,
    handle: BlockHandle,
    /// Where the entries end and the restart array begins.
    restart_offset: usize,
    num_restarts: usize,
}

impl<'a> Block<'a> {
    /// Checks the restart array: `num_restarts` fits the block, and every
    /// restart point lies within the entries. `handle` is kept for errors.
    pub(crate) fn new(data: Cow<'a, [u8]>, handle: BlockHandle) -> Result<Block<'a>, Error> {
        let bad = |reason| Error::BadBlockContents {
            offset: handle.offset,
            size: handle.size,
            reason,
        };
        let len = data.len();
        let too_small = || bad(BlockProblem::TooSmall { len });
        let count_at = len.checked_sub(4).ok_or_else(too_small)?;
        let num_restarts = fixed32(&data, count_at).ok_or_else(too_small)?;
        let max = count_at / 4;
        let n = usize::try_from(num_restarts)
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| bad(BlockProblem::TooManyRestarts { num_restarts, max }))?;
        // n <= (len - 4) / 4, so this cannot underflow.
        let restart_offset = count_at - 4 * n;
        let block = Block {
            data,
            handle,
            restart_offset,
            num_restarts: n,
        };
        for index in 0..n {
            let restart = block.restart_point(index)?;
            if restart > restart_offset {
                return Err(bad(BlockProblem::RestartOutOfRange {
                    index,
                    restart: u32::try_from(restart).unwrap_or(u32::MAX),
                    limit: restart_offset,
                }));
            }
        }
        Ok(block)
    }

    pub(crate) fn handle(&self) -> BlockHandle {
        self.handle
    }

    pub(crate) fn data(&self) -> &Cow<'a, [u8]> {
        &self.data
    }

    fn restart_point(&self, index: usize) -> Result<usize, Error> {
        let corrupt = || self.corrupt(self.restart_offset);
        let pos = index
            .checked_mul(4)
            .and_then(|o| o.checked_add(self.restart_offset));
        let value = pos
            .and_then(|p| fixed32(&self.data, p))
            .ok_or_else(corrupt)?;
        usize::try_from(value).map_err(|_| corrupt())
    }

    fn corrupt(&self, entry_offset: usize) -> Error {
        Error::CorruptEntry {
            block_offset: self.handle.offset,
            entry_offset,
        }
    }

    /// Decodes the entry header at `pos`: returns `shared`, the key delta range
    /// and the value range, all within the entries area.
    fn decode_entry(&self, pos: usize) -> Result<(usize, Range<usize>, Range<usize>), Error> {
        let corrupt = || self.corrupt(pos);
        let entries = self.data.get(..self.restart_offset).ok_or_else(corrupt)?;
        let (shared, non_shared, value_len, key_start) =
            match entries.get(pos..pos.saturating_add(3)) {
                // Fast path: three one-byte varints.
                Some(&[a, b, c]) if (a | b | c) < 0x80 => (a.into(), b.into(), c.into(), pos + 3),
                _ => {
                    let (a, p) = varint32(entries, pos).ok_or_else(corrupt)?;
                    let (b, p) = varint32(entries, p).ok_or_else(corrupt)?;
                    let (c, p) = varint32(entries, p).ok_or_else(corrupt)?;
                    (a, b, c, p)
                }
            };
        let to_usize = |v: u32| usize::try_from(v).map_err(|_| corrupt());
        let (shared, non_shared, value_len) = (
            to_usize(shared)?,
            to_usize(non_shared)?,
            to_usize(value_len)?,
        );
        let key_end = key_start.checked_add(non_shared).ok_or_else(corrupt)?;
        let value_end = key_end.checked_add(value_len).ok_or_else(corrupt)?;
        if value_end > entries.len() {
            return Err(corrupt());
        }
        Ok((shared, key_start..key_end, key_end..value_end))
    }
}

/// A position in a [`Block`]: the current entry's full key and value range.
///
/// The cursor holds no borrow of the block, so one cursor (and its key
/// buffer) can be reused across blocks; every call takes the block it runs on.
#[derive(Debug, Default)]
pub(crate) struct BlockCursor {
    /// Offset of the entry the next `advance` decodes.
    next: usize,
    /// Offset of the current entry, for error messages.
    current: usize,
    key: Vec<u8>,
    value: Range<usize>,
}

impl BlockCursor {
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn value_range(&self) -> Range<usize> {
        self.value.clone()
    }

    /// Offset of the current entry inside its block.
    pub(crate) fn entry_offset(&self) -> usize {
        self.current
    }

    /// Positions before the first entry.
    pub(crate) fn seek_to_first(&mut self, block: &Block<'_>) -> Result<(), Error> {
        if block.num_restarts == 0 {
            self.finish(block);
            return Ok(());
        }
        self.seek_to_restart(block, 0)
    }

    fn seek_to_restart(&mut self, block: &Block<'_>, index: usize) -> Result<(), Error> {
        self.key.clear();
        self.next = block.restart_point(index)?;
        self.current = self.next;
        Ok(())
    }

    fn finish(&mut self, block: &Block<'_>) {
        self.next = block.restart_offset;
        self.current = block.restart_offset;
        self.key.clear();
        self.value = 0..0;
    }

    /// Decodes the next entry; `Ok(false)` at the end of the block.
    pub(crate) fn advance(&mut self, block: &Block<'_>) -> Result<bool, Error> {
        if self.next >= block.restart_offset {
            self.finish(block);
            return Ok(false);
        }
        let pos = self.next;
        let decoded = block.decode_entry(pos).and_then(|(shared, delta, value)| {
            if shared > self.key.len() {
                return Err(block.corrupt(pos));
            }
            let delta = block.data.get(delta).ok_or_else(|| block.corrupt(pos))?;
            Ok((shared, delta, value))
        });
        match decoded {
            Ok((shared, delta, value)) => {
                self.key.truncate(shared);
                self.key.extend_from_slice(delta);
                self.current = pos;
                self.next = value.end;
                self.value = value;
                Ok(true)
            }
            Err(e) => {
                self.finish(block);
                Err(e)
            }
        }
    }

    /// Positions at the first entry whose key is `>= target`; `Ok(false)` if
    /// there is none in this block. Binary search over the restart points,
    /// then a linear scan, as TensorFlow's `Block::Iter::Seek` does.
    pub(crate) fn seek(&mut self, block: &Block<'_>, target: &[u8]) -> Result<bool, Error> {
        if block.num_restarts == 0 {
            self.finish(block);
            return Ok(false);
        }
        let result = self.seek_inner(block, target);
        if result.is_err() {
            self.finish(block);
        }
        result
    }

    fn seek_inner(&mut self, block: &Block<'_>, target: &[u8]) -> Result<bool, Error> {
        // Find the last restart point whose key is < target.
        let mut left = 0usize;
        let mut right = block.num_restarts - 1;
        while left < right {
            let mid = left + (right - left).div_ceil(2);
            let pos = block.restart_point(mid)?;
            let (shared, delta, _) = block.decode_entry(pos)?;
            if shared != 0 {
                return Err(block.corrupt(pos));
            }
            let mid_key = block.data.get(delta).ok_or_else(|| block.corrupt(pos))?;
            if mid_key < target {
                left = mid;
            } else {
                right = mid - 1;
            }
        }
        self.seek_to_restart(block, left)?;
        while self.advance(block)? {
            if self.key.as_slice() >= target {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
