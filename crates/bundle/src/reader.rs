//! `BundleReader`: opens a bundle, validates its index once, and hands out tensors.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ckpt_proto::tensor_slice_proto::extent::HasLength;
use ckpt_proto::{
    bundle_header_proto::Endianness, BundleEntryProto, BundleHeaderProto, Message,
    TensorShapeProto, TensorSliceProto,
};
use rayon::prelude::*;

use crate::crc::{crc32c, unmask, PAR_THRESHOLD};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::mmap::{map_file, FileBytes};
use crate::paths::{data_path, index_path, resolve_prefix};
use crate::slice_key::{decode_slice_key, encode_slice_key};
use crate::strings::{check_strings, decode_variants, split_strings, LayoutError};
use crate::tensor::{num_elements, Tensor, TensorData, TensorInfo};

/// Largest `num_shards` a header may claim.
pub const MAX_SHARDS: i32 = 1_000_000;
/// TensorFlow's `TensorShape::MaxDimensions()`.
const MAX_RANK: usize = 254;
/// Bound on the box comparisons spent proving a partitioned tensor's slices disjoint.
const MAX_OVERLAP_CHECKS: u64 = 50_000_000;

/// How tensors are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Check each tensor's crc32c when it is read (default `true`). Turning it off skips
    /// one pass over the bytes; sizes, bounds and string layouts are still checked.
    pub verify_checksums: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            verify_checksums: true,
        }
    }
}

/// What [`BundleReader::verify`] checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Tensors checked (a partitioned tensor counts once).
    pub tensors: usize,
    /// Data bytes checksummed.
    pub bytes: u64,
}

/// Where a stored run of bytes lives and what its checksum should be.
#[derive(Clone, Debug)]
pub(crate) struct DataRef {
    /// Index into `BundleReader::shards`.
    pub slot: usize,
    pub offset: u64,
    pub size: u64,
    /// The masked crc32c stored in the entry.
    pub crc: u32,
}

/// One stored slice of a partitioned tensor.
#[derive(Clone, Debug)]
pub(crate) struct Piece {
    /// `(start, length)` per dimension, resolved against the full shape.
    pub extents: Vec<(u64, u64)>,
    pub data: DataRef,
}

#[derive(Clone, Debug)]
pub(crate) enum Layout {
    Whole(DataRef),
    /// A partitioned tensor. `incomplete` says why the slices do not cover it exactly
    /// (one shard of a sharded save holds only some slices): listing and merging still
    /// work, reading and verifying fail.
    Sliced {
        pieces: Vec<Piece>,
        incomplete: Option<String>,
    },
}

#[derive(Debug)]
struct Shard {
    id: u32,
    path: PathBuf,
    bytes: OnceLock<FileBytes>,
}

/// An open checkpoint (tensor bundle). Cheap to open: the index is parsed and validated
/// once; data shards are memory-mapped on first use. `Send + Sync`: read from many threads.
///
/// ```no_run
/// use ckpt_bundle::BundleReader;
///
/// let reader = BundleReader::open("train/model.ckpt-1000")?;
/// for t in reader.tensors() {
///     println!("{}\t{}\t{:?}", t.name, t.dtype, t.shape);
/// }
/// let w = reader.read("dense/kernel")?;
/// let values = w.as_slice::<f32>()?;
/// # Ok::<(), ckpt_bundle::Error>(())
/// ```
#[derive(Debug)]
pub struct BundleReader {
    prefix: PathBuf,
    index_path: PathBuf,
    options: ReadOptions,
    big_endian: bool,
    num_shards: u32,
    shards: Vec<Shard>,
    tensors: Vec<TensorInfo>,
    layouts: Vec<Layout>,
}

