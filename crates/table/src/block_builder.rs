//! Building one block of prefix-compressed entries (TensorFlow's `BlockBuilder`).

use crate::coding::{put_fixed32, put_varint};
use crate::error::Error;

#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buffer: Vec<u8>,
    restarts: Vec<u32>,
    /// Entries since the last restart point.
    counter: usize,
    restart_interval: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    /// `restart_interval` 0 is treated as 1 (TF asserts it is at least 1).
    pub(crate) fn new(restart_interval: usize) -> BlockBuilder {
        BlockBuilder {
            buffer: Vec::new(),
            restarts: vec![0],
            counter: 0,
            restart_interval: restart_interval.max(1),
            last_key: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Size of the block if it were finished now: entries, restart array, count.
    pub(crate) fn size_estimate(&self) -> usize {
        self.buffer
            .len()
            .saturating_add(self.restarts.len().saturating_mul(4))
            .saturating_add(4)
    }

    /// Appends an entry. The caller guarantees key order.
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let fits = |len: usize| u32::try_from(len).map_err(|_| Error::EntryTooLarge { len });
        let restart = self.counter >= self.restart_interval;
        let shared = if restart {
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        let non_shared = key.len() - shared;
        let lens = [fits(shared)?, fits(non_shared)?, fits(value.len())?];
        if restart {
            let offset = u32::try_from(self.buffer.len()).map_err(|_| Error::BlockTooLarge {
                len: self.buffer.len(),
            })?;
            self.restarts.push(offset);
            self.counter = 0;
        }
        for len in lens {
            put_varint(&mut self.buffer, u64::from(len));
        }
        let delta = key.get(shared..).unwrap_or_default();
        self.buffer.extend_from_slice(delta);
        self.buffer.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(delta);
        self.counter += 1;
        Ok(())
    }

    /// Appends the restart array and returns the finished block. Call
    /// [`reset`](Self::reset) before adding again.
    pub(crate) fn finish(&mut self) -> Result<&[u8], Error> {
        let count = u32::try_from(self.restarts.len()).map_err(|_| Error::BlockTooLarge {
            len: self.buffer.len(),
        })?;
        for &r in &self.restarts {
            put_fixed32(&mut self.buffer, r);
        }
        put_fixed32(&mut self.buffer, count);
        Ok(&self.buffer)
    }

    pub(crate) fn reset(&mut self) {
        self.buffer.clear();
        self.restarts.clear();
        self.restarts.push(0);
        self.counter = 0;
        self.last_key.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_block_is_eight_bytes() -> Result<(), Error> {
        let mut b = BlockBuilder::new(16);
        assert_eq!(b.size_estimate(), 8);
        assert_eq!(b.finish()?, [0, 0, 0, 0, 1, 0, 0, 0]);
        Ok(())
    }

    #[test]
    fn prefix_compression_and_restarts() -> Result<(), Error> {
        let mut b = BlockBuilder::new(2);
        b.add(b"abc", b"1")?;
        b.add(b"abd", b"2")?;
        b.add(b"abe", b"3")?;
        let expected: &[u8] = &[
            0, 3, 1, b'a', b'b', b'c', b'1', // restart 0
            2, 1, 1, b'd', b'2', // shares "ab"
            0, 3, 1, b'a', b'b', b'e', b'3', // restart at 12
            0, 0, 0, 0, 12, 0, 0, 0, 2, 0, 0, 0,
        ];
        assert_eq!(b.finish()?, expected);
        b.reset();
        assert!(b.is_empty());
        assert_eq!(b.finish()?, [0, 0, 0, 0, 1, 0, 0, 0]);
        Ok(())
    }
}
