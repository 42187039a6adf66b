//! [`Checkpoint`]: one reader for both checkpoint formats, opened from any path form.

use std::path::{Path, PathBuf};

use crate::error::{Result, ShortPath};
use crate::paths::{locate, meta_path, Location};
use crate::reader::{BundleReader, DeferredCheck, ReadOptions, VerifyReport};
use crate::tensor::{Storage, Tensor, TensorInfo};
use crate::tensor_slice::TensorSlice;
use crate::v1::V1Reader;

/// The on-disk format of a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// The "TensorSlice" format of TF ≤ 0.11 and `Saver(write_version=V1)`: one table file
    /// per device, values in protobuf lists (docs/format.md §3.11).
    V1,
    /// The tensor bundle of TF ≥ 0.12: an `.index` table and `.data-*` shards (§3).
    V2,
}

impl Format {
    /// `"V1"` or `"V2"`, as TensorFlow's `SaverDef.CheckpointFormatVersion` names them.
    pub fn name(self) -> &'static str {
        match self {
            Format::V1 => "V1",
            Format::V2 => "V2",
        }
    }
}

/// An open checkpoint of either format, with one listing and reading API.
///
/// It is an enum rather than a trait object because the set of formats is closed (TensorFlow
/// will not add a third), the methods return borrowed [`Tensor`]s whose lifetimes a `dyn`
/// trait would make awkward, and a caller that needs a format's own API (the shard count and
/// byte order of a bundle, the table files of a V1 checkpoint) matches on it. Every method
/// forwards to [`BundleReader`] or [`V1Reader`]; see those for the format-specific checks.
///
/// ```
/// use ckpt_bundle::{BundleWriter, Checkpoint, Format, Tensor};
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = BundleWriter::create(dir.path().join("model.ckpt-1"))?;
/// writer.add("w", &Tensor::from_slice(vec![2], &[1.5f32, -2.0])?)?;
/// writer.finish()?;
/// std::fs::write(dir.path().join("checkpoint"), "model_checkpoint_path: \"model.ckpt-1\"\n")?;
///
/// let ckpt = Checkpoint::open(dir.path())?; // the directory's latest checkpoint
/// assert_eq!(ckpt.format(), Format::V2);
/// assert_eq!(ckpt.prefix(), dir.path().join("model.ckpt-1"));
/// assert_eq!(&*ckpt.read("w")?.as_slice::<f32>()?, &[1.5, -2.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum Checkpoint {
    /// A tensor bundle.
    V2(BundleReader),
    /// A V1 checkpoint.
    V1(V1Reader),
}

