//! Parsing and validating a bundle's `.index` table (docs/format.md §3.2–§3.4, §3.8, §3.10):
//! the header, one entry per tensor, and the slices of partitioned tensors. Everything a later
//! read relies on is checked here, once: dtypes, shapes and their element counts, shard ids,
//! offsets and sizes, and that the slices of a partitioned tensor fit it without overlapping.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ckpt_proto::{
    bundle_header_proto::Endianness, BundleEntryProto, BundleHeaderProto, Message,
    TensorShapeProto, TensorSliceProto,
};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::region::show;
use crate::slice_key::decode_slice_key;
use crate::tensor::{num_elements, TensorInfo};
use crate::tensor_slice::TensorSlice;

/// Largest `num_shards` a header may claim.
pub const MAX_SHARDS: i32 = 1_000_000;
/// TensorFlow's `TensorShape::MaxDimensions()`.
const MAX_RANK: usize = 254;
/// Bound on the box comparisons spent proving a partitioned tensor's slices disjoint.
const MAX_OVERLAP_CHECKS: u64 = 50_000_000;

/// Where a stored run of bytes lives and what its checksum should be.
#[derive(Clone, Debug)]
pub(crate) struct DataRef {
    /// Index into the reader's shard slots (shards in order of first use).
    pub slot: usize,
    /// Byte offset in the shard.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
    /// The masked crc32c stored in the entry.
    pub crc: u32,
}

/// One stored slice of a partitioned tensor.
#[derive(Clone, Debug)]
pub(crate) struct Piece {
    /// `(start, length)` per dimension, resolved against the full shape.
    pub extents: Vec<(u64, u64)>,
    /// Its bytes.
    pub data: DataRef,
}

/// How a tensor's bytes are stored.
#[derive(Clone, Debug)]
pub(crate) enum Layout {
    /// In one run.
    Whole(DataRef),
    /// A partitioned tensor. `incomplete` says why the slices do not cover it exactly
    /// (one shard of a sharded save holds only some slices): listing and merging still
    /// work, reading the whole tensor and verifying fail.
    Sliced {
        pieces: Vec<Piece>,
        incomplete: Option<String>,
    },
}

impl Layout {
    /// The stored runs of this tensor of `shape`, each with the box of the tensor it holds.
    pub(crate) fn boxes(&self, shape: &[u64]) -> Vec<(Vec<(u64, u64)>, &DataRef)> {
        match self {
            Layout::Whole(d) => vec![(shape.iter().map(|&n| (0, n)).collect(), d)],
            Layout::Sliced { pieces, .. } => pieces
                .iter()
                .map(|p| (p.extents.clone(), &p.data))
                .collect(),
        }
    }
}

/// A validated index.
#[derive(Debug)]
pub(crate) struct Index {
    /// Whether the data was written on a big-endian machine.
    pub big_endian: bool,
    /// The shard count the header declares.
    pub num_shards: u32,
    /// The ids of the shards the entries use, in order of first use (a [`DataRef::slot`]
    /// indexes this).
    pub shard_ids: Vec<u32>,
    /// Every tensor, sorted by name; partitioned tensors once.
    pub tensors: Vec<TensorInfo>,
    /// The layout of each tensor of `tensors`.
    pub layouts: Vec<Layout>,
}

/// The header's facts.
struct Header {
    num_shards: u32,
    big_endian: bool,
}

/// Entries as read from the table, before partitioned tensors are resolved.
#[derive(Default)]
struct Entries {
    whole: Vec<(TensorInfo, Layout)>,
    sliced: Vec<(TensorInfo, Vec<TensorSliceProto>)>,
    /// Entries of stored slices, by their (OrderedCode) key.
    slice_entries: HashMap<Vec<u8>, BundleEntryProto>,
}

impl Index {
    /// Parses and validates the `.index` bytes; `index_path` names the file in errors.
    pub(crate) fn parse(index_path: &Path, bytes: &[u8]) -> Result<Index> {
        let table = ckpt_table::Table::open(bytes).map_err(|error| Error::Table {
            path: index_path.to_path_buf(),
            error,
        })?;
        let mut rows = table.iter();
        let header = read_header(index_path, &mut rows)?;
        let mut validator = EntryValidator {
            index_path,
            num_shards: header.num_shards,
            slots: BTreeMap::new(),
        };
        let entries = validator.read_entries(rows)?;
        let mut all = entries.whole;
        for (info, slices) in entries.sliced {
            let (pieces, incomplete) = validator.pieces(&info, &slices, &entries.slice_entries)?;
            all.push((info, Layout::Sliced { pieces, incomplete }));
        }
        all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let (tensors, layouts) = all.into_iter().unzip();
        Ok(Index {
            big_endian: header.big_endian,
            num_shards: header.num_shards,
            shard_ids: validator.shards_by_slot(),
            tensors,
            layouts,
        })
    }
}