impl BundleReader {
    /// Opens a checkpoint given as a prefix (`dir/model.ckpt-1000`), a directory holding a
    /// `checkpoint` state file, or any one of the checkpoint's files.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, ReadOptions::default())
    }

    /// [`BundleReader::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, options: ReadOptions) -> Result<Self> {
        let prefix = resolve_prefix(path.as_ref())?;
        let index = index_path(&prefix);
        let bytes = map_file(&index)?;
        let reader = Self::parse(prefix, index, &bytes, options, None)?;
        for shard in &reader.shards {
            if !shard.path.is_file() {
                return Err(reader.missing_shard(shard));
            }
        }
        Ok(reader)
    }

    /// Reads a bundle held in memory: the `.index` bytes and the data shards, in shard-id
    /// order. Useful for tests, fuzzing and bundles fetched over the network.
    pub fn from_bytes(index: &[u8], shards: Vec<Vec<u8>>, options: ReadOptions) -> Result<Self> {
        let prefix = PathBuf::from("<memory>");
        let index_path = index_path(&prefix);
        Self::parse(prefix, index_path, index, options, Some(shards))
    }

    /// The checkpoint prefix (`dir/model.ckpt-1000`).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Every tensor, sorted by name (bytewise), partitioned tensors once under their full
    /// name and shape, as `tf.train.list_variables` lists them.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The number of data shards the header declares.
    pub fn num_shards(&self) -> usize {
        self.num_shards as usize
    }

    /// Whether the bundle was written on a big-endian machine (its data is byte-swapped
    /// to little-endian on read).
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }

    /// The listing entry of `name`.
    pub fn info(&self, name: &str) -> Result<&TensorInfo> {
        let i = self.position(name)?;
        self.tensors.get(i).ok_or_else(|| self.not_found(name))
    }

    /// Whether a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Reads one tensor: checks bounds, size and (unless disabled) its checksum, and
    /// assembles partitioned tensors from their slices. Fixed-size data of a little-endian
    /// bundle is borrowed from the memory map without copying.
    pub fn read(&self, name: &str) -> Result<Tensor<'_>> {
        let i = self.position(name)?;
        let (Some(info), Some(layout)) = (self.tensors.get(i), self.layouts.get(i)) else {
            return Err(self.not_found(name));
        };
        match layout {
            Layout::Whole(d) => self.read_whole(
                info,
                info.dtype,
                &info.shape,
                d,
                self.options.verify_checksums,
            ),
            Layout::Sliced { pieces, incomplete } => {
                self.read_sliced(info, pieces, incomplete.as_deref())
            }
        }
    }

    /// Checks every tensor's bytes against its checksum (and the string layouts), in
    /// parallel across tensors, reading the mapped bytes in place. Returns the first
    /// problem in name order.
    pub fn verify(&self) -> Result<VerifyReport> {
        // Large tensors are checksummed one at a time, each split across all threads;
        // the rest run in parallel with each other. (Nesting the two is slower: the
        // threads then stream from several tensors at once.)
        let is_large = |i: &usize| matches!(self.layouts.get(*i), Some(Layout::Whole(d)) if d.size >= PAR_THRESHOLD as u64);
        let n = self.tensors.len();
        let mut results: Vec<(usize, Result<u64>)> = (0..n)
            .into_par_iter()
            .filter(|i| !is_large(i))
            .map(|i| (i, self.verify_one(i)))
            .collect();
        results.extend((0..n).filter(is_large).map(|i| (i, self.verify_one(i))));
        results.sort_by_key(|r| r.0);
        let mut report = VerifyReport::default();
        for (_, r) in results {
            report.bytes = report.bytes.saturating_add(r?);
            report.tensors += 1;
        }
        Ok(report)
    }

    /// Verifies tensor `i`; returns the bytes checked.
    fn verify_one(&self, i: usize) -> Result<u64> {
        let (Some(info), Some(layout)) = (self.tensors.get(i), self.layouts.get(i)) else {
            return Ok(0);
        };
        match layout {
            Layout::Whole(d) => self.verify_data(info, &info.shape, d).map(|()| d.size),
            Layout::Sliced { pieces, incomplete } => {
                if let Some(reason) = incomplete {
                    return Err(self.slices_error(info, reason.clone()));
                }
                pieces.iter().try_fold(0u64, |acc, p| {
                    let shape: Vec<u64> = p.extents.iter().map(|e| e.1).collect();
                    self.verify_data(info, &shape, &p.data)?;
                    Ok(acc.saturating_add(p.data.size))
                })
            }
        }
    }

    fn position(&self, name: &str) -> Result<usize> {
        self.tensors
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .map_err(|_| self.not_found(name))
    }

    fn not_found(&self, name: &str) -> Error {
        Error::TensorNotFound {
            tensor: name.to_string(),
            prefix: self.prefix.clone(),
            suggestions: close_names(name, &self.tensors),
        }
    }

    fn missing_shard(&self, shard: &Shard) -> Error {
        let tensor = self
            .tensors
            .iter()
            .zip(&self.layouts)
            .find(|(_, l)| match l {
                Layout::Whole(d) => self.shards.get(d.slot).is_some_and(|s| s.id == shard.id),
                Layout::Sliced { pieces: p, .. } => p.iter().any(|p| {
                    self.shards
                        .get(p.data.slot)
                        .is_some_and(|s| s.id == shard.id)
                }),
            })
            .map(|(t, _)| t.name.clone())
            .unwrap_or_default();
        Error::MissingShard {
            path: shard.path.clone(),
            shard: shard.id,
            num_shards: self.num_shards,
            tensor,
        }
    }

    /// The mapped bytes of a shard, mapping it on first use.
    fn shard_bytes(&self, slot: usize) -> Result<&[u8]> {
        let shard = self.shards.get(slot).ok_or_else(|| Error::Header {
            path: self.index_path.clone(),
            reason: format!("internal: no shard slot {slot}"),
        })?;
        if let Some(b) = shard.bytes.get() {
            return Ok(b);
        }
        let mapped = map_file(&shard.path).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                self.missing_shard(shard)
            }
            other => other,
        })?;
        // Another thread may have won the race; either mapping is the same file.
        let _ = shard.bytes.set(mapped);
        Ok(shard.bytes.get().map(|b| &**b).unwrap_or_default())
    }

    fn shard_path(&self, slot: usize) -> PathBuf {
        self.shards
            .get(slot)
            .map(|s| s.path.clone())
            .unwrap_or_default()
    }

    /// The stored bytes of `d`, bounds-checked against its shard.
    fn data_bytes(&self, tensor: &str, d: &DataRef) -> Result<&[u8]> {
        let bytes = self.shard_bytes(d.slot)?;
        let out_of_bounds = || Error::DataOutOfBounds {
            path: self.shard_path(d.slot),
            tensor: tensor.to_string(),
            offset: d.offset,
            size: d.size,
            file_len: bytes.len() as u64,
        };
        let start = usize::try_from(d.offset).map_err(|_| out_of_bounds())?;
        let end = d
            .offset
            .checked_add(d.size)
            .and_then(|e| usize::try_from(e).ok())
            .ok_or_else(out_of_bounds)?;
        bytes.get(start..end).ok_or_else(out_of_bounds)
    }

    fn checksum_error(&self, tensor: &str, d: &DataRef, computed: u32) -> Error {
        Error::ChecksumMismatch {
            path: self.shard_path(d.slot),
            tensor: tensor.to_string(),
            offset: d.offset,
            stored: unmask(d.crc),
            computed,
        }
    }

    fn layout_error(&self, tensor: &str, dtype: DType, d: &DataRef, e: LayoutError) -> Error {
        Error::StringData {
            path: self.shard_path(d.slot),
            tensor: tensor.to_string(),
            dtype,
            offset: d.offset.saturating_add(e.offset),
            reason: e.reason,
        }
    }

    fn read_whole(
        &self,
        info: &TensorInfo,
        dtype: DType,
        shape: &[u64],
        d: &DataRef,
        verify: bool,
    ) -> Result<Tensor<'_>> {
        let buf = self.data_bytes(&info.name, d)?;
        let count = num_elements(shape).unwrap_or(u64::MAX);
        let data = match dtype {
            DType::String => {
                let layout = check_strings(buf, count, self.big_endian)
                    .map_err(|e| self.layout_error(&info.name, dtype, d, e))?;
                if verify && layout.crc != unmask(d.crc) {
                    return Err(self.checksum_error(&info.name, d, layout.crc));
                }
                TensorData::Strings(
                    split_strings(buf, count, layout)
                        .into_iter()
                        .map(Cow::Borrowed)
                        .collect(),
                )
            }
            DType::Variant => {
                let (crc, parts) = self.decode_variant(info, d, buf, count)?;
                if verify && crc != unmask(d.crc) {
                    return Err(self.checksum_error(&info.name, d, crc));
                }
                TensorData::Strings(parts.into_iter().map(Cow::Borrowed).collect())
            }
            _ => {
                if verify {
                    let computed = crc32c(buf);
                    if computed != unmask(d.crc) {
                        return Err(self.checksum_error(&info.name, d, computed));
                    }
                }
                if self.big_endian && dtype.swap_unit() > 1 {
                    let mut owned = buf.to_vec();
                    swap_bytes(&mut owned, dtype.swap_unit());
                    TensorData::Bytes(Cow::Owned(owned))
                } else {
                    TensorData::Bytes(Cow::Borrowed(buf))
                }
            }
        };
        Ok(Tensor {
            dtype,
            shape: shape.to_vec(),
            data,
        })
    }

    fn decode_variant<'b>(
        &self,
        info: &TensorInfo,
        d: &DataRef,
        buf: &'b [u8],
        count: u64,
    ) -> Result<(u32, Vec<&'b [u8]>)> {
        if self.big_endian {
            return Err(Error::StringData {
                path: self.shard_path(d.slot),
                tensor: info.name.clone(),
                dtype: DType::Variant,
                offset: d.offset,
                reason: "variant tensors of a big-endian bundle cannot be read".to_string(),
            });
        }
        decode_variants(buf, count).map_err(|e| self.layout_error(&info.name, DType::Variant, d, e))
    }

    fn verify_data(&self, info: &TensorInfo, shape: &[u64], d: &DataRef) -> Result<()> {
        let buf = self.data_bytes(&info.name, d)?;
        let count = num_elements(shape).unwrap_or(u64::MAX);
        let computed = match info.dtype {
            DType::String => {
                check_strings(buf, count, self.big_endian)
                    .map_err(|e| self.layout_error(&info.name, info.dtype, d, e))?
                    .crc
            }
            DType::Variant => self.decode_variant(info, d, buf, count)?.0,
            _ => crc32c(buf),
        };
        if computed != unmask(d.crc) {
            return Err(self.checksum_error(&info.name, d, computed));
        }
        Ok(())
    }

    fn slices_error(&self, info: &TensorInfo, reason: String) -> Error {
        Error::Slices {
            path: self.index_path.clone(),
            tensor: info.name.clone(),
            reason,
        }
    }

    fn read_sliced(
        &self,
        info: &TensorInfo,
        pieces: &[Piece],
        incomplete: Option<&str>,
    ) -> Result<Tensor<'_>> {
        let slices_error = |reason: String| self.slices_error(info, reason);
        if let Some(reason) = incomplete {
            return Err(slices_error(reason.to_string()));
        }
        let Some(elem) = info.dtype.element_size() else {
            return Err(slices_error(format!(
                "assembling partitioned {} tensors is not supported",
                info.dtype
            )));
        };
        let count = info.num_elements();
        let total = count
            .checked_mul(elem as u64)
            .ok_or_else(|| slices_error("byte size overflows".to_string()))?;
        // Every piece's bytes exist (bounds-checked below) and the pieces partition the
        // tensor, so `total` is backed by real bytes unless pieces share them; bound it by
        // the shards' lengths before allocating.
        let mut bufs = Vec::with_capacity(pieces.len());
        let mut slots: Vec<usize> = Vec::new();
        for p in pieces {
            let buf = self.data_bytes(&info.name, &p.data)?;
            if self.options.verify_checksums {
                let computed = crc32c(buf);
                if computed != unmask(p.data.crc) {
                    return Err(self.checksum_error(&info.name, &p.data, computed));
                }
            }
            bufs.push(buf);
            if !slots.contains(&p.data.slot) {
                slots.push(p.data.slot);
            }
        }
        let mut available: u64 = 0;
        for &s in &slots {
            available = available.saturating_add(self.shard_bytes(s)?.len() as u64);
        }
        if total > available {
            return Err(slices_error(format!(
                "slices claim {total} bytes, more than their data files hold ({available})"
            )));
        }
        let total = usize::try_from(total)
            .map_err(|_| slices_error("too large for this machine".to_string()))?;
        let mut out = vec![0u8; total];
        for (p, buf) in pieces.iter().zip(bufs) {
            copy_piece(&mut out, &info.shape, &p.extents, buf, elem);
        }
        if self.big_endian && info.dtype.swap_unit() > 1 {
            swap_bytes(&mut out, info.dtype.swap_unit());
        }
        Ok(Tensor {
            dtype: info.dtype,
            shape: info.shape.clone(),
            data: TensorData::Bytes(Cow::Owned(out)),
        })
    }

    /// For merging: the layout of tensor `i` and a way to read each stored run.
    pub(crate) fn layout(&self, i: usize) -> Option<&Layout> {
        self.layouts.get(i)
    }

    /// Reads one stored slice of a partitioned tensor as a tensor of its own.
    pub(crate) fn read_piece(&self, info: &TensorInfo, piece: &Piece) -> Result<Tensor<'_>> {
        let shape: Vec<u64> = piece.extents.iter().map(|e| e.1).collect();
        self.read_whole(
            info,
            info.dtype,
            &shape,
            &piece.data,
            self.options.verify_checksums,
        )
    }

    /// Parses and validates the index.
    fn parse(
        prefix: PathBuf,
        index_path: PathBuf,
        bytes: &[u8],
        options: ReadOptions,
        memory_shards: Option<Vec<Vec<u8>>>,
    ) -> Result<Self> {
        let table = ckpt_table::Table::open(bytes).map_err(|source| Error::Table {
            path: index_path.clone(),
            source,
        })?;
        let table_err = |source| Error::Table {
            path: index_path.clone(),
            source,
        };
        let header_err = |reason: String| Error::Header {
            path: index_path.clone(),
            reason,
        };
        let mut iter = table.iter();
        let (key, value) = match iter.next() {
            None => return Err(header_err("the index has no entries".to_string())),
            Some(r) => r.map_err(table_err)?,
        };
        if !key.is_empty() {
            return Err(header_err(format!(
                "first key is {} instead of the empty header key",
                show_key(&key)
            )));
        }
        let header = BundleHeaderProto::decode(&*value)
            .map_err(|e| header_err(format!("not a BundleHeaderProto ({e})")))?;
        if header.num_shards < 1 || header.num_shards > MAX_SHARDS {
            return Err(header_err(format!(
                "num_shards is {}; expected 1 to {MAX_SHARDS}",
                header.num_shards
            )));
        }
        let num_shards = header.num_shards as u32;
        let big_endian = match Endianness::try_from(header.endianness) {
            Ok(Endianness::Little) => false,
            Ok(Endianness::Big) => true,
            Err(_) => {
                return Err(header_err(format!(
                    "unknown endianness {}",
                    header.endianness
                )))
            }
        };
        let version = header.version.unwrap_or_default();
        if version.producer < 0 {
            return Err(header_err(format!(
                "version producer {} is negative",
                version.producer
            )));
        }
        if version.min_consumer > 1 {
            return Err(header_err(format!(
                "needs a newer reader: min_consumer {} > 1 (written by a newer TensorFlow?)",
                version.min_consumer
            )));
        }
        if version.bad_consumers.contains(&1) {
            return Err(header_err(
                "this reader version (1) is listed in bad_consumers".to_string(),
            ));
        }

        let mut builder = IndexBuilder {
            index_path: &index_path,
            num_shards,
            slots: BTreeMap::new(),
        };
        let mut whole: Vec<(TensorInfo, Layout)> = Vec::new();
        let mut sliced: Vec<(TensorInfo, Vec<TensorSliceProto>)> = Vec::new();
        let mut slice_entries: HashMap<Vec<u8>, BundleEntryProto> = HashMap::new();
        let mut prev: Vec<u8> = key;
        for item in iter {
            let (key, value) = item.map_err(table_err)?;
            if *key <= *prev {
                return Err(Error::Entry {
                    path: index_path.clone(),
                    tensor: show_key(&key),
                    reason: format!("keys out of order: follows {}", show_key(&prev)),
                });
            }
            let entry_err = |reason: String| Error::Entry {
                path: index_path.clone(),
                tensor: show_key(&key),
                reason,
            };
            let entry = BundleEntryProto::decode(&*value)
                .map_err(|e| entry_err(format!("not a BundleEntryProto ({e})")))?;
            if key.first() == Some(&0) {
                slice_entries.insert(key.clone(), entry);
            } else {
                let name = String::from_utf8(key.clone())
                    .map_err(|_| entry_err("tensor name is not UTF-8".to_string()))?;
                let (dtype, shape) = builder.dtype_and_shape(&name, &entry)?;
                let info = TensorInfo { name, dtype, shape };
                if entry.slices.is_empty() {
                    let d = builder.data_ref(&info.name, dtype, &info.shape, &entry)?;
                    whole.push((info, Layout::Whole(d)));
                } else {
                    sliced.push((info, entry.slices));
                }
            }
            prev = key;
        }

        let mut all = whole;
        for (info, slices) in sliced {
            let (pieces, incomplete) = builder.pieces(&info, &slices, &slice_entries)?;
            all.push((info, Layout::Sliced { pieces, incomplete }));
        }
        all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let (tensors, layouts): (Vec<_>, Vec<_>) = all.into_iter().unzip();

        let mut memory = memory_shards.map(|v| v.into_iter().map(Some).collect::<Vec<_>>());
        // Slots were numbered in order of first use; lay the shards out in that order.
        let mut by_slot: Vec<(usize, u32)> = builder
            .slots
            .iter()
            .map(|(&id, &slot)| (slot, id))
            .collect();
        by_slot.sort_unstable();
        let mut shards = Vec::with_capacity(by_slot.len());
        for (_, id) in by_slot {
            let shard = Shard {
                id,
                path: data_path(&prefix, id, num_shards),
                bytes: OnceLock::new(),
            };
            if let Some(mem) = memory.as_mut() {
                let data = mem
                    .get_mut(id as usize)
                    .and_then(Option::take)
                    .ok_or_else(|| Error::MissingShard {
                        path: shard.path.clone(),
                        shard: id,
                        num_shards,
                        tensor: String::new(),
                    })?;
                let _ = shard.bytes.set(FileBytes::Owned(data));
            }
            shards.push(shard);
        }
        Ok(BundleReader {
            prefix,
            index_path,
            options,
            big_endian,
            num_shards,
            shards,
            tensors,
            layouts,
        })
    }
}

