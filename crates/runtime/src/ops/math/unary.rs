//! Elementwise math: `Neg`, `Abs`, `Square`, `Sqrt`, `Rsqrt`, `Exp`, `Log`, `Floor`,
//! `Reciprocal`. Computed in place when the input buffer is not shared.

use ckpt_graph::Node;

use crate::gemm;
use crate::ops::{
    kernel, node_error, op_bail, parallel, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::value::{Num, TensorBuf};
use crate::{Error, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum UnOp {
    Neg,
    Abs,
    Square,
    Sqrt,
    Rsqrt,
    Exp,
    Log,
    Floor,
    Reciprocal,
}

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let op = match node.op.as_str() {
        "Neg" => UnOp::Neg,
        "Abs" => UnOp::Abs,
        "Square" => UnOp::Square,
        "Sqrt" => UnOp::Sqrt,
        "Rsqrt" => UnOp::Rsqrt,
        "Exp" => UnOp::Exp,
        "Log" => UnOp::Log,
        "Floor" => UnOp::Floor,
        "Reciprocal" | "Inv" => UnOp::Reciprocal,
        other => return Err(node_error(node, format!("not a unary op: {other}"))),
    };
    kernel(Unary { op })
}

#[derive(Debug)]
struct Unary {
    op: UnOp,
}

/// `f` over every element, in place when `t` is the only reference to its buffer.
pub(crate) fn map_reuse<T: Copy + Default + Send + Sync>(
    mut t: TensorBuf<T>,
    f: impl Fn(T) -> T + Sync + Send,
) -> TensorBuf<T> {
    if let Some(data) = t.unique_mut() {
        parallel::map_in_place(data, f);
        return t;
    }
    let data = parallel::map(t.data(), f);
    TensorBuf::from_parts(t.shape().to_vec(), data)
}

/// [`map_reuse`] for float32 with the loop compiled for the CPU's widest vectors
/// ([`gemm::map_f32`]): for the branch-free `vmath` functions of recurrent cells.
pub(crate) fn map_reuse_f32(
    t: TensorBuf<f32>,
    f: impl Fn(f32) -> f32 + Copy + Sync + Send,
) -> TensorBuf<f32> {
    let mut t = t;
    if t.unique_mut().is_none() {
        t = TensorBuf::from_parts(t.shape().to_vec(), t.data().to_vec());
    }
    if let Some(data) = t.unique_mut() {
        parallel::chunks_in_place(data, |chunk| gemm::map_f32(chunk, f));
    }
    t
}

fn int_op<T: Num>(op: UnOp, t: TensorBuf<T>) -> Result<TensorBuf<T>, OpError> {
    Ok(match op {
        UnOp::Neg => map_reuse(t, T::neg),
        UnOp::Abs => map_reuse(t, |x| if x < T::ZERO { x.neg() } else { x }),
        UnOp::Square => map_reuse(t, |x| x * x),
        other => op_bail!("{other:?} needs a floating-point input"),
    })
}

macro_rules! float_op {
    ($op:expr, $t:expr) => {
        match $op {
            UnOp::Neg => map_reuse($t, |x| -x),
            UnOp::Abs => map_reuse($t, |x| x.abs()),
            UnOp::Square => map_reuse($t, |x| x * x),
            UnOp::Sqrt => map_reuse($t, |x| x.sqrt()),
            UnOp::Rsqrt => map_reuse($t, |x| 1.0 / x.sqrt()),
            UnOp::Exp => map_reuse($t, |x| x.exp()),
            UnOp::Log => map_reuse($t, |x| x.ln()),
            UnOp::Floor => map_reuse($t, |x| x.floor()),
            UnOp::Reciprocal => map_reuse($t, |x| 1.0 / x),
        }
    };
}

impl Kernel for Unary {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let y = match x {
            Value::F32(t) => Value::F32(float_op!(self.op, t)),
            Value::F64(t) => Value::F64(float_op!(self.op, t)),
            Value::I32(t) => Value::I32(int_op(self.op, t)?),
            Value::I64(t) => Value::I64(int_op(self.op, t)?),
            other => op_bail!("unsupported dtype {}", other.dtype()),
        };
        Ok(vec![y])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_ops_match_std() -> Result<(), OpError> {
        let xs = vec![0.25f32, 1.0, 2.5, 9.0, 100.0];
        for (op, f) in [
            (UnOp::Neg, (|x: f32| -x) as fn(f32) -> f32),
            (UnOp::Square, |x| x * x),
            (UnOp::Sqrt, f32::sqrt),
            (UnOp::Rsqrt, |x| 1.0 / x.sqrt()),
            (UnOp::Exp, f32::exp),
            (UnOp::Log, f32::ln),
            (UnOp::Floor, f32::floor),
            (UnOp::Reciprocal, |x| 1.0 / x),
        ] {
            let x = Value::new(vec![5], xs.clone())?;
            let shared = x.clone();
            let y = Unary { op }.run(vec![x])?;
            let want: Vec<f32> = xs.iter().map(|&x| f(x)).collect();
            assert_eq!(y[0].as_f32(), Some(want.as_slice()), "{op:?}");
            // The shared input was not modified.
            assert_eq!(shared.as_f32(), Some(xs.as_slice()));
        }
        Ok(())
    }

    #[test]
    fn integer_ops() -> Result<(), OpError> {
        let y = Unary { op: UnOp::Abs }.run(vec![Value::new(vec![3], vec![-2i64, 0, 5])?])?;
        assert_eq!(y[0].as_i64(), Some(&[2, 0, 5][..]));
        assert_eq!(
            Unary { op: UnOp::Sqrt }
                .run(vec![Value::scalar(4i32)])
                .err(),
            Some(OpError("Sqrt needs a floating-point input".into()))
        );
        Ok(())
    }
}
