//! The execution plan: computed once from a graph, then run any number of times.
//!
//! Building a plan ([`build`]) prunes the graph to what the fetches need, builds one kernel
//! per node, decodes constants and loads variables (once), evaluates nodes whose inputs are
//! all constants, assigns every live tensor a slot, and works out at which step each slot is
//! read for the last time, so that step takes the value instead of cloning it (letting
//! kernels reuse buffers) and memory is released as early as possible. Running a plan
//! ([`execute`]) only fills slots: all per-run state lives in [`Plan::run`]'s locals.
//!
//! A library function called by the graph is compiled the same way, as a [`FunctionPlan`].
//!
//! TF1 while loops ([`frames`]) are compiled loop by loop: the nodes of a loop's frame become
//! a plan of their own that computes one iteration ([`LoopPlan`]), and the whole loop is one
//! step of the plan around it, so nested loops nest plans. TF2's `While` runs its `cond` and
//! `body` functions as [`FunctionPlan`]s.

mod build;
mod execute;
mod frames;

use ckpt_graph::{Function, Node, Output};

pub(crate) use build::PlanInput;
pub(crate) use execute::RunState;

use crate::ops::control::if_op::unused_output;
use crate::ops::control::while_op::WhileLoop;
use crate::ops::{node_error, BuildCtx, Kernel, OpError};
use crate::rewrite::Rewrite;
use crate::{Error, Value};

/// How deep functions may call functions.
const MAX_DEPTH: usize = 16;

/// The most function bodies one session plans (each call site of a function is planned on
/// its own, so a library whose functions each call the next several times would otherwise
/// take time and memory exponential in its depth): [`Error::TooManyFunctionPlans`] past it.
pub(crate) const MAX_FUNCTION_PLANS: usize = 10_000;

/// Where a step reads a value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    Slot(usize),
    Const(usize),
}

#[derive(Debug)]
struct Input {
    src: Source,
    /// This is the slot's last read: move the value out instead of cloning it.
    take: bool,
}

#[derive(Debug)]
enum Action {
    Kernel(Box<dyn Kernel>),
    Switch {
        force_false: bool,
    },
    Merge,
    /// A TF1 while loop: inputs are what its `Enter`s read, outputs what its `Exit`s give.
    Loop(Box<LoopPlan>),
    /// A TF2 `While` / `StatelessWhile`.
    While(Box<WhileLoop>),
}

/// A TF1 while loop compiled from its frame: `body` computes one iteration.
///
/// The loop step's inputs are the loop invariants (what its constant `Enter`s read, unless it
/// is a constant of the outer plan, which the body keeps as its own) first, then the initial
/// value of each loop variable. `body`'s feeds are the invariants, then for each
/// loop variable its `Merge`'s value (and its `value_index`, when read); its fetches are each
/// variable's `NextIteration` value and each `Exit`'s value. An iteration follows another as
/// long as some `NextIteration` value is live, that is until `LoopCond` turns false and the
/// `Switch`es send the variables to the `Exit`s.
#[derive(Debug)]
pub(crate) struct LoopPlan {
    /// The frame's name, for errors.
    frame: String,
    body: Plan,
    /// How many of the step's inputs are loop invariants (the rest are loop variables).
    n_invariants: usize,
    vars: Vec<LoopVar>,
    /// The fetch of `body` giving each of the step's outputs.
    exits: Vec<usize>,
    max_iterations: u64,
}

/// One loop variable of a [`LoopPlan`].
#[derive(Debug)]
struct LoopVar {
    /// The fetch of the body giving its next value.
    next: usize,
    /// Whether the body reads the `Merge`'s `value_index` (fed after the value).
    index: bool,
}

#[derive(Debug)]
struct Step {
    node: String,
    op: String,
    action: Action,
    inputs: Vec<Input>,
    /// Earlier steps whose deadness makes this one dead (control edges).
    control: Vec<usize>,
    /// First output slot; outputs occupy `out..out + n_out`.
    out: usize,
    n_out: usize,
    /// Output slots nobody reads, cleared right after the step.
    unread: Vec<usize>,
}

/// What a graph, its fetches and feeds compile to.
#[derive(Debug)]
pub(crate) struct Plan {
    steps: Vec<Step>,
    consts: Vec<Value>,
    n_slots: usize,
    /// Slot of each feed, in the order the feeds were given.
    feeds: Vec<usize>,
    fetches: Vec<Source>,
    /// Names of the fetched tensors, for errors.
    fetch_names: Vec<String>,
    /// Whether fetch `i` may move its value out of its slot (no later fetch reads the slot).
    fetch_takes: Vec<bool>,
    /// Whether any value can be dead (the plan has a `Switch` or a loop, or is a loop body
    /// whose feeds may be dead).
    tracks_dead: bool,
}

impl Plan {
    /// Number of steps that run per call (after folding constants).
    pub(crate) fn num_steps(&self) -> usize {
        self.steps.len()
    }

    /// Node name and op type of each step, in execution order.
    pub(crate) fn step_labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.steps.iter().map(|s| (s.node.as_str(), s.op.as_str()))
    }
}

/// A function body compiled as a plan: arguments are its feeds, the outputs the caller reads
/// are its fetches.
#[derive(Debug)]
pub(crate) struct FunctionPlan {
    plan: Plan,
    /// Output index of each fetch.
    outputs: Vec<usize>,
    /// For each argument, whether it is fed at run time (`false`: bound to a constant when
    /// the plan was built, and dropped from the arguments of each call).
    fed_args: Vec<bool>,
}

