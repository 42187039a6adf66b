//! The text format: round trips of TensorFlow-written graphs, the syntax other writers use
//! (docs/format.md §9), and the errors hostile or broken text gets.

use std::error::Error as StdError;
use std::path::Path;

use ckpt_proto::attr_value::{ListValue, Value};
use ckpt_proto::{text, DataType, Error, GraphDef, Message, MetaGraphDef, SavedModel, TensorProto};

type Result<T = ()> = std::result::Result<T, Box<dyn StdError>>;

fn fixture(path: &str) -> Result<Vec<u8>> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(path);
    std::fs::read(&full).map_err(|e| format!("{}: {e}", full.display()).into())
}

/// Binary -> text -> message gives the message back, for `.meta` files TensorFlow wrote.
#[test]
fn tensorflow_meta_graphs_round_trip_through_text() -> Result {
    // mlp: ref variables, tensor_content constants, string constants of the saver;
    // layers_v2: a function library with map<uint32, ...> fields and If nodes.
    for path in ["mlp/model.ckpt-150.meta", "layers_v2/model.ckpt-7.meta"] {
        let meta = MetaGraphDef::decode(fixture(path)?.as_slice())?;
        let printed = text::to_text(&meta)?;
        assert!(printed.contains("meta_info_def {\n"), "{path}");
        let back: MetaGraphDef = text::parse(&printed)?;
        assert!(
            back == meta,
            "{path}: the text form does not read back as the same message"
        );
    }
    Ok(())
}

#[test]
fn python_dialect_values() -> Result {
    // As Python's text_format prints them: octal escapes in bytes, a oneof member holding its
    // default, a negative dimension, a float in shortest form, map entries.
    let def: GraphDef = text::parse(
        r#"node {
  name: "c"
  op: "Const"
  attr {
    key: "value"
    value {
      tensor {
        dtype: DT_FLOAT
        tensor_shape {
          dim {
            size: -1
          }
        }
        tensor_content: "\000\000\200?"
        float_val: 0.1
      }
    }
  }
  attr {
    key: "empty"
    value {
      s: ""
    }
  }
}
versions {
  producer: 2474
}
"#,
    )?;
    let node = &def.node[0];
    let Some(Value::Tensor(t)) = node.attr["value"].value.as_ref() else {
        return Err("no tensor".into());
    };
    assert_eq!(t.dtype, DataType::DtFloat as i32);
    assert_eq!(t.tensor_content, 1.0f32.to_le_bytes());
    assert_eq!(t.float_val, [0.1f32]);
    assert_eq!(t.tensor_shape.as_ref().map(|s| s.dim[0].size), Some(-1));
    assert_eq!(node.attr["empty"].value, Some(Value::S(Vec::new())));
    assert_eq!(def.versions.map(|v| v.producer), Some(2474));
    Ok(())
}

#[test]
fn wider_syntax_other_writers_use() -> Result {
    // `name: {`, `< >`, comments, `;` and `,`, lists in brackets, single quotes, concatenated
    // literals, \x and short octal escapes, inf/nan in any case, enums as numbers.
    let tensor: TensorProto = text::parse(
        "# a comment\n\
         dtype: 1; tensor_shape: < dim { size: 2 }, dim: { size: 3 } >\n\
         float_val: [1.5, -INF, NaN, Infinity]\n\
         string_val: 'one' \"two\"\n\
         string_val: \"\\x41\\7\\101\"\n",
    )?;
    assert_eq!(tensor.dtype, DataType::DtFloat as i32);
    let dims: Vec<i64> = tensor
        .tensor_shape
        .iter()
        .flat_map(|s| &s.dim)
        .map(|d| d.size)
        .collect();
    assert_eq!(dims, [2, 3]);
    assert_eq!(tensor.float_val[..2], [1.5, f32::NEG_INFINITY]);
    assert!(tensor.float_val[2].is_nan());
    assert_eq!(tensor.float_val[3], f32::INFINITY);
    assert_eq!(tensor.string_val, [b"onetwo".to_vec(), b"A\x07A".to_vec()]);

    // An enum value with no name stays a number, as in the binary form.
    let list: ListValue = text::parse("type: DT_INT32 type: 999")?;
    assert_eq!(list.r#type, [DataType::DtInt32 as i32, 999]);
    Ok(())
}

#[test]
fn saved_model_text() -> Result {
    let model: SavedModel = text::parse(
        r#"saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" tensorflow_version: "2.21.0" }
  graph_def { node { name: "x" op: "Placeholder" } }
  signature_def {
    key: "serving_default"
    value {
      inputs { key: "x" value { name: "x:0" dtype: DT_FLOAT } }
      method_name: "tensorflow/serving/predict"
    }
  }
}
"#,
    )?;
    assert_eq!(model.saved_model_schema_version, 1);
    let meta = &model.meta_graphs[0];
    assert_eq!(
        meta.meta_info_def.as_ref().map(|m| m.tags.clone()),
        Some(vec!["serve".to_string()])
    );
    let signature = &meta.signature_def["serving_default"];
    assert_eq!(signature.method_name, "tensorflow/serving/predict");
    assert_eq!(signature.inputs["x"].dtype, DataType::DtFloat as i32);
    Ok(())
}

