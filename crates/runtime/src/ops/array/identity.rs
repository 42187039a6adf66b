//! `Identity`, `IdentityN`, `StopGradient`, `Snapshot`, `PreventGradient`, `EnsureShape`:
//! outputs are the inputs. `CheckNumerics` also fails on NaN or infinity.

use ckpt_graph::Node;

use crate::ops::{kernel, take_inputs, BuildCtx, Built, FnKernel, OpError};
use crate::{Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(identity))
}

pub(crate) fn build_n(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(Ok))
}

pub(crate) fn build_check_numerics(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(CheckNumerics {
        message: node.attr_string_or("message", "")?,
    })
}

#[derive(Debug)]
struct CheckNumerics {
    message: String,
}

impl crate::ops::Kernel for CheckNumerics {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let (nan, inf) = match &x {
            Value::F32(t) => (
                t.data().iter().any(|v| v.is_nan()),
                t.data().iter().any(|v| v.is_infinite()),
            ),
            Value::F64(t) => (
                t.data().iter().any(|v| v.is_nan()),
                t.data().iter().any(|v| v.is_infinite()),
            ),
            _ => (false, false),
        };
        if nan || inf {
            let what = match (nan, inf) {
                (true, true) => "NaN and Inf",
                (true, false) => "NaN",
                _ => "Inf",
            };
            crate::ops::op_bail!("{}: tensor had {what} values", self.message);
        }
        Ok(vec![x])
    }
}

pub(crate) fn identity(inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
    let [x] = take_inputs(inputs)?;
    Ok(vec![x])
}
