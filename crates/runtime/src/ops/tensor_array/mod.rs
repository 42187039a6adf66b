//! TensorArray ops (control flow v1, docs/format.md §10.3; `tensor_array_ops.cc`): a
//! `TensorArrayV3` makes an array and returns its handle and a `flow` scalar; every op that
//! changes the array takes a `flow_in` and returns a `flow_out`, which is what orders the
//! ops on one array (the executor runs each op after its inputs, the flow among them). The
//! array itself is a [`TensorArray`]: a per-run resource, shared by every copy of its handle.
//!
//! None of these kernels is pure: they create or change an array, or read one that others
//! change, so none is ever evaluated at plan time.

pub(crate) mod close;
pub(crate) mod concat;
pub(crate) mod create;
pub(crate) mod gather;
pub(crate) mod read;
pub(crate) mod scatter;
pub(crate) mod size;
pub(crate) mod split;
pub(crate) mod write;

use crate::list::TensorArray;
use crate::ops::{op_bail, OpError};
use crate::Value;

/// The array a handle input refers to.
fn array(v: &Value) -> Result<&TensorArray, OpError> {
    match v {
        Value::TensorArray(ta) => Ok(ta),
        other => op_bail!("expected a TensorArray handle, got a {}", other.kind()),
    }
}

/// A scalar int32 (or int64) index.
fn scalar_index(v: &Value, what: &str) -> Result<i64, OpError> {
    let value = match v {
        Value::I32(t) => t.data().first().map(|&x| i64::from(x)),
        Value::I64(t) => t.data().first().copied(),
        other => op_bail!("{what} must be int32, got {}", other.kind()),
    };
    match value {
        Some(i) if v.shape().is_empty() => Ok(i),
        _ => op_bail!(
            "TensorArray {what} must be scalar, but had shape: {:?}",
            v.shape()
        ),
    }
}

/// A vector of int32 (or int64) indices or lengths.
fn index_vector(v: &Value, what: &str) -> Result<Vec<i64>, OpError> {
    if v.shape().len() != 1 {
        op_bail!(
            "expected {what} to be a vector, but received shape: {:?}",
            v.shape()
        );
    }
    crate::ops::int_values(v, what)
}

#[cfg(test)]
mod tests {
    //! The ops end to end, against values worked out by hand from TensorFlow's rules.

    use ckpt_graph::ckpt_proto::attr_value::Value as Attr;
    use ckpt_graph::ckpt_proto::tensor_shape_proto::Dim;
    use ckpt_graph::ckpt_proto::{AttrValue, DataType, TensorShapeProto};
    use ckpt_graph::Node;

    use crate::ops::test_util::build_kernel;
    use crate::ops::{Builder, Kernel, OpError};
    use crate::Value;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn with_attrs(op: &str, attrs: &[(&str, Attr)]) -> Node {
        let mut node = Node::new(op.to_lowercase(), op);
        for (k, v) in attrs {
            node.attrs.insert(
                k.to_string(),
                AttrValue {
                    value: Some(v.clone()),
                },
            );
        }
        node
    }

    fn float() -> Attr {
        Attr::Type(DataType::DtFloat as i32)
    }

    fn shape(dims: Option<&[i64]>) -> Attr {
        Attr::Shape(TensorShapeProto {
            dim: dims
                .unwrap_or(&[])
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: dims.is_none(),
        })
    }

    fn kernel(
        builder: Builder,
        op: &str,
        attrs: &[(&str, Attr)],
    ) -> Result<Box<dyn Kernel>, crate::Error> {
        build_kernel(builder, &with_attrs(op, attrs))
    }

