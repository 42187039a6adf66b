//! SavedModel import on the fixtures TensorFlow 2.21 wrote (fixtures/saved_model_*): tag sets,
//! signatures, TF2 captures bound through the checkpoint's object graph; and the named errors
//! of damaged SavedModels, made by editing the fixtures' protos.

use std::path::{Path, PathBuf};

use ckpt_bundle::BundleReader;
use ckpt_graph::ckpt_proto::attr_value::Value;
use ckpt_graph::ckpt_proto::saved_object::Kind;
use ckpt_graph::ckpt_proto::tensor_info::{CooSparse, Encoding};
use ckpt_graph::ckpt_proto::{DataType, Message, SavedResource, TrackableObjectGraph};
use ckpt_graph::{CaptureBinding, Error, Model, SavedModel, DEFAULT_SIGNATURE, OBJECT_GRAPH_KEY};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// The TF2 `tf.Module` export, decoded, and its checkpoint's object graph.
fn tf2() -> TestResult<(ckpt_graph::ckpt_proto::SavedModel, TrackableObjectGraph)> {
    let dir = fixture("saved_model_tf2/model");
    let saved = SavedModel::load(&dir)?;
    let bundle = BundleReader::open(dir.join("variables/variables"))?;
    let tensor = bundle.read(OBJECT_GRAPH_KEY)?;
    let bytes = tensor
        .strings()
        .and_then(|s| s.first())
        .ok_or("no object graph")?;
    Ok((
        saved.proto().clone(),
        TrackableObjectGraph::decode(bytes.as_ref())?,
    ))
}

/// The model of an edited SavedModel message.
fn model_of(
    proto: &ckpt_graph::ckpt_proto::SavedModel,
    objects: Option<&TrackableObjectGraph>,
) -> Result<Model, Error> {
    SavedModel::from_bytes(&proto.encode_to_vec(), "edited")?.model(&["serve"], objects)
}

/// The name of the library function starting with `prefix`.
fn function_named(proto: &ckpt_graph::ckpt_proto::SavedModel, prefix: &str) -> TestResult<String> {
    proto.meta_graphs[0]
        .graph_def
        .as_ref()
        .and_then(|g| g.library.as_ref())
        .into_iter()
        .flat_map(|l| l.function.iter())
        .filter_map(|f| f.signature.as_ref())
        .map(|s| s.name.clone())
        .find(|n| n.starts_with(prefix))
        .ok_or_else(|| format!("no function {prefix}*").into())
}

#[test]
fn tf1_tag_sets_signatures_and_saver_keys() -> TestResult {
    let saved = SavedModel::load(&fixture("saved_model_tf1/model"))?;
    assert_eq!(saved.tag_sets(), [["serve"], ["train"]]);
    assert_eq!(
        saved.variables_prefix(),
        fixture("saved_model_tf1/model/variables/variables")
    );
    let model = saved.model(&["serve"], None)?;
    let sig = model.signature(DEFAULT_SIGNATURE)?;
    assert_eq!(sig.method_name, "tensorflow/serving/predict");
    let inputs: Vec<_> = sig
        .inputs
        .iter()
        .map(|t| (t.key.as_str(), t.name.as_str(), t.dtype, t.shape.clone()))
        .collect();
    assert_eq!(
        inputs,
        [("features", "x:0", DataType::DtFloat, Some(vec![-1, 4]))]
    );
    let outputs: Vec<_> = sig
        .outputs
        .iter()
        .map(|t| (t.key.as_str(), t.name.as_str(), t.dtype, t.shape.clone()))
        .collect();
    assert_eq!(
        outputs,
        [
            ("classes", "cls:0", DataType::DtInt64, Some(vec![-1])),
            ("probs", "probs:0", DataType::DtFloat, Some(vec![-1, 3])),
        ]
    );
    assert_eq!(sig.outputs[1].output, model.graph.parse_output("probs")?);
    // A reference and a resource variable, both keyed through the saver's restore op.
    for name in ["dense/kernel", "dense/bias"] {
        let id = model.graph.node_by_name(name)?;
        assert_eq!(model.variable_key(id), Some(name));
    }
    assert!(model.captures.is_empty());

    // The {train} meta graph has its own signatures and a saver in scope save_1/.
    let train = saved.model(&["train"], None)?;
    assert_eq!(train.signatures.keys().collect::<Vec<_>>(), ["logits"]);
    assert!(train
        .saver
        .as_ref()
        .is_some_and(|s| s.restore_op_name.starts_with("save_1/")));
    assert_eq!(
        train.variable_key(train.graph.node_by_name("dense/kernel")?),
        Some("dense/kernel")
    );
    Ok(())
}