type Row<'a> = std::result::Result<ckpt_table::Entry<'a>, ckpt_table::Error>;

/// Reads and checks the entry under the empty key.
fn read_header<'a>(index_path: &Path, rows: &mut impl Iterator<Item = Row<'a>>) -> Result<Header> {
    let header_err = |reason: String| Error::Header {
        path: index_path.to_path_buf(),
        reason,
    };
    let (key, value) = match rows.next() {
        None => return Err(header_err("the index has no entries".to_string())),
        Some(r) => r.map_err(|error| Error::Table {
            path: index_path.to_path_buf(),
            error,
        })?,
    };
    if !key.is_empty() {
        return Err(header_err(format!(
            "first key is {} instead of the empty header key",
            show_key(&key)
        )));
    }
    let header = BundleHeaderProto::decode(&*value)
        .map_err(|e| header_err(format!("not a BundleHeaderProto ({e})")))?;
    if header.num_shards < 1 || header.num_shards > MAX_SHARDS {
        return Err(header_err(format!(
            "num_shards is {}; expected 1 to {MAX_SHARDS}",
            header.num_shards
        )));
    }
    let big_endian = match Endianness::try_from(header.endianness) {
        Ok(Endianness::Little) => false,
        Ok(Endianness::Big) => true,
        Err(_) => {
            return Err(header_err(format!(
                "unknown endianness {}",
                header.endianness
            )))
        }
    };
    let version = header.version.unwrap_or_default();
    if version.producer < 0 {
        return Err(header_err(format!(
            "version producer {} is negative",
            version.producer
        )));
    }
    if version.min_consumer > 1 {
        return Err(header_err(format!(
            "needs a newer reader: min_consumer {} > 1 (written by a newer TensorFlow?)",
            version.min_consumer
        )));
    }
    if version.bad_consumers.contains(&1) {
        return Err(header_err(
            "this reader version (1) is listed in bad_consumers".to_string(),
        ));
    }
    Ok(Header {
        num_shards: header.num_shards as u32,
        big_endian,
    })
}

/// State while validating index entries.
struct EntryValidator<'p> {
    index_path: &'p Path,
    num_shards: u32,
    /// shard id -> slot index, in order of first use.
    slots: BTreeMap<u32, usize>,
}

