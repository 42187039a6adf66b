//! Behaviour of `Session` on small hand-built graphs: control flow, functions, dropout
//! rewriting, feeds, and the errors a user meets.

mod common;

use std::collections::BTreeMap;

use ckpt_bundle::Checkpoint;
use ckpt_graph::ckpt_proto::attr_value::{ListValue, Value as Attr};
use ckpt_graph::ckpt_proto::op_def::ArgDef;
use ckpt_graph::ckpt_proto::tensor_shape_proto::Dim;
use ckpt_graph::ckpt_proto::{
    AttrValue, DataType, FunctionDef, FunctionDefLibrary, GraphDef, NameAttrList, NodeDef, OpDef,
    TensorProto, TensorShapeProto,
};
use ckpt_graph::Model;
use ckpt_runtime::{Error, Session, SessionOptions, Value};
use common::{fixtures, TestResult};

fn attr(v: Attr) -> AttrValue {
    AttrValue { value: Some(v) }
}

fn float() -> AttrValue {
    attr(Attr::Type(DataType::DtFloat as i32))
}

fn shape(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

fn node(name: &str, op: &str, inputs: &[&str], attrs: &[(&str, AttrValue)]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        device: String::new(),
        attr: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    }
}

fn placeholder(name: &str, dtype: DataType, dims: Option<&[i64]>) -> NodeDef {
    let mut attrs = vec![("dtype", attr(Attr::Type(dtype as i32)))];
    if let Some(d) = dims {
        attrs.push(("shape", attr(Attr::Shape(shape(d)))));
    }
    node(name, "Placeholder", &[], &attrs)
}

fn const_f32(name: &str, dims: &[i64], values: &[f32], control: &[&str]) -> NodeDef {
    let t = TensorProto {
        dtype: DataType::DtFloat as i32,
        tensor_shape: Some(shape(dims)),
        float_val: values.to_vec(),
        ..Default::default()
    };
    let inputs: Vec<String> = control.iter().map(|c| format!("^{c}")).collect();
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    node(
        name,
        "Const",
        &inputs,
        &[
            ("dtype", float()),
            ("value", attr(Attr::Tensor(Box::new(t)))),
        ],
    )
}

fn const_i32(name: &str, dims: &[i64], values: &[i32]) -> NodeDef {
    let t = TensorProto {
        dtype: DataType::DtInt32 as i32,
        tensor_shape: Some(shape(dims)),
        int_val: values.to_vec(),
        ..Default::default()
    };
    node(
        name,
        "Const",
        &[],
        &[
            ("dtype", attr(Attr::Type(DataType::DtInt32 as i32))),
            ("value", attr(Attr::Tensor(Box::new(t)))),
        ],
    )
}

fn model(nodes: Vec<NodeDef>) -> Result<Model, ckpt_graph::Error> {
    Model::from_graph_def(&GraphDef {
        node: nodes,
        ..Default::default()
    })
}

fn f32s(v: &Value) -> TestResult<Vec<f32>> {
    Ok(v.as_f32().ok_or("expected float32")?.to_vec())
}

fn x23() -> TestResult<Value> {
    Ok(Value::new(
        vec![2, 3],
        vec![1.0f32, -2.0, 3.0, -4.0, 5.0, -6.0],
    )?)
}

#[test]
fn every_unsupported_op_is_named_once_with_a_count_and_an_example() -> TestResult {
    let m = model(vec![
        placeholder("x", DataType::DtFloat, None),
        node("a/fancy", "FancyOp", &["x"], &[("T", float())]),
        node("b/other", "OtherOp", &["a/fancy"], &[("T", float())]),
        node("c/fancy", "FancyOp", &["b/other"], &[("T", float())]),
        node("y", "Relu", &["c/fancy"], &[("T", float())]),
        // Saving and training ops the fetch does not need are never reported.
        node("save/SaveV2", "SaveV2", &["x"], &[]),
        node("train/ApplyAdam", "ApplyAdam", &["x"], &[]),
    ])?;
    let err = Session::new(&m, None, &["y"], &["x"], SessionOptions::default())
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "2 unsupported ops: FancyOp (2 nodes, e.g. a/fancy), OtherOp (1 node, e.g. b/other)"
    );
    let Error::UnsupportedOps { ops } = &err else {
        return Err(format!("unexpected error {err:?}").into());
    };
    assert_eq!(ops[0].op, "FancyOp");
    assert_eq!(ops[0].nodes, 2);
    assert_eq!(ops[1].example, "b/other");
    assert_eq!(
        ckpt_runtime::unsupported_ops(&m, &["y", "save/SaveV2"])?
            .iter()
            .map(|o| o.op.as_str())
            .collect::<Vec<_>>(),
        ["FancyOp", "OtherOp", "SaveV2"]
    );
    assert!(ckpt_runtime::unsupported_ops(&m, &["x"])?.is_empty());
    Ok(())
}

#[test]
fn unknown_fetch_suggests_close_names() -> TestResult {
    let m = model(vec![
        placeholder("x", DataType::DtFloat, None),
        node("logits", "Relu", &["x"], &[("T", float())]),
    ])?;
    let err = Session::new(&m, None, &["logit"], &["x"], SessionOptions::default())
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "no node named \"logit\"; did you mean \"logits\"?"
    );
    Ok(())
}

#[test]
fn unfed_placeholders_are_named_with_a_hint() -> TestResult {
    let m = model(vec![
        placeholder("x", DataType::DtFloat, Some(&[-1, 3])),
        placeholder("keep_prob", DataType::DtFloat, Some(&[])),
        node("y", "Mul", &["x", "keep_prob"], &[("T", float())]),
    ])?;
    let err = Session::new(&m, None, &["y"], &["x"], SessionOptions::default())
        .err()
        .ok_or("expected an error")?;
    assert!(
        matches!(&err, Error::UnfedPlaceholder { name, .. } if name == "keep_prob"),
        "{err}"
    );
    assert!(err.to_string().contains("feed 1.0"), "{err}");
    // Declared at build time but missing at run time.
    let s = Session::new(
        &m,
        None,
        &["y"],
        &["x", "keep_prob"],
        SessionOptions::default(),
    )?;
    let err = s.run(&[("x", x23()?)]).err().ok_or("expected an error")?;
    assert!(err.to_string().contains("keep_prob"), "{err}");
    // An unknown feed name.
    let err = s.run(&[
        ("x", x23()?),
        ("keep_prob", Value::scalar(1.0f32)),
        ("z", Value::scalar(1.0f32)),
    ]);
    assert!(matches!(err, Err(Error::UnknownFeed { .. })));
    Ok(())
}

