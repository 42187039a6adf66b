//! The frames of TF1 while loops (docs/format.md §10.1–§10.2), found once at plan time.
//!
//! TensorFlow's executor tags every value with a frame and an iteration. Which frame a node
//! runs in is static (`ImmutableExecutorState::BuildControlFlowInfo`): the consumer of an
//! `Enter` is in the frame the `Enter` names, the consumer of an `Exit` is in the loop's parent
//! frame, and every other node is in the frame of its inputs. Here that assignment is
//! computed and checked, and each frame's contents are put in an order in which a frame nested
//! in it counts as one unit, so that the planner can compile a loop's body into a plan of its
//! own ([`super::LoopPlan`]) that runs once per iteration.
//!
//! What a loop looks like (`WhileContext`): each loop variable enters through an
//! `Enter(is_constant=false)` into a `Merge` whose other input is the variable's
//! `NextIteration` (the back edge); values the body only reads enter through
//! `Enter(is_constant=true)`; results leave through `Exit`. Graphs that break these rules are
//! refused here, naming the node, rather than left to misbehave at run time.

use std::collections::{BTreeSet, HashMap, HashSet};

use ckpt_graph::{Graph, Node, NodeId, Output};

use crate::ops::node_error;
use crate::Error;

/// The frame outside every loop.
pub(super) const ROOT: usize = 0;

/// One while loop's frame (for the root, only `name` is meaningful).
#[derive(Debug)]
pub(super) struct Frame {
    /// `Enter`'s `frame_name` attribute (empty for the root).
    pub name: String,
    /// The frame the loop runs in, where its `Enter`s read and its `Exit`s deliver.
    pub parent: usize,
    /// The `Enter` nodes into this frame, constant ones included, in plan order.
    pub enters: Vec<NodeId>,
    /// The loop variables: each loop `Merge` with the `Enter` and the `NextIteration` it joins.
    pub merges: Vec<LoopMerge>,
    /// The `Exit` nodes out of this frame that something needs, in plan order.
    pub exits: Vec<NodeId>,
}

/// A loop variable: `merge = Merge(enter, next)`.
#[derive(Clone, Copy, Debug)]
pub(super) struct LoopMerge {
    pub merge: NodeId,
    pub enter: NodeId,
    pub next: NodeId,
}

/// A step of a frame's plan: one of its nodes, or a whole loop nested in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Unit {
    Node(NodeId),
    Frame(usize),
}

/// The frames of the nodes a plan needs.
#[derive(Debug)]
pub(super) struct Frames {
    pub frames: Vec<Frame>,
    /// The frame each needed node runs in (an `Enter` runs in its loop's parent, an `Exit`
    /// in its loop).
    frame_of: HashMap<NodeId, usize>,
    /// The frame each needed `Enter` delivers into.
    enter_frame: HashMap<NodeId, usize>,
    /// Each needed node's position in the plan order.
    position: HashMap<NodeId, usize>,
}

fn is_enter(node: &Node) -> bool {
    matches!(node.op.as_str(), "Enter" | "RefEnter")
}

fn is_exit(node: &Node) -> bool {
    matches!(node.op.as_str(), "Exit" | "RefExit")
}

fn is_next_iteration(node: &Node) -> bool {
    matches!(node.op.as_str(), "NextIteration" | "RefNextIteration")
}

