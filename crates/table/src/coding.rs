//! Little-endian fixed-width integers and LEB128 varints (docs/format.md §1).
//!
//! Decoders take a slice and a position and return the value and the position
//! after it, or `None` when the bytes run out or the varint overflows its type.

/// Reads a little-endian `u32` at `pos`.
pub(crate) fn fixed32(bytes: &[u8], pos: usize) -> Option<u32> {
    let end = pos.checked_add(4)?;
    let b: [u8; 4] = bytes.get(pos..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Reads a varint32 at `pos`. At most 5 bytes; bits above 32 are an overflow.
pub(crate) fn varint32(bytes: &[u8], pos: usize) -> Option<(u32, usize)> {
    let (v, next) = varint(bytes, pos, 5)?;
    let v = u32::try_from(v).ok()?;
    Some((v, next))
}

/// Reads a varint64 at `pos`. At most 10 bytes; bits above 64 are an overflow.
pub(crate) fn varint64(bytes: &[u8], pos: usize) -> Option<(u64, usize)> {
    varint(bytes, pos, 10)
}

fn varint(bytes: &[u8], pos: usize, max_len: usize) -> Option<(u64, usize)> {
    let mut result: u64 = 0;
    for i in 0..max_len {
        let at = pos.checked_add(i)?;
        let byte = *bytes.get(at)?;
        let shift = 7 * i as u32;
        let low = u64::from(byte & 0x7f);
        // The tenth byte of a varint64 may only contribute the top bit.
        if shift == 63 && low > 1 {
            return None;
        }
        result |= low << shift;
        if byte & 0x80 == 0 {
            return Some((result, at + 1));
        }
    }
    None
}

pub(crate) fn put_fixed32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() -> Result<(), String> {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut buf = vec![0xaa];
            put_varint(&mut buf, v);
            let (got, next) = varint64(&buf, 1).ok_or("decode failed")?;
            assert_eq!((got, next), (v, buf.len()));
        }
        Ok(())
    }

    #[test]
    fn known_encodings() {
        let mut buf = Vec::new();
        put_varint(&mut buf, 136);
        assert_eq!(buf, [0x88, 0x01]);
        assert_eq!(varint32(&[0x88, 0x01], 0), Some((136, 2)));
        assert_eq!(fixed32(&[0x01, 0, 0, 0], 0), Some(1));
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert_eq!(varint32(&[0x80], 0), None);
        assert_eq!(varint32(&[], 0), None);
        // Five bytes that carry more than 32 bits.
        assert_eq!(varint32(&[0xff, 0xff, 0xff, 0xff, 0x1f], 0), None);
        assert_eq!(
            varint32(&[0xff, 0xff, 0xff, 0xff, 0x0f], 0),
            Some((u32::MAX, 5))
        );
        // Six continuation bytes for a varint32.
        assert_eq!(varint32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 0), None);
        // varint64 with an eleventh byte, or a tenth byte above 1.
        assert_eq!(varint64(&[0xff; 11], 0), None);
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(varint64(&max, 0), Some((u64::MAX, 10)));
        max[9] = 0x02;
        assert_eq!(varint64(&max, 0), None);
        assert_eq!(fixed32(&[1, 2, 3], 0), None);
        assert_eq!(fixed32(&[1, 2, 3, 4], usize::MAX), None);
    }
}
