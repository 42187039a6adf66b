//! Typed attribute access and the errors it gives.

mod common;

use ckpt_graph::ckpt_proto::attr_value::Value;
use ckpt_graph::ckpt_proto::{DataType, GraphDef, NameAttrList, TensorShapeProto};
use ckpt_graph::{Error, Graph, Node};
use common::*;

fn conv() -> Result<Graph, Error> {
    let mut n = node("conv/Conv2D", "Conv2D", &[]);
    n = with_attr(n, "strides", ints(&[1, 2, 2, 1]));
    n = with_attr(n, "padding", Value::S(b"SAME".to_vec()));
    n = with_attr(n, "T", dtype(DataType::DtFloat));
    n = with_attr(n, "use_cudnn_on_gpu", Value::B(true));
    n = with_attr(n, "epsilon", Value::F(0.001));
    n = with_attr(n, "N", Value::I(3));
    n = with_attr(n, "shape", shape(&[-1, 28, 28, 1]));
    n = with_attr(n, "Tout", dtypes(&[DataType::DtFloat, DataType::DtInt64]));
    n = with_attr(n, "empty", Value::List(Box::default()));
    n = with_attr(
        n,
        "unknown",
        Value::Shape(TensorShapeProto {
            dim: vec![],
            unknown_rank: true,
        }),
    );
    n = with_attr(n, "scalar", shape(&[]));
    n = with_attr(n, "bad_dim", shape(&[3, -7]));
    n = with_attr(n, "bad_type", Value::Type(999));
    n = with_attr(n, "latin1", Value::S(vec![b'a', 0xff]));
    n = with_attr(
        n,
        "then_branch",
        Value::Func(Box::new(NameAttrList {
            name: "cond_true_1".into(),
            attr: Default::default(),
        })),
    );
    let def = GraphDef {
        node: vec![n, string_const("names", &["a", "b"])],
        ..Default::default()
    };
    Graph::from_graph_def(&def)
}

fn conv_node(g: &Graph) -> Result<&Node, Error> {
    Ok(g.node(g.node_by_name("conv/Conv2D")?))
}

#[test]
fn typed_accessors_return_values() -> TestResult {
    let g = conv()?;
    let n = conv_node(&g)?;
    assert_eq!(n.attr_ints("strides")?, [1, 2, 2, 1]);
    assert_eq!(n.attr_string("padding")?, "SAME");
    assert_eq!(n.attr_bytes("padding")?, b"SAME");
    assert_eq!(n.attr_dtype("T")?, DataType::DtFloat);
    assert!(n.attr_bool("use_cudnn_on_gpu")?);
    assert_eq!(n.attr_f32("epsilon")?, 0.001);
    assert_eq!(n.attr_i64("N")?, 3);
    assert_eq!(n.attr_shape("shape")?, Some(vec![-1, 28, 28, 1]));
    assert_eq!(n.attr_shape("unknown")?, None);
    assert_eq!(n.attr_shape("scalar")?, Some(vec![]));
    assert_eq!(
        n.attr_dtypes("Tout")?,
        [DataType::DtFloat, DataType::DtInt64]
    );
    assert_eq!(n.attr_func("then_branch")?.name, "cond_true_1");
    assert_eq!(n.attr_string("latin1")?, "a\u{fffd}");
    // An empty list reads as an empty list of any element type.
    assert!(n.attr_ints("empty")?.is_empty());
    assert!(n.attr_dtypes("empty")?.is_empty());
    assert!(n.attr_strings("empty")?.is_empty());

    let names = g.node(g.node_by_name("names")?);
    let t = names.attr_tensor("value")?;
    assert_eq!(t.string_val, [b"a".to_vec(), b"b".to_vec()]);
    Ok(())
}

