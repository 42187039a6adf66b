//! The 203-byte `.index` written by TensorFlow (docs/format.md §2.10), read and
//! rebuilt byte for byte.

mod common;

use std::borrow::Cow;

use ckpt_table::{BlockHandle, Table, TableBuilder, TableOptions};
use common::{collect, hex, Pairs, TestResult, TF_INDEX_HEX};

/// Decodes the data block of the vector by hand (every varint in it is one
/// byte), independently of the crate's reader.
fn entries_by_hand(file: &[u8]) -> Result<Pairs, Box<dyn std::error::Error>> {
    let block = file.get(..118).ok_or("short")?;
    let entries_end = 118 - 8; // one restart + the count
    let mut pos = 0;
    let mut key: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    while pos < entries_end {
        let h = block.get(pos..pos + 3).ok_or("header")?;
        let (shared, unshared, vlen) = (h[0] as usize, h[1] as usize, h[2] as usize);
        assert!(h.iter().all(|&b| b < 0x80));
        pos += 3;
        key.truncate(shared);
        key.extend_from_slice(block.get(pos..pos + unshared).ok_or("key")?);
        pos += unshared;
        out.push((
            key.clone(),
            block.get(pos..pos + vlen).ok_or("value")?.to_vec(),
        ));
        pos += vlen;
    }
    assert_eq!(pos, entries_end);
    Ok(out)
}

#[test]
fn reads_tensorflow_index() -> TestResult {
    let file = hex(TF_INDEX_HEX)?;
    assert_eq!(file.len(), 203);
    let table = Table::open(&file)?;
    assert_eq!(table.num_data_blocks(), 1);
    assert_eq!(
        table.metaindex_handle(),
        BlockHandle {
            offset: 123,
            size: 8
        }
    );
    assert_eq!(
        table.index_handle(),
        BlockHandle {
            offset: 136,
            size: 14
        }
    );
    assert_eq!(
        table.data_block_handles(),
        [BlockHandle {
            offset: 0,
            size: 118
        }]
    );

    let entries = collect(table.iter())?;
    let keys: Vec<&[u8]> = entries.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, [&b""[..], b"W", b"b", b"s", b"step", b"sv"]);
    assert_eq!(entries, entries_by_hand(&file)?);
    // The header entry: BundleHeaderProto { num_shards: 1, version { producer: 1 } }.
    assert_eq!(entries[0].1, [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
    assert_eq!(
        entries[4].1,
        [0x08, 0x09, 0x12, 0x00, 0x20, 0x46, 0x28, 0x08, 0x35, 0xbb, 0xd7, 0x9f, 0x11]
    );

    // Raw blocks hand out values borrowed from the file.
    let step = table.get(b"step")?.ok_or("step missing")?;
    assert!(matches!(step, Cow::Borrowed(_)));
    assert_eq!(step.as_ref(), entries[4].1.as_slice());
    assert_eq!(table.get(b"")?.as_deref(), Some(entries[0].1.as_slice()));
    // The index key "t" is a separator, not a key.
    assert_eq!(table.get(b"t")?, None);
    assert_eq!(table.get(b"st")?, None);
    assert_eq!(table.get(b"svv")?, None);
    assert_eq!(table.get(b"a")?, None);

    let from_s: Vec<Vec<u8>> = collect(table.seek(b"sa"))?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(from_s, [b"step".to_vec(), b"sv".to_vec()]);
    assert_eq!(collect(table.seek(b"sv\0"))?, []);
    assert_eq!(collect(table.seek(b"t"))?, []);
    assert_eq!(collect(table.seek(b"\0"))?.len(), 5);
    Ok(())
}

#[test]
fn writes_tensorflow_index_byte_for_byte() -> TestResult {
    let file = hex(TF_INDEX_HEX)?;
    let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
    for (key, value) in entries_by_hand(&file)? {
        builder.add(&key, &value)?;
    }
    assert_eq!(builder.num_entries(), 6);
    let written = builder.finish()?;
    assert_eq!(written, file);
    Ok(())
}
