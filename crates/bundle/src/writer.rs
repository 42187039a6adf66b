//! `BundleWriter`: writes a bundle byte-identical to TensorFlow's `BundleWriter`, atomically,
//! in one data shard or several (as a sharded save leaves it after `MergeBundles`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use ckpt_proto::tensor_shape_proto::Dim;
use ckpt_proto::{BundleEntryProto, BundleHeaderProto, Message, TensorShapeProto, VersionDef};

use crate::atomic::{remove_stale_temp_files, temp_name};
use crate::commit::commit;
use crate::crc::{crc32c, crc32c_append, mask};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::index::{Index, MAX_SHARDS};
use crate::paths::{data_path, index_path};
use crate::stored::StoredTensor;
use crate::strings::{encode_string_header, encode_variants};
use crate::tensor::{Tensor, TensorData};
use crate::tensor_slice::{parse_shape_and_slice, Extent, TensorSlice};

/// Size of the data file's write buffer; tensors at least this large bypass it.
const BUFFER_SIZE: usize = 4 << 20;

/// How a bundle is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// `fsync` the data and index files before renaming them into place (default `true`),
    /// so a power loss cannot leave a renamed but empty file. TensorFlow itself does not
    /// sync; turning this off matches its durability and speed.
    pub sync: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { sync: true }
    }
}

/// The data file being written: a large buffer in front of the file, and the position.
struct DataSink {
    /// The file (or what a test wraps it in); a stand-in while `background` has it.
    inner: Box<dyn Write + Send>,
    buf: Vec<u8>,
    pos: u64,
    /// The thread writing handed-over buffers, while it runs.
    background: Option<Background>,
}

/// A thread that writes whole buffers handed to it, in order, and hands each back once it is
/// written ([`BundleWriter::add_owned_with_crc32c`]).
struct Background {
    /// Buffers to write.
    send: SyncSender<Vec<u8>>,
    /// Buffers written, with the result of their write.
    done: Receiver<(Vec<u8>, std::io::Result<()>)>,
    /// Gives the file back when `send` is closed.
    thread: JoinHandle<Box<dyn Write + Send>>,
    /// Buffers sent and not yet received back.
    in_flight: usize,
}

/// The error of a writing thread that stopped without saying why (it panicked).
fn thread_lost() -> std::io::Error {
    std::io::Error::other("the thread writing the data file stopped")
}

impl DataSink {
    /// Waits until every buffer handed to the background thread is written and takes the file
    /// back; the first error those writes met. Does nothing when no thread runs.
    fn settle(&mut self) -> std::io::Result<()> {
        let Some(background) = self.background.take() else {
            return Ok(());
        };
        let Background {
            send, done, thread, ..
        } = background;
        drop(send);
        let mut result = Ok(());
        for (_, written) in done.iter() {
            if result.is_ok() {
                result = written;
            }
        }
        self.inner = thread.join().map_err(|_| thread_lost())?;
        result
    }

