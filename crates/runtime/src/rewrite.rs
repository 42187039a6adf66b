//! Inference mode: recognized dropout subgraphs become identities.
//!
//! Matching is by op type, not by name (docs/format.md §6.7), on a mask derived from a random op
//! within a few steps:
//!
//! - keep_prob form (TF 1.0 to 1.12): `Mul(RealDiv(x, keep_prob), Floor(keep_prob + U))`, and
//!   before TF 1.0 the same with `Div` for `RealDiv` and `Add`s (`U` itself being
//!   `Add(Mul(RandomUniform, max - min), min)`), or `Mul(Mul(x, Inv(keep_prob)), mask)` in TF 0.x;
//! - rate form (TF 1.13 to early 2.x): `Mul(Mul(x, scale) | RealDiv(x, keep), Cast(U >= rate))`;
//! - TF 2.x form: `SelectV2(U >= rate, Mul(x, scale) | RealDiv(x, 1 - rate), 0)`;
//! - a TF1 cond (`Switch`/`Merge`) whose true branch draws random numbers: the `Merge` is
//!   replaced by its false input and the cond's `Switch`es always take the false side.
//!
//! - an `If`/`StatelessIf` whose then-branch draws random numbers and whose else-branch does
//!   not: outputs the else-branch passes through from an argument become that argument (the
//!   `If` itself, if still needed, always takes the else-branch; see `ops::control::if_op`).
//!
//! Each match maps the dropout's output to `x`; everything that only fed the dropout is then
//! pruned from the plan.

use std::collections::{HashMap, HashSet, VecDeque};

use ckpt_graph::{Function, Graph, Model, NodeId, Output};

use crate::ops::array::random::RANDOM_OPS;

/// Output aliases and forced `Switch`es for one graph.
#[derive(Debug, Default)]
pub(crate) struct Rewrite {
    pub alias: HashMap<Output, Output>,
    pub force_false: HashSet<NodeId>,
}

/// Steps a mask may be from its random op.
const MASK_DEPTH: usize = 6;
/// Nodes a cond branch may have for its randomness to be looked for.
const BRANCH_NODES: usize = 256;

impl Rewrite {
    /// `o`, or what it aliases (following chains of stacked dropouts).
    pub(crate) fn resolve(&self, mut o: Output) -> Output {
        for _ in 0..64 {
            match self.alias.get(&o) {
                Some(&next) if next != o => o = next,
                _ => break,
            }
        }
        o
    }

