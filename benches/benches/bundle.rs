//! Restore and save throughput on a 1 GiB checkpoint, hot in the page cache.
#![allow(clippy::expect_used)] // a benchmark that cannot set itself up has nothing to measure

use std::hint::black_box;
use std::time::Duration;

use ckpt_benches::{bench_dir, tensor_bytes, tensor_name, write_checkpoint, TENSORS, TENSOR_BYTES};
use ckpt_bundle::{BundleReader, ReadOptions, TensorData};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bundle(c: &mut Criterion) {
    let dir = bench_dir().expect("temporary directory for the benchmark checkpoint");
    let payloads: Vec<Vec<u8>> = (0..TENSORS).map(tensor_bytes).collect();
    let prefix =
        write_checkpoint(dir.path(), &payloads, false).expect("write the benchmark checkpoint");
    let total = (TENSORS * TENSOR_BYTES) as u64;

    let mut group = c.benchmark_group("restore_1GiB");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Bytes(total));
    // Every tensor read through the public API with its checksum checked, one after another.
    group.bench_function("read_all_verified", |b| {
        b.iter(|| {
            let reader = BundleReader::open(&prefix).expect("open");
            for index in 0..TENSORS {
                let tensor = reader.read(&tensor_name(index)).expect("read");
                if let TensorData::Bytes(bytes) = &tensor.data() {
                    black_box(bytes.len());
                }
            }
        })
    });
    // The same without checksums: the cost of mapping and slicing alone.
    group.bench_function("read_all_unverified", |b| {
        b.iter(|| {
            let reader = BundleReader::open_with(
                &prefix,
                ReadOptions {
                    verify_checksums: false,
                },
            )
            .expect("open");
            for index in 0..TENSORS {
                black_box(
                    reader
                        .read(&tensor_name(index))
                        .expect("read")
                        .num_elements(),
                );
            }
        })
    });
    // `ckpt verify`: all tensors checked in parallel.
    group.bench_function("verify_parallel", |b| {
        b.iter(|| {
            let reader = BundleReader::open(&prefix).expect("open");
            black_box(reader.verify().expect("verify"))
        })
    });
    group.finish();

    c.bench_function("open_and_list", |b| {
        b.iter(|| {
            let reader = BundleReader::open(&prefix).expect("open");
            black_box(reader.tensors().len())
        })
    });

    let mut group = c.benchmark_group("save_1GiB");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Bytes(total));
    let out = bench_dir().expect("temporary directory for saves");
    // Like TensorFlow's SaveV2: checksums computed, no fsync.
    group.bench_function("write_with_checksums", |b| {
        b.iter(|| write_checkpoint(out.path(), &payloads, false).expect("write"))
    });
    // The writer's default: fsync data and index before renaming them into place.
    group.bench_function("write_with_checksums_fsync", |b| {
        b.iter(|| write_checkpoint(out.path(), &payloads, true).expect("write"))
    });
    group.finish();
}

criterion_group!(benches, bundle);
criterion_main!(benches);
