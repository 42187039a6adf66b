//! `OneHot`: `on_value` where an index names the position along the new axis, `off_value`
//! elsewhere (an index out of `[0, depth)` gives a row of `off_value`, as in TensorFlow).

use ckpt_graph::Node;

use crate::ops::{
    fmt_shape, int_scalar, int_values, kernel, node_error, op_bail, output_len, take_inputs,
    BuildCtx, Built, Kernel, OpError,
};
use crate::value::{map_any, Datum, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let axis = node.attr_i64_or("axis", -1)?;
    if axis < -1 {
        return Err(node_error(
            node,
            format!("axis must be -1 or non-negative, got {axis}"),
        ));
    }
    kernel(OneHot { axis })
}

#[derive(Debug)]
struct OneHot {
    axis: i64,
}

impl Kernel for OneHot {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [indices, depth, on, off] = take_inputs(inputs)?;
        let idx = match &indices {
            Value::U8(t) => t.data().iter().map(|&i| i64::from(i)).collect(),
            other => int_values(other, "indices")?,
        };
        let depth = int_scalar(&depth, "depth")?;
        let Ok(depth) = usize::try_from(depth) else {
            op_bail!("depth must be non-negative, got {depth}");
        };
        let shape = indices.shape();
        let axis = if self.axis == -1 {
            shape.len()
        } else {
            match usize::try_from(self.axis)
                .ok()
                .filter(|&a| a <= shape.len())
            {
                Some(a) => a,
                None => op_bail!(
                    "axis {} is out of range for indices of shape {}",
                    self.axis,
                    fmt_shape(shape)
                ),
            }
        };
        if on.dtype() != off.dtype() || on.len() != 1 || off.len() != 1 {
            op_bail!(
                "on_value and off_value must be scalars of one dtype, got {} {} and {} {}",
                on.dtype(),
                fmt_shape(on.shape()),
                off.dtype(),
                fmt_shape(off.shape())
            );
        }
        let mut out_shape = shape.to_vec();
        out_shape.insert(axis, depth);
        output_len(&out_shape, crate::ops::element_bytes(on.dtype()))?;
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis..].iter().product();
        let out = map_any!(on, t => {
            let off = <_ as Datum>::take(off).map_err(|v| OpError(format!("off_value has dtype {}", v.dtype())))?;
            Datum::wrap(one_hot(&idx, outer, inner, depth, &t.data()[0], &off.data()[0], out_shape))
        }, else op_bail!("on_value must be a tensor, got a {}", on.kind()));
        Ok(vec![out])
    }
}

/// `out[o, d, i] = on if idx[o, i] == d else off`.
fn one_hot<T: Clone>(
    idx: &[i64],
    outer: usize,
    inner: usize,
    depth: usize,
    on: &T,
    off: &T,
    out_shape: Vec<usize>,
) -> TensorBuf<T> {
    let mut data = vec![off.clone(); outer * depth * inner];
    for o in 0..outer {
        for i in 0..inner {
            if let Some(d) = usize::try_from(idx[o * inner + i])
                .ok()
                .filter(|&d| d < depth)
            {
                data[(o * depth + d) * inner + i] = on.clone();
            }
        }
    }
    TensorBuf::from_parts(out_shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(axis: i64, indices: Value, depth: i32, on: Value, off: Value) -> Result<Value, OpError> {
        let mut out = OneHot { axis }.run(vec![indices, Value::scalar(depth), on, off])?;
        out.pop().ok_or(OpError("no output".into()))
    }

    /// `tf.one_hot` of the same inputs (TensorFlow 2.21).
    #[test]
    fn matches_tensorflow() -> Result<(), OpError> {
        let idx = Value::new(vec![5], vec![0i32, 2, -1, 3, 5])?;
        let out = run(-1, idx, 4, Value::scalar(1.0f32), Value::scalar(0.0f32))?;
        assert_eq!(out.shape(), &[5, 4]);
        let want: Vec<f32> = [
            [1, 0, 0, 0],
            [0, 0, 1, 0],
            [0, 0, 0, 0],
            [0, 0, 0, 1],
            [0, 0, 0, 0],
        ]
        .iter()
        .flatten()
        .map(|&v| v as f32)
        .collect();
        assert_eq!(out.as_f32(), Some(want.as_slice()));
        let idx = Value::new(vec![2, 2], vec![0i64, 2, 1, -1])?;
        let out = run(0, idx.clone(), 3, Value::scalar(7i32), Value::scalar(-1i32))?;
        assert_eq!(out.shape(), &[3, 2, 2]);
        assert_eq!(
            out.as_i32(),
            Some(&[7, -1, -1, -1, -1, -1, 7, -1, -1, 7, -1, -1][..])
        );
        let out = run(1, idx.clone(), 3, Value::scalar(true), Value::scalar(false))?;
        assert_eq!(out.shape(), &[2, 3, 2]);
        assert_eq!(
            run(
                3,
                idx.clone(),
                3,
                Value::scalar(1.0f32),
                Value::scalar(0.0f32)
            )
            .err(),
            Some(OpError(
                "axis 3 is out of range for indices of shape [2,2]".into()
            ))
        );
        assert_eq!(
            run(-1, idx, -1, Value::scalar(1.0f32), Value::scalar(0.0f32)).err(),
            Some(OpError("depth must be non-negative, got -1".into()))
        );
        Ok(())
    }

    #[test]
    fn huge_depth_is_refused() -> Result<(), OpError> {
        let idx = Value::new(vec![1 << 20], vec![0i32; 1 << 20])?;
        let err = run(
            -1,
            idx,
            i32::MAX,
            Value::scalar(1.0f32),
            Value::scalar(0.0f32),
        )
        .err();
        assert!(matches!(err, Some(OpError(m)) if m.contains("memory budget")));
        Ok(())
    }
}