impl FunctionPlan {
    /// Builds `f` as called by `caller`, computing only the caller's used outputs. Arguments
    /// whose value `known_args` gives (the caller passes a constant of its plan, such as a
    /// captured variable) become constants of the body's plan, so that the body folds what
    /// depends only on them, exactly as the main graph does; the others are fed per call.
    pub(crate) fn build(
        f: &Function,
        caller: &Node,
        ctx: &BuildCtx<'_>,
        known_args: &[Option<&Value>],
    ) -> Result<FunctionPlan, Error> {
        if ctx.depth >= MAX_DEPTH {
            return Err(Error::TooDeep {
                node: caller.name.clone(),
                limit: MAX_DEPTH,
            });
        }
        let outputs: Vec<usize> = ctx
            .used_outputs
            .iter()
            .enumerate()
            .filter(|(_, &u)| u)
            .map(|(i, _)| i)
            .collect();
        FunctionPlan::build_outputs(f, caller, ctx, outputs, known_args)
    }

    /// Builds `f` as called by `caller`, computing its outputs `outputs`, with the arguments
    /// `known_args` gives bound as constants (see [`FunctionPlan::build`]; a loop passes none,
    /// since its arguments change from one iteration to the next).
    pub(crate) fn build_outputs(
        f: &Function,
        caller: &Node,
        ctx: &BuildCtx<'_>,
        outputs: Vec<usize>,
        known_args: &[Option<&Value>],
    ) -> Result<FunctionPlan, Error> {
        if ctx.depth >= MAX_DEPTH {
            return Err(Error::TooDeep {
                node: caller.name.clone(),
                limit: MAX_DEPTH,
            });
        }
        let planned = ctx
            .function_plans
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if planned >= MAX_FUNCTION_PLANS {
            return Err(Error::TooManyFunctionPlans {
                node: caller.name.clone(),
                limit: MAX_FUNCTION_PLANS,
            });
        }
        let mut fetches = Vec::with_capacity(outputs.len());
        for &i in &outputs {
            let Some(&o) = f.outputs.get(i) else {
                return Err(node_error(
                    caller,
                    format!(
                        "function {:?} has {} outputs, output {i} is used",
                        f.name,
                        f.outputs.len()
                    ),
                ));
            };
            fetches.push(o);
        }
        let mut feeds = Vec::with_capacity(f.arg_names.len());
        let mut bound = Vec::new();
        let mut fed_args = Vec::with_capacity(f.arg_names.len());
        for i in 0..f.arg_names.len() {
            let Some(id) = f.arg(i) else {
                return Err(node_error(
                    caller,
                    format!("function {:?} has malformed arguments", f.name),
                ));
            };
            let arg = Output::new(id, 0);
            match known_args.get(i).copied().flatten() {
                Some(value) => bound.push((arg, value.clone())),
                None => feeds.push(arg),
            }
            fed_args.push(known_args.get(i).copied().flatten().is_none());
        }
        let rewrite = if ctx.inference {
            Rewrite::dropout(&f.body, ctx.model)
        } else {
            Rewrite::default()
        };
        let plan = Plan::build(&PlanInput {
            model: ctx.model,
            graph: &f.body,
            bundle: None,
            main_graph: false,
            fetches: &fetches,
            feeds: &feeds,
            bound: &bound,
            inference: ctx.inference,
            optimize: ctx.optimize,
            rewrite: &rewrite,
            depth: ctx.depth + 1,
            max_iterations: ctx.max_iterations,
            function_plans: ctx.function_plans,
        })
        .map_err(|e| node_error(caller, format!("in function {:?}: {e}", f.name)))?;
        Ok(FunctionPlan {
            plan,
            outputs,
            fed_args,
        })
    }

    /// Runs the body on `args`; returns `n_out` outputs, with placeholders where the caller
    /// reads nothing.
    pub(crate) fn call(&self, args: Vec<Value>, n_out: usize) -> Result<Vec<Value>, OpError> {
        let mut state = RunState::default();
        self.call_in(&mut state, args, n_out)
            .map_err(|e| OpError(e.to_string()))
    }

    /// [`FunctionPlan::call`], reusing `state` (a loop calls its body many times). Arguments
    /// bound at plan time (constants the caller passed) are dropped from `args` here.
    pub(crate) fn call_in(
        &self,
        state: &mut RunState,
        args: Vec<Value>,
        n_out: usize,
    ) -> Result<Vec<Value>, Error> {
        if args.len() != self.fed_args.len() {
            return Err(Error::Internal(format!(
                "the function takes {} arguments, got {}",
                self.fed_args.len(),
                args.len()
            )));
        }
        let args: Vec<Value> = args
            .into_iter()
            .zip(&self.fed_args)
            .filter_map(|(v, &fed)| fed.then_some(v))
            .collect();
        let values = self.plan.run_in(state, args)?;
        let mut out: Vec<Value> = (0..n_out).map(|_| unused_output()).collect();
        for (&i, v) in self.outputs.iter().zip(values) {
            if let Some(slot) = out.get_mut(i) {
                *slot = v;
            }
        }
        Ok(out)
    }
}
