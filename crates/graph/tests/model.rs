//! Model import: variable keys through the saver, file loading, describe helpers.

mod common;

use ckpt_graph::ckpt_proto::attr_value::Value;
use ckpt_graph::ckpt_proto::{
    DataType, GraphDef, Message, MetaGraphDef, NodeDef, SaverDef, SignatureDef,
};
use ckpt_graph::{Error, Model};
use common::*;

fn var(name: &str, op: &str, t: DataType, dims: &[i64]) -> NodeDef {
    with_attr(
        with_attr(node(name, op, &[]), "dtype", dtype(t)),
        "shape",
        shape(dims),
    )
}

fn restore_v2(name: &str, keys: &[&str], slices: &[&str]) -> Vec<NodeDef> {
    let n = with_attr(
        node(
            name,
            "RestoreV2",
            &[
                "save/Const",
                &format!("{name}/tensor_names"),
                &format!("{name}/shape_and_slices"),
            ],
        ),
        "dtypes",
        dtypes(&vec![DataType::DtFloat; keys.len()]),
    );
    vec![
        string_const(&format!("{name}/tensor_names"), keys),
        string_const(&format!("{name}/shape_and_slices"), slices),
        n,
    ]
}

fn saver() -> SaverDef {
    SaverDef {
        filename_tensor_name: "save/Const:0".into(),
        save_tensor_name: "save/control_dependency:0".into(),
        restore_op_name: "save/restore_all".into(),
        max_to_keep: 5,
        version: 2,
        ..Default::default()
    }
}

fn meta(nodes: Vec<NodeDef>, saver: Option<SaverDef>) -> MetaGraphDef {
    MetaGraphDef {
        graph_def: Some(GraphDef {
            node: nodes,
            ..Default::default()
        }),
        saver_def: saver,
        ..Default::default()
    }
}

/// A TF1 graph: x -> dense (ref variables) -> pred, with a bulk saver whose keys were given
/// as a dict (so they differ from the op names), and a variable the saver does not restore.
fn ref_model_nodes() -> Vec<NodeDef> {
    let mut nodes = vec![
        var("x", "Placeholder", DataType::DtFloat, &[-1, 4]),
        var("dense/kernel", "VariableV2", DataType::DtFloat, &[4, 3]),
        node("dense/kernel/read", "Identity", &["dense/kernel"]),
        var("dense/bias", "VariableV2", DataType::DtFloat, &[3]),
        node("dense/bias/read", "Identity", &["dense/bias"]),
        var("unsaved", "VariableV2", DataType::DtInt64, &[]),
        node("dense/MatMul", "MatMul", &["x", "dense/kernel/read"]),
        node(
            "dense/BiasAdd",
            "BiasAdd",
            &["dense/MatMul", "dense/bias/read"],
        ),
        node("pred", "ArgMax", &["dense/BiasAdd", "pred/dimension"]),
        with_attr(
            node("pred/dimension", "Const", &[]),
            "dtype",
            dtype(DataType::DtInt32),
        ),
        node("dense/kernel/Initializer/zeros", "Const", &[]),
        node(
            "dense/kernel/Assign",
            "Assign",
            &["dense/kernel", "dense/kernel/Initializer/zeros"],
        ),
        node("init", "NoOp", &["^dense/kernel/Assign"]),
        node("save/filename/input", "Const", &[]),
        node(
            "save/filename",
            "PlaceholderWithDefault",
            &["save/filename/input"],
        ),
        node("save/Const", "PlaceholderWithDefault", &["save/filename"]),
    ];
    nodes.extend(restore_v2("save/RestoreV2", &["net/b", "net/w"], &["", ""]));
    nodes.extend([
        node("save/Assign", "Assign", &["dense/bias", "save/RestoreV2"]),
        node(
            "save/Assign_1",
            "Assign",
            &["dense/kernel", "save/RestoreV2:1"],
        ),
        node(
            "save/restore_all",
            "NoOp",
            &["^save/Assign", "^save/Assign_1"],
        ),
    ]);
    nodes
}

fn key_of<'m>(model: &'m Model, var: &str) -> Result<&'m str, Box<dyn std::error::Error>> {
    let id = model.graph.node_by_name(var)?;
    Ok(model.variable_key(id).ok_or(format!("{var} has no key"))?)
}

#[test]
fn ref_variables_take_their_keys_from_the_restore_op() -> TestResult {
    let model = Model::from_meta_graph_def(&meta(ref_model_nodes(), Some(saver())))?;
    assert_eq!(key_of(&model, "dense/kernel")?, "net/w");
    assert_eq!(key_of(&model, "dense/bias")?, "net/b");
    assert_eq!(key_of(&model, "unsaved")?, "unsaved");
    assert_eq!(model.variables.len(), 3);
    assert!(model.variable_slices.is_empty());
    let kernel = model.graph.node(model.graph.node_by_name("dense/kernel")?);
    assert_eq!(kernel.attr_dtype("dtype")?, DataType::DtFloat);
    assert_eq!(kernel.attr_shape("shape")?, Some(vec![4, 3]));

    // Without the saver, every variable is keyed by its op name.
    let model = Model::from_meta_graph_def(&meta(ref_model_nodes(), None))?;
    assert_eq!(key_of(&model, "dense/kernel")?, "dense/kernel");
    // A saver whose restore op is missing from the graph falls back the same way.
    let mut odd = saver();
    odd.restore_op_name = "elsewhere/restore_all".into();
    let model = Model::from_meta_graph_def(&meta(ref_model_nodes(), Some(odd)))?;
    assert_eq!(key_of(&model, "dense/bias")?, "dense/bias");
    Ok(())
}

