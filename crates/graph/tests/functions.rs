//! FunctionDef import: `_Arg` nodes, `node:out_arg:k` flattening, `ret` resolution.

mod common;

use std::collections::BTreeMap;

use ckpt_graph::ckpt_proto::attr_value::Value;
use ckpt_graph::ckpt_proto::op_def::ArgDef;
use ckpt_graph::ckpt_proto::{
    DataType, FunctionDef, FunctionDefLibrary, GraphDef, MetaGraphDef, MetaInfoDef, NodeDef, OpDef,
    OpList,
};
use ckpt_graph::{Error, Function, Model, Output, ARG_OP};
use common::*;

fn arg(name: &str, t: DataType) -> ArgDef {
    ArgDef {
        name: name.into(),
        r#type: t as i32,
        ..Default::default()
    }
}

fn function(
    name: &str,
    inputs: &[ArgDef],
    outputs: &[ArgDef],
    body: Vec<NodeDef>,
    ret: &[(&str, &str)],
) -> FunctionDef {
    FunctionDef {
        signature: Some(OpDef {
            name: name.into(),
            input_arg: inputs.to_vec(),
            output_arg: outputs.to_vec(),
            ..Default::default()
        }),
        node_def: body,
        ret: ret
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ..Default::default()
    }
}

/// A branch function shaped like TF 2.x's cond branches, with multi-output producers.
fn branch() -> FunctionDef {
    let body = vec![
        node("dropout/mul", "Mul", &["x", "x"]),
        with_attr(
            node("split", "Split", &["dim", "x"]),
            "num_split",
            Value::I(3),
        ),
        with_attr(node("unpack", "Unpack", &["x"]), "num", Value::I(2)),
        node("bn", "FusedBatchNormV3", &["x", "x", "x", "x", "x"]),
        with_attr(
            node("if", "If", &["flag", "x"]),
            "Tout",
            dtypes(&[DataType::DtFloat, DataType::DtFloat]),
        ),
        node("custom", "SomeCustomOp", &["x"]),
        node("dim", "Const", &[]),
        node(
            "sum",
            "AddN",
            &[
                "dropout/mul:z:0",
                "split:output:2",
                "unpack:output:1",
                "bn:batch_variance:0",
                "if:output:1",
                "custom:whatever:3",
                "x",
                "^dropout/mul",
            ],
        ),
    ];
    let mut f = function(
        "cond_true_7",
        &[arg("x", DataType::DtFloat), arg("flag", DataType::DtBool)],
        &[
            arg("sum", DataType::DtFloat),
            arg("passthrough", DataType::DtFloat),
            arg("mean", DataType::DtFloat),
        ],
        body,
        &[
            ("sum", "sum:sum:0"),
            ("passthrough", "x"),
            ("mean", "bn:batch_mean:0"),
        ],
    );
    f.attr.insert(
        "_noinline".into(),
        ckpt_graph::ckpt_proto::AttrValue {
            value: Some(Value::B(true)),
        },
    );
    f
}

#[test]
fn arguments_become_arg_nodes_first() -> TestResult {
    let f = Function::from_function_def(&branch())?;
    assert_eq!(f.name, "cond_true_7");
    assert_eq!(f.arg_names, ["x", "flag"]);
    for (i, (name, t)) in [("x", DataType::DtFloat), ("flag", DataType::DtBool)]
        .iter()
        .enumerate()
    {
        let n = f.body.node(i);
        assert_eq!((n.name.as_str(), n.op.as_str()), (*name, ARG_OP));
        assert_eq!(n.attr_i64("index")?, i as i64);
        assert_eq!(n.attr_dtype("T")?, *t);
        assert_eq!(f.arg(i), Some(i));
    }
    assert_eq!(f.arg(2), None);
    assert!(f.attrs.contains_key("_noinline"));
    Ok(())
}

