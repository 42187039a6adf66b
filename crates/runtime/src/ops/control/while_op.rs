//! `While` / `StatelessWhile` (control flow v2, docs/format.md §10.4): the node's inputs are
//! the loop variables; as long as the `cond` function's result holds (TensorFlow's `ToBool`),
//! the `body` function replaces them; the node's outputs are their last values.
//!
//! Both functions are compiled once, as nested plans: `cond` computing its one output, `body`
//! computing every loop variable. A body that returns a variable unchanged (the tensors
//! `while_v2` captures, such as weights) just hands the value on. The loop variables move into
//! each body call, so a body that changes a TensorList it holds the only reference to changes
//! it in place. `output_shapes` and `parallel_iterations` are hints the run does not need.

use ckpt_graph::{Function, Node};

use crate::ops::{node_error, BuildCtx, Built, OpError};
use crate::plan::{FunctionPlan, RunState};
use crate::{Error, Value};

use super::switch::truthy;

pub(crate) fn build(node: &Node, ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let cond_name = node.attr_func("cond")?.name.clone();
    let body_name = node.attr_func("body")?.name.clone();
    let cond_fn = ctx.function(node, &cond_name)?;
    let body_fn = ctx.function(node, &body_name)?;
    let n = node.inputs.len();
    let types = node.attr_dtypes("T")?;
    if types.len() != n {
        return Err(node_error(
            node,
            format!("has {n} inputs but attribute T lists {} types", types.len()),
        ));
    }
    check_arguments(node, cond_fn, &types)?;
    check_arguments(node, body_fn, &types)?;
    if cond_fn.outputs.is_empty() {
        return Err(node_error(
            node,
            format!("cond function {cond_name:?} returns nothing"),
        ));
    }
    if body_fn.outputs.len() != n {
        return Err(node_error(
            node,
            format!(
                "body function {body_name:?} returns {} values for {n} loop variables",
                body_fn.outputs.len()
            ),
        ));
    }
    let cond = FunctionPlan::build_outputs(cond_fn, node, ctx, vec![0], &[])?;
    let body = FunctionPlan::build_outputs(body_fn, node, ctx, (0..n).collect(), &[])?;
    Ok(Built::While(Box::new(WhileLoop {
        node: node.name.clone(),
        op: node.op.clone(),
        cond_name,
        body_name,
        cond,
        body,
        n_vars: n,
        n_out: ctx.used_outputs.len(),
        max_iterations: ctx.max_iterations,
    })))
}

/// Fails unless `f` takes one argument per loop variable, of the variable's type.
fn check_arguments(
    node: &Node,
    f: &Function,
    types: &[ckpt_graph::ckpt_proto::DataType],
) -> Result<(), Error> {
    if f.arg_names.len() != types.len() {
        return Err(node_error(
            node,
            format!(
                "function {:?} takes {} arguments for {} loop variables",
                f.name,
                f.arg_names.len(),
                types.len()
            ),
        ));
    }
    for (i, &expected) in types.iter().enumerate() {
        let arg = f.arg(i).map(|id| f.body.node(id));
        let declared = arg.and_then(|a| a.attr_dtype("T").ok());
        if declared.is_some_and(|d| d != expected) {
            return Err(node_error(
                node,
                format!(
                    "argument {:?} of function {:?} is {:?}, but loop variable {i} is {expected:?}",
                    f.arg_names.get(i).map_or("", String::as_str),
                    f.name,
                    declared.unwrap_or(expected),
                ),
            ));
        }
    }
    Ok(())
}

/// A built `While`: its functions' plans and how far it may run.
#[derive(Debug)]
pub(crate) struct WhileLoop {
    node: String,
    op: String,
    cond_name: String,
    body_name: String,
    cond: FunctionPlan,
    body: FunctionPlan,
    n_vars: usize,
    /// Outputs the graph reads (a prefix of the loop variables).
    n_out: usize,
    max_iterations: u64,
}

impl WhileLoop {
    /// Runs the loop from the loop variables' initial values.
    pub(crate) fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, Error> {
        if inputs.len() != self.n_vars {
            return Err(self.error(format!(
                "expected {} loop variables, got {}",
                self.n_vars,
                inputs.len()
            )));
        }
        let mut vars = inputs;
        let mut cond_state = RunState::default();
        let mut body_state = RunState::default();
        let mut iterations: u64 = 0;
        loop {
            let pred = self
                .cond
                .call_in(&mut cond_state, vars.clone(), 1)
                .map_err(|e| self.in_function(&self.cond_name, e))?;
            let go_on = match pred.first() {
                Some(p) => to_bool(p).map_err(|e| self.error(e.0))?,
                None => return Err(self.error("cond returned nothing".into())),
            };
            if !go_on {
                break;
            }
            if iterations >= self.max_iterations {
                return Err(Error::IterationLimit {
                    frame: self.node.clone(),
                    limit: self.max_iterations,
                });
            }
            iterations += 1;
            vars = self
                .body
                .call_in(&mut body_state, vars, self.n_vars)
                .map_err(|e| self.in_function(&self.body_name, e))?;
        }
        vars.truncate(self.n_out);
        Ok(vars)
    }

    fn error(&self, message: String) -> Error {
        Error::Node {
            node: self.node.clone(),
            op: self.op.clone(),
            message,
        }
    }

    /// An error from inside `function`, named after this node; hitting the iteration limit
    /// of a loop inside is reported as it is.
    fn in_function(&self, function: &str, e: Error) -> Error {
        match e {
            Error::IterationLimit { .. } => e,
            e => self.error(format!("in function {function:?}: {e}")),
        }
    }
}

/// TensorFlow's `ToBool` of a cond result: a scalar is true when non-zero (non-empty for a
/// string); any other tensor is true when it has elements; lists and handles are errors.
fn to_bool(v: &Value) -> Result<bool, OpError> {
    match v {
        Value::List(_) | Value::TensorArray(_) => Err(OpError(format!(
            "cond must return a tensor, not a {}",
            v.kind()
        ))),
        v => Ok(truthy(v)),
    }
}