#[test]
fn tf2_outputs_are_sorted_and_captures_bound() -> TestResult {
    let (proto, objects) = tf2()?;
    let model = model_of(&proto, Some(&objects))?;
    let sig = model.signature(DEFAULT_SIGNATURE)?;
    let names = |t: &[ckpt_graph::SignatureTensor]| -> Vec<(String, String)> {
        t.iter().map(|t| (t.key.clone(), t.name.clone())).collect()
    };
    assert_eq!(
        names(&sig.inputs),
        [
            ("a".into(), "serving_default_a:0".into()),
            ("x".into(), "serving_default_x:0".into())
        ]
    );
    // The wrapper returns its outputs sorted by key: n is output 0.
    assert_eq!(
        names(&sig.outputs),
        [
            ("n".into(), "StatefulPartitionedCall:0".into()),
            ("y".into(), "StatefulPartitionedCall:1".into())
        ]
    );
    assert_eq!(
        sig.output("StatefulPartitionedCall:1")
            .map(|t| t.key.as_str()),
        Some("y")
    );
    assert_eq!(
        sig.input("serving_default_x").map(|t| t.key.as_str()),
        Some("x")
    );
    let scale = model.graph.node_by_name("scale")?;
    assert_eq!(
        model.variable_key(scale),
        Some("inner/scale/.ATTRIBUTES/VARIABLE_VALUE")
    );
    let captures = &model.captures["serving_default"];
    assert_eq!(
        captures.iter().map(|c| c.input).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(
        captures[2].binding,
        Ok(CaptureBinding::Variable {
            node: scale,
            key: "inner/scale/.ATTRIBUTES/VARIABLE_VALUE".into()
        })
    );
    let addc = &model.captures["addc"];
    assert_eq!(
        addc[0].binding,
        Ok(CaptureBinding::Constant {
            node: model.graph.node_by_name("Const")?
        })
    );
    model.signature("addc")?;
    Ok(())
}

/// Without the checkpoint's object graph the variables' keys are unknown: the signatures that
/// capture variables fail, naming the variable; one capturing only a constant still works.
#[test]
fn tf2_without_the_checkpoint_object_graph() -> TestResult {
    let (proto, _) = tf2()?;
    let model = model_of(&proto, None)?;
    let err = model
        .signature(DEFAULT_SIGNATURE)
        .err()
        .ok_or("should fail")?;
    assert!(
        matches!(&err, Error::Capture { signature, node, input: 2, object: 1, reason, .. }
            if signature == "serving_default" && node == "StatefulPartitionedCall"
                && reason.contains("variable \"w\": the checkpoint has no object graph")),
        "{err}"
    );
    model.signature("addc")?;
    Ok(())
}

#[test]
fn signature_naming_a_missing_node() -> TestResult {
    let (mut proto, objects) = tf2()?;
    let sig = proto.meta_graphs[0]
        .signature_def
        .get_mut(DEFAULT_SIGNATURE)
        .ok_or("no signature")?;
    sig.outputs.get_mut("y").ok_or("no y")?.encoding =
        Some(Encoding::Name("StatefulPartitionedCal:1".into()));
    let model = model_of(&proto, Some(&objects))?;
    let err = model
        .signature(DEFAULT_SIGNATURE)
        .err()
        .ok_or("should fail")?;
    match &err {
        Error::SignatureTensor {
            signature,
            kind: "output",
            key,
            error,
        } if signature == "serving_default" && key == "y" => match error.as_ref() {
            Error::UnknownNode { name, suggestions } => {
                assert_eq!(name, "StatefulPartitionedCal");
                assert_eq!(
                    suggestions.first().map(String::as_str),
                    Some("StatefulPartitionedCall")
                );
            }
            other => return Err(format!("{other:?}").into()),
        },
        other => return Err(format!("{other:?}").into()),
    }
    assert!(err
        .to_string()
        .starts_with("signature \"serving_default\": output \"y\": no node named \"StatefulPartitionedCal\"; did you mean \"StatefulPartitionedCall\""));
    Ok(())
}

fn set_call_target(
    proto: &mut ckpt_graph::ckpt_proto::SavedModel,
    function: Option<&str>,
    node: &str,
    target: &str,
) -> TestResult {
    let graph = proto.meta_graphs[0].graph_def.as_mut().ok_or("no graph")?;
    let nodes = match function {
        None => &mut graph.node,
        Some(f) => {
            &mut graph
                .library
                .as_mut()
                .ok_or("no library")?
                .function
                .iter_mut()
                .find(|d| d.signature.as_ref().is_some_and(|s| s.name == f))
                .ok_or("no such function")?
                .node_def
        }
    };
    let call = nodes
        .iter_mut()
        .find(|n| n.name == node)
        .ok_or("no call node")?;
    match call.attr.get_mut("f").and_then(|a| a.value.as_mut()) {
        Some(Value::Func(f)) => f.name = target.to_owned(),
        _ => return Err("no f attribute".into()),
    }
    Ok(())
}

#[test]
fn signature_calling_a_missing_function() -> TestResult {
    // The top-level call names a function the library lacks.
    let (mut proto, objects) = tf2()?;
    set_call_target(
        &mut proto,
        None,
        "StatefulPartitionedCall",
        "__inference_gone_1",
    )?;
    let err = model_of(&proto, Some(&objects))?
        .signature(DEFAULT_SIGNATURE)
        .err()
        .ok_or("should fail")?;
    assert!(
        matches!(&err, Error::InSignature { signature, error } if signature == "serving_default"
            && matches!(error.as_ref(), Error::InNode { node, error } if node == "StatefulPartitionedCall"
                && matches!(error.as_ref(), Error::UnknownFunction { name, .. } if name == "__inference_gone_1"))),
        "{err:?}"
    );

    // The wrapper's nested call names a missing function: the wrapper and its node are named.
    let (mut proto, objects) = tf2()?;
    let wrapper = function_named(&proto, "__inference_signature_wrapper_serve_")?;
    set_call_target(
        &mut proto,
        Some(&wrapper),
        "StatefulPartitionedCall",
        "__inference_gone_2",
    )?;
    let err = model_of(&proto, Some(&objects))?
        .signature(DEFAULT_SIGNATURE)
        .err()
        .ok_or("should fail")?;
    assert_eq!(
        err.to_string(),
        format!(
            "signature \"serving_default\": node \"StatefulPartitionedCall\": function {wrapper:?}: node \"StatefulPartitionedCall\": no function named \"__inference_gone_2\" in the graph's library"
        )
    );
    Ok(())
}

#[test]
fn function_calling_itself() -> TestResult {
    let (mut proto, objects) = tf2()?;
    let wrapper = function_named(&proto, "__inference_signature_wrapper_serve_")?;
    let serve = function_named(&proto, "__inference_serve_")?;
    // serve calls the inner module's function; make it call the wrapper, which calls serve.
    set_call_target(
        &mut proto,
        Some(&serve),
        "StatefulPartitionedCall",
        &wrapper,
    )?;
    let err = model_of(&proto, Some(&objects))?
        .signature(DEFAULT_SIGNATURE)
        .err()
        .ok_or("should fail")?;
    match &err {
        Error::InSignature { error, .. } => match error.as_ref() {
            Error::InNode { node, error } if node == "StatefulPartitionedCall" => {
                match error.as_ref() {
                    Error::RecursiveFunction { function, chain } => {
                        assert_eq!(function, &wrapper);
                        assert_eq!(chain, &[wrapper.clone(), serve.clone(), wrapper.clone()]);
                    }
                    other => return Err(format!("{other:?}").into()),
                }
            }
            other => return Err(format!("{other:?}").into()),
        },
        other => return Err(format!("{other:?}").into()),
    }
    assert!(err.to_string().ends_with(&format!(
        "function {wrapper:?} calls itself ({wrapper} -> {serve} -> {wrapper})"
    )));
    Ok(())
}

#[test]
fn capture_bound_to_a_missing_variable() -> TestResult {
    let (proto, mut objects) = tf2()?;
    // The checkpoint's object graph does not hold `scale` (object 7) as a variable.
    objects.nodes[7].attributes.clear();
    let err = model_of(&proto, Some(&objects))?
        .signature(DEFAULT_SIGNATURE)
        .err()
        .ok_or("should fail")?;
    let wrapper = function_named(&proto, "__inference_signature_wrapper_serve_")?;
    assert!(
        matches!(&err, Error::Capture { signature, node, function, input: 4, object: 7, reason }
            if signature == "serving_default" && node == "StatefulPartitionedCall" && *function == wrapper
                && reason == "variable \"scale\": node 7 of the checkpoint's object graph has no VARIABLE_VALUE attribute; the checkpoint does not hold this variable"),
        "{err:?}"
    );

    // An object graph with fewer nodes.
    let (proto, mut objects) = tf2()?;
    objects.nodes.truncate(3);
    let err = model_of(&proto, Some(&objects))?
        .signature(DEFAULT_SIGNATURE)
        .err()
        .ok_or("should fail")?;
    assert!(
        matches!(&err, Error::Capture { object: 7, reason, .. } if reason.contains("has no node 7 (it has 3)")),
        "{err:?}"
    );

    // bound_inputs naming an object the SavedModel does not have.
    let (mut proto, objects) = tf2()?;
    let og = proto.meta_graphs[0]
        .object_graph_def
        .as_mut()
        .ok_or("no object graph")?;
    og.concrete_functions
        .get_mut(&wrapper)
        .ok_or("no concrete function")?
        .bound_inputs[0] = 999;
    let err = model_of(&proto, Some(&objects))?
        .signature(DEFAULT_SIGNATURE)
        .err()
        .ok_or("should fail")?;
    assert!(
        matches!(&err, Error::Capture { object: 999, input: 2, reason, .. } if reason.starts_with("the object graph has no node 999")),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn captured_resource_is_unsupported() -> TestResult {
    let (mut proto, objects) = tf2()?;
    let og = proto.meta_graphs[0]
        .object_graph_def
        .as_mut()
        .ok_or("no object graph")?;
    og.nodes[7].kind = Some(Kind::Resource(SavedResource::default()));
    let err = model_of(&proto, Some(&objects))?
        .signature(DEFAULT_SIGNATURE)
        .err()
        .ok_or("should fail")?;
    assert!(
        matches!(&err, Error::Capture { object: 7, reason, .. }
            if reason == "object 7 is a resource (such as a lookup table, filled by the init op) captured as node \"scale\"; captured resources are not supported"),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn sparse_signature_output_is_unsupported() -> TestResult {
    let (mut proto, objects) = tf2()?;
    let sig = proto.meta_graphs[0]
        .signature_def
        .get_mut("addc")
        .ok_or("no signature")?;
    sig.outputs.get_mut("output_0").ok_or("no output")?.encoding =
        Some(Encoding::CooSparse(CooSparse::default()));
    let err = model_of(&proto, Some(&objects))?
        .signature("addc")
        .err()
        .ok_or("should fail")?;
    assert!(
        matches!(&err, Error::BadSignature { signature, reason }
            if signature == "addc" && reason == "output \"output_0\" is a sparse tensor, which is not supported"),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn unknown_signature_lists_and_suggests() -> TestResult {
    let model = SavedModel::load(&fixture("saved_model_tf1/model"))?.model(&["serve"], None)?;
    let err = model.signature("serving").err().ok_or("should fail")?;
    assert!(
        matches!(&err, Error::UnknownSignature { name, available, suggestions }
            if name == "serving" && available == &["scaled", "serving_default"] && suggestions == &["serving_default"]),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn no_meta_graph_for_the_tag_set() -> TestResult {
    let dir = fixture("saved_model_tf1/model");
    let saved = SavedModel::load(&dir)?;
    // A superset of a meta graph's tags is not a match.
    let err = saved
        .model(&["serve", "gpu"], None)
        .err()
        .ok_or("should fail")?;
    assert!(
        matches!(&err, Error::NoMetaGraph { path, tags, available }
            if *path == dir.join("saved_model.pb") && tags == &["gpu", "serve"]
                && available == &[vec!["serve".to_owned()], vec!["train".to_owned()]]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no meta graph has the tag set {{gpu, serve}}; its tag sets: {{serve}}, {{train}}",
            dir.join("saved_model.pb").display()
        )
    );
    // A SavedModel with no meta graph at all.
    let empty = SavedModel::from_bytes(&[], "empty")?;
    let err = empty.meta_graph(&["serve"]).err().ok_or("should fail")?;
    assert!(err
        .to_string()
        .ends_with("no meta graph has the tag set {serve}; its tag sets: none"));
    Ok(())
}

#[test]
fn garbage_bytes_name_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("saved_model.pb");
    std::fs::write(&file, b"\xff\xff\xff\xff\xff not a SavedModel")?;
    let err = SavedModel::load(dir.path()).err().ok_or("should fail")?;
    assert!(
        matches!(&err, Error::InFile { path, error }
            if *path == file && matches!(error.as_ref(), Error::Decode { what: "SavedModel", .. })),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&format!(
        "{}: cannot decode the bytes as a SavedModel",
        file.display()
    )));
    Ok(())
}

#[test]
fn truncated_saved_models_never_panic() -> TestResult {
    let bytes = std::fs::read(fixture("saved_model_tf2/model/saved_model.pb"))?;
    for len in (0..bytes.len()).step_by(97) {
        if let Ok(saved) = SavedModel::from_bytes(&bytes[..len], "cut") {
            if let Ok(model) = saved.model(&["serve"], None) {
                for key in model.signatures.keys() {
                    let _ = model.signature(key);
                }
            }
        }
    }
    Ok(())
}

#[test]
fn directory_without_a_saved_model() -> TestResult {
    let dir = tempfile::tempdir()?;
    assert_eq!(SavedModel::find(dir.path()), None);
    let err = SavedModel::load(dir.path()).err().ok_or("should fail")?;
    assert!(
        matches!(&err, Error::NotASavedModel { path, reason }
            if path == dir.path() && reason == "no saved_model.pb or saved_model.pbtxt"),
        "{err:?}"
    );
    Ok(())
}

/// A `saved_model.pbtxt` (SavedModelBuilder.save(as_text=True)) reads like the binary form.
#[test]
fn text_format_saved_model() -> TestResult {
    let dir = fixture("saved_model_tf1/text");
    assert_eq!(SavedModel::find(&dir), Some(dir.join("saved_model.pbtxt")));
    let saved = SavedModel::load(&dir)?;
    assert_eq!(saved.file(), dir.join("saved_model.pbtxt"));
    assert_eq!(saved.tag_sets(), [["serve"]]);
    let model = saved.model(&["serve"], None)?;
    let sig = model.signature(DEFAULT_SIGNATURE)?;
    assert_eq!(
        (sig.inputs[0].key.as_str(), sig.inputs[0].name.as_str()),
        ("x", "x:0")
    );
    assert_eq!(
        (sig.outputs[0].key.as_str(), sig.outputs[0].name.as_str()),
        ("y", "y:0")
    );
    for name in ["w", "b"] {
        assert_eq!(
            model.variable_key(model.graph.node_by_name(name)?),
            Some(name)
        );
    }
    // Text errors give the line and column, and name the file.
    let bad = tempfile::tempdir()?;
    std::fs::write(
        bad.path().join("saved_model.pbtxt"),
        "saved_model_schema_version: 1\nmeta_graphs {\n  bogus_field: 3\n}\n",
    )?;
    let err = SavedModel::load(bad.path()).err().ok_or("should fail")?;
    assert!(
        matches!(&err, Error::InFile { error, .. } if matches!(error.as_ref(), Error::Text { what: "SavedModel", .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("line 3"), "{err}");
    Ok(())
}
