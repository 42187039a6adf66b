//! Fusing `Conv2D`/`MatMul` -> `BiasAdd` -> activation chains into one kernel, so the bias
//! and activation are applied to each output block while it is still in cache and the
//! intermediate tensors are never materialized.
//!
//! A chain fuses only when each intermediate result has exactly one reader (the next op of
//! the chain), is not fetched, and the absorbed nodes have no control edges in or out.

use std::collections::{HashMap, HashSet};

use ckpt_graph::{Graph, Node, NodeId, Output};

use crate::ops::math::matmul;
use crate::ops::nn::activation::{self, Activation};
use crate::ops::nn::conv2d::{self, Epilogue};
use crate::ops::Built;
use crate::Error;

/// Builds a producer's kernel with the work of the nodes it absorbed as its epilogue.
type FusedBuilder = fn(&Node, Epilogue) -> Result<Built, Error>;

/// The ops a `BiasAdd` (and activation) can fold into, with their fused builders.
const PRODUCERS: &[(&str, FusedBuilder)] = &[
    ("Conv2D", conv2d::build_fused),
    ("MatMul", matmul::build_fused),
];

/// A producer absorbing the `BiasAdd` (and activation) that follow it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fused {
    /// The bias input of the absorbed `BiasAdd`, read as the fused kernel's last input.
    pub bias: Output,
    activation: Option<Activation>,
    build: FusedBuilder,
}

impl Fused {
    /// The producer's kernel with the bias and activation applied to its output.
    pub(crate) fn build(&self, producer: &Node) -> Result<Built, Error> {
        (self.build)(
            producer,
            Epilogue {
                bias: true,
                activation: self.activation,
            },
        )
    }
}

#[derive(Debug, Default)]
pub(crate) struct Fusions {
    pub fused: HashMap<NodeId, Fused>,
    /// Nodes folded into their producer: not planned.
    pub absorbed: HashSet<NodeId>,
    /// Outputs of absorbed nodes, mapped to their producer's output.
    pub alias: HashMap<Output, Output>,
    /// The producer that absorbed each absorbed `BiasAdd`.
    pub producer_of_bias_add: HashMap<NodeId, NodeId>,
}

impl Fusions {
    /// The node the plan builds at `id`'s place in its order: `id` itself, the fused
    /// producer where its `BiasAdd` was (so that the bias is available when it is planned),
    /// or `None` for the other nodes of a fused chain.
    pub(crate) fn planned_at(&self, id: NodeId) -> Option<NodeId> {
        if let Some(&producer) = self.producer_of_bias_add.get(&id) {
            return Some(producer);
        }
        if self.absorbed.contains(&id) || self.fused.contains_key(&id) {
            return None;
        }
        Some(id)
    }
}

const ACTIVATIONS: &[&str] = &[
    "Relu",
    "Relu6",
    "Elu",
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "Softplus",
];

/// Finds fusable chains among `order`'s nodes, whose inputs `resolve` maps through earlier
/// rewrites; `fetched` and `fed` are resolved outputs.
pub(crate) fn find(
    graph: &Graph,
    order: &[NodeId],
    fetched: &HashSet<Output>,
    fed: &HashSet<Output>,
    resolve: impl Fn(Output) -> Output,
) -> Result<Fusions, Error> {
    let mut readers: HashMap<Output, Vec<(NodeId, usize)>> = HashMap::new();
    let mut control_readers: HashSet<NodeId> = HashSet::new();
    let mut outputs_read: HashMap<NodeId, HashSet<usize>> = HashMap::new();
    for &id in order {
        let node = graph.node(id);
        for (k, &i) in node.inputs.iter().enumerate() {
            let i = resolve(i);
            if !fed.contains(&i) {
                readers.entry(i).or_default().push((id, k));
                outputs_read.entry(i.node).or_default().insert(i.index);
            }
        }
        control_readers.extend(node.control_inputs.iter().copied());
    }
    // The one reader of `id`'s output 0, reading it as input 0, if that is its only use.
    let sole_reader = |id: NodeId| -> Option<NodeId> {
        let out = Output::new(id, 0);
        if fetched.contains(&out) || control_readers.contains(&id) {
            return None;
        }
        if outputs_read.get(&id).is_some_and(|s| s.len() != 1) {
            return None;
        }
        match readers.get(&out).map(Vec::as_slice) {
            Some(&[(reader, 0)]) => Some(reader),
            _ => None,
        }
    };
    let mut fusions = Fusions::default();
    for &id in order {
        let node = graph.node(id);
        let Some(&(_, build)) = PRODUCERS.iter().find(|(op, _)| *op == node.op) else {
            continue;
        };
        let Some(b) = sole_reader(id) else { continue };
        let bias_add = graph.node(b);
        let nhwc = bias_add.attr_string_or("data_format", "NHWC")? == "NHWC";
        if bias_add.op != "BiasAdd"
            || !nhwc
            || !bias_add.control_inputs.is_empty()
            || bias_add.inputs.len() != 2
        {
            continue;
        }
        let bias = resolve(bias_add.inputs[1]);
        if fed.contains(&Output::new(b, 0)) {
            continue;
        }
        let mut fused = Fused {
            bias,
            activation: None,
            build,
        };
        let mut absorbed = vec![b];
        if let Some(a) = sole_reader(b) {
            let act = graph.node(a);
            if ACTIVATIONS.contains(&act.op.as_str())
                && act.control_inputs.is_empty()
                && !fed.contains(&Output::new(a, 0))
            {
                fused.activation = Some(activation::parse(act)?);
                absorbed.push(a);
            }
        }
        for &n in absorbed.iter() {
            fusions.absorbed.insert(n);
            fusions.alias.insert(Output::new(n, 0), Output::new(id, 0));
        }
        fusions.fused.insert(id, fused);
        fusions.producer_of_bias_add.insert(b, id);
    }
    Ok(fusions)
}
