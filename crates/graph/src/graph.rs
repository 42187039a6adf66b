//! The owned graph: nodes by index, a name index, pruning and topological order.

use std::collections::{BTreeMap, HashMap, HashSet};

use ckpt_proto::{GraphDef, NodeDef, OpDef};

use crate::node::Node;
use crate::{Attrs, Error};
use ckpt_suggest::close_names;

/// Index of a node in [`Graph::nodes`].
pub type NodeId = usize;

/// One output tensor of a node: `node:index` in TensorFlow's notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Output {
    /// The producing node.
    pub node: NodeId,
    /// Which of its outputs (0 for the first).
    pub index: usize,
}

impl Output {
    /// Output `index` of `node`.
    pub fn new(node: NodeId, index: usize) -> Output {
        Output { node, index }
    }
}

/// A graph of [`Node`]s, addressed by index, with inputs resolved to indices.
///
/// `nodes` is public for reading and for small edits; after adding, removing or renaming
/// nodes, rebuild the name index with [`Graph::new`].
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// The nodes; a [`NodeId`] indexes this.
    pub nodes: Vec<Node>,
    index: HashMap<String, NodeId>,
}

/// A parsed NodeDef input.
#[derive(Clone, Copy, Debug)]
pub(crate) enum InputRef {
    Data(Output),
    Control(NodeId),
}

/// Splits `name:k` into `("name", k)`, and `name` into `("name", 0)`. `None` when the part
/// after the last `:` is not a decimal index or the name is empty.
pub(crate) fn split_tensor_name(spec: &str) -> Option<(&str, usize)> {
    let (name, index) = match spec.rsplit_once(':') {
        Some((name, k)) => {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (name, k.parse().ok()?)
        }
        None => (spec, 0),
    };
    if name.is_empty() {
        None
    } else {
        Some((name, index))
    }
}

impl Graph {
    /// A graph from nodes whose inputs are already ids. Checks that names are unique and
    /// non-empty and that every input id is in range.
    pub fn new(nodes: Vec<Node>) -> Result<Graph, Error> {
        let mut index = HashMap::with_capacity(nodes.len());
        for (id, node) in nodes.iter().enumerate() {
            if node.name.is_empty() {
                return Err(Error::EmptyNodeName {
                    index: id,
                    op: node.op.clone(),
                });
            }
            if index.insert(node.name.clone(), id).is_some() {
                return Err(Error::DuplicateNode {
                    node: node.name.clone(),
                });
            }
        }
        let graph = Graph { nodes, index };
        for node in &graph.nodes {
            for &id in node
                .inputs
                .iter()
                .map(|o| &o.node)
                .chain(&node.control_inputs)
            {
                graph.check_id(id)?;
            }
        }
        Ok(graph)
    }

    /// Imports a GraphDef. Duplicate or empty names, empty ops, malformed inputs and inputs
    /// naming no node are errors naming the node.
    pub fn from_graph_def(def: &GraphDef) -> Result<Graph, Error> {
        Graph::build(
            Vec::new(),
            def.node.iter().cloned().map(Ok),
            None,
            |_, index, node, input| parse_graph_input(index, node, input),
        )
    }

    /// Builds a graph from `prefix` (complete nodes without inputs, such as a function's
    /// arguments) followed by the nodes `defs` yields, resolving each input string with
    /// `resolve`. Attributes missing from a node are filled from `defaults` when its op is
    /// there.
    ///
    /// `defs` is consumed one NodeDef at a time and each is moved into its [`Node`], so a
    /// caller that decodes lazily never holds the decoded GraphDef whole. An `Err` item (a
    /// NodeDef that does not decode) is returned as is, and it takes precedence over any
    /// other error: when a node is refused, the remaining items are still drained for a
    /// decode error, so that bytes which are not a GraphDef at all are reported as such
    /// whatever order the checks ran in.
    pub(crate) fn build<I, F>(
        prefix: Vec<Node>,
        defs: I,
        defaults: Option<&BTreeMap<String, OpDef>>,
        resolve: F,
    ) -> Result<Graph, Error>
    where
        I: IntoIterator<Item = Result<NodeDef, Error>>,
        F: FnMut(&[Node], &HashMap<String, NodeId>, &Node, &str) -> Result<InputRef, Error>,
    {
        let mut defs = defs.into_iter();
        Graph::build_from(prefix, &mut defs, defaults, resolve).map_err(|error| {
            match defs.find_map(Result::err) {
                Some(decode) if !matches!(error, Error::Decode { .. }) => decode,
                _ => error,
            }
        })
    }

