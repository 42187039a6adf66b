//! The object graph of a TF2 checkpoint (`_CHECKPOINTABLE_OBJECT_GRAPH`, docs/format.md §5.2):
//! naming its objects as TensorFlow does, finding the optimizers in it, removing objects and
//! rewriting the graph consistently, and printing it as a tree.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use ckpt_proto::trackable_object_graph::TrackableObject;
use ckpt_proto::{Message, TrackableObjectGraph};

/// The key under which a TF2 checkpoint stores its object graph.
pub const OBJECT_GRAPH_KEY: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";

/// Decodes the serialized object graph; node ids must be in range.
pub fn decode(bytes: &[u8]) -> Result<TrackableObjectGraph> {
    let graph = TrackableObjectGraph::decode(bytes).map_err(|e| {
        anyhow!("{OBJECT_GRAPH_KEY} does not decode as a TrackableObjectGraph: {e}")
    })?;
    let n = graph.nodes.len();
    let in_range = |id: i32| usize::try_from(id).is_ok_and(|i| i < n);
    if n == 0 {
        return Err(anyhow!(
            "{OBJECT_GRAPH_KEY} has no nodes (node 0 is the root)"
        ));
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        for c in &node.children {
            if !in_range(c.node_id) {
                return Err(anyhow!(
                    "{OBJECT_GRAPH_KEY}: node {i}'s child {:?} is node {}, but there are {n} nodes",
                    c.local_name,
                    c.node_id
                ));
            }
        }
        for s in &node.slot_variables {
            if !in_range(s.original_variable_node_id) || !in_range(s.slot_variable_node_id) {
                return Err(anyhow!(
                    "{OBJECT_GRAPH_KEY}: node {i}'s slot {:?} refers to nodes {} and {}, but \
                     there are {n} nodes",
                    s.slot_name,
                    s.original_variable_node_id,
                    s.slot_variable_node_id
                ));
            }
        }
    }
    Ok(graph)
}

/// TensorFlow's `escape_local_name`: `.` becomes `..`, then `/` becomes `.S`.
fn escape(name: &str) -> String {
    name.replace('.', "..").replace('/', ".S")
}

/// Every object's name: the first breadth-first path from the root (the `local_name`s,
/// escaped, joined with `/`), as TensorFlow names objects in keys. Slot variables, which no
/// edge reaches, are named `<variable>/.OPTIMIZER_SLOT/<optimizer>/<slot>`. The root is `""`.
pub fn paths(graph: &TrackableObjectGraph) -> Vec<Option<String>> {
    let n = graph.nodes.len();
    let mut path: Vec<Option<String>> = vec![None; n];
    path[0] = Some(String::new());
    let mut queue = VecDeque::from([0usize]);
    while let Some(i) = queue.pop_front() {
        let base = path[i].clone().unwrap_or_default();
        for c in &graph.nodes[i].children {
            let j = c.node_id as usize;
            if path[j].is_none() {
                let name = escape(&c.local_name);
                path[j] = Some(if base.is_empty() {
                    name
                } else {
                    format!("{base}/{name}")
                });
                queue.push_back(j);
            }
        }
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        for s in &node.slot_variables {
            let slot = s.slot_variable_node_id as usize;
            if path[slot].is_none() {
                if let (Some(var), Some(opt)) =
                    (&path[s.original_variable_node_id as usize], &path[i])
                {
                    path[slot] = Some(format!(
                        "{var}/.OPTIMIZER_SLOT/{opt}/{}",
                        escape(&s.slot_name)
                    ));
                }
            }
        }
    }
    path
}

/// Local names of the hyperparameters a Keras optimizer tracks (legacy `OptimizerV2._hyper`,
/// and the new optimizers' attributes).
const HYPERPARAMETERS: &[&str] = &[
    "learning_rate",
    "lr",
    "decay",
    "beta_1",
    "beta_2",
    "momentum",
    "rho",
    "epsilon",
    "_learning_rate",
];

