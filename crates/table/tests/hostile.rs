//! Corrupt and hostile inputs: every one gives an `Err`, never a panic, and
//! never allocates by an untrusted size.

mod common;

use std::collections::BTreeMap;

use ckpt_table::{BlockProblem, Error, HandleLocation, Table, TableOptions};
use common::{
    build, encoded_handle, file_with_data_block, hex, raw_block, read_everything, RawFile,
    TestResult, TF_INDEX_HEX,
};

fn tf_probes() -> Vec<Vec<u8>> {
    [
        &b""[..],
        b"W",
        b"b",
        b"s",
        b"step",
        b"sv",
        b"a",
        b"t",
        b"\xff",
    ]
    .iter()
    .map(|k| k.to_vec())
    .collect()
}

#[test]
fn empty_and_short_files() {
    for len in [0, 1, 47] {
        let bytes = vec![0u8; len];
        let err = Table::open(&bytes).err();
        assert!(
            matches!(err, Some(Error::TooShort { len: l, need: 48 }) if l == len),
            "{err:?}"
        );
    }
    let err = Table::open(&[0u8; 20]).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("file too short for footer (20 bytes, need 48)")
    );
}

#[test]
fn bad_magic() -> TestResult {
    let mut file = hex(TF_INDEX_HEX)?;
    if let Some(last) = file.last_mut() {
        *last = 0xdc;
    }
    let err = Table::open(&file).err();
    assert!(
        matches!(
            err,
            Some(Error::BadMagic {
                found: 0xdc47_7524_8b80_fb57,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(matches!(
        Table::open(&[0u8; 48]),
        Err(Error::BadMagic { found: 0, .. })
    ));
    Ok(())
}

/// Flipping any bit of the TF vector gives an error somewhere, or (where the
/// bit is ignored: the metaindex block, which TF never reads either; footer
/// padding; a bit of a footer handle that leaves its value usable) exactly the
/// original results.
#[test]
fn every_single_bit_flip() -> TestResult {
    let file = hex(TF_INDEX_HEX)?;
    let probes = tf_probes();
    let original = read_everything(&file, &probes)?;
    let mut errors = 0;
    let mut same = Vec::new();
    for byte in 0..file.len() {
        for bit in 0..8 {
            let mut flipped = file.clone();
            flipped[byte] ^= 1 << bit;
            match read_everything(&flipped, &probes) {
                Err(_) => errors += 1,
                Ok(seen) => {
                    assert_eq!(seen, original, "byte {byte} bit {bit}");
                    same.push(byte);
                }
            }
        }
    }
    // Every byte outside the metaindex block and the footer is covered by a
    // checksum that is verified.
    assert!(
        same.iter().all(|&b| (123..136).contains(&b) || b >= 155),
        "{same:?}"
    );
    // The footer padding (bytes 5..40 of the footer) is ignored.
    for pad in 160..195 {
        assert_eq!(
            same.iter().filter(|&&b| b == pad).count(),
            8,
            "padding byte {pad}"
        );
    }
    assert!(errors > (155 - 13) * 8);
    Ok(())
}

#[test]
fn truncation_at_every_length() -> Result<(), Box<dyn std::error::Error>> {
    let tf = hex(TF_INDEX_HEX)?;
    let model: BTreeMap<Vec<u8>, Vec<u8>> = (0..60u32)
        .map(|i| (format!("key{i:03}").into_bytes(), vec![i as u8; 9]))
        .collect();
    let multi = build(
        &model,
        TableOptions {
            block_size: 128,
            ..TableOptions::default()
        },
    )?;
    assert!(Table::open(&multi)?.num_data_blocks() > 3);
    for file in [&tf, &multi] {
        for len in 0..file.len() {
            let truncated = file.get(..len).ok_or("slice")?;
            let result = read_everything(truncated, &tf_probes());
            // Cutting the file moves the footer: what is left is too short, has no magic,
            // or points outside the file.
            assert!(
                matches!(
                    result,
                    Err(Error::TooShort { .. }
                        | Error::BadMagic { .. }
                        | Error::HandlePastEnd { .. })
                ),
                "length {len}: {result:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn index_handle_past_end_of_file() {
    let mut file = RawFile::default();
    let meta = file.push_block(&raw_block(&[], &[0]), 0);
    let bytes = file.finish(meta, (0, 1000));
    let err = Table::open(&bytes).err();
    assert!(
        matches!(
            err,
            Some(Error::HandlePastEnd {
                offset: 0,
                size: 1000,
                file_len: 61
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("block handle (0, 1000) past end of file (61 bytes)")
    );
}

#[test]
fn handles_whose_end_overflows() {
    for (offset, size) in [
        (u64::MAX, 10),
        (1 << 63, 1 << 63),
        (u64::MAX - 4, 0),
        (0, u64::MAX),
    ] {
        let mut file = RawFile::default();
        let meta = file.push_block(&raw_block(&[], &[0]), 0);
        let bytes = file.finish(meta, (offset, size));
        let err = Table::open(&bytes).err();
        assert!(
            matches!(err, Some(Error::HandlePastEnd { offset: o, size: s, .. }) if o == offset && s == size),
            "{err:?}"
        );
    }
}

#[test]
fn footer_handle_varint_overflow() {
    // Eleven continuation bytes: not a varint64.
    let mut bytes = vec![0xffu8; 11];
    bytes.resize(40, 0);
    bytes.extend_from_slice(&[0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]);
    let err = Table::open(&bytes).err();
    assert!(
        matches!(
            err,
            Some(Error::BadHandle {
                location: HandleLocation::Footer
            })
        ),
        "{err:?}"
    );
}

#[test]
fn index_entry_past_end_of_file_or_overflowing() {
    for (offset, size) in [(0, 500), (u64::MAX, 1), (7, u64::MAX - 7)] {
        let mut file = RawFile::default();
        let meta = file.push_block(&raw_block(&[], &[0]), 0);
        let handle = encoded_handle(offset, size);
        let index = file.push_block(&raw_block(&[(0, b"k", &handle)], &[0]), 0);
        let bytes = file.finish(meta, index);
        let err = Table::open(&bytes).err();
        assert!(matches!(err, Some(Error::HandlePastEnd { .. })), "{err:?}");
    }
}

#[test]
fn index_entry_value_is_not_a_handle() {
    let mut file = RawFile::default();
    let meta = file.push_block(&raw_block(&[], &[0]), 0);
    let index = file.push_block(&raw_block(&[(0, b"k", &[0x80])], &[0]), 0);
    let bytes = file.finish(meta, index);
    let err = Table::open(&bytes).err();
    assert!(
        matches!(
            err,
            Some(Error::BadHandle {
                location: HandleLocation::IndexEntry { entry_offset: 0 }
            })
        ),
        "{err:?}"
    );
}

#[test]
fn huge_num_restarts() {
    // In the index block: fails at open.
    let mut file = RawFile::default();
    let meta = file.push_block(&raw_block(&[], &[0]), 0);
    let index = file.push_block(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 0);
    let bytes = file.finish(meta, index);
    let err = Table::open(&bytes).err();
    assert!(
        matches!(
            err,
            Some(Error::BadBlockContents {
                reason: BlockProblem::TooManyRestarts {
                    num_restarts: u32::MAX,
                    max: 1
                },
                ..
            })
        ),
        "{err:?}"
    );

    // In a data block: fails when the block is reached.
    let bytes = file_with_data_block(&[1, 0, 0, 0, 2, 0, 0, 0], 0, b"k");
    assert!(matches!(
        Table::open(&bytes).map(|t| t.get(b"k").err()),
        Ok(Some(Error::BadBlockContents { .. }))
    ));
    assert!(matches!(
        read_everything(&bytes, &[]),
        Err(Error::BadBlockContents { .. })
    ));
}

#[test]
fn blocks_too_small_or_with_stray_restarts() -> TestResult {
    for contents in [&[][..], &[1, 0, 0][..]] {
        let bytes = file_with_data_block(contents, 0, b"k");
        let err = read_everything(&bytes, &[]).err();
        assert!(
            matches!(
                err,
                Some(Error::BadBlockContents {
                    reason: BlockProblem::TooSmall { .. },
                    ..
                })
            ),
            "{err:?}"
        );
    }
    let mut block = raw_block(&[(0, b"a", b"1")], &[0, 99]);
    let bytes = file_with_data_block(&block, 0, b"b");
    let err = read_everything(&bytes, &[]).err();
    assert!(
        matches!(
            err,
            Some(Error::BadBlockContents {
                reason: BlockProblem::RestartOutOfRange { index: 1, .. },
                ..
            })
        ),
        "{err:?}"
    );
    // num_restarts == 0 is an empty block, as in TensorFlow.
    block = vec![0, 1, 1, b'a', b'1', 0, 0, 0, 0];
    let bytes = file_with_data_block(&block, 0, b"b");
    assert_eq!(
        read_everything(&bytes, &[b"a".to_vec()])?
            .first()
            .map(String::as_str),
        Some("get [97] None")
    );
    Ok(())
}

#[test]
fn shared_longer_than_previous_key() {
    let block = raw_block(&[(0, b"ab", b"1"), (3, b"c", b"2")], &[0]);
    let bytes = file_with_data_block(&block, 0, b"b");
    let err = read_everything(&bytes, &[]).err();
    assert!(
        matches!(
            err,
            Some(Error::CorruptEntry {
                block_offset: 0,
                entry_offset: 6
            })
        ),
        "{err:?}"
    );
}

#[test]
fn restart_entry_with_shared_prefix() -> TestResult {
    // The second restart point's entry claims to share a byte; sequential
    // iteration allows it (as TF does), a binary search over restarts not.
    let block = raw_block(
        &[(0, b"ab", b"1"), (1, b"c", b"2"), (0, b"d", b"3")],
        &[0, 6, 11],
    );
    let bytes = file_with_data_block(&block, 0, b"e");
    let table = Table::open(&bytes)?;
    let err = table.get(b"d").err();
    assert!(
        matches!(
            err,
            Some(Error::CorruptEntry {
                block_offset: 0,
                entry_offset: 6
            })
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn entry_varint_overflow_and_lengths_past_end() {
    let overflow = [
        &[0xffu8, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00][..],
        &[0, 0, 0, 0, 1, 0, 0, 0],
    ]
    .concat();
    let past_end = [&[0u8, 1, 100, b'a'][..], &[0, 0, 0, 0, 1, 0, 0, 0]].concat();
    let truncated_varint = [&[0u8, 1, 0x80][..], &[0, 0, 0, 0, 1, 0, 0, 0]].concat();
    for block in [overflow, past_end, truncated_varint] {
        let bytes = file_with_data_block(&block, 0, b"b");
        let err = read_everything(&bytes, &[]).err();
        assert!(
            matches!(
                err,
                Some(Error::CorruptEntry {
                    block_offset: 0,
                    entry_offset: 0
                })
            ),
            "{err:?}"
        );
        let err = Table::open(&bytes).and_then(|t| t.get(b"a")).err();
        assert!(matches!(err, Some(Error::CorruptEntry { .. })), "{err:?}");
    }
}

#[test]
fn checksum_mismatch_names_the_block() -> TestResult {
    let mut file = hex(TF_INDEX_HEX)?;
    file[10] ^= 0x01; // inside the data block
    let table = Table::open(&file)?; // the index block is still good
    let err = table.get(b"W").err();
    assert!(matches!(
        err,
        Some(Error::ChecksumMismatch {
            offset: 0,
            size: 118,
            stored: 0xfd08_ddc6,
            ..
        })
    ));
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.starts_with(
        "block at offset 0 (size 118): checksum mismatch (stored 0xfd08ddc6, computed 0x"
    ));
    Ok(())
}

#[test]
fn bad_block_type_with_valid_checksum() {
    let block = raw_block(&[(0, b"a", b"1")], &[0]);
    let bytes = file_with_data_block(&block, 7, b"b");
    let err = read_everything(&bytes, &[]).err();
    assert!(
        matches!(
            err,
            Some(Error::BadBlockType {
                offset: 0,
                block_type: 7,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("block at offset 0 (size 13): bad block type 7")
    );
}

#[test]
fn snappy_claiming_a_huge_length() {
    // Preamble varint for 1 GiB, then a few literal bytes.
    let mut block = Vec::new();
    common::put_varint(&mut block, 1 << 30);
    block.extend_from_slice(&[0x08, b'a', b'b', b'c']);
    let bytes = file_with_data_block(&block, 1, b"b");
    let err = read_everything(&bytes, &[]).err();
    assert!(
        matches!(
            err,
            Some(Error::DecompressedTooLarge {
                claimed: 1_073_741_824,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn snappy_garbage() {
    // Claims 20 bytes, delivers a 3-byte literal: the length does not match.
    let block = [20u8, 0x08, b'a', b'b', b'c'];
    let bytes = file_with_data_block(&block, 1, b"b");
    let err = read_everything(&bytes, &[]).err();
    assert!(
        matches!(
            err,
            Some(Error::Snappy {
                offset: 0,
                size: 5,
                ..
            })
        ),
        "{err:?}"
    );
    // An unterminated preamble varint.
    let bytes = file_with_data_block(&[0xff, 0xff], 1, b"b");
    assert!(matches!(
        read_everything(&bytes, &[]),
        Err(Error::Snappy { .. })
    ));
}

#[test]
fn snappy_index_block_is_read() -> TestResult {
    // A valid snappy-compressed data block made by hand: literal of the raw block.
    let raw = raw_block(&[(0, b"key", b"value")], &[0]);
    let mut block = Vec::new();
    common::put_varint(&mut block, raw.len() as u64);
    block.push(((raw.len() - 1) << 2) as u8);
    block.extend_from_slice(&raw);
    let bytes = file_with_data_block(&block, 1, b"l");
    let table = Table::open(&bytes)?;
    assert_eq!(table.get(b"key")?.as_deref(), Some(&b"value"[..]));
    Ok(())
}

#[test]
fn errors_end_iteration() -> TestResult {
    let model: BTreeMap<Vec<u8>, Vec<u8>> = (0..40u32)
        .map(|i| (i.to_be_bytes().to_vec(), vec![1; 20]))
        .collect();
    let mut bytes = build(
        &model,
        TableOptions {
            block_size: 100,
            ..TableOptions::default()
        },
    )?;
    let table_handles = Table::open(&bytes)?.data_block_handles().to_vec();
    let second = table_handles.get(1).ok_or("one block")?;
    bytes[second.offset as usize + 2] ^= 0x40;
    let table = Table::open(&bytes)?;
    let mut iter = table.iter();
    let mut ok = 0;
    let mut errors = 0;
    for item in iter.by_ref() {
        match item {
            Ok(_) => ok += 1,
            Err(Error::ChecksumMismatch { offset, .. }) => {
                assert_eq!(offset, second.offset);
                errors += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(errors, 1);
    assert!(ok > 0 && ok < 40);
    assert!(iter.next().is_none());
    Ok(())
}
