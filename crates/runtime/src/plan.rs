//! The execution plan: computed once from a graph, then run any number of times.
//!
//! Building a plan prunes the graph to what the fetches need, builds one kernel per node,
//! decodes constants and loads variables (once), evaluates nodes whose inputs are all
//! constants, assigns every live tensor a slot, and works out at which step each slot is read
//! for the last time, so that step takes the value instead of cloning it (letting kernels
//! reuse buffers) and memory is released as early as possible. Running a plan only fills
//! slots: all per-run state lives in [`Plan::run`]'s locals.

use std::collections::{HashMap, HashSet};

use ckpt_bundle::BundleReader;
use ckpt_graph::{Function, Graph, Model, Node, NodeId, Output};

use crate::ops::control::if_op::unused_output;
use crate::ops::control::switch;
use crate::ops::{self, node_error, BuildCtx, Built, Kernel, OpError};
use crate::rewrite::Rewrite;
use crate::{DType, Error, Value};

/// Ops that draw random numbers (dropout masks).
pub(crate) const RANDOM_OPS: &[&str] = &[
    "RandomUniform",
    "RandomUniformInt",
    "RandomStandardNormal",
    "TruncatedNormal",
    "StatelessRandomUniform",
    "StatelessRandomUniformV2",
];

/// How deep functions may call functions.
const MAX_DEPTH: usize = 16;

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
    Switch { force_false: bool },
    Merge,
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

/// A slot's state during a run.
#[derive(Debug)]
enum Slot {
    Empty,
    /// Produced on an untaken branch of a `Switch`.
    Dead,
    Live(Value),
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
    /// Whether any step can produce a dead value (the plan has a `Switch`).
    tracks_dead: bool,
}

/// Where a node's outputs live once it is planned.
#[derive(Clone, Copy, Debug)]
enum Location {
    Consts {
        first: usize,
        count: usize,
    },
    Step {
        step: usize,
        out: usize,
        n_out: usize,
    },
}

/// Everything [`Plan::build`] needs.
pub(crate) struct PlanInput<'a> {
    pub model: &'a Model,
    pub graph: &'a Graph,
    /// The checkpoint, for the main graph's variables (`None` inside functions).
    pub bundle: Option<&'a BundleReader>,
    /// Whether `graph` is the model's main graph (whose variables the model maps to keys).
    pub main_graph: bool,
    pub fetches: &'a [Output],
    pub feeds: &'a [Output],
    pub inference: bool,
    pub rewrite: &'a Rewrite,
    pub depth: usize,
}

