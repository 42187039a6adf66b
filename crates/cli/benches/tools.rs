//! Throughput of `ckpt diff`, `ckpt average` and `ckpt drop` as a user runs them: the `ckpt`
//! binary on checkpoints of float32 tensors of 16 MiB (16 of them, 256 MiB, by default) in a
//! temporary directory, hot in the page cache. Throughput is bytes of input read (`diff` of
//! two: twice a checkpoint; `average` of five: five times). Next to them, for scale: reading
//! two checkpoints' files as `cat` does (`read_files_2`, the rate `diff_2` and `average_2`
//! are held to), `ckpt verify` of one checkpoint (every byte read and checksummed, at memory
//! speed) and a copy of its files, fsync'd as `drop` fsyncs its output (what `drop` should
//! cost no more than); `drop_1` checks the checksums of what it copies, `drop_1_no_verify`
//! does not.
//!
//! Run with `cargo bench -p ckpt-cli --bench tools`. The checkpoints go to `$CKPT_BENCH_DIR` if
//! set, else the system's temporary directory; `average` and `drop` write (and fsync) their
//! output there too, so on a slow disk the sync, not the arithmetic, sets their figure: set
//! `CKPT_BENCH_DIR=/dev/shm` to measure the tool rather than the disk. `CKPT_BENCH_TENSORS=64`
//! makes 1 GiB checkpoints (five of them, plus the outputs, must fit there).
#![allow(clippy::expect_used)] // a benchmark that cannot set itself up has nothing to measure

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ckpt_bundle::{BundleWriter, DType, Tensor, WriteOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Tensors per checkpoint, unless `$CKPT_BENCH_TENSORS` says otherwise.
const TENSORS: usize = 16;
/// Bytes per tensor: 16 MiB of float32.
const TENSOR_BYTES: usize = 16 << 20;

/// Tensors per checkpoint: `$CKPT_BENCH_TENSORS`, or [`TENSORS`].
fn tensors() -> usize {
    std::env::var("CKPT_BENCH_TENSORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(TENSORS)
}

/// Float32 values of tensor `index` of checkpoint `seed`: deterministic, every element
/// different between checkpoints (so `diff` has to compute every difference).
fn payload(seed: usize, index: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_u32
        .wrapping_mul(index as u32 + 1)
        .wrapping_add(seed as u32 * 0x85eb_ca6b);
    let mut bytes = Vec::with_capacity(TENSOR_BYTES);
    for _ in 0..TENSOR_BYTES / 4 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let value = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5 + index as f32;
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// Writes checkpoint `seed` under `dir`: `TENSORS` float32 tensors plus a scalar `extra/step`
/// for `drop` to remove.
fn write_checkpoint(dir: &Path, seed: usize) -> PathBuf {
    let prefix = dir.join(format!("in{seed}/model.ckpt"));
    let mut writer =
        BundleWriter::create_with(&prefix, WriteOptions { sync: false }).expect("create");
    writer
        .add(
            "extra/step",
            &Tensor::from_vec(Vec::new(), vec![seed as i64]).expect("scalar"),
        )
        .expect("add");
    for index in 0..tensors() {
        let bytes = payload(seed, index);
        let tensor = Tensor::from_bytes(
            DType::Float32,
            vec![(TENSOR_BYTES / 4 / 1024) as u64, 1024],
            bytes.as_slice(),
        )
        .expect("tensor");
        writer
            .add(&format!("layer_{index:02}/kernel"), &tensor)
            .expect("add");
    }
    writer.finish().expect("finish");
    prefix
}

/// Runs `ckpt ARGS`, output discarded; panics unless the exit status is one of `ok`.
fn ckpt(args: &[&Path], ok: &[i32]) {
    let status = Command::new(env!("CARGO_BIN_EXE_ckpt"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run ckpt");
    assert!(
        status.code().is_some_and(|c| ok.contains(&c)),
        "ckpt {args:?}: {status}"
    );
}

/// Times `run(out)` per iteration, `out` a fresh prefix under `dir`, deleting what it wrote
/// outside the timed part.
fn timed_writes(dir: &Path, iters: u64, run: impl Fn(&Path)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let out_dir = dir.join("out");
        let _ = std::fs::remove_dir_all(&out_dir);
        std::fs::create_dir_all(&out_dir).expect("output directory");
        let out = out_dir.join("model.ckpt");
        let start = Instant::now();
        run(&out);
        total += start.elapsed();
    }
    let _ = std::fs::remove_dir_all(dir.join("out"));
    total
}

/// The data and index files of checkpoint `prefix`.
fn files_of(prefix: &Path) -> Vec<PathBuf> {
    let dir = prefix.parent().expect("parent");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

fn tools(c: &mut Criterion) {
    let dir = match std::env::var_os("CKPT_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temporary directory for the benchmark checkpoints");
    let inputs: Vec<PathBuf> = (0..5).map(|s| write_checkpoint(dir.path(), s)).collect();
    let work = dir.path().to_path_buf();

    let checkpoint_bytes = (tensors() * TENSOR_BYTES) as u64;
    let mut group = c.benchmark_group(format!("tools_{}MiB", checkpoint_bytes >> 20));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));

    group.throughput(Throughput::Bytes(checkpoint_bytes));
    group.bench_function("verify_1", |b| {
        b.iter(|| ckpt(&[Path::new("verify"), &inputs[0]], &[0]))
    });
    group.bench_function("copy_files_fsync_1", |b| {
        b.iter_custom(|iters| {
            timed_writes(&work, iters, |out| {
                let dir = out.parent().expect("parent");
                // Synced, as `drop` syncs what it writes.
                for file in files_of(&inputs[0]) {
                    let to = dir.join(file.file_name().expect("name"));
                    std::fs::copy(&file, &to).expect("copy");
                    std::fs::File::open(&to)
                        .and_then(|f| f.sync_all())
                        .expect("sync");
                }
            })
        })
    });
    group.bench_function("drop_1", |b| {
        b.iter_custom(|iters| {
            timed_writes(&work, iters, |out| {
                ckpt(
                    &[
                        Path::new("drop"),
                        &inputs[0],
                        out,
                        Path::new("--match"),
                        Path::new("^extra/"),
                    ],
                    &[0],
                )
            })
        })
    });
    group.bench_function("drop_1_no_verify", |b| {
        b.iter_custom(|iters| {
            timed_writes(&work, iters, |out| {
                ckpt(
                    &[
                        Path::new("drop"),
                        &inputs[0],
                        out,
                        Path::new("--match"),
                        Path::new("^extra/"),
                        Path::new("--no-verify"),
                    ],
                    &[0],
                )
            })
        })
    });

    group.throughput(Throughput::Bytes(2 * checkpoint_bytes));
    // The reference for the rest: reading the two inputs' files as `cat` does, in 128 KiB
    // reads into one buffer, from the page cache.
    group.bench_function("read_files_2", |b| {
        let files: Vec<PathBuf> = inputs[..2].iter().flat_map(|p| files_of(p)).collect();
        let mut buf = vec![0u8; 128 << 10];
        b.iter(|| {
            let mut total = 0usize;
            for file in &files {
                let mut f = std::fs::File::open(file).expect("open");
                loop {
                    let n = std::io::Read::read(&mut f, &mut buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
            }
            total
        })
    });
    group.bench_function("diff_2", |b| {
        b.iter(|| ckpt(&[Path::new("diff"), &inputs[0], &inputs[1]], &[1]))
    });
    group.bench_function("average_2", |b| {
        b.iter_custom(|iters| {
            timed_writes(&work, iters, |out| {
                ckpt(&[Path::new("average"), out, &inputs[0], &inputs[1]], &[0])
            })
        })
    });

    group.throughput(Throughput::Bytes(5 * checkpoint_bytes));
    group.bench_function("average_5", |b| {
        b.iter_custom(|iters| {
            timed_writes(&work, iters, |out| {
                let mut args: Vec<&Path> = vec![Path::new("average"), out];
                args.extend(inputs.iter().map(PathBuf::as_path));
                ckpt(&args, &[0])
            })
        })
    });
    group.finish();
}

criterion_group!(benches, tools);
criterion_main!(benches);
