//! Runs every TensorFlow-made fixture model through `Model::load` + `Checkpoint` + `Session`
//! and compares with the outputs TensorFlow 2.21 computed (fixtures/make_fixtures.py).

mod common;

use std::path::PathBuf;

use ckpt_bundle::Checkpoint;
use ckpt_graph::Model;
use ckpt_runtime::{Session, SessionOptions, Value};
use common::{assert_close, fixtures, read_npy, TestResult};
use serde_json::Value as Json;

struct Case {
    dir: PathBuf,
    model: Model,
    bundle: Option<Checkpoint>,
    feeds: Vec<(String, Value)>,
    /// (tensor name, TensorFlow's output file)
    fetches: Vec<(String, PathBuf)>,
}

impl Case {
    /// A session fetching every fetch of the case from its feeds.
    fn session(&self, options: SessionOptions) -> Result<Session, ckpt_runtime::Error> {
        let fetch_names: Vec<&str> = self.fetches.iter().map(|(n, _)| n.as_str()).collect();
        let feed_names: Vec<&str> = self.feeds.iter().map(|(n, _)| n.as_str()).collect();
        Session::new(
            &self.model,
            self.bundle.as_ref(),
            &fetch_names,
            &feed_names,
            options,
        )
    }

    /// The feeds, as `Session::run` takes them.
    fn feed_values(&self) -> Vec<(&str, Value)> {
        self.feeds
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect()
    }
}

fn str_field<'a>(j: &'a Json, key: &str) -> TestResult<&'a str> {
    j.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("case.json: missing {key}").into())
}

fn load_case(name: &str) -> TestResult<Case> {
    let dir = fixtures().join(name);
    let case: Json = serde_json::from_slice(&std::fs::read(dir.join("case.json"))?)?;
    // "meta": a .meta and its checkpoint; "frozen": a binary GraphDef without one;
    // "graph_text": a graph.pbtxt and the checkpoint of its directory.
    let graph = match str_field(&case, "kind")? {
        "meta" => str_field(&case, "meta")?,
        _ => str_field(&case, "graph")?,
    };
    let model = Model::load(&dir.join(graph))?;
    let bundle = match case.get("checkpoint").and_then(Json::as_str) {
        Some(prefix) => Some(Checkpoint::open(dir.join(prefix))?),
        None => None,
    };
    let mut feeds = Vec::new();
    for f in case
        .get("feeds")
        .and_then(Json::as_array)
        .ok_or("case.json: no feeds")?
    {
        let name = str_field(f, "name")?.to_string();
        let value = if let Some(file) = f.get("file").and_then(Json::as_str) {
            read_npy(&dir.join(file))?
        } else {
            let v = f.get("value").ok_or("feed without file or value")?;
            match str_field(f, "dtype")? {
                "bool" => Value::scalar(v.as_bool().ok_or("bool feed")?),
                "float32" => Value::scalar(v.as_f64().ok_or("float feed")? as f32),
                "int32" => Value::scalar(v.as_i64().ok_or("int feed")? as i32),
                other => return Err(format!("feed dtype {other}").into()),
            }
        };
        feeds.push((name, value));
    }
    let mut fetches = Vec::new();
    for f in case
        .get("fetches")
        .and_then(Json::as_array)
        .ok_or("case.json: no fetches")?
    {
        fetches.push((
            str_field(f, "tensor")?.to_string(),
            dir.join(str_field(f, "file")?),
        ));
    }
    Ok(Case {
        dir,
        model,
        bundle,
        feeds,
        fetches,
    })
}

/// Builds a session for the case's fetches and feeds, runs it, compares every fetch.
fn check(name: &str, options: SessionOptions) -> TestResult<Session> {
    let case = load_case(name)?;
    let session = case
        .session(options)
        .map_err(|e| format!("{}: {e}", case.dir.display()))?;
    let feeds = case.feed_values();
    let outputs = session.run(&feeds).map_err(|e| format!("{name}: {e}"))?;
    assert_eq!(outputs.len(), case.fetches.len());
    for ((fetch, file), got) in case.fetches.iter().zip(&outputs) {
        let want = read_npy(file)?;
        assert_close(&format!("{name}/{fetch}"), got, &want)?;
    }
    // A second run reuses the plan and must give the same values.
    let again = session.run(&feeds)?;
    assert_eq!(again, outputs, "{name}: a second run differs");
    Ok(session)
}

