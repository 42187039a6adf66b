//! The memory budget ([`ckpt_runtime::set_max_memory`]): shapes a tiny graph computes are
//! refused before anything is allocated, naming the node. One test in its own binary, since
//! the budget is process-wide.

use ckpt_graph::ckpt_proto::attr_value::Value as Attr;
use ckpt_graph::ckpt_proto::tensor_shape_proto::Dim;
use ckpt_graph::ckpt_proto::{
    AttrValue, DataType, GraphDef, NodeDef, TensorProto, TensorShapeProto,
};
use ckpt_graph::Model;
use ckpt_runtime::{set_max_memory, Error, Session, SessionOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn attr(v: Attr) -> AttrValue {
    AttrValue { value: Some(v) }
}

fn node(name: &str, op: &str, inputs: &[&str], attrs: Vec<(&str, AttrValue)>) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        attr: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ..Default::default()
    }
}

fn constant(name: &str, dtype: DataType, dims: &[i64], tensor: TensorProto) -> NodeDef {
    let tensor = TensorProto {
        dtype: dtype as i32,
        tensor_shape: Some(TensorShapeProto {
            dim: dims
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        }),
        ..tensor
    };
    node(
        name,
        "Const",
        &[],
        vec![
            ("dtype", attr(Attr::Type(dtype as i32))),
            ("value", attr(Attr::Tensor(Box::new(tensor)))),
        ],
    )
}

fn int32s(name: &str, dims: &[i64], values: &[i32]) -> NodeDef {
    let t = TensorProto {
        int_val: values.to_vec(),
        ..Default::default()
    };
    constant(name, DataType::DtInt32, dims, t)
}

fn float_scalar(name: &str) -> NodeDef {
    let t = TensorProto {
        float_val: vec![1.0],
        ..Default::default()
    };
    constant(name, DataType::DtFloat, &[], t)
}

fn session(nodes: Vec<NodeDef>, fetch: &str) -> Result<Session, Error> {
    let def = GraphDef {
        node: nodes,
        ..Default::default()
    };
    let model = Model::from_graph_def(&def)?;
    Session::new(&model, None, &[fetch], &[], SessionOptions::default())
}

fn message(result: Result<Session, Error>) -> String {
    match result {
        Ok(_) => "built".to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn outputs_past_the_budget_are_refused_before_allocation() -> TestResult {
    set_max_memory(Some(64 << 20));
    let float = || attr(Attr::Type(DataType::DtFloat as i32));
    let int32 = || attr(Attr::Type(DataType::DtInt32 as i32));

    // Fill to [65536, 65536]: 16 GiB of float32 from a 135-byte graph.
    let fill = |dims: &[i32]| {
        vec![
            int32s("dims", &[2], dims),
            float_scalar("v"),
            node("big", "Fill", &["dims", "v"], vec![("T", float())]),
        ]
    };
    let err = message(session(fill(&[65536, 65536]), "big"));
    assert!(
        err.contains("\"big\"")
            && err.contains("[65536,65536] needs 17179869184 bytes")
            && err.contains("memory budget of 67108864 bytes"),
        "{err}"
    );
    // Within the budget: 4 MiB.
    session(fill(&[1024, 1024]), "big")?;

    // Tile and BroadcastTo of a scalar to the same size.
    let tile = vec![
        float_scalar("v"),
        int32s("shape", &[2], &[1, 1]),
        node(
            "v2",
            "Reshape",
            &["v", "shape"],
            vec![("T", float()), ("Tshape", int32())],
        ),
        int32s("multiples", &[2], &[65536, 65536]),
        node(
            "tiled",
            "Tile",
            &["v2", "multiples"],
            vec![("T", float()), ("Tmultiples", int32())],
        ),
    ];
    let err = message(session(tile, "tiled"));
    assert!(
        err.contains("\"tiled\"") && err.contains("memory budget"),
        "{err}"
    );
    let broadcast = vec![
        float_scalar("v"),
        int32s("shape", &[2], &[65536, 65536]),
        node(
            "wide",
            "BroadcastTo",
            &["v", "shape"],
            vec![("T", float()), ("Tidx", int32())],
        ),
    ];
    let err = message(session(broadcast, "wide"));
    assert!(
        err.contains("\"wide\"") && err.contains("memory budget"),
        "{err}"
    );

    // Pad with paddings of 2^30 on each side: refused before the index maps are built.
    let pad = vec![
        float_scalar("v"),
        int32s("one", &[1], &[1]),
        node(
            "v1",
            "Reshape",
            &["v", "one"],
            vec![("T", float()), ("Tshape", int32())],
        ),
        int32s("paddings", &[1, 2], &[1 << 30, 1 << 30]),
        node(
            "padded",
            "Pad",
            &["v1", "paddings"],
            vec![("T", float()), ("Tpaddings", int32())],
        ),
    ];
    let err = message(session(pad, "padded"));
    assert!(
        err.contains("\"padded\"") && err.contains("memory budget"),
        "{err}"
    );

    // The default comes back with None.
    set_max_memory(None);
    assert_eq!(
        ckpt_runtime::max_memory(),
        ckpt_runtime::default_max_memory()
    );
    Ok(())
}
