//! `All` and `Any`: logical reductions of a bool tensor over axes given as an input, with
//! `keep_dims`. An empty reduction is `true` for `All` and `false` for `Any`, as in TensorFlow.

use ckpt_graph::Node;

use crate::ops::math::reduce::{reduce, Reduction};
use crate::ops::{expect, int_values, kernel, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Logical {
        all: node.op == "All",
        keep_dims: node.attr_bool_or("keep_dims", false)?,
    })
}

#[derive(Debug)]
struct Logical {
    all: bool,
    keep_dims: bool,
}

impl Kernel for Logical {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, axes] = take_inputs(inputs)?;
        let axes = int_values(&axes, "reduction_indices")?;
        let x = expect::<bool>(x, "input")?;
        // As 0/1 bytes, `All` is a minimum (empty: 255, true) and `Any` a maximum (empty: 0).
        let bytes = TensorBuf::from_parts(
            x.shape().to_vec(),
            x.data().iter().map(|&b| u8::from(b)).collect(),
        );
        let op = if self.all {
            Reduction::Min
        } else {
            Reduction::Max
        };
        let r = reduce(&bytes, &axes, self.keep_dims, op)?;
        let data = r.data().iter().map(|&b| b != 0).collect();
        Ok(vec![Value::Bool(TensorBuf::from_parts(
            r.shape().to_vec(),
            data,
        ))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(all: bool, keep_dims: bool, x: Value, axes: &[i32]) -> Result<Value, OpError> {
        let axes = Value::new(vec![axes.len()], axes.to_vec())?;
        let mut out = Logical { all, keep_dims }.run(vec![x, axes])?;
        out.pop().ok_or(OpError("no output".into()))
    }

    #[test]
    fn all_and_any_match_reference() -> Result<(), OpError> {
        // 17x257 with a pattern: row r is all true when r % 3 == 0, has one true when r % 3 == 1.
        let (rows, cols) = (17usize, 257usize);
        let data: Vec<bool> = (0..rows * cols)
            .map(|i| {
                let (r, c) = (i / cols, i % cols);
                r % 3 == 0 || (r % 3 == 1 && c == 100)
            })
            .collect();
        let x = Value::new(vec![rows, cols], data.clone())?;
        let all_rows = run(true, false, x.clone(), &[1])?;
        let any_rows = run(false, true, x.clone(), &[-1])?;
        assert_eq!(any_rows.shape(), &[rows, 1]);
        for r in 0..rows {
            let row = &data[r * cols..(r + 1) * cols];
            assert_eq!(
                all_rows.as_bool().map(|v| v[r]),
                Some(row.iter().all(|&b| b))
            );
            assert_eq!(
                any_rows.as_bool().map(|v| v[r]),
                Some(row.iter().any(|&b| b))
            );
        }
        let cols_all = run(true, false, x.clone(), &[0])?;
        assert_eq!(cols_all.as_bool(), Some(&vec![false; cols][..]));
        assert_eq!(run(false, false, x, &[0, 1])?.as_bool(), Some(&[true][..]));
        Ok(())
    }

    #[test]
    fn empty_reductions_follow_tensorflow() -> Result<(), OpError> {
        let empty = Value::new(vec![0], Vec::<bool>::new())?;
        assert_eq!(
            run(true, false, empty.clone(), &[0])?.as_bool(),
            Some(&[true][..])
        );
        assert_eq!(
            run(false, false, empty, &[0])?.as_bool(),
            Some(&[false][..])
        );
        let x = Value::new(vec![2, 0], Vec::<bool>::new())?;
        let y = run(true, false, x, &[1])?;
        assert_eq!(y.as_bool(), Some(&[true, true][..]));
        assert_eq!(
            run(true, false, Value::scalar(1.0f32), &[]).err(),
            Some(OpError("input has dtype float32, expected bool".into()))
        );
        Ok(())
    }
}
