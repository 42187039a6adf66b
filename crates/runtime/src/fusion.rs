//! Fusing `Conv2D`/`DepthwiseConv2dNative`/`MatMul` -> `BiasAdd` -> inference
//! `FusedBatchNorm(V3)` -> activation chains into one kernel, so the bias and activation are
//! applied to each output block while it is still in cache and the intermediate tensors are
//! never materialized; a batch norm is folded into the filter and bias once, at plan time
//! (see the planner), and a zero `Pad` in front of a `VALID` convolution becomes the
//! convolution's explicit padding.
//!
//! A chain fuses only when each intermediate result has exactly one reader (the next op of
//! the chain), is not fetched, and the absorbed nodes have no control edges in or out. Errors
//! of a fused kernel name the producer; those of a folded batch norm name the batch norm.

use std::collections::{HashMap, HashSet};

use ckpt_graph::{Graph, Node, NodeId, Output};

use crate::ops::math::batch_matmul::{is_permutation, FoldedTransposes};
use crate::ops::math::matmul;
use crate::ops::nn::activation::{self, Activation, GeluErf};
use crate::ops::nn::conv2d::{self, Epilogue};
use crate::ops::nn::depthwise;
use crate::ops::nn::window::Padding;
use crate::ops::Built;
use crate::{Error, Value};

/// Builds a producer's kernel with the work of the nodes it absorbed as its epilogue, and the
/// padding of an absorbed `Pad` in place of its own.
type FusedBuilder = fn(&Node, Epilogue, Option<Padding>) -> Result<Built, Error>;

fn matmul_fused(
    node: &Node,
    epilogue: Epilogue,
    _padding: Option<Padding>,
) -> Result<Built, Error> {
    matmul::build_fused(node, epilogue)
}

/// The ops a `BiasAdd`, batch norm and activation can fold into, with their fused builders
/// and whether a `Pad` can fold into their padding.
const PRODUCERS: &[(&str, FusedBuilder, bool)] = &[
    ("Conv2D", conv2d::build_fused, true),
    ("DepthwiseConv2dNative", depthwise::build_fused, true),
    ("MatMul", matmul_fused, false),
];

/// An inference batch norm folded into the producer's filter and bias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FoldedBatchNorm {
    /// The `FusedBatchNorm(V3)` node: its inputs 1..5 are scale, offset, mean and variance.
    pub node: NodeId,
    pub epsilon: f32,
}

/// A producer absorbing the nodes that follow it (and the `Pad` before it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fused {
    /// The bias input of the absorbed `BiasAdd`.
    pub bias: Option<Output>,
    pub batch_norm: Option<FoldedBatchNorm>,
    activation: Option<Activation>,
    gelu: Option<GeluErf>,
    /// The explicit padding that replaces an absorbed `Pad` and the producer's `VALID`.
    padding: Option<Padding>,
    build: FusedBuilder,
}

