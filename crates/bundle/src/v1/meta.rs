//! The inventory of a V1 checkpoint: the `SavedTensorSliceMeta` under the empty key of each
//! file, validated once and merged across files (TensorFlow's `TensorSliceReader::LoadShard`
//! and `TensorSliceSet::Register`; docs/format.md §3.11).

use std::collections::BTreeMap;
use std::path::Path;

use ckpt_proto::{Message, SavedSliceMeta, SavedTensorSlices};
use ckpt_table::Table;

use super::values::value_field;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::index::{check_disjoint, check_versions, shape_of};
use crate::region::show;
use crate::tensor::{num_elements, TensorInfo};
use crate::tensor_slice::TensorSlice;

/// One slice of a tensor stored in one file.
#[derive(Clone, Debug)]
pub(crate) struct StoredSlice {
    /// The slice exactly as the meta lists it: its key is built from this form
    /// (docs/format.md §3.11: an explicit `0,5` and a full `-` give different keys).
    pub slice: TensorSlice,
    /// `(start, length)` per dimension, resolved against the full shape.
    pub ranges: Vec<(u64, u64)>,
    /// Which file of the checkpoint holds it.
    pub file: usize,
}

/// Every tensor of the checkpoint, sorted by name, with its stored slices.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub tensors: Vec<TensorInfo>,
    pub slices: Vec<Vec<StoredSlice>>,
}