#[test]
fn defaults_apply_only_when_absent() -> TestResult {
    let g = conv()?;
    let n = conv_node(&g)?;
    assert_eq!(n.attr_ints_or("dilations", &[1, 1, 1, 1])?, [1, 1, 1, 1]);
    assert_eq!(n.attr_ints_or("strides", &[9])?, [1, 2, 2, 1]);
    assert_eq!(n.attr_string_or("data_format", "NHWC")?, "NHWC");
    assert_eq!(n.attr_string_or("padding", "VALID")?, "SAME");
    assert_eq!(
        n.attr_dtype_or("output_type", DataType::DtInt64)?,
        DataType::DtInt64
    );
    assert_eq!(n.attr_i64_or("N", 7)?, 3);
    assert_eq!(n.attr_f32_or("alpha", 0.2)?, 0.2);
    assert!(!n.attr_bool_or("transpose_a", false)?);
    // A present attribute of the wrong type is still an error.
    let err = expect_err(n.attr_i64_or("padding", 0))?;
    assert!(matches!(err, Error::AttrType { .. }));
    Ok(())
}

#[test]
fn errors_name_node_op_and_attribute() -> TestResult {
    let g = conv()?;
    let n = conv_node(&g)?;
    assert_eq!(
        expect_err(n.attr_ints("dilations"))?.to_string(),
        "node \"conv/Conv2D\" (Conv2D): attribute \"dilations\" is missing"
    );
    assert_eq!(
        expect_err(n.attr_ints("padding"))?.to_string(),
        "node \"conv/Conv2D\" (Conv2D): attribute \"padding\" has type string, expected list(int)"
    );
    assert_eq!(
        expect_err(n.attr_i64("strides"))?.to_string(),
        "node \"conv/Conv2D\" (Conv2D): attribute \"strides\" has type list(int), expected int"
    );
    assert_eq!(
        expect_err(n.attr_dtypes("strides"))?.to_string(),
        "node \"conv/Conv2D\" (Conv2D): attribute \"strides\" has type list(int), expected list(type)"
    );
    assert_eq!(
        expect_err(n.attr_dtype("bad_type"))?.to_string(),
        "node \"conv/Conv2D\" (Conv2D): attribute \"bad_type\" holds unknown dtype 999"
    );
    assert_eq!(
        expect_err(n.attr_shape("bad_dim"))?.to_string(),
        "node \"conv/Conv2D\" (Conv2D): attribute \"bad_dim\" has invalid dimension size -7"
    );
    for (err, found, expected) in [
        (expect_err(n.attr_f32("N"))?, "int", "float"),
        (expect_err(n.attr_bool("epsilon"))?, "float", "bool"),
        (expect_err(n.attr_string("T"))?, "type", "string"),
        (expect_err(n.attr_dtype("shape"))?, "shape", "type"),
        (
            expect_err(n.attr_shape("use_cudnn_on_gpu"))?,
            "bool",
            "shape",
        ),
        (expect_err(n.attr_tensor("then_branch"))?, "func", "tensor"),
        (expect_err(n.attr_func("Tout"))?, "list(type)", "func"),
    ] {
        match err {
            Error::AttrType {
                found: f,
                expected: e,
                ..
            } => assert_eq!((f, e), (found, expected)),
            other => return Err(format!("unexpected error {other}").into()),
        }
    }
    Ok(())
}

#[test]
fn num_outputs_follows_list_attrs() -> TestResult {
    let mut unpack = Node::new("u", "Unpack");
    unpack.attrs.insert(
        "num".into(),
        ckpt_graph::ckpt_proto::AttrValue {
            value: Some(Value::I(4)),
        },
    );
    assert_eq!(unpack.num_outputs()?, Some(4));
    assert_eq!(Node::new("m", "Merge").num_outputs()?, Some(2));
    assert_eq!(Node::new("n", "NoOp").num_outputs()?, Some(0));
    assert_eq!(Node::new("c", "SomeCustomOp").num_outputs()?, None);
    assert!(
        matches!(
            Node::new("i", "If").num_outputs(),
            Err(Error::MissingAttr { ref attr, .. }) if attr == "Tout"
        ),
        "Tout is missing"
    );
    Ok(())
}
