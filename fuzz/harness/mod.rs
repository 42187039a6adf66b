//! The bodies of the `bundle_read` and `v1_read` fuzz targets. They live here, apart from the
//! `fuzz_target!` wrappers, so that `crates/bundle/tests/fuzz_seeds.rs` replays every committed
//! seed through exactly the same code with `cargo test` (no nightly, no libFuzzer). Each
//! function must return normally for any input: a panic is a bug. They return the number of
//! tensors read whole, so the replay can check that the seeds reach the decoders.
//!
//! Random bytes almost never form a table with valid block checksums (`table_open` fuzzes
//! that layer), so both targets decode their input as table entries and build the tables with
//! `TableBuilder`; the mutations then reach the checkpoint decoders.

// Each fuzz target calls one of these functions; the seed replay calls both.
#![allow(dead_code)]

use ckpt_bundle::{BundleReader, ReadOptions, TensorSlice, V1Reader};
use ckpt_table::{TableBuilder, TableOptions};

/// Key/value records of one table file.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Splits `input` into records `key_len:u8 key value_len:u16le value`, stopping at the first
/// one that does not fit; a `0xff 0xff` marker ends a group (a file). Returns the groups and
/// the bytes after the last marker that was not followed by a record.
fn records(mut rest: &[u8], max_groups: usize) -> (Vec<Records>, &[u8]) {
    let mut groups = vec![Vec::new()];
    loop {
        if rest.starts_with(&[0xff, 0xff]) {
            rest = &rest[2..];
            if groups.len() >= max_groups {
                break;
            }
            groups.push(Vec::new());
            continue;
        }
        let Some((&klen, r)) = rest.split_first() else {
            break;
        };
        let klen = usize::from(klen);
        let (Some(key), Some(vlen)) = (r.get(..klen), r.get(klen..klen + 2)) else {
            break;
        };
        let vlen = usize::from(u16::from_le_bytes([vlen[0], vlen[1]]));
        let Some(value) = r.get(klen + 2..klen + 2 + vlen) else {
            break;
        };
        if let Some(group) = groups.last_mut() {
            group.push((key.to_vec(), value.to_vec()));
        }
        rest = &r[klen + 2 + vlen..];
    }
    (groups, rest)
}

/// A table of `entries`, sorted and without duplicate keys; `None` if the builder refuses.
fn table(mut entries: Records) -> Option<Vec<u8>> {
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0);
    let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
    for (k, v) in &entries {
        builder.add(k, v).ok()?;
    }
    builder.finish().ok()
}

/// Bundles: `flags:u8`, index records, `0xff 0xff`, and the rest is the data shard (given as
/// shards 0 and 1). Flag bit 0 inserts TensorFlow's own header under the empty key; bit 1
/// turns checksum checks off.
pub fn bundle_read(data: &[u8]) -> usize {
    let Some((&flags, rest)) = data.split_first() else {
        return 0;
    };
    let (mut groups, shard) = records(rest, 1);
    let mut entries = groups.pop().unwrap_or_default();
    if flags & 1 == 1 {
        entries.push((Vec::new(), vec![0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]));
    }
    let Some(index) = table(entries) else {
        return 0;
    };
    let options = ReadOptions {
        verify_checksums: flags & 2 == 0,
    };
    let Ok(reader) =
        BundleReader::from_bytes(&index, vec![shard.to_vec(), shard.to_vec()], options)
    else {
        return 0;
    };
    let mut read = 0;
    for info in reader.tensors().to_vec() {
        if let Ok(t) = reader.read(&info.name) {
            read += 1;
            assert_eq!(t.dtype(), info.dtype);
            assert_eq!(t.shape(), info.shape);
            assert!(t.check(&info.name).is_ok());
            let _ = t.to_f64_vec();
        }
        if let Some(half) = upper_half(&info.shape) {
            if let Ok(t) = reader.read_slice(&info.name, &half) {
                assert!(t.check(&info.name).is_ok());
            }
        }
    }
    let _ = reader.verify();
    let _ = reader.read("missing");
    read
}

/// V1 checkpoints: `flags:u8`, then the records of up to four table files separated by
/// `0xff 0xff` (the metadata is the record with the empty key). With flag bit 0 the bytes after
/// the flags are one raw table file instead.
pub fn v1_read(data: &[u8]) -> usize {
    let Some((&flags, rest)) = data.split_first() else {
        return 0;
    };
    let files: Vec<Vec<u8>> = if flags & 1 == 1 {
        vec![rest.to_vec()]
    } else {
        let (groups, _) = records(rest, 4);
        let Some(files) = groups.into_iter().map(table).collect::<Option<Vec<_>>>() else {
            return 0;
        };
        files
    };
    let Ok(reader) = V1Reader::from_bytes(files) else {
        return 0;
    };
    let mut read = 0;
    for info in reader.tensors().to_vec() {
        assert!(reader.contains(&info.name));
        if let Ok(t) = reader.read(&info.name) {
            read += 1;
            assert_eq!(t.dtype(), info.dtype);
            assert_eq!(t.shape(), info.shape);
            assert!(t.check(&info.name).is_ok());
            let _ = t.to_f64_vec();
        }
        if let Some(half) = upper_half(&info.shape) {
            if let Ok(t) = reader.read_slice(&info.name, &half) {
                assert!(t.check(&info.name).is_ok());
            }
        }
    }
    let _ = reader.verify();
    let _ = reader.read("missing");
    read
}

/// The slice of the first `ceil(n/2)` rows of a tensor of `shape` (rank >= 1, n >= 1).
fn upper_half(shape: &[u64]) -> Option<TensorSlice> {
    let (&rows, rest) = shape.split_first()?;
    if rows == 0 {
        return None;
    }
    let mut ranges = vec![(0, rows.div_ceil(2))];
    ranges.extend(rest.iter().map(|&n| (0, n)));
    if ranges.iter().any(|r| r.1 == 0) {
        return None;
    }
    Some(TensorSlice::from_ranges(&ranges))
}