/// Opens `bytes` (file `path`) as a table.
///
/// Errors: [`Error::Table`].
pub(crate) fn open_table<'a>(path: &Path, bytes: &'a [u8]) -> Result<Table<'a>> {
    Table::open(bytes).map_err(|error| Error::Table {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads and merges the metadata of every file (`files[i]` is `(path, bytes)`).
///
/// Errors: [`Error::Table`] for a damaged table; [`Error::V1Meta`] when the first entry is not
/// a `SavedTensorSlices` with a `meta` under the empty key, or its version is refused;
/// [`Error::V1Tensor`] for an unknown or unstorable dtype, an invalid shape, a slice that does
/// not fit the shape, files that disagree on a tensor's dtype or shape, or overlapping slices.
pub(crate) fn read_catalog(files: &[(&Path, &[u8])]) -> Result<Catalog> {
    let mut by_name: BTreeMap<String, (TensorInfo, Vec<StoredSlice>, usize)> = BTreeMap::new();
    for (file, &(path, bytes)) in files.iter().enumerate() {
        let table = open_table(path, bytes)?;
        for meta in read_meta(path, &table)? {
            register(path, file, meta, &mut by_name)?;
        }
    }
    let mut catalog = Catalog::default();
    for (name, (info, slices, first_file)) in by_name {
        check_no_overlap(files, first_file, &name, &info, &slices)?;
        catalog.tensors.push(info);
        catalog.slices.push(slices);
    }
    Ok(catalog)
}

/// The `SavedSliceMeta`s of one file, after its version check.
fn read_meta(path: &Path, table: &Table<'_>) -> Result<Vec<SavedSliceMeta>> {
    let bad = |reason: String| Error::V1Meta {
        path: path.to_path_buf(),
        reason,
    };
    let (key, value) = match table.iter().next() {
        None => return Err(bad("the table is empty".to_string())),
        Some(row) => row.map_err(|error| Error::Table {
            path: path.to_path_buf(),
            error,
        })?,
    };
    if !key.is_empty() {
        return Err(bad(format!(
            "the first key is {} instead of the empty key of the metadata",
            crate::index::show_key(&key)
        )));
    }
    let sts = SavedTensorSlices::decode(&*value).map_err(|e| {
        bad(format!(
            "the empty key does not hold a SavedTensorSlices ({e})"
        ))
    })?;
    let meta = sts
        .meta
        .ok_or_else(|| bad("the empty key holds no SavedTensorSliceMeta".to_string()))?;
    check_versions(&meta.versions.unwrap_or_default()).map_err(bad)?;
    Ok(meta.tensor)
}

/// Adds one `SavedSliceMeta` of file `file` to the inventory.
fn register(
    path: &Path,
    file: usize,
    meta: SavedSliceMeta,
    by_name: &mut BTreeMap<String, (TensorInfo, Vec<StoredSlice>, usize)>,
) -> Result<()> {
    let bad = |reason: String| Error::V1Tensor {
        path: path.to_path_buf(),
        tensor: meta.name.clone(),
        reason,
    };
    let dtype = DType::from_proto(meta.r#type).ok_or_else(|| {
        bad(match ckpt_proto::DataType::try_from(meta.r#type) {
            Ok(dt) => format!("dtype {dt:?} ({}) cannot be read", meta.r#type),
            Err(_) => format!("unknown dtype {}", meta.r#type),
        })
    })?;
    if value_field(dtype).is_none() {
        return Err(bad(format!(
            "dtype {dtype} cannot be stored in a V1 checkpoint"
        )));
    }
    let shape = shape_of(meta.shape.as_ref()).map_err(&bad)?;
    let mut stored = Vec::with_capacity(meta.slice.len());
    for (k, proto) in meta.slice.iter().enumerate() {
        let slice = TensorSlice::from_proto(proto).map_err(|r| bad(format!("slice {k}: {r}")))?;
        let ranges = slice.ranges(&shape).map_err(|_| {
            bad(format!(
                "slice {k} ({slice}) does not fit the shape {shape:?}"
            ))
        })?;
        stored.push(StoredSlice {
            slice,
            ranges,
            file,
        });
    }
    match by_name.get_mut(&meta.name) {
        Some((info, slices, first_file)) => {
            if info.dtype != dtype || info.shape != shape {
                return Err(bad(format!(
                    "this file says {dtype} {shape:?}, file {} of the checkpoint says {} {:?}",
                    *first_file, info.dtype, info.shape
                )));
            }
            slices.extend(stored);
        }
        None => {
            let info = TensorInfo {
                name: meta.name.clone(),
                dtype,
                shape,
            };
            by_name.insert(meta.name.clone(), (info, stored, file));
        }
    }
    Ok(())
}

/// TensorFlow refuses overlapping slices of one tensor when it registers them.
fn check_no_overlap(
    files: &[(&Path, &[u8])],
    first_file: usize,
    name: &str,
    info: &TensorInfo,
    slices: &[StoredSlice],
) -> Result<()> {
    let path = files.get(first_file).map(|f| f.0).unwrap_or(Path::new(""));
    let bad = |reason: String| Error::V1Tensor {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        reason,
    };
    if info.shape.is_empty() && slices.len() > 1 {
        return Err(bad(format!(
            "the scalar is stored {} times (overlapping slices)",
            slices.len()
        )));
    }
    let boxes: Vec<&[(u64, u64)]> = slices.iter().map(|s| s.ranges.as_slice()).collect();
    check_disjoint(&boxes).map_err(bad)
}

/// Why the stored slices of a tensor do not cover `region` (absolute coordinates), if they
/// do not: the volumes of their intersections with it add up to less than its volume.
pub(crate) fn coverage_gap(slices: &[StoredSlice], region: &[(u64, u64)]) -> Option<String> {
    let want = num_elements(&region.iter().map(|r| r.1).collect::<Vec<_>>())?;
    let mut covered: u64 = 0;
    for s in slices {
        if let Some(common) = crate::region::intersect(&s.ranges, region) {
            let volume = num_elements(&common.iter().map(|r| r.1).collect::<Vec<_>>())?;
            covered = covered.saturating_add(volume);
        }
    }
    (covered < want).then(|| {
        format!(
            "the stored slices ({}) hold {covered} of the {want} elements of {}",
            if slices.is_empty() {
                "none".to_string()
            } else {
                slices
                    .iter()
                    .map(|s| s.slice.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            if region.is_empty() {
                "the scalar".to_string()
            } else {
                format!("the region {}", show(region))
            }
        )
    })
}