#[test]
fn feeds_are_cast_and_checked_against_the_static_shape() -> TestResult {
    let m = model(vec![
        placeholder("x", DataType::DtFloat, Some(&[-1, 3])),
        node("y", "Neg", &["x"], &[("T", float())]),
    ])?;
    let s = Session::new(&m, None, &["y"], &["x"], SessionOptions::default())?;
    // float64 and int64 feeds become float32, as feed_dict converts them.
    let out = s.run(&[("x", Value::new(vec![1, 3], vec![1.0f64, 2.0, 3.0])?)])?;
    assert_eq!(f32s(&out[0])?, vec![-1.0, -2.0, -3.0]);
    let out = s.run(&[("x:0", Value::new(vec![1, 3], vec![1i64, 2, 3])?)])?;
    assert_eq!(f32s(&out[0])?, vec![-1.0, -2.0, -3.0]);
    let err = s
        .run(&[("x", Value::new(vec![3, 2], vec![0.0f32; 6])?)])
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "feed \"x\": shape [3, 2] does not match the placeholder's shape [?,3]"
    );
    let err = s.run(&[("x", Value::new(vec![3], vec![0.0f32; 3])?)]);
    assert!(matches!(err, Err(Error::FeedShape { .. })));
    Ok(())
}

#[test]
fn matmul_shape_mismatch_names_the_node_and_both_shapes() -> TestResult {
    let m = model(vec![
        placeholder("x", DataType::DtFloat, None),
        const_f32("w", &[300, 10], &[0.5], &[]),
        node("dense/MatMul", "MatMul", &["x", "w"], &[("T", float())]),
    ])?;
    let s = Session::new(
        &m,
        None,
        &["dense/MatMul"],
        &["x"],
        SessionOptions::default(),
    )?;
    let err = s
        .run(&[("x", Value::new(vec![64, 784], vec![0.0f32; 64 * 784])?)])
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "node \"dense/MatMul\" (MatMul): inner dimensions disagree: [64,784] x [300,10]"
    );
    Ok(())
}

#[test]
fn variables_need_a_checkpoint_and_every_missing_one_is_named() -> TestResult {
    let mlp = fixtures().join("mlp");
    let m = Model::load(&mlp.join("model.ckpt-150.meta"))?;
    let err = Session::new(
        &m,
        None,
        &["pred"],
        &["x", "keep_prob"],
        SessionOptions::default(),
    )
    .err()
    .ok_or("expected an error")?;
    match &err {
        Error::NoCheckpoint { names } => assert_eq!(names.len(), 6, "{err}"),
        other => return Err(format!("unexpected error {other}").into()),
    }
    // The LeNet checkpoint holds none of the MLP's variables.
    let other = Checkpoint::open(fixtures().join("lenet/model.ckpt"))?;
    let err = Session::new(
        &m,
        Some(&other),
        &["pred"],
        &["x", "keep_prob"],
        SessionOptions::default(),
    )
    .err()
    .ok_or("expected an error")?;
    let msg = err.to_string();
    for v in [
        "fc1/weights",
        "fc1/biases",
        "fc2/weights",
        "fc2/biases",
        "fc3/weights",
        "fc3/biases",
    ] {
        assert!(msg.contains(v), "{msg}");
    }
    Ok(())
}

/// x, p -> Switch -> (false: Identity, true: Neg and a Const under `^switch_t`) -> Merge.
fn cond_model() -> Result<Model, ckpt_graph::Error> {
    let bool_t = attr(Attr::Type(DataType::DtBool as i32));
    model(vec![
        placeholder("x", DataType::DtFloat, None),
        placeholder("p", DataType::DtBool, Some(&[])),
        node("cond/Switch", "Switch", &["x", "p"], &[("T", float())]),
        node("cond/pred_switch", "Switch", &["p", "p"], &[("T", bool_t)]),
        node("cond/switch_t", "Identity", &["cond/pred_switch:1"], &[]),
        node(
            "cond/false",
            "Identity",
            &["cond/Switch:0"],
            &[("T", float())],
        ),
        node("cond/neg", "Neg", &["cond/Switch:1"], &[("T", float())]),
        const_f32("cond/ten", &[], &[10.0], &["cond/switch_t"]),
        node(
            "cond/true",
            "Add",
            &["cond/neg", "cond/ten"],
            &[("T", float())],
        ),
        node(
            "cond/Merge",
            "Merge",
            &["cond/false", "cond/true"],
            &[("T", float()), ("N", attr(Attr::I(2)))],
        ),
    ])
}

#[test]
fn switch_and_merge_forward_the_live_branch() -> TestResult {
    let m = cond_model()?;
    let s = Session::new(
        &m,
        None,
        &["cond/Merge:0", "cond/Merge:1"],
        &["x", "p"],
        SessionOptions::default(),
    )?;
    let out = s.run(&[("x", x23()?), ("p", Value::scalar(false))])?;
    assert_eq!(f32s(&out[0])?, vec![1.0, -2.0, 3.0, -4.0, 5.0, -6.0]);
    assert_eq!(out[1].as_i32(), Some(&[0][..]));
    let out = s.run(&[("x", x23()?), ("p", Value::scalar(true))])?;
    assert_eq!(f32s(&out[0])?, vec![9.0, 12.0, 7.0, 14.0, 5.0, 16.0]);
    assert_eq!(out[1].as_i32(), Some(&[1][..]));
    // A tensor on the untaken branch cannot be fetched.
    let s = Session::new(
        &m,
        None,
        &["cond/true"],
        &["x", "p"],
        SessionOptions::default(),
    )?;
    let err = s.run(&[("x", x23()?), ("p", Value::scalar(false))]);
    assert!(matches!(err, Err(Error::DeadFetch { .. })), "{err:?}");
    Ok(())
}

fn arg(name: &str) -> ArgDef {
    ArgDef {
        name: name.into(),
        r#type: DataType::DtFloat as i32,
        ..Default::default()
    }
}

/// A one-argument, one-result function whose body is `body` (reading argument `x`) returning
/// `ret`.
fn function(name: &str, body: Vec<NodeDef>, ret: &str) -> FunctionDef {
    FunctionDef {
        signature: Some(OpDef {
            name: name.into(),
            input_arg: vec![arg("x")],
            output_arg: vec![arg("out")],
            ..Default::default()
        }),
        node_def: body,
        ret: BTreeMap::from([("out".to_string(), ret.to_string())]),
        ..Default::default()
    }
}

