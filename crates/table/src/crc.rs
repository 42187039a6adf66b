//! CRC32C and TensorFlow's CRC masking (docs/format.md §1).
//!
//! TensorFlow never stores a raw CRC next to the data it covers: a CRC of a
//! string that itself contains CRCs is weak, so stored values are rotated and
//! offset ("masked").

const MASK_DELTA: u32 = 0xa282_ead8;

/// `Mask(crc)`: rotate right by 15 bits, then add 0xa282ead8 (wrapping).
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverse of [`mask_crc`].
pub fn unmask_crc(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_right(17)
}

/// Masked CRC32C (Castagnoli) of `data`, as TensorFlow stores it.
pub fn crc32c_masked(data: &[u8]) -> u32 {
    mask_crc(crc32c::crc32c(data))
}

/// The masked checksum a block trailer stores: CRC32C over the stored block
/// bytes followed by the one type byte.
pub(crate) fn block_checksum(contents: &[u8], block_type: u8) -> u32 {
    mask_crc(crc32c::crc32c_append(
        crc32c::crc32c(contents),
        &[block_type],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn mask_of_zero() {
        assert_eq!(mask_crc(0), 0xa282_ead8);
        assert_eq!(crc32c_masked(b""), 0xa282_ead8);
    }

    #[test]
    fn unmask_inverts_mask() {
        for crc in [0u32, 1, 0xffff_ffff, 0xe306_9283, 0x8000_0000, 0x1234_5678] {
            assert_eq!(unmask_crc(mask_crc(crc)), crc);
            assert_ne!(mask_crc(crc), crc);
        }
    }

    #[test]
    fn empty_block_trailer_matches_tensorflow() {
        // The metaindex block of docs/format.md §2.10: trailer crc c0 f2 a1 b0.
        let empty = [0u8, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(
            block_checksum(&empty, 0),
            u32::from_le_bytes([0xc0, 0xf2, 0xa1, 0xb0])
        );
    }
}
