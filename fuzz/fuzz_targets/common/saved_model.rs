//! What the `saved_model_load` target does with one input, shared with the test that replays
//! the committed seeds (`crates/graph/tests/saved_model_seeds.rs`): decode the bytes as a
//! binary SavedModel (and, when they are UTF-8, as a text one), import each meta graph by its
//! tag set, without and with a checkpoint object graph made up from the SavedModel's own (so
//! captured variables bind), and resolve every signature: its tensors, its captures, the
//! functions it calls. Errors are fine; a panic is a bug.

use ckpt_graph::ckpt_proto::trackable_object_graph::{
    trackable_object::SerializedTensor, TrackableObject,
};
use ckpt_graph::ckpt_proto::TrackableObjectGraph;
use ckpt_graph::SavedModel;

/// Runs one input; returns how many signatures resolved.
pub fn run(data: &[u8]) -> usize {
    let mut resolved = 0;
    if let Ok(saved) = SavedModel::from_bytes(data, "fuzz") {
        resolved += exercise(&saved);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(saved) = SavedModel::from_text(text, "fuzz") {
            resolved += exercise(&saved);
        }
    }
    resolved
}

fn exercise(saved: &SavedModel) -> usize {
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
