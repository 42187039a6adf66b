//! `Cumsum` and `Cumprod` along an axis given as an input, with `exclusive` (each output
//! leaves its own element out) and `reverse` (accumulate from the end). Accumulation is
//! sequential along the axis, as TensorFlow's Eigen scan is.

use ckpt_graph::Node;

use crate::ops::{
    fmt_shape, int_scalar, kernel, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Cumulative {
        product: node.op == "Cumprod",
        exclusive: node.attr_bool_or("exclusive", false)?,
        reverse: node.attr_bool_or("reverse", false)?,
    })
}

#[derive(Debug)]
struct Cumulative {
    product: bool,
    exclusive: bool,
    reverse: bool,
}

impl Kernel for Cumulative {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x, axis] = take_inputs(inputs)?;
        let axis = int_scalar(&axis, "axis")?;
        let y = dispatch_numbers!(x, |t| Value::from(self.scan(t, axis)?), else {
            other => op_bail!("unsupported dtype {}", other.dtype()),
        });
        Ok(vec![y])
    }
}

impl Cumulative {
    fn scan<T: Num>(&self, x: TensorBuf<T>, axis: i64) -> Result<TensorBuf<T>, OpError> {
        let shape = x.shape().to_vec();
        let rank = shape.len() as i64;
        if axis < -rank || axis >= rank {
            op_bail!(
                "axis {axis} is out of range for input of shape {}",
                fmt_shape(&shape)
            );
        }
        let axis = if axis < 0 { axis + rank } else { axis } as usize;
        let n = shape[axis];
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let (init, op): (T, fn(T, T) -> T) = if self.product {
            (T::ONE, |a, b| a * b)
        } else {
            (T::ZERO, |a, b| a + b)
        };
        let mut data = x.into_vec();
        for o in 0..outer {
            for i in 0..inner {
                let mut acc = init;
                for step in 0..n {
                    let j = if self.reverse { n - 1 - step } else { step };
                    let at = (o * n + j) * inner + i;
                    let v = data[at];
                    if self.exclusive {
                        data[at] = acc;
                        acc = op(acc, v);
                    } else {
                        acc = op(acc, v);
                        data[at] = acc;
                    }
                }
            }
        }
        Ok(TensorBuf::from_parts(shape, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tf.math.cumsum` / `tf.math.cumprod` of [[1,2,3],[4,5,6]] (TensorFlow 2.21).
    #[test]
    fn matches_tensorflow() -> Result<(), OpError> {
        let x = TensorBuf::from_parts(vec![2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let run = |product, exclusive, reverse, axis| {
            Cumulative {
                product,
                exclusive,
                reverse,
            }
            .scan(x.clone(), axis)
        };
        assert_eq!(
            run(false, false, false, 1)?.data(),
            &[1.0, 3.0, 6.0, 4.0, 9.0, 15.0]
        );
        assert_eq!(
            run(false, false, true, 1)?.data(),
            &[6.0, 5.0, 3.0, 15.0, 11.0, 6.0]
        );
        assert_eq!(
            run(false, true, false, -1)?.data(),
            &[0.0, 1.0, 3.0, 0.0, 4.0, 9.0]
        );
        assert_eq!(
            run(false, true, true, 1)?.data(),
            &[5.0, 3.0, 0.0, 11.0, 6.0, 0.0]
        );
        assert_eq!(
            run(true, false, false, 0)?.data(),
            &[1.0, 2.0, 3.0, 4.0, 10.0, 18.0]
        );
        assert_eq!(
            run(true, false, true, 0)?.data(),
            &[4.0, 10.0, 18.0, 4.0, 5.0, 6.0]
        );
        assert_eq!(
            run(true, true, false, 0)?.data(),
            &[1.0, 1.0, 1.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(
            run(true, true, true, 0)?.data(),
            &[4.0, 5.0, 6.0, 1.0, 1.0, 1.0]
        );
        assert_eq!(
            run(false, false, false, 2).err(),
            Some(OpError(
                "axis 2 is out of range for input of shape [2,3]".into()
            ))
        );
        Ok(())
    }

    #[test]
    fn matches_reference_on_odd_shapes() -> Result<(), OpError> {
        for shape in [vec![17usize, 257], vec![7, 1, 3], vec![0, 4], vec![5]] {
            let n: usize = shape.iter().product();
            let data: Vec<i64> = (0..n as i64).map(|i| i % 7 - 3).collect();
            for axis in 0..shape.len() {
                let k = Cumulative {
                    product: false,
                    exclusive: false,
                    reverse: false,
                };
                let out = k.scan(
                    TensorBuf::from_parts(shape.clone(), data.clone()),
                    axis as i64,
                )?;
                let inner: usize = shape[axis + 1..].iter().product();
                for (flat, &got) in out.data().iter().enumerate() {
                    let j = flat / inner % shape[axis];
                    let want: i64 = (0..=j).map(|jj| data[flat - (j - jj) * inner]).sum();
                    assert_eq!(got, want, "{shape:?} axis {axis} at {flat}");
                }
            }
        }
        Ok(())
    }
}