#[test]
fn mlp_keep_prob_and_rate_dropout() -> TestResult {
    check("mlp", SessionOptions::default())?;
    Ok(())
}

#[test]
fn lenet_resource_variables_and_rate_dropout() -> TestResult {
    check("lenet", SessionOptions::default())?;
    Ok(())
}

#[test]
fn layers_switch_merge_cond() -> TestResult {
    check("layers_v1", SessionOptions::default())?;
    Ok(())
}

#[test]
fn layers_if_cond_with_functions() -> TestResult {
    check("layers_v2", SessionOptions::default())?;
    Ok(())
}

#[test]
fn mobilenet_block() -> TestResult {
    check("mobilenet", SessionOptions::default())?;
    Ok(())
}

/// The whole tf-keras MobileNetV2 (alpha 0.35, 96x96): every optimization of the plan applies
/// (batch norm folded into 52 convolutions, Pad into the strided depthwise ones, bias and ReLU6
/// fused), so the outputs are compared within 1e-4 relative, 1e-5 absolute, and the predicted
/// classes must be TensorFlow's.
#[test]
fn mobilenet_v2_keras() -> TestResult {
    for threads in [None, Some(1)] {
        let case = load_case("mobilenet_v2")?;
        let fetch_names: Vec<&str> = case.fetches.iter().map(|(n, _)| n.as_str()).collect();
        let session = Session::new(
            &case.model,
            case.bundle.as_ref(),
            &fetch_names,
            &["input"],
            SessionOptions {
                threads,
                ..Default::default()
            },
        )?;
        let outputs = session.run(&[("input", case.feeds[0].1.clone())])?;
        for ((fetch, file), got) in case.fetches.iter().zip(&outputs) {
            let want = read_npy(file)?;
            common::assert_within(&format!("mobilenet_v2/{fetch}"), got, &want, 1e-4, 1e-5)?;
        }
    }
    Ok(())
}

/// The memory plan: from the third run on the same shapes, no intermediate tensor of 64 KiB
/// or more is allocated afresh (dead tensors' buffers are reused), and runs on recycled
/// buffers give the same bits as the first run on fresh ones.
#[test]
fn steady_state_runs_reuse_buffers() -> TestResult {
    for name in ["mobilenet_v2", "lenet", "mlp"] {
        for threads in [None, Some(1), Some(2)] {
            let case = load_case(name)?;
            let feeds = case.feed_values();
            let session = case.session(SessionOptions {
                threads,
                ..Default::default()
            })?;
            assert_eq!(session.last_run_fresh_allocations(), 0);
            let first = session.run(&feeds)?;
            let fresh_first = session.last_run_fresh_allocations();
            let mut last = Vec::new();
            for _ in 0..3 {
                last = session.run(&feeds)?;
            }
            assert_eq!(
                session.last_run_fresh_allocations(),
                0,
                "{name} (threads {threads:?}): fresh allocations in a steady-state run \
                 ({fresh_first} in the first)"
            );
            for (((fetch, _), a), b) in case.fetches.iter().zip(&first).zip(&last) {
                let same = match (a.as_f32(), b.as_f32()) {
                    (Some(a), Some(b)) => {
                        a.len() == b.len()
                            && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
                    }
                    _ => a == b,
                };
                assert!(same, "{name}/{fetch}: a run on recycled buffers differs");
            }
            if name == "mobilenet_v2" {
                assert!(fresh_first > 0, "the first run allocates its tensors");
            }
        }
    }
    Ok(())
}