impl Plan {
    pub(crate) fn build(input: &PlanInput<'_>) -> Result<Plan, Error> {
        let graph = input.graph;
        let fed: HashMap<Output, usize> = input
            .feeds
            .iter()
            .enumerate()
            .map(|(i, &o)| (o, i))
            .collect();
        let resolve = |o: Output| input.rewrite.resolve(o);

        // 1. The nodes the fetches need, after the rewrite's aliases, in topological order.
        let order = needed_nodes(graph, input.fetches, input.feeds, &fed, resolve)?;
        // 2. Which outputs of each node are read.
        let used = used_outputs(graph, &order, input.fetches, &fed, resolve);

        // 3. Conv2D/MatMul -> BiasAdd -> activation chains become one kernel.
        let fetched: HashSet<Output> = input.fetches.iter().map(|&f| resolve(f)).collect();
        let fed_outputs: HashSet<Output> = fed.keys().copied().collect();
        let fusions = crate::fusion::find(graph, &order, &fetched, &fed_outputs, resolve)?;
        let resolve = |o: Output| {
            let o = input.rewrite.resolve(o);
            fusions.alias.get(&o).copied().unwrap_or(o)
        };

        // 4. Kernels, constants and variables, node by node.
        let mut plan = Plan {
            steps: Vec::new(),
            consts: Vec::new(),
            n_slots: input.feeds.len(),
            feeds: (0..input.feeds.len()).collect(),
            fetches: Vec::new(),
            fetch_names: input
                .fetches
                .iter()
                .map(|&o| graph.tensor_name(o))
                .collect(),
            tracks_dead: false,
        };
        let mut location: HashMap<NodeId, Location> = HashMap::new();
        let mut missing_variables = Vec::new();
        let mut poisoned: HashSet<usize> = HashSet::new();
        let mut unloaded_variables = Vec::new();
        let no_outputs = Vec::new();
        for id in fusions.planning_order(&order) {
            let node = graph.node(id);
            let used_outputs = used.get(&id).unwrap_or(&no_outputs);
            let ctx = BuildCtx {
                model: input.model,
                inference: input.inference,
                used_outputs,
                force_false: input.rewrite.force_false.contains(&id),
                depth: input.depth,
            };
            let fused = fusions.fused.get(&id);
            let built = match (fused, ops::builder(&node.op)) {
                (Some(f), _) => f.build(node)?,
                (None, Some(build)) => build(node, &ctx)?,
                (None, None) if input.model.functions.contains_key(&node.op) => {
                    ops::control::call::build_named(node, &ctx, &node.op)?
                }
                (None, None) => {
                    return Err(Error::UnsupportedOp {
                        node: node.name.clone(),
                        op: node.op.clone(),
                        supported: ops::supported_ops(),
                    })
                }
            };
            let sources: Vec<Source> = node
                .inputs
                .iter()
                .map(|&i| resolve(i))
                .chain(fused.map(|f| f.bias))
                .map(|i| plan.source(i, &fed, &location, graph))
                .collect::<Result<_, _>>()?;
            let control: Vec<usize> = node
                .control_inputs
                .iter()
                .filter_map(|c| match location.get(c) {
                    Some(Location::Step { step, .. }) => Some(*step),
                    _ => None,
                })
                .collect();
            let loc = match built {
                Built::Constant(values) if node.control_inputs.is_empty() => {
                    plan.add_consts(values)
                }
                Built::Constant(values) => {
                    // A constant under a control edge (inside a TF1 cond branch) must see
                    // deadness, so it runs as a step.
                    let kernel = Box::new(ConstKernel(values));
                    plan.add_step(
                        node,
                        Action::Kernel(kernel),
                        sources,
                        control,
                        used_outputs.len(),
                    )
                }
                Built::Variable => match load_variable(input, id, node) {
                    Ok(Some(v)) => plan.add_consts(vec![v]),
                    Ok(None) => {
                        unloaded_variables.push(node.name.clone());
                        plan.add_placeholder_const(&mut poisoned)
                    }
                    Err(VariableError::Missing(key)) => {
                        missing_variables.push(if key == node.name {
                            key
                        } else {
                            format!("{key} (node {})", node.name)
                        });
                        plan.add_placeholder_const(&mut poisoned)
                    }
                    Err(VariableError::Other(e)) => return Err(e),
                },
                Built::Kernel(kernel) => {
                    // Constants standing in for missing variables are never computed with.
                    let all_const = sources
                        .iter()
                        .all(|s| matches!(s, Source::Const(c) if !poisoned.contains(c)));
                    if kernel.is_pure()
                        && all_const
                        && control.is_empty()
                        && node.control_inputs.is_empty()
                    {
                        let inputs: Vec<Value> = sources
                            .iter()
                            .filter_map(|s| match s {
                                Source::Const(c) => plan.consts.get(*c).cloned(),
                                Source::Slot(_) => None,
                            })
                            .collect();
                        let outputs = kernel.run(inputs).map_err(|e| node_error(node, e.0))?;
                        plan.add_consts(outputs)
                    } else {
                        plan.add_step(
                            node,
                            Action::Kernel(kernel),
                            sources,
                            control,
                            used_outputs.len(),
                        )
                    }
                }
                Built::Switch { force_false } => {
                    plan.tracks_dead = true;
                    plan.add_step(
                        node,
                        Action::Switch { force_false },
                        sources,
                        control,
                        used_outputs.len(),
                    )
                }
                Built::Merge => {
                    plan.add_step(node, Action::Merge, sources, control, used_outputs.len())
                }
            };
            location.insert(id, loc);
        }
        if !unloaded_variables.is_empty() {
            return Err(Error::NoCheckpoint {
                names: unloaded_variables,
            });
        }
        if !missing_variables.is_empty() {
            return Err(Error::MissingVariables {
                names: missing_variables,
            });
        }

        // 5. Fetches, then last reads.
        plan.fetches = input
            .fetches
            .iter()
            .map(|&f| plan.source(resolve(f), &fed, &location, graph))
            .collect::<Result<_, _>>()?;
        plan.mark_last_reads();
        Ok(plan)
    }

