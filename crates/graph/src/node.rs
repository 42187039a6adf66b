//! A graph node and typed access to its attributes.

use ckpt_proto::attr_value::{ListValue, Value};
use ckpt_proto::{AttrValue, DataType, NameAttrList, TensorProto, TensorShapeProto};

use crate::{Attrs, Error, NodeId, Output};

/// One operation of a [`Graph`](crate::Graph), with its inputs resolved to node ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique within its graph, e.g. `dense/MatMul`.
    pub name: String,
    /// The op type, e.g. `MatMul`, or a library function's name.
    pub op: String,
    /// The device the graph was placed on (often empty); informational only.
    pub device: String,
    /// Data inputs, in order.
    pub inputs: Vec<Output>,
    /// Control inputs (`^node` in a NodeDef): nodes that must run before this one.
    pub control_inputs: Vec<NodeId>,
    /// The NodeDef's attributes, plus the op's defaults when the model supplied an op list.
    pub attrs: Attrs,
}

/// What kind of value an [`AttrValue`] holds, named as TensorFlow names attribute types.
pub(crate) fn attr_kind(value: &AttrValue) -> &'static str {
    match &value.value {
        None => "none",
        Some(Value::S(_)) => "string",
        Some(Value::I(_)) => "int",
        Some(Value::F(_)) => "float",
        Some(Value::B(_)) => "bool",
        Some(Value::Type(_)) => "type",
        Some(Value::Shape(_)) => "shape",
        Some(Value::Tensor(_)) => "tensor",
        Some(Value::Placeholder(_)) => "placeholder",
        Some(Value::Func(_)) => "func",
        Some(Value::List(list)) => list_kind(list),
    }
}

fn list_kind(list: &ListValue) -> &'static str {
    if !list.s.is_empty() {
        "list(string)"
    } else if !list.i.is_empty() {
        "list(int)"
    } else if !list.f.is_empty() {
        "list(float)"
    } else if !list.b.is_empty() {
        "list(bool)"
    } else if !list.r#type.is_empty() {
        "list(type)"
    } else if !list.shape.is_empty() {
        "list(shape)"
    } else if !list.tensor.is_empty() {
        "list(tensor)"
    } else if !list.func.is_empty() {
        "list(func)"
    } else {
        "list()"
    }
}

/// Which field of a list an accessor reads; an empty list matches every kind.
fn list_matches(list: &ListValue, expected: &str) -> bool {
    let kind = list_kind(list);
    kind == "list()" || kind == expected
}

