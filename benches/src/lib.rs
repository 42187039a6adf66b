//! Shared set-up for the criterion benchmarks in `benches/benches/`.
//!
//! `cargo bench -p ckpt-benches` builds a 1 GiB checkpoint (64 float32 tensors of 16 MiB) in a
//! temporary directory with the project's own writer and measures restore, verify, open + list
//! and save on it. `cargo bench -p ckpt-benches --bench v1` opens and lists V1 checkpoints of a
//! few hundred tensors, written here as TensorFlow's `TensorSliceWriter` lays them out.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use ckpt_bundle::{BundleWriter, DType, Tensor, WriteOptions};

/// Number of tensors in the benchmark checkpoint.
pub const TENSORS: usize = 64;
/// Bytes per tensor: 16 MiB of float32.
pub const TENSOR_BYTES: usize = 16 << 20;

/// The float32 payload of tensor `index`: distinct, deterministic, not all zeros.
pub fn tensor_bytes(index: usize) -> Vec<u8> {
    let count = TENSOR_BYTES / 4;
    let mut bytes = Vec::with_capacity(TENSOR_BYTES);
    let mut state = 0x9e37_79b9_u32.wrapping_mul(index as u32 + 1);
    for _ in 0..count {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let value = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// Name of tensor `index`, in the style of a TF1 model.
pub fn tensor_name(index: usize) -> String {
    format!("layer_{index:02}/dense/kernel")
}

/// Where the benchmark checkpoints go: `$CKPT_BENCH_DIR` if set (e.g. `/dev/shm` to measure
/// the writer rather than the disk), else the system's temporary directory.
pub fn bench_dir() -> std::io::Result<tempfile::TempDir> {
    match std::env::var_os("CKPT_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
}

/// Writes the benchmark checkpoint under `dir` and returns its prefix. `sync` fsyncs the files
/// before renaming them into place (the writer's default; TensorFlow's SaveV2 does not sync).
pub fn write_checkpoint(
    dir: &Path,
    payloads: &[Vec<u8>],
    sync: bool,
) -> Result<PathBuf, ckpt_bundle::Error> {
    let prefix = dir.join("model.ckpt");
    let mut writer = BundleWriter::create_with(&prefix, WriteOptions { sync })?;
    for (index, bytes) in payloads.iter().enumerate() {
        let tensor = Tensor::from_bytes(
            DType::Float32,
            vec![(TENSOR_BYTES / 4 / 1024) as u64, 1024],
            bytes.as_slice(),
        )?;
        writer.add(&tensor_name(index), &tensor)?;
    }
    writer.finish()?;
    Ok(prefix)
}

/// Writes a V1 checkpoint of `tensors` float32 tensors of shape [16, 16] (names in the style of
/// a TF1 model, values in `float_val`), as TensorFlow's `TensorSliceWriter` lays it out
/// (docs/format.md §3.11): one table per shard, the `SavedTensorSliceMeta` of the shard's
/// tensors under the empty key, one `SavedTensorSlices` per tensor under its slice key. With
/// `shards > 1` the files are `model.ckpt-NNNNN-of-NNNNN`; returns the name to open.
pub fn write_v1_checkpoint(dir: &Path, tensors: usize, shards: usize) -> std::io::Result<PathBuf> {
    use ckpt_bundle::TensorSlice;
    use ckpt_proto::tensor_shape_proto::Dim;
    use ckpt_proto::{
        DataType, Message, SavedSlice, SavedSliceMeta, SavedTensorSliceMeta, SavedTensorSlices,
        TensorProto, TensorShapeProto, VersionDef,
    };
    use ckpt_table::{TableBuilder, TableOptions};

    let io = |e: ckpt_table::Error| std::io::Error::other(e.to_string());
    let shards = shards.max(1);
    let full = TensorSlice::full(2);
    let shape = TensorShapeProto {
        dim: (0..2)
            .map(|_| Dim {
                size: 16,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    };
    let mut names: Vec<String> = (0..tensors)
        .map(|i| format!("layer_{i:03}/conv/weights"))
        .collect();
    names.sort();
    for shard in 0..shards {
        let mine: Vec<&String> = names.iter().skip(shard).step_by(shards).collect();
        let meta = SavedTensorSlices {
            meta: Some(SavedTensorSliceMeta {
                tensor: mine
                    .iter()
                    .map(|name| SavedSliceMeta {
                        name: name.to_string(),
                        shape: Some(shape.clone()),
                        r#type: DataType::DtFloat as i32,
                        slice: vec![full.to_proto()],
                    })
                    .collect(),
                versions: Some(VersionDef {
                    producer: 1,
                    ..Default::default()
                }),
            }),
            data: None,
        };
        let mut entries = vec![(Vec::new(), meta.encode_to_vec())];
        for (k, name) in mine.iter().enumerate() {
            let values: Vec<f32> = (0..256).map(|v| (v as f32 + k as f32) * 1e-3).collect();
            let data = SavedTensorSlices {
                meta: None,
                data: Some(SavedSlice {
                    name: name.to_string(),
                    slice: Some(full.to_proto()),
                    data: Some(TensorProto {
                        float_val: values,
                        ..Default::default()
                    }),
                }),
            };
            entries.push((full.index_key(name), data.encode_to_vec()));
        }
        entries.sort();
        let mut builder = TableBuilder::new(Vec::new(), TableOptions::default());
        for (k, v) in &entries {
            builder.add(k, v).map_err(io)?;
        }
        let file = if shards == 1 {
            dir.join("model.ckpt")
        } else {
            dir.join(format!("model.ckpt-{shard:05}-of-{shards:05}"))
        };
        std::fs::write(file, builder.finish().map_err(io)?)?;
    }
    Ok(dir.join("model.ckpt"))
}