#[test]
fn resource_variables_through_identity_and_sharded_restore() -> TestResult {
    let mut nodes = vec![
        var(
            "conv/kernel",
            "VarHandleOp",
            DataType::DtFloat,
            &[3, 3, 1, 8],
        ),
        var("conv/bias", "VarHandleOp", DataType::DtFloat, &[8]),
        node(
            "conv/Read/ReadVariableOp",
            "ReadVariableOp",
            &["conv/kernel"],
        ),
        node("save/Const", "Const", &[]),
    ];
    nodes.extend(restore_v2(
        "save/RestoreV2",
        &["model/b", "model/k"],
        &["", ""],
    ));
    nodes.extend([
        node("save/Identity", "Identity", &["save/RestoreV2"]),
        node(
            "save/AssignVariableOp",
            "AssignVariableOp",
            &["conv/bias", "save/Identity"],
        ),
        node("save/Identity_1", "Identity", &["save/RestoreV2:1"]),
        node(
            "save/AssignVariableOp_1",
            "AssignVariableOp",
            &["conv/kernel", "save/Identity_1"],
        ),
        node(
            "save/restore_shard",
            "NoOp",
            &["^save/AssignVariableOp", "^save/AssignVariableOp_1"],
        ),
        node("save/restore_all", "NoOp", &["^save/restore_shard"]),
    ]);
    let mut s = saver();
    s.sharded = true;
    let model = Model::from_meta_graph_def(&meta(nodes, Some(s)))?;
    assert_eq!(key_of(&model, "conv/kernel")?, "model/k");
    assert_eq!(key_of(&model, "conv/bias")?, "model/b");
    Ok(())
}

#[test]
fn per_variable_restore_ops_and_partitions() -> TestResult {
    let mut nodes = vec![
        var("w/part_0", "VariableV2", DataType::DtFloat, &[3, 2]),
        var("w/part_1", "VariableV2", DataType::DtFloat, &[3, 2]),
        var("old", "Variable", DataType::DtFloat, &[2]),
        node("save/Const", "Const", &[]),
    ];
    // Older TF 1.x: one RestoreV2 per variable, `save/RestoreV2_1` and so on.
    nodes.extend(restore_v2("save/RestoreV2", &["w"], &["6 2 0,3:0,2"]));
    nodes.extend(restore_v2("save/RestoreV2_1", &["w"], &["6 2 3,3:0,2"]));
    nodes.extend([
        node("save/Assign", "Assign", &["w/part_0", "save/RestoreV2"]),
        node("save/Assign_1", "Assign", &["w/part_1", "save/RestoreV2_1"]),
        // TF 0.x / V1 checkpoints: RestoreSlice(file, name, slice).
        string_const("save/RestoreSlice/tensor_name", &["legacy_name"]),
        string_const("save/RestoreSlice/shape_and_slice", &[""]),
        node(
            "save/RestoreSlice",
            "RestoreSlice",
            &[
                "save/Const",
                "save/RestoreSlice/tensor_name",
                "save/RestoreSlice/shape_and_slice",
            ],
        ),
        node("save/Assign_2", "Assign", &["old", "save/RestoreSlice"]),
        node(
            "save/restore_all",
            "NoOp",
            &["^save/Assign", "^save/Assign_1", "^save/Assign_2"],
        ),
    ]);
    let model = Model::from_meta_graph_def(&meta(nodes, Some(saver())))?;
    assert_eq!(key_of(&model, "w/part_0")?, "w");
    assert_eq!(key_of(&model, "w/part_1")?, "w");
    assert_eq!(key_of(&model, "old")?, "legacy_name");
    let slice = |name: &str| -> Result<Option<String>, Box<dyn std::error::Error>> {
        Ok(model
            .variable_slices
            .get(&model.graph.node_by_name(name)?)
            .cloned())
    };
    assert_eq!(slice("w/part_0")?.as_deref(), Some("6 2 0,3:0,2"));
    assert_eq!(slice("w/part_1")?.as_deref(), Some("6 2 3,3:0,2"));
    assert_eq!(slice("old")?, None);
    Ok(())
}

