//! Helpers shared by the behaviour tests: small bundles, and index surgery.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ckpt_bundle::{index_path, BundleWriter, Tensor};
use ckpt_proto::{BundleEntryProto, BundleHeaderProto, Message};
use ckpt_table::{Table, TableBuilder, TableOptions};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Writes a bundle with `a` (float32 [2,3]), `b` (int64 scalar) and `s` (string [2]).
pub fn small_bundle(dir: &Path) -> BoxResult<PathBuf> {
    let prefix = dir.join("model.ckpt-7");
    let mut w = BundleWriter::create(&prefix)?;
    w.add(
        "a",
        &Tensor::from_vec(vec![2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?,
    )?;
    w.add("b", &Tensor::from_vec(vec![], vec![42i64])?)?;
    w.add(
        "s",
        &Tensor::from_strings(
            ckpt_bundle::DType::String,
            vec![2],
            vec![b"x".as_slice().into(), b"yz".as_slice().into()],
        )?,
    )?;
    w.finish()?;
    Ok(prefix)
}

/// All (key, value) pairs of an index table.
pub fn read_entries(index: &[u8]) -> BoxResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let table = Table::open(index)?;
    let mut out = Vec::new();
    for e in table.iter() {
        let (k, v) = e?;
        out.push((k, v.to_vec()));
    }
    Ok(out)
}

/// Builds an index table from (key, value) pairs, sorting them.
pub fn build_index(mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> BoxResult<Vec<u8>> {
    entries.sort();
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
    for (k, v) in &entries {
        b.add(k, v)?;
    }
    Ok(b.finish()?)
}

/// Rewrites `prefix.index`, letting `edit` change the raw entries.
pub fn edit_raw(prefix: &Path, edit: impl FnOnce(&mut Vec<(Vec<u8>, Vec<u8>)>)) -> TestResult {
    let path = index_path(prefix);
    let mut entries = read_entries(&std::fs::read(&path)?)?;
    edit(&mut entries);
    std::fs::write(&path, build_index(entries)?)?;
    Ok(())
}

/// Rewrites the entry of tensor `name`.
pub fn edit_entry(
    prefix: &Path,
    name: &str,
    edit: impl FnOnce(&mut BundleEntryProto),
) -> TestResult {
    let path = index_path(prefix);
    let mut entries = read_entries(&std::fs::read(&path)?)?;
    let slot = entries
        .iter_mut()
        .find(|(k, _)| k == name.as_bytes())
        .ok_or("no such entry")?;
    let mut entry = BundleEntryProto::decode(slot.1.as_slice())?;
    edit(&mut entry);
    slot.1 = entry.encode_to_vec();
    std::fs::write(&path, build_index(entries)?)?;
    Ok(())
}

/// Rewrites the header entry.
pub fn edit_header(prefix: &Path, edit: impl FnOnce(&mut BundleHeaderProto)) -> TestResult {
    let path = index_path(prefix);
    let mut entries = read_entries(&std::fs::read(&path)?)?;
    let slot = entries
        .iter_mut()
        .find(|(k, _)| k.is_empty())
        .ok_or("no header")?;
    let mut header = BundleHeaderProto::decode(slot.1.as_slice())?;
    edit(&mut header);
    slot.1 = header.encode_to_vec();
    std::fs::write(&path, build_index(entries)?)?;
    Ok(())
}