    /// Appends `bytes` on the background thread (started on first use), returning a buffer
    /// that is no longer needed: the one appended at the call before once it is written, or an
    /// empty one. So at most two buffers are in use, and the caller fills one while the other
    /// is written. Errors: a failed write of an earlier buffer.
    fn append_owned(&mut self, bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
        // A small buffer is not worth a thread: it is copied into the write buffer and given
        // back at once.
        if self.background.is_none() && bytes.len() < BUFFER_SIZE {
            self.append(&bytes)?;
            return Ok(bytes);
        }
        if self.background.is_none() {
            self.flush_buf()?;
            let inner = std::mem::replace(&mut self.inner, Box::new(std::io::sink()));
            let (send, todo) = sync_channel::<Vec<u8>>(2);
            let (report, done) = channel();
            let spawned = std::thread::Builder::new()
                .name("ckpt-bundle-writer".to_string())
                .spawn(move || {
                    let mut inner = inner;
                    let mut failed = false;
                    for buf in todo {
                        // After a failure nothing more is written: the file is abandoned.
                        let written = if failed {
                            Err(std::io::Error::other("an earlier write failed"))
                        } else {
                            inner.write_all(&buf)
                        };
                        failed |= written.is_err();
                        if report.send((buf, written)).is_err() {
                            break;
                        }
                    }
                    inner
                });
            let thread = spawned?;
            self.background = Some(Background {
                send,
                done,
                thread,
                in_flight: 0,
            });
        }
        let Some(background) = self.background.as_mut() else {
            return Err(thread_lost());
        };
        let len = bytes.len() as u64;
        background.send.send(bytes).map_err(|_| thread_lost())?;
        background.in_flight += 1;
        self.pos += len;
        if background.in_flight < 2 {
            return Ok(Vec::new());
        }
        let (spare, written) = background.done.recv().map_err(|_| thread_lost())?;
        background.in_flight -= 1;
        written.map(|()| spare)
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Appends bytes whose checksum the caller computes.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        // The buffer is allocated on first use: a shard that holds only large tensors, or
        // none, costs no buffer.
        if self.buf.capacity() == 0 && bytes.len() < BUFFER_SIZE {
            self.buf.reserve_exact(BUFFER_SIZE);
        }
        if bytes.len() >= BUFFER_SIZE {
            self.flush_buf()?;
            self.inner.write_all(bytes)?;
        } else {
            if self.buf.len() + bytes.len() > BUFFER_SIZE {
                self.flush_buf()?;
            }
            self.buf.extend_from_slice(bytes);
        }
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Appends bytes and returns their crc32c. Large buffers are checksummed on another
    /// thread while they are written straight through to the file.
    fn append_with_crc(&mut self, bytes: &[u8]) -> std::io::Result<u32> {
        if bytes.len() < BUFFER_SIZE {
            let crc = ::crc32c::crc32c(bytes);
            self.append(bytes)?;
            return Ok(crc);
        }
        self.flush_buf()?;
        let inner = &mut self.inner;
        let (crc, written) = rayon::join(|| crc32c(bytes), || inner.write_all(bytes));
        written?;
        self.pos += bytes.len() as u64;
        Ok(crc)
    }
}

/// Where the bytes of a tensor being added come from, beyond the tensor itself.
#[derive(Clone, Copy)]
enum Origin<'a, 'r> {
    /// Nowhere else: checksummed as written.
    Fresh,
    /// Stored unchanged in another bundle: copied file to file.
    Stored(&'a StoredTensor<'r>),
    /// Computed by the caller, who gives their crc32c.
    Checksummed(u32),
}

/// One data file being written.
struct Shard {
    /// Its temporary name (`<data file>.tempstate-<pid>-<n>`).
    tmp: PathBuf,
    /// `None` once the writer has failed or finished.
    sink: Option<DataSink>,
    /// Another handle to the data file, for `fsync`.
    file: Option<File>,
}

/// Writes one bundle: `<prefix>.index` and its data shards, `<prefix>.data-00000-of-00001`
/// by default, or `<prefix>.data-0000k-of-0000N` for a writer made with
/// [`create_sharded`](Self::create_sharded).
///
/// Tensors go to the current shard's data file in the order they are added; the index is
/// written sorted at [`finish`](Self::finish). For the same tensors in the same order, both
/// files are byte-identical to what TensorFlow's `BundleWriter` (and so `tf.train.Saver`)
/// writes; a sharded bundle is laid out as `MergeBundles` leaves a sharded save (the header's
/// `num_shards` is the shard count, each entry names its shard, and every shard's file exists,
/// empty if no tensor went to it).
///
/// The files are first written under temporary names (`<file>.tempstate-<pid>-<n>`) and
/// put in place by `finish` so that a crash at any moment leaves the complete old checkpoint,
/// the complete new one, or no checkpoint with the old one kept whole under
/// [`backup_prefix`](crate::backup_prefix) (see [`crate::commit`] for the steps); never the old
/// index over new data. Creating a writer removes the temporary files that killed writers
/// left in the directory. A write error abandons the writer and deletes its temporary
/// files; so does dropping it without calling `finish`. Errors about a tensor itself
/// (empty or duplicate name, data that disagrees with dtype and shape) write nothing and
/// leave the writer usable.
pub struct BundleWriter {
    prefix: PathBuf,
    index_tmp: PathBuf,
    options: WriteOptions,
    shards: Vec<Shard>,
    /// The shard that [`add`](Self::add) and the slice methods write to.
    current: usize,
    /// Set once the writer has failed or finished.
    failed: bool,
    /// Whether each shard's sink writes straight to its file, so that
    /// [`add_stored`](Self::add_stored) may copy into the file itself (false when a test
    /// wraps the file).
    direct: bool,
    entries: BTreeMap<Vec<u8>, BundleEntryProto>,
}

impl std::fmt::Debug for BundleWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleWriter")
            .field("prefix", &self.prefix)
            .field("shards", &self.shards.len())
            .field("current", &self.current)
            .field("entries", &self.entries.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl BundleWriter {
    /// Starts a bundle at `prefix` (creating its directory), with default options.
    pub fn create(prefix: impl AsRef<Path>) -> Result<Self> {
        Self::create_with(prefix, WriteOptions::default())
    }

    /// [`BundleWriter::create`] with options.
    pub fn create_with(prefix: impl AsRef<Path>, options: WriteOptions) -> Result<Self> {
        Self::create_wrapped(prefix.as_ref(), 1, options, true, |f| Box::new(f))
    }

    /// Starts a bundle of `num_shards` data files, `<prefix>.data-0000k-of-0000N`, as a sharded
    /// save leaves one after `MergeBundles` (docs/format.md §3.9). Tensors go to shard 0 until
    /// [`set_shard`](Self::set_shard) picks another. Every shard's file is written, empty when
    /// no tensor went to it.
    ///
    /// Errors: [`Error::InvalidTensor`] (naming no tensor) when `num_shards` is 0 or above
    /// [`MAX_SHARDS`]; otherwise as [`create`](Self::create).
    pub fn create_sharded(
        prefix: impl AsRef<Path>,
        num_shards: u32,
        options: WriteOptions,
    ) -> Result<Self> {
        Self::create_wrapped(prefix.as_ref(), num_shards, options, true, |f| Box::new(f))
    }

    /// Creates the writer, letting `wrap` stand between each shard's buffer and its data file
    /// (tests use it to simulate a disk that fills up). `direct` says `wrap` returns the file
    /// itself, so that stored tensors may be copied into it by the kernel.
    pub(crate) fn create_wrapped(
        prefix: &Path,
        num_shards: u32,
        options: WriteOptions,
        direct: bool,
        mut wrap: impl FnMut(File) -> Box<dyn Write + Send>,
    ) -> Result<Self> {
        if prefix.file_name().is_none() {
            return Err(Error::CheckpointNotFound {
                path: prefix.to_path_buf(),
                reason: "a checkpoint prefix needs a file name part".to_string(),
            });
        }
        if num_shards == 0 || num_shards > MAX_SHARDS as u32 {
            return Err(Error::InvalidTensor {
                tensor: String::new(),
                reason: format!("a bundle has 1 to {MAX_SHARDS} data shards, not {num_shards}"),
            });
        }
        if let Some(dir) = prefix.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        // Leftovers of writers killed midway in this directory go first.
        let dir = prefix.parent().filter(|d| !d.as_os_str().is_empty());
        remove_stale_temp_files(dir.unwrap_or(Path::new(".")));
        let mut writer = BundleWriter {
            prefix: prefix.to_path_buf(),
            index_tmp: temp_name(&index_path(prefix)),
            options,
            shards: Vec::with_capacity(num_shards as usize),
            current: 0,
            failed: false,
            direct,
            entries: BTreeMap::new(),
        };
        for k in 0..num_shards {
            let tmp = temp_name(&data_path(prefix, k, num_shards));
            // On error, dropping the writer removes the files made so far.
            let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let sync_handle = file.try_clone();
            let inner = wrap(file);
            writer.shards.push(Shard {
                tmp: tmp.clone(),
                sink: Some(DataSink {
                    inner,
                    buf: Vec::new(),
                    pos: 0,
                    background: None,
                }),
                file: None,
            });
            let handle = sync_handle.map_err(|e| Error::io(&tmp, e))?;
            if let Some(shard) = writer.shards.last_mut() {
                shard.file = Some(handle);
            }
        }
        Ok(writer)
    }

    /// The prefix being written.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The number of data shards being written.
    pub fn num_shards(&self) -> u32 {
        self.shards.len() as u32
    }

    /// Sends the tensors added from now on to data shard `shard` (0-based).
    ///
    /// Errors: [`Error::InvalidTensor`] (naming no tensor) when the bundle has no such shard.
    pub fn set_shard(&mut self, shard: u32) -> Result<()> {
        if shard as usize >= self.shards.len() {
            return Err(Error::InvalidTensor {
                tensor: String::new(),
                reason: format!(
                    "shard {shard} does not exist: the bundle has {} data shards",
                    self.shards.len()
                ),
            });
        }
        self.current = shard as usize;
        Ok(())
    }

    /// Appends `tensor` under `name`.
    pub fn add(&mut self, name: &str, tensor: &Tensor<'_>) -> Result<()> {
        self.add_from(name, tensor, Origin::Fresh)
    }

    /// [`add`](Self::add) of a tensor of fixed-size elements whose bytes' crc32c (unmasked)
    /// the caller has already computed (while producing them, say, as `ckpt average` does
    /// chunk by chunk while each chunk is in cache), so the writer does not go over them
    /// again. The crc32c is trusted as given: a wrong one makes a checkpoint that fails
    /// verification. A string or variant tensor is checksummed as `add` does, `crc32c`
    /// ignored.
    ///
    /// Errors: those of [`add`](Self::add).
    pub fn add_with_crc32c(&mut self, name: &str, tensor: &Tensor<'_>, crc32c: u32) -> Result<()> {
        self.add_from(name, tensor, Origin::Checksummed(crc32c))
    }

    /// [`add_with_crc32c`](Self::add_with_crc32c) of a tensor of fixed-size elements whose
    /// bytes the caller hands over (`dtype`, `shape`, `bytes` as [`Tensor::from_bytes`] takes
    /// them): they are written to the data file by a background thread while the caller goes
    /// on, computing the next tensor, say. Returns a buffer for the caller to reuse: the one
    /// handed over at the call before, once it is written (its bytes unspecified), or an
    /// empty one; so at most two buffers are in use. The file's bytes are the same as `add`
    /// writes.
    ///
    /// A write that fails in the background is reported by a later call (of any kind) or by
    /// [`finish`](Self::finish), which then abandon the writer as a failed `add` does: nothing
    /// is left under the final names. The other methods wait for the background writes
    /// before they write.
    ///
    /// Errors: those of [`add`](Self::add); [`Error::InvalidTensor`] for a dtype of
    /// variable-size elements (string, variant).
    pub fn add_owned_with_crc32c(
        &mut self,
        name: &str,
        dtype: DType,
        shape: Vec<u64>,
        bytes: Vec<u8>,
        crc32c: u32,
    ) -> Result<Vec<u8>> {
        self.check_usable()?;
        if dtype.element_size().is_none() {
            return Err(Error::InvalidTensor {
                tensor: name.to_string(),
                reason: format!("{dtype:?} elements have no fixed size to hand over as bytes"),
            });
        }
        let entry = {
            let tensor = Tensor::from_bytes(dtype, shape, bytes.as_slice())?;
            if name.is_empty() {
                // The same error as `add`'s.
                return self.add(name, &tensor).map(|()| Vec::new());
            }
            if self.entries.contains_key(name.as_bytes()) {
                return Err(self.duplicate(name));
            }
            tensor.check(name)?;
            BundleEntryProto {
                dtype: tensor.dtype.to_proto() as i32,
                shape: Some(shape_proto(&tensor.shape)),
                shard_id: self.current as i32,
                offset: 0,
                size: bytes.len() as i64,
                crc32c: mask(crc32c),
                slices: Vec::new(),
            }
        };
        let Some(shard) = self.shards.get_mut(self.current) else {
            return Err(self.failed());
        };
        let Some(sink) = shard.sink.as_mut() else {
            return Err(self.failed());
        };
        let offset = sink.pos;
        match sink.append_owned(bytes) {
            Ok(spare) => {
                self.entries.insert(
                    name.as_bytes().to_vec(),
                    BundleEntryProto {
                        offset: offset as i64,
                        ..entry
                    },
                );
                Ok(spare)
            }
            Err(e) => {
                let err = Error::io(&shard.tmp, e);
                self.abandon();
                Err(err)
            }
        }
    }

    /// Appends a tensor stored in another bundle, unchanged, under `name`: the same entry and
    /// data bytes as [`add`](Self::add) of the tensor [`BundleReader::read`] gives, but the
    /// bytes go from the input's data file to this one by the kernel (`copy_file_range` on
    /// Linux, through [`std::io::copy`]), not through memory and `write(2)`. When `stored`
    /// [verifies](StoredTensor::verifies), its crc32c is computed from the mapped input
    /// while the copy runs (on another thread), and a mismatch undoes the copy. Where the
    /// kernel copy is not available (another platform, the input renamed over since it was
    /// opened), the bytes are written from the map as `add` writes them.
    ///
    /// Errors: those of [`add`](Self::add); [`Error::ChecksumMismatch`] naming the input's
    /// data file when the bytes do not match the input's crc32c (nothing is written then and
    /// the writer stays usable).
    ///
    /// [`BundleReader::read`]: crate::BundleReader::read
    pub fn add_stored(&mut self, name: &str, stored: &StoredTensor<'_>) -> Result<()> {
        self.add_from(name, &stored.tensor, Origin::Stored(stored))
    }

    /// [`add_slice`](Self::add_slice) for one stored slice of another bundle, copied unchanged
    /// as [`add_stored`](Self::add_stored) copies.
    ///
    /// Errors: those of [`add_tensor_slice`](Self::add_tensor_slice) and
    /// [`add_stored`](Self::add_stored).
    pub fn add_stored_slice(
        &mut self,
        full_name: &str,
        full_shape: &[u64],
        slice: &[(u64, u64)],
        stored: &StoredTensor<'_>,
    ) -> Result<()> {
        self.add_slice_from(
            full_name,
            full_shape,
            &TensorSlice::from_ranges(slice),
            &stored.tensor,
            Origin::Stored(stored),
        )
    }

    fn add_from(&mut self, name: &str, tensor: &Tensor<'_>, origin: Origin<'_, '_>) -> Result<()> {
        self.check_usable()?;
        if name.is_empty() {
            return Err(Error::InvalidTensor {
                tensor: String::new(),
                reason: "tensor names must not be empty (the empty key holds the bundle header)"
                    .to_string(),
            });
        }
        if self.entries.contains_key(name.as_bytes()) {
            return Err(self.duplicate(name));
        }
        tensor.check(name)?;
        let entry = self.write_data(tensor, origin)?;
        self.entries.insert(name.as_bytes().to_vec(), entry);
        Ok(())
    }

    /// Appends one slice of a partitioned tensor, as TensorFlow's `BundleWriter::AddSlice`:
    /// `slice` holds `(start, length)` per dimension of `full_shape`, and `tensor` the
    /// slice's elements (its shape must be the lengths). A slice covering the whole shape
    /// is stored as an ordinary tensor.
    ///
    /// Errors: as [`add_tensor_slice`](Self::add_tensor_slice).
    pub fn add_slice(
        &mut self,
        full_name: &str,
        full_shape: &[u64],
        slice: &[(u64, u64)],
        tensor: &Tensor<'_>,
    ) -> Result<()> {
        self.add_tensor_slice(
            full_name,
            full_shape,
            &TensorSlice::from_ranges(slice),
            tensor,
        )
    }

    /// Appends a tensor with a `SaveV2` shape-and-slice spec, as TensorFlow's save op does:
    /// `""` for a whole tensor, or the full shape's dimensions then the slice, such as
    /// `"6 2 4,2:-"` (`start,length` per dimension, `-` for all of it; see
    /// [`parse_shape_and_slice`](crate::parse_shape_and_slice)).
    ///
    /// Errors: [`Error::SliceSpec`] for a malformed spec; otherwise as
    /// [`add_tensor_slice`](Self::add_tensor_slice).
    pub fn add_shape_and_slice(
        &mut self,
        name: &str,
        shape_and_slice: &str,
        tensor: &Tensor<'_>,
    ) -> Result<()> {
        if shape_and_slice.is_empty() {
            return self.add(name, tensor);
        }
        let spec = parse_shape_and_slice(shape_and_slice)?;
        self.add_tensor_slice(name, &spec.shape, &spec.slice, tensor)
    }

    /// Appends the part `slice` of the tensor `full_name` of shape `full_shape` (TensorFlow's
    /// `BundleWriter::AddSlice`); `tensor` holds the slice's elements. A slice covering the
    /// whole shape is stored as an ordinary tensor; otherwise the slice gets its own entry
    /// under an OrderedCode key and the full tensor's entry lists it (docs/format.md §3.8).
    ///
    /// Errors: [`Error::InvalidTensor`] when the slice does not fit the shape, the data does
    /// not have the slice's shape, or earlier slices of the tensor disagree in dtype or shape;
    /// [`Error::DuplicateTensor`] for a slice added twice; [`Error::Io`] when writing fails.
    pub fn add_tensor_slice(
        &mut self,
        full_name: &str,
        full_shape: &[u64],
        slice: &TensorSlice,
        tensor: &Tensor<'_>,
    ) -> Result<()> {
        self.add_slice_from(full_name, full_shape, slice, tensor, Origin::Fresh)
    }

    fn add_slice_from(
        &mut self,
        full_name: &str,
        full_shape: &[u64],
        slice: &TensorSlice,
        tensor: &Tensor<'_>,
        origin: Origin<'_, '_>,
    ) -> Result<()> {
        self.check_usable()?;
        let bad = |reason: String| Error::InvalidTensor {
            tensor: full_name.to_string(),
            reason,
        };
        if full_name.is_empty() {
            return Err(bad("tensor names must not be empty".to_string()));
        }
        if slice.rank() != full_shape.len() {
            return Err(bad(format!(
                "slice has {} extents for full shape {full_shape:?}",
                slice.rank()
            )));
        }
        if let Some(d) = full_shape.iter().position(|&n| n > i64::MAX as u64) {
            return Err(bad(format!(
                "dimension {d} of {full_shape:?} does not fit TensorFlow's int64 sizes"
            )));
        }
        if slice
            .extents()
            .iter()
            .any(|e| matches!(e, Extent::Range { length: 0, .. }))
        {
            return Err(bad(format!(
                "slice {slice}: lengths must be positive (TensorFlow refuses empty extents)"
            )));
        }
        let ranges = slice.ranges(full_shape).map_err(|e| match e {
            Error::SliceSpec { reason, .. } => bad(format!("slice {slice}: {reason}")),
            other => other,
        })?;
        let lens: Vec<u64> = ranges.iter().map(|r| r.1).collect();
        if tensor.shape != lens {
            return Err(bad(format!(
                "slice data has shape {:?}, the slice extents say {lens:?}",
                tensor.shape
            )));
        }
        // TensorFlow's IsFullSlice: stored as a plain tensor.
        if lens == full_shape {
            return self.add_from(full_name, tensor, origin);
        }
        if let Some(full) = self.entries.get(full_name.as_bytes()) {
            if full.slices.is_empty() {
                return Err(self.duplicate(full_name));
            }
            if full.dtype != tensor.dtype.to_proto() as i32
                || full.shape != Some(shape_proto(full_shape))
            {
                return Err(bad(format!(
                    "slice of {} {full_shape:?} disagrees with earlier slices of this tensor",
                    tensor.dtype
                )));
            }
        }

        let key = slice.index_key(full_name);
        if self.entries.contains_key(&key) {
            return Err(self.duplicate(&format!("{full_name}[{slice}]")));
        }
        tensor.check(full_name)?;
        let entry = self.write_data(tensor, origin)?;
        self.entries.insert(key, entry);
        let full = self
            .entries
            .entry(full_name.as_bytes().to_vec())
            .or_insert_with(|| BundleEntryProto {
                dtype: tensor.dtype.to_proto() as i32,
                shape: Some(shape_proto(full_shape)),
                ..Default::default()
            });
        full.slices.push(slice.to_proto());
        Ok(())
    }

    /// Writes the index and renames both files into place.
    pub fn finish(mut self) -> Result<()> {
        self.check_usable()?;
        let result = self.finish_inner();
        if result.is_err() {
            self.abandon();
        }
        result
    }

    fn finish_inner(&mut self) -> Result<()> {
        if self.failed {
            return Err(self.failed());
        }
        self.failed = true;
        for shard in &mut self.shards {
            let Some(mut sink) = shard.sink.take() else {
                return Err(Error::WriterFailed {
                    prefix: self.prefix.clone(),
                });
            };
            sink.settle()
                .and_then(|()| sink.flush_buf())
                .and_then(|()| sink.inner.flush())
                .map_err(|e| Error::io(&shard.tmp, e))?;
            drop(sink);
            if let Some(f) = shard.file.take() {
                if self.options.sync {
                    f.sync_all().map_err(|e| Error::io(&shard.tmp, e))?;
                }
            }
        }

        let index = self.index_bytes()?;
        // What is about to replace a checkpoint must itself read back: the same validation
        // every reader applies, before anything at the prefix changes.
        Index::parse(&self.index_tmp, &index)?;
        let mut f = File::create(&self.index_tmp).map_err(|e| Error::io(&self.index_tmp, e))?;
        f.write_all(&index)
            .map_err(|e| Error::io(&self.index_tmp, e))?;
        if self.options.sync {
            f.sync_all().map_err(|e| Error::io(&self.index_tmp, e))?;
        }
        drop(f);

        let n = self.num_shards();
        let data: Vec<(PathBuf, PathBuf)> = (0..n)
            .zip(&self.shards)
            .map(|(k, shard)| (shard.tmp.clone(), data_path(&self.prefix, k, n)))
            .collect();
        commit(&self.prefix, &data, &self.index_tmp, self.options.sync)
    }

    /// The `.index` table: the header under the empty key, then every entry, sorted.
    fn index_bytes(&self) -> Result<Vec<u8>> {
        let header = BundleHeaderProto {
            num_shards: self.num_shards() as i32,
            endianness: 0,
            version: Some(VersionDef {
                producer: 1,
                min_consumer: 0,
                bad_consumers: Vec::new(),
            }),
        };
        let table_err = |error| Error::Table {
            path: self.index_tmp.clone(),
            error,
        };
        let mut builder =
            ckpt_table::TableBuilder::new(Vec::new(), ckpt_table::TableOptions::default());
        builder
            .add(b"", &header.encode_to_vec())
            .map_err(table_err)?;
        for (key, entry) in &self.entries {
            builder
                .add(key, &entry.encode_to_vec())
                .map_err(table_err)?;
        }
        builder.finish().map_err(table_err)
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed {
            return Err(self.failed());
        }
        Ok(())
    }

    fn failed(&self) -> Error {
        Error::WriterFailed {
            prefix: self.prefix.clone(),
        }
    }

    fn duplicate(&self, name: &str) -> Error {
        Error::DuplicateTensor {
            tensor: name.to_string(),
            prefix: self.prefix.clone(),
        }
    }

    /// Drops the data files and deletes every temporary file.
    fn abandon(&mut self) {
        self.failed = true;
        for shard in &mut self.shards {
            // A background write still running ends before the file is removed.
            if let Some(mut sink) = shard.sink.take() {
                let _ = sink.settle();
            }
            shard.file = None;
            let _ = std::fs::remove_file(&shard.tmp);
        }
        let _ = std::fs::remove_file(&self.index_tmp);
    }

    /// Appends a tensor's data (copied from where `origin` says when it says) and returns its
    /// entry (without slices).
    fn write_data(
        &mut self,
        tensor: &Tensor<'_>,
        origin: Origin<'_, '_>,
    ) -> Result<BundleEntryProto> {
        let current = self.current;
        let direct = self.direct;
        let Some(shard) = self.shards.get_mut(current) else {
            return Err(self.failed());
        };
        let Some(sink) = shard.sink.as_mut() else {
            return Err(self.failed());
        };
        let offset = sink.pos;
        // Buffers handed to the background thread go into the file first.
        let settled = sink.settle();
        let result = match (&tensor.data, tensor.dtype, origin) {
            _ if settled.is_err() => settled.map(|()| 0),
            (TensorData::Bytes(b), _, Origin::Stored(src)) => {
                match copy_stored(sink, shard.file.as_ref().filter(|_| direct), b, src) {
                    Ok(Err(computed)) => return Err(src.mismatch(computed)),
                    Ok(Ok(())) => Ok(src.crc),
                    Err(e) => Err(e),
                }
            }
            (TensorData::Bytes(b), _, Origin::Checksummed(crc)) => sink.append(b).map(|()| crc),
            (TensorData::Bytes(b), _, Origin::Fresh) => sink.append_with_crc(b),
            (TensorData::Strings(s), DType::Variant, _) => {
                let (bytes, crc) = encode_variants(s.iter().map(|c| &**c));
                sink.append(&bytes).map(|()| crc)
            }
            (TensorData::Strings(s), _, _) => {
                let (header, mut crc) = encode_string_header(s.iter().map(|c| &**c));
                let mut r = sink.append(&header);
                for part in s {
                    if r.is_err() {
                        break;
                    }
                    crc = crc32c_append(crc, part);
                    r = sink.append(part);
                }
                r.map(|()| crc)
            }
        };
        let crc = match result {
            Ok(crc) => crc,
            Err(e) => {
                let err = Error::io(&shard.tmp, e);
                self.abandon();
                return Err(err);
            }
        };
        let size = sink.pos - offset;
        Ok(BundleEntryProto {
            dtype: tensor.dtype.to_proto() as i32,
            shape: Some(shape_proto(&tensor.shape)),
            shard_id: current as i32,
            offset: offset as i64,
            size: size as i64,
            crc32c: mask(crc),
            slices: Vec::new(),
        })
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        // After a successful finish the temporary names no longer exist.
        self.abandon();
    }
}

/// Bytes per read of [`copy_stored`]'s checked copy: small enough to stay in the core's cache
/// between the read, the checksum and the write.
const COPY_CHUNK: usize = 256 << 10;

/// Appends the stored bytes `bytes` of `src` to `sink`, straight from the input's data file
/// into `out` (the sink's file, given when the sink writes straight to it) when the input file
/// can be opened again, otherwise from the map.
///
/// With verification on, the file is read in chunks of [`COPY_CHUNK`] into one buffer, each
/// chunk checksummed while it is in cache and written from there: the bytes cross memory
/// once each way, as in a kernel copy, and the checksum comes at the cost of reading cache,
/// not of another pass over the map (its page faults included). Without verification the
/// kernel copies: std's `io::copy` between files is `copy_file_range` on Linux (falling back
/// to `sendfile`, then to read and write, by itself).
///
/// `Ok(Err(computed))` when the crc32c is not the stored one, with nothing appended (what was
/// copied is cut off again). `Err` is a failed read or write.
fn copy_stored(
    sink: &mut DataSink,
    out: Option<&File>,
    bytes: &[u8],
    src: &StoredTensor<'_>,
) -> std::io::Result<std::result::Result<(), u32>> {
    let len = bytes.len() as u64;
    let (Some(out), Some(mut input)) = (out, out.and_then(|_| src.open_source())) else {
        if src.verify {
            let computed = crc32c(bytes);
            if computed != src.crc {
                return Ok(Err(computed));
            }
        }
        sink.append(bytes)?;
        return Ok(Ok(()));
    };
    sink.flush_buf()?;
    let offset = sink.pos;
    // `out` shares the file offset with the sink's handle (one open file description), so
    // what is written lands at `offset`.
    let mut writer: &File = out;
    let mut computed = 0u32;
    let copied = if src.verify {
        let mut buf = vec![0u8; COPY_CHUNK.min(bytes.len())];
        let mut left = bytes.len();
        while left > 0 {
            let chunk = &mut buf[..COPY_CHUNK.min(left)];
            input.read_exact(chunk)?;
            computed = ::crc32c::crc32c_append(computed, chunk);
            writer.write_all(chunk)?;
            left -= chunk.len();
        }
        len
    } else {
        std::io::copy(&mut (&input).take(len), &mut writer)?
    };
    if copied != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "{} ended {copied} bytes into tensor {:?} ({len} bytes at offset {})",
                src.path.display(),
                src.name,
                src.offset
            ),
        ));
    }
    if src.verify && computed != src.crc {
        // Undo the copy: the file ends where the sink's position says it does.
        out.set_len(offset)?;
        writer.seek(SeekFrom::Start(offset))?;
        return Ok(Err(computed));
    }
    sink.pos += len;
    Ok(Ok(()))
}