/// Each fixture's optimized plan (batch norms folded, pads folded, bias and activations fused)
/// against its unoptimized plan: fewer steps where something fuses, the same values within
/// 1e-4 relative, 1e-5 absolute.
#[test]
fn optimized_plans_match_unoptimized_ones() -> TestResult {
    for (name, fewer) in [
        ("mobilenet_v2", true),
        ("mobilenet", true),
        ("lenet", true),
        ("mlp", false),
        ("bert", false),
    ] {
        let case = load_case(name)?;
        let feeds = case.feed_values();
        let build = |unoptimized| {
            case.session(SessionOptions {
                unoptimized,
                ..Default::default()
            })
        };
        let (fast, plain) = (build(false)?, build(true)?);
        if fewer {
            assert!(
                fast.num_steps() < plain.num_steps(),
                "{name}: {} optimized steps, {} unoptimized",
                fast.num_steps(),
                plain.num_steps()
            );
        }
        let (got, want) = (fast.run(&feeds)?, plain.run(&feeds)?);
        for ((fetch, _), (g, w)) in case.fetches.iter().zip(got.iter().zip(&want)) {
            common::assert_within(&format!("{name}/{fetch}"), g, w, 1e-4, 1e-5)?;
        }
    }
    Ok(())
}

#[test]
fn v1_checkpoint_restores_its_graph() -> TestResult {
    let case = load_case("v1_graph")?;
    assert!(
        matches!(case.bundle, Some(Checkpoint::V1(_))),
        "v1_graph should open as a V1 checkpoint"
    );
    check("v1_graph", SessionOptions::default())?;
    Ok(())
}

#[test]
fn frozen_graph() -> TestResult {
    check("frozen", SessionOptions::default())?;
    Ok(())
}

#[test]
fn single_op_graphs() -> TestResult {
    check("ops", SessionOptions::default())?;
    Ok(())
}

#[test]
fn tf0_graph_with_div_dropout_and_shape_less_placeholders() -> TestResult {
    // x's shape attr is `shape {}` in a producer-17 graph: any shape, as TensorFlow reads it,
    // so the [7,12,12,1] images are accepted.
    let case = load_case("tf0_lenet")?;
    assert_eq!(case.model.producer, 17);
    let x = case.model.graph.node(case.model.graph.node_by_name("x")?);
    assert_eq!(x.attr_shape("shape")?, Some(vec![]));
    assert_eq!(case.model.declared_shape(x)?, None);
    check("tf0_lenet", SessionOptions::default())?;
    Ok(())
}

#[test]
fn estimator_graph_pbtxt_with_a_partitioned_kernel() -> TestResult {
    let case = load_case("estimator")?;
    // The GraphDef has no SaverDef; its save/restore_all maps both parts to one key.
    for (part, slice) in [
        ("hidden/kernel/part_0", "6 8 0,3:0,8"),
        ("hidden/kernel/part_1", "6 8 3,3:0,8"),
    ] {
        let id = case.model.graph.node_by_name(part)?;
        assert_eq!(case.model.variable_key(id), Some("hidden/kernel"));
        assert_eq!(
            case.model.variable_slices.get(&id).map(String::as_str),
            Some(slice)
        );
    }
    assert!(case.model.saver.is_none());
    check("estimator", SessionOptions::default())?;
    Ok(())
}

#[test]
fn bert_encoder_two_layers() -> TestResult {
    check("bert", SessionOptions::default())?;
    Ok(())
}

#[test]
fn nchw_layers_keep_the_graphs_layout() -> TestResult {
    // TensorFlow's CPU kernels refuse this graph; its outputs are TF's for the NHWC form.
    check("nchw", SessionOptions::default())?;
    Ok(())
}

#[test]
fn text_lookup_tables_fed_raw_words() -> TestResult {
    // Tables from an asset file (the graph's absolute path is gone: found in assets/), from
    // constants (InitializeTableV2, LookupTableImportV2) and from the checkpoint's -keys/-values.
    check("text_lookup", SessionOptions::default())?;
    Ok(())
}

/// The spacing of the narrow type's values at `x` (its unit in the last place).
fn narrow_ulp(x: f32, bfloat16: bool) -> f32 {
    let a = x.abs().max(f32::MIN_POSITIVE);
    let exp = a.log2().floor();
    exp.exp2()
        * if bfloat16 {
            2f32.powi(-7)
        } else {
            2f32.powi(-10)
        }
}

