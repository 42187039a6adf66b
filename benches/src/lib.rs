//! Shared set-up for the criterion benchmarks in `benches/benches/`.
//!
//! `cargo bench -p ckpt-benches` builds a 1 GiB checkpoint (64 float32 tensors of 16 MiB) in a
//! temporary directory with the project's own writer and measures restore, verify, open + list
//! and save on it.
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
