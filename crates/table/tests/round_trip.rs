//! Tables written by `TableBuilder` and read back through `get`, `seek` and
//! `iter`, checked against the map they were built from.

mod common;

use std::borrow::Cow;
use std::collections::BTreeMap;

use ckpt_table::{Compression, Error, Table, TableBuilder, TableOptions};
use common::{build, check_against_model, collect, TestResult};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn small_blocks(block_size: usize, restart: usize) -> TableOptions {
    TableOptions {
        block_size,
        block_restart_interval: restart,
        compression: Compression::None,
    }
}

#[test]
fn empty_table() -> TestResult {
    let bytes = build(&Model::new(), TableOptions::default())?;
    assert_eq!(bytes.len(), 13 + 13 + 48);
    let table = Table::open(&bytes)?;
    assert_eq!(table.num_data_blocks(), 0);
    assert_eq!(collect(table.iter())?, []);
    assert_eq!(collect(table.seek(b""))?, []);
    assert_eq!(collect(table.seek(b"\xff"))?, []);
    assert_eq!(table.get(b"")?, None);
    assert_eq!(table.get(b"x")?, None);
    Ok(())
}

#[test]
fn one_key() -> TestResult {
    let model = Model::from([(b"only".to_vec(), b"value".to_vec())]);
    let bytes = build(&model, TableOptions::default())?;
    assert_eq!(Table::open(&bytes)?.num_data_blocks(), 1);
    check_against_model(&bytes, &model)
}

#[test]
fn empty_key_and_empty_values() -> TestResult {
    let model = Model::from([
        (Vec::new(), Vec::new()),
        (b"a".to_vec(), Vec::new()),
        (b"b".to_vec(), b"x".to_vec()),
    ]);
    check_against_model(&build(&model, small_blocks(1, 1))?, &model)?;
    check_against_model(&build(&model, TableOptions::default())?, &model)
}

fn ten_thousand() -> Model {
    (0..10_000u32)
        .map(|i| {
            let key = format!("layer_{:05}/kernel/{}", i * 7 % 10_000, i % 3).into_bytes();
            let value = i.to_le_bytes().repeat((i % 5) as usize);
            (key, value)
        })
        .collect()
}

#[test]
fn ten_thousand_keys_in_many_blocks() -> TestResult {
    let model = ten_thousand();
    for (block_size, restart) in [(256, 16), (1024, 1), (4096, 3)] {
        let bytes = build(&model, small_blocks(block_size, restart))?;
        let table = Table::open(&bytes)?;
        assert!(
            table.num_data_blocks() > 50,
            "{} blocks",
            table.num_data_blocks()
        );
        // Blocks tile the file from offset 0 with no gaps.
        let mut expected_offset = 0;
        for handle in table.data_block_handles() {
            assert_eq!(handle.offset, expected_offset);
            expected_offset = handle.offset + handle.size + 5;
        }
        check_against_model(&bytes, &model)?;
    }
    // With TF's 256 KiB blocks the same entries fit in one block.
    let bytes = build(&model, TableOptions::default())?;
    assert_eq!(Table::open(&bytes)?.num_data_blocks(), 1);
    check_against_model(&bytes, &model)
}

#[test]
fn blocks_close_once_the_estimate_reaches_block_size() -> TestResult {
    // Each entry is 3 header bytes + 1 key byte + 10 value bytes = 14 bytes.
    // With restarts every 16 the estimate is 14n + 8, reaching 64 at n = 4.
    let model: Model = (b'a'..=b'l').map(|c| (vec![c], vec![c; 10])).collect();
    let bytes = build(&model, small_blocks(64, 16))?;
    let table = Table::open(&bytes)?;
    let sizes: Vec<u64> = table.data_block_handles().iter().map(|h| h.size).collect();
    assert_eq!(sizes, [4 * 14 + 8, 4 * 14 + 8, 4 * 14 + 8]);
    check_against_model(&bytes, &model)
}

#[test]
fn entries_over_twice_block_size_get_their_own_block() -> TestResult {
    let big_key = vec![b'k'; 300];
    let model = Model::from([
        (b"a".to_vec(), b"1".to_vec()),
        (big_key.clone(), b"2".to_vec()),
        (b"z".to_vec(), vec![7u8; 129]),
        (b"zz".to_vec(), b"3".to_vec()),
    ]);
    let bytes = build(&model, small_blocks(64, 16))?;
    let table = Table::open(&bytes)?;
    let sizes: Vec<u64> = table.data_block_handles().iter().map(|h| h.size).collect();
    // "a" is flushed before the 300-byte key (TF's rule), which then fills a
    // block alone; "z" (130 bytes >= 128) also flushes first, then closes its
    // own block, leaving "zz" alone in the last. (300 takes a 2-byte varint.)
    assert_eq!(
        sizes,
        [
            3 + 1 + 1 + 8,
            4 + 300 + 1 + 8,
            4 + 1 + 129 + 8,
            3 + 2 + 1 + 8
        ]
    );
    check_against_model(&bytes, &model)
}

#[test]
fn binary_keys_with_zero_and_ff_bytes() -> TestResult {
    let mut model = Model::new();
    for key in [
        &b""[..],
        b"\x00",
        b"\x00\x00",
        b"\x00\xff",
        b"\x01",
        b"a\x00b",
        b"a\xff",
        b"a\xff\xff",
        b"b",
        b"\xfe\xff",
        b"\xff",
        b"\xff\x00",
        b"\xff\xff\xff",
    ] {
        model.insert(key.to_vec(), key.iter().rev().copied().collect());
    }
    for block_size in [1, 16, 40, 4096] {
        for restart in [1, 2, 16] {
            check_against_model(&build(&model, small_blocks(block_size, restart))?, &model)?;
        }
    }
    Ok(())
}