/// Fetches of the `half_precision` fixture whose TensorFlow kernels ckpt does not reproduce bit
/// for bit, each with the narrow ulps it stays within: `Softmax` (Eigen evaluates exp, sum,
/// inverse and product in the narrow type) and float16 `Mean` (Eigen sums float16 in float16,
/// in its packet order; bfloat16 is summed in float32). Measured: 1 bfloat16 ulp; up to 4
/// float16 ulps (0.28% relative) after the five chained float16 ops.
const HALF_PRECISION_APPROXIMATE: &[(&str, f32)] = &[
    ("probs_bf16", 1.0),
    ("logits_f16", 4.0),
    ("probs_f16", 4.0),
    ("raw_f16", 4.0),
];

#[test]
fn half_precision_rounds_like_tensorflow() -> TestResult {
    // TF's CPU (Eigen) kernels compute float16/bfloat16 MatMul, BatchMatMulV2, Conv2D, BiasAdd,
    // Relu and bfloat16 Mean in float32 and round the result (bfloat16 matrix products toward
    // zero, everything else to nearest even), and accumulate DepthwiseConv2dNative in the narrow
    // type: those fetches must equal TensorFlow's bit for bit.
    let case = load_case("half_precision")?;
    let fetch_names: Vec<&str> = case.fetches.iter().map(|(n, _)| n.as_str()).collect();
    let feed_names: Vec<&str> = case.feeds.iter().map(|(n, _)| n.as_str()).collect();
    let session = Session::new(
        &case.model,
        case.bundle.as_ref(),
        &fetch_names,
        &feed_names,
        SessionOptions::default(),
    )?;
    let feeds: Vec<(&str, Value)> = case
        .feeds
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let outputs = session.run(&feeds)?;
    assert_eq!(case.fetches.len(), 16, "6 chained and 10 single-op fetches");
    let mut exact = 0;
    for ((fetch, file), got) in case.fetches.iter().zip(&outputs) {
        let want = read_npy(file)?;
        assert_eq!(got.dtype(), want.dtype(), "{fetch}");
        assert_eq!(got.shape(), want.shape(), "{fetch}");
        let bfloat16 = fetch.contains("bf16");
        let as_f32 = |v: &Value| -> Vec<f32> {
            match v {
                Value::F16(t) => t.data().iter().map(|x| x.to_f32()).collect(),
                other => other.as_f32().map(<[f32]>::to_vec).unwrap_or_default(),
            }
        };
        let (g, w) = (as_f32(got), as_f32(&want));
        assert_eq!(g.len(), want.len(), "{fetch}");
        assert!(!g.is_empty(), "{fetch}");
        let tolerance = HALF_PRECISION_APPROXIMATE
            .iter()
            .find(|(name, _)| fetch.split(':').next() == Some(*name))
            .map(|&(_, ulps)| ulps);
        for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
            let representable = if bfloat16 {
                half::bf16::from_f32(a).to_f32() == a
            } else {
                half::f16::from_f32(a).to_f32() == a
            };
            assert!(representable, "{fetch}[{i}] = {a} is not a narrow value");
            match tolerance {
                None => assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{fetch}[{i}] = {a}, TensorFlow has {b}"
                ),
                Some(ulps) => assert!(
                    (a - b).abs() <= ulps * narrow_ulp(b, bfloat16),
                    "{fetch}[{i}] = {a}, TensorFlow has {b}"
                ),
            }
        }
        exact += usize::from(tolerance.is_none());
    }
    assert_eq!(exact, case.fetches.len() - HALF_PRECISION_APPROXIMATE.len());
    Ok(())
}

#[test]
fn inference_mode_removes_dropout_and_keeps_outputs() -> TestResult {
    for name in [
        "mlp",
        "lenet",
        "layers_v1",
        "layers_v2",
        "frozen",
        "tf0_lenet",
    ] {
        let plain = check(name, SessionOptions::default())?;
        let inference = check(
            name,
            SessionOptions {
                inference: true,
                ..Default::default()
            },
        )?;
        assert!(
            inference.num_steps() < plain.num_steps(),
            "{name}: inference mode runs {} steps, plain {}",
            inference.num_steps(),
            plain.num_steps()
        );
    }
    Ok(())
}

