//! Which tensors of a checkpoint are optimizer state (`ckpt drop --optimizer`), identified as
//! exactly as the checkpoint allows:
//!
//! 1. a TF2 checkpoint's object graph says which objects are optimizers and which variables are
//!    their slots ([`crate::object_graph`]);
//! 2. a TF1 checkpoint's `.meta` graph says which variables its optimizer ops update: the slot
//!    inputs of `Apply*`/`ResourceApply*`/`SparseApply*` ops, the variables that feed their
//!    hyperparameter inputs (learning rates, beta powers, iterations), and those that the
//!    ops of the optimizer's own name scope write (sparse updates, beta powers, iterations);
//! 3. otherwise the names the optimizers of TensorFlow, Keras, BERT, Mesh TensorFlow and
//!    TensorFlow Addons give their state, each counted only when the variable it belongs to is
//!    in the checkpoint too.
//!
//! The global step is never optimizer state: it counts training steps for everything else.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use ckpt_bundle::{Checkpoint, DType, TensorInfo};
use ckpt_graph::{Model, NodeId, VARIABLE_OPS};
use ckpt_proto::{Message, MetaGraphDef, TrackableObjectGraph, VariableDef};

use crate::object_graph::{self, OBJECT_GRAPH_KEY};

/// What `--optimizer` found.
#[derive(Debug, Default)]
pub struct Found {
    /// Tensor name -> why it is optimizer state.
    pub drop: BTreeMap<String, String>,
    /// How it was found, for the user.
    pub method: String,
    /// When names were used: why (for the stderr note).
    pub by_names: Option<String>,
    /// The object graph to write instead of the input's (optimizer objects removed).
    pub object_graph: Option<TrackableObjectGraph>,
    /// Names that look like optimizer state but were not identified as such.
    pub lookalikes: Vec<String>,
}

/// Identifies the optimizer state of `reader`.
///
/// Errors: an object graph that does not decode; a `.meta` that does not parse.
pub fn find(reader: &Checkpoint) -> Result<Found> {
    let names: Vec<&TensorInfo> = reader.tensors().iter().collect();
    if reader.contains(OBJECT_GRAPH_KEY) {
        return from_object_graph(reader);
    }
    let meta = reader.meta_path();
    if meta.is_file() {
        let bytes =
            std::fs::read(&meta).with_context(|| format!("cannot read {}", meta.display()))?;
        let meta_def = MetaGraphDef::decode(bytes.as_slice())
            .with_context(|| format!("{} is not a MetaGraphDef", meta.display()))?;
        let model = Model::from_meta_graph_def(&meta_def)
            .with_context(|| format!("cannot read the graph in {}", meta.display()))?;
        let graph = GraphFacts::new(&meta_def, &model);
        let drop = graph.optimizer_state();
        if !drop.is_empty() {
            let lookalikes = by_name(&names, &graph.trainable_keys)
                .into_keys()
                .filter(|n| !drop.contains_key(n))
                .collect();
            return Ok(Found {
                drop,
                method: format!("the optimizer ops of the graph in {}", meta.display()),
                lookalikes,
                ..Found::default()
            });
        }
        return Ok(Found {
            drop: by_name(&names, &graph.trainable_keys),
            method: "names".to_string(),
            by_names: Some(format!(
                "the graph in {} has no optimizer update ops (Apply*, update_*), so optimizer \
                 state was recognized by the names TensorFlow's, Keras', BERT's, Mesh \
                 TensorFlow's and TensorFlow Addons' optimizers give it (variables trainable \
                 in the graph excluded)",
                meta.display()
            )),
            ..Found::default()
        });
    }
    Ok(Found {
        drop: by_name(&names, &BTreeSet::new()),
        method: "names".to_string(),
        by_names: Some(format!(
            "no object graph and no {}: optimizer state was recognized by the names \
             TensorFlow's, Keras', BERT's, Mesh TensorFlow's and TensorFlow Addons' optimizers \
             give it",
            meta.display()
        )),
        ..Found::default()
    })
}

