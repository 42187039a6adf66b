//! TensorFlow checkpoints without TensorFlow: V2 checkpoints ("tensor bundles") read, verified,
//! written and merged bit-exactly, and V1 checkpoints read.
//!
//! A V2 checkpoint is a prefix such as `train/model.ckpt-1000` naming an `.index` file (an
//! SSTable of tensor entries, read with `ckpt-table`) and data shards
//! `.data-NNNNN-of-NNNNN`. [`BundleReader`] validates the index once, memory-maps every shard
//! as it opens (so it sees one version while a writer replaces the files) and hands out [`Tensor`]s whose bytes are borrowed from the map. [`BundleWriter`]
//! writes bundles byte-identical to TensorFlow's `BundleWriter`, atomically. A V1 checkpoint
//! (TF ≤ 0.11) is one table file per device holding tensor slices in protobuf lists;
//! [`V1Reader`] reads it as TensorFlow's `TensorSliceReader` does. [`Checkpoint`] opens either
//! from whatever path a user typed (a prefix, any of the checkpoint's files, a V1 file or
//! shard, the directory with its `checkpoint` state file, a SavedModel directory) and gives
//! both one API. The [`state`] module reads and writes the `checkpoint` file. The byte layout
//! is specified in `docs/format.md` §3 (§3.11 for V1) and §5.
//!
//! ```
//! use ckpt_bundle::{BundleReader, BundleWriter, DType, Tensor};
//!
//! let dir = tempfile::tempdir()?;
//! let prefix = dir.path().join("model.ckpt-1");
//! let mut writer = BundleWriter::create(&prefix)?;
//! writer.add("dense/kernel", &Tensor::from_slice(vec![2, 2], &[1.0f32, 2.0, 3.0, 4.0])?)?;
//! writer.add("global_step", &Tensor::from_slice(vec![], &[7i64])?)?;
//! writer.finish()?;
//!
//! let reader = BundleReader::open(&prefix)?;
//! assert_eq!(reader.tensors()[0].name, "dense/kernel");
//! assert_eq!(reader.info("global_step")?.dtype, DType::Int64);
//! let kernel = reader.read("dense/kernel")?; // checksum verified, bytes borrowed from the mmap
//! assert_eq!(&*kernel.as_slice::<f32>()?, &[1.0, 2.0, 3.0, 4.0]);
//! assert_eq!(reader.verify()?.tensors, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every decode path returns [`Error`] naming the file, the tensor and the offset; hostile
//! input never panics and never sizes an allocation before it is checked against the bytes
//! that exist. The only `unsafe` is the memory map, in one function of `mmap.rs`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod atomic;
mod checkpoint;
pub mod commit;
mod crc;
mod dtype;
mod error;
mod index;
mod merge;
mod mmap;
mod paths;
mod reader;
mod region;
pub mod slice_key;
pub mod state;
mod stored;
mod strings;
mod tensor;
mod tensor_slice;
mod text_format;
mod v1;
mod writer;

pub use checkpoint::{Checkpoint, Format};
pub use commit::{backup_prefix, interrupted_write};
pub use dtype::{Bits, DType, Element};
pub use error::{Error, Result, ShortPath};
pub use index::MAX_SHARDS;
pub use merge::{merge_bundles, Prefer};
pub use mmap::MappedFile;
pub use paths::{data_path, index_path, meta_path, resolve_prefix};
pub use reader::{BundleReader, DeferredCheck, ReadOptions, VerifyReport};
pub use stored::StoredTensor;
pub use tensor::{Storage, StoredSlice, Tensor, TensorData, TensorInfo};
pub use tensor_slice::{parse_shape_and_slice, Extent, ShapeAndSlice, TensorSlice};
pub use v1::V1Reader;
pub use writer::{BundleWriter, WriteOptions};
