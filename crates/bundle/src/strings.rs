//! The data layouts of string and variant tensors (docs/format.md §3.5 b and c).
//!
//! String tensor: `varint64 len[N] | fixed32 Mask(crc of lengths) | bytes str[N]`, where
//! the length checksum covers each length as a 4-byte uint32 (8 bytes above 4 GiB) in the
//! writer's byte order, and the entry checksum continues from it over the four stored
//! checksum bytes and then the string bytes.
//!
//! Variant tensor: per element `varint64 len | proto bytes | fixed32 Mask(running crc)`,
//! the running crc covering the length as 8 bytes, the proto bytes and each stored checksum.

use crate::crc::{crc32c_append, mask, unmask};

/// Where and why a layout check failed: the offset is relative to the tensor's first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayoutError {
    pub offset: u64,
    pub reason: String,
}

fn layout_err(offset: usize, reason: impl Into<String>) -> LayoutError {
    LayoutError {
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Decodes a varint64 at `buf[pos..]`, returning the value and the position after it.
pub(crate) fn read_varint64(buf: &[u8], pos: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(pos.checked_add(i)?)?;
        let bits = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return None; // more than 64 bits
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, pos + i + 1));
        }
    }
    None
}

pub(crate) fn put_varint64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Extends `crc` with a string length as TensorFlow checksums it.
fn crc_length(crc: u32, len: u64, big_endian: bool) -> u32 {
    match u32::try_from(len) {
        Ok(l) if big_endian => ::crc32c::crc32c_append(crc, &l.to_be_bytes()),
        Ok(l) => ::crc32c::crc32c_append(crc, &l.to_le_bytes()),
        Err(_) if big_endian => ::crc32c::crc32c_append(crc, &len.to_be_bytes()),
        Err(_) => ::crc32c::crc32c_append(crc, &len.to_le_bytes()),
    }
}

/// What checking a string tensor's bytes established.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StringLayout {
    /// The unmasked checksum of the whole tensor.
    pub crc: u32,
    /// Bytes taken by the varint lengths.
    pub lengths_len: usize,
}

/// Checks the layout of `n` strings in `buf` (the tensor's bytes, as stored) and computes
/// the tensor checksum, without allocating. `big_endian`: the file was written on a
/// big-endian machine.
pub(crate) fn check_strings(
    buf: &[u8],
    n: u64,
    big_endian: bool,
) -> Result<StringLayout, LayoutError> {
    if buf.is_empty() {
        // TensorFlow treats size 0 as "nothing to read".
        if n == 0 {
            return Ok(StringLayout {
                crc: 0,
                lengths_len: 0,
            });
        }
        return Err(layout_err(0, format!("no bytes for {n} strings")));
    }
    // Each length takes at least one byte: refuse counts the bytes cannot hold before
    // looping over them.
    if n > buf.len() as u64 {
        return Err(layout_err(
            0,
            format!(
                "{n} strings need at least {n} bytes of lengths, but the tensor has {} bytes",
                buf.len()
            ),
        ));
    }
    let mut pos = 0usize;
    let mut crc = 0u32;
    let mut total: u64 = 0;
    for i in 0..n {
        let (len, next) = read_varint64(buf, pos).ok_or_else(|| {
            layout_err(
                pos,
                format!("length of string {i} is truncated or not a varint64"),
            )
        })?;
        crc = crc_length(crc, len, big_endian);
        total = total
            .checked_add(len)
            .ok_or_else(|| layout_err(pos, "string lengths overflow"))?;
        pos = next;
    }
    let lengths_len = pos;
    let stored_bytes: [u8; 4] = buf
        .get(pos..pos + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| layout_err(pos, "length checksum is truncated"))?;
    let stored = if big_endian {
        u32::from_be_bytes(stored_bytes)
    } else {
        u32::from_le_bytes(stored_bytes)
    };
    if unmask(stored) != crc {
        return Err(layout_err(
            pos,
            format!(
                "length checksum mismatch (stored 0x{:08x}, computed 0x{crc:08x})",
                unmask(stored)
            ),
        ));
    }
    crc = ::crc32c::crc32c_append(crc, &stored_bytes);
    pos += 4;
    let rest = buf.get(pos..).unwrap_or_default();
    if total != rest.len() as u64 {
        return Err(layout_err(
            pos,
            format!(
                "string lengths add up to {total} bytes, but {} bytes follow them",
                rest.len()
            ),
        ));
    }
    crc = crc32c_append(crc, rest);
    Ok(StringLayout { crc, lengths_len })
}

/// Splits a string tensor already accepted by [`check_strings`] into its elements.
pub(crate) fn split_strings(buf: &[u8], n: u64, layout: StringLayout) -> Vec<&[u8]> {
    if buf.is_empty() {
        return Vec::new();
    }
    // n <= buf.len() was checked, so this capacity is bounded by real bytes.
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut pos = 0usize;
    let mut data = layout.lengths_len + 4;
    for _ in 0..n {
        let Some((len, next)) = read_varint64(buf, pos) else {
            break;
        };
        pos = next;
        let end = data.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        out.push(buf.get(data..end).unwrap_or_default());
        data = end;
    }
    out
}