    fn build_from<I, F>(
        prefix: Vec<Node>,
        defs: &mut I,
        defaults: Option<&BTreeMap<String, OpDef>>,
        mut resolve: F,
    ) -> Result<Graph, Error>
    where
        I: Iterator<Item = Result<NodeDef, Error>>,
        F: FnMut(&[Node], &HashMap<String, NodeId>, &Node, &str) -> Result<InputRef, Error>,
    {
        let first = prefix.len();
        let mut nodes = prefix;
        nodes.reserve(defs.size_hint().0);
        let mut pending_inputs: Vec<Vec<String>> = Vec::with_capacity(defs.size_hint().0);
        for (i, def) in defs.enumerate() {
            let NodeDef {
                name,
                op,
                input,
                device,
                attr,
                ..
            } = def?;
            if name.is_empty() {
                return Err(Error::EmptyNodeName { index: i, op });
            }
            if op.is_empty() {
                return Err(Error::EmptyOp { node: name });
            }
            let mut node = Node::new(name, op);
            node.device = device;
            node.attrs = Attrs::from(attr);
            if let Some(op_def) = defaults.and_then(|d| d.get(&node.op)) {
                for attr in &op_def.attr {
                    if let Some(value) = &attr.default_value {
                        if !node.attrs.contains_key(&attr.name) {
                            node.attrs.insert(attr.name.clone(), value.clone());
                        }
                    }
                }
            }
            nodes.push(node);
            pending_inputs.push(input);
        }
        let mut index = HashMap::with_capacity(nodes.len());
        for (id, node) in nodes.iter().enumerate() {
            if index.insert(node.name.clone(), id).is_some() {
                return Err(Error::DuplicateNode {
                    node: node.name.clone(),
                });
            }
        }
        let mut resolved = Vec::with_capacity(pending_inputs.len());
        for (def_inputs, node) in pending_inputs.iter().zip(nodes.iter().skip(first)) {
            let mut inputs = Vec::with_capacity(def_inputs.len());
            let mut control = Vec::new();
            for input in def_inputs {
                match resolve(&nodes, &index, node, input)? {
                    InputRef::Data(o) => inputs.push(o),
                    InputRef::Control(id) => control.push(id),
                }
            }
            resolved.push((inputs, control));
        }
        drop(pending_inputs);
        for (node, (inputs, control)) in nodes.iter_mut().skip(first).zip(resolved) {
            node.inputs = inputs;
            node.control_inputs = control;
        }
        Ok(Graph { nodes, index })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The id of the node named `name`.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// The node `id`.
    ///
    /// # Panics
    /// When `id` is not an id of this graph. Ids from the graph's own nodes, [`Graph::find`]
    /// and [`Graph::parse_output`] are always valid; use [`Graph::get`] for others.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// The node `id`, or `None` when out of range.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// The node named `name`, or an error suggesting close names.
    pub fn node_by_name(&self, name: &str) -> Result<NodeId, Error> {
        self.find(name).ok_or_else(|| self.unknown(name))
    }

    fn unknown(&self, name: &str) -> Error {
        Error::UnknownNode {
            name: name.to_owned(),
            suggestions: close_names(name, self.nodes.iter().map(|n| n.name.as_str())),
        }
    }

    fn check_id(&self, id: NodeId) -> Result<&Node, Error> {
        self.nodes.get(id).ok_or(Error::NodeIdOutOfRange {
            id,
            len: self.nodes.len(),
        })
    }

    /// Parses a user's tensor name, `"name"` (output 0) or `"name:k"`. An unknown name is an
    /// error that suggests close names. The output index is not checked against the op.
    pub fn parse_output(&self, spec: &str) -> Result<Output, Error> {
        let (name, index) = split_tensor_name(spec).ok_or_else(|| Error::MalformedTensorName {
            spec: spec.to_owned(),
        })?;
        let node = self.find(name).ok_or_else(|| self.unknown(name))?;
        Ok(Output { node, index })
    }

    /// `name:k` for an output of this graph (`?:k` for an id out of range).
    pub fn tensor_name(&self, output: Output) -> String {
        match self.nodes.get(output.node) {
            Some(node) => format!("{}:{}", node.name, output.index),
            None => format!("?:{}", output.index),
        }
    }

    /// For each node, the nodes that use it, one entry per data or control edge.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut consumers = vec![Vec::new(); self.nodes.len()];
        for (id, node) in self.nodes.iter().enumerate() {
            for &src in node
                .inputs
                .iter()
                .map(|o| &o.node)
                .chain(&node.control_inputs)
            {
                if let Some(list) = consumers.get_mut(src) {
                    list.push(id);
                }
            }
        }
        consumers
    }

