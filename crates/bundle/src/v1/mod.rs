//! V1 checkpoints (the "TensorSlice" format of TF ≤ 0.11 and of
//! `tf.compat.v1.train.Saver(write_version=SaverDef.V1)`), read as TensorFlow's
//! `TensorSliceReader` (`tensorflow/core/util/tensor_slice_reader.{h,cc}`) reads them;
//! docs/format.md §3.11.
//!
//! A V1 checkpoint is one table file (`model.ckpt`) or several (`model.ckpt-00000-of-00002`,
//! one per device, never merged). Each file's first entry, under the empty key, is a
//! `SavedTensorSlices` whose `meta` lists the tensors with a slice in that file; every other
//! key is `EncodeTensorNameSlice(name, slice)` and holds a `SavedTensorSlices` whose `data` is
//! that slice's values in a `TensorProto`. A tensor saved whole is one slice covering it; a
//! partitioned variable has one slice per part, possibly spread over files.
//!
//! [`V1Reader::open`] reads every file's metadata once and checks it (dtypes, shapes, slices
//! inside their shapes, no overlaps, files agreeing with each other); a read fetches the
//! slices that intersect the request, checks each one's value count against its shape, and
//! copies the intersections into place with `region.rs`. The table crate verifies every
//! block checksum it reads: V1 has no per-tensor checksum.

mod meta;
mod values;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ckpt_proto::{Message, SavedTensorSlices};
use ckpt_table::Table;
use rayon::prelude::*;

use crate::error::{Error, Result, ShortPath};
use crate::mmap::{map_file, FileBytes};
use crate::paths::{locate, meta_path_of, split_v1_shard, Location};
use crate::reader::VerifyReport;
use crate::region::{copy_bytes, copy_items, intersect, show};
use crate::tensor::{num_elements, Tensor, TensorData, TensorInfo};
use crate::tensor_slice::TensorSlice;
use meta::{coverage_gap, open_table, read_catalog, StoredSlice};
use values::Values;

#[derive(Debug)]
struct V1File {
    path: PathBuf,
    bytes: FileBytes,
}

/// An open V1 checkpoint: one table file, or the shards of a sharded save. `Send + Sync`.
///
/// Opening reads the metadata entry of every file (and only that); tensors are decoded from
/// their table entries when read, and owned by the returned [`Tensor`] (V1 stores values in
/// protobuf lists, so nothing can be borrowed from the file).
///
/// ```no_run
/// use ckpt_bundle::V1Reader;
///
/// let reader = V1Reader::open("old_run/model.ckpt")?;
/// for t in reader.tensors() {
///     println!("{}\t{}\t{:?}", t.name, t.dtype, t.shape);
/// }
/// let w = reader.read("fc1/w")?;
/// # Ok::<(), ckpt_bundle::Error>(())
/// ```
#[derive(Debug)]
pub struct V1Reader {
    prefix: PathBuf,
    files: Vec<V1File>,
    missing: Vec<PathBuf>,
    tensors: Vec<TensorInfo>,
    slices: Vec<Vec<StoredSlice>>,
}