/// State while validating index entries.
struct IndexBuilder<'p> {
    index_path: &'p Path,
    num_shards: u32,
    /// shard id -> slot index, in order of first use.
    slots: BTreeMap<u32, usize>,
}

impl IndexBuilder<'_> {
    fn err(&self, tensor: &str, reason: String) -> Error {
        Error::Entry {
            path: self.index_path.to_path_buf(),
            tensor: tensor.to_string(),
            reason,
        }
    }

    fn dtype_and_shape(&self, name: &str, entry: &BundleEntryProto) -> Result<(DType, Vec<u64>)> {
        let dtype = DType::from_proto(entry.dtype).ok_or_else(|| {
            let what = match ckpt_proto::DataType::try_from(entry.dtype) {
                Ok(dt) => format!(
                    "dtype {:?} ({}) cannot be read from a bundle",
                    dt, entry.dtype
                ),
                Err(_) => format!("unknown dtype {}", entry.dtype),
            };
            self.err(name, what)
        })?;
        let shape = shape_of(entry.shape.as_ref()).map_err(|r| self.err(name, r))?;
        Ok((dtype, shape))
    }

    fn data_ref(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        entry: &BundleEntryProto,
    ) -> Result<DataRef> {
        if entry.shard_id < 0 || entry.shard_id as u32 >= self.num_shards {
            return Err(self.err(
                name,
                format!(
                    "shard id {} out of range: the header declares {} shards",
                    entry.shard_id, self.num_shards
                ),
            ));
        }
        if entry.offset < 0 || entry.size < 0 {
            return Err(self.err(
                name,
                format!("negative offset {} or size {}", entry.offset, entry.size),
            ));
        }
        if entry.offset.checked_add(entry.size).is_none() {
            return Err(self.err(
                name,
                format!("offset {} + size {} overflows", entry.offset, entry.size),
            ));
        }
        let size = entry.size as u64;
        let count = num_elements(shape).unwrap_or(u64::MAX);
        match dtype.element_size() {
            Some(elem) => {
                let want = count.checked_mul(elem as u64).ok_or_else(|| {
                    self.err(name, format!("byte size of {dtype} {shape:?} overflows"))
                })?;
                if size != want {
                    return Err(self.err(
                        name,
                        format!(
                            "stored size {size} bytes, but {dtype} {shape:?} takes {want} bytes"
                        ),
                    ));
                }
            }
            None => {
                if size < count {
                    return Err(self.err(
                        name,
                        format!("stored size {size} bytes cannot hold {count} {dtype} elements"),
                    ));
                }
            }
        }
        let id = entry.shard_id as u32;
        let next = self.slots.len();
        let slot = *self.slots.entry(id).or_insert(next);
        Ok(DataRef {
            slot,
            offset: entry.offset as u64,
            size,
            crc: entry.crc32c,
        })
    }

    fn pieces(
        &mut self,
        info: &TensorInfo,
        slices: &[TensorSliceProto],
        slice_entries: &HashMap<Vec<u8>, BundleEntryProto>,
    ) -> Result<(Vec<Piece>, Option<String>)> {
        let name = &info.name;
        let bad = |reason: String| Error::Slices {
            path: self.index_path.to_path_buf(),
            tensor: name.clone(),
            reason,
        };
        let rank = info.shape.len();
        if rank == 0 {
            return Err(bad("a scalar cannot be partitioned".to_string()));
        }
        let mut pieces = Vec::with_capacity(slices.len());
        let mut covered: u64 = 0;
        for (k, slice) in slices.iter().enumerate() {
            if slice.extent.len() != rank {
                return Err(bad(format!(
                    "slice {k} has {} extents for a rank-{rank} tensor",
                    slice.extent.len()
                )));
            }
            let mut key_extents = Vec::with_capacity(rank);
            let mut extents = Vec::with_capacity(rank);
            for (d, (e, &dim)) in slice.extent.iter().zip(&info.shape).enumerate() {
                let length = match e.has_length {
                    Some(HasLength::Length(l)) => l,
                    None => -1,
                };
                let (start, len) = if length == -1 {
                    if e.start != 0 {
                        return Err(bad(format!(
                            "slice {k}, dimension {d}: full extent with start {}",
                            e.start
                        )));
                    }
                    (0, dim)
                } else {
                    if e.start < 0 || length < 0 {
                        return Err(bad(format!(
                            "slice {k}, dimension {d}: start {} length {length}",
                            e.start
                        )));
                    }
                    (e.start as u64, length as u64)
                };
                if start.checked_add(len).is_none_or(|end| end > dim) {
                    return Err(bad(format!(
                        "slice {k}, dimension {d}: [{start}, {start}+{len}) outside dimension size {dim}"
                    )));
                }
                key_extents.push((e.start, length));
                extents.push((start, len));
            }
            let key = encode_slice_key(name.as_bytes(), &key_extents);
            let entry = slice_entries.get(&key).ok_or_else(|| {
                bad(format!(
                    "slice {k} ({}) has no entry in the index",
                    show_extents(&extents)
                ))
            })?;
            let piece_name = format!("{name}[{}]", show_extents(&extents));
            let (dtype, shape) = self.dtype_and_shape(&piece_name, entry)?;
            if dtype != info.dtype {
                return Err(bad(format!(
                    "slice {k} has dtype {dtype}, the tensor {}",
                    info.dtype
                )));
            }
            let lens: Vec<u64> = extents.iter().map(|e| e.1).collect();
            if shape != lens {
                return Err(bad(format!(
                    "slice {k} is stored with shape {shape:?}, its extents say {lens:?}"
                )));
            }
            let data = self.data_ref(&piece_name, dtype, &shape, entry)?;
            let volume = num_elements(&lens).unwrap_or(u64::MAX);
            covered = covered
                .checked_add(volume)
                .ok_or_else(|| bad("slice volumes overflow".to_string()))?;
            pieces.push(Piece { extents, data });
        }
        let count = info.num_elements();
        let incomplete = if covered != count {
            Some(format!(
                "the slices hold {covered} of the tensor's {count} elements (one shard of a sharded save?)"
            ))
        } else {
            check_disjoint(&pieces).err()
        };
        Ok((pieces, incomplete))
    }
}

