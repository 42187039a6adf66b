//! Partitioned tensors and slices: assembling a tensor, or a box of it, from the stored runs
//! that overlap it (TensorFlow's `BundleReader::LookupSlice` / `GetSliceValue`).

use std::borrow::Cow;

use super::BundleReader;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::index::Layout;
use crate::region::{copy_bytes, copy_items, intersect};
use crate::tensor::{num_elements, Tensor, TensorData, TensorInfo};
use crate::tensor_slice::TensorSlice;

impl BundleReader {
    /// Reads the part of tensor `name` that `slice` selects (TensorFlow's
    /// `BundleReader::LookupSlice`), whether the tensor is stored whole or partitioned: only
    /// the stored runs that overlap the slice are read (and their checksums checked). The
    /// result has the slice's shape and is owned (it is copied out of the map), except for a
    /// slice covering a whole unpartitioned tensor, which is borrowed as [`read`](Self::read)
    /// borrows it.
    ///
    /// ```
    /// use ckpt_bundle::{parse_shape_and_slice, BundleReader, BundleWriter, Tensor};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let prefix = dir.path().join("m");
    /// let mut w = BundleWriter::create(&prefix)?;
    /// w.add("w", &Tensor::from_vec(vec![3, 2], vec![0i32, 1, 2, 3, 4, 5])?)?;
    /// w.finish()?;
    /// let spec = parse_shape_and_slice("3 2 1,2:1,1")?;
    /// let reader = BundleReader::open(&prefix)?;
    /// let part = reader.read_slice("w", &spec.slice)?;
    /// assert_eq!(part.shape(), [2, 1]);
    /// assert_eq!(&*part.as_slice::<i32>()?, &[3, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Errors: those of [`read`](Self::read); [`Error::SliceSpec`] when the slice does not fit
    /// the tensor's shape; [`Error::Slices`] when the stored slices do not cover the tensor.
    pub fn read_slice(&self, name: &str, slice: &TensorSlice) -> Result<Tensor<'_>> {
        let (info, layout) = self.entry(name)?;
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
        match layout {
            Layout::Whole(d) if region.iter().zip(&info.shape).all(|(r, &n)| r.1 == n) => {
                self.read_whole(info, &info.shape, d)
            }
            _ => self.read_region(info, layout, &region),
        }
    }

    /// Assembles the box `region` of tensor `info` from the stored runs that overlap it.
    pub(super) fn read_region(
        &self,
        info: &TensorInfo,
        layout: &Layout,
        region: &[(u64, u64)],
    ) -> Result<Tensor<'_>> {
        let slices_error = |reason: String| self.slices_error(info, reason);
        if let Layout::Sliced {
            incomplete: Some(reason),
            ..
        } = layout
        {
            return Err(slices_error(reason.clone()));
        }
        let shape: Vec<u64> = region.iter().map(|r| r.1).collect();
        let count = num_elements(&shape).ok_or_else(|| slices_error("size overflows".into()))?;
        let boxes = layout.boxes(&info.shape);
        // A stored slice read as it is (a copy keeping the partitioning) is borrowed, not copied.
        if let Some((_, data)) = boxes.iter().find(|(b, _)| b.as_slice() == region) {
            return self.read_whole(info, &shape, data);
        }
        // The stored runs overlapping the region, read and checked.
        let mut parts = Vec::new();
        for (stored_box, data) in boxes {
            if let Some(common) = intersect(&stored_box, region) {
                let stored_shape: Vec<u64> = stored_box.iter().map(|r| r.1).collect();
                let tensor = self.read_whole(info, &stored_shape, data)?;
                parts.push((stored_box, common, tensor));
            }
        }
        let data = match (info.dtype.element_size(), info.dtype) {
            (Some(elem), _) => {
                let total = count
                    .checked_mul(elem as u64)
                    .ok_or_else(|| slices_error("byte size overflows".into()))?;
                // The stored runs are disjoint, so they hold at least the region's bytes:
                // nothing is allocated beyond what the files hold.
                let available: u64 = parts
                    .iter()
                    .map(|p| p.2.bytes().map_or(0, |b| b.len() as u64))
                    .sum();
                if total > available {
                    return Err(slices_error(format!(
                        "slices claim {total} bytes, more than their data files hold ({available})"
                    )));
                }
                let total = usize::try_from(total)
                    .map_err(|_| slices_error("too large for this machine".into()))?;
                let mut out = vec![0u8; total];
                for (stored_box, common, tensor) in &parts {
                    let src = tensor.bytes().unwrap_or_default();
                    copy_bytes(&mut out, region, src, stored_box, common, elem)
                        .map_err(&slices_error)?;
                }
                TensorData::Bytes(Cow::Owned(out))
            }
            (None, DType::String | DType::Variant) => {
                let available: u64 = parts
                    .iter()
                    .map(|p| p.2.strings().map_or(0, |s| s.len() as u64))
                    .sum();
                if count > available {
                    return Err(slices_error(format!(
                        "slices claim {count} elements, more than they store ({available})"
                    )));
                }
                let count = usize::try_from(count)
                    .map_err(|_| slices_error("too large for this machine".into()))?;
                let mut out: Vec<Cow<'_, [u8]>> = vec![Cow::Borrowed(&[][..]); count];
                for (stored_box, common, tensor) in &parts {
                    let src = tensor.strings().unwrap_or_default();
                    copy_items(&mut out, region, src, stored_box, common).map_err(&slices_error)?;
                }
                TensorData::Strings(out)
            }
            (None, other) => {
                return Err(slices_error(format!(
                    "slices of {other} tensors are not supported"
                )))
            }
        };
        Ok(Tensor {
            dtype: info.dtype,
            shape,
            data,
        })
    }
}
