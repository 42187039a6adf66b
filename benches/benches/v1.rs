//! Opening and listing V1 checkpoints of a few hundred tensors (one file, and four shards found
//! from their prefix), and reading every tensor of one. Run with
//! `cargo bench -p ckpt-benches --bench v1`.

use ckpt_benches::{bench_dir, write_v1_checkpoint};
use ckpt_bundle::Checkpoint;
use criterion::{criterion_group, criterion_main, Criterion};

const TENSORS: usize = 300;

fn v1(c: &mut Criterion) {
    let Ok(dir) = bench_dir() else {
        eprintln!("cannot create a temporary directory");
        return;
    };
    let (Ok(single_dir), Ok(sharded_dir)) = (
        tempfile::tempdir_in(dir.path()),
        tempfile::tempdir_in(dir.path()),
    ) else {
        return;
    };
    let (Ok(single), Ok(sharded)) = (
        write_v1_checkpoint(single_dir.path(), TENSORS, 1),
        write_v1_checkpoint(sharded_dir.path(), TENSORS, 4),
    ) else {
        eprintln!("cannot write the V1 checkpoints");
        return;
    };
    let mut group = c.benchmark_group("v1_300_tensors");
    group.bench_function("open_and_list", |b| {
        b.iter(|| {
            let ckpt = Checkpoint::open(&single).map(|c| c.tensors().len());
            assert_eq!(ckpt.ok(), Some(TENSORS));
        })
    });
    group.bench_function("open_and_list_4_shards_by_prefix", |b| {
        b.iter(|| {
            let ckpt = Checkpoint::open(&sharded).map(|c| c.tensors().len());
            assert_eq!(ckpt.ok(), Some(TENSORS));
        })
    });
    group.bench_function("open_and_read_all", |b| {
        b.iter(|| {
            let Ok(ckpt) = Checkpoint::open(&single) else {
                panic!("cannot open {}", single.display());
            };
            for t in ckpt.tensors() {
                assert!(ckpt.read(&t.name).is_ok());
            }
        })
    });
    group.bench_function("open_and_verify", |b| {
        b.iter(|| {
            let report = Checkpoint::open(&single).and_then(|c| c.verify());
            assert_eq!(report.ok().map(|r| r.tensors), Some(TENSORS));
        })
    });
    group.finish();
}

criterion_group!(benches, v1);
criterion_main!(benches);