fn from_object_graph(reader: &Checkpoint) -> Result<Found> {
    let tensor = reader.read(OBJECT_GRAPH_KEY)?;
    let bytes = match tensor.strings() {
        Some([one]) if tensor.dtype() == DType::String => one.to_vec(),
        _ => anyhow::bail!("{OBJECT_GRAPH_KEY} is not a string scalar"),
    };
    let graph = object_graph::decode(&bytes)?;
    let paths = object_graph::paths(&graph);
    let optimizers = object_graph::optimizers(&graph);
    let removed: BTreeSet<usize> = optimizers.keys().copied().collect();
    let gone = object_graph::orphaned_by(&graph, &removed);
    let name = |i: usize| {
        paths
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_else(|| format!("node {i}"))
    };
    // Why each dropped node goes.
    let mut why: BTreeMap<usize, String> = BTreeMap::new();
    for (&opt, reason) in &optimizers {
        for s in &graph.nodes[opt].slot_variables {
            why.insert(
                s.slot_variable_node_id as usize,
                format!(
                    "slot variable {:?} of {} (slot_variables of optimizer {}, which {reason})",
                    s.slot_name,
                    name(s.original_variable_node_id as usize),
                    name(opt)
                ),
            );
        }
    }
    for &i in &gone {
        why.entry(i).or_insert_with(|| {
            // The optimizer it belongs to: the closest one on its path.
            let p = name(i);
            let owner = optimizers
                .iter()
                .filter(|(&o, _)| {
                    let op = name(o);
                    p == op || p.starts_with(&format!("{op}/"))
                })
                .max_by_key(|(&o, _)| name(o).len());
            match owner {
                Some((&o, reason)) if o == i => format!("optimizer object {p} ({reason})"),
                Some((&o, reason)) => format!("state of optimizer {} ({reason})", name(o)),
                None => "reachable only through an optimizer".to_string(),
            }
        });
    }
    let mut drop = BTreeMap::new();
    for &i in &gone {
        for a in &graph.nodes[i].attributes {
            if reader.contains(&a.checkpoint_key) {
                let reason = why.get(&i).cloned().unwrap_or_default();
                drop.insert(
                    a.checkpoint_key.clone(),
                    format!("object {}: {reason}", name(i)),
                );
            }
        }
    }
    let referenced: BTreeSet<&str> = graph
        .nodes
        .iter()
        .flat_map(|n| n.attributes.iter().map(|a| a.checkpoint_key.as_str()))
        .collect();
    let names: Vec<&TensorInfo> = reader.tensors().iter().collect();
    let lookalikes = by_name(&names, &BTreeSet::new())
        .into_keys()
        .filter(|n| !drop.contains_key(n) && !referenced.contains(n.as_str()))
        .collect();
    let rewritten = (!gone.is_empty()).then(|| object_graph::without(&graph, &gone));
    Ok(Found {
        drop,
        method: "the checkpoint's object graph".to_string(),
        by_names: None,
        object_graph: rewritten,
        lookalikes,
    })
}

/// What a `.meta` tells about its variables and optimizer ops.
struct GraphFacts<'m> {
    model: &'m Model,
    trainable_keys: BTreeSet<String>,
    global_step: BTreeSet<String>,
}

/// Ops that write their first input, a variable.
const WRITE_OPS: &[&str] = &[
    "Assign",
    "AssignAdd",
    "AssignSub",
    "AssignVariableOp",
    "AssignAddVariableOp",
    "AssignSubVariableOp",
    "ScatterAdd",
    "ScatterSub",
    "ScatterUpdate",
    "ScatterMul",
    "ScatterDiv",
    "ScatterMax",
    "ScatterMin",
    "ResourceScatterAdd",
    "ResourceScatterSub",
    "ResourceScatterUpdate",
    "ResourceScatterMul",
    "ResourceScatterDiv",
    "ResourceScatterMax",
    "ResourceScatterMin",
    "ScatterNdAdd",
    "ScatterNdUpdate",
    "ResourceScatterNdAdd",
    "ResourceScatterNdUpdate",
];

