//! Helpers shared by the behaviour tests.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use ckpt_table::{crc32c_masked, Error, Table, TableBuilder, TableOptions};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Owned `(key, value)` pairs.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The 203-byte `.index` of docs/format.md §2.10, written by TensorFlow 2.21.
pub const TF_INDEX_HEX: &str = "00000608011a0208010001135708011208120208041202080328303568c46a8d0001116208011204120208032030280c3599413d0d00010d7308071200203c280a35ece0c02901030d746570080912002046280835bbd79f11010111760807120412020803204e280a35adbfe42f000000000100000000c6dd08fd000000000100000000c0f2a1b0000102740076000000000100000000458068ba7b0888010e000000000000000000000000000000000000000000000000000000000000000000000057fb808b247547db";

pub fn hex(s: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    s.chunks(2)
        .map(|pair| Ok(u8::from_str_radix(std::str::from_utf8(pair)?, 16)?))
        .collect()
}

pub fn build(
    entries: &BTreeMap<Vec<u8>, Vec<u8>>,
    options: TableOptions,
) -> Result<Vec<u8>, Error> {
    let mut builder = TableBuilder::new(Vec::new(), options);
    for (k, v) in entries {
        builder.add(k, v)?;
    }
    builder.finish()
}

pub fn collect<'a>(
    iter: impl Iterator<Item = Result<(Vec<u8>, Cow<'a, [u8]>), Error>>,
) -> Result<Pairs, Error> {
    iter.map(|e| e.map(|(k, v)| (k, v.into_owned()))).collect()
}

/// Keys that probe around `key`: itself, just after, shorter, and with the
/// last byte lowered.
pub fn probes(key: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![key.to_vec()];
    let mut after = key.to_vec();
    after.push(0);
    out.push(after);
    if let Some((&last, init)) = key.split_last() {
        out.push(init.to_vec());
        if last > 0 {
            let mut lower = init.to_vec();
            lower.push(last - 1);
            lower.push(0xff);
            out.push(lower);
        }
    }
    out
}

/// Checks `iter`, `get` and `seek` of the table against the map it was built from.
pub fn check_against_model(bytes: &[u8], model: &BTreeMap<Vec<u8>, Vec<u8>>) -> TestResult {
    let table = Table::open(bytes)?;
    let expected: Pairs = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(collect(table.iter())?, expected);

    let mut all_probes: Vec<Vec<u8>> = vec![Vec::new(), vec![0xff; 40]];
    for key in model.keys() {
        all_probes.extend(probes(key));
    }
    for probe in &all_probes {
        assert_eq!(
            table.get(probe)?.as_deref(),
            model.get(probe).map(Vec::as_slice),
            "get {probe:?}"
        );
    }
    // Seeking and reading a few entries is enough to check the position.
    for probe in all_probes
        .iter()
        .step_by(if model.len() > 500 { 37 } else { 1 })
    {
        let got = collect(table.seek(probe).take(3))?;
        let want: Pairs = model
            .range(probe.clone()..)
            .take(3)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want, "seek {probe:?}");
    }
    // A full seek from the start is the same as iteration.
    assert_eq!(collect(table.seek(b""))?, expected);
    Ok(())
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Assembles a table file from hand-made blocks, for hostile-input tests.
#[derive(Default)]
pub struct RawFile {
    pub bytes: Vec<u8>,
}

impl RawFile {
    /// Appends a block with a correct trailer; returns its (offset, size).
    pub fn push_block(&mut self, contents: &[u8], block_type: u8) -> (u64, u64) {
        let offset = self.bytes.len() as u64;
        self.bytes.extend_from_slice(contents);
        let mut covered = contents.to_vec();
        covered.push(block_type);
        self.bytes.push(block_type);
        self.bytes
            .extend_from_slice(&crc32c_masked(&covered).to_le_bytes());
        (offset, contents.len() as u64)
    }

    /// Appends the footer with these (offset, size) handles.
    pub fn finish(mut self, metaindex: (u64, u64), index: (u64, u64)) -> Vec<u8> {
        let mut footer = Vec::new();
        for v in [metaindex.0, metaindex.1, index.0, index.1] {
            put_varint(&mut footer, v);
        }
        footer.resize(40, 0);
        footer.extend_from_slice(&[0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]);
        self.bytes.extend_from_slice(&footer);
        self.bytes
    }
}

/// A block from entries `(shared, unshared key bytes, value)` and restart offsets.
pub fn raw_block(entries: &[(u64, &[u8], &[u8])], restarts: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for (shared, delta, value) in entries {
        put_varint(&mut out, *shared);
        put_varint(&mut out, delta.len() as u64);
        put_varint(&mut out, value.len() as u64);
        out.extend_from_slice(delta);
        out.extend_from_slice(value);
    }
    for r in restarts {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
    out
}

pub fn encoded_handle(offset: u64, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, offset);
    put_varint(&mut out, size);
    out
}

/// A one-data-block file: `data` as the data block, indexed under `index_key`.
pub fn file_with_data_block(data: &[u8], data_type: u8, index_key: &[u8]) -> Vec<u8> {
    let mut file = RawFile::default();
    let data_handle = file.push_block(data, data_type);
    let meta = file.push_block(&raw_block(&[], &[0]), 0);
    let handle = encoded_handle(data_handle.0, data_handle.1);
    let index = file.push_block(&raw_block(&[(0, index_key, &handle)], &[0]), 0);
    file.finish(meta, index)
}

/// Opens and reads everything reachable: iteration, a get and a seek per
/// probe. Returns the first error, or everything read.
pub fn read_everything(bytes: &[u8], probes: &[Vec<u8>]) -> Result<Vec<String>, Error> {
    let table = Table::open(bytes)?;
    let mut seen = Vec::new();
    for (k, v) in collect(table.iter())? {
        seen.push(format!("iter {k:?} {v:?}"));
    }
    for probe in probes {
        seen.push(format!("get {probe:?} {:?}", table.get(probe)?));
        seen.push(format!("seek {probe:?} {:?}", collect(table.seek(probe))?));
    }
    seen.push(format!("blocks {}", table.num_data_blocks()));
    Ok(seen)
}
