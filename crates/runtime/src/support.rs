//! Which ops a computation needs that the executor lacks, all of them at once.
//!
//! Plan building checks the nodes the fetches need (after pruning, so save, restore,
//! initializer and training ops never count unless a fetch depends on them), and the bodies of
//! the library functions those nodes call, before building any kernel: a graph with several
//! missing ops is reported in one error, each op type once with its node count and an example.

use std::collections::{HashMap, HashSet};

use ckpt_graph::{Graph, Model, NodeId, Output, ARG_OP};
use ckpt_proto::attr_value::Value as AttrKind;

use crate::ops;
use crate::Error;

/// An op type the executor has no kernel for, as [`Error::UnsupportedOps`] and
/// [`unsupported_ops`] report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingOp {
    /// The op type, e.g. `Erf`.
    pub op: String,
    /// How many needed nodes have this op (in the graph and in the functions it calls).
    pub nodes: usize,
    /// The first such node, e.g. `bert/encoder/layer_0/intermediate/dense/Erf`; a node inside
    /// a library function is named `node (in function f)`.
    pub example: String,
}

impl std::fmt::Display for MissingOp {
    /// `Erf (2 nodes, e.g. gelu/Erf)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.nodes == 1 { "" } else { "s" };
        write!(
            f,
            "{} ({} node{plural}, e.g. {})",
            self.op, self.nodes, self.example
        )
    }
}

/// Missing ops in order of first appearance.
#[derive(Default)]
pub(crate) struct MissingOps {
    ops: Vec<MissingOp>,
    index: HashMap<String, usize>,
    /// Functions already visited, with the outputs used (a function called twice the same
    /// way is counted once).
    functions: HashSet<(String, Option<Vec<bool>>)>,
}

/// Ops whose function attributes are called with the node's own inputs and outputs, so only
/// the function outputs the node's readers use are computed.
const CALL_OPS: &[&str] = &[
    "If",
    "StatelessIf",
    "Case",
    "StatelessCase",
    "PartitionedCall",
    "StatefulPartitionedCall",
];

impl MissingOps {
    /// Records the missing ops among `nodes` of `graph` (inside function `function`, if any),
    /// and in the library functions they call; `roots` are the outputs read from outside
    /// (the fetches), which with the nodes' own inputs say which outputs are used.
    pub(crate) fn visit(
        &mut self,
        model: &Model,
        graph: &Graph,
        nodes: &[NodeId],
        roots: &[Output],
        function: Option<&str>,
    ) {
        let mut used: HashMap<NodeId, Vec<bool>> = HashMap::new();
        let reads = nodes
            .iter()
            .flat_map(|&id| graph.node(id).inputs.iter().copied())
            .chain(roots.iter().copied());
        for o in reads {
            let u = used.entry(o.node).or_default();
            if u.len() <= o.index {
                u.resize(o.index + 1, false);
            }
            u[o.index] = true;
        }
        for &id in nodes {
            let node = graph.node(id);
            if node.op == ARG_OP {
                continue;
            }
            let used = used.get(&id).map_or(&[][..], Vec::as_slice);
            if ops::builder(&node.op).is_some() {
                // If, While, PartitionedCall, ...: the functions named in attributes.
                let called = CALL_OPS.contains(&node.op.as_str()).then_some(used);
                for value in node.attrs.values() {
                    match &value.value {
                        Some(AttrKind::Func(f)) => self.visit_function(model, &f.name, called),
                        Some(AttrKind::List(list)) => {
                            for f in &list.func {
                                self.visit_function(model, &f.name, called);
                            }
                        }
                        _ => {}
                    }
                }
            } else if model.functions.contains_key(&node.op) {
                self.visit_function(model, &node.op, Some(used));
            } else {
                let example = match function {
                    Some(f) => format!("{} (in function {f})", node.name),
                    None => node.name.clone(),
                };
                self.record(&node.op, example);
            }
        }
    }

    /// Visits function `name`: the outputs flagged in `used`, or (`None`) everything it
    /// returns and runs.
    fn visit_function(&mut self, model: &Model, name: &str, used: Option<&[bool]>) {
        let key = (name.to_string(), used.map(<[bool]>::to_vec));
        if !self.functions.insert(key) {
            return;
        }
        // A function the library lacks (or cannot import) fails later, with its own error.
        let Ok(f) = model.function(name) else {
            return;
        };
        let roots: Vec<Output> = match used {
            Some(used) => f
                .outputs
                .iter()
                .zip(used)
                .filter(|(_, &u)| u)
                .map(|(&o, _)| o)
                .collect(),
            None => f
                .outputs
                .iter()
                .copied()
                .chain(f.control_outputs.iter().map(|&id| Output::new(id, 0)))
                .collect(),
        };
        if let Ok(nodes) = f.body.prune(&roots, &[]) {
            self.visit(model, &f.body, &nodes, &roots, Some(name));
        }
    }

    fn record(&mut self, op: &str, example: String) {
        match self.index.get(op) {
            Some(&i) => self.ops[i].nodes += 1,
            None => {
                self.index.insert(op.to_string(), self.ops.len());
                self.ops.push(MissingOp {
                    op: op.to_string(),
                    nodes: 1,
                    example,
                });
            }
        }
    }

    /// `Err(UnsupportedOps)` when anything is missing.
    pub(crate) fn into_result(self) -> Result<(), Error> {
        if self.ops.is_empty() {
            Ok(())
        } else {
            Err(Error::UnsupportedOps { ops: self.ops })
        }
    }
}

/// The ops the executor lacks among those computing `fetches` (names `node` or `node:k`) with
/// nothing fed, in order of first appearance: what [`Session::new`](crate::Session::new)
/// would report, without loading a checkpoint. Empty when everything is supported.
///
/// ```
/// use ckpt_graph::ckpt_proto::{GraphDef, NodeDef};
/// use ckpt_graph::Model;
///
/// let node = |name: &str, op: &str, inputs: &[&str]| NodeDef {
///     name: name.into(),
///     op: op.into(),
///     input: inputs.iter().map(|s| s.to_string()).collect(),
///     ..Default::default()
/// };
/// let def = GraphDef {
///     node: vec![
///         node("x", "Placeholder", &[]),
///         node("a", "Lgamma", &["x"]),
///         node("b", "Lgamma", &["a"]),
///         node("y", "Relu", &["b"]),
///     ],
///     ..Default::default()
/// };
/// let model = Model::from_graph_def(&def)?;
/// let missing = ckpt_runtime::unsupported_ops(&model, &["y"])?;
/// assert_eq!(missing.len(), 1);
/// assert_eq!(missing[0].to_string(), "Lgamma (2 nodes, e.g. a)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn unsupported_ops(model: &Model, fetches: &[&str]) -> Result<Vec<MissingOp>, Error> {
    let graph = &model.graph;
    let outputs: Vec<Output> = fetches
        .iter()
        .map(|f| graph.parse_output(f))
        .collect::<Result<_, _>>()?;
    let nodes = graph.prune(&outputs, &[])?;
    let mut missing = MissingOps::default();
    missing.visit(model, graph, &nodes, &outputs, None);
    Ok(missing.ops)
}