impl Node {
    /// A node with no inputs and no attributes.
    pub fn new(name: impl Into<String>, op: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            op: op.into(),
            device: String::new(),
            inputs: Vec::new(),
            control_inputs: Vec::new(),
            attrs: Attrs::new(),
        }
    }

    /// The attribute `name`, if the node has it.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attrs.get(name)
    }

    /// Whether the node has the attribute `name`.
    pub fn has_attr(&self, name: &str) -> bool {
        self.attrs.contains_key(name)
    }

    fn missing(&self, attr: &str) -> Error {
        Error::MissingAttr {
            node: self.name.clone(),
            op: self.op.clone(),
            attr: attr.to_owned(),
        }
    }

    fn wrong_type(&self, attr: &str, value: &AttrValue, expected: &'static str) -> Error {
        Error::AttrType {
            node: self.name.clone(),
            op: self.op.clone(),
            attr: attr.to_owned(),
            found: attr_kind(value),
            expected,
        }
    }

    fn bad(&self, attr: &str, reason: String) -> Error {
        Error::BadAttr {
            node: self.name.clone(),
            op: self.op.clone(),
            attr: attr.to_owned(),
            reason,
        }
    }

    fn required(&self, name: &str) -> Result<&AttrValue, Error> {
        self.attrs.get(name).ok_or_else(|| self.missing(name))
    }

    /// A list attribute holding `expected` (or an empty list).
    fn list(&self, name: &str, expected: &'static str) -> Result<&ListValue, Error> {
        let value = self.required(name)?;
        match &value.value {
            Some(Value::List(list)) if list_matches(list, expected) => Ok(list),
            _ => Err(self.wrong_type(name, value, expected)),
        }
    }

    /// An `int` attribute.
    pub fn attr_i64(&self, name: &str) -> Result<i64, Error> {
        let value = self.required(name)?;
        match value.value {
            Some(Value::I(i)) => Ok(i),
            _ => Err(self.wrong_type(name, value, "int")),
        }
    }

    /// A `float` attribute.
    pub fn attr_f32(&self, name: &str) -> Result<f32, Error> {
        let value = self.required(name)?;
        match value.value {
            Some(Value::F(f)) => Ok(f),
            _ => Err(self.wrong_type(name, value, "float")),
        }
    }

    /// A `bool` attribute.
    pub fn attr_bool(&self, name: &str) -> Result<bool, Error> {
        let value = self.required(name)?;
        match value.value {
            Some(Value::B(b)) => Ok(b),
            _ => Err(self.wrong_type(name, value, "bool")),
        }
    }

    /// A `string` attribute (stored as bytes; invalid UTF-8 is replaced, not an error).
    pub fn attr_string(&self, name: &str) -> Result<String, Error> {
        Ok(String::from_utf8_lossy(self.attr_bytes(name)?).into_owned())
    }

    /// A `string` attribute as the raw bytes TensorFlow stores.
    pub fn attr_bytes(&self, name: &str) -> Result<&[u8], Error> {
        let value = self.required(name)?;
        match &value.value {
            Some(Value::S(s)) => Ok(s),
            _ => Err(self.wrong_type(name, value, "string")),
        }
    }

    /// A `type` attribute. An enum value this crate does not know is an error.
    pub fn attr_dtype(&self, name: &str) -> Result<DataType, Error> {
        let value = self.required(name)?;
        match value.value {
            Some(Value::Type(t)) => self.dtype(name, t),
            _ => Err(self.wrong_type(name, value, "type")),
        }
    }

    fn dtype(&self, name: &str, raw: i32) -> Result<DataType, Error> {
        DataType::try_from(raw).map_err(|_| self.bad(name, format!("holds unknown dtype {raw}")))
    }

    /// A `list(int)` attribute.
    pub fn attr_ints(&self, name: &str) -> Result<Vec<i64>, Error> {
        Ok(self.list(name, "list(int)")?.i.clone())
    }

    /// A `list(float)` attribute.
    pub fn attr_floats(&self, name: &str) -> Result<Vec<f32>, Error> {
        Ok(self.list(name, "list(float)")?.f.clone())
    }

    /// A `list(string)` attribute, each entry decoded as lossy UTF-8.
    pub fn attr_strings(&self, name: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .list(name, "list(string)")?
            .s
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect())
    }

    /// A `list(type)` attribute.
    pub fn attr_dtypes(&self, name: &str) -> Result<Vec<DataType>, Error> {
        self.list(name, "list(type)")?
            .r#type
            .iter()
            .map(|&t| self.dtype(name, t))
            .collect()
    }

    /// A `shape` attribute: `None` for unknown rank, else the dimensions with -1 for unknown.
    pub fn attr_shape(&self, name: &str) -> Result<Option<Vec<i64>>, Error> {
        let value = self.required(name)?;
        match &value.value {
            Some(Value::Shape(shape)) => self.shape(name, shape),
            _ => Err(self.wrong_type(name, value, "shape")),
        }
    }

    /// A `list(shape)` attribute (such as `_output_shapes`), each entry as [`Node::attr_shape`].
    pub fn attr_shapes(&self, name: &str) -> Result<Vec<Option<Vec<i64>>>, Error> {
        self.list(name, "list(shape)")?
            .shape
            .iter()
            .map(|s| self.shape(name, s))
            .collect()
    }

    fn shape(&self, name: &str, shape: &TensorShapeProto) -> Result<Option<Vec<i64>>, Error> {
        if shape.unknown_rank {
            return Ok(None);
        }
        shape
            .dim
            .iter()
            .map(|d| {
                if d.size < -1 {
                    Err(self.bad(name, format!("has invalid dimension size {}", d.size)))
                } else {
                    Ok(d.size)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A `tensor` attribute (a Const's `value`).
    pub fn attr_tensor(&self, name: &str) -> Result<&TensorProto, Error> {
        let value = self.required(name)?;
        match &value.value {
            Some(Value::Tensor(t)) => Ok(t),
            _ => Err(self.wrong_type(name, value, "tensor")),
        }
    }

    /// A `func` attribute (an `If`'s `then_branch`).
    pub fn attr_func(&self, name: &str) -> Result<&NameAttrList, Error> {
        let value = self.required(name)?;
        match &value.value {
            Some(Value::Func(f)) => Ok(f),
            _ => Err(self.wrong_type(name, value, "func")),
        }
    }

    /// [`Node::attr_i64`], or `default` when the attribute is absent.
    pub fn attr_i64_or(&self, name: &str, default: i64) -> Result<i64, Error> {
        if self.has_attr(name) {
            self.attr_i64(name)
        } else {
            Ok(default)
        }
    }

    /// [`Node::attr_f32`], or `default` when the attribute is absent.
    pub fn attr_f32_or(&self, name: &str, default: f32) -> Result<f32, Error> {
        if self.has_attr(name) {
            self.attr_f32(name)
        } else {
            Ok(default)
        }
    }

    /// [`Node::attr_bool`], or `default` when the attribute is absent.
    pub fn attr_bool_or(&self, name: &str, default: bool) -> Result<bool, Error> {
        if self.has_attr(name) {
            self.attr_bool(name)
        } else {
            Ok(default)
        }
    }

    /// [`Node::attr_string`], or `default` when the attribute is absent.
    pub fn attr_string_or(&self, name: &str, default: &str) -> Result<String, Error> {
        if self.has_attr(name) {
            self.attr_string(name)
        } else {
            Ok(default.to_owned())
        }
    }

    /// [`Node::attr_dtype`], or `default` when the attribute is absent.
    pub fn attr_dtype_or(&self, name: &str, default: DataType) -> Result<DataType, Error> {
        if self.has_attr(name) {
            self.attr_dtype(name)
        } else {
            Ok(default)
        }
    }

    /// [`Node::attr_ints`], or `default` when the attribute is absent.
    pub fn attr_ints_or(&self, name: &str, default: &[i64]) -> Result<Vec<i64>, Error> {
        if self.has_attr(name) {
            self.attr_ints(name)
        } else {
            Ok(default.to_vec())
        }
    }

    /// [`Node::attr_dtypes`], or `default` when the attribute is absent.
    pub fn attr_dtypes_or(&self, name: &str, default: &[DataType]) -> Result<Vec<DataType>, Error> {
        if self.has_attr(name) {
            self.attr_dtypes(name)
        } else {
            Ok(default.to_vec())
        }
    }

    /// How many outputs the node has, when its op is in [`op_outputs`](crate::op_outputs)'s
    /// table (`Ok(None)` otherwise). List outputs are sized from the node's attributes.
    pub fn num_outputs(&self) -> Result<Option<usize>, Error> {
        crate::ops::static_output_count(self).transpose()
    }
}
