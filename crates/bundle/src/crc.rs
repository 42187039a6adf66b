//! CRC32C helpers: TensorFlow's masking and a parallel checksum for large buffers.

use rayon::prelude::*;

pub(crate) use ckpt_table::{mask_crc as mask, unmask_crc as unmask};

/// Buffers at least this long are checksummed in parallel chunks.
pub(crate) const PAR_THRESHOLD: usize = 8 << 20;
const CHUNK: usize = 4 << 20;

/// `crc32c(bytes)`, split across rayon threads for large buffers and recombined with
/// `crc32c_combine`, so one large tensor still uses every core.
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    crc32c_append(0, bytes)
}

/// Extends `crc` with `bytes`, as [`crc32c`] does.
pub(crate) fn crc32c_append(crc: u32, bytes: &[u8]) -> u32 {
    if bytes.len() < PAR_THRESHOLD {
        return ::crc32c::crc32c_append(crc, bytes);
    }
    bytes
        .par_chunks(CHUNK)
        .map(|c| (::crc32c::crc32c(c), c.len()))
        .collect::<Vec<_>>()
        .into_iter()
        .fold(crc, |acc, (c, len)| ::crc32c::crc32c_combine(acc, c, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_matches_serial() {
        let data: Vec<u8> = (0..(PAR_THRESHOLD + CHUNK / 3))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        assert_eq!(crc32c(&data), ::crc32c::crc32c(&data));
        assert_eq!(
            crc32c_append(0x1234, &data),
            ::crc32c::crc32c_append(0x1234, &data)
        );
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(mask(0), 0xA282_EAD8);
        assert_eq!(unmask(mask(0xdead_beef)), 0xdead_beef);
    }
}