#[test]
fn keys_that_are_prefixes_of_each_other() -> TestResult {
    let model: Model = (0..200)
        .map(|n| (vec![b'a'; n], n.to_string().into_bytes()))
        .collect();
    for block_size in [1, 50, 300, 1 << 18] {
        check_against_model(&build(&model, small_blocks(block_size, 4))?, &model)?;
    }
    Ok(())
}

#[test]
fn key_order_is_enforced() -> TestResult {
    let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
    builder.add(b"b", b"1")?;
    let equal = builder.add(b"b", b"2");
    assert!(
        matches!(&equal, Err(Error::KeyOrder { previous, key }) if previous == b"b" && key == b"b")
    );
    let decreasing = builder.add(b"a", b"3");
    assert!(
        matches!(&decreasing, Err(Error::KeyOrder { previous, key }) if previous == b"b" && key == b"a")
    );
    if let Err(e) = decreasing {
        assert_eq!(
            e.to_string(),
            "keys out of order: \"a\" added after \"b\" (keys must be strictly increasing bytewise)"
        );
    }
    // "W" (0x57) sorts before "b" (0x62): bytewise, not case-insensitive.
    assert!(matches!(
        builder.add(b"W", b""),
        Err(Error::KeyOrder { .. })
    ));
    // A rejected key leaves the builder usable and the table unchanged.
    builder.add(b"c", b"4")?;
    let bytes = builder.finish()?;
    let model = Model::from([
        (b"b".to_vec(), b"1".to_vec()),
        (b"c".to_vec(), b"4".to_vec()),
    ]);
    check_against_model(&bytes, &model)
}

fn compressible() -> Model {
    (0..400u32)
        .map(|i| {
            (
                format!("tensor/{i:04}").into_bytes(),
                vec![(i % 7) as u8; 300],
            )
        })
        .collect()
}

#[test]
fn snappy_blocks_round_trip() -> TestResult {
    let model = compressible();
    let options = TableOptions {
        block_size: 4096,
        block_restart_interval: 16,
        compression: Compression::Snappy,
    };
    let bytes = build(&model, options)?;
    let raw = build(
        &model,
        TableOptions {
            compression: Compression::None,
            ..options
        },
    )?;
    assert!(
        bytes.len() * 4 < raw.len(),
        "snappy {} vs raw {}",
        bytes.len(),
        raw.len()
    );
    let table = Table::open(&bytes)?;
    assert!(table.num_data_blocks() > 10);
    for handle in table.data_block_handles() {
        let type_byte = bytes.get((handle.offset + handle.size) as usize).copied();
        assert_eq!(type_byte, Some(1), "block at {}", handle.offset);
    }
    // Values of decompressed blocks are owned.
    let value = table.get(b"tensor/0003")?.ok_or("missing")?;
    assert!(matches!(value, Cow::Owned(_)));
    assert_eq!(value.as_ref(), [3u8; 300]);
    check_against_model(&bytes, &model)
}

#[test]
fn incompressible_blocks_are_stored_raw() -> TestResult {
    // A xorshift stream: snappy cannot save 12.5% on it.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let model: Model = (0..50u32)
        .map(|i| (i.to_be_bytes().to_vec(), noise(200)))
        .collect();
    let options = TableOptions {
        block_size: 2048,
        block_restart_interval: 16,
        compression: Compression::Snappy,
    };
    let bytes = build(&model, options)?;
    let raw = build(
        &model,
        TableOptions {
            compression: Compression::None,
            ..options
        },
    )?;
    let table = Table::open(&bytes)?;
    let raw_table = Table::open(&raw)?;
    assert_eq!(table.data_block_handles(), raw_table.data_block_handles());
    for handle in table.data_block_handles() {
        let end = (handle.offset + handle.size + 5) as usize;
        assert_eq!(
            bytes.get(handle.offset as usize..end),
            raw.get(handle.offset as usize..end)
        );
        assert_eq!(
            bytes.get((handle.offset + handle.size) as usize).copied(),
            Some(0)
        );
    }
    let value = table.get(&7u32.to_be_bytes())?.ok_or("missing")?;
    assert!(matches!(value, Cow::Borrowed(_)));
    check_against_model(&bytes, &model)
}

#[test]
fn iteration_is_fused_and_seek_past_end_is_empty() -> TestResult {
    let model = ten_thousand();
    let bytes = build(&model, small_blocks(512, 16))?;
    let table = Table::open(&bytes)?;
    let mut iter = table.seek(b"layer_09997/");
    assert!(iter.next().is_some());
    let rest: Vec<_> = iter.by_ref().collect();
    assert_eq!(rest.len(), 2);
    assert!(iter.next().is_none());
    assert!(iter.next().is_none());
    assert_eq!(collect(table.seek(b"m"))?, []);
    Ok(())
}

fn model_strategy() -> impl Strategy<Value = Model> {
    // A small alphabet makes shared prefixes and near-equal keys common.
    let key = prop::collection::vec(
        prop::sample::select(vec![0u8, 1, b'a', b'b', 0xfe, 0xff]),
        0..12,
    );
    let value = prop::collection::vec(any::<u8>(), 0..40);
    prop::collection::btree_map(key, value, 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn proptest_round_trip(
        model in model_strategy(),
        block_size in 1usize..600,
        restart in 1usize..20,
        snappy in any::<bool>(),
    ) {
        let compression = if snappy { Compression::Snappy } else { Compression::None };
        let options = TableOptions { block_size, block_restart_interval: restart, compression };
        let bytes = build(&model, options).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_against_model(&bytes, &model).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
