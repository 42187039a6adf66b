//! Slices of tensors: TensorFlow's `TensorSlice` and the `shape_and_slice` specs of `SaveV2` /
//! `RestoreV2` (docs/format.md §3.8).
//!
//! A slice gives, per dimension, either the whole extent or a `start, length` range. As text
//! (`TensorSlice::Parse` in `tensorflow/core/framework/tensor_slice.cc`) it is one item per
//! dimension separated by `:`, each `-` (whole) or `start,length` with `start >= 0` and
//! `length > 0`; empty items are skipped. A `shape_and_slice` spec
//! (`checkpoint::ParseShapeAndSlice` in `tensorflow/core/util/saved_tensor_slice_util.cc`) puts
//! the full shape's dimensions first, separated by single spaces: `"6 2 0,3:-"`.
//!
//! ```
//! use ckpt_bundle::{parse_shape_and_slice, Extent, TensorSlice};
//!
//! let spec = parse_shape_and_slice("6 2 4,2:-")?;
//! assert_eq!(spec.shape, [6, 2]);
//! assert_eq!(spec.slice.extents(), [Extent::Range { start: 4, length: 2 }, Extent::Full]);
//! assert_eq!(spec.slice.to_string(), "4,2:-");
//! assert_eq!(spec.slice.ranges(&spec.shape)?, [(4, 2), (0, 2)]);
//! // TensorFlow refuses a length of -1 or 0 in text: only `-` means "all of it".
//! assert!(TensorSlice::parse("0,-1").is_err());
//! # Ok::<(), ckpt_bundle::Error>(())
//! ```

use std::fmt;

use ckpt_proto::tensor_slice_proto::{extent::HasLength, Extent as ExtentProto};
use ckpt_proto::TensorSliceProto;

use crate::error::{Error, Result};

/// One dimension of a [`TensorSlice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extent {
    /// The whole dimension (`-` in text; an extent without a length in a `TensorSliceProto`).
    Full,
    /// Elements `start .. start + length` of the dimension.
    Range {
        /// First index, in elements.
        start: u64,
        /// Number of elements (positive when parsed from text).
        length: u64,
    },
}

/// A slice of a tensor of some rank: one [`Extent`] per dimension (TensorFlow's
/// `TensorSlice`). Displayed as TensorFlow's `DebugString`: `"-:0,3"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TensorSlice {
    extents: Vec<Extent>,
}

/// A full shape and a slice of it, as a `shape_and_slice` spec gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeAndSlice {
    /// The full tensor's dimensions.
    pub shape: Vec<u64>,
    /// The part of it the spec selects; its rank equals `shape.len()`.
    pub slice: TensorSlice,
}