fn if_model(op: &str, then_body: Vec<NodeDef>, then_ret: &str) -> Result<Model, ckpt_graph::Error> {
    let func = |n: &str| {
        attr(Attr::Func(Box::new(NameAttrList {
            name: n.into(),
            attr: BTreeMap::new(),
        })))
    };
    let types = |t: DataType| {
        attr(Attr::List(Box::new(ListValue {
            r#type: vec![t as i32],
            ..Default::default()
        })))
    };
    let library = FunctionDefLibrary {
        function: vec![
            function("then_fn", then_body, then_ret),
            function(
                "else_fn",
                vec![node("id", "Identity", &["x"], &[("T", float())])],
                "id:output:0",
            ),
        ],
        ..Default::default()
    };
    let nodes = vec![
        placeholder("x", DataType::DtFloat, None),
        placeholder("p", DataType::DtBool, Some(&[])),
        node(
            "cond",
            op,
            &["p", "x"],
            &[
                ("then_branch", func("then_fn")),
                ("else_branch", func("else_fn")),
                ("Tcond", attr(Attr::Type(DataType::DtBool as i32))),
                ("Tin", types(DataType::DtFloat)),
                ("Tout", types(DataType::DtFloat)),
            ],
        ),
        node("y", "Identity", &["cond"], &[("T", float())]),
    ];
    Model::from_graph_def(&GraphDef {
        node: nodes,
        library: Some(library),
        ..Default::default()
    })
}

#[test]
fn if_runs_the_chosen_branch_function() -> TestResult {
    for op in ["If", "StatelessIf"] {
        let m = if_model(
            op,
            vec![node("neg", "Neg", &["x"], &[("T", float())])],
            "neg:y:0",
        )?;
        let s = Session::new(&m, None, &["y"], &["x", "p"], SessionOptions::default())?;
        let out = s.run(&[("x", x23()?), ("p", Value::scalar(true))])?;
        assert_eq!(f32s(&out[0])?, vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]);
        let out = s.run(&[("x", x23()?), ("p", Value::scalar(false))])?;
        assert_eq!(f32s(&out[0])?, vec![1.0, -2.0, 3.0, -4.0, 5.0, -6.0]);
    }
    Ok(())
}

#[test]
fn unsupported_ops_inside_branch_functions_are_reported_with_the_rest() -> TestResult {
    let m = if_model(
        "If",
        vec![node("lg", "Lgamma", &["x"], &[("T", float())])],
        "lg:y:0",
    )?;
    let err = Session::new(&m, None, &["y"], &["x", "p"], SessionOptions::default())
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "1 unsupported op: Lgamma (1 node, e.g. lg (in function then_fn))"
    );
    Ok(())
}

/// TF2's dropout with a hard-coded rate: SelectV2(RandomUniform(shape(x)) >= 0.5, x * 2, 0).
fn rate_dropout(prefix: &str, x: &str) -> Vec<NodeDef> {
    let p = |s: &str| format!("{prefix}/{s}");
    vec![
        node(&p("Shape"), "Shape", &[x], &[("T", float())]),
        node(
            &p("random_uniform"),
            "RandomUniform",
            &[&p("Shape")],
            &[
                ("dtype", float()),
                ("T", attr(Attr::Type(DataType::DtInt32 as i32))),
            ],
        ),
        const_f32(&p("rate"), &[], &[0.5], &[]),
        node(
            &p("GreaterEqual"),
            "GreaterEqual",
            &[&p("random_uniform"), &p("rate")],
            &[("T", float())],
        ),
        const_f32(&p("scale"), &[], &[2.0], &[]),
        node(&p("Mul"), "Mul", &[x, &p("scale")], &[("T", float())]),
        const_f32(&p("zeros"), &[], &[0.0], &[]),
        node(
            &p("SelectV2"),
            "SelectV2",
            &[&p("GreaterEqual"), &p("Mul"), &p("zeros")],
            &[("T", float())],
        ),
    ]
}

#[test]
fn inference_mode_turns_hard_coded_dropout_into_identity() -> TestResult {
    let big = Value::new(
        vec![4, 256],
        (0..1024).map(|i| i as f32 + 1.0).collect::<Vec<_>>(),
    )?;
    // TF 2.x form.
    let mut nodes = vec![placeholder("x", DataType::DtFloat, None)];
    nodes.extend(rate_dropout("dropout", "x"));
    nodes.push(node("y", "Relu", &["dropout/SelectV2"], &[("T", float())]));
    // TF <= 1.12 keep_prob form on top: Mul(RealDiv(y, kp), Floor(kp + U)).
    nodes.extend([
        const_f32("kp", &[], &[0.5], &[]),
        node("d2/Shape", "Shape", &["y"], &[("T", float())]),
        node(
            "d2/random_uniform",
            "RandomUniform",
            &["d2/Shape"],
            &[("dtype", float()), ("seed", attr(Attr::I(7)))],
        ),
        node(
            "d2/add",
            "AddV2",
            &["kp", "d2/random_uniform"],
            &[("T", float())],
        ),
        node("d2/Floor", "Floor", &["d2/add"], &[("T", float())]),
        node("d2/div", "RealDiv", &["y", "kp"], &[("T", float())]),
        node("d2/mul", "Mul", &["d2/div", "d2/Floor"], &[("T", float())]),
    ]);
    let m = model(nodes)?;
    let training = Session::new(&m, None, &["d2/mul"], &["x"], SessionOptions::default())?;
    let out = training.run(&[("x", big.clone())])?;
    assert_ne!(out[0], big, "dropout at rate 0.5 should change the values");
    let inference = Session::new(
        &m,
        None,
        &["d2/mul"],
        &["x"],
        SessionOptions {
            inference: true,
            ..Default::default()
        },
    )?;
    let out = inference.run(&[("x", big.clone())])?;
    assert_eq!(out[0], big);
    assert_eq!(inference.num_steps(), 1, "only the Relu should remain");
    Ok(())
}

