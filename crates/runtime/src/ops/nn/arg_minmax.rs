//! `ArgMax` / `ArgMin` along one axis; ties go to the smallest index. `output_type`
//! defaults to int64 (graphs older than the attribute always produce int64).

use ckpt_graph::Node;
use ckpt_proto::DataType;

use crate::ops::{
    dtype_attr_or, int_scalar, kernel, node_error, normalize_axis, op_bail, take_inputs, BuildCtx,
    Built, Kernel, OpError,
};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{DType, Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let output = dtype_attr_or(node, "output_type", DataType::DtInt64)?;
    if !matches!(output, DType::Int32 | DType::Int64) {
        return Err(node_error(
            node,
            format!("output_type must be int32 or int64, got {output}"),
        ));
    }
    kernel(ArgMinMax {
        max: node.op == "ArgMax",
        output,
    })
}

#[derive(Debug)]
struct ArgMinMax {
    max: bool,
    output: DType,
}

impl Kernel for ArgMinMax {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, axis] = take_inputs(inputs)?;
        let axis = int_scalar(&axis, "dimension")?;
        let (shape, idx) = dispatch_numbers!(&x, |t| arg(t, axis, self.max)?, else {
            other => op_bail!("unsupported dtype {}", other.dtype()),
        });
        let out = match self.output {
            DType::Int32 => Value::I32(TensorBuf::from_parts(
                shape,
                idx.iter().map(|&i| i as i32).collect(),
            )),
            _ => Value::I64(TensorBuf::from_parts(
                shape,
                idx.iter().map(|&i| i as i64).collect(),
            )),
        };
        Ok(vec![out])
    }
}

fn arg<T: Num>(
    x: &TensorBuf<T>,
    axis: i64,
    max: bool,
) -> Result<(Vec<usize>, Vec<usize>), OpError> {
    let shape = x.shape();
    let axis = normalize_axis(axis, shape.len())?;
    let r = shape[axis];
    if r == 0 {
        op_bail!(
            "cannot take the arg {} of an empty dimension",
            if max { "max" } else { "min" }
        );
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape = shape.to_vec();
    out_shape.remove(axis);
    let d = x.data();
    // As Eigen's ArgMax/ArgMinTupleReducer: start at index 0 with the lowest (highest) finite
    // value and move on strictly greater (smaller) values, so that the first of equal values
    // wins and NaN never does ([nan, 1, 2] gives 2; all NaN gives 0).
    let start = if max {
        T::LOWEST_FINITE
    } else {
        T::HIGHEST_FINITE
    };
    let mut idx = vec![0usize; outer * inner];
    for o in 0..outer {
        let best_row = &mut idx[o * inner..(o + 1) * inner];
        let mut best: Vec<T> = vec![start; inner];
        for j in 0..r {
            let row = &d[(o * r + j) * inner..(o * r + j + 1) * inner];
            for ((b, bi), &v) in best.iter_mut().zip(best_row.iter_mut()).zip(row) {
                let better = if max { v > *b } else { v < *b };
                if better {
                    *b = v;
                    *bi = j;
                }
            }
        }
    }
    Ok((out_shape, idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_matches_reference_with_ties() -> Result<(), OpError> {
        let x = TensorBuf::from_parts(vec![2, 3], vec![1.0f32, 5.0, 5.0, 7.0, -1.0, 7.0]);
        assert_eq!(arg(&x, 1, true)?, (vec![2], vec![1, 0]));
        assert_eq!(arg(&x, 1, false)?, (vec![2], vec![0, 1]));
        assert_eq!(arg(&x, 0, true)?, (vec![3], vec![1, 0, 1]));
        assert_eq!(arg(&x, -2, false)?, (vec![3], vec![0, 1, 0]));
        assert_eq!(
            arg(&x, 2, true).err(),
            Some(OpError("axis 2 is out of range for rank 2".into()))
        );
        let big: Vec<f32> = (0..17 * 257).map(|i| ((i * 7919) % 1000) as f32).collect();
        let t = TensorBuf::from_parts(vec![17, 257], big.clone());
        let (_, got) = arg(&t, 1, true)?;
        for (row, &g) in got.iter().enumerate() {
            let r = &big[row * 257..(row + 1) * 257];
            let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(g, r.iter().position(|&v| v == m).unwrap_or(usize::MAX));
        }
        Ok(())
    }

    #[test]
    fn output_type() -> Result<(), OpError> {
        let k = ArgMinMax {
            max: true,
            output: DType::Int32,
        };
        let out = k.run(vec![
            Value::new(vec![3], vec![0.0f32, 2.0, 1.0])?,
            Value::scalar(0i32),
        ])?;
        assert_eq!(out[0].as_i32(), Some(&[1][..]));
        Ok(())
    }
}
