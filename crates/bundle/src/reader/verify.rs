//! `BundleReader::verify`: every tensor's bytes against its checksum, in parallel.

use rayon::prelude::*;

use super::BundleReader;
use crate::crc::{crc32c, unmask, PAR_THRESHOLD};
use crate::dtype::DType;
use crate::error::Result;
use crate::index::{DataRef, Layout};
use crate::strings::check_strings;
use crate::tensor::{num_elements, TensorInfo};

/// What [`BundleReader::verify`] checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Tensors checked (a partitioned tensor counts once).
    pub tensors: usize,
    /// Data bytes checksummed.
    pub bytes: u64,
}

impl BundleReader {
    /// Checks every tensor's bytes against its checksum (and the string layouts), in
    /// parallel across tensors, reading the mapped bytes in place. Returns the first
    /// problem in name order.
    ///
    /// Errors: [`Error::ChecksumMismatch`](crate::Error::ChecksumMismatch),
    /// [`Error::DataOutOfBounds`](crate::Error::DataOutOfBounds),
    /// [`Error::StringData`](crate::Error::StringData),
    /// [`Error::MissingShard`](crate::Error::MissingShard), and
    /// [`Error::Slices`](crate::Error::Slices) for a partitioned tensor whose slices do not
    /// cover it.
    pub fn verify(&self) -> Result<VerifyReport> {
        // A missing data file is named first, whatever tensor comes first in name order.
        if let Some(shard) = self
            .shards
            .iter()
            .filter(|s| s.bytes.get().is_none() && !s.path.is_file())
            .min_by_key(|s| s.id)
        {
            return Err(self.missing_shard(shard));
        }
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
}
