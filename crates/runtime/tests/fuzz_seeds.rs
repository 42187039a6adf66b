//! Replays the seeds of the `plan_build` fuzz target (the `graph_load` corpus,
//! `fuzz/seeds/graph_load`: fixture graphs and inputs fuzzing found) through the same code the
//! target runs, so that `cargo test` catches a panic, an abort or a hang in plan building
//! without a nightly toolchain. Its own test binary, since the target sets the process-wide
//! memory budget.

#[path = "../../../fuzz/fuzz_targets/common/plan.rs"]
mod plan_target;

use std::path::Path;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn every_graph_seed_plans_without_panicking() -> TestResult {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/graph_load");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    assert!(files.len() > 600, "only {} seeds found", files.len());
    for path in &files {
        plan_target::run(&std::fs::read(path)?);
    }
    Ok(())
}
