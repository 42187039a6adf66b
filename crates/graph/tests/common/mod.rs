//! Builders for GraphDefs written in code (no TensorFlow needed).
#![allow(dead_code)]

use ckpt_graph::ckpt_proto::attr_value::{ListValue, Value};
use ckpt_graph::ckpt_proto::{
    tensor_shape_proto::Dim, AttrValue, DataType, NodeDef, TensorProto, TensorShapeProto,
};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.to_owned(),
        op: op.to_owned(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

pub fn with_attr(mut n: NodeDef, name: &str, value: Value) -> NodeDef {
    n.attr
        .insert(name.to_owned(), AttrValue { value: Some(value) });
    n
}

pub fn dtype(t: DataType) -> Value {
    Value::Type(t as i32)
}

pub fn ints(v: &[i64]) -> Value {
    Value::List(Box::new(ListValue {
        i: v.to_vec(),
        ..Default::default()
    }))
}

pub fn dtypes(v: &[DataType]) -> Value {
    Value::List(Box::new(ListValue {
        r#type: v.iter().map(|&t| t as i32).collect(),
        ..Default::default()
    }))
}

pub fn shape(dims: &[i64]) -> Value {
    Value::Shape(TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    })
}

/// A string Const holding `values` in `string_val`, as TensorFlow writes them.
pub fn string_const(name: &str, values: &[&str]) -> NodeDef {
    let tensor = TensorProto {
        dtype: DataType::DtString as i32,
        tensor_shape: Some(TensorShapeProto {
            dim: vec![Dim {
                size: values.len() as i64,
                name: String::new(),
            }],
            unknown_rank: false,
        }),
        string_val: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    };
    let n = with_attr(node(name, "Const", &[]), "dtype", dtype(DataType::DtString));
    with_attr(n, "value", Value::Tensor(Box::new(tensor)))
}

/// The error of a result that must fail.
pub fn expect_err<T>(result: Result<T, ckpt_graph::Error>) -> Result<ckpt_graph::Error, String> {
    match result {
        Ok(_) => Err("expected an error, got Ok".to_owned()),
        Err(e) => Ok(e),
    }
}
