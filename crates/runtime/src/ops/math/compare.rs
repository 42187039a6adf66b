//! Comparisons (`Greater`, `GreaterEqual`, `Less`, `LessEqual`, `Equal`, `NotEqual`) and
//! logical ops (`LogicalAnd`, `LogicalOr`, `LogicalNot`), producing bool tensors.

use ckpt_graph::Node;

use crate::ops::broadcast::zip2;
use crate::ops::{
    expect, kernel, node_error, op_bail, parallel, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::value::{dispatch_numbers, TensorBuf};
use crate::{Error, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Equal,
    NotEqual,
}

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let cmp = match node.op.as_str() {
        "Greater" => Cmp::Greater,
        "GreaterEqual" => Cmp::GreaterEqual,
        "Less" => Cmp::Less,
        "LessEqual" => Cmp::LessEqual,
        "Equal" => Cmp::Equal,
        "NotEqual" => Cmp::NotEqual,
        other => return Err(node_error(node, format!("not a comparison: {other}"))),
    };
    kernel(Compare { cmp })
}

#[derive(Debug)]
struct Compare {
    cmp: Cmp,
}

fn compare<T: Copy + PartialOrd + Sync>(
    cmp: Cmp,
    a: &TensorBuf<T>,
    b: &TensorBuf<T>,
) -> Result<TensorBuf<bool>, OpError> {
    match cmp {
        Cmp::Greater => zip2(a, b, |x, y| x > y),
        Cmp::GreaterEqual => zip2(a, b, |x, y| x >= y),
        Cmp::Less => zip2(a, b, |x, y| x < y),
        Cmp::LessEqual => zip2(a, b, |x, y| x <= y),
        Cmp::Equal => zip2(a, b, |x, y| x == y),
        Cmp::NotEqual => zip2(a, b, |x, y| x != y),
    }
}

impl Kernel for Compare {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [a, b] = take_inputs(inputs)?;
        let out = dispatch_numbers!((&a, &b), |a, b| compare(self.cmp, a, b)?, else {
            (Value::Bool(a), Value::Bool(b)) if matches!(self.cmp, Cmp::Equal | Cmp::NotEqual) => {
                compare(self.cmp, a, b)?
            }
            (Value::Str(a), Value::Str(b)) if matches!(self.cmp, Cmp::Equal | Cmp::NotEqual) => {
                // Compare positions, so that the broadcasting works on Copy elements.
                let positions = |t: &TensorBuf<Vec<u8>>| {
                    TensorBuf::from_parts(t.shape().to_vec(), (0..t.len()).collect::<Vec<usize>>())
                };
                let (ad, bd) = (a.data(), b.data());
                let equal = matches!(self.cmp, Cmp::Equal);
                zip2(&positions(a), &positions(b), |i, j| (ad[i] == bd[j]) == equal)?
            }
            (a, b) => op_bail!("cannot compare {} with {}", a.dtype(), b.dtype()),
        });
        Ok(vec![Value::Bool(out)])
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Logic {
    And,
    Or,
    Not,
}

pub(crate) fn build_logical(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let op = match node.op.as_str() {
        "LogicalAnd" => Logic::And,
        "LogicalOr" => Logic::Or,
        "LogicalNot" => Logic::Not,
        other => return Err(node_error(node, format!("not a logical op: {other}"))),
    };
    kernel(Logical { op })
}

#[derive(Debug)]
struct Logical {
    op: Logic,
}

impl Kernel for Logical {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let out = if self.op == Logic::Not {
            let [x] = take_inputs(inputs)?;
            let x = expect::<bool>(x, "x")?;
            TensorBuf::from_parts(x.shape().to_vec(), parallel::map(x.data(), |b| !b))
        } else {
            let [a, b] = take_inputs(inputs)?;
            let (a, b) = (expect::<bool>(a, "x")?, expect::<bool>(b, "y")?);
            match self.op {
                Logic::And => zip2(&a, &b, |x, y| x && y)?,
                _ => zip2(&a, &b, |x, y| x || y)?,
            }
        };
        Ok(vec![Value::Bool(out)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_match_reference() -> Result<(), OpError> {
        let a = Value::new(vec![4], vec![1.0f32, 2.0, 3.0, f32::NAN])?;
        let b = Value::scalar(2.0f32);
        let cases: [(Cmp, [bool; 4]); 6] = [
            (Cmp::Greater, [false, false, true, false]),
            (Cmp::GreaterEqual, [false, true, true, false]),
            (Cmp::Less, [true, false, false, false]),
            (Cmp::LessEqual, [true, true, false, false]),
            (Cmp::Equal, [false, true, false, false]),
            (Cmp::NotEqual, [true, false, true, true]),
        ];
        for (cmp, want) in cases {
            let out = Compare { cmp }.run(vec![a.clone(), b.clone()])?;
            assert_eq!(out[0].as_bool(), Some(&want[..]), "{cmp:?}");
        }
        assert_eq!(
            Compare { cmp: Cmp::Less }
                .run(vec![a, Value::scalar(1i32)])
                .err(),
            Some(OpError("cannot compare float32 with int32".into()))
        );
        Ok(())
    }

    #[test]
    fn logical_ops() -> Result<(), OpError> {
        let a = Value::new(vec![2], vec![true, false])?;
        let b = Value::new(vec![2, 1], vec![true, false])?;
        let and = Logical { op: Logic::And }.run(vec![a.clone(), b.clone()])?;
        assert_eq!(and[0].as_bool(), Some(&[true, false, false, false][..]));
        let or = Logical { op: Logic::Or }.run(vec![a.clone(), b])?;
        assert_eq!(or[0].as_bool(), Some(&[true, true, true, false][..]));
        let not = Logical { op: Logic::Not }.run(vec![a])?;
        assert_eq!(not[0].as_bool(), Some(&[false, true][..]));
        Ok(())
    }
}