/// The optimizers of the graph, each with why it is one: an object holding `slot_variables`
/// (every optimizer with slots records them on itself), one tracked under the edge name
/// `optimizer` (as Keras' `Model.compile` and `tf.train.Checkpoint(optimizer=...)` track
/// them), or one with an optimizer's own state among its children (`iter` with
/// hyperparameters for Keras' legacy optimizers, `_iterations` for the new ones).
pub fn optimizers(graph: &TrackableObjectGraph) -> BTreeMap<usize, String> {
    let mut found = BTreeMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        if !node.slot_variables.is_empty() {
            found.insert(
                i,
                format!("it holds the slot variables of {} variables", {
                    let vars: BTreeSet<i32> = node
                        .slot_variables
                        .iter()
                        .map(|s| s.original_variable_node_id)
                        .collect();
                    vars.len()
                }),
            );
            continue;
        }
        let names: BTreeSet<&str> = node
            .children
            .iter()
            .map(|c| c.local_name.as_str())
            .collect();
        let hypers: Vec<&str> = HYPERPARAMETERS
            .iter()
            .copied()
            .filter(|h| names.contains(h))
            .collect();
        if names.contains("_iterations")
            && (names.contains("_learning_rate")
                || names.iter().any(|n| n.starts_with("_variables/")))
        {
            found.insert(
                i,
                "it has the `_iterations` and `_variables` of a Keras optimizer".to_string(),
            );
        } else if names.contains("iter") && !hypers.is_empty() {
            found.insert(
                i,
                format!(
                    "it has the `iter` and hyperparameters ({}) of a Keras optimizer",
                    hypers.join(", ")
                ),
            );
        }
    }
    for node in &graph.nodes {
        for c in &node.children {
            if c.local_name == "optimizer" {
                found
                    .entry(c.node_id as usize)
                    .or_insert_with(|| "it is tracked as `optimizer`".to_string());
            }
        }
    }
    found
}

/// The nodes that are no longer reachable from the root once `removed` are taken out (the
/// removed ones included): what belongs only to them.
pub fn orphaned_by(graph: &TrackableObjectGraph, removed: &BTreeSet<usize>) -> BTreeSet<usize> {
    let n = graph.nodes.len();
    let mut seen = vec![false; n];
    if !removed.contains(&0) {
        seen[0] = true;
        let mut queue = VecDeque::from([0usize]);
        while let Some(i) = queue.pop_front() {
            for c in &graph.nodes[i].children {
                let j = c.node_id as usize;
                if !seen[j] && !removed.contains(&j) {
                    seen[j] = true;
                    queue.push_back(j);
                }
            }
        }
    }
    (0..n).filter(|&i| !seen[i]).collect()
}

/// The graph without the nodes `dropped`: ids renumbered in order, references to dropped
/// nodes (children, slot entries) removed, and `has_checkpoint_values` recomputed as
/// TensorFlow computes it (`_add_checkpoint_values_check`) when the input had it.
pub fn without(graph: &TrackableObjectGraph, dropped: &BTreeSet<usize>) -> TrackableObjectGraph {
    let mut new_id = vec![None; graph.nodes.len()];
    let mut next = 0i32;
    for (i, id) in new_id.iter_mut().enumerate() {
        if !dropped.contains(&i) {
            *id = Some(next);
            next += 1;
        }
    }
    let map = |id: i32| {
        usize::try_from(id)
            .ok()
            .and_then(|i| new_id.get(i).copied().flatten())
    };
    let mut nodes: Vec<TrackableObject> = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        if dropped.contains(&i) {
            continue;
        }
        let mut node = node.clone();
        node.children.retain_mut(|c| match map(c.node_id) {
            Some(id) => {
                c.node_id = id;
                true
            }
            None => false,
        });
        node.slot_variables.retain_mut(|s| {
            match (
                map(s.original_variable_node_id),
                map(s.slot_variable_node_id),
            ) {
                (Some(a), Some(b)) => {
                    s.original_variable_node_id = a;
                    s.slot_variable_node_id = b;
                    true
                }
                _ => false,
            }
        });
        nodes.push(node);
    }
    if graph
        .nodes
        .iter()
        .any(|n| n.has_checkpoint_values.is_some())
    {
        let values = checkpoint_values(&nodes);
        for (node, has) in nodes.iter_mut().zip(values) {
            node.has_checkpoint_values = Some(has);
        }
    }
    TrackableObjectGraph { nodes }
}

