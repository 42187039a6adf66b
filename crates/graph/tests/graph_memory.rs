//! Memory per node when a large graph loads (issue: a 1-million-node graph must load in well
//! under 1 GB), and that decoding nodes one at a time gives the same model as decoding the
//! whole message first.
//!
//! The peak is measured with a counting global allocator, so the bound is exact and
//! repeatable; it was about 3,400 bytes per node before NodeDefs were decoded lazily and
//! `AttrValue`'s list and func variants were boxed, about 490 after.

// The counting allocator below is the only unsafe code here.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ckpt_graph::ckpt_proto::{
    AttrValue, DataType, FunctionDef, FunctionDefLibrary, GraphDef, Message, MetaGraphDef, OpDef,
    SaverDef, VersionDef,
};
use ckpt_graph::{Error, Model};
use common::{dtype, node, with_attr, TestResult};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `x` (a placeholder) then `n` Identity nodes, each reading the one before.
fn chain(n: usize) -> GraphDef {
    let mut nodes = Vec::with_capacity(n + 1);
    nodes.push(with_attr(
        node("x", "Placeholder", &[]),
        "dtype",
        dtype(DataType::DtFloat),
    ));
    for i in 0..n {
        let input = if i == 0 {
            "x".to_owned()
        } else {
            format!("n{}", i - 1)
        };
        nodes.push(with_attr(
            node(&format!("n{i}"), "Identity", &[&input]),
            "T",
            dtype(DataType::DtFloat),
        ));
    }
    GraphDef {
        node: nodes,
        ..GraphDef::default()
    }
}

#[test]
fn attr_values_are_small() {
    // Every node attribute is one of these; an inline ListValue made it 224 bytes.
    assert!(std::mem::size_of::<AttrValue>() <= 40);
}

#[test]
fn a_large_graph_loads_in_a_few_hundred_bytes_per_node() -> TestResult {
    const NODES: usize = 200_000;
    let bytes = chain(NODES).encode_to_vec();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let model = Model::from_graph_def_bytes(&bytes)?;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(model.graph.len(), NODES + 1);
    let per_node = peak / NODES;
    eprintln!("peak {peak} bytes, {per_node} per node");
    // 1,000 bytes per node is 1 GB for a million nodes; the load stays well below that.
    assert!(per_node < 800, "{per_node} bytes per node at peak");
    Ok(())
}

#[test]
fn lazy_and_whole_decoding_give_the_same_model() -> TestResult {
    let mut def = chain(50);
    def.versions = Some(VersionDef {
        producer: 21,
        ..VersionDef::default()
    });
    def.library = Some(FunctionDefLibrary {
        function: vec![FunctionDef {
            signature: Some(OpDef {
                name: "f".into(),
                ..OpDef::default()
            }),
            ..FunctionDef::default()
        }],
        ..FunctionDefLibrary::default()
    });
    let lazy = Model::from_graph_def_bytes(&def.encode_to_vec())?;
    let whole = Model::from_graph_def(&def)?;
    assert_eq!(lazy.graph.nodes, whole.graph.nodes);
    assert_eq!(lazy.producer, 21);
    assert_eq!(
        lazy.functions.keys().collect::<Vec<_>>(),
        whole.functions.keys().collect::<Vec<_>>()
    );

    let meta = MetaGraphDef {
        graph_def: Some(def),
        saver_def: Some(SaverDef {
            restore_op_name: "save/restore_all".into(),
            ..SaverDef::default()
        }),
        ..MetaGraphDef::default()
    };
    let lazy = Model::from_meta_graph_bytes(&meta.encode_to_vec())?;
    let whole = Model::from_meta_graph_def(&meta)?;
    assert_eq!(lazy.graph.nodes, whole.graph.nodes);
    assert_eq!(lazy.saver, whole.saver);
    assert_eq!(lazy.producer, 21);
    Ok(())
}

#[test]
fn a_node_that_does_not_decode_outranks_errors_found_before_it() {
    // Two nodes named "a" (a duplicate, found first), then a NodeDef whose name field claims
    // more bytes than it has: the bytes are not a GraphDef, and that is what is reported.
    let def = GraphDef {
        node: vec![node("a", "NoOp", &[]), node("a", "NoOp", &[])],
        ..GraphDef::default()
    };
    let mut bytes = def.encode_to_vec();
    bytes.extend_from_slice(&[0x0a, 0x02, 0x0a, 0x05]);
    assert!(matches!(
        Model::from_graph_def_bytes(&bytes),
        Err(Error::Decode { .. })
    ));
    // Without the broken node the duplicate is the error.
    assert!(matches!(
        Model::from_graph_def_bytes(&def.encode_to_vec()),
        Err(Error::DuplicateNode { node }) if node == "a"
    ));
    // An empty node list and an empty message are empty graphs, as before.
    assert!(matches!(
        Model::from_graph_def_bytes(&[]),
        Err(Error::EmptyGraph { .. })
    ));
}
