//! Latency of `Session::run` on recurrent models, and what one loop iteration costs beyond
//! its kernels:
//!
//! - `rnn_v1_b4_t7` / `rnn_v2_b4_t7`: the `rnn_v1` / `rnn_v2` fixtures (embedding 8, LSTM of 12
//!   units, a dense classifier), batch 4, every sequence 7 steps long: a TF1 frame with a
//!   TensorArray, and a `StatelessWhile` over TensorLists;
//! - `rnn_large_b32_t50`: the `rnn_large` fixture (LSTM of 128 units) at batch 32, 50 steps;
//! - `loop_overhead_v1/N` / `loop_overhead_v2/N`: a loop counting to N with nothing else in
//!   its body (Enter, Merge, Less, LoopCond, Switch, Identity, AddV2, NextIteration, Exit; or a
//!   `While` whose cond and body functions hold one op each), so time / N is the executor's
//!   cost per iteration.
//!
//! TensorFlow's figures for the same runs come from `fixtures/tf_bench.py rnn`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use ckpt_bundle::Checkpoint;
use ckpt_graph::ckpt_proto::attr_value::Value as Attr;
use ckpt_graph::ckpt_proto::op_def::ArgDef;
use ckpt_graph::ckpt_proto::{
    AttrValue, DataType, FunctionDef, FunctionDefLibrary, GraphDef, NameAttrList, NodeDef, OpDef,
};
use ckpt_graph::Model;
use ckpt_runtime::{Session, SessionOptions, Value};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn fixture_session(dir: &str, fetches: &[&str]) -> common::TestResult<Session> {
    let dir = common::fixtures().join(dir);
    let model = Model::load(&dir.join("model.ckpt.meta"))?;
    let bundle = Checkpoint::open(dir.join("model.ckpt"))?;
    Ok(Session::new(
        &model,
        Some(&bundle),
        fetches,
        &["tokens", "lengths"],
        SessionOptions::default(),
    )?)
}

fn attr(v: Attr) -> AttrValue {
    AttrValue { value: Some(v) }
}

fn node(name: &str, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        attr: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), attr(v.clone())))
            .collect(),
        ..Default::default()
    }
}

fn int32() -> Attr {
    Attr::Type(DataType::DtInt32 as i32)
}

/// `while i < n: i += 1` as TF1 builds it.
fn counter_v1() -> GraphDef {
    let t = || ("T", int32());
    GraphDef {
        node: vec![
            node("n", "Placeholder", &[], &[("dtype", int32())]),
            node(
                "zero",
                "Const",
                &[],
                &[
                    ("dtype", int32()),
                    ("value", Attr::Tensor(Box::new(scalar_i32(0)))),
                ],
            ),
            node(
                "enter",
                "Enter",
                &["zero"],
                &[t(), ("frame_name", Attr::S(b"w".to_vec()))],
            ),
            node(
                "enter_n",
                "Enter",
                &["n"],
                &[
                    t(),
                    ("frame_name", Attr::S(b"w".to_vec())),
                    ("is_constant", Attr::B(true)),
                ],
            ),
            node(
                "merge",
                "Merge",
                &["enter", "next"],
                &[t(), ("N", Attr::I(2))],
            ),
            node("less", "Less", &["merge", "enter_n"], &[t()]),
            node("cond", "LoopCond", &["less"], &[]),
            node("switch", "Switch", &["merge", "cond"], &[t()]),
            node("body", "Identity", &["switch:1"], &[t()]),
            node(
                "one",
                "Const",
                &["^body"],
                &[
                    ("dtype", int32()),
                    ("value", Attr::Tensor(Box::new(scalar_i32(1)))),
                ],
            ),
            node("add", "AddV2", &["body", "one"], &[t()]),
            node("next", "NextIteration", &["add"], &[t()]),
            node("exit", "Exit", &["switch"], &[t()]),
        ],
        ..Default::default()
    }
}

fn scalar_i32(x: i32) -> ckpt_graph::ckpt_proto::TensorProto {
    ckpt_graph::ckpt_proto::TensorProto {
        dtype: DataType::DtInt32 as i32,
        tensor_shape: Some(Default::default()),
        int_val: vec![x],
        ..Default::default()
    }
}

