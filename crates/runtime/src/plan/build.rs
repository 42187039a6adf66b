//! Building a [`Plan`] from a graph, its fetches and its feeds, in named steps: the nodes
//! the fetches need, the ops among them the executor lacks (all reported at once), the
//! outputs read, the fused chains, then each node planned in order (its
//! kernel built, its inputs located, its outputs placed in constants or slots, constant
//! inputs folded), the fetches located, and each slot's last read marked.

use std::collections::{HashMap, HashSet};

use ckpt_bundle::Checkpoint;
use ckpt_graph::{Graph, Model, Node, NodeId, Output};

use super::{Action, Input, Plan, Source, Step};
use crate::fusion::Fusions;
use crate::ops::control::if_op::unused_output;
use crate::ops::{self, node_error, BuildCtx, Built, Kernel, OpError};
use crate::rewrite::Rewrite;
use crate::support::MissingOps;
use crate::variable::{self, VariableError};
use crate::{Error, Value};

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
    pub bundle: Option<&'a Checkpoint>,
    /// Whether `graph` is the model's main graph (whose variables the model maps to keys).
    pub main_graph: bool,
    pub fetches: &'a [Output],
    pub feeds: &'a [Output],
    /// Outputs whose values are known when the plan is built (a function's arguments that
    /// the caller passes constants to, such as captured variables): constants of the plan.
    pub bound: &'a [(Output, Value)],
    pub inference: bool,
    pub rewrite: &'a Rewrite,
    pub depth: usize,
}

impl Plan {
    /// Compiles `input.graph` to compute its fetches from its feeds.
    pub(crate) fn build(input: &PlanInput<'_>) -> Result<Plan, Error> {
        let fed = feed_indices(input.feeds);
        let rewritten = |o: Output| input.rewrite.resolve(o);
        let order = needed_nodes(input.graph, input.fetches, input.feeds, &fed, rewritten)?;
        let used = used_outputs(input.graph, &order, input.fetches, &fed, rewritten);
        let mut missing = MissingOps::default();
        let roots: Vec<Output> = input.fetches.iter().map(|&f| rewritten(f)).collect();
        missing.visit(input.model, input.graph, &order, &roots, None);
        missing.into_result()?;
        let fusions = find_fusions(input, &order, &fed)?;
        let mut planner = Planner::new(input, fed, fusions);
        planner.bind(input.bound)?;
        for id in planner.fusions.planning_order(&order) {
            planner.plan_node(id, used.get(&id).map_or(&[], Vec::as_slice))?;
        }
        planner.report_unloaded_variables()?;
        let mut plan = planner.locate_fetches()?;
        plan.mark_last_reads();
        Ok(plan)
    }

    /// Keeps `values` among the constants every run reads.
    fn add_consts(&mut self, values: Vec<Value>) -> Location {
        let first = self.consts.len();
        let count = values.len();
        self.consts.extend(values);
        Location::Consts { first, count }
    }

    /// Appends a step, assigning its outputs the next `n_out` slots.
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
}

