//! Replays the committed seeds of the `saved_model_load` fuzz target
//! (`fuzz/seeds/saved_model_load`) through the same code the target runs
//! (`fuzz/fuzz_targets/common/saved_model.rs`): nothing may panic, on the seeds or on any of
//! their prefixes, and the seeds made from the fixtures resolve the signatures they should.

#[path = "../../../fuzz/fuzz_targets/common/saved_model.rs"]
mod saved_model_target;

use std::path::Path;

use ckpt_graph::{Error, SavedModel};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn seed_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/saved_model_load")
}

#[test]
fn saved_model_seeds_replay_without_panics() -> TestResult {
    let mut seeds = 0;
    for entry in std::fs::read_dir(seed_dir())? {
        let path = entry?.path();
        let data = std::fs::read(&path)?;
        let resolved = saved_model_target::run(&data);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let expected = match name {
            // serving_default and scaled in {serve}, logits in {train}; twice (without and
            // with an object graph, which a TF1 export does not need).
            "tf1_builder.pb" => Some(6),
            // serving_default (text export), twice.
            "tf1_text.pbtxt" => Some(2),
            // addc and the init op without the object graph; with it, serving_default too.
            "tf2_module.pb" | "two_meta_graphs.pb" => Some(5),
            // serving_default fails (recursion, bad captures) either way.
            "tf2_recursive.pb" | "tf2_bad_captures.pb" => Some(4),
            _ => None,
        };
        if let Some(expected) = expected {
            assert_eq!(resolved, expected, "{name}");
        }
        // Every prefix of a seed is handled too.
        for len in (0..data.len()).step_by(1 + data.len() / 64) {
            saved_model_target::run(&data[..len]);
        }
        seeds += 1;
    }
    assert!(seeds >= 6, "{} seeds", seeds);
    Ok(())
}

#[test]
fn recursive_seed_reports_the_cycle() -> TestResult {
    let saved =
        SavedModel::from_bytes(&std::fs::read(seed_dir().join("tf2_recursive.pb"))?, "seed")?;
    let model = saved.model(&["serve"], None)?;
    let call = model.graph.parse_output("StatefulPartitionedCall:0")?;
    let err = model
        .check_calls(&[call], &[])
        .err()
        .ok_or("the recursive seed should fail")?;
    assert!(
        matches!(&err, Error::InNode { node, error }
            if node == "StatefulPartitionedCall" && matches!(error.as_ref(), Error::RecursiveFunction { .. })),
        "{err:?}"
    );
    Ok(())
}