#[test]
fn inference_mode_takes_the_else_branch_of_a_dropout_if() -> TestResult {
    let mut then_body = rate_dropout("dropout", "x");
    then_body.push(node(
        "out",
        "Identity",
        &["dropout/SelectV2"],
        &[("T", float())],
    ));
    let m = if_model("StatelessIf", then_body, "out:output:0")?;
    let big = Value::new(
        vec![4, 256],
        (0..1024).map(|i| i as f32 + 1.0).collect::<Vec<_>>(),
    )?;
    let plain = Session::new(&m, None, &["y"], &["x", "p"], SessionOptions::default())?;
    let out = plain.run(&[("x", big.clone()), ("p", Value::scalar(true))])?;
    assert_ne!(out[0], big);
    let inference = Session::new(
        &m,
        None,
        &["y"],
        &["x", "p"],
        SessionOptions {
            inference: true,
            ..Default::default()
        },
    )?;
    let out = inference.run(&[("x", big.clone()), ("p", Value::scalar(true))])?;
    assert_eq!(out[0], big);
    Ok(())
}

#[test]
fn inference_mode_takes_the_false_side_of_a_dropout_cond() -> TestResult {
    // A TF1 cond whose true branch is dropout, with the predicate fed true (training).
    let bool_t = attr(Attr::Type(DataType::DtBool as i32));
    let mut nodes = vec![
        placeholder("x", DataType::DtFloat, None),
        placeholder("training", DataType::DtBool, Some(&[])),
        node("cond/pred_id", "Identity", &["training"], &[("T", bool_t)]),
        node(
            "cond/Switch",
            "Switch",
            &["x", "cond/pred_id"],
            &[("T", float())],
        ),
        node(
            "cond/Identity",
            "Identity",
            &["cond/Switch:0"],
            &[("T", float())],
        ),
        node(
            "cond/x_true",
            "Identity",
            &["cond/Switch:1"],
            &[("T", float())],
        ),
    ];
    nodes.extend(rate_dropout("cond/dropout", "cond/x_true"));
    nodes.push(node(
        "cond/Merge",
        "Merge",
        &["cond/Identity", "cond/dropout/SelectV2"],
        &[("T", float()), ("N", attr(Attr::I(2)))],
    ));
    let m = model(nodes)?;
    let big = Value::new(
        vec![4, 256],
        (0..1024).map(|i| i as f32 + 1.0).collect::<Vec<_>>(),
    )?;
    let plain = Session::new(
        &m,
        None,
        &["cond/Merge"],
        &["x", "training"],
        SessionOptions::default(),
    )?;
    assert_ne!(
        plain.run(&[("x", big.clone()), ("training", Value::scalar(true))])?[0],
        big
    );
    assert_eq!(
        plain.run(&[("x", big.clone()), ("training", Value::scalar(false))])?[0],
        big
    );
    let inference = Session::new(
        &m,
        None,
        &["cond/Merge"],
        &["x", "training"],
        SessionOptions {
            inference: true,
            ..Default::default()
        },
    )?;
    assert_eq!(
        inference.run(&[("x", big.clone()), ("training", Value::scalar(true))])?[0],
        big
    );
    Ok(())
}

#[test]
fn constants_fold_at_build_time_and_defaults_apply() -> TestResult {
    let m = model(vec![
        const_i32("dims", &[2], &[2, 3]),
        const_f32("v", &[], &[1.5], &[]),
        node("filled", "Fill", &["dims", "v"], &[("T", float())]),
        node(
            "pwd",
            "PlaceholderWithDefault",
            &["filled"],
            &[
                ("dtype", float()),
                ("shape", attr(Attr::Shape(shape(&[2, 3])))),
            ],
        ),
        node("y", "Square", &["pwd"], &[("T", float())]),
    ])?;
    let s = Session::new(&m, None, &["y"], &[], SessionOptions::default())?;
    assert_eq!(s.num_steps(), 0, "everything is constant");
    assert_eq!(f32s(&s.run(&[])?[0])?, vec![2.25; 6]);
    // Feeding the PlaceholderWithDefault replaces its default.
    let s = Session::new(&m, None, &["y"], &["pwd"], SessionOptions::default())?;
    assert_eq!(
        f32s(&s.run(&[("pwd", x23()?)])?[0])?,
        vec![1.0, 4.0, 9.0, 16.0, 25.0, 36.0]
    );
    Ok(())
}

