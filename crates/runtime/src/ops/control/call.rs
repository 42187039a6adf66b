//! Function calls: `PartitionedCall` / `StatefulPartitionedCall` (function in attribute `f`),
//! and nodes whose op is the name of a library function.

use ckpt_graph::Node;

use crate::ops::{kernel, BuildCtx, Built, Kernel, OpError};
use crate::plan::FunctionPlan;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let name = node.attr_func("f")?.name.clone();
    build_named(node, ctx, &name)
}

pub(crate) fn build_named(node: &Node, ctx: &BuildCtx<'_>, name: &str) -> Result<Built, Error> {
    let f = ctx.function(node, name)?;
    if f.arg_names.len() != node.inputs.len() {
        return Err(crate::ops::node_error(
            node,
            format!(
                "function {name:?} takes {} arguments, the node passes {}",
                f.arg_names.len(),
                node.inputs.len()
            ),
        ));
    }
    let plan = FunctionPlan::build(f, node, ctx, ctx.const_inputs)?;
    kernel(Call {
        plan,
        n_out: ctx.used_outputs.len(),
    })
}

#[derive(Debug)]
struct Call {
    plan: FunctionPlan,
    n_out: usize,
}

impl Kernel for Call {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        self.plan.call(inputs, self.n_out)
    }

    fn is_pure(&self) -> bool {
        false
    }
}