/// Which nodes have checkpoint values themselves or below them.
fn checkpoint_values(nodes: &[TrackableObject]) -> Vec<bool> {
    let mut has: Vec<bool> = nodes
        .iter()
        .map(|n| {
            !n.attributes.is_empty() || !n.slot_variables.is_empty() || n.registered_saver.is_some()
        })
        .collect();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for c in &n.children {
            if let Some(p) = parents.get_mut(c.node_id as usize) {
                p.push(i);
            }
        }
    }
    let mut stack: Vec<usize> = (0..nodes.len()).filter(|&i| has[i]).collect();
    while let Some(i) = stack.pop() {
        for &p in &parents[i] {
            if !has[p] {
                has[p] = true;
                stack.push(p);
            }
        }
    }
    has
}

/// The object graph as a tree, from the root: each object under the edge that names it
/// (the first breadth-first path), its saved values as `NAME -> key`, other edges to an
/// object named elsewhere as `name = path`, and an optimizer's slot variables as
/// `[slot m of path] -> key`.
pub fn tree(graph: &TrackableObjectGraph) -> String {
    let path = paths(graph);
    // The tree edges: child j hangs under the parent whose path named it.
    let mut out = String::from("(root)\n");
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    let mut visited = vec![false; graph.nodes.len()];
    visited[0] = true;
    let mut lines: Vec<(usize, String)> = Vec::new();
    fn value_lines(node: &TrackableObject, depth: usize, lines: &mut Vec<(usize, String)>) {
        for a in &node.attributes {
            lines.push((
                depth,
                format!(".ATTRIBUTES/{} -> {}", a.name, a.checkpoint_key),
            ));
        }
    }
    // Depth-first, children in their recorded order, so the tree reads like the model.
    fn walk(
        graph: &TrackableObjectGraph,
        path: &[Option<String>],
        i: usize,
        depth: usize,
        visited: &mut [bool],
        lines: &mut Vec<(usize, String)>,
    ) {
        let node = &graph.nodes[i];
        for c in &node.children {
            let j = c.node_id as usize;
            let child_path = path[j].clone().unwrap_or_default();
            let mine = path[i].as_deref().map(|p| {
                let name = escape(&c.local_name);
                if p.is_empty() {
                    name
                } else {
                    format!("{p}/{name}")
                }
            });
            if visited[j] || mine.as_deref() != Some(child_path.as_str()) {
                lines.push((depth, format!("{} = {}", c.local_name, child_path)));
                continue;
            }
            visited[j] = true;
            let child = &graph.nodes[j];
            if child.children.is_empty()
                && child.attributes.len() == 1
                && child.slot_variables.is_empty()
            {
                lines.push((
                    depth,
                    format!("{} -> {}", c.local_name, child.attributes[0].checkpoint_key),
                ));
                continue;
            }
            lines.push((depth, c.local_name.clone()));
            value_lines(child, depth + 1, lines);
            walk(graph, path, j, depth + 1, visited, lines);
        }
        for s in &node.slot_variables {
            let var = path[s.original_variable_node_id as usize]
                .clone()
                .unwrap_or_default();
            let slot = &graph.nodes[s.slot_variable_node_id as usize];
            let keys: Vec<&str> = slot
                .attributes
                .iter()
                .map(|a| a.checkpoint_key.as_str())
                .collect();
            lines.push((
                depth,
                format!("[slot {} of {}] -> {}", s.slot_name, var, keys.join(", ")),
            ));
        }
    }
    stack.clear();
    value_lines(&graph.nodes[0], 1, &mut lines);
    walk(graph, &path, 0, 1, &mut visited, &mut lines);
    for (depth, text) in lines {
        let _ = writeln!(out, "{}{}", "  ".repeat(depth), text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ckpt_proto::trackable_object_graph::trackable_object::{
        ObjectReference, SerializedTensor, SlotVariableReference,
    };

    fn node(children: &[(i32, &str)], key: Option<&str>) -> TrackableObject {
        TrackableObject {
            children: children
                .iter()
                .map(|&(node_id, name)| ObjectReference {
                    node_id,
                    local_name: name.to_string(),
                })
                .collect(),
            attributes: key
                .map(|k| SerializedTensor {
                    name: "VARIABLE_VALUE".into(),
                    full_name: String::new(),
                    checkpoint_key: k.into(),
                    optional_restore: false,
                })
                .into_iter()
                .collect(),
            has_checkpoint_values: Some(true),
            ..Default::default()
        }
    }

    /// root -> model -> kernel; root -> optimizer -> iter, with slot m of kernel.
    fn sample() -> TrackableObjectGraph {
        let mut opt = node(&[(4, "iter"), (5, "learning_rate")], None);
        opt.slot_variables.push(SlotVariableReference {
            original_variable_node_id: 2,
            slot_name: "m".into(),
            slot_variable_node_id: 6,
        });
        TrackableObjectGraph {
            nodes: vec![
                node(&[(1, "model"), (3, "optimizer")], None),
                node(&[(2, "kernel")], None),
                node(&[], Some("model/kernel/.ATTRIBUTES/VARIABLE_VALUE")),
                opt,
                node(&[], Some("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE")),
                node(
                    &[],
                    Some("optimizer/learning_rate/.ATTRIBUTES/VARIABLE_VALUE"),
                ),
                node(
                    &[],
                    Some("model/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"),
                ),
            ],
        }
    }

    #[test]
    fn paths_follow_tensorflow_naming() {
        let p = paths(&sample());
        assert_eq!(p[2].as_deref(), Some("model/kernel"));
        assert_eq!(
            p[6].as_deref(),
            Some("model/kernel/.OPTIMIZER_SLOT/optimizer/m")
        );
        assert_eq!(escape("odd.name/with.S"), "odd..name.Swith..S");
    }

    #[test]
    fn removing_the_optimizer_renumbers_and_keeps_the_model() {
        let g = sample();
        let opts = optimizers(&g);
        assert_eq!(opts.keys().copied().collect::<Vec<_>>(), [3]);
        let gone = orphaned_by(&g, &opts.keys().copied().collect());
        assert_eq!(gone.into_iter().collect::<Vec<_>>(), [3, 4, 5, 6]);
        let out = without(&g, &[3, 4, 5, 6].into_iter().collect());
        assert_eq!(out.nodes.len(), 3);
        assert_eq!(out.nodes[0].children.len(), 1);
        assert_eq!(out.nodes[0].children[0].local_name, "model");
        assert_eq!(out.nodes[1].children[0].node_id, 2);
        assert!(out
            .nodes
            .iter()
            .all(|n| n.has_checkpoint_values == Some(true)));
    }

    #[test]
    fn checkpoint_values_are_recomputed() {
        // A model object whose only value was a slot's owner loses its values flag.
        let mut g = sample();
        g.nodes[1].children.clear();
        let out = without(&g, &[2, 3, 4, 5, 6].into_iter().collect());
        assert_eq!(out.nodes[1].has_checkpoint_values, Some(false));
        assert_eq!(out.nodes[0].has_checkpoint_values, Some(false));
    }

    #[test]
    fn bad_references_are_errors() {
        let mut g = sample();
        g.nodes[1].children[0].node_id = 99;
        let err = decode(&g.encode_to_vec()).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("_CHECKPOINTABLE_OBJECT_GRAPH: node 1's child \"kernel\" is node 99, but there are 7 nodes")
        );
        assert!(decode(b"\xff\xff\xff").is_err());
    }
}
