//! Broadcasting arithmetic: `Add`, `AddV2`, `Sub`, `Mul`, `Div`, `RealDiv`, `DivNoNan`,
//! `FloorDiv`, `FloorMod`, `Maximum`, `Minimum`, `Pow`, `SquaredDifference`.
//!
//! `Div` is TensorFlow's oldest division (the one TF 0.x dropout divides by `keep_prob` with):
//! true division for floats, and for integers C-style division that truncates toward zero and
//! fails on a zero divisor, like `RealDiv` here. `DivNoNan` (floats only) is 0 where the divisor
//! is 0, whatever the dividend, NaN and infinities included.

use std::sync::atomic::{AtomicBool, Ordering};

use ckpt_graph::Node;

use crate::ops::broadcast::zip2_reuse;
use crate::ops::{kernel, node_error, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::value::{dispatch_numbers, Num, TensorBuf};
use crate::{DType, Error, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    DivNoNan,
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
        "Div" | "RealDiv" => BinOp::Div,
        "DivNoNan" => {
            // TensorFlow registers DivNoNan for floating-point (and complex) types only.
            if let Some(t) = node
                .attr_dtype("T")
                .ok()
                .and_then(|t| DType::from_proto(t as i32))
            {
                if !matches!(
                    t,
                    DType::Float16 | DType::BFloat16 | DType::Float32 | DType::Float64
                ) {
                    return Err(node_error(
                        node,
                        format!(
                            "DivNoNan is defined for floating-point types only, not {}",
                            t.name()
                        ),
                    ));
                }
            }
            BinOp::DivNoNan
        }
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
        BinOp::DivNoNan => {
            if !T::IS_FLOAT {
                op_bail!(
                    "DivNoNan is defined for floating-point types only, not {}",
                    T::DTYPE
                );
            }
            zip2_reuse(a, b, |x, y| if y == T::ZERO { T::ZERO } else { div(x, y) })?
        }
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

    /// Shapes pairs for the division kernels: empty, scalar, odd sizes, broadcasting both ways.
    const DIV_SHAPES: &[(&[usize], &[usize])] = &[
        (&[0], &[0]),
        (&[0, 3], &[3]),
        (&[], &[]),
        (&[1], &[]),
        (&[7], &[7]),
        (&[7, 1, 5], &[1, 4, 1]),
        (&[17, 257], &[257]),
        (&[17, 1], &[17, 257]),
    ];

    /// Dividends and divisors with zeros, signs, NaN and infinities among them.
    fn float_operands(n: usize, salt: usize) -> Vec<f64> {
        const SPECIAL: [f64; 6] = [0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.0];
        (0..n)
            .map(|i| {
                let k = i * 7 + salt;
                if k.is_multiple_of(5) {
                    SPECIAL[(k / 5) % SPECIAL.len()]
                } else {
                    ((k * 37) % 101) as f64 / 8.0 - 6.0
                }
            })
            .collect()
    }

    /// `f` applied elementwise with broadcasting, in plain loops.
    fn reference<T: Copy, O>(
        a: &[usize],
        x: &[T],
        b: &[usize],
        y: &[T],
        f: impl Fn(T, T) -> O,
    ) -> Result<(Vec<usize>, Vec<O>), OpError> {
        use crate::ops::broadcast::tests::reference_index;
        let shape = crate::ops::broadcast::broadcast_shapes(&[a, b])?;
        let n: usize = shape.iter().product();
        let out = (0..n)
            .map(|i| {
                f(
                    x[reference_index(&shape, a, i)],
                    y[reference_index(&shape, b, i)],
                )
            })
            .collect();
        Ok((shape, out))
    }

    fn same_f64(got: &[f64], want: &[f64]) -> bool {
        got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(g, w)| g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()))
    }

    #[test]
    fn float_div_and_div_no_nan_match_a_plain_reference() -> Result<(), OpError> {
        for &(sa, sb) in DIV_SHAPES {
            let x = float_operands(sa.iter().product(), 1);
            let y = float_operands(sb.iter().product(), 3);
            let t = |s: &[usize], v: &[f64]| TensorBuf::from_parts(s.to_vec(), v.to_vec());
            let (shape, want) = reference(sa, &x, sb, &y, |x, y| x / y)?;
            let got = arith(BinOp::Div, t(sa, &x), t(sb, &y))?;
            assert_eq!(got.shape(), shape.as_slice(), "Div {sa:?} {sb:?}");
            assert!(same_f64(got.data(), &want), "Div {sa:?} {sb:?}");

            // DivNoNan: 0 wherever the divisor is ±0, even for NaN and infinite dividends.
            let (_, want) = reference(sa, &x, sb, &y, |x, y| if y == 0.0 { 0.0 } else { x / y })?;
            let got = arith(BinOp::DivNoNan, t(sa, &x), t(sb, &y))?;
            assert_eq!(got.shape(), shape.as_slice(), "DivNoNan {sa:?} {sb:?}");
            assert!(same_f64(got.data(), &want), "DivNoNan {sa:?} {sb:?}");

            // float32 is computed in float32.
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
            let (_, want) = reference(
                sa,
                &x32,
                sb,
                &y32,
                |x, y| if y == 0.0 { 0.0 } else { x / y },
            )?;
            let got = arith(
                BinOp::DivNoNan,
                TensorBuf::from_parts(sa.to_vec(), x32),
                TensorBuf::from_parts(sb.to_vec(), y32),
            )?;
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(got.data()), bits(&want), "DivNoNan f32 {sa:?} {sb:?}");
        }
        // TensorFlow's own answers (TF 2.21, tf.raw_ops.DivNoNan and Div).
        let got = arith(
            BinOp::DivNoNan,
            TensorBuf::from_parts(
                vec![6],
                vec![1.0f32, -1.0, 0.0, f32::NAN, f32::INFINITY, 3.0],
            ),
            TensorBuf::from_parts(vec![6], vec![0.0f32, 0.0, 0.0, 0.0, 0.0, 2.0]),
        )?;
        assert_eq!(got.data(), &[0.0, 0.0, 0.0, 0.0, 0.0, 1.5]);
        let got = arith(
            BinOp::DivNoNan,
            TensorBuf::from_parts(vec![2], vec![1.0f32, f32::NAN]),
            TensorBuf::from_parts(vec![2], vec![f32::NAN, 1.0]),
        )?;
        assert!(got.data().iter().all(|v| v.is_nan()));
        Ok(())
    }

    #[test]
    fn integer_div_truncates_like_c_and_div_no_nan_refuses_integers() -> Result<(), OpError> {
        for &(sa, sb) in DIV_SHAPES {
            let na: usize = sa.iter().product();
            let nb: usize = sb.iter().product();
            let x: Vec<i64> = (0..na).map(|i| (i as i64 * 7919) % 201 - 100).collect();
            // Nonzero divisors of both signs.
            let y: Vec<i64> = (0..nb)
                .map(|i| {
                    let v = (i as i64 * 31) % 23 - 11;
                    if v == 0 {
                        5
                    } else {
                        v
                    }
                })
                .collect();
            let (shape, want) = reference(sa, &x, sb, &y, |x, y| x / y)?;
            let got = arith(
                BinOp::Div,
                TensorBuf::from_parts(sa.to_vec(), x.clone()),
                TensorBuf::from_parts(sb.to_vec(), y.clone()),
            )?;
            assert_eq!(got.shape(), shape.as_slice());
            assert_eq!(got.data(), want.as_slice(), "{sa:?} {sb:?}");
            let x32: Vec<i32> = x.iter().map(|&v| v as i32).collect();
            let y32: Vec<i32> = y.iter().map(|&v| v as i32).collect();
            let (_, want) = reference(sa, &x32, sb, &y32, |x, y| x / y)?;
            let got = arith(
                BinOp::Div,
                TensorBuf::from_parts(sa.to_vec(), x32),
                TensorBuf::from_parts(sb.to_vec(), y32),
            )?;
            assert_eq!(got.data(), want.as_slice(), "i32 {sa:?} {sb:?}");
        }
        // TensorFlow: [-7, 7, -7, 7, 0] / [2, -2, -2, 2, 3] = [-3, -3, 3, 3, 0]; MIN / -1 wraps.
        let got = arith(
            BinOp::Div,
            TensorBuf::from_parts(vec![6], vec![-7i32, 7, -7, 7, 0, i32::MIN]),
            TensorBuf::from_parts(vec![6], vec![2i32, -2, -2, 2, 3, -1]),
        )?;
        assert_eq!(got.data(), &[-3, -3, 3, 3, 0, i32::MIN]);
        assert_eq!(
            arith(
                BinOp::Div,
                TensorBuf::from_parts(vec![2], vec![1i64, 2]),
                TensorBuf::from_parts(vec![2], vec![1i64, 0]),
            )
            .err(),
            Some(OpError("integer division by zero".into()))
        );
        assert_eq!(
            arith(
                BinOp::DivNoNan,
                TensorBuf::from_parts(vec![1], vec![1i32]),
                TensorBuf::from_parts(vec![1], vec![0i32]),
            )
            .err(),
            Some(OpError(
                "DivNoNan is defined for floating-point types only, not int32".into()
            ))
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
