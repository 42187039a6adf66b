//! Replays every committed seed of the `bundle_read` and `v1_read` fuzz targets
//! (`fuzz/seeds/`) through the targets' own code (`fuzz/harness/mod.rs`), plus a fixed set of
//! truncations and bit flips of each: nothing may panic, errors are fine. Runs with plain
//! `cargo test`; fuzzing itself needs `cargo +nightly fuzz` (see the README).

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/harness/mod.rs"]
mod harness;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn seeds(target: &str) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    Ok(files)
}

/// Deterministic damage: cuts at a few lengths and single-bit flips spread over the input.
fn mutations(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let n = seed.len();
    for cut in [1, 2, n / 3, n / 2, n.saturating_sub(1)] {
        out.push(seed[..cut.min(n)].to_vec());
    }
    let step = (n / 64).max(1);
    for (k, at) in (1..n).step_by(step).enumerate() {
        let mut m = seed.to_vec();
        m[at] ^= 1 << (k % 8);
        out.push(m);
    }
    out
}

fn replay(target: &str, run: fn(&[u8]) -> usize) -> TestResult {
    let files = seeds(target)?;
    assert!(files.len() >= 4, "{target}: only {} seeds", files.len());
    for file in files {
        let seed = std::fs::read(&file)?;
        // A seed made from a fixture reads every tensor it holds.
        assert!(run(&seed) > 0, "{}: no tensor read", file.display());
        for m in mutations(&seed) {
            run(&m);
        }
    }
    Ok(())
}

#[test]
fn bundle_read_seeds_replay_without_panics() -> TestResult {
    replay("bundle_read", harness::bundle_read)
}

#[test]
fn v1_read_seeds_replay_without_panics() -> TestResult {
    replay("v1_read", harness::v1_read)
}