/// The error of parsing `text` as a GraphDef, with its position.
fn text_error(text: &str) -> (usize, usize, String) {
    match text::parse::<GraphDef>(text) {
        Err(Error::Text {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("expected a text error for {text:?}, got {other:?}"),
    }
}

#[test]
fn errors_name_line_column_and_what_is_wrong() {
    // Unknown field.
    assert_eq!(
        text_error("node {\n  name: \"a\"\n  inptu: \"b\"\n}\n"),
        (
            3,
            3,
            "field 'inptu' not found for message 'tensorflow.NodeDef'".into()
        )
    );
    // Wrong type: a string where an integer belongs.
    let (line, column, message) = text_error("versions {\n  producer: \"21\"\n}");
    assert_eq!((line, column), (2, 13));
    assert!(message.contains("expected an integer"), "{message}");
    // A message field given a scalar.
    let (line, column, message) = text_error("node: 3");
    assert_eq!((line, column), (1, 7));
    assert!(message.contains("'{' or '<'"), "{message}");
    // Syntax: a missing closing brace is found at the end.
    let (line, column, message) = text_error("node {\n  name: \"a\"\n");
    assert_eq!((line, column), (3, 1));
    assert!(message.contains("end of input"), "{message}");
    // A non-repeated field set twice.
    let (line, _, message) = text_error("node { name: \"a\"\n name: \"b\" }");
    assert_eq!(line, 2);
    assert_eq!(message, "'name' is already set");
    // An unknown enum name.
    let (line, column, message) =
        text_error("node { attr { key: \"T\" value { type: DT_FLAOT } } }");
    assert_eq!((line, column), (1, 38));
    assert_eq!(
        message,
        "value 'DT_FLAOT' was not found for enum 'tensorflow.DataType'"
    );
    // An integer out of range for int32.
    let (_, _, message) = text_error("versions { producer: 4294967296 }");
    assert!(message.contains("out of range"), "{message}");
    // Escapes that make a `string` field invalid UTF-8.
    let (_, _, message) = text_error("node { name: \"\\377\" }");
    assert_eq!(message, "string is not valid utf-8");
}

#[test]
fn hostile_text_is_refused_without_panicking() {
    // Deep nesting through a recursive message (AttrValue -> NameAttrList -> AttrValue).
    let mut deep = String::from("node { ");
    for _ in 0..200 {
        deep.push_str("attr { key: \"a\" value { func { ");
    }
    assert!(matches!(
        text::parse::<GraphDef>(&deep),
        Err(Error::TooDeep {
            line: 1,
            limit: 64,
            ..
        })
    ));
    // Truncations of a valid graph fail cleanly or parse a prefix; none panics.
    let valid = "node { name: \"a\" op: \"Const\" attr { key: \"value\" value { tensor { \
                 dtype: DT_FLOAT float_val: 1e-08 string_val: \"\\001\\x02\" } } } }";
    for end in (0..valid.len()).filter(|&i| valid.is_char_boundary(i)) {
        let _ = text::parse::<GraphDef>(&valid[..end]);
    }
    for bad in [
        "\"", "'", "\\", "node {{", "}", "<>", "node < }", "-", "1e", "[", "node [", "\u{0}",
    ] {
        assert!(
            text::parse::<GraphDef>(bad).is_err(),
            "{bad:?} should not parse"
        );
    }
}