fn shape_proto(shape: &[u64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: shape
            .iter()
            .map(|&d| Dim {
                size: d as i64,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A file that accepts `limit` bytes, then fails like a full disk.
    struct FullDisk {
        file: File,
        written: Arc<AtomicUsize>,
        limit: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let done = self.written.load(Ordering::SeqCst);
            if done >= self.limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "disk full",
                ));
            }
            let n = buf.len().min(self.limit - done);
            self.file.write_all(&buf[..n])?;
            self.written.fetch_add(n, Ordering::SeqCst);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn full_disk_writer(prefix: &Path, limit: usize) -> Result<BundleWriter> {
        let written = Arc::new(AtomicUsize::new(0));
        BundleWriter::create_wrapped(prefix, 1, WriteOptions::default(), false, move |file| {
            Box::new(FullDisk {
                file,
                written: written.clone(),
                limit,
            })
        })
    }

    #[test]
    fn full_disk_midway_leaves_no_files() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let prefix = dir.path().join("model.ckpt");
        // A big tensor goes straight through and fails inside add.
        let mut w = full_disk_writer(&prefix, 1000)?;
        let big = vec![1.0f32; (BUFFER_SIZE / 4) + 10];
        let err = w
            .add("big", &Tensor::from_slice(vec![big.len() as u64], &big)?)
            .err();
        assert!(
            matches!(&err, Some(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::StorageFull),
            "{err:?}"
        );
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
        assert!(matches!(
            w.add("x", &Tensor::from_slice(vec![], &[1i32])?),
            Err(Error::WriterFailed { .. })
        ));
        assert!(matches!(w.finish(), Err(Error::WriterFailed { .. })));
        assert!(files_in(dir.path()).is_empty());

        // Small tensors sit in the buffer; the failure comes at finish.
        let mut w = full_disk_writer(&prefix, 10)?;
        w.add("a", &Tensor::from_slice(vec![8], &[0u16; 8])?)?;
        assert_eq!(files_in(dir.path()).len(), 1, "only the data temp file");
        let err = w.finish().err();
        assert!(matches!(err, Some(Error::Io { .. })), "{err:?}");
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
        Ok(())
    }

    #[test]
    fn sharded_bundle_reads_back_with_each_tensor_in_its_shard() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let prefix = dir.path().join("m");
        let mut w = BundleWriter::create_sharded(&prefix, 3, WriteOptions::default())?;
        assert_eq!(w.num_shards(), 3);
        w.set_shard(2)?;
        w.add("b", &Tensor::from_slice(vec![2], &[1.5f32, 2.5])?)?;
        w.set_shard(0)?;
        w.add("a", &Tensor::from_slice(vec![], &[7i64])?)?;
        w.set_shard(2)?;
        w.add_slice(
            "p",
            &[4],
            &[(0, 2)],
            &Tensor::from_slice(vec![2], &[1i32, 2])?,
        )?;
        w.set_shard(0)?;
        w.add_slice(
            "p",
            &[4],
            &[(2, 2)],
            &Tensor::from_slice(vec![2], &[3i32, 4])?,
        )?;
        assert!(matches!(w.set_shard(3), Err(Error::InvalidTensor { .. })));
        w.finish()?;
        // Shard 1 holds nothing and is written empty, as every shard's file exists.
        assert_eq!(
            files_in(dir.path()),
            [
                "m.data-00000-of-00003",
                "m.data-00001-of-00003",
                "m.data-00002-of-00003",
                "m.index"
            ]
        );
        let len = |k| {
            std::fs::metadata(data_path(&prefix, k, 3))
                .map(|m| m.len())
                .ok()
        };
        assert_eq!((len(0), len(1), len(2)), (Some(16), Some(0), Some(16)));
        let r = crate::BundleReader::open(&prefix)?;
        assert_eq!(r.num_shards(), 3);
        assert_eq!(r.storage("a")?, crate::Storage::Whole { shard: 0 });
        assert_eq!(r.storage("b")?, crate::Storage::Whole { shard: 2 });
        assert_eq!(
            r.storage("p")?,
            crate::Storage::Partitioned(vec![
                crate::StoredSlice {
                    extents: vec![(0, 2)],
                    shard: 2
                },
                crate::StoredSlice {
                    extents: vec![(2, 2)],
                    shard: 0
                },
            ])
        );
        assert_eq!(&*r.read("p")?.as_slice::<i32>()?, &[1, 2, 3, 4]);
        assert_eq!(&*r.read("b")?.as_slice::<f32>()?, &[1.5, 2.5]);
        assert_eq!(r.verify()?.tensors, 3);
        assert!(matches!(
            BundleWriter::create_sharded(&prefix, 0, WriteOptions::default()),
            Err(Error::InvalidTensor { .. })
        ));
        Ok(())
    }

    #[test]
    fn rewriting_with_fewer_shards_removes_the_old_ones() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let prefix = dir.path().join("m");
        let mut w = BundleWriter::create_sharded(&prefix, 2, WriteOptions::default())?;
        w.add("a", &Tensor::from_slice(vec![], &[1i32])?)?;
        w.finish()?;
        let mut w = BundleWriter::create(&prefix)?;
        w.add("a", &Tensor::from_slice(vec![], &[2i32])?)?;
        w.finish()?;
        assert_eq!(files_in(dir.path()), ["m.data-00000-of-00001", "m.index"]);
        Ok(())
    }

    #[test]
    fn dropped_writer_removes_temp_files() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let mut w = BundleWriter::create(dir.path().join("m"))?;
        w.add("a", &Tensor::from_slice(vec![], &[1.0f64])?)?;
        drop(w);
        assert!(files_in(dir.path()).is_empty());
        Ok(())
    }

    /// Writes the input bundle of the copy tests: a big float tensor (written straight
    /// through), small ones (buffered), a partitioned one and a string, in two shards.
    fn copy_input(prefix: &Path) -> Result<()> {
        let mut w = BundleWriter::create_sharded(prefix, 2, WriteOptions::default())?;
        let big: Vec<f32> = (0..(BUFFER_SIZE / 4 + 999))
            .map(|i| i as f32 * 0.5)
            .collect();
        w.add("a_small", &Tensor::from_slice(vec![3], &[1i32, -2, 3])?)?;
        w.add("big", &Tensor::from_slice(vec![big.len() as u64], &big)?)?;
        w.set_shard(1)?;
        w.add("c_small", &Tensor::from_slice(vec![2], &[0.25f64, -8.0])?)?;
        w.add_slice(
            "p",
            &[4],
            &[(0, 3)],
            &Tensor::from_slice(vec![3], &[1u16, 2, 3])?,
        )?;
        w.set_shard(0)?;
        w.add_slice("p", &[4], &[(3, 1)], &Tensor::from_slice(vec![1], &[4u16])?)?;
        w.add(
            "s",
            &Tensor::from_strings(
                DType::String,
                vec![2],
                vec![b"xy".as_slice().into(), b"".as_slice().into()],
            )?,
        )?;
        w.finish()
    }

    /// Rewrites every run of `input` to `out` (2 shards, each run in its shard), copied as
    /// stored when `stored` (through the kernel when `direct`), else read and added.
    fn rewrite(input: &crate::BundleReader, out: &Path, stored: bool, direct: bool) -> Result<()> {
        let mut w =
            BundleWriter::create_wrapped(out, 2, WriteOptions::default(), direct, |f| Box::new(f))?;
        for info in input.tensors() {
            match input.storage(&info.name)? {
                crate::Storage::Whole { shard } => {
                    w.set_shard(shard)?;
                    match input.stored(&info.name, None)?.filter(|_| stored) {
                        Some(s) => w.add_stored(&info.name, &s)?,
                        None => w.add(&info.name, &input.read(&info.name)?)?,
                    }
                }
                crate::Storage::Partitioned(slices) => {
                    for slice in slices {
                        w.set_shard(slice.shard)?;
                        let extents = slice.extents.as_slice();
                        match input.stored(&info.name, Some(extents))?.filter(|_| stored) {
                            Some(s) => w.add_stored_slice(&info.name, &info.shape, extents, &s)?,
                            None => {
                                let part = input
                                    .read_slice(&info.name, &TensorSlice::from_ranges(extents))?;
                                w.add_slice(&info.name, &info.shape, extents, &part)?
                            }
                        }
                    }
                }
            }
        }
        w.finish()
    }

    fn bundle_files(prefix: &Path) -> Vec<Option<Vec<u8>>> {
        let mut files = vec![std::fs::read(index_path(prefix)).ok()];
        files.extend((0..2).map(|k| std::fs::read(data_path(prefix, k, 2)).ok()));
        files
    }

    #[test]
    fn stored_copies_are_byte_identical_to_added_tensors() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let input = dir.path().join("in");
        copy_input(&input)?;
        let reader = crate::BundleReader::open(&input)?;
        // Strings are not copied as stored; the rest are, whole or by slice.
        assert!(reader.stored("s", None)?.is_none());
        assert!(reader.stored("p", None)?.is_none());
        assert!(reader.stored("p", Some(&[(0, 2)]))?.is_none());
        assert!(reader.stored("big", Some(&[(0, 1)]))?.is_none());
        let p = reader.stored("p", Some(&[(0, 3)]))?;
        assert_eq!(p.map(|s| s.tensor().shape().to_vec()), Some(vec![3]));

        let added = dir.path().join("added");
        rewrite(&reader, &added, false, true)?;
        let expected = bundle_files(&added);
        assert!(expected.iter().all(Option::is_some));
        for direct in [true, false] {
            let copied = dir.path().join(format!("copied_{direct}"));
            rewrite(&reader, &copied, true, direct)?;
            assert_eq!(bundle_files(&copied), expected, "direct: {direct}");
        }
        // And the same as the input itself, which was written in the same order.
        let mut original = bundle_files(&input);
        original.truncate(3);
        assert_eq!(original, expected);
        Ok(())
    }

    #[test]
    fn stored_copy_of_damaged_bytes_is_refused_and_undone() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let input = dir.path().join("in");
        copy_input(&input)?;
        // Damage one byte of "big" (shard 0, after "a_small"'s 12 bytes).
        let data = data_path(&input, 0, 2);
        let mut bytes = std::fs::read(&data).map_err(|e| Error::io(&data, e))?;
        bytes[12 + 4096] ^= 1;
        std::fs::write(&data, &bytes).map_err(|e| Error::io(&data, e))?;

        let reader = crate::BundleReader::open(&input)?;
        for direct in [true, false] {
            let out = dir.path().join(format!("out_{direct}"));
            let mut w =
                BundleWriter::create_wrapped(&out, 1, WriteOptions::default(), direct, |f| {
                    Box::new(f)
                })?;
            w.add("first", &Tensor::from_slice(vec![2], &[5i32, 6])?)?;
            let big = reader.stored("big", None)?;
            let err = big.map(|s| w.add_stored("big", &s));
            assert!(
                matches!(&err, Some(Err(Error::ChecksumMismatch { tensor, path, .. }))
                    if tensor == "big" && *path == data),
                "{err:?}"
            );
            // Nothing of it stays; the writer goes on.
            w.add("last", &Tensor::from_slice(vec![], &[7i64])?)?;
            w.finish()?;
            let len = std::fs::metadata(data_path(&out, 0, 1))
                .map(|m| m.len())
                .ok();
            assert_eq!(len, Some(16), "direct: {direct}");
            let r = crate::BundleReader::open(&out)?;
            assert_eq!(r.tensors().len(), 2);
            assert_eq!(&*r.read("last")?.as_slice::<i64>()?, &[7]);
            assert_eq!(r.verify()?.tensors, 2);
        }

        // With checksums off the damaged bytes are copied with the input's crc32c, so the
        // copy fails verification as the input does: the damage is not hidden.
        let trusting = crate::BundleReader::open_with(
            &input,
            crate::ReadOptions {
                verify_checksums: false,
            },
        )?;
        let out = dir.path().join("trusted");
        let mut w = BundleWriter::create(&out)?;
        if let Some(s) = trusting.stored("big", None)? {
            assert!(!s.verifies());
            w.add_stored("big", &s)?;
        }
        w.finish()?;
        let err = crate::BundleReader::open(&out)?.read("big").err();
        assert!(
            matches!(err, Some(Error::ChecksumMismatch { .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn given_crc32c_is_written_as_given() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let values = [1.5f32, -3.0, 0.0];
        let t = Tensor::from_slice(vec![3], &values)?;
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut w = BundleWriter::create(&a)?;
        w.add("t", &t)?;
        w.finish()?;
        let crc = ::crc32c::crc32c(t.bytes().unwrap_or_default());
        let mut w = BundleWriter::create(&b)?;
        w.add_with_crc32c("t", &t, crc)?;
        w.finish()?;
        assert_eq!(
            std::fs::read(index_path(&a)).ok(),
            std::fs::read(index_path(&b)).ok()
        );
        // A wrong one is trusted, and reading then fails.
        let mut w = BundleWriter::create(&b)?;
        w.add_with_crc32c("t", &t, crc ^ 1)?;
        w.finish()?;
        let err = crate::BundleReader::open(&b)?.read("t").err();
        assert!(
            matches!(err, Some(Error::ChecksumMismatch { .. })),
            "{err:?}"
        );
        Ok(())
    }

    /// Tensors handed over as buffers (written by the background thread when large) give the
    /// same files as `add`, in every order with the other ways of adding, across shards; the
    /// buffers come back for reuse one call late.
    #[test]
    fn handed_over_buffers_are_written_as_add_writes_them() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let big = |seed: u32| -> Vec<f32> {
            (0..(BUFFER_SIZE / 4) + 7)
                .map(|i| (i as u32).wrapping_mul(seed) as f32)
                .collect()
        };
        let (b1, b2, b3) = (big(3), big(5), big(7));
        let small = [1.5f32, -2.0, 0.25];
        let tensors: Vec<(&str, Tensor<'_>, u32)> = vec![
            ("a_big", Tensor::from_slice(vec![b1.len() as u64], &b1)?, 0),
            ("b_small", Tensor::from_slice(vec![3], &small)?, 0),
            ("c_big", Tensor::from_slice(vec![b2.len() as u64], &b2)?, 1),
            ("d_int", Tensor::from_slice(vec![2], &[7i64, 8])?, 1),
            ("e_big", Tensor::from_slice(vec![b3.len() as u64], &b3)?, 1),
            ("f_big", Tensor::from_slice(vec![b1.len() as u64], &b1)?, 0),
        ];
        let (want, got) = (dir.path().join("want"), dir.path().join("got"));
        let mut w = BundleWriter::create_sharded(&want, 2, WriteOptions::default())?;
        for (name, t, shard) in &tensors {
            w.set_shard(*shard)?;
            w.add(name, t)?;
        }
        w.finish()?;
        let mut w = BundleWriter::create_sharded(&got, 2, WriteOptions::default())?;
        let mut spare: Vec<u8> = Vec::new();
        for (i, (name, t, shard)) in tensors.iter().enumerate() {
            w.set_shard(*shard)?;
            let bytes = t.bytes().unwrap_or_default();
            if *name == "d_int" {
                // Another way of adding between two handed-over buffers.
                w.add(name, t)?;
                continue;
            }
            let mut buf = std::mem::take(&mut spare);
            buf.clear();
            buf.extend_from_slice(bytes);
            let back = w.add_owned_with_crc32c(
                name,
                t.dtype(),
                t.shape().to_vec(),
                buf,
                ::crc32c::crc32c(bytes),
            )?;
            if i == 0 {
                assert!(back.is_empty(), "nothing to give back at the first call");
            }
            spare = back;
        }
        // Names are checked as `add` checks them, and nothing is written then.
        let t = Tensor::from_slice(vec![1], &[1.0f32])?;
        assert!(matches!(
            w.add_owned_with_crc32c("a_big", DType::Float32, vec![1], vec![0; 4], 0),
            Err(Error::DuplicateTensor { .. })
        ));
        assert!(matches!(
            w.add_owned_with_crc32c("z", DType::Float32, vec![2], vec![0; 4], 0),
            Err(Error::InvalidTensor { .. })
        ));
        assert!(matches!(
            w.add_owned_with_crc32c("z", DType::String, vec![], vec![0; 4], 0),
            Err(Error::InvalidTensor { .. })
        ));
        assert!(w.add("", &t).is_err());
        w.finish()?;
        assert_eq!(bundle_files(&want), bundle_files(&got));
        assert!(bundle_files(&got).iter().all(Option::is_some));
        Ok(())
    }

    /// A background write that fails (a full disk) is reported by the next call or by
    /// `finish`, and leaves no file behind.
    #[test]
    fn failed_background_write_leaves_no_files() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let prefix = dir.path().join("model.ckpt");
        let big = vec![0u8; BUFFER_SIZE + 16];
        let add = |w: &mut BundleWriter, name: &str| {
            w.add_owned_with_crc32c(name, DType::UInt8, vec![big.len() as u64], big.clone(), 0)
        };
        // Fails on the first buffer: reported when the second comes.
        let mut w = full_disk_writer(&prefix, 1000)?;
        add(&mut w, "a")?;
        let err = add(&mut w, "b").err();
        assert!(
            matches!(&err, Some(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::StorageFull),
            "{err:?}"
        );
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
        assert!(matches!(add(&mut w, "c"), Err(Error::WriterFailed { .. })));
        assert!(matches!(w.finish(), Err(Error::WriterFailed { .. })));
        // Fails on the last buffer: reported by finish.
        let mut w = full_disk_writer(&prefix, BUFFER_SIZE + 100)?;
        add(&mut w, "a")?;
        add(&mut w, "b")?;
        let err = w.finish().err();
        assert!(matches!(err, Some(Error::Io { .. })), "{err:?}");
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
        // Dropped with a write under way: the thread ends and the file goes.
        let mut w = full_disk_writer(&prefix, usize::MAX)?;
        add(&mut w, "a")?;
        drop(w);
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
        Ok(())
    }

    #[test]
    fn old_checkpoint_survives_a_failed_rewrite() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let prefix = dir.path().join("m");
        let mut w = BundleWriter::create(&prefix)?;
        w.add("a", &Tensor::from_slice(vec![2], &[1i32, 2])?)?;
        w.finish()?;
        let before = (
            std::fs::read(index_path(&prefix)),
            std::fs::read(data_path(&prefix, 0, 1)),
        );
        let mut w = full_disk_writer(&prefix, 3)?;
        w.add("a", &Tensor::from_slice(vec![2], &[5i32, 6])?)?;
        assert!(
            matches!(w.finish(), Err(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::StorageFull)
        );
        let after = (
            std::fs::read(index_path(&prefix)),
            std::fs::read(data_path(&prefix, 0, 1)),
        );
        assert_eq!(before.0.ok(), after.0.ok());
        assert_eq!(before.1.ok(), after.1.ok());
        assert_eq!(files_in(dir.path()), ["m.data-00000-of-00001", "m.index"]);
        Ok(())
    }
}