#[test]
fn single_thread_matches() -> TestResult {
    for name in ["mlp", "lenet", "mobilenet"] {
        check(
            name,
            SessionOptions {
                threads: Some(1),
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

#[test]
fn while_loops_in_frames() -> TestResult {
    check("loops_v1", SessionOptions::default())?;
    Ok(())
}

#[test]
fn while_loops_over_functions() -> TestResult {
    check("loops_v2", SessionOptions::default())?;
    Ok(())
}

#[test]
fn lstm_classifier_dynamic_rnn_in_frames() -> TestResult {
    check("rnn_v1", SessionOptions::default())?;
    Ok(())
}

#[test]
fn lstm_classifier_dynamic_rnn_over_functions() -> TestResult {
    check("rnn_v2", SessionOptions::default())?;
    Ok(())
}

#[test]
fn large_lstm_classifier_50_steps() -> TestResult {
    check("rnn_large", SessionOptions::default())?;
    Ok(())
}

#[test]
fn bidirectional_gru_tagger() -> TestResult {
    check("bigru", SessionOptions::default())?;
    Ok(())
}

#[test]
fn keras_lstm_layer_in_a_compat_v1_graph() -> TestResult {
    check("keras_lstm", SessionOptions::default())?;
    Ok(())
}

/// Bit-for-bit equality, except that any NaN matches any NaN (TensorFlow's NaN payloads
/// are not part of its contract).
fn assert_bits(name: &str, got: &Value, want: &Value) -> TestResult {
    if got.shape() != want.shape() || got.dtype() != want.dtype() {
        return Err(format!(
            "{name}: {} {:?}, TensorFlow has {} {:?}",
            got.dtype(),
            got.shape(),
            want.dtype(),
            want.shape()
        )
        .into());
    }
    let same = match (got, want) {
        (Value::F32(g), Value::F32(w)) => g
            .data()
            .iter()
            .zip(w.data())
            .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())),
        (Value::F64(g), Value::F64(w)) => g
            .data()
            .iter()
            .zip(w.data())
            .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())),
        _ => got == want,
    };
    if !same {
        return Err(format!("{name}: {got:?}, TensorFlow has {want:?}").into());
    }
    Ok(())
}

/// NaN, infinities, -0.0 and values past the integer limits through Relu, Relu6, LeakyRelu,
/// Maximum, Minimum, Max/Min, ArgMax/ArgMin, MaxPool and casts, bit for bit as TensorFlow's
/// CPU kernels give them (fixtures/numerics, recorded on x86-64).
#[test]
fn numerics_at_the_edges_as_tensorflow() -> TestResult {
    let case = load_case("numerics")?;
    let fetch_names: Vec<&str> = case.fetches.iter().map(|(n, _)| n.as_str()).collect();
    let feed_names: Vec<&str> = case.feeds.iter().map(|(n, _)| n.as_str()).collect();
    let mut failures = Vec::new();
    // One session per fetch, so that each op's failure is reported on its own.
    for (fetch, file) in &case.fetches {
        let session = Session::new(
            &case.model,
            None,
            &[fetch.as_str()],
            &feed_names,
            SessionOptions::default(),
        )?;
        let feeds: Vec<(&str, Value)> = case
            .feeds
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        let got = session.run(&feeds)?;
        if let Err(e) = assert_bits(fetch, &got[0], &read_npy(file)?) {
            failures.push(e.to_string());
        }
    }
    assert_eq!(fetch_names.len(), 25, "the fixture's fetches changed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// With 2 threads, a session hands its first run to its pool and, when that run had few
/// parallel sections, runs the next ones on the caller's thread: every run gives the same
/// bits, on a model with many parallel sections (MobileNetV2) and one with few (the MLP).
#[test]
fn runs_on_the_pool_or_the_caller_give_the_same_bits() -> TestResult {
    for name in ["mlp", "mobilenet_v2"] {
        let case = load_case(name)?;
        let feeds = case.feed_values();
        let session = case.session(SessionOptions {
            threads: Some(2),
            ..Default::default()
        })?;
        let bits = |values: Vec<Value>| -> Vec<Option<Vec<u32>>> {
            values
                .iter()
                .map(|v| v.as_f32().map(|d| d.iter().map(|x| x.to_bits()).collect()))
                .collect()
        };
        let first = bits(session.run(&feeds)?);
        for run in 1..4 {
            assert_eq!(bits(session.run(&feeds)?), first, "{name}: run {run}");
        }
    }
    Ok(())
}
