//! Block handles and the 48-byte footer (docs/format.md §2.5, §2.6).

use crate::coding::{put_varint, varint64};
use crate::error::{Error, HandleLocation};

/// Where a block lives in the file: `offset` of its first byte and `size` of
/// its contents, not counting the 5-byte trailer that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHandle {
    /// Byte offset of the block's first byte in the file.
    pub offset: u64,
    /// Length of the block's contents in bytes, without the 5-byte trailer.
    pub size: u64,
}

impl BlockHandle {
    /// Two varint64s take at most 20 bytes.
    pub const MAX_ENCODED_LEN: usize = 20;

    /// Decodes a handle at the start of `bytes`, returning it and the number
    /// of bytes used. Trailing bytes are allowed (TF's reader allows them in
    /// index values).
    pub fn decode(bytes: &[u8]) -> Option<(BlockHandle, usize)> {
        let (offset, pos) = varint64(bytes, 0)?;
        let (size, pos) = varint64(bytes, pos)?;
        Some((BlockHandle { offset, size }, pos))
    }

    /// Appends the varint encoding of this handle to `out`.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        put_varint(out, self.offset);
        put_varint(out, self.size);
    }

    /// The byte range of the contents and of the 5-byte trailer inside a file
    /// of `file_len` bytes, or `HandlePastEnd` if either does not fit.
    pub(crate) fn ranges(
        &self,
        file_len: usize,
    ) -> Result<(std::ops::Range<usize>, std::ops::Range<usize>), Error> {
        let past_end = || Error::HandlePastEnd {
            offset: self.offset,
            size: self.size,
            file_len,
        };
        let start = usize::try_from(self.offset).map_err(|_| past_end())?;
        let size = usize::try_from(self.size).map_err(|_| past_end())?;
        let end = start.checked_add(size).ok_or_else(past_end)?;
        let trailer_end = end.checked_add(BLOCK_TRAILER_LEN).ok_or_else(past_end)?;
        if trailer_end > file_len {
            return Err(past_end());
        }
        Ok((start..end, end..trailer_end))
    }
}

/// One type byte and a masked CRC32C after every block.
pub(crate) const BLOCK_TRAILER_LEN: usize = 5;

/// Length of the footer at the end of every table.
pub const FOOTER_LEN: usize = 48;

/// The handles take the first 40 bytes of the footer, zero-padded.
const FOOTER_HANDLES_LEN: usize = 2 * BlockHandle::MAX_ENCODED_LEN;

/// `kTableMagicNumber`, stored little-endian in the last 8 bytes.
pub const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) metaindex: BlockHandle,
    pub(crate) index: BlockHandle,
}

impl Footer {
    /// Decodes the footer at the end of `file`: magic first, then the handles.
    pub(crate) fn decode(file: &[u8]) -> Result<Footer, Error> {
        let too_short = Error::TooShort {
            len: file.len(),
            need: FOOTER_LEN,
        };
        let start = file.len().checked_sub(FOOTER_LEN).ok_or(too_short)?;
        let footer = file.get(start..).unwrap_or_default();
        let (handles, magic) = footer
            .split_at_checked(FOOTER_HANDLES_LEN)
            .unwrap_or_default();
        let magic: [u8; 8] = magic.try_into().map_err(|_| Error::TooShort {
            len: file.len(),
            need: FOOTER_LEN,
        })?;
        let found = u64::from_le_bytes(magic);
        if found != TABLE_MAGIC {
            return Err(Error::BadMagic {
                found,
                expected: TABLE_MAGIC,
            });
        }
        let bad = || Error::BadHandle {
            location: HandleLocation::Footer,
        };
        let (metaindex, used) = BlockHandle::decode(handles).ok_or_else(bad)?;
        let rest = handles.get(used..).ok_or_else(bad)?;
        let (index, _) = BlockHandle::decode(rest).ok_or_else(bad)?;
        Ok(Footer { metaindex, index })
    }

    pub(crate) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut handles = Vec::with_capacity(FOOTER_HANDLES_LEN);
        self.metaindex.encode_to(&mut handles);
        self.index.encode_to(&mut handles);
        let mut out = [0u8; FOOTER_LEN];
        // Two encoded handles never exceed 40 bytes, so nothing is cut here.
        for (dst, src) in out.iter_mut().zip(&handles) {
            *dst = *src;
        }
        let (_, magic) = out.split_at_mut(FOOTER_HANDLES_LEN);
        magic.copy_from_slice(&TABLE_MAGIC.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trip_matches_tensorflow_bytes() -> Result<(), Error> {
        let footer = Footer {
            metaindex: BlockHandle {
                offset: 123,
                size: 8,
            },
            index: BlockHandle {
                offset: 136,
                size: 14,
            },
        };
        let bytes = footer.encode();
        assert_eq!(bytes[..5], [0x7b, 0x08, 0x88, 0x01, 0x0e]);
        assert!(bytes[5..40].iter().all(|&b| b == 0));
        assert_eq!(
            bytes[40..],
            [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]
        );
        assert_eq!(Footer::decode(&bytes)?, footer);
        Ok(())
    }

    #[test]
    fn largest_handles_fit_the_footer() -> Result<(), Error> {
        let max = BlockHandle {
            offset: u64::MAX,
            size: u64::MAX,
        };
        let footer = Footer {
            metaindex: max,
            index: max,
        };
        assert_eq!(Footer::decode(&footer.encode())?, footer);
        Ok(())
    }

    #[test]
    fn ranges_check_overflow_and_bounds() {
        let h = BlockHandle {
            offset: u64::MAX,
            size: 1,
        };
        assert!(matches!(h.ranges(100), Err(Error::HandlePastEnd { .. })));
        let h = BlockHandle {
            offset: 10,
            size: 85,
        };
        assert!(matches!(h.ranges(100), Ok((a, b)) if a == (10..95) && b == (95..100)));
        let h = BlockHandle {
            offset: 10,
            size: 86,
        };
        assert!(matches!(
            h.ranges(100),
            Err(Error::HandlePastEnd {
                offset: 10,
                size: 86,
                file_len: 100
            })
        ));
    }
}