#[test]
fn body_inputs_flatten_through_output_arg_lists() -> TestResult {
    let f = Function::from_function_def(&branch())?;
    let id = |name: &str| f.body.find(name).ok_or(format!("no {name}"));
    let sum = f.body.node(id("sum")?);
    assert_eq!(
        sum.inputs,
        [
            Output::new(id("dropout/mul")?, 0),
            Output::new(id("split")?, 2),
            Output::new(id("unpack")?, 1),
            Output::new(id("bn")?, 2),
            Output::new(id("if")?, 1),
            // Not in the table: the index is taken as flat.
            Output::new(id("custom")?, 3),
            Output::new(0, 0),
        ]
    );
    assert_eq!(sum.control_inputs, [id("dropout/mul")?]);
    let mul = f.body.node(id("dropout/mul")?);
    assert_eq!(mul.inputs, [Output::new(0, 0), Output::new(0, 0)]);
    assert_eq!(f.output_names, ["sum", "passthrough", "mean"]);
    assert_eq!(
        f.outputs,
        [
            Output::new(id("sum")?, 0),
            Output::new(0, 0),
            Output::new(id("bn")?, 1)
        ]
    );
    // The body orders and prunes like any graph.
    let order = f.body.prune(&f.outputs[..1], &[])?;
    assert_eq!(order.last().copied(), Some(id("sum")?));
    Ok(())
}