impl V1Reader {
    /// Opens a V1 checkpoint from any path form that leads to one (see
    /// [`Checkpoint::open`](crate::Checkpoint::open)): the file, one of its shards, the
    /// prefix or glob pattern of the shards, the `.meta` beside it, or a directory whose
    /// `checkpoint` state file names it.
    ///
    /// Errors: [`Error::CheckpointNotFound`] when the path leads to no V1 checkpoint (a V2
    /// bundle included); those of [`V1Reader::open_files`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        match locate(path)? {
            Location::V1 {
                prefix,
                files,
                missing,
            } => Self::open_files(prefix, files, missing),
            Location::V2 { prefix } => Err(Error::CheckpointNotFound {
                path: path.to_path_buf(),
                reason: format!(
                    "{} is a V2 checkpoint (tensor bundle), not a V1 one",
                    ShortPath(&prefix)
                ),
            }),
        }
    }

    /// Opens the given table files as one V1 checkpoint named `prefix` (the name TensorFlow
    /// gives it: the file, or the shards' glob pattern). `missing` lists shard files that
    /// should exist but do not: the checkpoint still opens and lists what the others hold;
    /// [`verify`](Self::verify) reports them.
    ///
    /// Errors: [`Error::Io`] when a file cannot be read; [`Error::Table`] for a damaged
    /// table; [`Error::V1Meta`] for a missing or refused metadata entry; [`Error::V1Tensor`]
    /// for a tensor described inconsistently (unknown dtype, bad shape or slice, overlapping
    /// slices, files disagreeing).
    pub fn open_files(prefix: PathBuf, files: Vec<PathBuf>, missing: Vec<PathBuf>) -> Result<Self> {
        let mut opened = Vec::with_capacity(files.len());
        for path in files {
            let bytes = map_file(&path)?;
            opened.push(V1File { path, bytes });
        }
        Self::build(prefix, opened, missing)
    }

    /// Reads a V1 checkpoint held in memory, one table per file. Useful for tests and fuzzing.
    ///
    /// Errors: as [`V1Reader::open_files`].
    pub fn from_bytes(files: Vec<Vec<u8>>) -> Result<Self> {
        let n = files.len();
        let opened = files
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| V1File {
                path: if n == 1 {
                    PathBuf::from("<memory>")
                } else {
                    PathBuf::from(format!("<memory>-{i:05}-of-{n:05}"))
                },
                bytes: FileBytes::Owned(bytes),
            })
            .collect();
        Self::build(PathBuf::from("<memory>"), opened, Vec::new())
    }

    fn build(prefix: PathBuf, files: Vec<V1File>, missing: Vec<PathBuf>) -> Result<Self> {
        let views: Vec<(&Path, &[u8])> = files
            .iter()
            .map(|f| (f.path.as_path(), &*f.bytes))
            .collect();
        let catalog = read_catalog(&views)?;
        Ok(V1Reader {
            prefix,
            files,
            missing,
            tensors: catalog.tensors,
            slices: catalog.slices,
        })
    }

    /// The checkpoint's name: the file, or the glob pattern of its shards
    /// (`model.ckpt-?????-of-00002`), as TensorFlow records it in a `checkpoint` file.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The table files read, sorted.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    /// Shard files that the others' `-of-N` names promise but that do not exist.
    pub fn missing_files(&self) -> &[PathBuf] {
        &self.missing
    }

    /// Every tensor, sorted by name (bytewise), partitioned tensors once with their full
    /// shape, as `tf.train.list_variables` lists them.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
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

    /// How tensor `name` is stored: whole, when one slice covers it, or as its slices; the
    /// shard of each is the index of its table file among [`files`](Self::files).
    ///
    /// Errors: [`Error::TensorNotFound`].
    pub fn storage(&self, name: &str) -> Result<crate::Storage> {
        let i = self.position(name)?;
        let (Some(info), Some(slices)) = (self.tensors.get(i), self.slices.get(i)) else {
            return Err(self.not_found(name));
        };
        let whole = |s: &StoredSlice| s.ranges.iter().zip(&info.shape).all(|(r, &n)| *r == (0, n));
        Ok(match slices.as_slice() {
            [one] if whole(one) => crate::Storage::Whole {
                shard: one.file as u32,
            },
            _ => crate::Storage::Partitioned(
                slices
                    .iter()
                    .map(|s| crate::StoredSlice {
                        extents: s.ranges.clone(),
                        shard: s.file as u32,
                    })
                    .collect(),
            ),
        })
    }

    /// Reads a whole tensor, assembled from its slices (TensorFlow's `RestoreV2` with the
    /// spec `""` on a V1 checkpoint).
    ///
    /// Errors: [`Error::TensorNotFound`]; [`Error::Slices`] when the stored slices do not cover
    /// it (a shard is missing); [`Error::V1Tensor`] for a slice whose entry is missing or
    /// garbled or whose value count disagrees with its shape; [`Error::Table`].
    pub fn read(&self, name: &str) -> Result<Tensor<'_>> {
        let i = self.position(name)?;
        let region: Vec<(u64, u64)> = self
            .tensors
            .get(i)
            .map(|t| t.shape.iter().map(|&n| (0, n)).collect())
            .unwrap_or_default();
        self.read_region(i, &region)
    }

    /// Reads the part of tensor `name` that `slice` selects, from the stored slices that
    /// intersect it (TensorFlow's `TensorSliceReader::CopySliceData`). The result has the
    /// slice's shape.
    ///
    /// Errors: those of [`read`](Self::read); [`Error::SliceSpec`] when the slice does not
    /// fit the tensor's shape.
    pub fn read_slice(&self, name: &str, slice: &TensorSlice) -> Result<Tensor<'_>> {
        let i = self.position(name)?;
        let info = self.tensors.get(i).ok_or_else(|| self.not_found(name))?;
        let region = slice.ranges(&info.shape).map_err(|e| match e {
            Error::SliceSpec { spec, reason } => Error::SliceSpec {
                spec,
                reason: format!(
                    "tensor \"{}\" of shape {:?}: {reason}",
                    info.name, info.shape
                ),
            },
            other => other,
        })?;
        self.read_region(i, &region)
    }

    /// Reads every entry of every file (each table block's checksum is verified as it is
    /// read) and decodes every slice, checking its value count; then checks that each tensor's
    /// slices are all present and cover it. Files are checked in parallel.
    ///
    /// Errors: [`Error::MissingShard`] for a missing shard file; [`Error::Table`];
    /// [`Error::V1Tensor`] for a slice that is missing, garbled, miscounted or not listed in
    /// its file's metadata; [`Error::Slices`] for a tensor its slices do not cover.
    pub fn verify(&self) -> Result<VerifyReport> {
        if let Some(path) = self.missing.first() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let (shard, num_shards) = split_v1_shard(name).map_or((0, 0), |(_, k, n)| (k, n));
            return Err(Error::MissingShard {
                path: path.clone(),
                shard,
                num_shards,
                tensor: String::new(),
            });
        }
        let bytes: Vec<u64> = (0..self.files.len())
            .into_par_iter()
            .map(|f| self.verify_file(f))
            .collect::<Result<_>>()?;
        for (info, slices) in self.tensors.iter().zip(&self.slices) {
            let full: Vec<(u64, u64)> = info.shape.iter().map(|&n| (0, n)).collect();
            if let Some(reason) = coverage_gap(slices, &full) {
                return Err(self.slices_error(info, reason));
            }
        }
        Ok(VerifyReport {
            tensors: self.tensors.len(),
            bytes: bytes.iter().sum(),
        })
    }

    /// Checks every entry of file `f`; returns its size in bytes.
    fn verify_file(&self, f: usize) -> Result<u64> {
        let file = self.file(f)?;
        // Every slice the metadata places in this file, by key.
        let mut expected: HashMap<Vec<u8>, (usize, usize)> = HashMap::new();
        for (t, (info, slices)) in self.tensors.iter().zip(&self.slices).enumerate() {
            for (k, s) in slices.iter().enumerate() {
                if s.file == f {
                    expected.insert(s.slice.index_key(&info.name), (t, k));
                }
            }
        }
        let table = open_table(&file.path, &file.bytes)?;
        for row in table.iter().skip(1) {
            let (key, value) = row.map_err(|error| Error::Table {
                path: file.path.clone(),
                error,
            })?;
            let Some((t, k)) = expected.remove(&key) else {
                return Err(Error::V1Tensor {
                    path: file.path.clone(),
                    tensor: crate::index::show_key(&key),
                    reason: "the entry is not listed in the file's metadata".to_string(),
                });
            };
            let (info, stored) = self.slice_at(t, k)?;
            self.decode_slice(file, info, stored, &value)?;
        }
        if let Some((t, k)) = expected.into_values().min() {
            let (info, stored) = self.slice_at(t, k)?;
            return Err(self.slice_error(file, info, stored, "has no entry in the file".into()));
        }
        Ok(file.bytes.len() as u64)
    }

    fn slice_at(&self, t: usize, k: usize) -> Result<(&TensorInfo, &StoredSlice)> {
        match (
            self.tensors.get(t),
            self.slices.get(t).and_then(|s| s.get(k)),
        ) {
            (Some(info), Some(stored)) => Ok((info, stored)),
            _ => Err(self.internal(format!("no slice {k} of tensor {t}"))),
        }
    }

    fn file(&self, f: usize) -> Result<&V1File> {
        self.files
            .get(f)
            .ok_or_else(|| self.internal(format!("no file {f}")))
    }

    /// An index the catalog guarantees, found out of range.
    fn internal(&self, what: String) -> Error {
        Error::V1Meta {
            path: self.prefix.clone(),
            reason: format!("internal: {what}"),
        }
    }

    /// Assembles the box `region` of tensor `t` from the stored slices that intersect it.
    fn read_region(&self, t: usize, region: &[(u64, u64)]) -> Result<Tensor<'static>> {
        let (Some(info), Some(slices)) = (self.tensors.get(t), self.slices.get(t)) else {
            return Err(self.internal(format!("no tensor {t}")));
        };
        if let Some(reason) = coverage_gap(slices, region) {
            return Err(self.slices_error(info, reason));
        }
        let shape: Vec<u64> = region.iter().map(|r| r.1).collect();
        // Each file's table is opened once per read.
        let mut tables: Vec<Option<Table<'_>>> = (0..self.files.len()).map(|_| None).collect();
        let mut parts = Vec::new();
        for stored in slices {
            let Some(common) = intersect(&stored.ranges, region) else {
                continue;
            };
            if common.iter().any(|r| r.1 == 0) {
                continue;
            }
            let file = self.file(stored.file)?;
            let slot = tables
                .get_mut(stored.file)
                .ok_or_else(|| self.internal(format!("no file {}", stored.file)))?;
            let table = match slot {
                Some(t) => t,
                None => slot.insert(open_table(&file.path, &file.bytes)?),
            };
            let key = stored.slice.index_key(&info.name);
            let value = table.get(&key).map_err(|error| Error::Table {
                path: file.path.clone(),
                error,
            })?;
            let Some(value) = value else {
                return Err(self.slice_error(
                    file,
                    info,
                    stored,
                    "has no entry in the file".into(),
                ));
            };
            let values = self.decode_slice(file, info, stored, &value)?;
            // A stored slice that is exactly the request is the answer.
            if stored.ranges == region {
                return self.tensor(info, shape, values);
            }
            parts.push((stored, common, values));
        }
        let count = num_elements(&shape).ok_or_else(|| {
            self.slices_error(info, format!("the region {} overflows", show(region)))
        })?;
        let copy_error = |reason: String| self.slices_error(info, reason);
        let data = match info.dtype.element_size() {
            Some(elem) => {
                // The slices are disjoint and each held exactly its own volume, so the
                // decoded bytes already amount to at least the region's: nothing is
                // allocated beyond what the files hold.
                let total = usize::try_from(count.saturating_mul(elem as u64))
                    .map_err(|_| copy_error("too large for this machine".into()))?;
                let mut out = vec![0u8; total];
                for (stored, common, values) in &parts {
                    if let Values::Bytes(src) = values {
                        copy_bytes(&mut out, region, src, &stored.ranges, common, elem)
                            .map_err(copy_error)?;
                    }
                }
                TensorData::Bytes(Cow::Owned(out))
            }
            None => {
                let total = usize::try_from(count)
                    .map_err(|_| copy_error("too large for this machine".into()))?;
                let mut out: Vec<Cow<'static, [u8]>> = vec![Cow::Borrowed(&[][..]); total];
                for (stored, common, values) in parts {
                    if let Values::Strings(src) = values {
                        let src: Vec<Cow<'static, [u8]>> =
                            src.into_iter().map(Cow::Owned).collect();
                        copy_items(&mut out, region, &src, &stored.ranges, &common)
                            .map_err(copy_error)?;
                    }
                }
                TensorData::Strings(out)
            }
        };
        Ok(Tensor {
            dtype: info.dtype,
            shape,
            data,
        })
    }

    /// A tensor of `shape` from one slice's values.
    fn tensor(
        &self,
        info: &TensorInfo,
        shape: Vec<u64>,
        values: Values,
    ) -> Result<Tensor<'static>> {
        let t = match values {
            Values::Bytes(b) => Tensor::from_bytes(info.dtype, shape, b),
            Values::Strings(s) => {
                Tensor::from_strings(info.dtype, shape, s.into_iter().map(Cow::Owned).collect())
            }
        };
        t.map_err(|e| match e {
            Error::InvalidTensor { reason, .. } => self.slices_error(info, reason),
            other => other,
        })
    }

    /// Decodes the `SavedTensorSlices` stored for one slice: its name and slice must be the
    /// ones the key was built from, and its value list must hold one value per element.
    fn decode_slice(
        &self,
        file: &V1File,
        info: &TensorInfo,
        stored: &StoredSlice,
        value: &[u8],
    ) -> Result<Values> {
        let bad = |reason: String| self.slice_error(file, info, stored, reason);
        let sts = SavedTensorSlices::decode(value)
            .map_err(|e| bad(format!("entry is not a SavedTensorSlices ({e})")))?;
        let data = sts
            .data
            .ok_or_else(|| bad("entry holds no SavedSlice data".to_string()))?;
        if data.name != info.name {
            return Err(bad(format!(
                "entry is for tensor \"{}\"",
                data.name.escape_debug()
            )));
        }
        let recorded = TensorSlice::from_proto(&data.slice.unwrap_or_default())
            .map_err(|r| bad(format!("entry's slice: {r}")))?;
        if recorded != stored.slice {
            return Err(bad(format!(
                "entry's slice is {recorded}, the metadata's {}",
                stored.slice
            )));
        }
        let count = num_elements(&stored.ranges.iter().map(|r| r.1).collect::<Vec<_>>())
            .ok_or_else(|| bad("element count overflows".to_string()))?;
        values::decode(info.dtype, count, data.data.unwrap_or_default()).map_err(bad)
    }

    fn slice_error(
        &self,
        file: &V1File,
        info: &TensorInfo,
        stored: &StoredSlice,
        reason: String,
    ) -> Error {
        Error::V1Tensor {
            path: file.path.clone(),
            tensor: format!("{}[{}]", info.name, stored.slice),
            reason,
        }
    }

    fn slices_error(&self, info: &TensorInfo, reason: String) -> Error {
        let hint = if self.missing.is_empty() {
            String::new()
        } else {
            format!(
                " (missing shard file{}: {})",
                if self.missing.len() > 1 { "s" } else { "" },
                self.missing
                    .iter()
                    .map(|p| ShortPath(p).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Error::Slices {
            path: self.prefix.clone(),
            tensor: info.name.clone(),
            reason: format!("{reason}{hint}"),
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

    /// The `.meta` file TensorFlow's Saver writes beside this checkpoint.
    pub(crate) fn meta_path(&self) -> PathBuf {
        meta_path_of(&self.prefix)
    }
}