/// Ops through which a variable's value passes unchanged.
const PASS_OPS: &[&str] = &[
    "Identity",
    "ReadVariableOp",
    "Cast",
    "Snapshot",
    "Enter",
    "RefIdentity",
];

/// Whether `op` is one of TensorFlow's optimizer update ops (`ApplyAdam`, `ResourceApplyAdam`,
/// `SparseApplyAdagrad`, `ResourceSparseApplyFtrlV2`, ...).
pub fn is_apply_op(op: &str) -> bool {
    let rest = op.strip_prefix("Resource").unwrap_or(op);
    let rest = rest.strip_prefix("Sparse").unwrap_or(rest);
    rest.strip_prefix("Apply")
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
}

impl<'m> GraphFacts<'m> {
    fn new(meta: &MetaGraphDef, model: &'m Model) -> Self {
        let collection = |name: &str| -> Vec<String> {
            let Some(c) = meta.collection_def.get(name) else {
                return Vec::new();
            };
            match &c.kind {
                Some(ckpt_proto::collection_def::Kind::BytesList(b)) => b
                    .value
                    .iter()
                    .filter_map(|v| VariableDef::decode(v.as_slice()).ok())
                    .map(|v| v.variable_name)
                    .collect(),
                Some(ckpt_proto::collection_def::Kind::NodeList(n)) => n.value.clone(),
                _ => Vec::new(),
            }
        };
        let key_of_tensor = |tensor: &str| -> Option<String> {
            let node = tensor.split(':').next().unwrap_or(tensor);
            let id = model.graph.find(node)?;
            model.variable_key(id).map(str::to_string)
        };
        let trainable_keys = collection("trainable_variables")
            .iter()
            .filter_map(|t| key_of_tensor(t))
            .collect();
        let mut global_step: BTreeSet<String> = collection("global_step")
            .iter()
            .filter_map(|t| key_of_tensor(t))
            .collect();
        global_step.insert("global_step".to_string());
        GraphFacts {
            model,
            trainable_keys,
            global_step,
        }
    }

    /// The variable node `id` reads, following ops that pass a value through unchanged.
    fn variable_behind(&self, mut id: NodeId) -> Option<NodeId> {
        for _ in 0..64 {
            let node = self.model.graph.get(id)?;
            if VARIABLE_OPS.contains(&node.op.as_str()) {
                return Some(id);
            }
            if !PASS_OPS.contains(&node.op.as_str()) {
                return None;
            }
            id = node.inputs.first()?.node;
        }
        None
    }

    fn key(&self, id: NodeId) -> Option<&str> {
        self.model.variable_key(id)
    }