    /// Finds the dropout subgraphs of `graph`, whose functions are `model`'s.
    pub(crate) fn dropout(graph: &Graph, model: &Model) -> Rewrite {
        let mut rewrite = Rewrite::default();
        for (id, node) in graph.nodes.iter().enumerate() {
            if matches!(node.op.as_str(), "If" | "StatelessIf") {
                rewrite.pass_through_else(graph, id, model);
                continue;
            }
            let x = match (node.op.as_str(), node.inputs.as_slice()) {
                ("Mul", &[a, b]) => {
                    if is_random_mask(graph, b) {
                        scaled_input(graph, a)
                    } else if is_random_mask(graph, a) {
                        scaled_input(graph, b)
                    } else {
                        None
                    }
                }
                ("SelectV2" | "Select", &[cond, t, _]) if is_random_mask(graph, cond) => {
                    scaled_input(graph, t)
                }
                ("Merge", &[false_branch, true_branch]) => {
                    if branch_draws_random(graph, true_branch) {
                        rewrite
                            .force_false
                            .extend(cond_switches(graph, false_branch));
                        Some(false_branch)
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let Some(x) = x {
                rewrite.alias.insert(Output::new(id, 0), x);
            }
        }
        rewrite
    }
}

impl Rewrite {
    /// Aliases the outputs of a dropout `If` that its else-branch passes through unchanged.
    fn pass_through_else(&mut self, graph: &Graph, id: NodeId, model: &Model) {
        let node = graph.node(id);
        let branch = |attr: &str| {
            node.attr_func(attr)
                .ok()
                .and_then(|f| model.functions.get(&f.name))
        };
        let (Some(then_fn), Some(else_fn)) = (branch("then_branch"), branch("else_branch")) else {
            return;
        };
        if !crate::ops::control::if_op::draws_random(then_fn)
            || crate::ops::control::if_op::draws_random(else_fn)
        {
            return;
        }
        for (k, &out) in else_fn.outputs.iter().enumerate() {
            if let Some(arg) = passed_argument(else_fn, out) {
                if let Some(&input) = node.inputs.get(arg + 1) {
                    self.alias.insert(Output::new(id, k), input);
                }
            }
        }
    }
}

/// The index of the argument `o` is (through `Identity` nodes), if it is one.
fn passed_argument(f: &Function, mut o: Output) -> Option<usize> {
    for _ in 0..16 {
        let node = f.body.get(o.node)?;
        match node.op.as_str() {
            ckpt_graph::ARG_OP => {
                return node
                    .attr_i64("index")
                    .ok()
                    .and_then(|i| usize::try_from(i).ok())
            }
            "Identity" | "Snapshot" | "StopGradient" => o = *node.inputs.first()?,
            _ => return None,
        }
    }
    None
}

/// Whether `o` is computed from a random op within [`MASK_DEPTH`] steps.
fn is_random_mask(graph: &Graph, o: Output) -> bool {
    let mut queue = VecDeque::from([(o.node, 0usize)]);
    let mut seen = HashSet::new();
    while let Some((id, depth)) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = graph.get(id) else { continue };
        if RANDOM_OPS.contains(&node.op.as_str()) {
            return true;
        }
        let passes = matches!(
            node.op.as_str(),
            "Floor"
                | "Cast"
                | "GreaterEqual"
                | "Greater"
                | "Less"
                | "Add"
                | "AddV2"
                | "Mul"
                | "Sub"
                | "Identity"
        );
        if passes && depth < MASK_DEPTH {
            queue.extend(node.inputs.iter().map(|i| (i.node, depth + 1)));
        }
    }
    false
}

/// `x` when `o` is `RealDiv(x, _)`, `Div(x, _)` (graphs before TF 1.0) or `Mul(x, _)`
/// (dropout's scaling of its input).
fn scaled_input(graph: &Graph, o: Output) -> Option<Output> {
    let node = graph.get(o.node)?;
    match (node.op.as_str(), node.inputs.as_slice()) {
        ("RealDiv" | "Mul" | "Div", &[x, _]) if o.index == 0 => Some(x),
        _ => None,
    }
}

/// The nodes that compute `o` inside its cond branch: walks inputs and control inputs back,
/// stopping at `Switch`es (the branch's entry points). Calls `visit` on each node; `None`
/// when the branch is implausibly large.
fn walk_branch(graph: &Graph, o: Output, mut visit: impl FnMut(NodeId, &str)) -> Option<()> {
    let mut stack = vec![o.node];
    let mut seen = HashSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if seen.len() > BRANCH_NODES {
            return None;
        }
        let node = graph.get(id)?;
        visit(id, &node.op);
        if node.op == "Switch" {
            continue;
        }
        stack.extend(node.inputs.iter().map(|i| i.node));
        stack.extend(node.control_inputs.iter().copied());
    }
    Some(())
}

fn branch_draws_random(graph: &Graph, o: Output) -> bool {
    let mut random = false;
    walk_branch(graph, o, |_, op| random |= RANDOM_OPS.contains(&op)).is_some() && random
}

/// The `Switch`es a cond's false branch reads from.
fn cond_switches(graph: &Graph, o: Output) -> Vec<NodeId> {
    let mut switches = Vec::new();
    let complete = walk_branch(graph, o, |id, op| {
        if op == "Switch" {
            switches.push(id);
        }
    });
    if complete.is_some() {
        switches
    } else {
        Vec::new()
    }
}
