//! `Select` (condition of the same shape, a vector over the first dimension, or a scalar
//! picking one input whole) and
//! `SelectV2` (all three inputs broadcast).

use ckpt_graph::Node;

use crate::ops::broadcast::zip3;
use crate::ops::{expect, kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::value::{dispatch_numbers, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Select {
        v2: node.op == "SelectV2",
    })
}

#[derive(Debug)]
struct Select {
    v2: bool,
}

impl Kernel for Select {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [cond, t, e] = take_inputs(inputs)?;
        let mut cond = expect::<bool>(cond, "condition")?;
        if !self.v2 {
            if t.shape() != e.shape() {
                op_bail!(
                    "then and else must have the same shape, got {:?} and {:?}",
                    t.shape(),
                    e.shape()
                );
            }
            if cond.rank() == 0 {
                // A scalar condition picks one of the inputs whole.
                return Ok(vec![if cond.data()[0] { t } else { e }]);
            }
            if cond.shape() != t.shape() {
                let ok = cond.rank() == 1 && t.shape().first() == Some(&cond.len());
                if !ok {
                    op_bail!("condition shape {:?} must equal the input shape {:?} or be its first dimension", cond.shape(), t.shape());
                }
                // A vector condition picks whole rows: give it trailing unit dimensions.
                let mut shape = vec![1usize; t.shape().len()];
                shape[0] = cond.len();
                cond = cond.reshaped(shape);
            }
        }
        fn pick<T>(c: bool, x: T, y: T) -> T {
            if c {
                x
            } else {
                y
            }
        }
        let out = dispatch_numbers!((t, e), |t, e| Value::from(zip3(&cond, &t, &e, pick)?), else {
            (Value::Bool(t), Value::Bool(e)) => Value::Bool(zip3(&cond, &t, &e, pick)?),
            (Value::Str(t), Value::Str(e)) => Value::Str(select_cloned(&cond, &t, &e)?),
            (t, e) => op_bail!(
                "then and else have different dtypes {} and {}",
                t.dtype(),
                e.dtype()
            ),
        });
        Ok(vec![out])
    }
}

/// Select for non-`Copy` elements: pick indices, then clone.
fn select_cloned<T: Clone>(
    c: &TensorBuf<bool>,
    t: &TensorBuf<T>,
    e: &TensorBuf<T>,
) -> Result<TensorBuf<T>, OpError> {
    let idx_t = TensorBuf::from_parts(t.shape().to_vec(), (0..t.len()).collect::<Vec<usize>>());
    let idx_e = TensorBuf::from_parts(e.shape().to_vec(), (0..e.len()).collect::<Vec<usize>>());
    let picked = zip3(
        c,
        &idx_t,
        &idx_e,
        |c, i, j| if c { (true, i) } else { (false, j) },
    )?;
    let data = picked
        .data()
        .iter()
        .map(|&(from_t, i)| {
            if from_t {
                t.data()[i].clone()
            } else {
                e.data()[i].clone()
            }
        })
        .collect();
    Ok(TensorBuf::from_parts(picked.shape().to_vec(), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_v2_broadcasts() -> Result<(), OpError> {
        let c = Value::new(vec![2, 1], vec![true, false])?;
        let t = Value::new(vec![3], vec![1.0f32, 2.0, 3.0])?;
        let e = Value::scalar(0.0f32);
        let out = Select { v2: true }.run(vec![c, t, e])?;
        assert_eq!(out[0].shape(), &[2, 3]);
        assert_eq!(out[0].as_f32(), Some(&[1.0, 2.0, 3.0, 0.0, 0.0, 0.0][..]));
        Ok(())
    }

    #[test]
    fn select_v1_vector_condition_picks_rows() -> Result<(), OpError> {
        let c = Value::new(vec![2], vec![false, true])?;
        let t = Value::new(vec![2, 2], vec![1i32, 2, 3, 4])?;
        let e = Value::new(vec![2, 2], vec![5i32, 6, 7, 8])?;
        let out = Select { v2: false }.run(vec![c, t.clone(), e.clone()])?;
        assert_eq!(out[0].as_i32(), Some(&[5, 6, 3, 4][..]));
        let scalar = Select { v2: false }.run(vec![Value::scalar(false), t.clone(), e.clone()])?;
        assert_eq!(scalar[0].as_i32(), Some(&[5, 6, 7, 8][..]));
        let bad = Value::new(vec![3], vec![true; 3])?;
        assert_eq!(
            Select { v2: false }.run(vec![bad, t, e]).err(),
            Some(OpError(
                "condition shape [3] must equal the input shape [2, 2] or be its first dimension"
                    .into()
            ))
        );
        Ok(())
    }
}
