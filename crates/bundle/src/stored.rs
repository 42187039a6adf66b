//! [`StoredTensor`]: a tensor's bytes exactly as a bundle stores them, for copying into another
//! bundle unchanged (`ckpt drop`, `rename`, `merge`) with the kernel's file-to-file copy
//! instead of a read into memory and a `write(2)`.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

use crate::error::Error;
use crate::mmap::FileId;
use crate::tensor::Tensor;

/// One stored run of a tensor (a whole tensor, or one stored slice of a partitioned one) of a
/// little-endian bundle with fixed-size elements, as [`BundleReader::stored`] finds it: its
/// bytes borrowed from the memory map, where they are in which data file, and the crc32c the
/// index holds for them. [`BundleWriter::add_stored`] copies it into a new bundle.
///
/// The bytes have not been checked against the crc32c yet; the writer checks them while it
/// copies when the reader was opened with checksums on (the default), as
/// [`BundleReader::read`] would have.
///
/// [`BundleReader::stored`]: crate::BundleReader::stored
/// [`BundleReader::read`]: crate::BundleReader::read
/// [`BundleWriter::add_stored`]: crate::BundleWriter::add_stored
#[derive(Debug)]
pub struct StoredTensor<'r> {
    pub(crate) tensor: Tensor<'r>,
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) file_id: Option<FileId>,
    pub(crate) offset: u64,
    /// The crc32c (unmasked) the index holds.
    pub(crate) crc: u32,
    pub(crate) verify: bool,
}

impl<'r> StoredTensor<'r> {
    /// The tensor (dtype, shape of the run, bytes borrowed from the map, unverified).
    pub fn tensor(&self) -> &Tensor<'r> {
        &self.tensor
    }

    /// The crc32c (unmasked) the input's index holds for these bytes.
    pub fn stored_crc32c(&self) -> u32 {
        self.crc
    }

    /// Whether the writer checks the bytes against [`stored_crc32c`](Self::stored_crc32c)
    /// (the reader's `verify_checksums`).
    pub fn verifies(&self) -> bool {
        self.verify
    }

    /// The data file opened again and positioned at the run, when the path still leads to the
    /// file that was mapped (not one renamed over it since); `None` otherwise, or where the
    /// platform gives no file identity: then the writer copies from the map.
    pub(crate) fn open_source(&self) -> Option<File> {
        let id = self.file_id?;
        let mut file = File::open(&self.path).ok()?;
        if FileId::of(&file.metadata().ok()?) != Some(id) {
            return None;
        }
        file.seek(SeekFrom::Start(self.offset)).ok()?;
        Some(file)
    }

    /// The error for bytes whose crc32c is `computed`, not the stored one.
    pub(crate) fn mismatch(&self, computed: u32) -> Error {
        Error::ChecksumMismatch {
            path: self.path.clone(),
            tensor: self.name.clone(),
            offset: self.offset,
            stored: self.crc,
            computed,
        }
    }
}
