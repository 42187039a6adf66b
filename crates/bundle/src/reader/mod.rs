//! `BundleReader`: opens a bundle, validates its index once (`index.rs`), and hands out
//! tensors: whole ones borrowed from the memory map, partitioned ones and slices assembled
//! (`slices.rs`), every checksum checked (`verify.rs`).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::crc::{crc32c, unmask};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::index::{DataRef, Index, Layout, Piece};
use crate::mmap::{map_file, FileBytes};
use crate::paths::{data_path, index_path, resolve_prefix};
use crate::strings::{check_strings, decode_variants, split_strings, LayoutError};
use crate::tensor::{num_elements, Tensor, TensorData, TensorInfo};

mod slices;
mod verify;

pub use verify::VerifyReport;

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

#[derive(Debug)]
struct Shard {
    id: u32,
    path: PathBuf,
    bytes: OnceLock<FileBytes>,
}

/// The crc32c check of a tensor read by [`BundleReader::read_deferred`], left to the caller.
#[derive(Clone, Debug)]
pub struct DeferredCheck {
    path: PathBuf,
    tensor: String,
    offset: u64,
    stored: u32,
}

impl DeferredCheck {
    /// The crc32c (unmasked) the index holds for the tensor's bytes.
    pub fn stored(&self) -> u32 {
        self.stored
    }

    /// Compares `computed`, the crc32c of all of the tensor's bytes in order, with the stored
    /// one.
    ///
    /// Errors: [`Error::ChecksumMismatch`] naming the data file, the tensor and its offset,
    /// as [`BundleReader::read`] gives.
    pub fn finish(self, computed: u32) -> Result<()> {
        if computed == self.stored {
            return Ok(());
        }
        Err(Error::ChecksumMismatch {
            path: self.path,
            tensor: self.tensor,
            offset: self.offset,
            stored: self.stored,
            computed,
        })
    }
}