    /// The variables whose values flow into `start` (through any ops, not into gradient
    /// computations, which every weight feeds).
    fn variables_feeding(&self, start: NodeId) -> BTreeSet<NodeId> {
        let graph = &self.model.graph;
        let mut found = BTreeSet::new();
        let mut seen = BTreeSet::from([start]);
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            let Some(node) = graph.get(id) else { continue };
            if VARIABLE_OPS.contains(&node.op.as_str()) {
                found.insert(id);
                continue;
            }
            if node
                .name
                .split('/')
                .any(|part| part.starts_with("gradients"))
                || seen.len() > 100_000
            {
                continue;
            }
            for input in &node.inputs {
                if seen.insert(input.node) {
                    stack.push(input.node);
                }
            }
        }
        found
    }

    /// Every optimizer variable of the graph, by checkpoint key, with the reason.
    fn optimizer_state(&self) -> BTreeMap<String, String> {
        let graph = &self.model.graph;
        let mut trained: BTreeSet<String> = self.trainable_keys.clone();
        let mut scopes: BTreeSet<String> = BTreeSet::new();
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        let applies: Vec<NodeId> = (0..graph.len())
            .filter(|&id| is_apply_op(&graph.node(id).op))
            .collect();
        for &a in &applies {
            let node = graph.node(a);
            if let Some(var) = node
                .inputs
                .first()
                .and_then(|o| self.variable_behind(o.node))
            {
                if let Some(k) = self.key(var) {
                    trained.insert(k.to_string());
                }
            }
            if let Some((scope, _)) = node.name.split_once("/update_") {
                scopes.insert(scope.to_string());
            }
        }
        // Sparse updates of resource variables write slots with plain assignments, in
        // `<optimizer>/update_<variable>/`: a scope whose variable is written in it counts.
        for node in &graph.nodes {
            if let Some((scope, rest)) = node.name.split_once("/update_") {
                if WRITE_OPS.contains(&node.op.as_str()) {
                    let target = node
                        .inputs
                        .first()
                        .and_then(|o| self.variable_behind(o.node));
                    if let Some(k) = target.and_then(|t| self.key(t)) {
                        if rest.starts_with(&format!("{k}/")) {
                            scopes.insert(scope.to_string());
                            trained.insert(k.to_string());
                        }
                    }
                }
            }
        }
        let keep = |k: &str| trained.contains(k) || self.global_step.contains(k);
        for &a in &applies {
            let node = graph.node(a);
            let op_def = self.model.op_defs.get(&node.op);
            for (i, input) in node.inputs.iter().enumerate().skip(1) {
                let arg = op_def.and_then(|d| d.input_arg.get(i));
                let arg_name = arg.map_or_else(|| format!("input {i}"), |a| a.name.clone());
                if matches!(arg_name.as_str(), "grad" | "indices") {
                    continue;
                }
                let is_state = arg.is_none_or(|a| {
                    a.is_ref || a.r#type == ckpt_proto::DataType::DtResource as i32
                });
                let direct = self.variable_behind(input.node);
                let vars: BTreeSet<NodeId> = match (is_state, direct) {
                    (_, Some(v)) => BTreeSet::from([v]),
                    (true, None) => BTreeSet::new(),
                    (false, None) if arg.is_some() => self.variables_feeding(input.node),
                    (false, None) => BTreeSet::new(),
                };
                for v in vars {
                    let Some(k) = self.key(v) else { continue };
                    if keep(k) {
                        continue;
                    }
                    let what = if is_state { "slot" } else { "hyperparameter" };
                    found.entry(k.to_string()).or_insert_with(|| {
                        format!(
                            "{what}: feeds input `{arg_name}` of {} ({})",
                            node.name, node.op
                        )
                    });
                }
            }
        }
        for node in &graph.nodes {
            if !WRITE_OPS.contains(&node.op.as_str()) {
                continue;
            }
            let Some(scope) = scopes
                .iter()
                .find(|s| node.name.starts_with(&format!("{s}/")))
            else {
                continue;
            };
            let Some(var) = node
                .inputs
                .first()
                .and_then(|o| self.variable_behind(o.node))
            else {
                continue;
            };
            let Some(k) = self.key(var) else { continue };
            if keep(k) || self.model.is_saver_plumbing(&node.name) {
                continue;
            }
            found.entry(k.to_string()).or_insert_with(|| {
                format!(
                    "written by {} ({}) in the optimizer's scope {scope}/",
                    node.name, node.op
                )
            });
        }
        found
    }
}

/// TF1 optimizers' slot names (`<var>/<name>`, `<var>/<name>_<n>`), from the optimizers'
/// default names (`tf.compat.v1.train.*Optimizer`, tensor2tensor's Adafactor).
const TF1_SLOT_OWNERS: &[&str] = &[
    "Adam",
    "Momentum",
    "RMSProp",
    "Adagrad",
    "AdagradDA",
    "ProximalAdagrad",
    "Adadelta",
    "Ftrl",
    "Adafactor",
    "LazyAdam",
    "AdamW",
    "Nadam",
    "LARSOptimizer",
];