/// Slices whose volumes add up to the tensor's and that do not overlap cover it exactly.
fn check_disjoint(pieces: &[Piece]) -> Result<(), String> {
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    let start0 = |i: usize| {
        pieces
            .get(i)
            .and_then(|p| p.extents.first())
            .map_or(0, |e| e.0)
    };
    order.sort_by_key(|&i| start0(i));
    let mut checks: u64 = 0;
    for (a_pos, &a) in order.iter().enumerate() {
        let Some(pa) = pieces.get(a) else { continue };
        if pa.extents.iter().any(|e| e.1 == 0) {
            continue;
        }
        let end0 = pa.extents.first().map_or(0, |e| e.0 + e.1);
        for &b in order.iter().skip(a_pos + 1) {
            let Some(pb) = pieces.get(b) else { continue };
            if start0(b) >= end0 {
                break;
            }
            checks += 1;
            if checks > MAX_OVERLAP_CHECKS {
                return Err("too many slices to check for overlap".to_string());
            }
            let overlap = pa
                .extents
                .iter()
                .zip(&pb.extents)
                .all(|(x, y)| x.0 < y.0 + y.1 && y.0 < x.0 + x.1);
            if overlap {
                return Err(format!(
                    "slices {} and {} overlap",
                    show_extents(&pa.extents),
                    show_extents(&pb.extents)
                ));
            }
        }
    }
    Ok(())
}

