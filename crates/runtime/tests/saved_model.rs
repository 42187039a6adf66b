//! Runs the signatures of the SavedModel fixtures (a TF1 `SavedModelBuilder` export, a TF2
//! `tf.Module` and a tf_keras model, fixtures/make_fixtures.py) through `LoadedSavedModel`
//! and compares with what TensorFlow 2.21 computed for the same inputs.

mod common;

use std::path::Path;

use ckpt_graph::{CaptureBinding, DEFAULT_SIGNATURE};
use ckpt_runtime::{Error, LoadedSavedModel, Session, SessionOptions, Value};
use common::{assert_close, fixtures, read_npy, TestResult};
use serde_json::Value as Json;

fn case(name: &str) -> TestResult<Json> {
    let path = fixtures().join(name).join("case.json");
    Ok(serde_json::from_slice(&std::fs::read(&path)?)?)
}

fn field<'a>(j: &'a Json, key: &str) -> TestResult<&'a str> {
    j.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("case.json: missing {key}").into())
}

fn list<'a>(j: &'a Json, key: &str) -> TestResult<&'a [Json]> {
    j.get(key)
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| format!("case.json: missing {key}").into())
}

/// Runs every signature `case.json` lists, feeding its inputs by key, and compares each
/// output with TensorFlow's.
fn run_all_signatures(name: &str) -> TestResult {
    let dir = fixtures().join(name);
    let case = case(name)?;
    let mut ran = 0;
    for sig in list(&case, "signatures")? {
        let tags: Vec<&str> = list(sig, "tags")?.iter().filter_map(Json::as_str).collect();
        let saved = LoadedSavedModel::load(&dir.join(field(&case, "dir")?), &tags)?;
        let key = field(sig, "key")?;
        let mut feeds = Vec::new();
        for f in list(sig, "feeds")? {
            feeds.push((
                field(f, "key")?.to_string(),
                read_npy(&dir.join(field(f, "file")?))?,
            ));
        }
        let inputs: Vec<&str> = feeds.iter().map(|(k, _)| k.as_str()).collect();
        // All outputs, by default: sorted by key, as TensorFlow returns them.
        let session = saved.session(key, &inputs, &[], SessionOptions::default())?;
        let want_keys: Vec<&str> = list(sig, "fetches")?
            .iter()
            .map(|f| field(f, "key"))
            .collect::<Result<_, _>>()?;
        assert_eq!(session.fetch_names(), want_keys.as_slice(), "{name} {key}");
        let fed: Vec<(&str, Value)> = feeds.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let out = session.run(&fed)?;
        for (f, got) in list(sig, "fetches")?.iter().zip(&out) {
            let want = read_npy(&dir.join(field(f, "file")?))?;
            assert_close(&format!("{name} {key} {}", field(f, "key")?), got, &want)?;
        }
        ran += 1;
    }
    assert!(ran > 0, "{name}: no signatures in case.json");
    Ok(())
}

#[test]
fn tf1_builder_signatures_match_tensorflow() -> TestResult {
    run_all_signatures("saved_model_tf1")
}

#[test]
fn tf2_module_signatures_match_tensorflow() -> TestResult {
    run_all_signatures("saved_model_tf2")
}

#[test]
fn keras_batch_norm_and_separable_conv_match_tensorflow() -> TestResult {
    run_all_signatures("saved_model_keras")
}

/// Each captured variable of a TF2 signature is bound to the checkpoint key TensorFlow's
/// object graph gives it, and each captured constant to its `Const` (case.json `captures`).
fn check_captures(name: &str) -> TestResult {
    let dir = fixtures().join(name);
    let case = case(name)?;
    let saved = LoadedSavedModel::load(&dir.join(field(&case, "dir")?), &["serve"])?;
    let model = saved.model();
    let mut checked = 0;
    for want in list(&case, "captures")? {
        let signature = field(want, "signature")?;
        let got = model
            .captures
            .get(signature)
            .ok_or_else(|| format!("{name}: no captures for {signature}"))?;
        let want_caps = list(want, "captures")?;
        assert_eq!(got.len(), want_caps.len(), "{name} {signature}");
        for (g, w) in got.iter().zip(want_caps) {
            assert_eq!(model.graph.node(g.call).name, field(want, "call")?);
            assert_eq!(g.function, field(want, "function")?);
            assert_eq!(
                Some(i64::from(g.object)),
                w.get("object").and_then(Json::as_i64)
            );
            let node = field(w, "node")?;
            match (&g.binding, field(w, "kind")?) {
                (Ok(CaptureBinding::Variable { node: id, key }), "variable") => {
                    assert_eq!(model.graph.node(*id).name, node);
                    assert_eq!(key, field(w, "key")?);
                    assert_eq!(model.variable_key(*id), Some(key.as_str()));
                }
                (Ok(CaptureBinding::Constant { node: id }), "constant") => {
                    assert_eq!(model.graph.node(*id).name, node);
                }
                (other, kind) => return Err(format!("{name}: {kind} bound as {other:?}").into()),
            }
            checked += 1;
        }
    }
    assert!(checked > 0);
    Ok(())
}

#[test]
fn tf2_captures_bind_to_tensorflows_keys() -> TestResult {
    check_captures("saved_model_tf2")
}

#[test]
fn keras_captures_bind_to_tensorflows_keys() -> TestResult {
    check_captures("saved_model_keras")
}

