//! Building a [`Plan`] from a graph, its fetches and its feeds, in named steps: the nodes
//! the fetches need, the ops among them the executor lacks (all reported at once), the
//! outputs read, the fused chains, the frames of TF1 while loops, then each node planned in
//! order (its kernel built, its inputs located, its outputs placed in constants or slots,
//! constant inputs folded) with each loop planned as a plan of its own, the fetches located,
//! and each slot's last read marked.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use ckpt_bundle::Checkpoint;
use ckpt_graph::{Graph, Model, Node, NodeId, Output};

use super::frames::{Frames, Unit, ROOT};
use super::{Action, Input, LoopPlan, LoopVar, Plan, Source, Step};
use crate::fusion::{Fused, Fusions};
use crate::ops::control::if_op::unused_output;
use crate::ops::nn::fold_batch_norm;
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
    /// Fuse and fold (see [`crate::fusion`]); otherwise every node is its own step.
    pub optimize: bool,
    pub rewrite: &'a Rewrite,
    pub depth: usize,
    /// Iterations a while loop may run before the run fails.
    pub max_iterations: u64,
    /// Function bodies planned so far for this session, all levels counted
    /// ([`crate::plan::MAX_FUNCTION_PLANS`] at most).
    pub function_plans: &'a AtomicUsize,
}

