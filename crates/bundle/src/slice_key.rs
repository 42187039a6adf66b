//! Index keys of the stored slices of partitioned tensors (docs/format.md §3.8), written with
//! TensorFlow's `OrderedCode`: `num(0) | string(full name) | num(rank) | signed(start),
//! signed(length) per dimension`, a length of -1 meaning the whole dimension.

/// Encodes the index key of one stored slice. `extents` holds `(start, length)` per
/// dimension, with length -1 for a full dimension.
pub fn encode_slice_key(full_name: &[u8], extents: &[(i64, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(full_name.len() + 4 + extents.len() * 4);
    write_num_increasing(&mut out, 0);
    for &b in full_name {
        match b {
            0x00 => out.extend_from_slice(&[0x00, 0xff]),
            0xff => out.extend_from_slice(&[0xff, 0x00]),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
    write_num_increasing(&mut out, extents.len() as u64);
    for &(start, length) in extents {
        write_signed_num_increasing(&mut out, start);
        write_signed_num_increasing(&mut out, length);
    }
    out
}

/// A decoded slice key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceKey {
    /// The partitioned tensor's full name.
    pub name: Vec<u8>,
    /// `(start, length)` per dimension; length -1 means the whole dimension.
    pub extents: Vec<(i64, i64)>,
}

/// Decodes a slice key, or `None` if `key` is not one (it must start with number 0, have
/// rank > 0, and end exactly after the last extent).
pub fn decode_slice_key(key: &[u8]) -> Option<SliceKey> {
    let mut pos = 0;
    if read_num_increasing(key, &mut pos)? != 0 {
        return None;
    }
    let mut name = Vec::new();
    loop {
        let b = *key.get(pos)?;
        pos += 1;
        match b {
            0x00 => {
                let next = *key.get(pos)?;
                pos += 1;
                match next {
                    0x01 => break,
                    0xff => name.push(0x00),
                    _ => return None,
                }
            }
            0xff => {
                if *key.get(pos)? != 0x00 {
                    return None;
                }
                pos += 1;
                name.push(0xff);
            }
            _ => name.push(b),
        }
    }
    let rank = read_num_increasing(key, &mut pos)?;
    // Every extent takes at least two bytes: bound the rank by what is left.
    if rank == 0 || rank > (key.len() - pos) as u64 / 2 {
        return None;
    }
    let mut extents = Vec::with_capacity(rank as usize);
    for _ in 0..rank {
        let start = read_signed_num_increasing(key, &mut pos)?;
        let length = read_signed_num_increasing(key, &mut pos)?;
        extents.push((start, length));
    }
    (pos == key.len()).then_some(SliceKey { name, extents })
}

fn write_num_increasing(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    let kept = bytes.get(skip..).unwrap_or_default();
    out.push(kept.len() as u8);
    out.extend_from_slice(kept);
}

fn read_num_increasing(key: &[u8], pos: &mut usize) -> Option<u64> {
    let len = usize::from(*key.get(*pos)?);
    if len > 8 {
        return None;
    }
    let bytes = key.get(*pos + 1..*pos + 1 + len)?;
    *pos += 1 + len;
    Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Header bits XORed into the first two bytes of an encoding of `len` bytes (index = len).
const H0: [u8; 11] = [
    0, 0x80, 0xc0, 0xe0, 0xf0, 0xf8, 0xfc, 0xfe, 0xff, 0xff, 0xff,
];
const H1: [u8; 11] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xc0];

fn write_signed_num_increasing(out: &mut Vec<u8>, v: i64) {
    let x = if v >= 0 { v as u64 } else { !(v as u64) };
    let bits = 64 - x.leading_zeros() as usize;
    let len = bits / 7 + 1;
    // v as a 10-byte big-endian two's-complement number.
    let sign = if v < 0 { 0xff } else { 0x00 };
    let mut buf = [sign; 10];
    buf[2..].copy_from_slice(&v.to_be_bytes());
    let kept = &mut buf[10 - len..];
    kept[0] ^= H0[len];
    if len > 1 {
        kept[1] ^= H1[len];
    }
    out.extend_from_slice(kept);
}

fn read_signed_num_increasing(key: &[u8], pos: &mut usize) -> Option<i64> {
    let first = *key.get(*pos)?;
    let negative = first & 0x80 == 0;
    let m: u8 = if negative { 0xff } else { 0x00 };
    let f = first ^ m;
    let len = if f != 0xff {
        f.leading_ones() as usize
    } else {
        let second = *key.get(*pos + 1)? ^ m;
        if second < 0x80 {
            8
        } else if second < 0xc0 {
            9
        } else {
            let third = *key.get(*pos + 2)? ^ m;
            if second == 0xc0 && third < 0x80 {
                10
            } else {
                return None;
            }
        }
    };
    let bytes = key.get(*pos..*pos + len)?;
    let mut window = [m; 10];
    window[10 - len..].copy_from_slice(bytes);
    window[10 - len] ^= H0[len];
    if len > 1 {
        window[10 - len + 1] ^= H1[len];
    }
    // The two leading bytes must now be pure sign extension.
    let tail: [u8; 8] = window[2..].try_into().ok()?;
    let v = i64::from_be_bytes(tail);
    if window[0] != m || window[1] != m || (v < 0) != negative {
        return None;
    }
    *pos += len;
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signed(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_signed_num_increasing(&mut out, v);
        out
    }

    #[test]
    fn known_encodings() {
        assert_eq!(signed(0), [0x80]);
        assert_eq!(signed(2), [0x82]);
        assert_eq!(signed(-1), [0x7f]);
        assert_eq!(signed(100), [0xc0, 0x64]);
        assert_eq!(signed(63), [0xbf]);
        assert_eq!(signed(64), [0xc0, 0x40]);
        assert_eq!(signed(-64), [0x40]);
        assert_eq!(signed(-65), [0x3f, 0xbf]);
        assert_eq!(signed(i64::MAX).len(), 10);
        assert_eq!(signed(i64::MIN).len(), 10);
    }

    #[test]
    fn tensorflow_slice_key() {
        // docs/format.md §3.8: the slice 0,2:0,2 of "part/pv".
        let key = encode_slice_key(b"part/pv", &[(0, 2), (0, 2)]);
        let mut want = vec![0x00];
        want.extend_from_slice(b"part/pv");
        want.extend_from_slice(&[0x00, 0x01, 0x01, 0x02, 0x80, 0x82, 0x80, 0x82]);
        assert_eq!(key, want);
        assert_eq!(
            decode_slice_key(&key),
            Some(SliceKey {
                name: b"part/pv".to_vec(),
                extents: vec![(0, 2), (0, 2)]
            })
        );
    }

    #[test]
    fn rejects_non_keys() {
        assert_eq!(decode_slice_key(b""), None);
        assert_eq!(decode_slice_key(b"dense/kernel"), None);
        let key = encode_slice_key(b"a", &[(1, 2)]);
        assert_eq!(decode_slice_key(&key[..key.len() - 1]), None);
        let mut longer = key.clone();
        longer.push(0x80);
        assert_eq!(decode_slice_key(&longer), None);
        // Rank 0.
        assert_eq!(decode_slice_key(&[0x00, b'a', 0x00, 0x01, 0x00]), None);
        // Unescaped 0xff in the name.
        assert_eq!(
            decode_slice_key(&[0x00, 0xff, 0x01, 0x00, 0x01, 0x01, 0x01, 0x80, 0x80]),
            None
        );
    }

    proptest! {
        #[test]
        fn signed_round_trip(v in any::<i64>()) {
            let enc = signed(v);
            let mut pos = 0;
            prop_assert_eq!(read_signed_num_increasing(&enc, &mut pos), Some(v));
            prop_assert_eq!(pos, enc.len());
        }

        #[test]
        fn signed_order_preserved(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(a.cmp(&b), signed(a).cmp(&signed(b)));
        }

        #[test]
        fn key_round_trip(name in proptest::collection::vec(any::<u8>(), 0..20),
                          ext in proptest::collection::vec((any::<i64>(), -1i64..1000), 1..5)) {
            let key = encode_slice_key(&name, &ext);
            prop_assert_eq!(decode_slice_key(&key), Some(SliceKey { name, extents: ext }));
        }

        #[test]
        fn decode_never_panics(key in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_slice_key(&key);
        }
    }
}
