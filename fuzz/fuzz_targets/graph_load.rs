//! Decodes arbitrary bytes as a MetaGraphDef and as a GraphDef, and walks what decodes: every
//! node's attributes through the typed accessors, and a prune of each node. Any panic is a bug.
#![no_main]

use ckpt_graph::{Model, Output};
use libfuzzer_sys::fuzz_target;

fn exercise(model: &Model) {
    let graph = &model.graph;
    for id in 0..graph.nodes.len().min(64) {
        let node = graph.node(id);
        for name in node.attrs.keys() {
            let _ = node.attr_i64(name);
            let _ = node.attr_ints(name);
            let _ = node.attr_shape(name);
            let _ = node.attr_dtype(name);
            let _ = node.attr_tensor(name);
            let _ = node.attr_string(name);
        }
        let _ = graph.prune(&[Output { node: id, index: 0 }], &[]);
    }
    let _ = graph.topological_order();
    let _ = model.placeholders();
    let _ = model.likely_outputs();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Model::from_meta_graph_bytes(data) {
        exercise(&model);
    }
    if let Ok(model) = Model::from_graph_def_bytes(data) {
        exercise(&model);
    }
});
