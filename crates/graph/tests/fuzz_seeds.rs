//! Replays the committed seeds of the `saved_model_load` fuzz target
//! (`fuzz/fuzz_targets/saved_model_load.rs`) the way the target runs them: nothing may panic,
//! and the seeds made from the fixtures must import and resolve.

use std::path::Path;

use ckpt_graph::ckpt_proto::trackable_object_graph::{
    trackable_object::SerializedTensor, TrackableObject,
};
use ckpt_graph::ckpt_proto::TrackableObjectGraph;
use ckpt_graph::{Error, SavedModel};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What the fuzz target does with one input; returns how many signatures resolved.
fn exercise(data: &[u8]) -> usize {
    let Ok(saved) = SavedModel::from_bytes(data, "fuzz") else {
        return 0;
    };
    let mut resolved = 0;
    for (i, tags) in saved.tag_sets().into_iter().enumerate().take(4) {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let objects = saved
            .proto()
            .meta_graphs
            .get(i)
            .and_then(|m| m.object_graph_def.as_ref())
            .map(|og| TrackableObjectGraph {
                nodes: (0..og.nodes.len().min(4096))
                    .map(|n| TrackableObject {
                        attributes: vec![SerializedTensor {
                            name: "VARIABLE_VALUE".into(),
                            checkpoint_key: format!("object/{n}"),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
            });
        for objects in [None, objects.as_ref()] {
            if let Ok(model) = saved.model(&tags, objects) {
                for key in model.signatures.keys().take(16) {
                    resolved += usize::from(model.signature(key).is_ok());
                }
            }
        }
    }
    resolved
}

#[test]
fn saved_model_seeds_replay_without_panics() -> TestResult {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/saved_model_load");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let data = std::fs::read(&path)?;
        let resolved = exercise(&data);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match name {
            // serving_default and scaled in {serve}, logits in {train}; twice (with and
            // without an object graph, which a TF1 export does not need).
            "tf1_builder.pb" => assert_eq!(resolved, 6, "{name}"),
            // addc and serving_default with the object graph, addc and the init op without.
            "tf2_module.pb" | "two_meta_graphs.pb" => assert_eq!(resolved, 5, "{name}"),
            // serving_default fails (recursion, bad captures) either way.
            "tf2_recursive.pb" | "tf2_bad_captures.pb" => assert_eq!(resolved, 4, "{name}"),
            _ => {}
        }
        // Every prefix of a seed is handled too.
        for len in (0..data.len()).step_by(1 + data.len() / 64) {
            exercise(&data[..len]);
        }
        seeds += 1;
    }
    assert!(seeds >= 5, "{} holds {seeds} seeds", dir.display());
    Ok(())
}

#[test]
fn recursive_seed_reports_the_cycle() -> TestResult {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/saved_model_load");
    let saved = SavedModel::from_bytes(&std::fs::read(dir.join("tf2_recursive.pb"))?, "seed")?;
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
