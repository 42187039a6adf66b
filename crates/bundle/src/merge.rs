//! Merging several bundles into one, as TensorFlow's `MergeBundles` does for sharded saves.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::index::Layout;
use crate::reader::BundleReader;
use crate::tensor::Storage;
use crate::writer::BundleWriter;

/// Which copy wins when a tensor appears in more than one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefer {
    /// The copy in the earliest input that has the name.
    First,
    /// The copy in the latest input that has the name.
    Last,
}

/// What goes into the output for one tensor name.
enum Plan {
    /// The whole tensor (or all its slices) from this input.
    From(usize),
    /// Slices of a partitioned tensor gathered from several inputs.
    Slices(Vec<usize>),
}

/// Merges the bundles at `inputs` (any path form [`BundleReader::open`] takes) into one
/// bundle at `output_prefix`. Unlike TensorFlow's `MergeBundles`, the inputs are left
/// untouched: every tensor's bytes are read (their checksums verified) and written anew, so
/// the output is exactly what [`BundleWriter`] makes of them, written atomically.
///
/// As in `MergeBundles`, each data shard of each input that has tensors becomes one shard
/// of the output (so merging the parts of a sharded save gives its shard count), and
/// partitioned tensors stay partitioned, with the same slices. Slices of one partitioned
/// tensor spread over several inputs are combined, as TensorFlow does. Any other name found
/// in more than one input is an error, unless `prefer` picks the first or the last input's
/// copy. Data is written input by input, tensors in name order.
pub fn merge_bundles(
    inputs: &[impl AsRef<Path>],
    output_prefix: impl AsRef<Path>,
    prefer: Option<Prefer>,
) -> Result<()> {
    let output = output_prefix.as_ref();
    let merge_err = |reason: String| Error::Merge {
        output: output.to_path_buf(),
        reason,
    };
    if inputs.is_empty() {
        return Err(merge_err("no input bundles".to_string()));
    }
    let readers: Vec<BundleReader> = inputs
        .iter()
        .map(BundleReader::open)
        .collect::<Result<_>>()?;

    // name -> the inputs holding it, in order.
    let mut holders: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in readers.iter().enumerate() {
        for t in r.tensors() {
            holders.entry(&t.name).or_default().push(i);
        }
    }
    let mut plans: BTreeMap<&str, Plan> = BTreeMap::new();
    for (name, ins) in &holders {
        let plan = match ins.as_slice() {
            [one] => Plan::From(*one),
            _ if slices_combine(&readers, name, ins) => Plan::Slices(ins.clone()),
            [first, .., last] => match prefer {
                Some(Prefer::First) => Plan::From(*first),
                Some(Prefer::Last) => Plan::From(*last),
                None => {
                    let paths: Vec<String> = ins
                        .iter()
                        .filter_map(|&i| readers.get(i))
                        .map(|r| crate::ShortPath(r.prefix()).to_string())
                        .collect();
                    return Err(merge_err(format!(
                        "tensor \"{name}\" is in {} (pass a preference to keep the first or last)",
                        paths.join(" and ")
                    )));
                }
            },
            [] => continue,
        };
        plans.insert(name, plan);
    }

    // Input i's shard k becomes output shard first_shard[i] + k; inputs without tensors add
    // none (TensorFlow's merge counts their shards but has no file for them, docs §3.9).
    let mut first_shard = Vec::with_capacity(readers.len());
    let mut num_shards = 0u32;
    for r in &readers {
        first_shard.push(num_shards);
        if !r.tensors().is_empty() {
            num_shards = num_shards.saturating_add(r.num_shards() as u32);
        }
    }
    let mut writer = BundleWriter::create_sharded(output, num_shards.max(1), Default::default())?;
    for (i, reader) in readers.iter().enumerate() {
        let first = first_shard.get(i).copied().unwrap_or(0);
        for (pos, info) in reader.tensors().iter().enumerate() {
            let take = match plans.get(info.name.as_str()) {
                Some(Plan::From(k)) => *k == i,
                Some(Plan::Slices(ks)) => ks.contains(&i),
                None => false,
            };
            if !take {
                continue;
            }
            let storage = reader.storage(&info.name)?;
            match (reader.layout(pos), storage) {
                (Some(Layout::Whole(_)), Storage::Whole { shard }) => {
                    writer.set_shard(first + shard)?;
                    writer.add(&info.name, &reader.read(&info.name)?)?;
                }
                (Some(Layout::Sliced { pieces, .. }), Storage::Partitioned(stored)) => {
                    for (piece, part) in pieces.iter().zip(&stored) {
                        let t = reader.read_piece(info, piece)?;
                        writer.set_shard(first + part.shard)?;
                        writer.add_slice(&info.name, &info.shape, &piece.extents, &t)?;
                    }
                }
                _ => {}
            }
        }
    }
    writer.finish()
}

/// Whether every holder stores `name` as slices of the same dtype and shape, no slice twice.
fn slices_combine(readers: &[BundleReader], name: &str, holders: &[usize]) -> bool {
    let mut seen: Vec<&Vec<(u64, u64)>> = Vec::new();
    let mut first: Option<(crate::DType, Vec<u64>)> = None;
    for &i in holders {
        let Some(r) = readers.get(i) else {
            return false;
        };
        let Some(pos) = r.tensors().iter().position(|t| t.name == name) else {
            return false;
        };
        let (Some(info), Some(Layout::Sliced { pieces, .. })) =
            (r.tensors().get(pos), r.layout(pos))
        else {
            return false;
        };
        match &first {
            None => first = Some((info.dtype, info.shape.clone())),
            Some((d, s)) if *d == info.dtype && *s == info.shape => {}
            Some(_) => return false,
        }
        for p in pieces {
            if seen.contains(&&p.extents) {
                return false;
            }
            seen.push(&p.extents);
        }
    }
    true
}