#[test]
fn sessions_run_concurrently_and_repeatably() -> TestResult {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Session>();
    let m = cond_model()?;
    let s = Session::new(
        &m,
        None,
        &["cond/Merge"],
        &["x", "p"],
        SessionOptions {
            threads: Some(2),
            ..Default::default()
        },
    )?;
    std::thread::scope(|scope| -> TestResult {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let s = &s;
                scope.spawn(move || -> Result<Vec<Value>, Error> {
                    s.run(&[
                        ("x", Value::new(vec![1], vec![i as f32])?),
                        ("p", Value::scalar(i % 2 == 0)),
                    ])
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let out = h.join().map_err(|_| "thread panicked")??;
            let want = if i % 2 == 0 {
                10.0 - i as f32
            } else {
                i as f32
            };
            assert_eq!(f32s(&out[0])?, vec![want]);
        }
        Ok(())
    })?;
    Ok(())
}

#[test]
fn partitioned_variable_parts_come_from_the_full_tensor() -> TestResult {
    let dir = fixtures().join("partitioned");
    let m = Model::load(&dir.join("model.ckpt.meta"))?;
    let bundle = Checkpoint::open(dir.join("model.ckpt"))?;
    let fetches = [
        "part/pv/part_1",
        "part/embedding/part_1/Read/ReadVariableOp",
        "part/grid/part_1_2",
        "plain",
    ];
    let s = Session::new(&m, Some(&bundle), &fetches, &[], SessionOptions::default())?;
    let out = s.run(&[])?;
    let full = |name: &str| -> TestResult<Vec<f32>> {
        Ok(bundle.read(name)?.as_slice::<f32>()?.into_owned())
    };
    // pv [6,2] in 3 parts of 2 rows: part 1 is rows 2..4.
    assert_eq!(out[0].shape(), &[2, 2]);
    assert_eq!(f32s(&out[0])?, full("part/pv")?[4..8].to_vec());
    // embedding [7,3] in parts of 4 and 3 rows: part 1 is rows 4..7.
    assert_eq!(out[1].shape(), &[3, 3]);
    assert_eq!(f32s(&out[1])?, full("part/embedding")?[12..21].to_vec());
    // grid [4,6]: part (1,2) is rows 2..4, columns 4..6.
    let g = full("part/grid")?;
    assert_eq!(
        f32s(&out[2])?,
        vec![g[2 * 6 + 4], g[2 * 6 + 5], g[3 * 6 + 4], g[3 * 6 + 5]]
    );
    assert_eq!(f32s(&out[3])?, vec![1.0, 2.0, 3.0]);
    Ok(())
}

#[test]
fn hostile_attributes_and_shapes_are_errors_not_panics() -> TestResult {
    let ints = |v: &[i64]| {
        attr(Attr::List(Box::new(ListValue {
            i: v.to_vec(),
            ..Default::default()
        })))
    };
    let s = |v: &str| attr(Attr::S(v.as_bytes().to_vec()));
    // A convolution padded by 2^30 on each side.
    let m = model(vec![
        placeholder("x", DataType::DtFloat, None),
        const_f32("w", &[1, 1, 1, 1], &[1.0], &[]),
        node(
            "conv",
            "Conv2D",
            &["x", "w"],
            &[
                ("T", float()),
                ("strides", ints(&[1, 1, 1, 1])),
                ("padding", s("EXPLICIT")),
                (
                    "explicit_paddings",
                    ints(&[0, 0, 1 << 30, 1 << 30, 0, 0, 0, 0]),
                ),
            ],
        ),
    ])?;
    let err = Session::new(&m, None, &["conv"], &["x"], SessionOptions::default())
        .err()
        .ok_or("expected an error")?;
    assert!(err.to_string().contains("explicit_paddings"), "{err}");
    // Strides of zero.
    let m = model(vec![
        placeholder("x", DataType::DtFloat, None),
        node(
            "pool",
            "MaxPool",
            &["x"],
            &[
                ("T", float()),
                ("ksize", ints(&[1, 2, 2, 1])),
                ("strides", ints(&[1, 0, 1, 1])),
                ("padding", s("VALID")),
            ],
        ),
    ])?;
    assert!(matches!(
        Session::new(&m, None, &["pool"], &["x"], SessionOptions::default()),
        Err(Error::Node { node, op, message }) if node == "pool"
            && op == "MaxPool"
            && message == r#"attribute "strides" must be [1, h, w, 1] with h, w >= 1, got [1, 0, 1, 1]"#
    ));
    // A fill of 2^40 elements, computed at plan time from constants.
    let m = model(vec![
        const_i32("dims", &[2], &[1 << 20, 1 << 20]),
        const_f32("v", &[], &[0.0], &[]),
        node("big", "Fill", &["dims", "v"], &[("T", float())]),
    ])?;
    let err = Session::new(&m, None, &["big"], &[], SessionOptions::default())
        .err()
        .ok_or("expected an error")?;
    assert!(
        err.to_string().contains("more than the memory budget"),
        "{err}"
    );
    // A constant whose tensor_content does not match its shape.
    let bad = TensorProto {
        dtype: DataType::DtFloat as i32,
        tensor_shape: Some(shape(&[4])),
        tensor_content: vec![0; 7],
        ..Default::default()
    };
    let m = model(vec![node(
        "c",
        "Const",
        &[],
        &[
            ("dtype", float()),
            ("value", attr(Attr::Tensor(Box::new(bad)))),
        ],
    )])?;
    let err = Session::new(&m, None, &["c"], &[], SessionOptions::default())
        .err()
        .ok_or("expected an error")?;
    assert!(
        err.to_string().contains("tensor_content has 7 bytes"),
        "{err}"
    );
    Ok(())
}

/// A TF2-style call chain: the main graph passes a variable's handle to `outer`, which passes
/// it on to `inner`, which reads it with `ReadVariableOp`. The variable is read from the
/// checkpoint once, bound into both function plans as a constant, and everything computed
/// from it alone (the read, the `Square`) is folded when the plan is built: only the `Mul`
/// with the fed input runs.
#[test]
fn resource_arguments_flow_into_nested_functions() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("vars");
    let mut writer = ckpt_bundle::BundleWriter::create(&prefix)?;
    writer.add(
        "w",
        &ckpt_bundle::Tensor::from_vec(vec![3], vec![1.0f32, 2.0, 3.0])?,
    )?;
    writer.finish()?;
    let bundle = Checkpoint::open(&prefix)?;

    let resource = ArgDef {
        name: "h".into(),
        r#type: DataType::DtResource as i32,
        ..Default::default()
    };
    let func = |n: &str| {
        attr(Attr::Func(Box::new(NameAttrList {
            name: n.into(),
            attr: BTreeMap::new(),
        })))
    };
    let two_args = |name: &str, body: Vec<NodeDef>, ret: &str| FunctionDef {
        signature: Some(OpDef {
            name: name.into(),
            input_arg: vec![arg("x"), resource.clone()],
            output_arg: vec![arg("out")],
            ..Default::default()
        }),
        node_def: body,
        ret: BTreeMap::from([("out".to_string(), ret.to_string())]),
        ..Default::default()
    };
    let library = FunctionDefLibrary {
        function: vec![
            two_args(
                "outer",
                vec![node(
                    "inner_call",
                    "StatefulPartitionedCall",
                    &["x", "h"],
                    &[("f", func("inner"))],
                )],
                "inner_call:0",
            ),
            two_args(
                "inner",
                vec![
                    node("read", "ReadVariableOp", &["h"], &[("dtype", float())]),
                    node("sq", "Square", &["read:value:0"], &[("T", float())]),
                    node("mul", "Mul", &["x", "sq:y:0"], &[("T", float())]),
                ],
                "mul:z:0",
            ),
        ],
        ..Default::default()
    };
    let m = Model::from_graph_def(&GraphDef {
        node: vec![
            placeholder("x", DataType::DtFloat, Some(&[3])),
            node(
                "w",
                "VarHandleOp",
                &[],
                &[
                    ("dtype", float()),
                    ("shape", attr(Attr::Shape(shape(&[3])))),
                ],
            ),
            node(
                "call",
                "StatefulPartitionedCall",
                &["x", "w"],
                &[("f", func("outer"))],
            ),
        ],
        library: Some(library),
        ..Default::default()
    })?;
    let s = Session::new(
        &m,
        Some(&bundle),
        &["call"],
        &["x"],
        SessionOptions::default(),
    )?;
    let out = s.run(&[("x", Value::new(vec![3], vec![1.0f32, 1.0, 2.0])?)])?;
    assert_eq!(f32s(&out[0])?, vec![1.0, 4.0, 18.0]);
    // Only the call runs in the main graph; inside, only the Mul is left.
    assert_eq!(s.num_steps(), 1);
    let plan = format!("{s:?}");
    assert!(plan.contains("op: \"Mul\""), "{plan}");
    for folded in ["Square", "ReadVariableOp"] {
        assert!(
            !plan.contains(&format!("op: \"{folded}\"")),
            "{folded}: {plan}"
        );
    }
    Ok(())
}