impl EntryValidator<'_> {
    fn err(&self, tensor: &str, reason: String) -> Error {
        Error::Entry {
            path: self.index_path.to_path_buf(),
            tensor: tensor.to_string(),
            reason,
        }
    }

    /// The shard ids in slot order.
    fn shards_by_slot(&self) -> Vec<u32> {
        let mut by_slot: Vec<(usize, u32)> =
            self.slots.iter().map(|(&id, &slot)| (slot, id)).collect();
        by_slot.sort_unstable();
        by_slot.into_iter().map(|(_, id)| id).collect()
    }

    /// Every entry after the header, in key order: whole tensors validated, partitioned
    /// tensors and their stored slices set aside.
    fn read_entries<'a>(&mut self, rows: impl Iterator<Item = Row<'a>>) -> Result<Entries> {
        let mut entries = Entries::default();
        let mut prev: Vec<u8> = Vec::new();
        for row in rows {
            let (key, value) = row.map_err(|error| Error::Table {
                path: self.index_path.to_path_buf(),
                error,
            })?;
            if *key <= *prev {
                return Err(self.err(
                    &show_key(&key),
                    format!("keys out of order: follows {}", show_key(&prev)),
                ));
            }
            let entry = BundleEntryProto::decode(&*value)
                .map_err(|e| self.err(&show_key(&key), format!("not a BundleEntryProto ({e})")))?;
            if key.first() == Some(&0) {
                entries.slice_entries.insert(key.clone(), entry);
            } else {
                let name = String::from_utf8(key.clone()).map_err(|_| {
                    self.err(&show_key(&key), "tensor name is not UTF-8".to_string())
                })?;
                let (dtype, shape) = self.dtype_and_shape(&name, &entry)?;
                let info = TensorInfo { name, dtype, shape };
                if entry.slices.is_empty() {
                    let d = self.data_ref(&info.name, dtype, &info.shape, &entry)?;
                    entries.whole.push((info, Layout::Whole(d)));
                } else {
                    entries.sliced.push((info, entry.slices));
                }
            }
            prev = key;
        }
        Ok(entries)
    }

    fn dtype_and_shape(&self, name: &str, entry: &BundleEntryProto) -> Result<(DType, Vec<u64>)> {
        let dtype = DType::from_proto(entry.dtype).ok_or_else(|| {
            let what = match ckpt_proto::DataType::try_from(entry.dtype) {
                Ok(dt) => format!(
                    "dtype {:?} ({}) cannot be read from a bundle",
                    dt, entry.dtype
                ),
                Err(_) => format!("unknown dtype {}", entry.dtype),
            };
            self.err(name, what)
        })?;
        let shape = shape_of(entry.shape.as_ref()).map_err(|r| self.err(name, r))?;
        Ok((dtype, shape))
    }

    fn data_ref(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        entry: &BundleEntryProto,
    ) -> Result<DataRef> {
        if entry.shard_id < 0 || entry.shard_id as u32 >= self.num_shards {
            return Err(self.err(
                name,
                format!(
                    "shard id {} out of range: the header declares {} shards",
                    entry.shard_id, self.num_shards
                ),
            ));
        }
        if entry.offset < 0 || entry.size < 0 {
            return Err(self.err(
                name,
                format!("negative offset {} or size {}", entry.offset, entry.size),
            ));
        }
        if entry.offset.checked_add(entry.size).is_none() {
            return Err(self.err(
                name,
                format!("offset {} + size {} overflows", entry.offset, entry.size),
            ));
        }
        let size = entry.size as u64;
        let count = num_elements(shape).unwrap_or(u64::MAX);
        match dtype.element_size() {
            Some(elem) => {
                let want = count.checked_mul(elem as u64).ok_or_else(|| {
                    self.err(name, format!("byte size of {dtype} {shape:?} overflows"))
                })?;
                if size != want {
                    return Err(self.err(
                        name,
                        format!(
                            "stored size {size} bytes, but {dtype} {shape:?} takes {want} bytes"
                        ),
                    ));
                }
            }
            None => {
                if size < count {
                    return Err(self.err(
                        name,
                        format!("stored size {size} bytes cannot hold {count} {dtype} elements"),
                    ));
                }
            }
        }
        let id = entry.shard_id as u32;
        let next = self.slots.len();
        let slot = *self.slots.entry(id).or_insert(next);
        Ok(DataRef {
            slot,
            offset: entry.offset as u64,
            size,
            crc: entry.crc32c,
        })
    }

    /// The stored slices of the partitioned tensor `info`, each checked against its own entry;
    /// and, when they do not cover the tensor exactly, why.
    fn pieces(
        &mut self,
        info: &TensorInfo,
        slices: &[TensorSliceProto],
        slice_entries: &HashMap<Vec<u8>, BundleEntryProto>,
    ) -> Result<(Vec<Piece>, Option<String>)> {
        let name = &info.name;
        let bad = |reason: String| Error::Slices {
            path: self.index_path.to_path_buf(),
            tensor: name.clone(),
            reason,
        };
        let rank = info.shape.len();
        if rank == 0 {
            return Err(bad("a scalar cannot be partitioned".to_string()));
        }
        let mut pieces = Vec::with_capacity(slices.len());
        let mut covered: u64 = 0;
        for (k, proto) in slices.iter().enumerate() {
            if proto.extent.len() != rank {
                return Err(bad(format!(
                    "slice {k} has {} extents for a rank-{rank} tensor",
                    proto.extent.len()
                )));
            }
            let slice =
                TensorSlice::from_proto(proto).map_err(|r| bad(format!("slice {k}, {r}")))?;
            let extents = slice.ranges(&info.shape).map_err(|_| {
                bad(format!(
                    "slice {k} ({slice}) lies outside the shape {:?}",
                    info.shape
                ))
            })?;

            let key = slice.index_key(name);
            let entry = slice_entries.get(&key).ok_or_else(|| {
                bad(format!(
                    "slice {k} ({}) has no entry in the index",
                    show(&extents)
                ))
            })?;
            let piece_name = format!("{name}[{}]", show(&extents));
            let (dtype, shape) = self.dtype_and_shape(&piece_name, entry)?;
            if dtype != info.dtype {
                return Err(bad(format!(
                    "slice {k} has dtype {dtype}, the tensor {}",
                    info.dtype
                )));
            }
            let lens: Vec<u64> = extents.iter().map(|e| e.1).collect();
            if shape != lens {
                return Err(bad(format!(
                    "slice {k} is stored with shape {shape:?}, its extents say {lens:?}"
                )));
            }
            let data = self.data_ref(&piece_name, dtype, &shape, entry)?;
            let volume = num_elements(&lens).unwrap_or(u64::MAX);
            covered = covered
                .checked_add(volume)
                .ok_or_else(|| bad("slice volumes overflow".to_string()))?;
            pieces.push(Piece { extents, data });
        }
        let count = info.num_elements();
        let incomplete = if covered != count {
            Some(format!(
                "the slices hold {covered} of the tensor's {count} elements (one shard of a sharded save?)"
            ))
        } else {
            check_disjoint(&pieces).err()
        };
        Ok((pieces, incomplete))
    }
}