/// What every region (the graph, and each loop's frame) of one plan build shares.
struct Shared<'a> {
    input: &'a PlanInput<'a>,
    fusions: Fusions,
    frames: Frames,
    /// For each needed node, which of its outputs are read.
    used: HashMap<NodeId, Vec<bool>>,
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
        let fed_outputs: HashSet<Output> = fed.keys().copied().collect();
        let frames = Frames::analyze(input.graph, &order, &fed_outputs, rewritten)?;
        let shared = Shared {
            input,
            fusions,
            frames,
            used,
        };
        let mut planner = Planner::new(&shared, fed, input.feeds.len());
        planner.bind(input.bound)?;
        planner.plan_units(ROOT)?;
        planner.report_unloaded_variables()?;
        let fetch_names = input
            .fetches
            .iter()
            .map(|&o| input.graph.tensor_name(o))
            .collect();
        let fetches: Vec<Output> = input.fetches.iter().map(|&f| planner.resolve(f)).collect();
        planner.finish(&fetches, fetch_names)
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

    /// Marks each slot's last read as a take, lists outputs nobody reads, and lets each fetch
    /// move its value out unless a later fetch reads the same slot.
    fn mark_last_reads(&mut self) {
        self.fetch_takes = self
            .fetches
            .iter()
            .enumerate()
            .map(|(i, f)| {
                matches!(f, Source::Slot(_)) && !self.fetches.iter().skip(i + 1).any(|g| g == f)
            })
            .collect();
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
    // One pass in reverse order suffices, except that a loop's NextIteration comes after the
    // Merge that needs it: passes repeat until nothing more is needed.
    let mut visited = vec![false; graph.nodes.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for &id in candidates.iter().rev() {
            if !needed[id] || visited[id] {
                continue;
            }
            visited[id] = true;
            let node = graph.node(id);
            for &i in &node.inputs {
                let i = resolve(i);
                if !fed.contains_key(&i) && !needed[i.node] {
                    needed[i.node] = true;
                    changed |= graph.is_back_edge(i.node, id);
                }
            }
            for &c in &node.control_inputs {
                // A control edge from a fed placeholder is satisfied by the feed.
                if !(fed_nodes.contains(&c) && is_placeholder(graph.node(c))) {
                    needed[c] = true;
                }
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
    if !input.optimize {
        return Ok(Fusions::default());
    }
    let resolve = |o: Output| input.rewrite.resolve(o);
    let fetched: HashSet<Output> = input.fetches.iter().map(|&f| resolve(f)).collect();
    let fed_outputs: HashSet<Output> = fed.keys().copied().collect();
    crate::fusion::find(input.graph, order, &fetched, &fed_outputs, resolve)
}

/// A plan being built, node by node, and what building it keeps track of: the graph's plan
/// or a loop body's.
struct Planner<'a> {
    shared: &'a Shared<'a>,
    input: &'a PlanInput<'a>,
    fusions: &'a Fusions,
    /// Each fed output's position among the feeds.
    fed: HashMap<Output, usize>,
    plan: Plan,
    /// Where each planned node's outputs are.
    location: HashMap<NodeId, Location>,
    /// Constants standing in for variables that could not be loaded: never computed with.
    poisoned: HashSet<usize>,
    /// Variables missing from the checkpoint, by key (and node, when it differs).
    missing_variables: Vec<String>,
    /// Variables that were not loaded because no checkpoint was given.
    unloaded_variables: Vec<String>,
    /// The lookup tables built so far, by table node.
    tables: HashMap<NodeId, Arc<ops::text::table::Table>>,
}

impl<'a> Planner<'a> {
    fn new(shared: &'a Shared<'a>, fed: HashMap<Output, usize>, n_feeds: usize) -> Self {
        let plan = Plan {
            steps: Vec::new(),
            consts: Vec::new(),
            n_slots: n_feeds,
            feeds: (0..n_feeds).collect(),
            fetches: Vec::new(),
            fetch_names: Vec::new(),
            fetch_takes: Vec::new(),
            tracks_dead: false,
        };
        Planner {
            shared,
            input: shared.input,
            fusions: &shared.fusions,
            fed,
            plan,
            location: HashMap::new(),
            poisoned: HashSet::new(),
            missing_variables: Vec::new(),
            unloaded_variables: Vec::new(),
            tables: HashMap::new(),
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

    /// Plans the nodes of frame `frame`, and each loop nested in it as one step.
    fn plan_units(&mut self, frame: usize) -> Result<(), Error> {
        let graph = self.input.graph;
        let units = self.shared.frames.units(graph, frame)?;
        // A loop body's Merges are fed the loop variables.
        let fed_merges: HashSet<NodeId> = self.shared.frames.frames[frame]
            .merges
            .iter()
            .map(|m| m.merge)
            .collect();
        for unit in units {
            match unit {
                Unit::Frame(g) => self.plan_loop(g)?,
                Unit::Node(id) => {
                    let Some(id) = self.fusions.planned_at(id) else {
                        continue;
                    };
                    if fed_merges.contains(&id) {
                        continue;
                    }
                    let used = self.shared.used.get(&id).map_or(&[][..], Vec::as_slice);
                    self.plan_node(id, used)?;
                }
            }
        }
        Ok(())
    }

    /// Plans the loop of frame `g` as one step: its body becomes a plan of its own, fed the
    /// loop invariants and the loop variables' values of one iteration.
    fn plan_loop(&mut self, g: usize) -> Result<(), Error> {
        let graph = self.input.graph;
        let frame = &self.shared.frames.frames[g];
        let mut inputs: Vec<Source> = Vec::new();
        let mut body_fed: HashMap<Output, usize> = HashMap::new();
        // Invariants that are constants of this plan become constants of the body.
        let mut body_consts: Vec<(NodeId, Value)> = Vec::new();
        let mut control: Vec<usize> = Vec::new();
        for &e in &frame.enters {
            let enter = graph.node(e);
            control.extend(self.control_steps(enter));
            if !enter.attr_bool_or("is_constant", false)? {
                continue;
            }
            let [input] = enter.inputs.as_slice() else {
                return Err(node_error(enter, "Enter takes exactly one input"));
            };
            match self.source(self.resolve(*input))? {
                Source::Const(c) if !self.poisoned.contains(&c) => {
                    let value = self.plan.consts.get(c).cloned().ok_or_else(|| {
                        Error::Internal(format!("constant {c} of {:?}", enter.name))
                    })?;
                    body_consts.push((e, value));
                }
                src => {
                    body_fed.insert(Output::new(e, 0), inputs.len());
                    inputs.push(src);
                }
            }
        }
        let n_invariants = inputs.len();
        let mut vars = Vec::with_capacity(frame.merges.len());
        for m in &frame.merges {
            let enter = graph.node(m.enter);
            let [input] = enter.inputs.as_slice() else {
                return Err(node_error(enter, "Enter takes exactly one input"));
            };
            inputs.push(self.source(self.resolve(*input))?);
            body_fed.insert(Output::new(m.merge, 0), body_fed.len());
            let index = self
                .shared
                .used
                .get(&m.merge)
                .is_some_and(|u| u.get(1).copied().unwrap_or(false));
            if index {
                body_fed.insert(Output::new(m.merge, 1), body_fed.len());
            }
            vars.push((m.next, index));
        }
        let mut body = Planner::new(self.shared, body_fed.clone(), body_fed.len());
        for (e, value) in body_consts {
            let location = body.plan.add_consts(vec![value]);
            body.location.insert(e, location);
        }
        body.plan_units(g)?;
        let mut fetches: Vec<Output> = vars.iter().map(|&(next, _)| Output::new(next, 0)).collect();
        fetches.extend(frame.exits.iter().map(|&x| Output::new(x, 0)));
        let fetch_names = fetches.iter().map(|&o| graph.tensor_name(o)).collect();
        let mut body = body.finish(&fetches, fetch_names)?;
        body.tracks_dead = true;
        let plan = LoopPlan {
            frame: frame.name.clone(),
            body,
            n_invariants,
            vars: vars
                .iter()
                .enumerate()
                .map(|(k, &(_, index))| LoopVar { next: k, index })
                .collect(),
            exits: (vars.len()..vars.len() + frame.exits.len()).collect(),
            max_iterations: self.input.max_iterations,
        };
        self.plan.tracks_dead = true;
        let first =
            graph.node(
                frame.enters.first().copied().ok_or_else(|| {
                    Error::Internal(format!("frame {:?} has no Enter", frame.name))
                })?,
            );
        let n_out = frame.exits.len();
        let location =
            self.plan
                .add_step(first, Action::Loop(Box::new(plan)), inputs, control, n_out);
        if let Location::Step { step, out, .. } = location {
            for (k, &x) in frame.exits.iter().enumerate() {
                self.location.insert(
                    x,
                    Location::Step {
                        step,
                        out: out + k,
                        n_out: 1,
                    },
                );
            }
        }
        Ok(())
    }

    /// The output `o` is read from, after the rewrite's aliases and the fusions.
    fn resolve(&self, o: Output) -> Output {
        let mut o = self.input.rewrite.resolve(o);
        // A folded `Pad` aliases its input, which may itself be a fused chain's end.
        for _ in 0..4 {
            match self.fusions.alias.get(&o) {
                Some(&next) if next != o => o = next,
                _ => break,
            }
        }
        o
    }

    /// Plans node `id`, whose outputs up to the last one in `used_outputs` are read.
    fn plan_node(&mut self, id: NodeId, used_outputs: &[bool]) -> Result<(), Error> {
        if self.location.contains_key(&id) {
            // A bound argument, already a constant.
            return Ok(());
        }
        let node = self.input.graph.node(id);
        if let Some(ln) = self.fusions.layer_norms.get(&id).copied() {
            let sources = ln
                .outputs()
                .into_iter()
                .map(|o| self.source(self.resolve(o)))
                .collect::<Result<Vec<_>, _>>()?;
            let control = self.control_steps(node);
            let kernel: Box<dyn Kernel> = Box::new(crate::ops::nn::layer_norm::LayerNorm);
            let location = self.fold_or_add(node, kernel, sources, control, used_outputs.len())?;
            self.location.insert(id, location);
            return Ok(());
        }
        // A fused producer's kernel is built first, so that its errors name it before those
        // of a batch norm folded into it.
        let (built, sources) = match self.fusions.fused.get(&id).copied() {
            Some(fused) => {
                let built = self.build_node(id, node, used_outputs, &[])?;
                (built, self.fused_sources(node, &fused)?)
            }
            None => {
                let sources = self.sources(node)?;
                (self.build_node(id, node, used_outputs, &sources)?, sources)
            }
        };
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
            Built::Table => self.load_table(id, node)?,
            Built::While(w) => self
                .plan
                .add_step(node, Action::While(w), sources, control, n_out),
        };
        self.location.insert(id, location);
        Ok(())
    }

    /// What the op table (or the fusion, or the function library) makes of `node`; kernels
    /// other than `Cast` and function calls compute float16/bfloat16 inputs in float32
    /// ([`crate::half_precision`]).
    fn build_node(
        &self,
        id: NodeId,
        node: &Node,
        used_outputs: &[bool],
        sources: &[Source],
    ) -> Result<Built, Error> {
        let built = self.build_node_kernel(id, node, used_outputs, sources)?;
        Ok(match built {
            Built::Kernel(k)
                if !KEEPS_NARROW_INPUTS.contains(&node.op.as_str())
                    && ops::builder(&node.op).is_some() =>
            {
                Built::Kernel(Box::new(crate::half_precision::Widening::for_op(
                    k, &node.op,
                )))
            }
            other => other,
        })
    }

    fn build_node_kernel(
        &self,
        id: NodeId,
        node: &Node,
        used_outputs: &[bool],
        sources: &[Source],
    ) -> Result<Built, Error> {
        if let Some(fused) = self.fusions.fused.get(&id) {
            return fused.build(node);
        }
        if let Some(folded) = self.fusions.folded_transposes.get(&id) {
            return ops::math::batch_matmul::build_folded(node, folded.clone());
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
            optimize: self.input.optimize,
            used_outputs,
            force_false: self.input.rewrite.force_false.contains(&id),
            depth: self.input.depth,
            table: if node.op.starts_with("LookupTable") {
                node.inputs.first().and_then(|&i| {
                    let source = ops::text::table::source_node(self.input.graph, self.resolve(i));
                    self.tables.get(&source).cloned()
                })
            } else {
                None
            },
            const_inputs: &const_inputs,
            max_iterations: self.input.max_iterations,
            function_plans: self.input.function_plans,
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

    /// Where `node` reads its inputs.
    fn sources(&self, node: &Node) -> Result<Vec<Source>, Error> {
        node.inputs
            .iter()
            .map(|&i| self.source(self.resolve(i)))
            .collect()
    }

    /// Where a fused producer reads its inputs: its own two, then the absorbed bias. A folded
    /// batch norm becomes a step of its own (named after the batch norm) computing the scaled
    /// filter and the bias from the filter and the batch norm's parameters, which constant
    /// folding evaluates once when they are all constants (variables included).
    fn fused_sources(&mut self, node: &Node, fused: &Fused) -> Result<Vec<Source>, Error> {
        let mut sources = self.sources(node)?;
        let bias = fused.bias.map(|b| self.source(b)).transpose()?;
        let Some(bn) = fused.batch_norm else {
            sources.extend(bias);
            return Ok(sources);
        };
        let bn_node = self.input.graph.node(bn.node);
        let Some(&filter) = sources.get(1) else {
            return Err(node_error(node, "expected 2 inputs"));
        };
        let mut fold_sources = vec![filter];
        for &i in bn_node.inputs.iter().skip(1) {
            fold_sources.push(self.source(self.resolve(i))?);
        }
        fold_sources.extend(bias);
        let kernel = fold_batch_norm::kernel(bn.epsilon, bias.is_some());
        let folded = match self.fold_or_add(bn_node, kernel, fold_sources, Vec::new(), 2)? {
            Location::Consts { first, .. } => [Source::Const(first), Source::Const(first + 1)],
            Location::Step { out, .. } => [Source::Slot(out), Source::Slot(out + 1)],
        };
        sources.truncate(1);
        sources.extend(folded);
        Ok(sources)
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

    /// A lookup table, built now (see [`ops::text::table`]); its output, TensorFlow's resource
    /// handle, is a scalar string holding the node's name.
    fn load_table(&mut self, id: NodeId, node: &Node) -> Result<Location, Error> {
        if !self.input.main_graph {
            return Err(node_error(
                node,
                "tables inside functions are not supported",
            ));
        }
        let table = ops::text::table::load(
            self.input.model,
            self.input.graph,
            self.input.bundle,
            id,
            node,
        )?;
        self.tables.insert(id, table);
        let handle = Value::scalar(node.name.as_bytes().to_vec());
        Ok(self.plan.add_consts(vec![handle]))
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

    /// The plan, with where each of `fetches` (resolved outputs) is read.
    fn finish(mut self, fetches: &[Output], names: Vec<String>) -> Result<Plan, Error> {
        self.plan.fetches = fetches
            .iter()
            .map(|&f| self.source(f))
            .collect::<Result<_, _>>()?;
        self.plan.fetch_names = names;
        self.plan.mark_last_reads();
        Ok(self.plan)
    }
}

/// Kernels that take float16/bfloat16 inputs as they are: `Cast` converts them itself,
/// `DepthwiseConv2dNative` accumulates in the narrow type as TensorFlow's does, and function
/// calls hand them to bodies whose own kernels widen them.
const KEEPS_NARROW_INPUTS: &[&str] = &[
    "Cast",
    "DepthwiseConv2dNative",
    "If",
    "StatelessIf",
    "PartitionedCall",
    "StatefulPartitionedCall",
];

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
