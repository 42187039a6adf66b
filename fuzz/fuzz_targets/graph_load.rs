//! Arbitrary bytes as a binary MetaGraphDef, a binary GraphDef and a text graph
//! (`graph.pbtxt`), walking whatever imports (see `common/graph.rs`). Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common/graph.rs"]
mod graph;

fuzz_target!(|data: &[u8]| graph::run(data));
