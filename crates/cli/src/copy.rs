//! Writing a new checkpoint from the tensors of open ones (`merge`, `rename`, `drop`, `average`,
//! `cast`), keeping how they were stored: a partitioned variable keeps its slices and every
//! stored run keeps its data shard, unless the user asks for another shard count or for whole
//! tensors. Also the checks every writing command makes before it writes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ckpt_bundle::{BundleWriter, Checkpoint, DType, Storage, Tensor, TensorData, TensorSlice};

use crate::commands::progress;

/// One tensor of the output.
#[derive(Clone, Debug)]
pub struct Item {
    /// The input whose storage (slices, shards) the output copies.
    pub input: usize,
    /// Further inputs holding other slices of the same partitioned tensor (`merge` of the
    /// parts of a sharded save).
    pub more_inputs: Vec<usize>,
    /// The tensor's name in that input.
    pub name: String,
    /// Its name in the output.
    pub out_name: String,
}

/// How the output's tensors are laid out in data shards.
#[derive(Clone, Copy, Debug, Default)]
pub struct Layout {
    /// `None`: each stored run keeps its shard (an input's shard k becomes shard
    /// `first_shard(input) + k`); `Some(n)`: n shards, filled in name order, each run going to
    /// the emptiest one.
    pub shards: Option<u32>,
    /// Write partitioned variables as whole tensors.
    pub join_partitions: bool,
}

/// Refuses to write over an existing checkpoint (an input included) unless `force` is set;
/// with `force`, the writer puts the new checkpoint in place only once it is complete, and an
/// input being replaced stays readable until then (its files are mapped, then renamed over).
pub fn check_output(out_prefix: &Path, inputs: &[&Checkpoint], force: bool) -> Result<()> {
    let index = ckpt_bundle::index_path(out_prefix);
    let same = |p: &Path| {
        let a = std::fs::canonicalize(ckpt_bundle::index_path(p)).ok();
        a.is_some() && a == std::fs::canonicalize(&index).ok()
    };
    let is_input = inputs.iter().any(|c| same(c.prefix()))
        || inputs.iter().any(|c| {
            // A V1 input written over by a V2 output of the same name.
            std::fs::canonicalize(c.prefix()).ok().is_some()
                && std::fs::canonicalize(c.prefix()).ok() == std::fs::canonicalize(out_prefix).ok()
        });
    if force {
        return Ok(());
    }
    if is_input {
        bail!(
            "{} is the input checkpoint; pass --force to replace it (the new one is written \
             beside it and put in place at the end)",
            out_prefix.display()
        );
    }
    if index.exists() || out_prefix.is_file() {
        bail!(
            "{} already holds a checkpoint; pass --force to replace it",
            out_prefix.display()
        );
    }
    Ok(())
}

/// Refuses to write over an existing file unless `force` is set.
pub fn check_output_file(out: &Path, force: bool) -> Result<()> {
    if !force && out.exists() {
        bail!(
            "{} already exists; pass --force to replace it",
            out.display()
        );
    }
    Ok(())
}

