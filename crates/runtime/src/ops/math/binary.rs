//! Broadcasting arithmetic: `Add`, `AddV2`, `Sub`, `Mul`, `RealDiv`, `FloorDiv`, `Maximum`,
//! `Minimum`, `SquaredDifference`.

use std::sync::atomic::{AtomicBool, Ordering};

use ckpt_graph::Node;

use crate::ops::broadcast::zip2_reuse;
use crate::ops::{kernel, node_error, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{Error, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Max,
    Min,
    SquaredDifference,
    FloorMod,
    Pow,
}

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let op = match node.op.as_str() {
        "Add" | "AddV2" => BinOp::Add,
        "Sub" => BinOp::Sub,
        "Mul" => BinOp::Mul,
        "RealDiv" => BinOp::Div,
        "FloorDiv" => BinOp::FloorDiv,
        "Maximum" => BinOp::Max,
        "Minimum" => BinOp::Min,
        "SquaredDifference" => BinOp::SquaredDifference,
        "FloorMod" => BinOp::FloorMod,
        "Pow" => BinOp::Pow,
        other => return Err(node_error(node, format!("not a binary op: {other}"))),
    };
    kernel(Binary { op })
}

/// `AddN`: the sum of inputs of one shape and dtype.
pub(crate) fn build_add_n(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(crate::ops::FnKernel(|inputs| {
        let mut it = inputs.into_iter();
        let Some(mut acc) = it.next() else {
            op_bail!("AddN needs at least one input");
        };
        for (i, v) in it.enumerate() {
            if v.shape() != acc.shape() {
                op_bail!(
                    "input {} has shape {:?}, input 0 has {:?}",
                    i + 1,
                    v.shape(),
                    acc.shape()
                );
            }
            acc = binary(BinOp::Add, acc, v)?;
        }
        Ok(vec![acc])
    }))
}

#[derive(Debug)]
struct Binary {
    op: BinOp,
}

impl Kernel for Binary {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [a, b] = take_inputs(inputs)?;
        Ok(vec![binary(self.op, a, b)?])
    }
}

/// `a op b` with broadcasting; both inputs must have the same numeric dtype.
pub(crate) fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, OpError> {
    Ok(
        dispatch_numbers!((a, b), |a, b| Value::from(arith(op, a, b)?), else {
            (a, b) => op_bail!("unsupported dtypes {} and {}", a.dtype(), b.dtype()),
        }),
    )
}

fn max<T: Num>(x: T, y: T) -> T {
    // NaN propagates, as in TensorFlow.
    if x.is_nan() || x > y {
        x
    } else {
        y
    }
}

fn min<T: Num>(x: T, y: T) -> T {
    if x.is_nan() || x < y {
        x
    } else {
        y
    }
}

