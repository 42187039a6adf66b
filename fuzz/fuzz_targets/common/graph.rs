//! What the `graph_load` target does with one input, shared with the test that replays the
//! committed seeds (`crates/graph/tests/fuzz_seeds.rs`): decode the bytes as a MetaGraphDef
//! and as a GraphDef, parse them as a text graph when they are UTF-8, and walk every model that
//! comes out: each node's attributes through the typed accessors and TensorFlow's legacy shape
//! rules, a prune from each node, the topological order. Errors are fine; a panic is a bug.

use ckpt_graph::{Model, Output};

/// Runs one input through every reader.
pub fn run(data: &[u8]) {
    if let Ok(model) = Model::from_meta_graph_bytes(data) {
        exercise(&model);
    }
    if let Ok(model) = Model::from_graph_def_bytes(data) {
        exercise(&model);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(model) = Model::from_text(text) {
            exercise(&model);
        }
    }
}

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
        let _ = model.declared_shape(node);
        let _ = graph.prune(&[Output { node: id, index: 0 }], &[]);
    }
    let _ = graph.topological_order();
    let _ = model.placeholders();
    let _ = model.likely_outputs();
}