impl Frames {
    /// Assigns each node of `order` (topological, back edges left out) to a frame and checks
    /// the loops' structure. `resolve` maps an input to the output actually read, and inputs
    /// in `fed` are values of the root frame.
    pub(super) fn analyze(
        graph: &Graph,
        order: &[NodeId],
        fed: &HashSet<Output>,
        resolve: impl Fn(Output) -> Output,
    ) -> Result<Frames, Error> {
        let mut frames = Frames {
            frames: vec![Frame {
                name: String::new(),
                parent: ROOT,
                enters: Vec::new(),
                merges: Vec::new(),
                exits: Vec::new(),
            }],
            frame_of: HashMap::with_capacity(order.len()),
            enter_frame: HashMap::new(),
            position: order.iter().enumerate().map(|(i, &id)| (id, i)).collect(),
        };
        if !order
            .iter()
            .any(|&id| is_enter(graph.node(id)) || is_exit(graph.node(id)))
        {
            frames.frame_of = order.iter().map(|&id| (id, ROOT)).collect();
            frames.check_no_loop_ops(graph, order)?;
            return Ok(frames);
        }
        // Frames of Enters, keyed by (parent frame, frame_name).
        let mut by_name: HashMap<(usize, String), usize> = HashMap::new();
        for &id in order {
            let node = graph.node(id);
            let mut frame: Option<(usize, Output)> = None;
            let inputs = node
                .inputs
                .iter()
                .map(|&i| resolve(i))
                .filter(|i| !fed.contains(i) && !graph.is_back_edge(i.node, id))
                .chain(node.control_inputs.iter().map(|&c| Output::new(c, 0)));
            for input in inputs {
                let Some(f) = frames.value_frame(graph, input.node) else {
                    continue;
                };
                match frame {
                    None => frame = Some((f, input)),
                    Some((g, first)) if g != f => {
                        return Err(node_error(
                            node,
                            format!(
                                "has inputs from different frames: {} is in {} and {} is in {}; values enter a while loop only through Enter and leave it through Exit",
                                graph.tensor_name(first),
                                frames.describe(g),
                                graph.tensor_name(input),
                                frames.describe(f)
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            let here = frame.map_or(ROOT, |(f, _)| f);
            frames.frame_of.insert(id, here);
            if is_enter(node) {
                let name = node
                    .attr_string("frame_name")
                    .map_err(|e| node_error(node, e.to_string()))?;
                if name.is_empty() {
                    return Err(node_error(node, "Enter has an empty frame_name"));
                }
                let next = frames.frames.len();
                let child = *by_name.entry((here, name.clone())).or_insert(next);
                if child == next {
                    frames.frames.push(Frame {
                        name,
                        parent: here,
                        enters: Vec::new(),
                        merges: Vec::new(),
                        exits: Vec::new(),
                    });
                }
                frames.enter_frame.insert(id, child);
                frames.frames[child].enters.push(id);
            } else if is_exit(node) {
                if here == ROOT {
                    return Err(node_error(
                        node,
                        "is an Exit outside any while loop: no Enter leads to it",
                    ));
                }
                frames.frames[here].exits.push(id);
            } else if is_next_iteration(node) && here == ROOT {
                return Err(node_error(
                    node,
                    "is a NextIteration outside any while loop: no Enter leads to it",
                ));
            }
        }
        frames.find_loop_merges(graph, order)?;
        Ok(frames)
    }

    /// Without any `Enter` or `Exit`, a `NextIteration` or a `Merge` reading one is malformed.
    fn check_no_loop_ops(&self, graph: &Graph, order: &[NodeId]) -> Result<(), Error> {
        for &id in order {
            let node = graph.node(id);
            if is_next_iteration(node) {
                return Err(node_error(
                    node,
                    "is a NextIteration outside any while loop: no Enter leads to it",
                ));
            }
        }
        Ok(())
    }

    /// The frame in which `id`'s outputs live: an `Enter`'s loop, an `Exit`'s parent, the
    /// node's own frame otherwise. `None` for nodes the plan does not compute (fed ones).
    fn value_frame(&self, graph: &Graph, id: NodeId) -> Option<usize> {
        if let Some(&f) = self.enter_frame.get(&id) {
            return Some(f);
        }
        let f = *self.frame_of.get(&id)?;
        if graph.get(id).is_some_and(is_exit) {
            return Some(self.frames.get(f).map_or(ROOT, |fr| fr.parent));
        }
        Some(f)
    }

    /// `frame "x"`, or `the root frame`, for messages.
    fn describe(&self, f: usize) -> String {
        match self.frames.get(f) {
            Some(frame) if f != ROOT => format!("frame {:?}", frame.name),
            _ => "the root frame".to_string(),
        }
    }

    /// Finds each frame's loop variables and checks that loop ops are wired as
    /// `while_loop` wires them.
    fn find_loop_merges(&mut self, graph: &Graph, order: &[NodeId]) -> Result<(), Error> {
        let needed: HashSet<NodeId> = order.iter().copied().collect();
        let mut merge_of_enter: HashMap<NodeId, NodeId> = HashMap::new();
        for &id in order {
            let node = graph.node(id);
            let here = self.frame_of.get(&id).copied().unwrap_or(ROOT);
            if !matches!(node.op.as_str(), "Merge" | "RefMerge") {
                continue;
            }
            let back: Vec<usize> = node
                .inputs
                .iter()
                .enumerate()
                .filter(|(_, i)| graph.is_back_edge(i.node, id))
                .map(|(k, _)| k)
                .collect();
            if back.is_empty() {
                continue;
            }
            let (next, enter) =
                match (node.inputs.as_slice(), back.as_slice()) {
                    ([a, b], [1]) => (b.node, a.node),
                    ([a, b], [0]) => (a.node, b.node),
                    _ => return Err(node_error(
                        node,
                        "is a loop Merge but does not join exactly one Enter and one NextIteration",
                    )),
                };
            let enter_node = graph.node(enter);
            if !is_enter(enter_node) || self.enter_frame.get(&enter) != Some(&here) {
                return Err(node_error(
                    node,
                    format!(
                        "is a loop Merge whose other input {:?} is not an Enter into its frame",
                        enter_node.name
                    ),
                ));
            }
            if enter_node.attr_bool_or("is_constant", false)? {
                return Err(node_error(
                    node,
                    format!(
                        "is a loop Merge fed by Enter {:?}, which is constant (is_constant=true)",
                        enter_node.name
                    ),
                ));
            }
            if self.frame_of.get(&next) != Some(&here) {
                return Err(node_error(
                    graph.node(next),
                    format!(
                        "feeds Merge {:?} of {}, but runs in another frame",
                        node.name,
                        self.describe(here)
                    ),
                ));
            }
            if merge_of_enter.insert(enter, id).is_some() {
                return Err(node_error(
                    enter_node,
                    "is a loop variable's Enter that feeds more than one Merge",
                ));
            }
            if here != ROOT {
                self.frames[here].merges.push(LoopMerge {
                    merge: id,
                    enter,
                    next,
                });
            }
        }
        // A non-constant Enter delivers to the first iteration only, so only a loop Merge may
        // read it; a NextIteration delivers to the next iteration, so only a loop Merge may read it.
        for &id in order {
            let node = graph.node(id);
            for (k, input) in node.inputs.iter().enumerate() {
                if !needed.contains(&input.node) {
                    continue;
                }
                let src = graph.node(input.node);
                let loop_merge = merge_of_enter.get(&input.node) == Some(&id);
                if is_next_iteration(src) && !graph.is_back_edge(input.node, id) {
                    return Err(node_error(
                        src,
                        format!(
                            "is a NextIteration read by {:?} (input {k}), which is not a loop Merge",
                            node.name
                        ),
                    ));
                }
                if is_enter(src) && !loop_merge && !src.attr_bool_or("is_constant", false)? {
                    return Err(node_error(
                        src,
                        format!(
                            "is a loop variable's Enter (is_constant=false) read by {:?}, which is not its loop Merge",
                            node.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The units of frame `f` (its own nodes, and the frames nested directly in it, each as
    /// one unit) in an order where every unit comes after the units it reads from.
    pub(super) fn units(&self, graph: &Graph, f: usize) -> Result<Vec<Unit>, Error> {
        let mut order: Vec<(usize, NodeId)> =
            self.position.iter().map(|(&id, &pos)| (pos, id)).collect();
        order.sort_unstable();
        // The unit of frame `f` each node belongs to, if any.
        let mut unit_of: HashMap<NodeId, Unit> = HashMap::new();
        let mut first_at: HashMap<Unit, usize> = HashMap::new();
        for &(pos, id) in &order {
            if let Some(unit) = self.unit_in(f, id) {
                unit_of.insert(id, unit);
                first_at.entry(unit).or_insert(pos);
            }
        }
        // Edges between different units, and how many inputs each unit waits for.
        let mut readers: HashMap<Unit, BTreeSet<Unit>> = HashMap::new();
        let mut waits: HashMap<Unit, usize> = first_at.keys().map(|&u| (u, 0)).collect();
        for (&id, &unit) in &unit_of {
            let node = graph.node(id);
            let inputs = node
                .inputs
                .iter()
                .filter(|i| !graph.is_back_edge(i.node, id))
                .map(|i| i.node)
                .chain(node.control_inputs.iter().copied());
            for src in inputs {
                let Some(&from) = unit_of.get(&src) else {
                    continue;
                };
                if from != unit && readers.entry(from).or_default().insert(unit) {
                    *waits.entry(unit).or_default() += 1;
                }
            }
        }
        // Kahn's algorithm, taking ready units in plan order.
        let mut ready: BTreeSet<(usize, Unit)> = waits
            .iter()
            .filter(|(_, &w)| w == 0)
            .filter_map(|(&u, _)| first_at.get(&u).map(|&p| (p, u)))
            .collect();
        let mut units = Vec::with_capacity(first_at.len());
        while let Some((_, unit)) = ready.pop_first() {
            units.push(unit);
            for &reader in readers.get(&unit).into_iter().flatten() {
                if let Some(w) = waits.get_mut(&reader) {
                    *w -= 1;
                    if *w == 0 {
                        if let Some(&p) = first_at.get(&reader) {
                            ready.insert((p, reader));
                        }
                    }
                }
            }
        }
        if units.len() != first_at.len() {
            // Only a loop can close a cycle here (the graph's order has none).
            let stuck = waits
                .iter()
                .filter(|(_, &w)| w > 0)
                .filter_map(|(&u, _)| match u {
                    Unit::Frame(g) => Some(g),
                    Unit::Node(_) => None,
                })
                .min();
            let enter = stuck
                .and_then(|g| self.frames.get(g))
                .and_then(|fr| fr.enters.first());
            return Err(match (stuck, enter) {
                (Some(g), Some(&e)) => node_error(
                    graph.node(e),
                    format!(
                        "enters while loop {:?}, which needs one of its own results before it starts",
                        self.frames[g].name
                    ),
                ),
                _ => Error::Internal("frame units form a cycle".into()),
            });
        }
        Ok(units)
    }

    /// The unit of frame `f` that node `id` is part of: itself when it runs in `f` (an
    /// `Enter` counts as part of the loop it enters), the outermost loop nested in `f` that
    /// contains it, or `None`.
    fn unit_in(&self, f: usize, id: NodeId) -> Option<Unit> {
        let frame = match self.enter_frame.get(&id) {
            Some(&child) => child,
            None if self.frame_of.get(&id) == Some(&f) => return Some(Unit::Node(id)),
            None => *self.frame_of.get(&id)?,
        };
        // Walk up from the node's frame to the child of `f` on the way.
        let mut child = frame;
        for _ in 0..self.frames.len() {
            if child == ROOT {
                return None;
            }
            let parent = self.frames.get(child)?.parent;
            if parent == f {
                return Some(Unit::Frame(child));
            }
            child = parent;
        }
        None
    }
}
