//! `If` / `StatelessIf` (control flow v2): input 0 is the condition, the rest are the
//! arguments of the `then_branch` or `else_branch` function. Both branches are built at plan
//! time as nested plans computing only the outputs the outer graph reads, so the
//! `Optional*` outputs TensorFlow adds for gradients are never computed.
//!
//! In inference mode, an `If` whose then-branch draws random numbers and whose else-branch
//! does not (a `tf.layers.dropout` cond) always takes the else-branch.

use ckpt_graph::{Function, Node};

use crate::ops::array::random::RANDOM_OPS;
use crate::ops::{kernel, op_bail, BuildCtx, Built, Kernel, OpError};
use crate::plan::FunctionPlan;
use crate::value::TensorBuf;
use crate::{Error, Value};

use super::switch::truthy;

pub(crate) fn build(node: &Node, ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let then_name = node.attr_func("then_branch")?.name.clone();
    let else_name = node.attr_func("else_branch")?.name.clone();
    let then_fn = ctx.function(node, &then_name)?;
    let else_fn = ctx.function(node, &else_name)?;
    let n_args = node.inputs.len().saturating_sub(1);
    for f in [then_fn, else_fn] {
        if f.arg_names.len() != n_args {
            return Err(crate::ops::node_error(
                node,
                format!(
                    "branch {:?} takes {} arguments, the node passes {n_args}",
                    f.name,
                    f.arg_names.len()
                ),
            ));
        }
    }
    let force_else = ctx.inference && draws_random(then_fn) && !draws_random(else_fn);
    // The branches' arguments that are constants of the caller's plan (variables, mostly)
    // become constants of the branch plans.
    let known_args = ctx.const_inputs.get(1..).unwrap_or(&[]);
    let then_plan = if force_else {
        None
    } else {
        Some(FunctionPlan::build(then_fn, node, ctx, known_args)?)
    };
    let else_plan = FunctionPlan::build(else_fn, node, ctx, known_args)?;
    kernel(If {
        then_plan,
        else_plan,
        n_out: ctx.used_outputs.len(),
    })
}

/// Whether a function body contains a random op.
pub(crate) fn draws_random(f: &Function) -> bool {
    f.body
        .nodes
        .iter()
        .any(|n| RANDOM_OPS.contains(&n.op.as_str()))
}

#[derive(Debug)]
struct If {
    /// `None` when inference mode always takes the else-branch.
    then_plan: Option<FunctionPlan>,
    else_plan: FunctionPlan,
    n_out: usize,
}

impl Kernel for If {
    fn run(&self, mut inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        if inputs.is_empty() {
            op_bail!("missing the condition input");
        }
        let cond = inputs.remove(0);
        let plan = match &self.then_plan {
            Some(then_plan) if truthy(&cond) => then_plan,
            _ => &self.else_plan,
        };
        plan.call(inputs, self.n_out)
    }

    fn is_pure(&self) -> bool {
        false
    }
}

/// What stands in for outputs nobody reads.
pub(crate) fn unused_output() -> Value {
    Value::F32(TensorBuf::from_parts(vec![0], Vec::new()))
}