fn spec_error(spec: &str, reason: impl Into<String>) -> Error {
    Error::SliceSpec {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

impl TensorSlice {
    /// The slice covering all of a tensor of rank `rank`.
    pub fn full(rank: usize) -> TensorSlice {
        TensorSlice {
            extents: vec![Extent::Full; rank],
        }
    }

    /// A slice from its extents.
    pub fn new(extents: Vec<Extent>) -> TensorSlice {
        TensorSlice { extents }
    }

    /// A slice from `(start, length)` per dimension.
    pub fn from_ranges(ranges: &[(u64, u64)]) -> TensorSlice {
        TensorSlice {
            extents: ranges
                .iter()
                .map(|&(start, length)| Extent::Range { start, length })
                .collect(),
        }
    }

    /// Parses TensorFlow's text form (`TensorSlice::Parse`): `-` or `start,length` per
    /// dimension, separated by `:`, empty items skipped; `start >= 0` and `length > 0`.
    ///
    /// Errors: [`Error::SliceSpec`] naming the spec and the bad item.
    pub fn parse(spec: &str) -> Result<TensorSlice> {
        let mut extents = Vec::new();
        for item in spec.split(':').filter(|s| !s.is_empty()) {
            if item == "-" {
                extents.push(Extent::Full);
                continue;
            }
            let parts: Vec<&str> = item.split(',').filter(|s| !s.is_empty()).collect();
            let (start, length) = match parts.as_slice() {
                [s, l] => match (s.parse::<i64>(), l.parse::<i64>()) {
                    (Ok(s), Ok(l)) => (s, l),
                    _ => {
                        return Err(spec_error(
                            spec,
                            format!("expected a pair of numbers or '-', got {item:?}"),
                        ))
                    }
                },
                _ => {
                    return Err(spec_error(
                        spec,
                        format!("expected a pair of numbers or '-', got {item:?}"),
                    ))
                }
            };
            if start < 0 || length <= 0 {
                return Err(spec_error(
                    spec,
                    format!(
                        "expected a non-negative start and a positive length, got start {start}, length {length}"
                    ),
                ));
            }
            extents.push(Extent::Range {
                start: start as u64,
                length: length as u64,
            });
        }
        Ok(TensorSlice { extents })
    }

    /// Reads a `TensorSliceProto` as TensorFlow's `TensorSlice::BuildTensorSlice` does: an
    /// extent without a length (or with length -1 and start 0) is the whole dimension; any
    /// other extent needs `start >= 0`, `length > 0` and an end that fits in an `i64`.
    ///
    /// Errors: the reason, for the caller to wrap with the file and tensor.
    pub fn from_proto(proto: &TensorSliceProto) -> std::result::Result<TensorSlice, String> {
        let mut extents = Vec::with_capacity(proto.extent.len());
        for (d, e) in proto.extent.iter().enumerate() {
            let length = match e.has_length {
                Some(HasLength::Length(l)) => l,
                None => -1,
            };
            if e.start == 0 && length == -1 {
                extents.push(Extent::Full);
                continue;
            }
            if e.start < 0 || length <= 0 {
                return Err(format!(
                    "dimension {d}: start {} length {length} (expected start >= 0, length > 0)",
                    e.start
                ));
            }
            if e.start.checked_add(length).is_none() {
                return Err(format!(
                    "dimension {d}: start {} + length {length} overflows",
                    e.start
                ));
            }
            extents.push(Extent::Range {
                start: e.start as u64,
                length: length as u64,
            });
        }
        Ok(TensorSlice { extents })
    }

    /// The proto TensorFlow stores (`TensorSlice::AsProto`): a whole dimension is an extent
    /// without start or length.
    pub fn to_proto(&self) -> TensorSliceProto {
        TensorSliceProto {
            extent: self
                .extents
                .iter()
                .map(|e| match *e {
                    Extent::Full => ExtentProto::default(),
                    Extent::Range { start, length } => ExtentProto {
                        start: start as i64,
                        has_length: Some(HasLength::Length(length as i64)),
                    },
                })
                .collect(),
        }
    }

    /// The index key under which a bundle stores this slice of tensor `full_name`
    /// (docs/format.md §3.8): a whole dimension is encoded as start 0, length -1.
    pub fn index_key(&self, full_name: &str) -> Vec<u8> {
        let extents: Vec<(i64, i64)> = self
            .extents
            .iter()
            .map(|e| match *e {
                Extent::Full => (0, -1),
                Extent::Range { start, length } => (start as i64, length as i64),
            })
            .collect();
        crate::slice_key::encode_slice_key(full_name.as_bytes(), &extents)
    }

    /// The extents, one per dimension.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.extents.len()
    }

    /// Whether every extent is [`Extent::Full`] (TensorFlow's `IsFull`).
    pub fn is_full(&self) -> bool {
        self.extents.iter().all(|e| *e == Extent::Full)
    }

    /// `(start, length)` per dimension of a tensor of `shape`, whole extents resolved
    /// (TensorFlow's `SliceTensorShape`).
    ///
    /// Errors: [`Error::SliceSpec`] when the ranks differ or a range ends past its dimension.
    pub fn ranges(&self, shape: &[u64]) -> Result<Vec<(u64, u64)>> {
        if shape.len() != self.extents.len() {
            return Err(spec_error(
                &self.to_string(),
                format!(
                    "a rank-{} slice does not fit shape {shape:?}",
                    self.extents.len()
                ),
            ));
        }
        self.extents
            .iter()
            .zip(shape)
            .enumerate()
            .map(|(d, (e, &dim))| match *e {
                Extent::Full => Ok((0, dim)),
                Extent::Range { start, length } => {
                    if start.checked_add(length).is_none_or(|end| end > dim) {
                        Err(spec_error(
                            &self.to_string(),
                            format!(
                                "extent {start},{length} of dimension {d} lies outside its size {dim}"
                            ),
                        ))
                    } else {
                        Ok((start, length))
                    }
                }
            })
            .collect()
    }
}

impl fmt::Display for TensorSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (d, e) in self.extents.iter().enumerate() {
            if d > 0 {
                f.write_str(":")?;
            }
            match e {
                Extent::Full => f.write_str("-")?,
                Extent::Range { start, length } => write!(f, "{start},{length}")?,
            }
        }
        Ok(())
    }
}

