//! Decodes arbitrary bytes as a SavedModel, imports each meta graph by its tag set (with a
//! checkpoint object graph made up from the SavedModel's own, so captured variables bind),
//! and resolves every signature: its tensors, its captures, the functions it calls. Any panic
//! is a bug. `crates/graph/tests/fuzz_seeds.rs` replays the committed seeds the same way.
#![no_main]

use ckpt_graph::ckpt_proto::trackable_object_graph::{trackable_object::SerializedTensor, TrackableObject};
use ckpt_graph::ckpt_proto::TrackableObjectGraph;
use ckpt_graph::SavedModel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(saved) = SavedModel::from_bytes(data, "fuzz") else {
        return;
    };
    for (i, tags) in saved.tag_sets().into_iter().enumerate().take(4) {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let objects = saved.proto().meta_graphs.get(i).and_then(|m| m.object_graph_def.as_ref()).map(|og| {
            TrackableObjectGraph {
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
            }
        });
        for objects in [None, objects.as_ref()] {
            if let Ok(model) = saved.model(&tags, objects) {
                for key in model.signatures.keys().take(16) {
                    let _ = model.signature(key);
                }
            }
        }
    }
});
