//! TensorList ops (control flow v2, docs/format.md §10.5; `list_kernels.{h,cc}`). A list is
//! a value ([`TensorList`]): every op returns a new list and leaves its input as it was. A
//! kernel receives its inputs by value, so a list moved into its last reader is changed in
//! place, and a shared one is copied first (only its table of elements, which share their
//! buffers). All these kernels are pure, so lists built from constants are built once, at plan
//! time.

pub(crate) mod element_shape;
pub(crate) mod empty;
pub(crate) mod from_tensor;
pub(crate) mod get_item;
pub(crate) mod length;
pub(crate) mod pop_back;
pub(crate) mod push_back;
pub(crate) mod reserve;
pub(crate) mod set_item;
pub(crate) mod stack;

use ckpt_graph::ckpt_proto::DataType;
use ckpt_graph::Node;

use crate::list::{PartialShape, TensorList};
use crate::ops::{dtype_attr, op_bail, OpError};
use crate::{DType, Error, Value};

/// A list's `element_dtype` attribute: a dtype the executor holds, or `variant` for lists of
/// lists.
fn element_dtype(node: &Node) -> Result<DType, Error> {
    if node.attr_dtype("element_dtype")? == DataType::DtVariant {
        return Ok(DType::Variant);
    }
    dtype_attr(node, "element_dtype")
}

/// The list an input holds.
fn list(v: Value) -> Result<TensorList, OpError> {
    match v {
        Value::List(l) => Ok(l),
        other => op_bail!("input handle is not a list, saw a {}", other.kind()),
    }
}

/// An element-shape input merged with the list's element shape
/// (`GetElementShapeFromInput`).
fn element_shape_from_input(l: &TensorList, shape: &Value) -> Result<PartialShape, OpError> {
    PartialShape::from_tensor(shape)?.merge(l.element_shape())
}

/// A scalar int32 index or count.
fn scalar(v: &Value, what: &str) -> Result<i64, OpError> {
    match v {
        Value::I32(t) if t.shape().is_empty() => Ok(i64::from(t.data()[0])),
        Value::I64(t) if t.shape().is_empty() => Ok(t.data()[0]),
        other => op_bail!(
            "{what} must be an int32 scalar, got {} of shape {:?}",
            other.kind(),
            other.shape()
        ),
    }
}