/// Feeds and fetches also take graph tensor names, and a subset of the outputs is fetched in
/// the order asked.
#[test]
fn graph_tensor_names_feed_and_fetch() -> TestResult {
    let dir = fixtures().join("saved_model_tf2");
    let saved = LoadedSavedModel::load(&dir.join("model"), &["serve"])?;
    let x = read_npy(&dir.join("x.npy"))?;
    let a = read_npy(&dir.join("a.npy"))?;
    let session = saved.session(
        DEFAULT_SIGNATURE,
        &["serving_default_x:0", "a"],
        &["y", "StatefulPartitionedCall:0"],
        SessionOptions::default(),
    )?;
    let out = session.run(&[("serving_default_x:0", x), ("a", a)])?;
    assert_close(
        "y",
        &out[0],
        &read_npy(&dir.join("serving_default__y.npy"))?,
    )?;
    assert_close(
        "n",
        &out[1],
        &read_npy(&dir.join("serving_default__n.npy"))?,
    )?;
    Ok(())
}

/// A name that is neither a key nor a tensor is refused, listing the signature's keys.
#[test]
fn unknown_signature_input_lists_the_keys() -> TestResult {
    let saved = LoadedSavedModel::load(&fixtures().join("saved_model_tf2/model"), &["serve"])?;
    let err = saved
        .session(DEFAULT_SIGNATURE, &["z"], &[], SessionOptions::default())
        .err()
        .ok_or("feeding z should fail")?;
    assert!(
        matches!(&err, Error::UnknownSignatureTensor { signature, kind: "input", name, keys }
            if signature == "serving_default" && name == "z" && keys == &["a", "x"]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "signature \"serving_default\" has no input \"z\" and the graph no tensor of that name; its inputs: a, x"
    );
    Ok(())
}

/// The signature's function calls run with their captured variables bound at plan time, so
/// the Keras model's nested plans read no variable and compute nothing from variables alone
/// per run (the unfused batch norm's `Rsqrt` of the variance is folded, and the fused batch
/// norms after convolutions are folded into their filters once, at plan time). Unoptimized,
/// the function bodies keep every batch norm as a step of its own.
#[test]
fn captured_variables_fold_into_the_function_plans() -> TestResult {
    let saved = LoadedSavedModel::load(&fixtures().join("saved_model_keras/model"), &["serve"])?;
    let plan_of = |unoptimized| -> TestResult<String> {
        let options = SessionOptions {
            unoptimized,
            ..Default::default()
        };
        let session = saved.session(DEFAULT_SIGNATURE, &["image"], &[], options)?;
        // The main graph runs one step: the signature's call (the variables are constants).
        assert_eq!(session.num_steps(), 1);
        Ok(format!("{session:?}"))
    };
    let runs = |plan: &str, op: &str| plan.contains(&format!("op: \"{op}\""));
    let plan = plan_of(false)?;
    for op in ["DepthwiseConv2dNative", "Conv2D", "Softmax"] {
        assert!(runs(&plan, op), "{op} should run");
    }
    for op in ["ReadVariableOp", "Rsqrt", "FusedBatchNormV3"] {
        assert!(!runs(&plan, op), "{op} should be folded");
    }
    let plain = plan_of(true)?;
    for op in ["DepthwiseConv2dNative", "FusedBatchNormV3", "Softmax"] {
        assert!(runs(&plain, op), "{op} should run unoptimized");
    }
    Ok(())
}

/// Running the same signature twice gives the same numbers (the plan keeps no state).
#[test]
fn sessions_run_repeatedly() -> TestResult {
    let dir = fixtures().join("saved_model_keras");
    let saved = LoadedSavedModel::load(&dir.join("model"), &["serve"])?;
    let session: Session = saved.session(
        DEFAULT_SIGNATURE,
        &["image"],
        &[],
        SessionOptions::default(),
    )?;
    let image = read_npy(&dir.join("image.npy"))?;
    let first = session.run(&[("image", image.clone())])?;
    let second = session.run(&[("image", image)])?;
    assert_eq!(first, second);
    assert!(Path::new(&dir.join("serving_default__probs.npy")).is_file());
    Ok(())
}

/// The text-format export (`saved_model.pbtxt`) runs like a binary one.
#[test]
fn text_format_saved_model_matches_tensorflow() -> TestResult {
    let dir = fixtures().join("saved_model_tf1");
    let case = case("saved_model_tf1")?;
    let text = case.get("text").ok_or("case.json: no text")?;
    let saved = LoadedSavedModel::load(&dir.join(field(text, "dir")?), &["serve"])?;
    assert!(saved.file().ends_with("saved_model.pbtxt"));
    let session = saved.session(DEFAULT_SIGNATURE, &["x"], &[], SessionOptions::default())?;
    let out = session.run(&[("x", read_npy(&dir.join("x.npy"))?)])?;
    assert_eq!(session.fetch_names(), ["y"]);
    assert_close("text y", &out[0], &read_npy(&dir.join("text__y.npy"))?)
}

/// An input the outputs need but that was not fed is named by its key.
#[test]
fn unfed_signature_input_is_named_by_key() -> TestResult {
    let saved = LoadedSavedModel::load(&fixtures().join("saved_model_tf2/model"), &["serve"])?;
    let err = saved
        .session(DEFAULT_SIGNATURE, &["x"], &[], SessionOptions::default())
        .err()
        .ok_or("a must be fed")?;
    assert!(
        matches!(&err, Error::UnfedSignatureInput { signature, key, tensor, .. }
            if signature == "serving_default" && key == "a" && tensor == "serving_default_a:0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "signature \"serving_default\": input \"a\" (tensor serving_default_a:0) must be fed (float32, shape [-1,3])"
    );
    Ok(())
}