fn body_error(body: Vec<NodeDef>) -> Error {
    let f = function("f", &[arg("x", DataType::DtFloat)], &[], body, &[]);
    match Function::from_function_def(&f) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn bad_body_inputs_are_errors_naming_function_node_and_input() -> TestResult {
    let err = body_error(vec![
        with_attr(node("u", "Unpack", &["x"]), "num", Value::I(2)),
        node("y", "Identity", &["u:output:2"]),
    ]);
    assert_eq!(
        err.to_string(),
        "function \"f\": node \"y\": malformed input \"u:output:2\" (output argument \"output\" of \"u\" (Unpack) has 2 tensor(s), index 2 is out of range)"
    );
    let err = body_error(vec![
        node("m", "Mul", &["x", "x"]),
        node("y", "Identity", &["m:product:0"]),
    ]);
    assert_eq!(
        err.to_string(),
        "function \"f\": node \"y\": malformed input \"m:product:0\" (op Mul has no output argument \"product\" (it has [\"z\"]))"
    );
    let err = body_error(vec![node("y", "Identity", &["m:z:0"])]);
    assert!(
        matches!(err, Error::InFunction { ref error, .. } if matches!(**error, Error::DanglingInput { .. }))
    );
    let err = body_error(vec![node("y", "Identity", &["a:b:c:d"])]);
    assert!(
        err.to_string()
            .contains("expected \"arg\", \"node:output_arg:index\" or \"^node\""),
        "{err}"
    );
    // Unpack without its `num` attribute cannot be sized.
    let err = body_error(vec![
        node("u", "Unpack", &["x"]),
        node("y", "Identity", &["u:output:0"]),
    ]);
    assert!(
        err.to_string().contains("attribute \"num\" is missing"),
        "{err}"
    );
    // An argument and a body node with the same name.
    let err = body_error(vec![node("x", "Const", &[])]);
    assert_eq!(err.to_string(), "function \"f\": duplicate node name \"x\"");
    Ok(())
}

#[test]
fn bad_signatures_and_rets_are_errors() -> TestResult {
    let f = function("f", &[], &[arg("out", DataType::DtFloat)], vec![], &[]);
    assert_eq!(
        expect_err(Function::from_function_def(&f))?.to_string(),
        "function \"f\": output \"out\" has no entry in `ret`"
    );
    let f = function(
        "f",
        &[],
        &[arg("out", DataType::DtFloat)],
        vec![],
        &[("out", "nope:z:0")],
    );
    assert_eq!(
        expect_err(Function::from_function_def(&f))?.to_string(),
        "function \"f\": output \"out\" returns \"nope:z:0\", but there is no node \"nope\""
    );
    let list = ArgDef {
        name: "xs".into(),
        number_attr: "N".into(),
        type_attr: "T".into(),
        ..Default::default()
    };
    let f = function("f", &[list], &[], vec![], &[]);
    assert_eq!(
        expect_err(Function::from_function_def(&f))?.to_string(),
        "function \"f\": input argument \"xs\" is a list of tensors, which is not supported"
    );
    let f = FunctionDef::default();
    assert!(matches!(
        Function::from_function_def(&f),
        Err(Error::BadFunction { .. })
    ));
    Ok(())
}

#[test]
fn polymorphic_argument_types_come_from_function_attrs_or_stay_placeholders() -> TestResult {
    let typed = ArgDef {
        name: "a".into(),
        type_attr: "T".into(),
        ..Default::default()
    };
    let open = ArgDef {
        name: "b".into(),
        type_attr: "U".into(),
        ..Default::default()
    };
    let mut f = function("poly", &[typed, open], &[], vec![], &[]);
    f.attr.insert(
        "T".into(),
        ckpt_graph::ckpt_proto::AttrValue {
            value: Some(dtype(DataType::DtInt32)),
        },
    );
    let f = Function::from_function_def(&f)?;
    assert_eq!(f.body.node(0).attr_dtype("T")?, DataType::DtInt32);
    let err = expect_err(f.body.node(1).attr_dtype("T"))?;
    assert_eq!(
        err.to_string(),
        "node \"b\" (_Arg): attribute \"T\" has type placeholder, expected type"
    );
    Ok(())
}

/// In a model, output lists of ops outside the table come from the MetaGraphDef's op list,
/// and calls of library functions use the callee's signature.
#[test]
fn models_resolve_outputs_through_op_list_and_library() -> TestResult {
    let helper = function(
        "helper",
        &[arg("x", DataType::DtFloat)],
        &[arg("a", DataType::DtFloat), arg("b", DataType::DtFloat)],
        vec![node("n", "Neg", &["x"])],
        &[("a", "n:y:0"), ("b", "x")],
    );
    let main = function(
        "main_fn",
        &[arg("x", DataType::DtFloat)],
        &[arg("r", DataType::DtFloat), arg("s", DataType::DtFloat)],
        vec![
            node("h", "helper", &["x"]),
            with_attr(node("my", "MyOp", &["x"]), "N", Value::I(3)),
        ],
        &[("r", "h:b:0"), ("s", "my:rest:0")],
    );
    let my_op = OpDef {
        name: "MyOp".into(),
        output_arg: vec![
            ArgDef {
                name: "parts".into(),
                number_attr: "N".into(),
                type_attr: "T".into(),
                ..Default::default()
            },
            arg("rest", DataType::DtFloat),
        ],
        attr: vec![ckpt_graph::ckpt_proto::op_def::AttrDef {
            name: "flavour".into(),
            r#type: "string".into(),
            default_value: Some(ckpt_graph::ckpt_proto::AttrValue {
                value: Some(Value::S(b"plain".to_vec())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let bad = function("broken", &[], &[arg("o", DataType::DtFloat)], vec![], &[]);
    let meta = MetaGraphDef {
        meta_info_def: Some(MetaInfoDef {
            stripped_op_list: Some(OpList { op: vec![my_op] }),
            ..Default::default()
        }),
        graph_def: Some(GraphDef {
            node: vec![node("top", "MyOp", &[])],
            library: Some(FunctionDefLibrary {
                function: vec![helper, main, bad],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let model = Model::from_meta_graph_def(&meta)?;
    let f = model.function("main_fn")?;
    let (h, my) = (f.body.node_by_name("h")?, f.body.node_by_name("my")?);
    assert_eq!(f.outputs, [Output::new(h, 1), Output::new(my, 3)]);
    // Defaults from the op list fill attributes the NodeDefs leave out, in the graph and in bodies.
    assert_eq!(model.graph.node(0).attr_string("flavour")?, "plain");
    assert_eq!(f.body.node(my).attr_string("flavour")?, "plain");

    assert_eq!(
        expect_err(model.function("broken"))?.to_string(),
        "function \"broken\" could not be imported: function \"broken\": output \"o\" has no entry in `ret`"
    );
    assert_eq!(
        expect_err(model.function("helpr"))?.to_string(),
        "no function named \"helpr\" in the graph's library; did you mean \"helper\"?"
    );
    let names: Vec<&String> = model.functions.keys().collect();
    assert_eq!(names, ["helper", "main_fn"]);
    let _: &BTreeMap<String, String> = &model.function_errors;
    Ok(())
}