    fn new_array(
        size: i32,
        element_shape: Option<&[i64]>,
        extra: &[(&str, Attr)],
    ) -> Result<Value, Box<dyn std::error::Error>> {
        let mut attrs = vec![("dtype", float()), ("element_shape", shape(element_shape))];
        attrs.extend(extra.iter().cloned());
        let k = kernel(super::create::build, "TensorArrayV3", &attrs)?;
        let mut out = k.run(vec![Value::scalar(size)])?;
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], Value::scalar(0.0f32));
        Ok(out.swap_remove(0))
    }

    fn flow() -> Value {
        Value::scalar(0.0f32)
    }

    fn f32s(shape: &[usize], data: &[f32]) -> Result<Value, crate::Error> {
        Value::new(shape.to_vec(), data.to_vec())
    }

    #[test]
    fn scatter_read_gather_size_close() -> TestResult {
        let ta = new_array(3, None, &[])?;
        let scatter = kernel(
            super::scatter::build,
            "TensorArrayScatterV3",
            &[("T", float())],
        )?;
        let value = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0])?;
        let indices = Value::new(vec![2], vec![2i32, 0])?;
        let out = scatter.run(vec![ta.clone(), indices, value, flow()])?;
        assert_eq!(out, vec![flow()]);
        let read = kernel(
            super::read::build,
            "TensorArrayReadV3",
            &[("dtype", float())],
        )?;
        assert_eq!(
            read.run(vec![ta.clone(), Value::scalar(2i32), flow()])?,
            vec![f32s(&[2], &[1.0, 2.0])?]
        );
        // Read once (clear_after_read), and index 1 was never written nor shaped.
        let err = read
            .run(vec![ta.clone(), Value::scalar(2i32), flow()])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("twice")));
        let gather = kernel(
            super::gather::build,
            "TensorArrayGatherV3",
            &[("dtype", float()), ("element_shape", shape(None))],
        )?;
        let err = gather
            .run(vec![
                ta.clone(),
                Value::new(vec![2], vec![0i32, 1])?,
                flow(),
            ])
            .err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.0.contains("element shape is not fully defined")),
            "{err:?}"
        );
        let size = kernel(super::size::build, "TensorArraySizeV3", &[])?;
        assert_eq!(
            size.run(vec![ta.clone(), flow()])?,
            vec![Value::scalar(3i32)]
        );
        let close = kernel(super::close::build, "TensorArrayCloseV3", &[])?;
        assert!(close.run(vec![ta.clone()])?.is_empty());
        let err = size.run(vec![ta, flow()]).err();
        assert!(err.is_some_and(|e| e.0.contains("has already been closed")));
        Ok(())
    }

    #[test]
    fn gather_fills_unwritten_elements_with_zeros_once_the_shape_is_known() -> TestResult {
        let ta = new_array(
            3,
            Some(&[-1, 2]),
            &[("identical_element_shapes", Attr::B(true))],
        )?;
        let write = kernel(super::write::build, "TensorArrayWriteV3", &[("T", float())])?;
        write.run(vec![
            ta.clone(),
            Value::scalar(1i32),
            f32s(&[1, 2], &[5.0, 6.0])?,
            flow(),
        ])?;
        let gather = kernel(
            super::gather::build,
            "TensorArrayGatherV3",
            &[("dtype", float()), ("element_shape", shape(Some(&[-1, 2])))],
        )?;
        let out = gather.run(vec![ta, Value::new(vec![3], vec![0i32, 1, 2])?, flow()])?;
        assert_eq!(
            out,
            vec![f32s(&[3, 1, 2], &[0.0, 0.0, 5.0, 6.0, 0.0, 0.0])?]
        );
        // An empty gather needs a fully known element shape.
        let ta = new_array(0, Some(&[2]), &[])?;
        let gather = kernel(
            super::gather::build,
            "TensorArrayGatherV3",
            &[("dtype", float()), ("element_shape", shape(Some(&[2])))],
        )?;
        let out = gather.run(vec![ta, Value::new(vec![0], Vec::<i32>::new())?, flow()])?;
        assert_eq!(out[0].shape(), &[0, 2]);
        Ok(())
    }

    #[test]
    fn split_and_concat_are_inverse() -> TestResult {
        let ta = new_array(2, None, &[("clear_after_read", Attr::B(false))])?;
        let split = kernel(super::split::build, "TensorArraySplitV3", &[("T", float())])?;
        let value = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
        let lengths = Value::new(vec![2], vec![1i64, 2])?;
        split.run(vec![ta.clone(), value.clone(), lengths.clone(), flow()])?;
        let concat = kernel(
            super::concat::build,
            "TensorArrayConcatV3",
            &[("dtype", float()), ("element_shape_except0", shape(None))],
        )?;
        assert_eq!(
            concat.run(vec![ta.clone(), flow()])?,
            vec![value.clone(), lengths.clone()]
        );
        // clear_after_read is off: the elements read again.
        let read = kernel(
            super::read::build,
            "TensorArrayReadV3",
            &[("dtype", float())],
        )?;
        assert_eq!(
            read.run(vec![ta, Value::scalar(1i32), flow()])?,
            vec![f32s(&[2, 2], &[3.0, 4.0, 5.0, 6.0])?]
        );
        // Lengths must add up to the rows, and match the size of a fixed-size array.
        let ta = new_array(2, None, &[])?;
        let err = split
            .run(vec![
                ta.clone(),
                value.clone(),
                Value::new(vec![2], vec![1i64, 1])?,
                flow(),
            ])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("sum of lengths")));
        let err = split
            .run(vec![
                ta,
                value,
                Value::new(vec![3], vec![1i64, 1, 1])?,
                flow(),
            ])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("not equal to the size of lengths")));
        Ok(())
    }

    #[test]
    fn bad_inputs_are_errors() -> TestResult {
        let create = kernel(super::create::build, "TensorArrayV3", &[("dtype", float())])?;
        assert_eq!(
            create.run(vec![Value::scalar(-1i32)]).err(),
            Some(OpError("size should be >= 0".into()))
        );
        assert!(create.run(vec![Value::scalar(i32::MAX)]).is_err());
        let read = kernel(
            super::read::build,
            "TensorArrayReadV3",
            &[("dtype", float())],
        )?;
        let err = read
            .run(vec![Value::scalar(1.0f32), Value::scalar(0i32), flow()])
            .err();
        assert_eq!(
            err,
            Some(OpError(
                "expected a TensorArray handle, got a float32".into()
            ))
        );
        let ta = new_array(2, Some(&[1]), &[])?;
        let err = read
            .run(vec![ta.clone(), Value::scalar(5i32), flow()])
            .err();
        assert_eq!(
            err,
            Some(OpError(
                "tried to read from index 5 but array size is: 2".into()
            ))
        );
        let err = read
            .run(vec![ta.clone(), Value::new(vec![1], vec![0i32])?, flow()])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("must be scalar")));
        let read_int = kernel(
            super::read::build,
            "TensorArrayReadV3",
            &[("dtype", Attr::Type(DataType::DtInt32 as i32))],
        )?;
        let err = read_int
            .run(vec![ta.clone(), Value::scalar(0i32), flow()])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("TensorArray dtype is float32")));
        let scatter = kernel(
            super::scatter::build,
            "TensorArrayScatterV3",
            &[("T", float())],
        )?;
        let err = scatter
            .run(vec![
                ta.clone(),
                Value::new(vec![1], vec![2i32])?,
                f32s(&[1, 1], &[1.0])?,
                flow(),
            ])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("max scatter index must be < array size")));
        let err = scatter
            .run(vec![
                ta,
                Value::new(vec![2], vec![0i32, 1])?,
                f32s(&[1, 1], &[1.0])?,
                flow(),
            ])
            .err();
        assert!(err.is_some_and(|e| e.0.contains("len(indices) == values.shape[0]")));
        Ok(())
    }
}