/// Each fed output with its position among the feeds.
fn feed_indices(feeds: &[Output]) -> HashMap<Output, usize> {
    feeds.iter().enumerate().map(|(i, &o)| (o, i)).collect()
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

/// Conv2D/MatMul -> BiasAdd -> activation chains that become one kernel.
fn find_fusions(
    input: &PlanInput<'_>,
    order: &[NodeId],
    fed: &HashMap<Output, usize>,
) -> Result<Fusions, Error> {
    let resolve = |o: Output| input.rewrite.resolve(o);
    let fetched: HashSet<Output> = input.fetches.iter().map(|&f| resolve(f)).collect();
    let fed_outputs: HashSet<Output> = fed.keys().copied().collect();
    crate::fusion::find(input.graph, order, &fetched, &fed_outputs, resolve)
}

/// A plan being built, node by node, and what building it keeps track of.
struct Planner<'a> {
    input: &'a PlanInput<'a>,
    /// Each fed output's position among the feeds.
    fed: HashMap<Output, usize>,
    fusions: Fusions,
    plan: Plan,
    /// Where each planned node's outputs are.
    location: HashMap<NodeId, Location>,
    /// Constants standing in for variables that could not be loaded: never computed with.
    poisoned: HashSet<usize>,
    /// Variables missing from the checkpoint, by key (and node, when it differs).
    missing_variables: Vec<String>,
    /// Variables that were not loaded because no checkpoint was given.
    unloaded_variables: Vec<String>,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput<'a>, fed: HashMap<Output, usize>, fusions: Fusions) -> Self {
        let plan = Plan {
            steps: Vec::new(),
            consts: Vec::new(),
            n_slots: input.feeds.len(),
            feeds: (0..input.feeds.len()).collect(),
            fetches: Vec::new(),
            fetch_names: input
                .fetches
                .iter()
                .map(|&o| input.graph.tensor_name(o))
                .collect(),
            tracks_dead: false,
        };
        Planner {
            input,
            fed,
            fusions,
            plan,
            location: HashMap::new(),
            poisoned: HashSet::new(),
            missing_variables: Vec::new(),
            unloaded_variables: Vec::new(),
        }
    }

    /// Makes the bound outputs constants of the plan.
    fn bind(&mut self, bound: &[(Output, Value)]) -> Result<(), Error> {
        for (o, value) in bound {
            if o.index != 0 || self.location.contains_key(&o.node) {
                return Err(Error::Internal(format!(
                    "bound output {} is not the single output of a node",
                    self.input.graph.tensor_name(*o)
                )));
            }
            let location = self.plan.add_consts(vec![value.clone()]);
            self.location.insert(o.node, location);
        }
        Ok(())
    }

    /// The output `o` is read from, after the rewrite's aliases and the fusions.
    fn resolve(&self, o: Output) -> Output {
        let o = self.input.rewrite.resolve(o);
        self.fusions.alias.get(&o).copied().unwrap_or(o)
    }

    /// Plans node `id`, whose outputs up to the last one in `used_outputs` are read.
    fn plan_node(&mut self, id: NodeId, used_outputs: &[bool]) -> Result<(), Error> {
        if self.location.contains_key(&id) {
            // A bound argument, already a constant.
            return Ok(());
        }
        let node = self.input.graph.node(id);
        let sources = self.sources(id, node)?;
        let built = self.build_node(id, node, used_outputs, &sources)?;
        let control = self.control_steps(node);
        let n_out = used_outputs.len();
        let location = match built {
            Built::Constant(values) if node.control_inputs.is_empty() => {
                self.plan.add_consts(values)
            }
            Built::Constant(values) => {
                // A constant under a control edge (inside a TF1 cond branch) must see
                // deadness, so it runs as a step.
                let kernel = Box::new(ConstKernel(values));
                self.plan
                    .add_step(node, Action::Kernel(kernel), sources, control, n_out)
            }
            Built::Variable => self.load_variable(id, node)?,
            Built::Kernel(kernel) => self.fold_or_add(node, kernel, sources, control, n_out)?,
            Built::Switch { force_false } => {
                self.plan.tracks_dead = true;
                let action = Action::Switch { force_false };
                self.plan.add_step(node, action, sources, control, n_out)
            }
            Built::Merge => self
                .plan
                .add_step(node, Action::Merge, sources, control, n_out),
        };
        self.location.insert(id, location);
        Ok(())
    }

    /// What the op table (or the fusion, or the function library) makes of `node`.
    fn build_node(
        &self,
        id: NodeId,
        node: &Node,
        used_outputs: &[bool],
        sources: &[Source],
    ) -> Result<Built, Error> {
        if let Some(fused) = self.fusions.fused.get(&id) {
            return fused.build(node);
        }
        // Constants standing in for missing variables are never computed with.
        let const_inputs: Vec<Option<&Value>> = sources
            .iter()
            .take(node.inputs.len())
            .map(|s| match s {
                Source::Const(c) if !self.poisoned.contains(c) => self.plan.consts.get(*c),
                _ => None,
            })
            .collect();
        let ctx = BuildCtx {
            model: self.input.model,
            inference: self.input.inference,
            used_outputs,
            force_false: self.input.rewrite.force_false.contains(&id),
            depth: self.input.depth,
            const_inputs: &const_inputs,
        };
        match ops::builder(&node.op) {
            Some(build) => build(node, &ctx),
            None if self.input.model.functions.contains_key(&node.op) => {
                ops::control::call::build_named(node, &ctx, &node.op)
            }
            None => Err(Error::UnsupportedOps {
                ops: vec![crate::MissingOp {
                    op: node.op.clone(),
                    nodes: 1,
                    example: node.name.clone(),
                }],
            }),
        }
    }

    /// Where node `id` reads its inputs, the absorbed bias last for a fused producer.
    fn sources(&self, id: NodeId, node: &Node) -> Result<Vec<Source>, Error> {
        let bias = self.fusions.fused.get(&id).map(|f| f.bias);
        node.inputs
            .iter()
            .map(|&i| self.resolve(i))
            .chain(bias)
            .map(|o| self.source(o))
            .collect()
    }

    /// Where the value of `o` will be.
    fn source(&self, o: Output) -> Result<Source, Error> {
        if let Some(&i) = self.fed.get(&o) {
            return Ok(Source::Slot(self.plan.feeds[i]));
        }
        let graph = self.input.graph;
        let missing = || {
            let node = graph.node(o.node);
            node_error(
                node,
                format!("has no output {} (it produces fewer)", o.index),
            )
        };
        match self.location.get(&o.node) {
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

    /// The steps `node`'s control inputs became (constants and variables have none).
    fn control_steps(&self, node: &Node) -> Vec<usize> {
        node.control_inputs
            .iter()
            .filter_map(|c| match self.location.get(c) {
                Some(Location::Step { step, .. }) => Some(*step),
                _ => None,
            })
            .collect()
    }

    /// A variable's checkpoint value, as a constant. A variable that cannot be loaded (no
    /// checkpoint, or not in it) gets a stand-in so that planning goes on and every such
    /// variable is reported at once.
    fn load_variable(&mut self, id: NodeId, node: &Node) -> Result<Location, Error> {
        if !self.input.main_graph {
            return Err(node_error(
                node,
                "variables inside functions are not supported",
            ));
        }
        let Some(bundle) = self.input.bundle else {
            self.unloaded_variables.push(node.name.clone());
            return Ok(self.add_stand_in());
        };
        match variable::load(self.input.model, bundle, id, node) {
            Ok(value) => Ok(self.plan.add_consts(vec![value])),
            Err(VariableError::Missing(key)) => {
                self.missing_variables.push(if key == node.name {
                    key
                } else {
                    format!("{key} (node {})", node.name)
                });
                Ok(self.add_stand_in())
            }
            Err(VariableError::Other(e)) => Err(e),
        }
    }

    /// A constant standing in for a variable that could not be loaded.
    fn add_stand_in(&mut self) -> Location {
        self.poisoned.insert(self.plan.consts.len());
        self.plan.add_consts(vec![unused_output()])
    }

    /// Evaluates a pure kernel whose inputs are all constants now, its outputs becoming
    /// constants; any other kernel becomes a step.
    fn fold_or_add(
        &mut self,
        node: &Node,
        kernel: Box<dyn Kernel>,
        sources: Vec<Source>,
        control: Vec<usize>,
        n_out: usize,
    ) -> Result<Location, Error> {
        // Constants standing in for missing variables are never computed with.
        let all_const = sources
            .iter()
            .all(|s| matches!(s, Source::Const(c) if !self.poisoned.contains(c)));
        if !(kernel.is_pure() && all_const && control.is_empty() && node.control_inputs.is_empty())
        {
            let action = Action::Kernel(kernel);
            return Ok(self.plan.add_step(node, action, sources, control, n_out));
        }
        let inputs: Vec<Value> = sources
            .iter()
            .filter_map(|s| match s {
                Source::Const(c) => self.plan.consts.get(*c).cloned(),
                Source::Slot(_) => None,
            })
            .collect();
        let outputs = kernel.run(inputs).map_err(|e| node_error(node, e.0))?;
        Ok(self.plan.add_consts(outputs))
    }

    /// Fails, naming them all, when variables could not be loaded.
    fn report_unloaded_variables(&mut self) -> Result<(), Error> {
        if !self.unloaded_variables.is_empty() {
            return Err(Error::NoCheckpoint {
                names: std::mem::take(&mut self.unloaded_variables),
            });
        }
        if !self.missing_variables.is_empty() {
            return Err(Error::MissingVariables {
                names: std::mem::take(&mut self.missing_variables),
            });
        }
        Ok(())
    }

    /// The plan, with where each fetch is read.
    fn locate_fetches(mut self) -> Result<Plan, Error> {
        let fetches = self
            .input
            .fetches
            .iter()
            .map(|&f| self.source(self.resolve(f)))
            .collect::<Result<_, _>>()?;
        self.plan.fetches = fetches;
        Ok(self.plan)
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
