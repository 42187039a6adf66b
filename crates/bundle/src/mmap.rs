//! Read-only file mappings: the crate's only `unsafe`.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use crate::error::{Error, Result};

/// The bytes of a whole file: memory-mapped, empty (a zero-length file cannot be mapped),
/// or held in memory (bundles read with `BundleReader::from_bytes`).
#[derive(Debug)]
pub(crate) enum FileBytes {
    /// A mapping, with the identity of the file mapped.
    Mapped(memmap2::Mmap, Option<FileId>),
    Empty,
    Owned(Vec<u8>),
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m, _) => m,
            FileBytes::Empty => &[],
            FileBytes::Owned(v) => v,
        }
    }
}

/// Which file a path led to when it was opened (device and inode on Unix), so that a later
/// `open` of the same path can tell whether it reaches the same file or one renamed over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of an open file; `None` where the platform does not give one.
    pub(crate) fn of(metadata: &std::fs::Metadata) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId {
                dev: metadata.dev(),
                ino: metadata.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            None
        }
    }
}

impl FileBytes {
    /// The identity of the mapped file, when it is a mapping and the platform gives one.
    pub(crate) fn file_id(&self) -> Option<FileId> {
        match self {
            FileBytes::Mapped(_, id) => *id,
            _ => None,
        }
    }
}

/// Maps `path` read-only.
pub(crate) fn map_file(path: &Path) -> Result<FileBytes> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let metadata = file.metadata().map_err(|e| Error::io(path, e))?;
    if metadata.len() == 0 {
        return Ok(FileBytes::Empty);
    }
    map_nonempty(&file, FileId::of(&metadata)).map_err(|e| Error::io(path, e))
}

#[allow(unsafe_code)]
fn map_nonempty(file: &File, id: Option<FileId>) -> std::io::Result<FileBytes> {
    // SAFETY: the mapping is read-only and private to this process. Rust's aliasing rules
    // hold only as long as nobody truncates or rewrites the file while it is mapped; we
    // assume checkpoint files are immutable once written (TensorFlow and this crate's writer
    // both write to a temporary name and rename, so a finished file is never modified in
    // place). If another process truncates a mapped file anyway, reads past the new end
    // raise SIGBUS; that is the documented limit of reading checkpoints through mmap.
    let map = unsafe { memmap2::Mmap::map(file)? };
    Ok(FileBytes::Mapped(map, id))
}

/// A whole file mapped read-only, for callers outside this crate that read large inputs
/// once (the CLI maps `.npy` feeds and safetensors files rather than copying them into
/// memory). Dereferences to the file's bytes; a zero-length file gives an empty slice.
///
/// The mapping shares the limit documented on the checkpoint reader: if another process
/// truncates the file while it is mapped, reading the lost pages raises SIGBUS.
#[derive(Debug)]
pub struct MappedFile(FileBytes);

impl MappedFile {
    /// Maps `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path` when it cannot be opened, read for its size or mapped.
    pub fn open(path: &Path) -> Result<MappedFile> {
        map_file(path).map(MappedFile)
    }
}

impl Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}
