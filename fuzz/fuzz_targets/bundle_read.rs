//! Reads fuzzer-made bundles: every tensor, then `verify`. Any panic is a bug.
//!
//! Random bytes almost never form a table with valid block checksums (`table_open`
//! fuzzes that layer), so the input is decoded as index entries and a data shard and
//! the index is built with `TableBuilder`; the mutations then reach the bundle's own
//! decoders: header, entry protos, dtypes, shapes, bounds, strings, slices.
//!
//! Input layout: `flags:u8`, then records `key_len:u8 key value_len:u16le value` while
//! they fit, a `0xff 0xff` marker, and the rest is the data shard. Flag bit 0 inserts
//! TensorFlow's own header under the empty key; bit 1 turns checksum checks off.
#![no_main]

use ckpt_bundle::{BundleReader, ReadOptions};
use ckpt_table::{TableBuilder, TableOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if flags & 1 == 1 {
        entries.push((Vec::new(), vec![0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]));
    }
    loop {
        if rest.starts_with(&[0xff, 0xff]) {
            rest = &rest[2..];
            break;
        }
        let Some((&klen, r)) = rest.split_first() else { break };
        let klen = usize::from(klen);
        let (Some(key), Some(vlen)) = (r.get(..klen), r.get(klen..klen + 2)) else { break };
        let vlen = usize::from(u16::from_le_bytes([vlen[0], vlen[1]]));
        let Some(value) = r.get(klen + 2..klen + 2 + vlen) else { break };
        entries.push((key.to_vec(), value.to_vec()));
        rest = &r[klen + 2 + vlen..];
    }
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0);
    let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
    for (k, v) in &entries {
        if builder.add(k, v).is_err() {
            return;
        }
    }
    let Ok(index) = builder.finish() else { return };
    let options = ReadOptions { verify_checksums: flags & 2 == 0 };
    let Ok(reader) = BundleReader::from_bytes(&index, vec![rest.to_vec(), rest.to_vec()], options) else {
        return;
    };
    for info in reader.tensors().to_vec() {
        if let Ok(t) = reader.read(&info.name) {
            assert_eq!(t.dtype(), info.dtype);
            assert_eq!(t.shape(), info.shape);
            let _ = t.check(&info.name);
            let _ = t.to_f64_vec();
        }
    }
    let _ = reader.verify();
    let _ = reader.read("missing");
});