/// Fails unless a tensor about to go into the list has the list's dtype.
fn check_item_dtype(l: &TensorList, item: &Value) -> Result<(), OpError> {
    if item.dtype() != l.element_dtype() || matches!(item, Value::TensorArray(_)) {
        op_bail!(
            "invalid data types; list elements {} but tried to add {}",
            l.element_dtype(),
            item.kind()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The ops end to end on small lists, against values worked out from TensorFlow's rules.

    use ckpt_graph::ckpt_proto::attr_value::Value as Attr;
    use ckpt_graph::ckpt_proto::{AttrValue, DataType};
    use ckpt_graph::Node;

    use crate::ops::test_util::build_kernel;
    use crate::ops::{Builder, Kernel, OpError};
    use crate::Value;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn kernel(
        builder: Builder,
        op: &str,
        attrs: &[(&str, Attr)],
    ) -> Result<Box<dyn Kernel>, crate::Error> {
        let mut node = Node::new(op.to_lowercase(), op);
        node.attrs.insert(
            "element_dtype".into(),
            AttrValue {
                value: Some(Attr::Type(DataType::DtFloat as i32)),
            },
        );
        for (k, v) in attrs {
            node.attrs.insert(
                k.to_string(),
                AttrValue {
                    value: Some(v.clone()),
                },
            );
        }
        build_kernel(builder, &node)
    }

    fn shape(dims: &[i32]) -> Result<Value, crate::Error> {
        Value::new(vec![dims.len()], dims.to_vec())
    }

    fn unknown() -> Value {
        Value::scalar(-1i32)
    }

    fn f32s(shape: &[usize], data: &[f32]) -> Result<Value, crate::Error> {
        Value::new(shape.to_vec(), data.to_vec())
    }

    fn one(mut v: Vec<Value>) -> Result<Value, OpError> {
        v.pop().ok_or_else(|| OpError("no output".into()))
    }

    #[test]
    fn reserve_set_get_stack() -> TestResult {
        let reserve = kernel(super::reserve::build, "TensorListReserve", &[])?;
        let l = one(reserve.run(vec![shape(&[-1, 2])?, Value::scalar(3i32)])?)?;
        let set = kernel(super::set_item::build, "TensorListSetItem", &[])?;
        let l2 = one(set.run(vec![
            l.clone(),
            Value::scalar(1i32),
            f32s(&[1, 2], &[1.0, 2.0])?,
        ])?)?;
        // Value semantics: the first list still has nothing set.
        let get = kernel(super::get_item::build, "TensorListGetItem", &[])?;
        let err = get
            .run(vec![l.clone(), Value::scalar(1i32), unknown()])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("element_shape is not fully defined")));
        assert_eq!(
            get.run(vec![l, Value::scalar(1i32), shape(&[1, 2])?])?,
            vec![f32s(&[1, 2], &[0.0, 0.0])?]
        );
        // Unset elements take the shape of the set ones.
        assert_eq!(
            get.run(vec![l2.clone(), Value::scalar(0i32), unknown()])?,
            vec![f32s(&[1, 2], &[0.0, 0.0])?]
        );
        assert_eq!(
            get.run(vec![l2.clone(), Value::scalar(1i32), unknown()])?,
            vec![f32s(&[1, 2], &[1.0, 2.0])?]
        );
        let stack = kernel(
            super::stack::build,
            "TensorListStack",
            &[("num_elements", Attr::I(3))],
        )?;
        assert_eq!(
            stack.run(vec![l2.clone(), unknown()])?,
            vec![f32s(&[3, 1, 2], &[0.0, 0.0, 1.0, 2.0, 0.0, 0.0])?]
        );
        let length = kernel(super::length::build, "TensorListLength", &[])?;
        assert_eq!(length.run(vec![l2.clone()])?, vec![Value::scalar(3i32)]);
        let element_shape = kernel(
            super::element_shape::build,
            "TensorListElementShape",
            &[("shape_type", Attr::Type(DataType::DtInt64 as i32))],
        )?;
        assert_eq!(
            element_shape.run(vec![l2.clone()])?,
            vec![Value::new(vec![2], vec![-1i64, 2])?]
        );
        let err = get
            .run(vec![l2.clone(), Value::scalar(3i32), unknown()])
            .err();
        assert_eq!(
            err,
            Some(OpError(
                "trying to access element 3 in a list with 3 elements".into()
            ))
        );
        let err = set
            .run(vec![
                l2.clone(),
                Value::scalar(3i32),
                f32s(&[1, 2], &[1.0, 2.0])?,
            ])
            .err();
        assert_eq!(
            err,
            Some(OpError(
                "trying to modify element 3 in a list with 3 elements".into()
            ))
        );
        let err = set
            .run(vec![
                l2.clone(),
                Value::scalar(0i32),
                f32s(&[2, 3], &[1.0; 6])?,
            ])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("incompatible shape")));
        let err = set
            .run(vec![
                l2,
                Value::scalar(0i32),
                Value::new(vec![1, 2], vec![1i32, 2])?,
            ])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("invalid data types")));
        let resize = kernel(
            super::set_item::build,
            "TensorListSetItem",
            &[("resize_if_index_out_of_bounds", Attr::B(true))],
        )?;
        let l = one(reserve.run(vec![unknown(), Value::scalar(0i32)])?)?;
        let l = one(resize.run(vec![l, Value::scalar(2i32), Value::scalar(5.0f32)])?)?;
        assert_eq!(length.run(vec![l])?, vec![Value::scalar(3i32)]);
        Ok(())
    }

    #[test]
    fn from_tensor_push_pop() -> TestResult {
        let from = kernel(super::from_tensor::build, "TensorListFromTensor", &[])?;
        let x = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
        let l = one(from.run(vec![x.clone(), shape(&[2])?])?)?;
        let stack = kernel(super::stack::build, "TensorListStack", &[])?;
        assert_eq!(stack.run(vec![l.clone(), shape(&[2])?])?, vec![x.clone()]);
        let push = kernel(super::push_back::build, "TensorListPushBack", &[])?;
        let l = one(push.run(vec![l, f32s(&[2], &[7.0, 8.0])?])?)?;
        let pop = kernel(super::pop_back::build, "TensorListPopBack", &[])?;
        let out = pop.run(vec![l, unknown()])?;
        assert_eq!(out[1], f32s(&[2], &[7.0, 8.0])?);
        assert_eq!(stack.run(vec![out[0].clone(), unknown()])?, vec![x.clone()]);
        let err = from.run(vec![x.clone(), shape(&[3])?]).err();
        assert!(err.is_some_and(|e| e
            .0
            .contains("specified a list with shape [3] from a tensor with shape [3,2]")));
        let err = from.run(vec![Value::scalar(1.0f32), unknown()]).err();
        assert!(err.is_some_and(|e| e.0.contains("at least a vector")));
        let empty = kernel(super::empty::build, "EmptyTensorList", &[])?;
        let l = one(empty.run(vec![unknown(), Value::scalar(1i32)])?)?;
        let err = pop.run(vec![l.clone(), unknown()]).err();
        assert_eq!(
            err,
            Some(OpError("trying to pop from an empty list".into()))
        );
        let err = stack.run(vec![l.clone(), unknown()]).err();
        assert!(err.is_some_and(|e| e.0.contains("empty list")));
        assert_eq!(
            stack.run(vec![l.clone(), shape(&[2])?])?[0].shape(),
            &[0, 2]
        );
        let l = one(push.run(vec![l, f32s(&[2], &[7.0, 8.0])?])?)?;
        let err = push.run(vec![l, f32s(&[2], &[7.0, 8.0])?]).err();
        assert!(err.is_some_and(|e| e.0.contains("full list")));
        let reserve = kernel(super::reserve::build, "TensorListReserve", &[])?;
        let err = reserve.run(vec![unknown(), Value::scalar(-1i32)]).err();
        assert!(err.is_some_and(|e| e.0.contains("non negative")));
        assert!(reserve
            .run(vec![unknown(), Value::scalar(i32::MAX)])
            .is_err());
        let err = stack.run(vec![x, unknown()]).err();
        assert_eq!(
            err,
            Some(OpError("input handle is not a list, saw a float32".into()))
        );
        Ok(())
    }
}