fn function(
    name: &str,
    args: &[&str],
    outputs: &[&str],
    nodes: Vec<NodeDef>,
    ret: &[(&str, &str)],
) -> FunctionDef {
    let arg = |n: &&str| ArgDef {
        name: n.to_string(),
        r#type: DataType::DtInt32 as i32,
        ..Default::default()
    };
    FunctionDef {
        signature: Some(OpDef {
            name: name.into(),
            input_arg: args.iter().map(arg).collect(),
            output_arg: outputs.iter().map(arg).collect(),
            ..Default::default()
        }),
        node_def: nodes,
        ret: ret
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// `while i < n: i += 1` as a TF2 `While`.
fn counter_v2() -> GraphDef {
    let t = || ("T", int32());
    let cond = function(
        "cond",
        &["i", "n"],
        &["out"],
        vec![node("less", "Less", &["i", "n"], &[t()])],
        &[("out", "less:z:0")],
    );
    let body = function(
        "body",
        &["i", "n"],
        &["i_next", "n_next"],
        vec![
            node(
                "one",
                "Const",
                &[],
                &[
                    ("dtype", int32()),
                    ("value", Attr::Tensor(Box::new(scalar_i32(1)))),
                ],
            ),
            node("add", "AddV2", &["i", "one:output:0"], &[t()]),
        ],
        &[("i_next", "add:z:0"), ("n_next", "n")],
    );
    let func = |name: &str| {
        Attr::Func(Box::new(NameAttrList {
            name: name.into(),
            ..Default::default()
        }))
    };
    let types = Attr::List(Box::new(ckpt_graph::ckpt_proto::attr_value::ListValue {
        r#type: vec![DataType::DtInt32 as i32; 2],
        ..Default::default()
    }));
    GraphDef {
        node: vec![
            node("n", "Placeholder", &[], &[("dtype", int32())]),
            node(
                "zero",
                "Const",
                &[],
                &[
                    ("dtype", int32()),
                    ("value", Attr::Tensor(Box::new(scalar_i32(0)))),
                ],
            ),
            node(
                "while",
                "StatelessWhile",
                &["zero", "n"],
                &[("T", types), ("cond", func("cond")), ("body", func("body"))],
            ),
        ],
        library: Some(FunctionDefLibrary {
            function: vec![cond, body],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) -> common::TestResult {
    let fixtures = common::fixtures();
    for dir in ["rnn_v1", "rnn_v2"] {
        let session = fixture_session(dir, &["probs", "final_h"])?;
        let tokens = common::read_npy(&fixtures.join(dir).join("tokens.npy"))?;
        let lengths = Value::new(vec![4], vec![7i32; 4])?;
        let feeds = [("tokens", tokens), ("lengths", lengths)];
        c.bench_function(&format!("{dir}_b4_t7"), |b| {
            b.iter(|| black_box(session.run(black_box(&feeds))))
        });
    }
    let session = fixture_session("rnn_large", &["probs", "final_h"])?;
    let dir = fixtures.join("rnn_large");
    let feeds = [
        ("tokens", common::read_npy(&dir.join("tokens.npy"))?),
        ("lengths", Value::new(vec![32], vec![50i32; 32])?),
    ];
    c.bench_function("rnn_large_b32_t50", |b| {
        b.iter(|| black_box(session.run(black_box(&feeds))))
    });

    let mut group = c.benchmark_group("loop_overhead");
    for (label, graph) in [("v1", counter_v1()), ("v2", counter_v2())] {
        let model = Model::from_graph_def(&graph)?;
        let fetch = if label == "v1" { "exit" } else { "while" };
        let session = Session::new(&model, None, &[fetch], &["n"], SessionOptions::default())?;
        let n = 1000i32;
        let feeds = [("n", Value::scalar(n))];
        let out = session.run(&feeds)?;
        if out[0] != Value::scalar(n) {
            return Err(format!("counter {label} gave {:?}", out[0]).into());
        }
        group.bench_with_input(BenchmarkId::new(label, n), &feeds, |b, feeds| {
            b.iter(|| black_box(session.run(black_box(feeds))))
        });
    }
    group.finish();
    Ok(())
}

fn run(c: &mut Criterion) {
    if let Err(e) = benches(c) {
        eprintln!("benchmark setup failed: {e}");
        std::process::exit(1);
    }
}

criterion_group!(rnn, run);
criterion_main!(rnn);