    /// Nodes needed to compute `fetches`, in topological order (inputs before users).
    ///
    /// Walks data and control inputs with an explicit stack, so graph depth is not limited by
    /// the thread's stack. A fed output is not computed: an edge reading a fed output is cut,
    /// so the node behind it is computed only if some other edge still needs it. A fetch that
    /// is itself fed needs nothing. A control edge from a fed `Placeholder` is satisfied by the
    /// feed (as in TensorFlow); a control edge from any other node needs that node.
    ///
    /// TF1 while loops are cycles by design: each loop variable's `Merge` reads the
    /// `NextIteration` that carries the variable into the next iteration. Such an edge (a
    /// [back edge](Graph::is_back_edge), as TensorFlow's `GraphConstructor` calls it) does not
    /// order its two nodes: the `NextIteration` and what it needs are still needed, but they
    /// come after the `Merge`. Any other cycle among the needed nodes is an error naming a
    /// node on it.
    pub fn prune(&self, fetches: &[Output], feeds: &[Output]) -> Result<Vec<NodeId>, Error> {
        for o in fetches.iter().chain(feeds) {
            self.check_id(o.node)?;
        }
        let fed: HashSet<Output> = feeds.iter().copied().collect();
        let fed_nodes: HashSet<NodeId> = feeds.iter().map(|o| o.node).collect();
        let roots = fetches.iter().filter(|o| !fed.contains(o)).map(|o| o.node);
        self.depth_first(roots, &fed, &fed_nodes)
    }

    /// All nodes in a topological order (inputs before users), back edges left out (see
    /// [`Graph::prune`]); any other cycle is an error naming a node on it.
    pub fn topological_order(&self) -> Result<Vec<NodeId>, Error> {
        self.depth_first(0..self.nodes.len(), &HashSet::new(), &HashSet::new())
    }

    /// Whether the edge from `src` into `dst` is the back edge of a TF1 while loop: a
    /// `NextIteration` feeding a `Merge` (`RefNextIteration` and `RefMerge` too), the one
    /// kind of cycle TensorFlow accepts (`graph_constructor.cc`).
    pub fn is_back_edge(&self, src: NodeId, dst: NodeId) -> bool {
        let op = |id: NodeId| self.nodes.get(id).map_or("", |n| n.op.as_str());
        matches!(op(src), "NextIteration" | "RefNextIteration")
            && matches!(op(dst), "Merge" | "RefMerge")
    }