/// An `If` whose branches take a constant of the caller's plan (a variable, here a `Const`)
/// gets it bound into both branch plans: what depends on it alone is folded.
#[test]
fn if_branches_fold_constant_arguments() -> TestResult {
    let func = |n: &str| {
        attr(Attr::Func(Box::new(NameAttrList {
            name: n.into(),
            attr: BTreeMap::new(),
        })))
    };
    let branch = |name: &str, body: Vec<NodeDef>, ret: &str| FunctionDef {
        signature: Some(OpDef {
            name: name.into(),
            input_arg: vec![arg("x"), arg("w")],
            output_arg: vec![arg("out")],
            ..Default::default()
        }),
        node_def: body,
        ret: BTreeMap::from([("out".to_string(), ret.to_string())]),
        ..Default::default()
    };
    let library = FunctionDefLibrary {
        function: vec![
            branch(
                "then_fn",
                vec![
                    node("sq", "Square", &["w"], &[("T", float())]),
                    node("mul", "Mul", &["x", "sq:y:0"], &[("T", float())]),
                ],
                "mul:z:0",
            ),
            branch(
                "else_fn",
                vec![node("neg", "Neg", &["w"], &[("T", float())])],
                "neg:y:0",
            ),
        ],
        ..Default::default()
    };
    let m = Model::from_graph_def(&GraphDef {
        node: vec![
            placeholder("x", DataType::DtFloat, Some(&[2])),
            placeholder("p", DataType::DtBool, Some(&[])),
            const_f32("w", &[2], &[3.0, -1.0], &[]),
            node(
                "cond",
                "If",
                &["p", "x", "w"],
                &[
                    ("then_branch", func("then_fn")),
                    ("else_branch", func("else_fn")),
                ],
            ),
        ],
        library: Some(library),
        ..Default::default()
    })?;
    let s = Session::new(&m, None, &["cond"], &["x", "p"], SessionOptions::default())?;
    let x = Value::new(vec![2], vec![2.0f32, 5.0])?;
    let out = s.run(&[("x", x.clone()), ("p", Value::scalar(true))])?;
    assert_eq!(f32s(&out[0])?, vec![18.0, 5.0]);
    let out = s.run(&[("x", x), ("p", Value::scalar(false))])?;
    assert_eq!(f32s(&out[0])?, vec![-3.0, 1.0]);
    let plan = format!("{s:?}");
    assert!(plan.contains("op: \"Mul\""), "{plan}");
    for folded in ["Square", "Neg"] {
        assert!(
            !plan.contains(&format!("op: \"{folded}\"")),
            "{folded}: {plan}"
        );
    }
    Ok(())
}