    /// Where the value of `o` will be.
    fn source(
        &self,
        o: Output,
        fed: &HashMap<Output, usize>,
        location: &HashMap<NodeId, Location>,
        graph: &Graph,
    ) -> Result<Source, Error> {
        if let Some(&i) = fed.get(&o) {
            return Ok(Source::Slot(self.feeds[i]));
        }
        let missing = || {
            let node = graph.node(o.node);
            node_error(
                node,
                format!("has no output {} (it produces fewer)", o.index),
            )
        };
        match location.get(&o.node) {
            Some(Location::Consts { first, count }) if o.index < *count => {
                Ok(Source::Const(first + o.index))
            }
            Some(Location::Step { out, n_out, .. }) if o.index < *n_out => {
                Ok(Source::Slot(out + o.index))
            }
            Some(_) => Err(missing()),
            None => Err(Error::Internal(format!(
                "{} is used before it is planned",
                graph.tensor_name(o)
            ))),
        }
    }

    fn add_consts(&mut self, values: Vec<Value>) -> Location {
        let first = self.consts.len();
        let count = values.len();
        self.consts.extend(values);
        Location::Consts { first, count }
    }

    /// A stand-in for a variable that could not be loaded, so planning can go on and report
    /// every missing variable at once.
    fn add_placeholder_const(&mut self, poisoned: &mut HashSet<usize>) -> Location {
        poisoned.insert(self.consts.len());
        self.add_consts(vec![unused_output()])
    }

    fn add_step(
        &mut self,
        node: &Node,
        action: Action,
        sources: Vec<Source>,
        control: Vec<usize>,
        n_out: usize,
    ) -> Location {
        let out = self.n_slots;
        self.n_slots += n_out;
        let step = self.steps.len();
        self.steps.push(Step {
            node: node.name.clone(),
            op: node.op.clone(),
            action,
            inputs: sources
                .into_iter()
                .map(|src| Input { src, take: false })
                .collect(),
            control,
            out,
            n_out,
            unread: Vec::new(),
        });
        Location::Step { step, out, n_out }
    }

    /// Marks each slot's last read as a take, and lists outputs nobody reads.
    fn mark_last_reads(&mut self) {
        let pinned: HashSet<usize> = self
            .fetches
            .iter()
            .filter_map(|s| {
                if let Source::Slot(x) = s {
                    Some(*x)
                } else {
                    None
                }
            })
            .collect();
        let mut last: HashMap<usize, (usize, usize)> = HashMap::new();
        for (si, step) in self.steps.iter().enumerate() {
            for (ii, input) in step.inputs.iter().enumerate() {
                if let Source::Slot(s) = input.src {
                    last.insert(s, (si, ii));
                }
            }
        }
        for (&slot, &(si, ii)) in &last {
            if !pinned.contains(&slot) {
                if let Some(input) = self.steps.get_mut(si).and_then(|s| s.inputs.get_mut(ii)) {
                    input.take = true;
                }
            }
        }
        for step in &mut self.steps {
            step.unread = (step.out..step.out + step.n_out)
                .filter(|s| !last.contains_key(s) && !pinned.contains(s))
                .collect();
        }
    }