pub(crate) fn arith<T: Num>(
    op: BinOp,
    a: TensorBuf<T>,
    b: TensorBuf<T>,
) -> Result<TensorBuf<T>, OpError> {
    let div_by_zero = AtomicBool::new(false);
    let div = |x: T, y: T| {
        x.div(y).unwrap_or_else(|| {
            div_by_zero.store(true, Ordering::Relaxed);
            T::ZERO
        })
    };
    let out = match op {
        BinOp::Add => zip2_reuse(a, b, |x, y| x + y)?,
        BinOp::Sub => zip2_reuse(a, b, |x, y| x.sub(y))?,
        BinOp::Mul => zip2_reuse(a, b, |x, y| x * y)?,
        BinOp::Div => zip2_reuse(a, b, div)?,
        BinOp::FloorDiv => zip2_reuse(a, b, |x, y| {
            let q = div(x, y);
            if T::IS_FLOAT {
                T::from_f64(q.as_f64().floor())
            } else if q * y != x && ((x < T::ZERO) != (y < T::ZERO)) {
                // Integer division truncates; floor rounds toward negative infinity.
                q.sub(T::ONE)
            } else {
                q
            }
        })?,
        BinOp::Max => zip2_reuse(a, b, max)?,
        BinOp::Min => zip2_reuse(a, b, min)?,
        BinOp::SquaredDifference => zip2_reuse(a, b, |x, y| {
            let d = x.sub(y);
            d * d
        })?,
        BinOp::FloorMod => zip2_reuse(a, b, |x, y| {
            if T::IS_FLOAT {
                // TensorFlow: fmod, moved to the divisor's sign.
                let (xf, yf) = (x.as_f64(), y.as_f64());
                let r = xf % yf;
                T::from_f64(if r != 0.0 && ((r < 0.0) != (yf < 0.0)) {
                    r + yf
                } else {
                    r
                })
            } else {
                let q = div(x, y);
                let r = x.sub(q * y);
                if r != T::ZERO && ((r < T::ZERO) != (y < T::ZERO)) {
                    r + y
                } else {
                    r
                }
            }
        })?,
        BinOp::Pow => {
            if !T::IS_FLOAT && b.data().iter().any(|&e| e < T::ZERO) {
                op_bail!("integers to negative integer powers are not allowed");
            }
            zip2_reuse(a, b, |x, y| {
                if T::IS_FLOAT {
                    T::from_f64(x.as_f64().powf(y.as_f64()))
                } else {
                    let mut acc = T::ONE;
                    let mut e = y.as_f64() as u64;
                    let mut base = x;
                    while e > 0 {
                        if e & 1 == 1 {
                            acc = acc * base;
                        }
                        base = base * base;
                        e >>= 1;
                    }
                    acc
                }
            })?
        }
    };
    if div_by_zero.load(Ordering::Relaxed) {
        op_bail!("integer division by zero");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_matches_scalar_reference() -> Result<(), OpError> {
        let xs = vec![-7.5f32, -1.0, 0.0, 2.0, 3.5, 9.0];
        let ys = vec![2.0f32, -3.0, 1.5, 2.0, -0.5, 4.0];
        let t = |v: &Vec<f32>| TensorBuf::from_parts(vec![2, 3], v.clone());
        type Case = (BinOp, fn(f32, f32) -> f32);
        let cases: [Case; 8] = [
            (BinOp::Add, |x, y| x + y),
            (BinOp::Sub, |x, y| x - y),
            (BinOp::Mul, |x, y| x * y),
            (BinOp::Div, |x, y| x / y),
            (BinOp::FloorDiv, |x, y| (x / y).floor()),
            (BinOp::Max, f32::max),
            (BinOp::Min, f32::min),
            (BinOp::SquaredDifference, |x, y| (x - y) * (x - y)),
        ];
        for (op, f) in cases {
            let out = arith(op, t(&xs), t(&ys))?;
            let want: Vec<f32> = xs.iter().zip(&ys).map(|(&x, &y)| f(x, y)).collect();
            assert_eq!(out.data(), want.as_slice(), "{op:?}");
        }
        Ok(())
    }

    #[test]
    fn floor_mod_and_pow_follow_tensorflow() -> Result<(), OpError> {
        let a = TensorBuf::from_parts(vec![4], vec![7i32, -7, 7, -7]);
        let b = TensorBuf::from_parts(vec![4], vec![3i32, 3, -3, -3]);
        assert_eq!(
            arith(BinOp::FloorMod, a.clone(), b)?.data(),
            &[1, 2, -2, -1]
        );
        let fa = TensorBuf::from_parts(vec![4], vec![7.5f32, -7.5, 7.5, -7.5]);
        let fb = TensorBuf::from_parts(vec![4], vec![2.0f32, 2.0, -2.0, -2.0]);
        assert_eq!(
            arith(BinOp::FloorMod, fa, fb)?.data(),
            &[1.5, 0.5, -0.5, -1.5]
        );
        let e = TensorBuf::from_parts(vec![], vec![3i32]);
        assert_eq!(
            arith(BinOp::Pow, a.clone(), e)?.data(),
            &[343, -343, 343, -343]
        );
        assert_eq!(
            arith(BinOp::Pow, a, TensorBuf::from_parts(vec![], vec![-1i32])).err(),
            Some(OpError(
                "integers to negative integer powers are not allowed".into()
            ))
        );
        let p = arith(
            BinOp::Pow,
            TensorBuf::from_parts(vec![2], vec![4.0f32, 2.0]),
            TensorBuf::from_parts(vec![], vec![0.5f32]),
        )?;
        assert_eq!(p.data(), &[2.0, 2.0f32.sqrt()]);
        Ok(())
    }

    #[test]
    fn integer_division_floors_and_rejects_zero() -> Result<(), OpError> {
        let a = TensorBuf::from_parts(vec![4], vec![7i32, -7, 7, -7]);
        let b = TensorBuf::from_parts(vec![4], vec![2i32, 2, -2, -2]);
        assert_eq!(
            arith(BinOp::FloorDiv, a.clone(), b.clone())?.data(),
            &[3, -4, -4, 3]
        );
        assert_eq!(arith(BinOp::Div, a.clone(), b)?.data(), &[3, -3, -3, 3]);
        let z = TensorBuf::from_parts(vec![], vec![0i32]);
        assert_eq!(
            arith(BinOp::Div, a, z).err(),
            Some(OpError("integer division by zero".into()))
        );
        Ok(())
    }

    #[test]
    fn broadcasting_and_dtype_mismatch() -> Result<(), OpError> {
        let a = Value::new(vec![2, 1], vec![1.0f32, 2.0])?;
        let b = Value::new(vec![3], vec![10.0f32, 20.0, 30.0])?;
        let out = binary(BinOp::Add, a, b)?;
        assert_eq!(out.shape(), &[2, 3]);
        assert_eq!(
            out.as_f32(),
            Some(&[11.0, 21.0, 31.0, 12.0, 22.0, 32.0][..])
        );
        assert_eq!(
            binary(BinOp::Add, Value::scalar(1.0f32), Value::scalar(1i32)).err(),
            Some(OpError("unsupported dtypes float32 and int32".into()))
        );
        Ok(())
    }

    #[test]
    fn int32_maximum_and_minimum_match_tensorflow() -> Result<(), OpError> {
        let a = TensorBuf::from_parts(vec![3], vec![1i32, -5, i32::MAX]);
        let b = TensorBuf::from_parts(vec![3], vec![0i32, -4, i32::MIN]);
        assert_eq!(
            arith(BinOp::Max, a.clone(), b.clone())?.data(),
            &[1, -4, i32::MAX]
        );
        assert_eq!(arith(BinOp::Min, a, b)?.data(), &[0, -5, i32::MIN]);
        Ok(())
    }
}