/// What goes into the output for one stored run of an item.
#[derive(Debug)]
pub enum Source<'a> {
    /// These values.
    Computed(Tensor<'a>),
    /// These values of fixed-size elements, with the crc32c of their bytes (unmasked), which
    /// the writer then takes as given. Used for whole tensors; a slice is checksummed anew.
    Checksummed(Tensor<'a>, u32),
    /// Values of fixed-size elements in a buffer of the caller's, with the crc32c of their
    /// bytes (unmasked): the writer takes the buffer (a whole tensor's is written on a
    /// background thread, see [`BundleWriter::add_owned_with_crc32c`]) and leaves in its place
    /// one to reuse: the one it took before, once written, or an empty one. A slice is
    /// written from the buffer, which stays, and checksummed anew.
    Buffer {
        dtype: DType,
        shape: Vec<u64>,
        bytes: &'a mut Vec<u8>,
        crc32c: u32,
    },
    /// The input's stored bytes, unchanged: copied file to file by the kernel when the input is
    /// a little-endian V2 bundle of fixed-size elements (the crc32c still checked against the
    /// input's, while the copy runs), otherwise read and written as `read_from` gives them.
    Unchanged,
}

/// A stored run of an item: the input it is in, its slice extents (`None`: whole), its shard.
type Run = (usize, Option<Vec<(u64, u64)>>, u32);

/// Where a stored run of `item` goes.
struct Part {
    item: usize,
    /// The input it is read from.
    input: usize,
    /// `None` for a whole tensor.
    extents: Option<Vec<(u64, u64)>>,
    shard: u32,
    bytes: u64,
}

/// Writes `items` (their out names unique) to `out_prefix`. For each stored run, `read` is
/// called with the item, the input and the slice (`None`: whole) and passes what goes into
/// the output to `put` (the values, or [`Source::Unchanged`]); so a caller may lend a buffer
/// it reuses from tensor to tensor. Returns the number of tensors written.
pub fn write(
    readers: &[Checkpoint],
    items: &[Item],
    out_prefix: &Path,
    layout: Layout,
    mut read: impl FnMut(
        &Item,
        usize,
        Option<&TensorSlice>,
        &mut dyn FnMut(Source<'_>) -> Result<()>,
    ) -> Result<()>,
) -> Result<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    // Sorted by the new names, as TensorFlow's saver writes them.
    order.sort_by(|&a, &b| {
        items[a]
            .out_name
            .as_bytes()
            .cmp(items[b].out_name.as_bytes())
    });

    // The shards of the inputs that contribute, numbered one after the other.
    let mut first_shard = vec![None; readers.len()];
    let mut kept_shards = 0u32;
    let mut used: Vec<usize> = items
        .iter()
        .flat_map(|i| std::iter::once(i.input).chain(i.more_inputs.iter().copied()))
        .collect();
    used.sort_unstable();
    used.dedup();
    for input in used {
        if let (Some(slot), Some(r)) = (first_shard.get_mut(input), readers.get(input)) {
            *slot = Some(kept_shards);
            kept_shards = kept_shards.saturating_add(r.num_shards().max(1) as u32);
        }
    }
    let num_shards = layout.shards.unwrap_or(kept_shards).max(1);

    let mut parts = Vec::new();
    let mut load = vec![0u64; num_shards as usize];
    for &i in &order {
        let item = &items[i];
        let reader = &readers[item.input];
        let info = reader.info(&item.name)?;
        let size_of = |shape: &[u64]| -> u64 {
            let n: u64 = shape.iter().product();
            n.saturating_mul(info.dtype.element_size().unwrap_or(8) as u64)
        };
        let mut runs: Vec<Run> = Vec::new();
        for input in std::iter::once(item.input).chain(item.more_inputs.iter().copied()) {
            let stored = readers[input].storage(&item.name)?;
            match stored {
                Storage::Partitioned(slices) if !layout.join_partitions => runs.extend(
                    slices
                        .into_iter()
                        .map(|s| (input, Some(s.extents), s.shard)),
                ),
                Storage::Partitioned(slices) => {
                    runs.push((input, None, slices.first().map_or(0, |s| s.shard)));
                    break;
                }
                Storage::Whole { shard } => runs.push((input, None, shard)),
            }
        }
        for (input, extents, shard) in runs {
            let bytes = match &extents {
                Some(e) => size_of(&e.iter().map(|r| r.1).collect::<Vec<_>>()),
                None => size_of(&info.shape),
            };
            let shard = match layout.shards {
                None => first_shard.get(input).copied().flatten().unwrap_or(0) + shard,
                Some(_) => {
                    let (k, _) = load
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, b)| **b)
                        .unwrap_or((0, &0));
                    k as u32
                }
            };
            if let Some(l) = load.get_mut(shard as usize) {
                *l += bytes;
            }
            parts.push(Part {
                item: i,
                input,
                extents,
                shard,
                bytes,
            });
        }
    }

    let total: u64 = parts.iter().map(|p| p.bytes).sum();
    let bar = progress(total, "writing");
    let mut writer = BundleWriter::create_sharded(out_prefix, num_shards, Default::default())
        .with_context(|| format!("cannot write checkpoint {}", out_prefix.display()))?;
    for part in &parts {
        let item = &items[part.item];
        writer.set_shard(part.shard)?;
        let slice = part.extents.as_deref().map(TensorSlice::from_ranges);
        let full_shape = match &part.extents {
            Some(_) => readers[item.input].info(&item.name)?.shape.clone(),
            None => Vec::new(),
        };
        let mut put = |source: Source<'_>| -> Result<()> {
            let source = match source {
                Source::Buffer {
                    dtype,
                    shape,
                    bytes,
                    crc32c,
                } if part.extents.is_none() => {
                    let taken = std::mem::take(bytes);
                    *bytes = writer
                        .add_owned_with_crc32c(&item.out_name, dtype, shape, taken, crc32c)
                        .with_context(|| format!("writing {:?}", item.out_name))?;
                    return Ok(());
                }
                Source::Buffer {
                    dtype,
                    shape,
                    bytes,
                    ..
                } => Source::Computed(Tensor::from_bytes(dtype, shape, bytes.as_slice())?),
                other => other,
            };
            let stored = match source {
                Source::Unchanged => {
                    readers[part.input].stored(&item.name, part.extents.as_deref())?
                }
                Source::Computed(_) | Source::Checksummed(..) | Source::Buffer { .. } => None,
            };
            let written = if let Some(s) = &stored {
                match &part.extents {
                    None => writer.add_stored(&item.out_name, s),
                    Some(e) => writer.add_stored_slice(&item.out_name, &full_shape, e, s),
                }
            } else {
                let (tensor, crc) = match source {
                    Source::Computed(t) => (t, None),
                    Source::Checksummed(t, crc) => (t, Some(crc)),
                    Source::Unchanged | Source::Buffer { .. } => {
                        (read_from(readers, item, part.input, slice.as_ref())?, None)
                    }
                };
                match (&part.extents, crc) {
                    (None, None) => writer.add(&item.out_name, &tensor),
                    (None, Some(crc)) => writer.add_with_crc32c(&item.out_name, &tensor, crc),
                    (Some(e), _) => writer.add_slice(&item.out_name, &full_shape, e, &tensor),
                }
            };
            written.with_context(|| format!("writing {:?}", item.out_name))
        };
        read(item, part.input, slice.as_ref(), &mut put)?;
        bar.inc(part.bytes);
    }
    writer
        .finish()
        .with_context(|| format!("cannot write checkpoint {}", out_prefix.display()))?;
    bar.finish_and_clear();
    Ok(items.len())
}

/// Reads an item's data from input `input`: the whole tensor or one slice.
pub fn read_from<'r>(
    readers: &'r [Checkpoint],
    item: &Item,
    input: usize,
    slice: Option<&TensorSlice>,
) -> Result<Tensor<'r>> {
    let reader = &readers[input];
    Ok(match slice {
        None => reader.read(&item.name)?,
        Some(s) => reader.read_slice(&item.name, s)?,
    })
}

/// The stored bytes of a tensor (for progress and byte totals).
pub fn data_len(tensor: &Tensor<'_>) -> u64 {
    match tensor.data() {
        TensorData::Bytes(b) => b.len() as u64,
        TensorData::Strings(s) => s.iter().map(|x| x.len() as u64).sum(),
    }
}

/// The prefix of each input, for messages.
pub fn prefixes(readers: &[Checkpoint]) -> Vec<PathBuf> {
    readers.iter().map(|r| r.prefix().to_path_buf()).collect()
}