/// Slices whose volumes add up to the tensor's and that do not overlap cover it exactly.
fn check_disjoint(pieces: &[Piece]) -> std::result::Result<(), String> {
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    let start0 = |i: usize| {
        pieces
            .get(i)
            .and_then(|p| p.extents.first())
            .map_or(0, |e| e.0)
    };
    order.sort_by_key(|&i| start0(i));
    let mut checks: u64 = 0;
    for (a_pos, &a) in order.iter().enumerate() {
        let Some(pa) = pieces.get(a) else { continue };
        if pa.extents.iter().any(|e| e.1 == 0) {
            continue;
        }
        let end0 = pa.extents.first().map_or(0, |e| e.0 + e.1);
        for &b in order.iter().skip(a_pos + 1) {
            let Some(pb) = pieces.get(b) else { continue };
            if start0(b) >= end0 {
                break;
            }
            checks += 1;
            if checks > MAX_OVERLAP_CHECKS {
                return Err("too many slices to check for overlap".to_string());
            }
            let overlap = pa
                .extents
                .iter()
                .zip(&pb.extents)
                .all(|(x, y)| x.0 < y.0 + y.1 && y.0 < x.0 + x.1);
            if overlap {
                return Err(format!(
                    "slices {} and {} overlap",
                    show(&pa.extents),
                    show(&pb.extents)
                ));
            }
        }
    }
    Ok(())
}

/// A shape from its proto: known rank, at most [`MAX_RANK`] dimensions, none negative, and an
/// element count that fits an `i64` (TensorFlow's `TensorShape` rules).
fn shape_of(shape: Option<&TensorShapeProto>) -> std::result::Result<Vec<u64>, String> {
    let Some(shape) = shape else {
        return Ok(Vec::new());
    };
    if shape.unknown_rank {
        return Err("shape has unknown rank".to_string());
    }
    if shape.dim.len() > MAX_RANK {
        return Err(format!(
            "shape has {} dimensions; at most {MAX_RANK} allowed",
            shape.dim.len()
        ));
    }
    let mut dims = Vec::with_capacity(shape.dim.len());
    for (i, d) in shape.dim.iter().enumerate() {
        if d.size < 0 {
            return Err(format!("dimension {i} has size {}", d.size));
        }
        dims.push(d.size as u64);
    }
    match num_elements(&dims) {
        Some(n) if n <= i64::MAX as u64 => Ok(dims),
        _ => Err(format!("element count of shape {dims:?} overflows")),
    }
}

/// A key as a user can read it: a slice key as `name[0,2:-]`, other keys as text or hex.
pub(crate) fn show_key(key: &[u8]) -> String {
    if let Some(decoded) = decode_slice_key(key) {
        let ext: Vec<String> = decoded
            .extents
            .iter()
            .map(|&(s, l)| {
                if l < 0 {
                    "-".to_string()
                } else {
                    format!("{s},{l}")
                }
            })
            .collect();
        return format!(
            "{}[{}]",
            String::from_utf8_lossy(&decoded.name),
            ext.join(":")
        );
    }
    match std::str::from_utf8(key) {
        Ok(s) => s.to_string(),
        Err(_) => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(e: &[(u64, u64)]) -> Piece {
        Piece {
            extents: e.to_vec(),
            data: DataRef {
                slot: 0,
                offset: 0,
                size: 0,
                crc: 0,
            },
        }
    }

    #[test]
    fn overlap_detection() {
        let ok = [
            piece(&[(0, 2), (0, 2)]),
            piece(&[(2, 2), (0, 1)]),
            piece(&[(2, 2), (1, 1)]),
        ];
        assert_eq!(check_disjoint(&ok), Ok(()));
        let bad = [piece(&[(0, 2), (0, 2)]), piece(&[(1, 2), (1, 1)])];
        assert_eq!(
            check_disjoint(&bad),
            Err("slices 0,2:0,2 and 1,2:1,1 overlap".to_string())
        );
    }

    #[test]
    fn shapes() {
        use ckpt_proto::tensor_shape_proto::Dim;
        let dims = |v: &[i64]| TensorShapeProto {
            dim: v
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        };
        assert_eq!(shape_of(None), Ok(vec![]));
        assert_eq!(shape_of(Some(&dims(&[0, 3]))), Ok(vec![0, 3]));
        assert_eq!(
            shape_of(Some(&dims(&[-1, 3]))),
            Err("dimension 0 has size -1".to_string())
        );
        for overflow in [&[1i64 << 32, 1 << 32][..], &[1 << 62, 4]] {
            assert!(
                shape_of(Some(&dims(overflow))).is_err_and(|e| e.contains("overflows")),
                "{overflow:?}"
            );
        }
        assert_eq!(
            shape_of(Some(&TensorShapeProto {
                dim: vec![],
                unknown_rank: true
            })),
            Err("shape has unknown rank".to_string())
        );
    }
}