/// Parses a `shape_and_slice` spec (`checkpoint::ParseShapeAndSlice`): the full shape's
/// dimensions and then the slice, separated by single spaces, such as `"6 2 4,2:-"`. The
/// slice must fit the shape. (An empty spec, meaning "the whole tensor", is the caller's case:
/// TensorFlow never parses it.)
///
/// Errors: [`Error::SliceSpec`] naming the spec: fewer than two items, a dimension that is
/// not a non-negative number, a bad slice item, or a slice that does not fit the shape.
pub fn parse_shape_and_slice(spec: &str) -> Result<ShapeAndSlice> {
    let items: Vec<&str> = spec.split(' ').collect();
    let Some((slice_text, dims)) = items.split_last().filter(|(_, dims)| !dims.is_empty()) else {
        return Err(spec_error(
            spec,
            "needs the shape's dimensions and a slice, separated by spaces",
        ));
    };
    let shape = dims
        .iter()
        .map(|d| {
            d.parse::<u64>()
                .ok()
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| spec_error(spec, format!("dimension {d:?} is not a size")))
        })
        .collect::<Result<Vec<u64>>>()?;
    let slice = TensorSlice::parse(slice_text).map_err(|e| match e {
        Error::SliceSpec { reason, .. } => spec_error(spec, reason),
        other => other,
    })?;
    slice.ranges(&shape).map_err(|e| match e {
        Error::SliceSpec { reason, .. } => spec_error(spec, reason),
        other => other,
    })?;
    Ok(ShapeAndSlice { shape, slice })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, length: u64) -> Extent {
        Extent::Range { start, length }
    }

    #[test]
    fn parses_like_tensorflow() -> Result<()> {
        assert_eq!(
            TensorSlice::parse("-:0,3")?.extents(),
            [Extent::Full, range(0, 3)]
        );
        // Empty items are skipped, as str_util::SkipEmpty does.
        assert_eq!(
            TensorSlice::parse("-::1,2:")?.extents(),
            [Extent::Full, range(1, 2)]
        );
        assert_eq!(TensorSlice::parse("")?.rank(), 0);
        for bad in ["0,-1", "4,0", "-1,2", "1", "1,2,3", "a,b", "*"] {
            assert!(
                matches!(TensorSlice::parse(bad), Err(Error::SliceSpec { ref spec, .. }) if spec == bad),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn shape_and_slice_specs() -> Result<()> {
        let s = parse_shape_and_slice("6 2 4,2:-")?;
        assert_eq!(
            (s.shape.as_slice(), s.slice.extents()),
            (&[6u64, 2][..], &[range(4, 2), Extent::Full][..])
        );
        let s = parse_shape_and_slice("3 2 -:-")?;
        assert!(s.slice.is_full());
        // TensorFlow: only `-` is the whole dimension; `0,-1` is refused.
        for bad in [
            "5 0,-1",
            "6 2 4,2",
            "6 x 4,2:-",
            "6 2 4:-",
            "6 2 4,-5:-",
            "6 2 5,2:-",
            "6  2 -:-",
            "-:-",
            "",
        ] {
            assert!(
                matches!(parse_shape_and_slice(bad), Err(Error::SliceSpec { ref spec, .. }) if spec == bad),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn ranges_and_text() -> Result<()> {
        let s = TensorSlice::parse("1,2:-")?;
        assert_eq!(s.ranges(&[4, 5])?, [(1, 2), (0, 5)]);
        assert_eq!(s.to_string(), "1,2:-");
        assert!(matches!(s.ranges(&[2, 5]), Err(Error::SliceSpec { .. })));
        assert!(matches!(s.ranges(&[4]), Err(Error::SliceSpec { .. })));
        assert_eq!(TensorSlice::from_proto(&s.to_proto()), Ok(s));
        Ok(())
    }
}