/// Keras optimizer class names, which name the scope of their variables in TF1 graphs
/// (`training/Adam/dense/kernel/m`, `training/Adam/iter`) and in TensorFlow Addons.
const KERAS_OPTIMIZERS: &[&str] = &[
    "Adam",
    "Adamax",
    "Nadam",
    "RMSprop",
    "SGD",
    "Adagrad",
    "Adadelta",
    "Ftrl",
    "AdamW",
    "Lion",
    "Adafactor",
    "LazyAdam",
    "LAMB",
    "RectifiedAdam",
    "Yogi",
    "NovoGrad",
    "Lookahead",
    "MovingAverage",
    "SWA",
    "AdaBelief",
    "ConditionalGradient",
    "COCOB",
    "ProximalAdagrad",
    "SGDW",
    "AdamW",
    "LossScaleOptimizer",
];

/// Keras (and TensorFlow Addons) slot names.
const KERAS_SLOTS: &[&str] = &[
    "m",
    "v",
    "vhat",
    "momentum",
    "rms",
    "mg",
    "accumulator",
    "accum_grad",
    "accum_var",
    "linear",
    "slow",
    "average",
    "velocity",
    "velocity_hat",
    "grad_norm_sum",
    "gradients_sum",
    "tilde_w",
    "lr",
    "delta_accumulator",
];

/// Keras optimizers' own variables (iterations and hyperparameters).
const KERAS_OWN: &[&str] = &[
    "iter",
    "iterations",
    "learning_rate",
    "lr",
    "decay",
    "beta_1",
    "beta_2",
    "rho",
    "momentum",
    "epsilon",
    "initial_accumulator_value",
    "learning_rate_power",
    "l1_regularization_strength",
    "l2_regularization_strength",
    "weight_decay",
    "loss_scale",
    "good_steps",
];

/// Optimizer state recognized by name, each with the rule that matched. A slot counts only
/// when its variable is in the checkpoint too; `trainable` names (from a graph) never count.
pub fn by_name(tensors: &[&TensorInfo], trainable: &BTreeSet<String>) -> BTreeMap<String, String> {
    let all: BTreeSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    let mut out = BTreeMap::new();
    for t in tensors {
        let name = t.name.as_str();
        if trainable.contains(name) || name == "global_step" {
            continue;
        }
        if let Some(reason) = name_rule(name, &all) {
            out.insert(name.to_string(), reason);
        }
    }
    out
}

fn name_rule(name: &str, all: &BTreeSet<&str>) -> Option<String> {
    let has = |v: &str| all.contains(v);
    // TF2 object-based keys without an object graph.
    if name.contains("/.OPTIMIZER_SLOT/") {
        return Some("TF2 slot variable key (`.OPTIMIZER_SLOT`)".to_string());
    }
    if name.starts_with("optimizer/") {
        return Some("TF2 key under the `optimizer` object".to_string());
    }
    let (parent, last) = name.rsplit_once('/').unwrap_or(("", name));
    // TF1 Adam's beta powers, possibly numbered or scoped.
    let base = strip_number(last);
    if base == "beta1_power" || base == "beta2_power" {
        return Some("TF1 Adam's beta power accumulator".to_string());
    }
    // TF1 slots: <var>/Adam, <var>/Adam_1.
    if !parent.is_empty() && has(parent) && TF1_SLOT_OWNERS.contains(&base) {
        return Some(format!(
            "slot of {parent} (TF1 {base} optimizer naming `<var>/{last}`)"
        ));
    }
    // BERT's (and Mesh TensorFlow's) AdamWeightDecay: <var>/adam_m, <var>/adam_v.
    if (last == "adam_m" || last == "adam_v") && has(parent) {
        return Some(format!(
            "slot of {parent} (BERT AdamWeightDecay naming `<var>/{last}`)"
        ));
    }
    // Mesh TensorFlow's Adafactor: <var>_slot_vr, _slot_vc, _slot_v, _slot_m.
    for suffix in ["_slot_vr", "_slot_vc", "_slot_v", "_slot_m"] {
        if let Some(var) = name.strip_suffix(suffix) {
            if has(var) {
                return Some(format!(
                    "slot of {var} (Mesh TensorFlow Adafactor naming `<var>{suffix}`)"
                ));
            }
        }
    }
    // Keras optimizers in TF1 graphs, and TensorFlow Addons': <scope>/<Opt>/<var>/<slot>,
    // <scope>/<Opt>/<own variable>.
    let components: Vec<&str> = name.split('/').collect();
    for (i, part) in components.iter().enumerate() {
        if !KERAS_OPTIMIZERS.contains(&strip_number(part)) {
            continue;
        }
        let rest = &components[i + 1..];
        if let [own] = rest {
            if KERAS_OWN.contains(own) {
                return Some(format!("Keras {part} optimizer's own variable `{own}`"));
            }
        }
        if let [var @ .., slot] = rest {
            let var = var.join("/");
            if !var.is_empty() && KERAS_SLOTS.contains(slot) && has(&var) {
                return Some(format!(
                    "slot `{slot}` of {var} (Keras {part} optimizer naming)"
                ));
            }
        }
    }
    None
}