    /// Runs the plan: `feeds` in the order the feed outputs were given at build time.
    pub(crate) fn run(&self, feeds: Vec<Value>) -> Result<Vec<Value>, Error> {
        if feeds.len() != self.feeds.len() {
            return Err(Error::Internal(format!(
                "plan expects {} feeds, got {}",
                self.feeds.len(),
                feeds.len()
            )));
        }
        let mut slots: Vec<Slot> = (0..self.n_slots).map(|_| Slot::Empty).collect();
        for (&slot, value) in self.feeds.iter().zip(feeds) {
            if let Some(s) = slots.get_mut(slot) {
                *s = Slot::Live(value);
            }
        }
        let mut dead_steps = vec![
            false;
            if self.tracks_dead {
                self.steps.len()
            } else {
                0
            }
        ];
        for (si, step) in self.steps.iter().enumerate() {
            if self.tracks_dead && self.is_dead(step, &slots, &dead_steps) {
                if let Some(d) = dead_steps.get_mut(si) {
                    *d = true;
                }
                for input in &step.inputs {
                    if let (Source::Slot(s), true) = (input.src, input.take) {
                        slots[s] = Slot::Empty;
                    }
                }
                for slot in slots.iter_mut().skip(step.out).take(step.n_out) {
                    *slot = Slot::Dead;
                }
                continue;
            }
            match &step.action {
                Action::Kernel(kernel) => {
                    let inputs = self.gather(step, &mut slots)?;
                    let outputs = kernel.run(inputs).map_err(|e| step_error(step, e))?;
                    if outputs.len() < step.n_out {
                        return Err(step_error(
                            step,
                            OpError(format!(
                                "produced {} outputs, but output {} is used",
                                outputs.len(),
                                step.n_out - 1
                            )),
                        ));
                    }
                    for (s, v) in (step.out..step.out + step.n_out).zip(outputs) {
                        slots[s] = Slot::Live(v);
                    }
                }
                Action::Switch { force_false } => {
                    let inputs = self.gather(step, &mut slots)?;
                    let [data, pred] = ops::take_inputs(inputs).map_err(|e| step_error(step, e))?;
                    let branch = if *force_false {
                        0
                    } else {
                        usize::from(switch::predicate(&pred).map_err(|e| step_error(step, e))?)
                    };
                    for k in 0..step.n_out {
                        slots[step.out + k] = Slot::Dead;
                    }
                    if branch < step.n_out {
                        slots[step.out + branch] = Slot::Live(data);
                    }
                }
                Action::Merge => {
                    let mut chosen = None;
                    for (k, input) in step.inputs.iter().enumerate() {
                        let value = self.read(input, &mut slots);
                        if chosen.is_none() {
                            if let Some(v) = value {
                                chosen = Some((k, v));
                            }
                        }
                    }
                    match chosen {
                        Some((k, v)) => {
                            let index = i32::try_from(k)
                                .map_err(|_| Error::Internal("merge index".into()))?;
                            let outs = [Some(v), Some(Value::scalar(index))];
                            for (s, v) in (step.out..step.out + step.n_out).zip(outs) {
                                slots[s] = v.map_or(Slot::Empty, Slot::Live);
                            }
                        }
                        None => {
                            if let Some(d) = dead_steps.get_mut(si) {
                                *d = true;
                            }
                            for slot in slots.iter_mut().skip(step.out).take(step.n_out) {
                                *slot = Slot::Dead;
                            }
                        }
                    }
                }
            }
            for &s in &step.unread {
                slots[s] = Slot::Empty;
            }
        }
        self.fetches
            .iter()
            .zip(&self.fetch_names)
            .map(|(src, name)| match *src {
                Source::Const(c) => self
                    .consts
                    .get(c)
                    .cloned()
                    .ok_or_else(|| Error::Internal(format!("constant {c}"))),
                Source::Slot(s) => match std::mem::replace(&mut slots[s], Slot::Empty) {
                    Slot::Live(v) => {
                        // The same slot may be fetched twice.
                        slots[s] = Slot::Live(v.clone());
                        Ok(v)
                    }
                    Slot::Dead => Err(Error::DeadFetch { name: name.clone() }),
                    Slot::Empty => Err(Error::Internal(format!("fetch {name} was not computed"))),
                },
            })
            .collect()
    }

    fn is_dead(&self, step: &Step, slots: &[Slot], dead_steps: &[bool]) -> bool {
        if step
            .control
            .iter()
            .any(|&c| dead_steps.get(c).copied().unwrap_or(false))
        {
            return true;
        }
        !matches!(step.action, Action::Merge)
            && step.inputs.iter().any(
                |i| matches!(i.src, Source::Slot(s) if matches!(slots.get(s), Some(Slot::Dead))),
            )
    }

