//! Text-format graphs (`graph.pbtxt`) and graphs written before TensorFlow 1.0.

mod common;

use ckpt_graph::ckpt_proto::{
    self, text, DataType, GraphDef, Message, MetaGraphDef, SaverDef, VersionDef,
};
use ckpt_graph::{Error, Model};
use common::*;

fn placeholder(name: &str, dims: &[i64]) -> ckpt_proto::NodeDef {
    with_attr(
        with_attr(
            node(name, "Placeholder", &[]),
            "dtype",
            dtype(DataType::DtFloat),
        ),
        "shape",
        shape(dims),
    )
}

/// x -> Relu, a variable restored under another key by `save/restore_all`, and producer 21.
fn graph_def() -> GraphDef {
    let tensor_names = string_const("save/RestoreV2/tensor_names", &["net/w"]);
    let slices = string_const("save/RestoreV2/shape_and_slices", &[""]);
    GraphDef {
        node: vec![
            placeholder("x", &[]),
            node("relu", "Relu", &["x"]),
            with_attr(
                with_attr(
                    node("w", "VariableV2", &[]),
                    "dtype",
                    dtype(DataType::DtFloat),
                ),
                "shape",
                shape(&[2]),
            ),
            node("save/Const", "Const", &[]),
            tensor_names,
            slices,
            node(
                "save/RestoreV2",
                "RestoreV2",
                &[
                    "save/Const",
                    "save/RestoreV2/tensor_names",
                    "save/RestoreV2/shape_and_slices",
                ],
            ),
            node("save/Assign", "Assign", &["w", "save/RestoreV2"]),
            node("save/restore_all", "NoOp", &["^save/Assign"]),
        ],
        versions: Some(VersionDef {
            producer: 21,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::io::Result<std::path::PathBuf> {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes)?;
    Ok(path)
}

fn names(model: &Model) -> Vec<&str> {
    model.graph.nodes.iter().map(|n| n.name.as_str()).collect()
}

#[test]
fn text_graphs_load_like_binary_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    let def = graph_def();
    let binary = Model::load(&write(&dir, "graph.pb", &def.encode_to_vec())?)?;
    let graph_text = text::to_text(&def)?;
    assert!(graph_text.contains("name: \"x\""), "{graph_text}");
    let meta = MetaGraphDef {
        graph_def: Some(def.clone()),
        saver_def: Some(SaverDef {
            restore_op_name: "save/restore_all".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let meta_text = text::to_text(&meta)?;
    for (name, content, has_saver) in [
        ("graph.pbtxt", &graph_text, false),
        ("graph.pbtext", &graph_text, false),
        ("GRAPH.TXT", &graph_text, false),
        ("model.ckpt.meta.pbtxt", &meta_text, true),
        // Text under a binary name is found by its content.
        ("text_in_disguise.meta", &graph_text, false),
        ("meta_text_in_disguise.pb", &meta_text, true),
    ] {
        let model = Model::load(&write(&dir, name, content.as_bytes())?)?;
        assert_eq!(names(&model), names(&binary), "{name}");
        assert_eq!(model.graph.nodes, binary.graph.nodes, "{name}");
        assert_eq!(model.saver.is_some(), has_saver, "{name}");
        assert_eq!(model.producer, 21, "{name}");
        let w = model.graph.node_by_name("w")?;
        assert_eq!(model.variable_key(w), Some("net/w"), "{name}");
    }
    // A binary file with a text name still loads, even when its bytes are all ASCII.
    let model = Model::load(&write(&dir, "binary.pbtxt", &meta.encode_to_vec())?)?;
    assert!(model.saver.is_some());
    let ascii = GraphDef {
        node: vec![node("x", "Placeholder", &[]), node("y", "Relu", &["x"])],
        ..Default::default()
    }
    .encode_to_vec();
    assert!(ascii.is_ascii());
    let model = Model::load(&write(&dir, "ascii.pbtxt", &ascii)?)?;
    assert_eq!(names(&model), ["x", "y"]);
    Ok(())
}

/// The error of loading `content` from a file called `name`, and its message.
fn load_error(name: &str, content: &str) -> Result<(Error, String), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = write(&dir, name, content.as_bytes())?;
    let err = expect_err(Model::load(&path))?;
    let message = err.to_string();
    let prefix = format!("{}: ", path.display());
    let rest = message
        .strip_prefix(&prefix)
        .ok_or(format!("{message:?} does not start with the file"))?
        .to_owned();
    Ok((err, rest))
}

#[test]
fn malformed_text_names_file_line_column_and_the_problem() -> TestResult {
    // Syntax error: a missing colon before a scalar.
    let (err, message) = load_error("graph.pbtxt", "node {\n  name \"x\"\n}\n")?;
    assert_eq!(
        message,
        "cannot parse the text as a GraphDef: line 2, column 8: expected ':' or a message \
         value, but found '\"x\"'"
    );
    let Error::InFile { error, .. } = err else {
        return Err(format!("not InFile: {err:?}").into());
    };
    assert!(matches!(
        *error,
        Error::Text {
            what: "GraphDef",
            error: ckpt_proto::Error::Text {
                line: 2,
                column: 8,
                ..
            }
        }
    ));

    // Unknown field.
    let (_, message) = load_error(
        "graph.pbtxt",
        "node {\n  name: \"x\"\n  op: \"Relu\"\n  inptu: \"y\"\n}\n",
    )?;
    assert_eq!(
        message,
        "cannot parse the text as a GraphDef: line 4, column 3: field 'inptu' not found for \
         message 'tensorflow.NodeDef'"
    );

    // Wrong type: a string where the producer number belongs.
    let (_, message) = load_error(
        "graph.pbtxt",
        "node { name: \"x\" op: \"Relu\" }\nversions {\n  producer: \"21\"\n}\n",
    )?;
    assert_eq!(
        message,
        "cannot parse the text as a GraphDef: line 3, column 13: expected an integer, but found \
         '\"21\"'"
    );

    // A MetaGraphDef's error is reported against the MetaGraphDef, whose parse got further.
    let (_, message) = load_error(
        "model.pbtxt",
        "meta_info_def { tags: \"serve\" }\ngraph_def {\n  node { name: \"x\" op: 3 }\n}\n",
    )?;
    assert_eq!(
        message,
        "cannot parse the text as a MetaGraphDef: line 3, column 24: expected a string, but \
         found '3'"
    );

    // Graph errors after a good parse are the same as for binary files.
    let (_, message) = load_error(
        "graph.pbtxt",
        "node { name: \"x\" op: \"Relu\" input: \"nowhere\" }",
    )?;
    assert_eq!(
        message,
        "node \"x\": input \"nowhere\" names no node in the graph"
    );

    // Text without nodes.
    let (_, message) = load_error("graph.pbtxt", "versions { producer: 21 }\n")?;
    assert_eq!(message, "the GraphDef holds no graph nodes");
    let (_, message) = load_error("empty.pbtxt", "")?;
    assert_eq!(message, "the GraphDef holds no graph nodes");
    Ok(())
}

#[test]
fn deeply_nested_text_is_refused() -> TestResult {
    let mut deep = String::from("node { name: \"x\" op: \"Const\" ");
    for _ in 0..1000 {
        deep.push_str("attr { key: \"a\" value { func { ");
    }
    let (_, message) = load_error("graph.pbtxt", &deep)?;
    assert!(
        message.starts_with("cannot parse the text as a GraphDef: line 1, column ")
            && message.ends_with(": messages nest deeper than 64 levels"),
        "{message}"
    );
    Ok(())
}

#[test]
fn placeholder_shapes_follow_the_producer_version() -> TestResult {
    let with_producer = |producer: Option<i32>, nodes: Vec<ckpt_proto::NodeDef>| {
        Model::from_graph_def(&GraphDef {
            node: nodes,
            versions: producer.map(|producer| VersionDef {
                producer,
                ..Default::default()
            }),
            ..Default::default()
        })
    };
    let declared = |model: &Model, name: &str| -> Result<Option<Vec<i64>>, Error> {
        model.declared_shape(model.graph.node(model.graph.node_by_name(name)?))
    };
    let nodes = || {
        vec![
            placeholder("scalar_attr", &[]),
            placeholder("matrix", &[-1, 3]),
            with_attr(
                node("no_shape", "Placeholder", &[]),
                "dtype",
                dtype(DataType::DtFloat),
            ),
            with_attr(node("v1", "Variable", &[]), "shape", shape(&[])),
            with_attr(node("v1_vector", "Variable", &[]), "shape", shape(&[4])),
            with_attr(node("v2", "VariableV2", &[]), "shape", shape(&[])),
            with_attr(node("pv2", "PlaceholderV2", &[]), "shape", shape(&[])),
        ]
    };
    // TF 0.12 (producer 21) and a GraphDef without versions (producer 0): `shape {}` of a
    // Placeholder is "any shape".
    for producer in [Some(21), None] {
        let model = with_producer(producer, nodes())?;
        assert_eq!(model.producer, producer.unwrap_or(0));
        assert_eq!(declared(&model, "scalar_attr")?, None, "{producer:?}");
        assert_eq!(declared(&model, "matrix")?, Some(vec![-1, 3]));
        assert_eq!(declared(&model, "pv2")?, Some(vec![]));
    }
    // TF 1.0 on: a scalar.
    let model = with_producer(Some(22), nodes())?;
    assert_eq!(declared(&model, "scalar_attr")?, Some(vec![]));
    // At any producer: no attribute is unknown, the old Variable's `shape {}` is unknown, and
    // VariableV2's is a scalar.
    for producer in [21, 22, 2474] {
        let model = with_producer(Some(producer), nodes())?;
        assert_eq!(declared(&model, "no_shape")?, None);
        assert_eq!(declared(&model, "v1")?, None);
        assert_eq!(declared(&model, "v1_vector")?, Some(vec![4]));
        assert_eq!(declared(&model, "v2")?, Some(vec![]));
    }
    Ok(())
}