/// `x * 1/keep_prob * floor(keep_prob + U)` as TF 0.12's `tf.nn.dropout` built it, with a
/// `Div` and `Add`s, over placeholders written `shape {}`, in a graph of producer `producer`.
fn tf0_dropout_graph(producer: i32) -> Result<Model, ckpt_graph::Error> {
    let p = |s: &str| format!("dropout/{s}");
    let nodes = vec![
        placeholder("x", DataType::DtFloat, Some(&[])),
        placeholder("keep_prob", DataType::DtFloat, Some(&[])),
        node(&p("Shape"), "Shape", &["x"], &[("T", float())]),
        const_f32(&p("random_uniform/min"), &[], &[0.0], &[]),
        const_f32(&p("random_uniform/max"), &[], &[1.0], &[]),
        node(
            &p("random_uniform/RandomUniform"),
            "RandomUniform",
            &[&p("Shape")],
            &[("dtype", float()), ("seed", attr(Attr::I(3)))],
        ),
        node(
            &p("random_uniform/sub"),
            "Sub",
            &[&p("random_uniform/max"), &p("random_uniform/min")],
            &[("T", float())],
        ),
        node(
            &p("random_uniform/mul"),
            "Mul",
            &[&p("random_uniform/RandomUniform"), &p("random_uniform/sub")],
            &[("T", float())],
        ),
        node(
            &p("random_uniform"),
            "Add",
            &[&p("random_uniform/mul"), &p("random_uniform/min")],
            &[("T", float())],
        ),
        node(
            &p("add"),
            "Add",
            &["keep_prob", &p("random_uniform")],
            &[("T", float())],
        ),
        node(&p("Floor"), "Floor", &[&p("add")], &[("T", float())]),
        node(&p("Div"), "Div", &["x", "keep_prob"], &[("T", float())]),
        node(
            &p("mul"),
            "Mul",
            &[&p("Div"), &p("Floor")],
            &[("T", float())],
        ),
    ];
    Model::from_graph_def(&GraphDef {
        node: nodes,
        versions: Some(ckpt_graph::ckpt_proto::VersionDef {
            producer,
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[test]
fn tf0_graphs_take_any_shape_for_shape_less_placeholders_and_divide_with_div() -> TestResult {
    let m = tf0_dropout_graph(21)?;
    let x = Value::new(
        vec![4, 64],
        (0..256).map(|i| i as f32 * 0.25 - 7.0).collect::<Vec<_>>(),
    )?;
    let s = Session::new(
        &m,
        None,
        &["dropout/mul"],
        &["x", "keep_prob"],
        SessionOptions::default(),
    )?;
    // keep_prob 1: floor(1 + U) = 1, and x / 1 * 1 = x.
    let out = s.run(&[("x", x.clone()), ("keep_prob", Value::scalar(1.0f32))])?;
    assert_eq!(out[0], x);
    // keep_prob 0.5: every element is dropped or doubled.
    let out = s.run(&[("x", x.clone()), ("keep_prob", Value::scalar(0.5f32))])?;
    let (got, want) = (f32s(&out[0])?, f32s(&x)?);
    assert!(got
        .iter()
        .zip(&want)
        .all(|(g, w)| *g == 0.0 || *g == 2.0 * w));
    assert!(got.iter().zip(&want).any(|(g, w)| *g == 0.0 && *w != 0.0));

    // --inference recognizes the Div form and leaves nothing to run.
    let inference = Session::new(
        &m,
        None,
        &["dropout/mul"],
        &["x", "keep_prob"],
        SessionOptions {
            inference: true,
            ..Default::default()
        },
    )?;
    let out = inference.run(&[("x", x.clone()), ("keep_prob", Value::scalar(0.5f32))])?;
    assert_eq!(out[0], x);
    assert_eq!(inference.num_steps(), 0);
    Ok(())
}

#[test]
fn from_tf1_on_shape_less_placeholders_are_scalars() -> TestResult {
    let m = tf0_dropout_graph(22)?;
    let s = Session::new(
        &m,
        None,
        &["dropout/mul"],
        &["x", "keep_prob"],
        SessionOptions::default(),
    )?;
    let err = s
        .run(&[
            ("x", Value::new(vec![2, 3], vec![1.0f32; 6])?),
            ("keep_prob", Value::scalar(1.0f32)),
        ])
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(err, Error::FeedShape { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "feed \"x\": shape [2, 3] does not match the placeholder's shape []"
    );
    Ok(())
}

#[test]
fn div_no_nan_of_integers_is_refused_when_the_plan_is_built() -> TestResult {
    let int = attr(Attr::Type(DataType::DtInt32 as i32));
    let m = model(vec![
        placeholder("a", DataType::DtInt32, Some(&[-1])),
        node("q", "DivNoNan", &["a", "a"], &[("T", int)]),
    ])?;
    let err = Session::new(&m, None, &["q"], &["a"], SessionOptions::default())
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "node \"q\" (DivNoNan): DivNoNan is defined for floating-point types only, not int32"
    );
    // Floats divide, with 0 for a zero divisor.
    let m = model(vec![
        placeholder("a", DataType::DtFloat, Some(&[-1])),
        placeholder("b", DataType::DtFloat, Some(&[-1])),
        node("q", "DivNoNan", &["a", "b"], &[("T", float())]),
    ])?;
    let s = Session::new(&m, None, &["q"], &["a", "b"], SessionOptions::default())?;
    let out = s.run(&[
        ("a", Value::new(vec![3], vec![1.0f32, 6.0, f32::NAN])?),
        ("b", Value::new(vec![3], vec![0.0f32, 4.0, 0.0])?),
    ])?;
    assert_eq!(f32s(&out[0])?, vec![0.0, 1.5, 0.0]);
    Ok(())
}

/// The ops an LSTM cell and its input pipeline use, wired as TF1 builds them: `Split` of the
/// gate pre-activations, an `Assert` guarding the input through a control edge, `All`, and
/// `GatherV2` of embedding rows.
#[test]
fn sequence_ops_run_in_a_graph_and_assert_fails_with_its_message() -> TestResult {
    let int = attr(Attr::Type(DataType::DtInt32 as i32));
    let b = |v: bool| attr(Attr::B(v));
    let i = |v: i64| attr(Attr::I(v));
    let m = model(vec![
        placeholder("x", DataType::DtFloat, Some(&[-1, 6])),
        placeholder("ids", DataType::DtInt32, Some(&[-1])),
        const_i32("axis1", &[], &[1]),
        const_i32("axis0", &[], &[0]),
        const_i32("all_axes", &[2], &[0, 1]),
        const_f32("floor", &[], &[-100.0], &[]),
        const_f32("table", &[3, 2], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5], &[]),
        node(
            "gates",
            "Split",
            &["axis1", "x"],
            &[("T", float()), ("num_split", i(3))],
        ),
        node("above", "Greater", &["x", "floor"], &[("T", float())]),
        node(
            "all_above",
            "All",
            &["above", "all_axes"],
            &[("keep_dims", b(false))],
        ),
        node(
            "check",
            "Assert",
            &["all_above", "x"],
            &[
                (
                    "T",
                    attr(Attr::List(Box::new(ListValue {
                        r#type: vec![DataType::DtFloat as i32],
                        ..Default::default()
                    }))),
                ),
                ("summarize", i(2)),
            ],
        ),
        node(
            "forget",
            "Identity",
            &["gates:1", "^check"],
            &[("T", float())],
        ),
        node(
            "emb",
            "GatherV2",
            &["table", "ids", "axis0"],
            &[
                ("Tparams", float()),
                ("Tindices", int.clone()),
                ("Taxis", int),
                ("batch_dims", i(0)),
            ],
        ),
    ])?;
    let s = Session::new(
        &m,
        None,
        &["forget", "gates:2", "emb"],
        &["x", "ids"],
        SessionOptions::default(),
    )?;
    let x = Value::new(vec![2, 6], (0..12).map(|v| v as f32).collect::<Vec<_>>())?;
    let ids = Value::new(vec![2], vec![2i32, 0])?;
    let out = s.run(&[("x", x), ("ids", ids.clone())])?;
    assert_eq!(f32s(&out[0])?, [2.0, 3.0, 8.0, 9.0]);
    assert_eq!(f32s(&out[1])?, [4.0, 5.0, 10.0, 11.0]);
    assert_eq!(f32s(&out[2])?, [2.0, 2.5, 0.0, 0.5]);
    let bad = Value::new(vec![1, 6], vec![-1000.0f32, 1.0, 2.0, 3.0, 4.0, 5.0])?;
    let err = s
        .run(&[("x", bad), ("ids", ids)])
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "node \"check\" (Assert): assertion failed: [[-1000 1...]...]"
    );
    let out_of_range = Value::new(vec![1], vec![3i32])?;
    let err = s
        .run(&[
            ("x", Value::new(vec![1, 6], vec![0.0f32; 6])?),
            ("ids", out_of_range),
        ])
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "node \"emb\" (GatherV2): indices[0] = 3 is not in [0, 3) (params shape [3,2])"
    );
    Ok(())
}

fn const_strings(name: &str, values: &[&str]) -> NodeDef {
    let t = TensorProto {
        dtype: DataType::DtString as i32,
        tensor_shape: Some(shape(&[values.len() as i64])),
        string_val: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    };
    node(
        name,
        "Const",
        &[],
        &[
            ("dtype", attr(Attr::Type(DataType::DtString as i32))),
            ("value", attr(Attr::Tensor(Box::new(t)))),
        ],
    )
}

fn const_i64(name: &str, dims: &[i64], values: &[i64]) -> NodeDef {
    let t = TensorProto {
        dtype: DataType::DtInt64 as i32,
        tensor_shape: Some(shape(dims)),
        int64_val: values.to_vec(),
        ..Default::default()
    };
    node(
        name,
        "Const",
        &[],
        &[
            ("dtype", attr(Attr::Type(DataType::DtInt64 as i32))),
            ("value", attr(Attr::Tensor(Box::new(t)))),
        ],
    )
}

/// A string -> int64 HashTableV2 "vocab" filled by InitializeTableV2 from `keys`/`values`, and
/// a `LookupTableFindV2` "find" of the fed "words" with default -1.
fn vocab_graph(keys: &[&str], values: &[i64], words: DataType) -> Result<Model, ckpt_graph::Error> {
    let table_attrs = [
        ("key_dtype", attr(Attr::Type(DataType::DtString as i32))),
        ("value_dtype", attr(Attr::Type(DataType::DtInt64 as i32))),
    ];
    model(vec![
        node("vocab", "HashTableV2", &[], &table_attrs),
        const_strings("keys", keys),
        const_i64("values", &[values.len() as i64], values),
        node(
            "init",
            "InitializeTableV2",
            &["vocab", "keys", "values"],
            &[],
        ),
        const_i64("default", &[], &[-1]),
        placeholder("words", words, None),
        node(
            "find",
            "LookupTableFindV2",
            &["vocab", "words", "default"],
            &[],
        ),
        node("size", "LookupTableSizeV2", &["vocab"], &[]),
    ])
}

#[test]
fn tables_are_built_when_the_graph_is_loaded_and_looked_up() -> TestResult {
    let m = vocab_graph(&["the", "cat", "the"], &[0, 1, 0], DataType::DtString)?;
    let s = Session::new(
        &m,
        None,
        &["find", "size"],
        &["words"],
        SessionOptions::default(),
    )?;
    let words = Value::new(
        vec![2, 2],
        vec![b"cat".to_vec(), b"dog".to_vec(), b"the".to_vec(), vec![]],
    )?;
    let out = s.run(&[("words", words)])?;
    assert_eq!(out[0].shape(), &[2, 2]);
    assert_eq!(out[0].as_i64(), Some(&[1, -1, 0, -1][..]));
    assert_eq!(out[1].as_i64(), Some(&[2][..]));
    Ok(())
}

#[test]
fn lookup_key_dtype_mismatch_names_the_node_and_both_dtypes() -> TestResult {
    let m = vocab_graph(&["the"], &[0], DataType::DtInt64)?;
    let s = Session::new(&m, None, &["find"], &["words"], SessionOptions::default())?;
    let err = s
        .run(&[("words", Value::new(vec![1], vec![3i64])?)])
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "node \"find\" (LookupTableFindV2): keys have dtype int64, table \"vocab\" has key dtype string"
    );
    Ok(())
}

#[test]
fn a_key_with_two_values_is_refused_when_the_graph_is_loaded() -> TestResult {
    let m = vocab_graph(&["the", "the"], &[0, 1], DataType::DtString)?;
    let err = Session::new(&m, None, &["find"], &["words"], SessionOptions::default())
        .err()
        .ok_or("expected an error")?;
    assert_eq!(
        err.to_string(),
        "node \"vocab\" (HashTableV2): key \"the\" is given two different values \
         (TensorFlow: HashTable has different value for same key)"
    );
    Ok(())
}

#[test]
fn a_string_fed_where_a_number_is_expected_names_the_feed_and_both_dtypes() -> TestResult {
    let m = model(vec![
        placeholder("x", DataType::DtFloat, None),
        node("y", "Neg", &["x"], &[("T", float())]),
    ])?;
    let s = Session::new(&m, None, &["y"], &["x"], SessionOptions::default())?;
    let err = s
        .run(&[("x", Value::new(vec![1], vec![b"1.5".to_vec()])?)])
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(err, Error::FeedDtype { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "feed \"x\": cannot convert string to the placeholder's dtype float32"
    );
    Ok(())
}

#[test]
fn too_many_threads_is_an_error_before_any_thread_starts() -> TestResult {
    let model = model(vec![const_f32("c", &[1], &[1.0], &[])])?;
    let options = SessionOptions {
        threads: Some(SessionOptions::MAX_THREADS + 1),
        ..SessionOptions::default()
    };
    match Session::new(&model, None, &["c"], &[], options) {
        Err(Error::TooManyThreads { requested, limit }) => {
            assert_eq!((requested, limit), (1025, 1024));
        }
        other => panic!("expected TooManyThreads, got {:?}", other.err()),
    }
    Ok(())
}

/// A 6 KB library where each function calls the next four times, 15 levels deep: each call
/// site is planned on its own, so planning it all would take 4^15 function plans. The
/// session stops at 10,000 function plans with an error naming the calling nodes.
#[test]
fn a_library_that_multiplies_its_calls_is_refused() -> TestResult {
    let func = |n: &str| {
        attr(Attr::Func(Box::new(NameAttrList {
            name: n.into(),
            attr: BTreeMap::new(),
        })))
    };
    let floats = || {
        attr(Attr::List(Box::new(ListValue {
            r#type: vec![DataType::DtFloat as i32],
            ..Default::default()
        })))
    };
    let depth = 15;
    let mut functions = Vec::new();
    for level in 0..depth {
        let callee = format!("f{}", level + 1);
        let mut body = Vec::new();
        let mut input = "x".to_string();
        for k in 0..4 {
            let name = format!("c{k}");
            body.push(node(
                &name,
                "PartitionedCall",
                &[&input],
                &[("f", func(&callee)), ("Tin", floats()), ("Tout", floats())],
            ));
            input = format!("{name}:output:0");
        }
        functions.push(function(&format!("f{level}"), body, &input));
    }
    functions.push(function(
        &format!("f{depth}"),
        vec![node("id", "Identity", &["x"], &[("T", float())])],
        "id:output:0",
    ));
    let m = Model::from_graph_def(&GraphDef {
        node: vec![
            placeholder("x", DataType::DtFloat, Some(&[1])),
            node(
                "call",
                "PartitionedCall",
                &["x"],
                &[("f", func("f0")), ("Tin", floats()), ("Tout", floats())],
            ),
        ],
        library: Some(FunctionDefLibrary {
            function: functions,
            ..Default::default()
        }),
        ..Default::default()
    })?;
    // The error comes back through every calling node, each naming its function.
    let err = Session::new(&m, None, &["call"], &["x"], SessionOptions::default())
        .err()
        .ok_or("expected an error")?
        .to_string();
    assert!(
        err.starts_with(r#"node "call" (PartitionedCall): in function "f0": node "c0""#)
            && err.contains("more than 10000 function bodies to plan")
            && err.ends_with("the function library calls itself too many ways"),
        "{err}"
    );
    Ok(())
}