#[test]
fn placeholders_and_likely_outputs_skip_plumbing() -> TestResult {
    let mut m = meta(ref_model_nodes(), Some(saver()));
    m.signature_def
        .insert("serving_default".into(), SignatureDef::default());
    let model = Model::from_meta_graph_def(&m)?;
    let names = |ids: Vec<usize>| -> Vec<String> {
        ids.into_iter()
            .map(|id| model.graph.node(id).name.clone())
            .collect()
    };
    assert_eq!(names(model.placeholders()), ["x"]);
    assert_eq!(names(model.likely_outputs()), ["pred"]);
    assert!(model.signatures.contains_key("serving_default"));
    assert!(model.is_saver_plumbing("save/RestoreV2"));
    assert!(model.is_saver_plumbing("save_3/RestoreV2"));
    assert!(!model.is_saver_plumbing("dense/kernel"));
    Ok(())
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::io::Result<std::path::PathBuf> {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes)?;
    Ok(path)
}

#[test]
fn load_detects_meta_graphs_and_graph_defs_by_content() -> TestResult {
    let dir = tempfile::tempdir()?;
    let meta_bytes = meta(ref_model_nodes(), Some(saver())).encode_to_vec();
    let graph_bytes = GraphDef {
        node: ref_model_nodes(),
        ..Default::default()
    }
    .encode_to_vec();
    for (name, bytes, has_saver) in [
        ("model.ckpt.meta", &meta_bytes, true),
        ("frozen.pb", &graph_bytes, false),
        // Misnamed files still load.
        ("graph_in_disguise.meta", &graph_bytes, false),
        ("meta_in_disguise.pb", &meta_bytes, true),
    ] {
        let model = Model::load(&write(&dir, name, bytes)?)?;
        assert_eq!(model.graph.len(), ref_model_nodes().len(), "{name}");
        assert_eq!(model.saver.is_some(), has_saver, "{name}");
        // A GraphDef has no SaverDef, but its `save/restore_all` gives the same keys.
        assert_eq!(key_of(&model, "dense/kernel")?, "net/w", "{name}");
    }
    Ok(())
}

#[test]
fn load_rejects_garbage_empty_truncated_and_missing_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for (name, bytes) in [
        ("garbage.meta", garbage.as_slice()),
        ("garbage.pb", garbage.as_slice()),
        ("empty.meta", &[][..]),
        ("empty.pb", &[][..]),
        // Text, but only white space: no graph in it.
        ("blank.meta", b"  \n\t\n".as_slice()),
    ] {
        let path = write(&dir, name, bytes)?;
        let err = expect_err(Model::load(&path))?;
        assert!(matches!(err, Error::NotAGraph { .. }), "{name}: {err}");
        let text = err.to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert!(
            text.contains("not a MetaGraphDef or GraphDef protobuf"),
            "{text}"
        );
    }

    let meta_bytes = meta(ref_model_nodes(), Some(saver())).encode_to_vec();
    let path = write(&dir, "truncated.meta", &meta_bytes[..meta_bytes.len() / 2])?;
    let err = expect_err(Model::load(&path))?;
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );

    let missing = dir.path().join("missing.meta");
    let err = expect_err(Model::load(&missing))?;
    assert!(matches!(err, Error::Io { .. }));
    assert!(err.to_string().starts_with("cannot read "), "{err}");
    assert!(err.to_string().contains("missing.meta"), "{err}");
    Ok(())
}

#[test]
fn load_reports_graph_errors_with_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut nodes = ref_model_nodes();
    nodes.push(node("pred", "Identity", &["x"]));
    let path = write(&dir, "dup.meta", &meta(nodes, None).encode_to_vec())?;
    let err = expect_err(Model::load(&path))?;
    assert_eq!(
        err.to_string(),
        format!("{}: duplicate node name \"pred\"", path.display())
    );
    Ok(())
}

#[test]
fn every_truncation_and_bit_flip_is_an_error_or_a_model_never_a_panic() {
    let bytes = meta(ref_model_nodes(), Some(saver())).encode_to_vec();
    for len in 0..bytes.len() {
        let _ = Model::from_meta_graph_bytes(&bytes[..len]);
        let _ = Model::from_graph_def_bytes(&bytes[..len]);
    }
    let mut flipped = bytes.clone();
    for i in 0..flipped.len() {
        for bit in [0x01u8, 0x80] {
            flipped[i] ^= bit;
            let _ = Model::from_meta_graph_bytes(&flipped);
            flipped[i] ^= bit;
        }
    }
    assert!(matches!(
        Model::from_meta_graph_bytes(&[]),
        Err(Error::EmptyGraph { .. })
    ));
    assert!(matches!(
        Model::from_graph_def_bytes(&[0xff, 0xff]),
        Err(Error::Decode { .. })
    ));
}

#[test]
fn a_graph_def_has_no_saver_and_keys_by_name() -> TestResult {
    let def = GraphDef {
        node: vec![
            var("v", "VarHandleOp", DataType::DtFloat, &[2]),
            with_attr(node("c", "Const", &[]), "value", Value::I(1)),
        ],
        ..Default::default()
    };
    let model = Model::from_graph_def(&def)?;
    assert!(model.saver.is_none());
    assert_eq!(key_of(&model, "v")?, "v");
    assert!(matches!(
        Model::from_graph_def(&GraphDef::default()),
        Err(Error::EmptyGraph { what: "GraphDef" })
    ));
    Ok(())
}