    /// Iterative post-order depth-first walk from `roots` over the edges not cut by feeds.
    fn depth_first(
        &self,
        roots: impl Iterator<Item = NodeId>,
        fed: &HashSet<Output>,
        fed_nodes: &HashSet<NodeId>,
    ) -> Result<Vec<NodeId>, Error> {
        const WHITE: u8 = 0;
        const GRAY: u8 = 1;
        const BLACK: u8 = 2;
        let mut color = vec![WHITE; self.nodes.len()];
        let mut order = Vec::new();
        // (node, index of its next edge: data inputs first, then control inputs)
        let mut stack: Vec<(NodeId, usize)> = Vec::new();
        // The sources of back edges met on the way: walked once the current roots are done,
        // so that they come after the `Merge` they feed.
        let mut deferred: Vec<NodeId> = Vec::new();
        let mut roots: Vec<NodeId> = roots.collect();
        roots.reverse();
        while let Some(root) = roots.pop().or_else(|| deferred.pop()) {
            if color.get(root).copied() != Some(WHITE) {
                continue;
            }
            if let Some(c) = color.get_mut(root) {
                *c = GRAY;
            }
            stack.push((root, 0));
            while let Some((id, next)) = stack.last_mut() {
                let node = self.check_id(*id)?;
                let edge = *next;
                *next += 1;
                let target = if let Some(input) = node.inputs.get(edge) {
                    if fed.contains(input) {
                        continue;
                    }
                    if self.is_back_edge(input.node, *id) {
                        deferred.push(input.node);
                        continue;
                    }
                    input.node
                } else if let Some(&ctrl) = edge
                    .checked_sub(node.inputs.len())
                    .and_then(|e| node.control_inputs.get(e))
                {
                    if fed_nodes.contains(&ctrl)
                        && matches!(
                            self.check_id(ctrl)?.op.as_str(),
                            "Placeholder" | "PlaceholderV2"
                        )
                    {
                        continue;
                    }
                    ctrl
                } else {
                    let done = *id;
                    if let Some(c) = color.get_mut(done) {
                        *c = BLACK;
                    }
                    order.push(done);
                    stack.pop();
                    continue;
                };
                match color.get(target).copied() {
                    Some(WHITE) => {
                        if let Some(c) = color.get_mut(target) {
                            *c = GRAY;
                        }
                        stack.push((target, 0));
                    }
                    Some(GRAY) => {
                        return Err(Error::Cycle {
                            node: self.check_id(target)?.name.clone(),
                        })
                    }
                    Some(_) => {}
                    None => {
                        return Err(Error::NodeIdOutOfRange {
                            id: target,
                            len: self.nodes.len(),
                        })
                    }
                }
            }
        }
        Ok(order)
    }
}

/// A GraphDef input: `name`, `name:k` or `^name`.
pub(crate) fn parse_graph_input(
    index: &HashMap<String, NodeId>,
    node: &Node,
    input: &str,
) -> Result<InputRef, Error> {
    let malformed = |reason: &str| Error::MalformedInput {
        node: node.name.clone(),
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(name) = input.strip_prefix('^') {
        if name.is_empty() || name.contains(':') {
            return Err(malformed("expected \"^node\""));
        }
        return lookup(index, node, input, name).map(InputRef::Control);
    }
    let (name, k) =
        split_tensor_name(input).ok_or_else(|| malformed("expected \"node\" or \"node:index\""))?;
    let id = lookup(index, node, input, name)?;
    Ok(InputRef::Data(Output { node: id, index: k }))
}

/// The id of the input node `name`, or a dangling-input error with suggestions.
pub(crate) fn lookup(
    index: &HashMap<String, NodeId>,
    node: &Node,
    input: &str,
    name: &str,
) -> Result<NodeId, Error> {
    index
        .get(name)
        .copied()
        .ok_or_else(|| Error::DanglingInput {
            node: node.name.clone(),
            input: input.to_owned(),
            suggestions: close_names(name, index.keys().map(String::as_str)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_names_split_at_the_last_colon() {
        assert_eq!(split_tensor_name("a"), Some(("a", 0)));
        assert_eq!(split_tensor_name("a/b:3"), Some(("a/b", 3)));
        assert_eq!(split_tensor_name("a:"), None);
        assert_eq!(split_tensor_name(":1"), None);
        assert_eq!(split_tensor_name("a:x"), None);
        assert_eq!(split_tensor_name("a:-1"), None);
        assert_eq!(split_tensor_name("a:99999999999999999999999"), None);
        assert_eq!(split_tensor_name(""), None);
    }
}