    /// A live input's value (moved out on its last read), or `None` when it is dead.
    fn read(&self, input: &Input, slots: &mut [Slot]) -> Option<Value> {
        match input.src {
            Source::Const(c) => self.consts.get(c).cloned(),
            Source::Slot(s) => {
                let slot = slots.get_mut(s)?;
                if input.take {
                    match std::mem::replace(slot, Slot::Empty) {
                        Slot::Live(v) => Some(v),
                        _ => None,
                    }
                } else {
                    match slot {
                        Slot::Live(v) => Some(v.clone()),
                        _ => None,
                    }
                }
            }
        }
    }

    fn gather(&self, step: &Step, slots: &mut [Slot]) -> Result<Vec<Value>, Error> {
        step.inputs
            .iter()
            .enumerate()
            .map(|(k, input)| {
                self.read(input, slots).ok_or_else(|| {
                    Error::Internal(format!(
                        "input {k} of node {:?} is not available",
                        step.node
                    ))
                })
            })
            .collect()
    }

    /// Number of steps that run per call (after folding constants).
    pub(crate) fn num_steps(&self) -> usize {
        self.steps.len()
    }
}

/// The nodes computing `fetches` from `feeds`, in topological order: the graph's pruning,
/// then a second pass dropping what only the rewrite's aliased-away outputs needed.
fn needed_nodes(
    graph: &Graph,
    fetches: &[Output],
    feeds: &[Output],
    fed: &HashMap<Output, usize>,
    resolve: impl Fn(Output) -> Output,
) -> Result<Vec<NodeId>, Error> {
    let candidates = graph.prune(fetches, feeds)?;
    let mut needed = vec![false; graph.nodes.len()];
    for &f in fetches {
        let f = resolve(f);
        if !fed.contains_key(&f) {
            needed[f.node] = true;
        }
    }
    let fed_nodes: HashSet<NodeId> = feeds.iter().map(|o| o.node).collect();
    for &id in candidates.iter().rev() {
        if !needed[id] {
            continue;
        }
        let node = graph.node(id);
        for &i in &node.inputs {
            let i = resolve(i);
            if !fed.contains_key(&i) {
                needed[i.node] = true;
            }
        }
        for &c in &node.control_inputs {
            // A control edge from a fed placeholder is satisfied by the feed.
            if !(fed_nodes.contains(&c) && is_placeholder(graph.node(c))) {
                needed[c] = true;
            }
        }
    }
    Ok(candidates.into_iter().filter(|&id| needed[id]).collect())
}

/// For each node of `order`, which of its outputs are read (by another node or a fetch),
/// as flags up to the highest one read.
fn used_outputs(
    graph: &Graph,
    order: &[NodeId],
    fetches: &[Output],
    fed: &HashMap<Output, usize>,
    resolve: impl Fn(Output) -> Output,
) -> HashMap<NodeId, Vec<bool>> {
    let mut used: HashMap<NodeId, Vec<bool>> = HashMap::new();
    let reads = order
        .iter()
        .flat_map(|&id| graph.node(id).inputs.iter().copied())
        .chain(fetches.iter().copied());
    for o in reads {
        let o = resolve(o);
        if fed.contains_key(&o) {
            continue;
        }
        let u = used.entry(o.node).or_default();
        if u.len() <= o.index {
            u.resize(o.index + 1, false);
        }
        u[o.index] = true;
    }
    used
}

fn step_error(step: &Step, e: OpError) -> Error {
    Error::Node {
        node: step.node.clone(),
        op: step.op.clone(),
        message: e.0,
    }
}

fn is_placeholder(node: &Node) -> bool {
    ckpt_graph::PLACEHOLDER_OPS.contains(&node.op.as_str())
}

/// A constant that must run as a step (it has control inputs).
#[derive(Debug)]
struct ConstKernel(Vec<Value>);

impl Kernel for ConstKernel {
    fn run(&self, _inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        Ok(self.0.clone())
    }
}

enum VariableError {
    /// The checkpoint has no tensor under this key.
    Missing(String),
    Other(Error),
}

