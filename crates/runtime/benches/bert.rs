//! Latency of `Session::run` on a BERT-style encoder at batch 8, sequence 128, hidden 256,
//! 4 heads, intermediate 1024, 4 layers: the graph google-research/bert's `modeling.py`
//! builds (`fixtures/bert_bench`, made by `fixtures/make_fixtures.py bert_bench`), with random
//! weights this benchmark writes as a checkpoint.
//!
//! Set `CKPT_BENCH_BERT_DIR=DIR` to keep that checkpoint as `DIR/model.ckpt` (with the graph
//! beside it), so TensorFlow and ONNX Runtime can time the same model on the same inputs:
//!
//! ```text
//! CKPT_BENCH_BERT_DIR=/tmp/bert cargo bench -p ckpt-runtime --bench bert
//! python shared/tools/anchors.py /tmp/bert/model.ckpt --fetch pooled_output --batch 8 \
//!     --feed input_ids=fixtures/bert_bench/input_ids.npy \
//!     --feed input_mask=fixtures/bert_bench/input_mask.npy \
//!     --feed token_type_ids=fixtures/bert_bench/token_type_ids.npy
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};

use ckpt_bundle::{BundleWriter, Checkpoint, Tensor};
use ckpt_graph::{Model, VARIABLE_OPS};
use ckpt_runtime::{Session, SessionOptions, Value};
use criterion::{criterion_group, criterion_main, Criterion};

/// Deterministic values in [-1, 1).
fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Writes random weights for every variable of `model` as the checkpoint `prefix`: unit
/// LayerNorm scales, small biases, kernels scaled by 1/sqrt(fan-in).
fn write_weights(model: &Model, prefix: &Path) -> common::TestResult {
    let mut writer = BundleWriter::create(prefix)?;
    for (id, node) in model.graph.nodes.iter().enumerate() {
        if !VARIABLE_OPS.contains(&node.op.as_str()) {
            continue;
        }
        let key = model.variable_key(id).unwrap_or(&node.name).to_string();
        let dims = node
            .attr_shape("shape")?
            .ok_or("variable without a shape")?;
        let shape: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        let n: usize = dims.iter().map(|&d| d as usize).product();
        let noise = uniform(n, id as u64 + 1);
        let values: Vec<f32> = if key.ends_with("gamma") {
            noise.iter().map(|v| 1.0 + 0.1 * v).collect()
        } else if key.ends_with("beta") || key.ends_with("bias") {
            noise.iter().map(|v| 0.05 * v).collect()
        } else {
            let scale = 1.7 / (dims[0] as f32).sqrt();
            noise.iter().map(|v| v * scale).collect()
        };
        writer.add(&key, &Tensor::from_vec(shape, values)?)?;
    }
    writer.finish()?;
    Ok(())
}

fn benches(c: &mut Criterion) -> common::TestResult {
    let dir = common::fixtures().join("bert_bench");
    let meta = dir.join("model.ckpt.meta");
    let model = Model::load(&meta)?;
    let kept = std::env::var_os("CKPT_BENCH_BERT_DIR").map(PathBuf::from);
    let temp = tempfile::tempdir()?;
    let out_dir = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&out_dir)?;
    let prefix = out_dir.join("model.ckpt");
    write_weights(&model, &prefix)?;
    if kept.is_some() {
        std::fs::copy(&meta, out_dir.join("model.ckpt.meta"))?;
        eprintln!("checkpoint kept at {}", prefix.display());
    }
    let bundle = Checkpoint::open(&prefix)?;
    let names = ["input_ids", "input_mask", "token_type_ids"];
    let session = Session::new(
        &model,
        Some(&bundle),
        &["pooled_output"],
        &names,
        SessionOptions::default(),
    )?;
    let feeds: Vec<(&str, Value)> = names
        .iter()
        .map(|n| Ok((*n, common::read_npy(&dir.join(format!("{n}.npy")))?)))
        .collect::<common::TestResult<_>>()?;
    let mut group = c.benchmark_group("bert");
    group.sample_size(20);
    group.bench_function("b8_s128_h256_l4", |b| {
        b.iter(|| black_box(session.run(black_box(&feeds))))
    });
    group.finish();
    Ok(())
}

fn run(c: &mut Criterion) {
    if let Err(e) = benches(c) {
        eprintln!("benchmark setup failed: {e}");
        std::process::exit(1);
    }
}

criterion_group!(runtime, run);
criterion_main!(runtime);