/// Encodes the header of a string tensor (varint lengths and the masked length checksum)
/// and returns it with the running checksum after it, ready to be extended by the strings.
pub(crate) fn encode_string_header<'s>(strings: impl Iterator<Item = &'s [u8]>) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut crc = 0u32;
    for s in strings {
        let len = s.len() as u64;
        put_varint64(&mut out, len);
        crc = crc_length(crc, len, false);
    }
    let checksum = mask(crc).to_le_bytes();
    out.extend_from_slice(&checksum);
    crc = ::crc32c::crc32c_append(crc, &checksum);
    (out, crc)
}

/// Checks and splits `n` variant elements (serialized `VariantTensorDataProto`s).
pub(crate) fn decode_variants(buf: &[u8], n: u64) -> Result<(u32, Vec<&[u8]>), LayoutError> {
    if buf.is_empty() && n == 0 {
        return Ok((0, Vec::new()));
    }
    // Each element takes at least a one-byte length and a four-byte checksum.
    if n > (buf.len() / 5) as u64 {
        return Err(layout_err(
            0,
            format!(
                "{n} variant elements need at least {} bytes, but the tensor has {}",
                n.saturating_mul(5),
                buf.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut pos = 0usize;
    let mut crc = 0u32;
    for i in 0..n {
        let (len, next) = read_varint64(buf, pos).ok_or_else(|| {
            layout_err(
                pos,
                format!("length of element {i} is truncated or not a varint64"),
            )
        })?;
        crc = ::crc32c::crc32c_append(crc, &len.to_le_bytes());
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| next.checked_add(l))
            .filter(|&e| e <= buf.len())
            .ok_or_else(|| {
                layout_err(
                    next,
                    format!("element {i} of {len} bytes runs past the tensor's end"),
                )
            })?;
        let proto = buf.get(next..end).unwrap_or_default();
        crc = crc32c_append(crc, proto);
        let stored_bytes: [u8; 4] = buf
            .get(end..end + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| layout_err(end, format!("checksum of element {i} is truncated")))?;
        let stored = u32::from_le_bytes(stored_bytes);
        if unmask(stored) != crc {
            return Err(layout_err(
                end,
                format!(
                    "checksum of element {i} mismatch (stored 0x{:08x}, computed 0x{crc:08x})",
                    unmask(stored)
                ),
            ));
        }
        crc = ::crc32c::crc32c_append(crc, &stored_bytes);
        out.push(proto);
        pos = end + 4;
    }
    if pos != buf.len() {
        return Err(layout_err(
            pos,
            format!("{} bytes follow the last element", buf.len() - pos),
        ));
    }
    Ok((crc, out))
}

/// Encodes variant elements; returns the bytes and the tensor checksum (unmasked).
pub(crate) fn encode_variants<'s>(elements: impl Iterator<Item = &'s [u8]>) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut crc = 0u32;
    for e in elements {
        let len = e.len() as u64;
        put_varint64(&mut out, len);
        crc = ::crc32c::crc32c_append(crc, &len.to_le_bytes());
        out.extend_from_slice(e);
        crc = ::crc32c::crc32c_append(crc, e);
        let checksum = mask(crc).to_le_bytes();
        out.extend_from_slice(&checksum);
        crc = ::crc32c::crc32c_append(crc, &checksum);
    }
    (out, crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(strings: &[&[u8]]) -> (Vec<u8>, u32) {
        let (mut out, mut crc) = encode_string_header(strings.iter().copied());
        for s in strings {
            out.extend_from_slice(s);
            crc = ::crc32c::crc32c_append(crc, s);
        }
        (out, crc)
    }

    #[test]
    fn hello_scalar_matches_tensorflow() -> Result<(), LayoutError> {
        let (bytes, crc) = encode(&[b"hello"]);
        assert_eq!(
            bytes,
            [0x05, 0xd9, 0xc6, 0x9c, 0x43, b'h', b'e', b'l', b'l', b'o']
        );
        // The entry crc TensorFlow stored for "s" in docs/format.md §2.10: 35 ec e0 c0 29.
        assert_eq!(mask(crc), 0x29c0_e0ec);
        let layout = check_strings(&bytes, 1, false)?;
        assert_eq!(layout.crc, crc);
        assert_eq!(split_strings(&bytes, 1, layout), [b"hello"]);
        Ok(())
    }

    #[test]
    fn sv_vector_matches_tensorflow() -> Result<(), LayoutError> {
        let (bytes, crc) = encode(&[b"a", b"bc", b""]);
        assert_eq!(
            bytes,
            [0x01, 0x02, 0x00, 0xab, 0xfb, 0xc9, 0xd8, b'a', b'b', b'c']
        );
        assert_eq!(mask(crc), 0x2fe4_bfad);
        let layout = check_strings(&bytes, 3, false)?;
        let parts = split_strings(&bytes, 3, layout);
        assert_eq!(parts, [&b"a"[..], b"bc", b""]);
        Ok(())
    }

    #[test]
    fn empty_string_tensor_is_four_bytes() -> Result<(), LayoutError> {
        let (bytes, crc) = encode(&[]);
        assert_eq!(bytes, [0xd8, 0xea, 0x82, 0xa2]);
        assert_eq!(check_strings(&bytes, 0, false)?.crc, crc);
        assert_eq!(check_strings(&[], 0, false)?.crc, 0);
        Ok(())
    }

    #[test]
    fn hostile_strings() {
        let (bytes, _) = encode(&[b"a", b"bc", b""]);
        // Claimed count far beyond the bytes: refused before any loop or allocation.
        let e = check_strings(&bytes, u64::MAX, false).err();
        assert!(e.is_some_and(|e| e.reason.contains("need at least")));
        // Wrong count: checksum over lengths no longer matches or lengths disagree.
        let reason = |r: Result<StringLayout, LayoutError>| r.err().map(|e| e.reason);
        assert!(reason(check_strings(&bytes, 2, false))
            .is_some_and(|r| r.starts_with("length checksum mismatch")));
        assert_eq!(
            reason(check_strings(&bytes, 4, false)).as_deref(),
            Some("length checksum is truncated")
        );
        // Truncated.
        for cut in 0..bytes.len() {
            let r = reason(check_strings(&bytes[..cut], 3, false)).unwrap_or_default();
            assert!(
                ["no bytes", "need at least", "truncated", "follow them"]
                    .iter()
                    .any(|w| r.contains(w)),
                "cut {cut}: {r}"
            );
        }
        // Flipped bits in the lengths or the checksum are caught by the length checksum.
        for i in 0..7 {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(
                reason(check_strings(&b, 3, false))
                    .is_some_and(|r| r.starts_with("length checksum mismatch")),
                "flip {i}"
            );
        }
        // A length of 2^64-1 does not overflow anything.
        let mut huge = Vec::new();
        put_varint64(&mut huge, u64::MAX);
        put_varint64(&mut huge, 1);
        huge.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            reason(check_strings(&huge, 2, false)).as_deref(),
            Some("string lengths overflow")
        );
        // Overlong varint.
        assert_eq!(
            reason(check_strings(&[0xff; 12], 1, false)).as_deref(),
            Some("length of string 0 is truncated or not a varint64")
        );
    }

    #[test]
    fn big_endian_strings() -> Result<(), LayoutError> {
        // A big-endian writer checksums lengths as big-endian u32 and stores the checksum BE.
        let len_crc = ::crc32c::crc32c(&5u32.to_be_bytes());
        let mut bytes = vec![5];
        bytes.extend_from_slice(&mask(len_crc).to_be_bytes());
        bytes.extend_from_slice(b"hello");
        let layout = check_strings(&bytes, 1, true)?;
        assert!(check_strings(&bytes, 1, false)
            .is_err_and(|e| e.reason.starts_with("length checksum mismatch")));
        assert_eq!(split_strings(&bytes, 1, layout), [b"hello"]);
        Ok(())
    }

    #[test]
    fn variants_round_trip() -> Result<(), LayoutError> {
        let elems: [&[u8]; 3] = [b"\x0a\x03abc", b"", b"\x12\x01z"];
        let (bytes, crc) = encode_variants(elems.iter().copied());
        let (crc2, parts) = decode_variants(&bytes, 3)?;
        assert_eq!(crc, crc2);
        assert_eq!(parts, elems);
        let reason = |r: Result<(u32, Vec<&[u8]>), LayoutError>| r.err().map(|e| e.reason);
        assert_eq!(
            reason(decode_variants(&bytes, 4)).as_deref(),
            Some("length of element 3 is truncated or not a varint64")
        );
        assert_eq!(
            reason(decode_variants(&bytes, 2)).as_deref(),
            Some("8 bytes follow the last element")
        );
        let mut bad = bytes.clone();
        bad[2] ^= 1;
        assert!(reason(decode_variants(&bad, 3))
            .is_some_and(|r| r.starts_with("checksum of element 0 mismatch")));
        assert!(
            reason(decode_variants(&bytes, u64::MAX)).is_some_and(|r| r.contains("need at least"))
        );
        Ok(())
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint64(&mut b, v);
            assert_eq!(read_varint64(&b, 0), Some((v, b.len())));
        }
        assert_eq!(read_varint64(&[0x80], 0), None);
        assert_eq!(
            read_varint64(
                &[0xff; 9].iter().copied().chain([0x02]).collect::<Vec<_>>(),
                0
            ),
            None
        );
    }
}
