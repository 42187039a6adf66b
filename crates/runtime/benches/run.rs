//! Latency of `Session::run` on the fixture models: the MLP 784-256-128-10 at batch 64 and
//! batch 1, the LeNet-style CNN at batch 64, and the tf-keras MobileNetV2 (alpha 0.35, 96x96)
//! at batch 1 and 16 (TensorFlow 2.21 on this machine: about
//! 1.5 ms, 0.7 ms and 8.2 ms).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use ckpt_bundle::Checkpoint;
use ckpt_graph::Model;
use ckpt_runtime::{Session, SessionOptions, Value};
use criterion::{criterion_group, criterion_main, Criterion};

fn session(
    dir: &str,
    meta: &str,
    fetches: &[&str],
    feeds: &[&str],
    options: SessionOptions,
) -> common::TestResult<Session> {
    let dir = common::fixtures().join(dir);
    let model = Model::load(&dir.join(meta))?;
    let bundle = Checkpoint::open(dir.join(meta.trim_end_matches(".meta")))?;
    Ok(Session::new(
        &model,
        Some(&bundle),
        fetches,
        feeds,
        options,
    )?)
}

/// The first `rows` rows of a float32 batch.
fn rows(v: &Value, rows: usize) -> common::TestResult<Value> {
    let data = v.as_f32().ok_or("not float32")?;
    let mut shape = v.shape().to_vec();
    let per_row = data.len() / shape[0].max(1);
    shape[0] = rows;
    Ok(Value::new(shape, data[..rows * per_row].to_vec())?)
}

fn benches(c: &mut Criterion) -> common::TestResult {
    let fixtures = common::fixtures();
    let mlp_x = common::read_npy(&fixtures.join("mlp/x.npy"))?;
    let lenet_x = common::read_npy(&fixtures.join("lenet/x.npy"))?;
    let keep = Value::scalar(1.0f32);
    let rate = Value::scalar(0.0f32);
    for (label, inference) in [("", false), ("/inference", true)] {
        let options = SessionOptions {
            inference,
            ..Default::default()
        };
        let mlp = session(
            "mlp",
            "model.ckpt-150.meta",
            &["pred", "probs"],
            &["x", "keep_prob"],
            options,
        )?;
        for batch in [64, 1] {
            let feeds = [("x", rows(&mlp_x, batch)?), ("keep_prob", keep.clone())];
            c.bench_function(&format!("mlp_b{batch}{label}"), |b| {
                b.iter(|| black_box(mlp.run(black_box(&feeds))))
            });
        }
        let lenet = session(
            "lenet",
            "model.ckpt.meta",
            &["pred", "probs"],
            &["x", "rate"],
            options,
        )?;
        let feeds = [("x", lenet_x.clone()), ("rate", rate.clone())];
        c.bench_function(&format!("lenet_b64{label}"), |b| {
            b.iter(|| black_box(lenet.run(black_box(&feeds))))
        });
    }
    let mobilenet_x = common::read_npy(&fixtures.join("mobilenet_v2/input.npy"))?;
    let mobilenet = session(
        "mobilenet_v2",
        "model.ckpt.meta",
        &["logits"],
        &["input"],
        SessionOptions::default(),
    )?;
    for batch in [1, 16] {
        let feeds = [("input", mobilenet_x.tile_rows(batch)?)];
        c.bench_function(&format!("mobilenet_v2_b{batch}"), |b| {
            b.iter(|| black_box(mobilenet.run(black_box(&feeds))))
        });
    }
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
