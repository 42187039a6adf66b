//! What the `plan_build` target does with one input, shared with the test that replays the
//! committed seeds (`crates/runtime/tests/fuzz_seeds.rs`): decode the bytes as a GraphDef or a
//! MetaGraphDef and build an executor plan for a few of its nodes, feeding every placeholder;
//! a plan with nothing to feed is run too. The memory budget is 64 MiB and loops stop after
//! 1000 iterations, so that a hostile graph's work stays small. Errors are fine; a panic, an
//! abort or a hang is a bug.

use ckpt_graph::Model;
use ckpt_runtime::{set_max_memory, Session, SessionOptions};

/// Runs one input through plan building (and running, when nothing needs feeding).
pub fn run(data: &[u8]) {
    set_max_memory(Some(64 << 20));
    let models = [
        Model::from_graph_def_bytes(data).ok(),
        Model::from_meta_graph_bytes(data).ok(),
    ];
    for model in models.iter().flatten() {
        exercise(model);
    }
}

fn exercise(model: &Model) {
    let options = SessionOptions {
        threads: Some(1),
        max_iterations: 1000,
        ..SessionOptions::default()
    };
    let graph = &model.graph;
    let placeholders: Vec<String> = model
        .placeholders()
        .into_iter()
        .map(|id| graph.node(id).name.clone())
        .collect();
    let feeds: Vec<&str> = placeholders.iter().map(String::as_str).collect();
    for id in 0..graph.nodes.len().min(16) {
        let fetch = graph.node(id).name.as_str();
        let Ok(session) = Session::new(model, None, &[fetch], &feeds, options) else {
            continue;
        };
        if feeds.is_empty() {
            let _ = session.run(&[]);
        }
    }
}