impl Checkpoint {
    /// Opens the checkpoint `path` leads to, deciding the format as TensorFlow does: V2 when
    /// `<prefix>.index` exists, otherwise V1 with the prefix as a glob pattern. Accepted:
    ///
    /// - a prefix (`runs/model.ckpt-1000`), or any of its files (`.index`, `.data-*`,
    ///   `.meta`);
    /// - a V1 file (`model.ckpt`), one of its shards (`model.ckpt-00000-of-00002`: the whole
    ///   set is opened), the shards' prefix (`model.ckpt`) or glob pattern
    ///   (`model.ckpt-?????-of-00002`);
    /// - a directory with a `checkpoint` state file: its latest checkpoint, V1 or V2, also when
    ///   the recorded path is stale (another machine, Windows separators): then the same file
    ///   name inside the directory is used;
    /// - a SavedModel directory, or its `saved_model.pb`: the bundle `variables/variables`;
    /// - a directory with exactly one `.index` file.
    ///
    /// Errors: [`Error::RemotePath`](crate::Error::RemotePath) for `gs://`, `s3://` and other
    /// URLs; [`Error::CheckpointNotFound`](crate::Error::CheckpointNotFound) saying what was
    /// looked for (a `.meta` without data files included), or when a file is neither a bundle
    /// nor a V1 table; [`Error::StateFile`](crate::Error::StateFile); and the errors of
    /// [`BundleReader::open`] and [`V1Reader::open_files`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, ReadOptions::default())
    }

    /// [`Checkpoint::open`] with options (V1 tables are always checksummed, block by block).
    pub fn open_with(path: impl AsRef<Path>, options: ReadOptions) -> Result<Self> {
        let path = path.as_ref();
        match locate(path)? {
            Location::V2 { prefix } => {
                Ok(Checkpoint::V2(BundleReader::open_prefix(prefix, options)?))
            }
            Location::V1 {
                prefix,
                files,
                missing,
            } => {
                // A lone file that is not a table is no checkpoint at all, rather than a
                // damaged V1 one.
                let lone = files.len() == 1 && missing.is_empty();
                match V1Reader::open_files(prefix.clone(), files, missing) {
                    Err(crate::Error::Table { error, .. })
                        if lone
                            && matches!(
                                error,
                                ckpt_table::Error::BadMagic { .. }
                                    | ckpt_table::Error::TooShort { .. }
                            ) =>
                    {
                        Err(crate::Error::CheckpointNotFound {
                            path: path.to_path_buf(),
                            reason: format!(
                                "{} does not exist, and {} is not a V1 checkpoint either ({error})",
                                ShortPath(&crate::index_path(&prefix)),
                                ShortPath(&prefix)
                            ),
                        })
                    }
                    other => other.map(Checkpoint::V1),
                }
            }
        }
    }

    /// Which format it is.
    pub fn format(&self) -> Format {
        match self {
            Checkpoint::V2(_) => Format::V2,
            Checkpoint::V1(_) => Format::V1,
        }
    }

    /// The checkpoint's name: the V2 prefix, the V1 file, or the glob pattern of V1 shards
    /// (`model.ckpt-?????-of-00002`), as a `checkpoint` state file records it.
    pub fn prefix(&self) -> &Path {
        match self {
            Checkpoint::V2(r) => r.prefix(),
            Checkpoint::V1(r) => r.prefix(),
        }
    }

    /// Where TensorFlow's Saver writes the graph of this checkpoint: `<prefix>.meta`, a sharded
    /// V1 pattern losing its `-?????-of-NNNNN` first (`saver.py`, `meta_graph_filename`).
    /// The file may not exist.
    pub fn meta_path(&self) -> PathBuf {
        match self {
            Checkpoint::V2(r) => meta_path(r.prefix()),
            Checkpoint::V1(r) => r.meta_path(),
        }
    }

    /// Data files that should exist but do not (V2 shards named by the index, V1 shards named
    /// by their siblings' `-of-N`). Listing still works; reading what they held and
    /// [`verify`](Self::verify) fail.
    pub fn missing_files(&self) -> Vec<PathBuf> {
        match self {
            Checkpoint::V2(r) => r
                .missing_shards()
                .into_iter()
                .map(Path::to_path_buf)
                .collect(),
            Checkpoint::V1(r) => r.missing_files().to_vec(),
        }
    }

    /// Every tensor, sorted by name (bytewise), partitioned tensors once under their full
    /// name and shape, as `tf.train.list_variables` lists them.
    pub fn tensors(&self) -> &[TensorInfo] {
        match self {
            Checkpoint::V2(r) => r.tensors(),
            Checkpoint::V1(r) => r.tensors(),
        }
    }

    /// The listing entry of `name`.
    ///
    /// Errors: [`Error::TensorNotFound`](crate::Error::TensorNotFound), with close names.
    pub fn info(&self, name: &str) -> Result<&TensorInfo> {
        match self {
            Checkpoint::V2(r) => r.info(name),
            Checkpoint::V1(r) => r.info(name),
        }
    }

    /// Whether a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Checkpoint::V2(r) => r.contains(name),
            Checkpoint::V1(r) => r.contains(name),
        }
    }

    /// The number of data shards: a bundle's header count, or a V1 checkpoint's table files.
    pub fn num_shards(&self) -> usize {
        match self {
            Checkpoint::V2(r) => r.num_shards(),
            Checkpoint::V1(r) => r.files().count() + r.missing_files().len(),
        }
    }

    /// How tensor `name` is stored: whole, or as the slices of a partitioned variable, with
    /// the shard of each (see [`Storage`]).
    ///
    /// Errors: [`Error::TensorNotFound`](crate::Error::TensorNotFound).
    pub fn storage(&self, name: &str) -> Result<Storage> {
        match self {
            Checkpoint::V2(r) => r.storage(name),
            Checkpoint::V1(r) => r.storage(name),
        }
    }

    /// Reads a whole tensor (partitioned ones assembled). V2 data is borrowed from the memory
    /// map where possible; V1 data is decoded into an owned tensor.
    ///
    /// Errors: those of [`BundleReader::read`] and [`V1Reader::read`].
    pub fn read(&self, name: &str) -> Result<Tensor<'_>> {
        match self {
            Checkpoint::V2(r) => r.read(name),
            Checkpoint::V1(r) => r.read(name),
        }
    }

    /// Reads a whole tensor, leaving the checksum of a V2 tensor stored whole with fixed-size
    /// elements to the caller (see [`BundleReader::read_deferred`]); other tensors are read
    /// and checked as by [`read`](Self::read) and come with `None`.
    ///
    /// Errors: those of [`read`](Self::read), the deferred checksum mismatch excepted.
    pub fn read_deferred(&self, name: &str) -> Result<(Tensor<'_>, Option<DeferredCheck>)> {
        match self {
            Checkpoint::V2(r) => r.read_deferred(name),
            Checkpoint::V1(r) => Ok((r.read(name)?, None)),
        }
    }

    /// The stored bytes of a tensor or of one stored slice of it, for copying unchanged
    /// (see [`BundleReader::stored`]); always `Ok(None)` for a V1 checkpoint, whose values are
    /// protobuf lists rather than bundle bytes.
    ///
    /// Errors: those of [`BundleReader::stored`]; for V1, [`Error::TensorNotFound`](crate::Error::TensorNotFound).
    pub fn stored(
        &self,
        name: &str,
        extents: Option<&[(u64, u64)]>,
    ) -> Result<Option<crate::StoredTensor<'_>>> {
        match self {
            Checkpoint::V2(r) => r.stored(name, extents),
            Checkpoint::V1(r) => r.info(name).map(|_| None),
        }
    }

    /// Reads the part of tensor `name` that `slice` selects.
    ///
    /// Errors: those of [`BundleReader::read_slice`] and [`V1Reader::read_slice`].
    pub fn read_slice(&self, name: &str, slice: &TensorSlice) -> Result<Tensor<'_>> {
        match self {
            Checkpoint::V2(r) => r.read_slice(name, slice),
            Checkpoint::V1(r) => r.read_slice(name, slice),
        }
    }

    /// Reads everything and checks every checksum (V2: each tensor's crc32c; V1: each table
    /// block's, and every slice's value count).
    ///
    /// Errors: those of [`BundleReader::verify`] and [`V1Reader::verify`].
    pub fn verify(&self) -> Result<VerifyReport> {
        match self {
            Checkpoint::V2(r) => r.verify(),
            Checkpoint::V1(r) => r.verify(),
        }
    }
}

impl From<BundleReader> for Checkpoint {
    fn from(r: BundleReader) -> Self {
        Checkpoint::V2(r)
    }
}

impl From<V1Reader> for Checkpoint {
    fn from(r: V1Reader) -> Self {
        Checkpoint::V1(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Checkpoint>();
        send_sync::<V1Reader>();
        assert_eq!((Format::V1.name(), Format::V2.name()), ("V1", "V2"));
    }
}