/// `Adam_1` -> `Adam`; other names unchanged.
fn strip_number(s: &str) -> &str {
    match s.rsplit_once('_') {
        Some((head, n))
            if !head.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            head
        }
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infos(names: &[&str]) -> Vec<TensorInfo> {
        names
            .iter()
            .map(|n| TensorInfo {
                name: n.to_string(),
                dtype: DType::Float32,
                shape: vec![],
            })
            .collect()
    }

    #[test]
    fn names_of_every_family_are_recognized_beside_their_variable() {
        let t = infos(&[
            "dense/kernel",
            "dense/kernel/Adam",
            "dense/kernel/Adam_1",
            "beta1_power",
            "beta2_power_1",
            "conv/w",
            "conv/w/Momentum",
            "bert/pooler/dense/kernel",
            "bert/pooler/dense/kernel/adam_m",
            "bert/pooler/dense/kernel/adam_v",
            "shared/embedding",
            "shared/embedding_slot_vr",
            "shared/embedding_slot_vc",
            "d/bias",
            "training/RMSprop/d/bias/rms",
            "training/RMSprop/iter",
            "training/LazyAdam/d/bias/m",
            "global_step",
            "Adamant/kernel",
            "orphan/Adam",
            "orphan/adam_m",
            "other_slot_vr",
            "layer/m",
        ]);
        let refs: Vec<&TensorInfo> = t.iter().collect();
        let got = by_name(&refs, &BTreeSet::new());
        assert_eq!(
            got.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "bert/pooler/dense/kernel/adam_m",
                "bert/pooler/dense/kernel/adam_v",
                "beta1_power",
                "beta2_power_1",
                "conv/w/Momentum",
                "dense/kernel/Adam",
                "dense/kernel/Adam_1",
                "shared/embedding_slot_vc",
                "shared/embedding_slot_vr",
                "training/LazyAdam/d/bias/m",
                "training/RMSprop/d/bias/rms",
                "training/RMSprop/iter",
            ]
        );
        assert_eq!(
            got["dense/kernel/Adam_1"],
            "slot of dense/kernel (TF1 Adam optimizer naming `<var>/Adam_1`)"
        );
        // A graph's trainable variables never count.
        let trainable = BTreeSet::from(["conv/w/Momentum".to_string()]);
        assert!(!by_name(&refs, &trainable).contains_key("conv/w/Momentum"));
    }

    #[test]
    fn apply_ops_are_recognized() {
        for op in [
            "ApplyAdam",
            "ResourceApplyAdam",
            "SparseApplyFtrl",
            "ResourceSparseApplyAdagradV2",
        ] {
            assert!(is_apply_op(op), "{op}");
        }
        for op in [
            "Apply",
            "Applyx",
            "ResourceGather",
            "MatMul",
            "AssignVariableOp",
        ] {
            assert!(!is_apply_op(op), "{op}");
        }
    }
}