/// An open checkpoint (tensor bundle). Cheap to open: the index is parsed and validated
/// once and every data shard present is memory-mapped right away (nothing is read until a
/// tensor is), so one reader sees one version of a checkpoint even while a writer replaces
/// it. `Send + Sync`: read from many threads.
///
/// Follows TensorFlow's `BundleReader` (`tensorflow/core/util/tensor_bundle/tensor_bundle.cc`);
/// the layout is described in docs/format.md §3.
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
    /// `checkpoint` state file, a SavedModel directory, or any one of the checkpoint's files.
    ///
    /// A data file that does not exist does not stop the opening: the index is enough to list
    /// the tensors and to read those stored in the other shards. Reading a tensor stored in
    /// it, and [`verify`](Self::verify), fail with [`Error::MissingShard`];
    /// [`missing_shards`](Self::missing_shards) lists them.
    ///
    /// Errors: [`Error::CheckpointNotFound`] when the path leads to no `.index` (a V1
    /// checkpoint included: open those with [`Checkpoint::open`](crate::Checkpoint::open));
    /// [`Error::RemotePath`] for a URL; [`Error::Io`] when it cannot be read; [`Error::Table`],
    /// [`Error::Header`], [`Error::Entry`] or [`Error::Slices`] for a damaged index.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, ReadOptions::default())
    }

    /// [`BundleReader::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, options: ReadOptions) -> Result<Self> {
        let prefix = resolve_prefix(path.as_ref())?;
        Self::open_prefix(prefix, options)
    }

    /// Opens the bundle `<prefix>.index`, the prefix already resolved.
    pub(crate) fn open_prefix(prefix: PathBuf, options: ReadOptions) -> Result<Self> {
        let index = index_path(&prefix);
        let bytes = map_file(&index)?;
        Self::from_index(prefix, index, &bytes, options, None)
    }

    /// The data files the index needs that do not exist (checked when the bundle was
    /// opened), in shard order.
    pub fn missing_shards(&self) -> Vec<&Path> {
        let mut missing: Vec<(u32, &Path)> = self
            .shards
            .iter()
            .filter(|s| s.bytes.get().is_none() && !s.path.is_file())
            .map(|s| (s.id, s.path.as_path()))
            .collect();
        missing.sort();
        missing.into_iter().map(|(_, p)| p).collect()
    }

    /// Reads a bundle held in memory: the `.index` bytes and the data shards, in shard-id
    /// order. Useful for tests, fuzzing and bundles fetched over the network.
    ///
    /// Errors: as [`BundleReader::open`]; [`Error::MissingShard`] when `shards` has no entry
    /// for a shard the index uses.
    pub fn from_bytes(index: &[u8], shards: Vec<Vec<u8>>, options: ReadOptions) -> Result<Self> {
        let prefix = PathBuf::from("<memory>");
        let index_path = index_path(&prefix);
        Self::from_index(prefix, index_path, index, options, Some(shards))
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
    ///
    /// Errors: [`Error::TensorNotFound`], with close names as suggestions.
    pub fn info(&self, name: &str) -> Result<&TensorInfo> {
        let i = self.position(name)?;
        self.tensors.get(i).ok_or_else(|| self.not_found(name))
    }

    /// Whether a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Reads one tensor: checks bounds, size and (unless disabled) its checksum, and
    /// assembles partitioned tensors from their slices (TensorFlow's `Lookup`). Fixed-size
    /// data of a little-endian bundle is borrowed from the memory map without copying.
    ///
    /// Errors: [`Error::TensorNotFound`]; [`Error::MissingShard`]; [`Error::DataOutOfBounds`];
    /// [`Error::ChecksumMismatch`]; [`Error::StringData`] for a corrupt string layout;
    /// [`Error::Slices`] when a partitioned tensor's slices do not cover it.
    pub fn read(&self, name: &str) -> Result<Tensor<'_>> {
        let (info, layout) = self.entry(name)?;
        match layout {
            Layout::Whole(d) => self.read_whole(info, &info.shape, d),
            Layout::Sliced { .. } => {
                let full: Vec<(u64, u64)> = info.shape.iter().map(|&n| (0, n)).collect();
                self.read_region(info, layout, &full)
            }
        }
    }

    /// Reads one tensor like [`read`](Self::read), but for a tensor stored whole with
    /// fixed-size elements (little-endian, checksums on) leaves the crc32c check to the caller,
    /// who computes it while going over the bytes anyway: the returned [`DeferredCheck`] takes
    /// the crc32c of the tensor's bytes and fails as `read` would have. So a tool that reads
    /// the bytes once in chunks (`ckpt diff`, `ckpt average`) reads them once, not twice.
    /// Other tensors are read and checked by `read`, and come with `None`.
    ///
    /// Errors: those of [`read`](Self::read), except [`Error::ChecksumMismatch`] for a deferred
    /// check, which [`DeferredCheck::finish`] gives.
    pub fn read_deferred(&self, name: &str) -> Result<(Tensor<'_>, Option<DeferredCheck>)> {
        let (info, layout) = self.entry(name)?;
        match layout {
            Layout::Whole(d)
                if self.options.verify_checksums
                    && !self.big_endian
                    && info.dtype.element_size().is_some() =>
            {
                let tensor = self.read_whole_with(info, &info.shape, d, false)?;
                let check = DeferredCheck {
                    path: self.shard_path(d.slot),
                    tensor: info.name.clone(),
                    offset: d.offset,
                    stored: unmask(d.crc),
                };
                Ok((tensor, Some(check)))
            }
            _ => Ok((self.read(name)?, None)),
        }
    }

    /// The stored bytes of tensor `name` (`extents: None`), or of its stored slice `extents`
    /// (`(start, length)` per dimension, as [`storage`](Self::storage) lists them), for
    /// copying them unchanged into another bundle with
    /// [`BundleWriter::add_stored`](crate::BundleWriter::add_stored). Nothing is read and no
    /// checksum checked here (the writer checks it while copying); bounds and sizes are.
    ///
    /// `Ok(None)` when the run cannot be copied as stored: a big-endian bundle (its bytes are
    /// swapped on read), strings and variants (their layout is checked on read), a partitioned
    /// tensor asked whole, a whole tensor asked by slice, or extents that are not one stored
    /// slice. Read those with [`read`](Self::read) or [`read_slice`](Self::read_slice).
    ///
    /// Errors: [`Error::TensorNotFound`]; [`Error::MissingShard`]; [`Error::DataOutOfBounds`].
    pub fn stored(
        &self,
        name: &str,
        extents: Option<&[(u64, u64)]>,
    ) -> Result<Option<crate::StoredTensor<'_>>> {
        let (info, layout) = self.entry(name)?;
        if self.big_endian || info.dtype.element_size().is_none() {
            return Ok(None);
        }
        let (shape, d) = match (layout, extents) {
            (Layout::Whole(d), None) => (info.shape.clone(), d),
            (Layout::Sliced { pieces, .. }, Some(want)) => {
                match pieces.iter().find(|p| p.extents == want) {
                    Some(p) => (want.iter().map(|r| r.1).collect(), &p.data),
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let tensor = self.read_whole_with(info, &shape, d, false)?;
        let file_id = self
            .shards
            .get(d.slot)
            .and_then(|s| s.bytes.get())
            .and_then(|b| b.file_id());
        Ok(Some(crate::StoredTensor {
            tensor,
            name: info.name.clone(),
            path: self.shard_path(d.slot),
            file_id,
            offset: d.offset,
            crc: unmask(d.crc),
            verify: self.options.verify_checksums,
        }))
    }

    /// How tensor `name` is stored: whole in one shard, or as slices (each with its shard).
    ///
    /// Errors: [`Error::TensorNotFound`].
    pub fn storage(&self, name: &str) -> Result<crate::Storage> {
        let (_, layout) = self.entry(name)?;
        let shard = |d: &DataRef| self.shards.get(d.slot).map_or(0, |s| s.id);
        Ok(match layout {
            Layout::Whole(d) => crate::Storage::Whole { shard: shard(d) },
            Layout::Sliced { pieces, .. } => crate::Storage::Partitioned(
                pieces
                    .iter()
                    .map(|p| crate::StoredSlice {
                        extents: p.extents.clone(),
                        shard: shard(&p.data),
                    })
                    .collect(),
            ),
        })
    }

    /// The tensor and layout of `name`.
    fn entry(&self, name: &str) -> Result<(&TensorInfo, &Layout)> {
        let i = self.position(name)?;
        match (self.tensors.get(i), self.layouts.get(i)) {
            (Some(info), Some(layout)) => Ok((info, layout)),
            _ => Err(self.not_found(name)),
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
            suggestions: ckpt_suggest::close_names(
                name,
                self.tensors.iter().map(|t| t.name.as_str()),
            ),
        }
    }

    fn missing_shard(&self, shard: &Shard) -> Error {
        let uses_shard = |d: &DataRef| self.shards.get(d.slot).is_some_and(|s| s.id == shard.id);
        let tensor = self
            .tensors
            .iter()
            .zip(&self.layouts)
            .find(|(_, l)| match l {
                Layout::Whole(d) => uses_shard(d),
                Layout::Sliced { pieces, .. } => pieces.iter().any(|p| uses_shard(&p.data)),
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

    /// The mapped bytes of a shard (mapped at open; a shard missing then is tried again).
    fn shard_bytes(&self, slot: usize) -> Result<&[u8]> {
        let shard = self.shards.get(slot).ok_or_else(|| Error::Header {
            path: self.index_path.clone(),
            reason: format!("internal: no shard slot {slot}"),
        })?;
        if let Some(b) = shard.bytes.get() {
            return Ok(b);
        }
        let mapped = map_file(&shard.path).map_err(|e| match e {
            Error::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
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

    /// Reads one stored run of `shape` elements: bounds, layout and (if enabled) checksum
    /// checked; fixed-size bytes borrowed unless they need byte-swapping.
    fn read_whole(&self, info: &TensorInfo, shape: &[u64], d: &DataRef) -> Result<Tensor<'_>> {
        self.read_whole_with(info, shape, d, self.options.verify_checksums)
    }

    /// [`read_whole`](Self::read_whole), checking the checksum only if `verify`.
    fn read_whole_with(
        &self,
        info: &TensorInfo,
        shape: &[u64],
        d: &DataRef,
        verify: bool,
    ) -> Result<Tensor<'_>> {
        let dtype = info.dtype;
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

    fn slices_error(&self, info: &TensorInfo, reason: String) -> Error {
        Error::Slices {
            path: self.index_path.clone(),
            tensor: info.name.clone(),
            reason,
        }
    }

    /// For merging: the layout of tensor `i`.
    pub(crate) fn layout(&self, i: usize) -> Option<&Layout> {
        self.layouts.get(i)
    }

    /// Reads one stored slice of a partitioned tensor as a tensor of its own.
    pub(crate) fn read_piece(&self, info: &TensorInfo, piece: &Piece) -> Result<Tensor<'_>> {
        let shape: Vec<u64> = piece.extents.iter().map(|e| e.1).collect();
        self.read_whole(info, &shape, &piece.data)
    }

    /// Builds the reader from the index bytes; `memory_shards` holds the data of a bundle
    /// read from memory.
    fn from_index(
        prefix: PathBuf,
        index_path: PathBuf,
        bytes: &[u8],
        options: ReadOptions,
        memory_shards: Option<Vec<Vec<u8>>>,
    ) -> Result<Self> {
        let index = Index::parse(&index_path, bytes)?;
        let mut memory = memory_shards.map(|v| v.into_iter().map(Some).collect::<Vec<_>>());
        let mut shards = Vec::with_capacity(index.shard_ids.len());
        for &id in &index.shard_ids {
            let shard = Shard {
                id,
                path: data_path(&prefix, id, index.num_shards),
                bytes: OnceLock::new(),
            };
            if let Some(mem) = memory.as_mut() {
                let data = mem
                    .get_mut(id as usize)
                    .and_then(Option::take)
                    .ok_or_else(|| Error::MissingShard {
                        path: shard.path.clone(),
                        shard: id,
                        num_shards: index.num_shards,
                        tensor: String::new(),
                    })?;
                let _ = shard.bytes.set(FileBytes::Owned(data));
            } else if let Ok(mapped) = map_file(&shard.path) {
                // Every present shard is mapped now, with the index just read, so that a
                // rewrite renaming new files over these names while the reader is in use
                // cannot mix two versions in one reader. A shard that cannot be opened is
                // reported when a tensor stored in it is read (listing needs only the index).
                let _ = shard.bytes.set(mapped);
            }
            shards.push(shard);
        }
        Ok(BundleReader {
            prefix,
            index_path,
            options,
            big_endian: index.big_endian,
            num_shards: index.num_shards,
            shards,
            tensors: index.tensors,
            layouts: index.layouts,
        })
    }
}

/// Reverses the bytes of each `unit`-byte element (big-endian to little-endian).
fn swap_bytes(buf: &mut [u8], unit: usize) {
    for chunk in buf.chunks_exact_mut(unit) {
        chunk.reverse();
    }
}