/// The value of variable node `id`: `Ok(None)` when there is no checkpoint to read from.
fn load_variable(
    input: &PlanInput<'_>,
    id: NodeId,
    node: &Node,
) -> Result<Option<Value>, VariableError> {
    if !input.main_graph {
        return Err(VariableError::Other(node_error(
            node,
            "variables inside functions are not supported",
        )));
    }
    let Some(bundle) = input.bundle else {
        return Ok(None);
    };
    let key = input
        .model
        .variable_key(id)
        .unwrap_or(&node.name)
        .to_string();
    if !bundle.contains(&key) {
        return Err(VariableError::Missing(key));
    }
    let bundle_error = |source| {
        VariableError::Other(Error::Bundle {
            node: node.name.clone(),
            key: key.clone(),
            source: Box::new(source),
        })
    };
    let tensor = bundle.read(&key).map_err(bundle_error)?;
    let mut value = crate::variable::to_value(&tensor).map_err(|m| {
        VariableError::Other(node_error(node, format!("checkpoint tensor {key:?}: {m}")))
    })?;
    if let Some(spec) = input.model.variable_slices.get(&id) {
        value = crate::variable::slice(value, spec).map_err(|m| {
            VariableError::Other(node_error(node, format!("checkpoint tensor {key:?}: {m}")))
        })?;
    }
    // The graph's declared dtype wins where both are known; a mismatch is an error.
    let declared = crate::ops::dtype_attr(node, "dtype").ok();
    if let Some(d) = declared {
        if d != value.dtype() {
            return Err(VariableError::Other(node_error(
                node,
                format!(
                    "the graph declares {d}, checkpoint tensor {key:?} holds {}",
                    value.dtype()
                ),
            )));
        }
    }
    if let Ok(Some(shape)) = node.attr_shape("shape") {
        let fits = shape.len() == value.shape().len()
            && shape
                .iter()
                .zip(value.shape())
                .all(|(&d, &n)| d < 0 || d as usize == n);
        if !fits {
            return Err(VariableError::Other(node_error(
                node,
                format!(
                    "the graph declares shape {shape:?}, checkpoint tensor {key:?} has {:?}",
                    value.shape()
                ),
            )));
        }
    }
    Ok(Some(value))
}

/// A function body compiled as a plan: arguments are its feeds, the outputs the caller reads
/// are its fetches.
#[derive(Debug)]
pub(crate) struct FunctionPlan {
    plan: Plan,
    /// Output index of each fetch.
    outputs: Vec<usize>,
}

impl FunctionPlan {
    /// Builds `f` as called by `caller`, computing only the caller's used outputs.
    pub(crate) fn build(
        f: &Function,
        caller: &Node,
        ctx: &BuildCtx<'_>,
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
        let feeds: Vec<Output> = (0..f.arg_names.len())
            .filter_map(|i| f.arg(i))
            .map(|id| Output::new(id, 0))
            .collect();
        if feeds.len() != f.arg_names.len() {
            return Err(node_error(
                caller,
                format!("function {:?} has malformed arguments", f.name),
            ));
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
            inference: ctx.inference,
            rewrite: &rewrite,
            depth: ctx.depth + 1,
        })
        .map_err(|e| node_error(caller, format!("in function {:?}: {e}", f.name)))?;
        Ok(FunctionPlan { plan, outputs })
    }

    /// Runs the body on `args`; returns `n_out` outputs, with placeholders where the caller
    /// reads nothing.
    pub(crate) fn call(&self, args: Vec<Value>, n_out: usize) -> Result<Vec<Value>, OpError> {
        let values = self.plan.run(args).map_err(|e| OpError(e.to_string()))?;
        let mut out: Vec<Value> = (0..n_out).map(|_| unused_output()).collect();
        for (&i, v) in self.outputs.iter().zip(values) {
            if let Some(slot) = out.get_mut(i) {
                *slot = v;
            }
        }
        Ok(out)
    }
}

/// The dtype a graph node declares for its output 0, when it declares one.
pub(crate) fn declared_dtype(node: &Node) -> Option<DType> {
    ["dtype", "T"]
        .iter()
        .find_map(|a| crate::ops::dtype_attr(node, a).ok())
}