/// Copies one slice's row-major bytes into the full tensor's row-major buffer.
fn copy_piece(out: &mut [u8], shape: &[u64], extents: &[(u64, u64)], src: &[u8], elem: usize) {
    let rank = shape.len();
    if extents.iter().any(|e| e.1 == 0) || rank == 0 {
        return;
    }
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let starts: Vec<usize> = extents.iter().map(|e| e.0 as usize).collect();
    let lens: Vec<usize> = extents.iter().map(|e| e.1 as usize).collect();
    // Row-major strides of the full tensor, in elements.
    let mut strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    // Trailing dimensions the slice covers completely merge into one contiguous run.
    let mut k = rank - 1;
    while k > 0 && starts[k] == 0 && lens[k] == shape[k] {
        k -= 1;
    }
    let run = lens[k] * strides[k] * elem;
    let mut idx = vec![0usize; k];
    let mut src_off = 0usize;
    loop {
        let mut dst = starts[k] * strides[k];
        for d in 0..k {
            dst += (starts[d] + idx[d]) * strides[d];
        }
        let dst = dst * elem;
        if let (Some(to), Some(from)) =
            (out.get_mut(dst..dst + run), src.get(src_off..src_off + run))
        {
            to.copy_from_slice(from);
        }
        src_off += run;
        // Advance the outer index, row-major.
        let mut d = k;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < lens[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

fn swap_bytes(buf: &mut [u8], unit: usize) {
    for chunk in buf.chunks_exact_mut(unit) {
        chunk.reverse();
    }
}

fn shape_of(shape: Option<&TensorShapeProto>) -> std::result::Result<Vec<u64>, String> {
    let Some(shape) = shape else {
        return Ok(Vec::new());
    };
    if shape.unknown_rank {
        return Err("shape has unknown rank".to_string());
    }
    if shape.dim.len() > MAX_RANK {
        return Err(format!(
            "shape has {} dimensions; at most {MAX_RANK} allowed",
            shape.dim.len()
        ));
    }
    let mut dims = Vec::with_capacity(shape.dim.len());
    for (i, d) in shape.dim.iter().enumerate() {
        if d.size < 0 {
            return Err(format!("dimension {i} has size {}", d.size));
        }
        dims.push(d.size as u64);
    }
    match num_elements(&dims) {
        Some(n) if n <= i64::MAX as u64 => Ok(dims),
        _ => Err(format!("element count of shape {dims:?} overflows")),
    }
}

fn show_key(key: &[u8]) -> String {
    if let Some(decoded) = decode_slice_key(key) {
        let ext: Vec<String> = decoded
            .extents
            .iter()
            .map(|&(s, l)| {
                if l < 0 {
                    "-".to_string()
                } else {
                    format!("{s},{l}")
                }
            })
            .collect();
        return format!(
            "{}[{}]",
            String::from_utf8_lossy(&decoded.name),
            ext.join(":")
        );
    }
    match std::str::from_utf8(key) {
        Ok(s) => s.to_string(),
        Err(_) => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn show_extents(extents: &[(u64, u64)]) -> String {
    let parts: Vec<String> = extents.iter().map(|(s, l)| format!("{s},{l}")).collect();
    parts.join(":")
}

/// Up to three listed names close to `name`: by edit distance, or containing it.
fn close_names(name: &str, tensors: &[TensorInfo]) -> Vec<String> {
    let limit = (name.chars().count() / 4).max(2);
    let mut scored: Vec<(usize, &str)> = Vec::new();
    // Bound the work on very large checkpoints.
    for t in tensors.iter().take(50_000) {
        let d = if t.name.len().abs_diff(name.len()) <= limit {
            edit_distance(name, &t.name)
        } else {
            usize::MAX
        };
        if d <= limit {
            scored.push((d, &t.name));
        } else if !name.is_empty() && (t.name.contains(name) || name.contains(t.name.as_str())) {
            scored.push((limit + 1, &t.name));
        }
    }
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_pieces_into_place() {
        // A [3, 4] tensor of u8 from two row blocks and a column split of the last row.
        let shape = [3u64, 4];
        let mut out = vec![0u8; 12];
        copy_piece(
            &mut out,
            &shape,
            &[(0, 2), (0, 4)],
            &[1, 2, 3, 4, 5, 6, 7, 8],
            1,
        );
        copy_piece(&mut out, &shape, &[(2, 1), (0, 1)], &[9], 1);
        copy_piece(&mut out, &shape, &[(2, 1), (1, 3)], &[10, 11, 12], 1);
        assert_eq!(out, (1..=12).collect::<Vec<u8>>());

        // Column blocks of a [2, 3, 2] tensor with 2-byte elements.
        let shape = [2u64, 3, 2];
        let mut out = vec![0u8; 24];
        let left: Vec<u8> = vec![0, 0, 1, 1, 6, 6, 7, 7]; // [:, 0:1, :] -> elements 0,1,6,7
        copy_piece(&mut out, &shape, &[(0, 2), (0, 1), (0, 2)], &left, 2);
        let right: Vec<u8> = [2u8, 3, 4, 5, 8, 9, 10, 11]
            .iter()
            .flat_map(|&v| [v, v])
            .collect();
        copy_piece(&mut out, &shape, &[(0, 2), (1, 2), (0, 2)], &right, 2);
        let want: Vec<u8> = (0..12u8).flat_map(|v| [v, v]).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn overlap_detection() {
        let piece = |e: &[(u64, u64)]| Piece {
            extents: e.to_vec(),
            data: DataRef {
                slot: 0,
                offset: 0,
                size: 0,
                crc: 0,
            },
        };
        let ok = [
            piece(&[(0, 2), (0, 2)]),
            piece(&[(2, 2), (0, 1)]),
            piece(&[(2, 2), (1, 1)]),
        ];
        assert!(check_disjoint(&ok).is_ok());
        let bad = [piece(&[(0, 2), (0, 2)]), piece(&[(1, 2), (1, 1)])];
        assert!(check_disjoint(&bad).is_err());
    }

    #[test]
    fn suggestions() {
        let infos: Vec<TensorInfo> = [
            "dense/kernel",
            "dense/bias",
            "dense_1/kernel",
            "global_step",
        ]
        .iter()
        .map(|n| TensorInfo {
            name: n.to_string(),
            dtype: DType::Float32,
            shape: vec![],
        })
        .collect();
        assert_eq!(
            close_names("dense/kernal", &infos),
            ["dense/kernel", "dense_1/kernel"]
        );
        assert_eq!(close_names("global", &infos), ["global_step"]);
        assert!(close_names("zzzzzzzz", &infos).is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn shapes() {
        use ckpt_proto::tensor_shape_proto::Dim;
        let dims = |v: &[i64]| TensorShapeProto {
            dim: v
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        };
        assert_eq!(shape_of(None), Ok(vec![]));
        assert_eq!(shape_of(Some(&dims(&[0, 3]))), Ok(vec![0, 3]));
        assert!(shape_of(Some(&dims(&[-1, 3]))).is_err());
        assert!(shape_of(Some(&dims(&[1 << 32, 1 << 32]))).is_err());
        assert!(shape_of(Some(&dims(&[1 << 62, 4]))).is_err());
        assert!(shape_of(Some(&TensorShapeProto {
            dim: vec![],
            unknown_rank: true
        }))
        .is_err());
    }
}