impl Fused {
    /// The producer's kernel with the bias and activation applied to its output; it reads the
    /// (folded) bias as its last input when there is one.
    pub(crate) fn build(&self, producer: &Node) -> Result<Built, Error> {
        (self.build)(
            producer,
            Epilogue {
                bias: self.bias.is_some() || self.batch_norm.is_some(),
                activation: self.activation,
                gelu: self.gelu,
            },
            self.padding,
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
    /// Each fused producer, by the last node of its chain (by itself when it absorbed only a
    /// `Pad`).
    pub producer_at: HashMap<NodeId, NodeId>,
    /// Layer normalizations spelled out in ops, by their last node (the one planned, as
    /// [`crate::ops::nn::layer_norm::LayerNorm`]); their other nodes are in `absorbed`.
    pub layer_norms: HashMap<NodeId, LayerNormInputs>,
    /// Batch products reading a `Transpose`'s input in place of its output, or writing their
    /// product through the `Transpose` applied to it, by the product's node. A product with
    /// a folded output transpose is planned where that transpose was (`producer_at`).
    pub folded_transposes: HashMap<NodeId, FoldedTransposes>,
}

/// What a fused layer normalization reads, in the kernel's input order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerNormInputs {
    pub x: Output,
    pub axes: Output,
    pub epsilon: Output,
    pub gamma: Output,
    pub beta: Output,
}

impl LayerNormInputs {
    /// The kernel's inputs: `x`, the axes, `epsilon`, `gamma`, `beta`.
    pub(crate) fn outputs(&self) -> [Output; 5] {
        [self.x, self.axes, self.epsilon, self.gamma, self.beta]
    }
}

impl Fusions {
    /// The node the plan builds at `id`'s place in its order: `id` itself, the fused
    /// producer where the last node of its chain was (so that the bias and batch-norm
    /// parameters are available when it is planned), or `None` for the other nodes of a fused
    /// chain (and a folded `Pad`).
    pub(crate) fn planned_at(&self, id: NodeId) -> Option<NodeId> {
        if let Some(&producer) = self.producer_at.get(&id) {
            return Some(producer);
        }
        if self.absorbed.contains(&id)
            || self.fused.contains_key(&id)
            || self
                .folded_transposes
                .get(&id)
                .is_some_and(|f| f.output.is_some())
        {
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
    // The readers of `id`'s output 0 when that is its only output read and nothing else
    // (a fetch, a feed, a control edge) needs it.
    let only_readers = |id: NodeId| -> Option<&[(NodeId, usize)]> {
        let out = Output::new(id, 0);
        if fetched.contains(&out)
            || fed.contains(&out)
            || control_readers.contains(&id)
            || outputs_read.get(&id).is_some_and(|s| s.len() != 1)
        {
            return None;
        }
        readers.get(&out).map(Vec::as_slice)
    };
    let mut fusions = Fusions::default();
    for &id in order {
        let node = graph.node(id);
        let Some(&(_, build, pads)) = PRODUCERS.iter().find(|(op, ..)| *op == node.op) else {
            continue;
        };
        // The epilogue works on the NHWC product, and the batch norm and pad folds assume
        // NHWC too: an NCHW producer (run by transposing around an NHWC kernel) is left alone.
        if node.attr_string_or("data_format", "NHWC")? != "NHWC" {
            continue;
        }
        // float16/bfloat16 products are rounded before the bias is added, as in TensorFlow:
        // only float32 chains fuse.
        if node.attr_dtype_or("T", ckpt_proto::DataType::DtFloat)? != ckpt_proto::DataType::DtFloat
        {
            continue;
        }
        let mut fused = Fused {
            bias: None,
            batch_norm: None,
            activation: None,
            gelu: None,
            padding: None,
            build,
        };
        let mut absorbed = Vec::new();
        let mut pad = None;
        if pads {
            if let Some(p) = foldable_pad(graph, node, &resolve, &sole_reader, fed)? {
                fused.padding = Some(p.1);
                pad = Some(p.0);
            }
        }
        // The node whose output the chain ends with so far.
        let mut last = id;
        let next = |last: NodeId| {
            sole_reader(last)
                .map(|r| (r, graph.node(r)))
                .filter(|(r, n)| n.control_inputs.is_empty() && !fed.contains(&Output::new(*r, 0)))
        };
        if let Some((b, bias_add)) = next(last) {
            if bias_add.op == "BiasAdd"
                && bias_add.attr_string_or("data_format", "NHWC")? == "NHWC"
                && bias_add.inputs.len() == 2
            {
                fused.bias = Some(resolve(bias_add.inputs[1]));
                absorbed.push(b);
                last = b;
            }
        }
        if node.op != "MatMul" {
            if let Some((b, bn)) = next(last) {
                if let Some(epsilon) = inference_batch_norm(bn, outputs_read.get(&b))? {
                    fused.batch_norm = Some(FoldedBatchNorm { node: b, epsilon });
                    absorbed.push(b);
                    last = b;
                }
            }
        }
        if let Some((a, act)) = next(last) {
            if ACTIVATIONS.contains(&act.op.as_str()) {
                fused.activation = Some(activation::parse(act)?);
                absorbed.push(a);
            }
        }
        if node.op == "MatMul" && fused.activation.is_none() {
            let only_reader = |id: NodeId| match only_readers(id) {
                Some(&[(reader, k)]) if graph.node(reader).control_inputs.is_empty() => {
                    Some((reader, k))
                }
                _ => None,
            };
            if let Some(x_readers) = only_readers(last) {
                if let Some((form, nodes)) = gelu_erf(graph, x_readers, &only_reader, &resolve)? {
                    fused.gelu = Some(form);
                    absorbed.extend(nodes);
                }
            }
        }
        if absorbed.is_empty() && pad.is_none() {
            continue;
        }
        for &n in absorbed.iter() {
            fusions.absorbed.insert(n);
            fusions.alias.insert(Output::new(n, 0), Output::new(id, 0));
        }
        if let Some(p) = pad {
            // The producer reads the padded tensor's input directly.
            fusions.absorbed.insert(p);
            fusions
                .alias
                .insert(Output::new(p, 0), resolve(graph.node(p).inputs[0]));
        }
        fusions
            .producer_at
            .insert(absorbed.last().copied().unwrap_or(id), id);
        fusions.fused.insert(id, fused);
    }
    for &id in order {
        if fusions.absorbed.contains(&id) || fusions.fused.contains_key(&id) {
            continue;
        }
        if let Some((last, inputs, nodes)) = layer_norm(graph, id, &only_readers, &resolve)? {
            if nodes
                .iter()
                .chain([&last])
                .any(|n| fusions.absorbed.contains(n) || fusions.fused.contains_key(n))
            {
                continue;
            }
            fusions.absorbed.extend(nodes);
            fusions.layer_norms.insert(last, inputs);
        }
    }
    for &id in order {
        if fusions.absorbed.contains(&id) || fusions.fused.contains_key(&id) {
            continue;
        }
        let Some((folded, transposes)) =
            transposed_batch_matmul(graph, id, &only_readers, &resolve, fed)?
        else {
            continue;
        };
        if transposes
            .iter()
            .flatten()
            .any(|t| fusions.absorbed.contains(t) || fusions.fused.contains_key(t))
        {
            continue;
        }
        let [x_t, y_t, out_t] = transposes;
        for t in [x_t, y_t].into_iter().flatten() {
            // The product reads the transpose's input.
            fusions.absorbed.insert(t);
            fusions
                .alias
                .insert(Output::new(t, 0), resolve(graph.node(t).inputs[0]));
        }
        if let Some(t) = out_t {
            fusions.absorbed.insert(t);
            fusions.alias.insert(Output::new(t, 0), Output::new(id, 0));
            fusions.producer_at.insert(t, id);
        }
        fusions.folded_transposes.insert(id, folded);
    }
    Ok(fusions)
}

/// A float32 batch product `id` whose inputs come from `Transpose`s read by nothing else, or
/// whose product is read only by a `Transpose` keeping the first and last axes (attention's
/// `[batch, seq, heads, depth]` shuffles): the permutations, and the `Transpose` nodes (for
/// `x`, `y` and the output) folded. `y`'s permutation must keep its last axis among the
/// matrix axes, so that the product takes the same route as on a row-major copy.
#[allow(clippy::type_complexity)]
fn transposed_batch_matmul<'a>(
    graph: &Graph,
    id: NodeId,
    only_readers: &impl Fn(NodeId) -> Option<&'a [(NodeId, usize)]>,
    resolve: &impl Fn(Output) -> Output,
    fed: &HashSet<Output>,
) -> Result<Option<(FoldedTransposes, [Option<NodeId>; 3])>, Error> {
    let node = graph.node(id);
    let float = ckpt_proto::DataType::DtFloat;
    let dtype_ok = match node.op.as_str() {
        "BatchMatMul" | "BatchMatMulV2" => node.attr_dtype_or("T", float)? == float,
        "BatchMatMulV3" => ["Ta", "Tb", "Tout"]
            .iter()
            .map(|a| node.attr_dtype_or(a, float))
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .all(|&t| t == float),
        _ => false,
    };
    if !dtype_ok || node.inputs.len() != 2 || !node.control_inputs.is_empty() {
        return Ok(None);
    }
    // A `Transpose` with a constant permutation, read at `out` by nothing but `reader`'s
    // input `k`.
    let transpose = |out: Output, reader: NodeId, k: usize| -> Option<Vec<usize>> {
        let t = graph.node(out.node);
        if out.index != 0
            || t.op != "Transpose"
            || t.inputs.len() != 2
            || !t.control_inputs.is_empty()
            || fed.contains(&out)
        {
            return None;
        }
        match only_readers(out.node) {
            Some(&[(r, kk)]) if r == reader && kk == k => {}
            _ => return None,
        }
        let perm = const_ints(graph, resolve(t.inputs[1]))?;
        let perm: Vec<usize> = perm
            .iter()
            .map(|&a| usize::try_from(a).ok())
            .collect::<Option<_>>()?;
        (perm.len() >= 2 && is_permutation(&perm, perm.len())).then_some(perm)
    };
    let mut folded = FoldedTransposes::default();
    let mut nodes = [None; 3];
    for (k, &input) in node.inputs.iter().enumerate() {
        let input = resolve(input);
        let Some(perm) = transpose(input, id, k) else {
            continue;
        };
        let r = perm.len();
        if k == 1 && !perm[r - 2..].contains(&(r - 1)) {
            continue;
        }
        folded.inputs[k] = Some(perm);
        nodes[k] = Some(input.node);
    }
    if let Some(&[(t, 0)]) = only_readers(id) {
        let tn = graph.node(t);
        let perm = (tn.op == "Transpose"
            && tn.inputs.len() == 2
            && tn.control_inputs.is_empty()
            && !fed.contains(&Output::new(t, 0)))
        .then(|| const_ints(graph, resolve(tn.inputs[1])))
        .flatten()
        .and_then(|p| {
            p.iter()
                .map(|&a| usize::try_from(a).ok())
                .collect::<Option<Vec<usize>>>()
        });
        if let Some(perm) = perm {
            let r = perm.len();
            if r >= 3 && is_permutation(&perm, r) && perm[0] == 0 && perm[r - 1] == r - 1 {
                folded.output = Some(perm);
                nodes[2] = Some(t);
            }
        }
    }
    if nodes.iter().all(Option::is_none) {
        return Ok(None);
    }
    Ok(Some((folded, nodes)))
}

/// The integer values of a constant output, if it is one.
fn const_ints(graph: &Graph, out: Output) -> Option<Vec<i64>> {
    let node = graph.node(out.node);
    if node.op != "Const" || out.index != 0 {
        return None;
    }
    match crate::tensor_proto::decode(node.attr_tensor("value").ok()?).ok()? {
        Value::I32(t) => Some(t.data().iter().map(|&v| i64::from(v)).collect()),
        Value::I64(t) => Some(t.data().to_vec()),
        _ => None,
    }
}

/// A layer normalization spelled out from `mean`, a float32 `Mean` with `keep_dims` (see
/// [`crate::ops::nn::layer_norm`] for the ops): its last node, its inputs and the other nodes
/// it spans. Every node but the last must be read only inside the pattern; both means reduce
/// over the same axes (one output, or constants of equal values); each product may have its
/// operands either way round.
#[allow(clippy::type_complexity)]
fn layer_norm<'a>(
    graph: &Graph,
    mean: NodeId,
    only_readers: &impl Fn(NodeId) -> Option<&'a [(NodeId, usize)]>,
    resolve: &impl Fn(Output) -> Output,
) -> Result<Option<(NodeId, LayerNormInputs, Vec<NodeId>)>, Error> {
    let node = |id: NodeId| graph.node(id);
    let is = |id: NodeId, op: &str, n_inputs: usize| {
        let n = node(id);
        n.op == op && n.inputs.len() == n_inputs && n.control_inputs.is_empty()
    };
    let is_add = |id: NodeId| is(id, "AddV2", 2) || is(id, "Add", 2);
    let input = |id: NodeId, k: usize| resolve(node(id).inputs[k]);
    let is_float_mean = |id: NodeId| -> Result<bool, Error> {
        Ok(is(id, "Mean", 2)
            && node(id).attr_bool_or("keep_dims", false)?
            && node(id).attr_dtype_or("T", ckpt_proto::DataType::DtFloat)?
                == ckpt_proto::DataType::DtFloat)
    };
    // The only reader of `id`, reading it at input `k` (any when `None`).
    let sole = |id: NodeId| match only_readers(id) {
        Some(&[(r, k)]) => Some((r, k)),
        _ => None,
    };
    if !is_float_mean(mean)? {
        return Ok(None);
    }
    let (x, axes) = (input(mean, 0), input(mean, 1));
    let Some(&[(r1, k1), (r2, k2)]) = only_readers(mean) else {
        return Ok(None);
    };
    // One reader leads to the variance (through StopGradient or not), the other is `mean * m`.
    let variance_side = |r: NodeId, k: usize| -> Option<(Option<NodeId>, NodeId)> {
        if is(r, "StopGradient", 1) {
            let (sqd, 1) = sole(r)? else { return None };
            return Some((Some(r), sqd));
        }
        (k == 1).then_some((None, r))
    };
    let ((stop, sqd), (mean_m, mean_k)) = match (variance_side(r1, k1), variance_side(r2, k2)) {
        (Some(v), _) if is(r2, "Mul", 2) => (v, (r2, k2)),
        (_, Some(v)) if is(r1, "Mul", 2) => (v, (r1, k1)),
        _ => return Ok(None),
    };
    if !is(sqd, "SquaredDifference", 2) || input(sqd, 0) != x {
        return Ok(None);
    }
    let Some((var, 0)) = sole(sqd) else {
        return Ok(None);
    };
    if !is_float_mean(var)? {
        return Ok(None);
    }
    let var_axes = input(var, 1);
    let same_axes = var_axes == axes
        || matches!((const_ints(graph, axes), const_ints(graph, var_axes)), (Some(a), Some(b)) if a == b);
    if !same_axes {
        return Ok(None);
    }
    let Some((add, add_k)) = sole(var) else {
        return Ok(None);
    };
    if !is_add(add) {
        return Ok(None);
    }
    let epsilon = input(add, 1 - add_k);
    let Some((rsqrt, 0)) = sole(add) else {
        return Ok(None);
    };
    if !is(rsqrt, "Rsqrt", 1) {
        return Ok(None);
    }
    let Some((m, m_k)) = sole(rsqrt) else {
        return Ok(None);
    };
    if !is(m, "Mul", 2) {
        return Ok(None);
    }
    let gamma = input(m, 1 - m_k);
    // `m` is read by `x * m` and by `mean * m` (the latter already found).
    let Some(&[(a, ak), (b, bk)]) = only_readers(m) else {
        return Ok(None);
    };
    let (x_m, x_k) = match (a == mean_m, b == mean_m) {
        (false, true) => (a, ak),
        (true, false) => (b, bk),
        _ => return Ok(None),
    };
    let m_of_mean_k = if a == mean_m { ak } else { bk };
    if !is(x_m, "Mul", 2) || input(x_m, 1 - x_k) != x || m_of_mean_k != 1 - mean_k {
        return Ok(None);
    }
    let Some((sub, 1)) = sole(mean_m) else {
        return Ok(None);
    };
    if !is(sub, "Sub", 2) {
        return Ok(None);
    }
    let beta = input(sub, 0);
    let (Some((last, k_xm)), Some((last2, k_sub))) = (sole(x_m), sole(sub)) else {
        return Ok(None);
    };
    if last != last2 || k_xm == k_sub || !is_add(last) {
        return Ok(None);
    }
    let mut nodes = vec![mean];
    nodes.extend(stop);
    nodes.extend([sqd, var, add, rsqrt, m, x_m, mean_m, sub]);
    Ok(Some((
        last,
        LayerNormInputs {
            x,
            axes,
            epsilon,
            gamma,
            beta,
        },
        nodes,
    )))
}

/// Whether `out` is a float32 scalar constant equal to `value` (or, when `sqrt` is set, a
/// `Sqrt` of a constant whose float32 square root is `value`).
fn is_constant(
    graph: &Graph,
    out: Output,
    value: f32,
    resolve: &impl Fn(Output) -> Output,
) -> Result<bool, Error> {
    let node = graph.node(out.node);
    if out.index != 0 || !node.control_inputs.is_empty() {
        return Ok(false);
    }
    let scalar = |node: &Node| -> Result<Option<f32>, Error> {
        if node.op != "Const" {
            return Ok(None);
        }
        Ok(
            match crate::tensor_proto::decode(node.attr_tensor("value")?) {
                Ok(Value::F32(t)) if t.len() == 1 => t.data().first().copied(),
                _ => None,
            },
        )
    };
    if node.op == "Sqrt" && node.inputs.len() == 1 {
        let arg = graph.node(resolve(node.inputs[0]).node);
        return Ok(scalar(arg)?.is_some_and(|v| v.sqrt().to_bits() == value.to_bits()));
    }
    Ok(scalar(node)?.is_some_and(|v| v.to_bits() == value.to_bits()))
}

/// A GELU spelled out after a producer whose output 0, `x`, is read by `x_readers` only:
/// `RealDiv(x, √2) -> Erf -> AddV2(1, ·)`, then either `Mul(Mul(x, 0.5), ·)` (Keras) or
/// `Mul(x, Mul(0.5, ·))` (google-research/bert), each product in either operand order. Returns
/// the form and the nodes it spans, ending with the one whose output is the GELU.
fn gelu_erf(
    graph: &Graph,
    x_readers: &[(NodeId, usize)],
    only_reader: &impl Fn(NodeId) -> Option<(NodeId, usize)>,
    resolve: &impl Fn(Output) -> Output,
) -> Result<Option<(GeluErf, Vec<NodeId>)>, Error> {
    let &[(r1, k1), (r2, k2)] = x_readers else {
        return Ok(None);
    };
    // The other input of a binary `op` node read at input `k`.
    let other = |id: NodeId, k: usize, op: &str| -> Option<Output> {
        let n = graph.node(id);
        (n.op == op && n.inputs.len() == 2 && k < 2 && n.control_inputs.is_empty())
            .then(|| resolve(n.inputs[1 - k]))
    };
    let sqrt2 = 2.0f32.sqrt();
    // Which reader divides by √2; the other multiplies.
    let (div, (mul, mul_k)) = match (other(r1, k1, "RealDiv"), other(r2, k2, "RealDiv")) {
        (Some(d), _) if k1 == 0 && is_constant(graph, d, sqrt2, resolve)? => (r1, (r2, k2)),
        (_, Some(d)) if k2 == 0 && is_constant(graph, d, sqrt2, resolve)? => (r2, (r1, k1)),
        _ => return Ok(None),
    };
    let Some((erf, 0)) = only_reader(div) else {
        return Ok(None);
    };
    if graph.node(erf).op != "Erf" {
        return Ok(None);
    }
    let Some((add, add_k)) = only_reader(erf) else {
        return Ok(None);
    };
    match other(add, add_k, "AddV2").or_else(|| other(add, add_k, "Add")) {
        Some(one) if is_constant(graph, one, 1.0, resolve)? => {}
        _ => return Ok(None),
    }
    let Some((after_add, after_add_k)) = only_reader(add) else {
        return Ok(None);
    };
    let Some(mul_other) = other(mul, mul_k, "Mul") else {
        return Ok(None);
    };
    if is_constant(graph, mul_other, 0.5, resolve)? {
        // Keras: `mul = x * 0.5`, then `mul * (1 + erf)`.
        let Some((out, _)) = only_reader(mul) else {
            return Ok(None);
        };
        let Some(half) = other(out, after_add_k, "Mul") else {
            return Ok(None);
        };
        if out != after_add || half != Output::new(mul, 0) {
            return Ok(None);
        }
        return Ok(Some((
            GeluErf::HalfXTimesCdf,
            vec![mul, div, erf, add, out],
        )));
    }
    // BERT: `half = 0.5 * (1 + erf)`, then `x * half`, where `mul` is that last product.
    let half = after_add;
    match other(half, after_add_k, "Mul") {
        Some(c) if is_constant(graph, c, 0.5, resolve)? => {}
        _ => return Ok(None),
    }
    if mul_other != Output::new(half, 0) || only_reader(half) != Some((mul, 1 - mul_k)) {
        return Ok(None);
    }
    Ok(Some((
        GeluErf::XTimesHalfCdf,
        vec![div, erf, add, half, mul],
    )))
}

/// The `epsilon` of `node` if it is a `FusedBatchNorm(V3)` in inference mode (NHWC, five
/// inputs) of which only output 0 is read (`outputs_read`).
fn inference_batch_norm(
    node: &Node,
    outputs_read: Option<&HashSet<usize>>,
) -> Result<Option<f32>, Error> {
    let is_bn = matches!(node.op.as_str(), "FusedBatchNorm" | "FusedBatchNormV3");
    if !is_bn
        || node.inputs.len() != 5
        || node.attr_bool_or("is_training", true)?
        || node.attr_string_or("data_format", "NHWC")? != "NHWC"
        || outputs_read.is_some_and(|s| s.iter().any(|&i| i != 0))
    {
        return Ok(None);
    }
    Ok(Some(node.attr_f32_or("epsilon", 1e-4)?))
}

/// A `Pad` with constant zero padding of the height and width only, read only by `conv` (a
/// `VALID` convolution) as its input: the `Pad` node and the explicit padding replacing it.
fn foldable_pad(
    graph: &Graph,
    conv: &Node,
    resolve: &impl Fn(Output) -> Output,
    sole_reader: &impl Fn(NodeId) -> Option<NodeId>,
    fed: &HashSet<Output>,
) -> Result<Option<(NodeId, Padding)>, Error> {
    if conv.attr_string_or("padding", "")? != "VALID"
        || conv.attr_string_or("data_format", "NHWC")? != "NHWC"
        || conv.inputs.is_empty()
    {
        return Ok(None);
    }
    let input = resolve(conv.inputs[0]);
    let pad = graph.node(input.node);
    if pad.op != "Pad"
        || input.index != 0
        || pad.inputs.len() != 2
        || !pad.control_inputs.is_empty()
        || fed.contains(&input)
        || sole_reader(input.node).is_none()
    {
        return Ok(None);
    }
    let paddings = graph.node(resolve(pad.inputs[1]).node);
    if paddings.op != "Const" || fed.contains(&resolve(pad.inputs[1])) {
        return Ok(None);
    }
    let Ok(value) = crate::tensor_proto::decode(paddings.attr_tensor("value")?) else {
        return Ok(None);
    };
    let amounts: Vec<i64> = match &value {
        Value::I32(t) if t.shape() == [4, 2] => t.data().iter().map(|&v| i64::from(v)).collect(),
        Value::I64(t) if t.shape() == [4, 2] => t.data().to_vec(),
        _ => return Ok(None),
    };
    let spatial_only = amounts[0] == 0 && amounts[1] == 0 && amounts[6] == 0 && amounts[7] == 0;
    let within = |v: i64| usize::try_from(v).ok().filter(|&v| v <= 1 << 24);
    match (
        spatial_only,
        within(amounts[2]),
        within(amounts[3]),
        within(amounts[4]),
        within(amounts[5]),
    ) {
        (true, Some(t), Some(b), Some(l), Some(r)) => {
            Ok(Some((input.node, Padding::Explicit([(t, b), (l, r)]))))
        }
        _ => Ok(None),
    }
}
