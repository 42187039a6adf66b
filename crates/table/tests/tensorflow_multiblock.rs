//! Multi-block tables written by TensorFlow 2.21 (`tests/data/make_tf_tables.py`)
//! rebuilt byte for byte: several 256 KiB blocks with shortened separators, a
//! 600 KiB key that triggers TF's flush-before rule, binary keys and an
//! all-0xff last key. The files are large, so the test regenerates their
//! entries and compares length, CRC32C and block sizes recorded from TF's
//! output. With `CKPT_TF_TABLES_DIR` pointing at the script's output it also
//! compares the bytes themselves.

mod common;

use std::collections::BTreeMap;

use ckpt_table::{crc32c_masked, unmask_crc, Table, TableBuilder, TableOptions};
use common::TestResult;

struct Expected {
    prefix: &'static str,
    len: usize,
    crc32c: u32,
    block_sizes: &'static [u64],
}

fn names(prefix: &str) -> Vec<Vec<u8>> {
    match prefix {
        "many" => (0..9000)
            .map(|i| format!("layer_{i:05}/dense/kernel/Adam_{}", i % 3).into_bytes())
            .collect(),
        "big" => {
            let mut big = b"m".to_vec();
            big.resize(1 + 600 * 1024, b'x');
            let mut out = vec![
                b"a".to_vec(),
                b"b".to_vec(),
                big,
                b"n".to_vec(),
                b"o".to_vec(),
            ];
            out.extend((0..2000).map(|i| {
                let mut k = format!("p{i:04}").into_bytes();
                k.resize(k.len() + 200, b'y');
                k
            }));
            out
        }
        "odd" => {
            let mut out: Vec<Vec<u8>> = (0..3000usize)
                .map(|i| {
                    let mut k = vec![0xff; 3];
                    k.resize(3 + i % 5, 0);
                    k.extend(format!("{i:05}").bytes());
                    k.resize(k.len() + 90, b'q');
                    k
                })
                .collect();
            out.extend((0..2000).map(|i| {
                let mut k = vec![0x7f; 100];
                k.extend(format!("{i:05}").bytes());
                k
            }));
            out.push(vec![0xff; 200]);
            out
        }
        _ => Vec::new(),
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The index entries `SaveV2` writes when tensor `i` (in sorted name order)
/// is the float32 vector `[i]`: a `BundleHeaderProto` under the empty key,
/// then one `BundleEntryProto` per name (docs/format.md §3.3, §3.4).
fn bundle_entries(names: Vec<Vec<u8>>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut entries = BTreeMap::new();
    // num_shards 1, version { producer 1 }
    entries.insert(Vec::new(), vec![0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
    let sorted: std::collections::BTreeSet<Vec<u8>> = names.into_iter().collect();
    for (i, name) in sorted.into_iter().enumerate() {
        // dtype DT_FLOAT, shape { dim { size 1 } }
        let mut value = vec![0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x01];
        if i > 0 {
            value.push(0x20);
            put_varint(&mut value, 4 * i as u64);
        }
        value.extend_from_slice(&[0x28, 0x04, 0x35]);
        value.extend_from_slice(&crc32c_masked(&(i as f32).to_le_bytes()).to_le_bytes());
        entries.insert(name, value);
    }
    entries
}

#[test]
fn rebuilds_tensorflow_multiblock_tables() -> TestResult {
    let expected = [
        Expected {
            prefix: "many",
            len: 391_878,
            crc32c: 0x7203_6269,
            block_sizes: &[262_182, 129_560],
        },
        Expected {
            prefix: "big",
            len: 1_676_470,
            crc32c: 0x69a9_da08,
            block_sizes: &[57, 614_431, 262_304, 184_931],
        },
        Expected {
            prefix: "odd",
            len: 399_371,
            crc32c: 0x3525_c3b0,
            block_sizes: &[262_211, 136_756],
        },
    ];
    let tf_dir = std::env::var_os("CKPT_TF_TABLES_DIR");
    for want in expected {
        let entries = bundle_entries(names(want.prefix));
        let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
        for (k, v) in &entries {
            builder.add(k, v)?;
        }
        let bytes = builder.finish()?;
        if let Some(dir) = &tf_dir {
            let tf =
                std::fs::read(std::path::Path::new(dir).join(format!("{}.index", want.prefix)))?;
            assert!(
                tf == bytes,
                "{}: differs from TensorFlow's file",
                want.prefix
            );
        }
        assert_eq!(bytes.len(), want.len, "{}", want.prefix);
        assert_eq!(
            unmask_crc(crc32c_masked(&bytes)),
            want.crc32c,
            "{}",
            want.prefix
        );

        let table = Table::open(&bytes)?;
        let sizes: Vec<u64> = table.data_block_handles().iter().map(|h| h.size).collect();
        assert_eq!(sizes, want.block_sizes, "{}", want.prefix);
        let mut count = 0;
        for (entry, (k, v)) in table.iter().zip(&entries) {
            let (key, value) = entry?;
            assert!(key == *k && value.as_ref() == v.as_slice());
            count += 1;
        }
        assert_eq!(count, entries.len());
        for (k, v) in entries.iter().step_by(101) {
            assert_eq!(table.get(k)?.as_deref(), Some(v.as_slice()));
        }
    }
    Ok(())
}
