//! A whole model file: the graph, its functions, its saver and its variables' checkpoint keys.
//! Binary and text-format protobufs (`.meta`, frozen `.pb`, `graph.pbtxt`) are read.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use ckpt_proto::attr_value::Value;
use ckpt_proto::{GraphDef, Message, MetaGraphDef, NodeDef, OpDef, SaverDef, SignatureDef};

use crate::function::{Function, OpResolver};
use crate::graph::{NodeId, Output};
use crate::{wire, Capture, Error, Graph, Node};
use ckpt_suggest::close_names;

/// Ops that hold a variable whose value lives in the checkpoint.
pub const VARIABLE_OPS: &[&str] = &["VariableV2", "Variable", "VarHandleOp"];

/// Ops that stand for a value the user feeds.
pub const PLACEHOLDER_OPS: &[&str] = &["Placeholder", "PlaceholderV2", "PlaceholderWithDefault"];

/// The first GraphDef producer version (TensorFlow 1.0, version 22 of
/// `tensorflow/core/public/version.h`) in which a `Placeholder`'s `shape {}` means a scalar.
/// Older graphs wrote `shape {}` for "any shape"; see [`Model::declared_shape`].
pub const SCALAR_PLACEHOLDER_PRODUCER: i32 = 22;

/// File extensions [`Model::load`] reads as text-format protobufs (`graph.pbtxt`).
pub const TEXT_EXTENSIONS: &[&str] = &["pbtxt", "pbtext", "txt"];

/// The restore op a `tf.train.Saver` with the default name builds; a GraphDef (which has no
/// `SaverDef`) that contains it maps its variables' keys through it.
const DEFAULT_RESTORE_OP: &str = "save/restore_all";

/// Field numbers of `GraphDef.node` (`tensorflow/core/framework/graph.proto`) and
/// `MetaGraphDef.graph_def` (`tensorflow/core/protobuf/meta_graph.proto`).
const GRAPH_DEF_NODE: u64 = 1;
const META_GRAPH_DEF_GRAPH_DEF: u64 = 2;

/// The NodeDefs whose encodings are `nodes`, decoded as they are asked for.
fn lazy_nodes<'a>(nodes: &'a [&'a [u8]]) -> impl Iterator<Item = Result<NodeDef, Error>> + 'a {
    nodes.iter().map(|bytes| {
        NodeDef::decode(*bytes).map_err(|error| Error::Decode {
            what: "GraphDef",
            error,
        })
    })
}

/// What a `.meta` (MetaGraphDef) or a frozen `.pb` (GraphDef) gives.
#[derive(Clone, Debug)]
pub struct Model {
    /// The main graph.
    pub graph: Graph,
    /// The graph library's functions that imported, by name.
    pub functions: BTreeMap<String, Function>,
    /// Library functions that could not be imported, with the reason. They fail only when
    /// used (see [`Model::function`]), so a model with an odd unused function still loads.
    pub function_errors: BTreeMap<String, String>,
    /// The `SaverDef` of a MetaGraphDef (TF1's `tf.train.Saver`), naming its save and
    /// restore ops.
    pub saver: Option<SaverDef>,
    /// The MetaGraphDef's `signature_def` map: signature key -> inputs and outputs.
    pub signatures: BTreeMap<String, SignatureDef>,
    /// Variable node (`VariableV2` / `Variable` / `VarHandleOp`) -> checkpoint key.
    pub variables: BTreeMap<NodeId, String>,
    /// Variable node -> `shape_and_slice` spec (such as `"6 2 0,3:0,2"`) for the parts of
    /// partitioned variables, as the saver's restore op gives it; whole variables are absent.
    pub variable_slices: BTreeMap<NodeId, String>,
    /// The op list a MetaGraphDef carries (`meta_info_def.stripped_op_list`), by op name.
    /// Attributes missing from nodes were filled with these OpDefs' defaults on import.
    pub op_defs: BTreeMap<String, OpDef>,
    /// The GraphDef's `versions.producer`: the GraphDef version of the TensorFlow that wrote
    /// it (21 for TF 0.12, 2474 for TF 2.21), 0 when the GraphDef has no `versions`, as
    /// TensorFlow reads it. Old graphs give some attributes another meaning
    /// ([`Model::declared_shape`]).
    pub producer: i32,
    /// The directory of the file [`Model::load`] read (the SavedModel directory for
    /// [`SavedModel::model`](crate::SavedModel::model)), where the runtime looks for asset
    /// files a graph names (a vocabulary for `InitializeTableFromTextFileV2`, in it or its
    /// `assets/`); `None` for a model built from bytes.
    pub dir: Option<PathBuf>,
    /// The captured inputs of each TF2 signature's function calls, by signature key, as
    /// [`SavedModel::model`](crate::SavedModel::model) bound them; empty for other models.
    pub captures: BTreeMap<String, Vec<Capture>>,
}

/// Which message a file turned out to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    MetaGraph,
    GraphDef,
}

impl Model {
    /// Decodes a serialized MetaGraphDef (the content of a `.meta` file). The graph's nodes
    /// are decoded one at a time as they are imported (see [`Model::from_graph_def_bytes`]).
    pub fn from_meta_graph_bytes(bytes: &[u8]) -> Result<Model, Error> {
        let decode_error = |error| Error::Decode {
            what: "MetaGraphDef",
            error,
        };
        // `graph_def` is field 2 of MetaGraphDef (tensorflow/core/protobuf/meta_graph.proto);
        // a message field given twice would have to be merged, which only prost does.
        if let Some((graph_defs, rest)) = wire::split_field(bytes, META_GRAPH_DEF_GRAPH_DEF) {
            if let [graph_def] = graph_defs.as_slice() {
                if let Some((nodes, graph_rest)) = wire::split_field(graph_def, GRAPH_DEF_NODE) {
                    let meta = MetaGraphDef::decode(rest.as_slice()).map_err(decode_error)?;
                    let graph_def =
                        GraphDef::decode(graph_rest.as_slice()).map_err(decode_error)?;
                    if nodes.is_empty() {
                        return Err(Error::EmptyGraph {
                            what: "MetaGraphDef",
                        });
                    }
                    return Model::from_meta_parts(&meta, &graph_def, lazy_nodes(&nodes));
                }
            }
        }
        let meta = MetaGraphDef::decode(bytes).map_err(decode_error)?;
        Model::from_meta_graph_def(&meta)
    }

    /// Decodes a serialized GraphDef (a frozen `.pb`). Its nodes are decoded one at a time
    /// and moved into the graph as they are, so the decoded GraphDef is never held whole
    /// (a 1-million-node graph loads in a few hundred megabytes).
    pub fn from_graph_def_bytes(bytes: &[u8]) -> Result<Model, Error> {
        let decode_error = |error| Error::Decode {
            what: "GraphDef",
            error,
        };
        if let Some((nodes, rest)) = wire::split_field(bytes, GRAPH_DEF_NODE) {
            let def = GraphDef::decode(rest.as_slice()).map_err(decode_error)?;
            if nodes.is_empty() {
                return Err(Error::EmptyGraph { what: "GraphDef" });
            }
            return Model::from_graph_parts(&def, lazy_nodes(&nodes));
        }
        let def = GraphDef::decode(bytes).map_err(decode_error)?;
        Model::from_graph_def(&def)
    }

    /// Imports a decoded MetaGraphDef: its graph, saver, signatures and op list.
    pub fn from_meta_graph_def(meta: &MetaGraphDef) -> Result<Model, Error> {
        let graph_def = meta
            .graph_def
            .as_ref()
            .filter(|g| !g.node.is_empty())
            .ok_or(Error::EmptyGraph {
                what: "MetaGraphDef",
            })?;
        Model::from_meta_parts(meta, graph_def, graph_def.node.iter().cloned().map(Ok))
    }

    /// A MetaGraphDef's model from `meta` (whose own `graph_def` is ignored), the graph's
    /// other fields in `graph_def` (whose `node` is ignored) and its nodes.
    fn from_meta_parts(
        meta: &MetaGraphDef,
        graph_def: &GraphDef,
        nodes: impl IntoIterator<Item = Result<NodeDef, Error>>,
    ) -> Result<Model, Error> {
        let op_defs: BTreeMap<String, OpDef> = meta
            .meta_info_def
            .iter()
            .filter_map(|info| info.stripped_op_list.as_ref())
            .flat_map(|list| list.op.iter())
            .map(|op| (op.name.clone(), op.clone()))
            .collect();
        let restore = meta.saver_def.as_ref().map(|s| s.restore_op_name.clone());
        Model::build(
            graph_def,
            nodes,
            meta.saver_def.clone(),
            restore,
            meta.signature_def.clone(),
            op_defs,
        )
    }

    /// Imports a decoded GraphDef. It has no `SaverDef`: variables are keyed through the
    /// `save/restore_all` op of a default-named `tf.train.Saver` when the graph has one (as an
    /// Estimator's `graph.pbtxt` does), else by their op names.
    pub fn from_graph_def(def: &GraphDef) -> Result<Model, Error> {
        if def.node.is_empty() {
            return Err(Error::EmptyGraph { what: "GraphDef" });
        }
        Model::from_graph_parts(def, def.node.iter().cloned().map(Ok))
    }

    /// A GraphDef's model from its fields other than `node` (in `def`) and its nodes.
    fn from_graph_parts(
        def: &GraphDef,
        nodes: impl IntoIterator<Item = Result<NodeDef, Error>>,
    ) -> Result<Model, Error> {
        Model::build(
            def,
            nodes,
            None,
            Some(DEFAULT_RESTORE_OP.to_owned()),
            BTreeMap::new(),
            BTreeMap::new(),
        )
    }

    /// Parses a text-format GraphDef (a `graph.pbtxt`) or MetaGraphDef, whichever `text` holds.
    /// When it is neither, the error is the one of the message whose parse got further, with
    /// its line and column.
    pub fn from_text(text: &str) -> Result<Model, Error> {
        use ckpt_proto::text::parse;
        let graph = parse::<GraphDef>(text);
        if let Ok(def) = &graph {
            if !def.node.is_empty() {
                return Model::from_graph_def(def);
            }
        }
        let meta = parse::<MetaGraphDef>(text);
        match (graph, meta) {
            (_, Ok(meta)) if meta.graph_def.as_ref().is_some_and(|g| !g.node.is_empty()) => {
                Model::from_meta_graph_def(&meta)
            }
            (Ok(_), _) => Err(Error::EmptyGraph { what: "GraphDef" }),
            (Err(_), Ok(_)) => Err(Error::EmptyGraph {
                what: "MetaGraphDef",
            }),
            (Err(graph), Err(meta)) => Err(if text_position(&meta) > text_position(&graph) {
                Error::Text {
                    what: "MetaGraphDef",
                    error: meta,
                }
            } else {
                Error::Text {
                    what: "GraphDef",
                    error: graph,
                }
            }),
        }
    }

    /// Reads a model file, binary or text. A file named `*.pbtxt`, `*.pbtext` or `*.txt` that
    /// reads as text is parsed as text ([`Model::from_text`]). Otherwise a `.pb` is decoded as
    /// a GraphDef first, anything else (`.meta`) as a MetaGraphDef first; when that fails the
    /// other message is tried, and when both fail and the file is text (or UTF-8 with a text
    /// name), it is parsed as text. Errors name the file, and for text the line and column.
    pub fn load(path: &Path) -> Result<Model, Error> {
        let mut model = Model::load_file(path)?;
        model.dir = Some(match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        });
        Ok(model)
    }

    fn load_file(path: &Path) -> Result<Model, Error> {
        let bytes = std::fs::read(path).map_err(|error| Error::Io {
            path: path.to_owned(),
            error,
        })?;
        let in_file = |error: Error| Error::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        };
        let text_named = path
            .extension()
            .is_some_and(|e| TEXT_EXTENSIONS.iter().any(|t| e.eq_ignore_ascii_case(t)));
        let utf8 = std::str::from_utf8(&bytes).ok();
        let textual = utf8.filter(|text| looks_like_text(text));
        if let (true, Some(text)) = (text_named, textual) {
            return Model::from_text(text).map_err(in_file);
        }
        // Binary bytes under a text name (small protobufs are often valid UTF-8) fall through
        // to the binary readers.
        let graph_def_first = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pb") || e.eq_ignore_ascii_case("graphdef"));
        let order = if graph_def_first {
            [Kind::GraphDef, Kind::MetaGraph]
        } else {
            [Kind::MetaGraph, Kind::GraphDef]
        };
        let attempt = |kind| match kind {
            Kind::MetaGraph => Model::from_meta_graph_bytes(&bytes),
            Kind::GraphDef => Model::from_graph_def_bytes(&bytes),
        };
        let first = match attempt(order[0]) {
            Ok(model) => return Ok(model),
            Err(e) => e,
        };
        let second = match attempt(order[1]) {
            Ok(model) => return Ok(model),
            Err(e) => e,
        };
        // Report the error of an attempt that got past protobuf decoding, if any: a MetaGraphDef
        // with a duplicate node name should say so, not "not a protobuf".
        let not_proto = |e: &Error| matches!(e, Error::Decode { .. } | Error::EmptyGraph { .. });
        let (first_np, second_np) = (not_proto(&first), not_proto(&second));
        if !first_np {
            Err(in_file(first))
        } else if !second_np {
            Err(in_file(second))
        } else if let Some(text) = if text_named { utf8 } else { textual } {
            Model::from_text(text).map_err(in_file)
        } else {
            Err(Error::NotAGraph {
                path: path.to_owned(),
                reason: first.to_string(),
            })
        }
    }

    /// The static shape the `shape` attribute of a placeholder or variable node declares, as
    /// TensorFlow's shape inference reads it; `None` when unknown (or when there is no
    /// `shape` attribute). Two legacy rules make a shape without dimensions unknown rather
    /// than scalar (`tensorflow/core/ops/array_ops.cc`, `state_ops.cc`): that of a
    /// `Placeholder` in a graph older than [`SCALAR_PLACEHOLDER_PRODUCER`], and that of a
    /// `Variable` (the op before `VariableV2`), since their writers put `shape {}` for "any".
    pub fn declared_shape(&self, node: &Node) -> Result<Option<Vec<i64>>, Error> {
        if !node.has_attr("shape") {
            return Ok(None);
        }
        let shape = node.attr_shape("shape")?;
        let legacy = match node.op.as_str() {
            "Placeholder" => self.producer < SCALAR_PLACEHOLDER_PRODUCER,
            "Variable" => true,
            _ => false,
        };
        Ok(shape.filter(|dims| !(legacy && dims.is_empty())))
    }

    fn build(
        graph_def: &GraphDef,
        nodes: impl IntoIterator<Item = Result<NodeDef, Error>>,
        saver: Option<SaverDef>,
        restore_op_name: Option<String>,
        signatures: BTreeMap<String, SignatureDef>,
        op_defs: BTreeMap<String, OpDef>,
    ) -> Result<Model, Error> {
        let defaults = (!op_defs.is_empty()).then_some(&op_defs);
        let graph = Graph::build(Vec::new(), nodes, defaults, |_, index, node, input| {
            crate::graph::parse_graph_input(index, node, input)
        })?;

        let library: &[ckpt_proto::FunctionDef] = graph_def
            .library
            .as_ref()
            .map_or(&[], |l| l.function.as_slice());
        let signatures_by_name: BTreeMap<String, OpDef> = library
            .iter()
            .filter_map(|f| f.signature.as_ref())
            .map(|s| (s.name.clone(), s.clone()))
            .collect();
        let resolver = OpResolver {
            op_defs: defaults,
            signatures: Some(&signatures_by_name),
        };
        let mut functions = BTreeMap::new();
        let mut function_errors = BTreeMap::new();
        for (i, def) in library.iter().enumerate() {
            match Function::convert(def, resolver, defaults) {
                Ok(f) => {
                    functions.insert(f.name.clone(), f);
                }
                Err(e) => {
                    let name = def
                        .signature
                        .as_ref()
                        .map(|s| s.name.clone())
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| format!("#{i}"));
                    function_errors.insert(name, e.to_string());
                }
            }
        }

        let restore = restore_op_name.and_then(|name| restore_op(&graph, &name));
        let (variables, variable_slices) = map_variables(&graph, restore);
        Ok(Model {
            graph,
            functions,
            function_errors,
            saver,
            signatures,
            variables,
            variable_slices,
            op_defs,
            producer: graph_def.versions.as_ref().map_or(0, |v| v.producer),
            dir: None,
            captures: BTreeMap::new(),
        })
    }

    /// The library function `name`; an error says why it is unavailable or suggests names.
    pub fn function(&self, name: &str) -> Result<&Function, Error> {
        if let Some(f) = self.functions.get(name) {
            return Ok(f);
        }
        if let Some(reason) = self.function_errors.get(name) {
            return Err(Error::FunctionUnavailable {
                function: name.to_owned(),
                reason: reason.clone(),
            });
        }
        Err(Error::UnknownFunction {
            name: name.to_owned(),
            suggestions: close_names(
                name,
                self.functions
                    .keys()
                    .chain(self.function_errors.keys())
                    .map(String::as_str),
            ),
        })
    }

    /// The checkpoint key of the variable node `id`.
    pub fn variable_key(&self, id: NodeId) -> Option<&str> {
        self.variables.get(&id).map(String::as_str)
    }

    /// Whether `name` belongs to the saver's save/restore ops (`save/...`, `save_1/...`, or
    /// the scope of the SaverDef's tensors).
    pub fn is_saver_plumbing(&self, name: &str) -> bool {
        if is_save_scope(name) {
            return true;
        }
        let Some(saver) = &self.saver else {
            return false;
        };
        [&saver.filename_tensor_name, &saver.restore_op_name]
            .into_iter()
            .filter_map(|t| t.rsplit_once('/').map(|(scope, _)| scope))
            .any(|scope| {
                name.strip_prefix(scope)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
    }

    /// An `Identity` of a variable (`w/read`) or of a `Switch` (a TF1 cond's `switch_f`): a
    /// dangling one is a by-product of graph construction, not an output.
    fn forwards_plumbing(&self, node: &crate::Node) -> bool {
        if !matches!(node.op.as_str(), "Identity" | "Snapshot") {
            return false;
        }
        node.inputs
            .first()
            .and_then(|o| self.graph.get(o.node))
            .is_some_and(|src| src.op == "Switch" || VARIABLE_OPS.contains(&src.op.as_str()))
    }

    /// The graph's placeholders (`Placeholder`, `PlaceholderWithDefault`), outside the saver's
    /// own ops, in graph order. Their dtype and shape are attrs `dtype` and `shape`.
    pub fn placeholders(&self) -> Vec<NodeId> {
        self.graph
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| PLACEHOLDER_OPS.contains(&n.op.as_str()))
            .filter(|(_, n)| !self.is_saver_plumbing(&n.name))
            .map(|(id, _)| id)
            .collect()
    }

    /// Nodes that are probably the model's outputs: nothing consumes them and they are not
    /// saver, initializer, variable or assignment plumbing. Typical output ops (ArgMax,
    /// Softmax, BiasAdd, Identity, ...) come first, then the rest, each group in graph order.
    pub fn likely_outputs(&self) -> Vec<NodeId> {
        let consumers = self.graph.consumers();
        let mut preferred = Vec::new();
        let mut others = Vec::new();
        for (id, node) in self.graph.nodes.iter().enumerate() {
            if consumers.get(id).is_some_and(|c| !c.is_empty()) {
                continue;
            }
            if is_plumbing_op(&node.op)
                || node.name.contains("Initializer")
                || node.name.starts_with("report_uninitialized")
                || is_training_scope(&node.name)
                || self.is_saver_plumbing(&node.name)
                || carries_handle(node)
                || self.forwards_plumbing(node)
            {
                continue;
            }
            if PREFERRED_OUTPUT_OPS.contains(&node.op.as_str()) {
                preferred.push(id);
            } else {
                others.push(id);
            }
        }
        preferred.extend(others);
        preferred
    }
}

const PREFERRED_OUTPUT_OPS: &[&str] = &[
    "ArgMax",
    "ArgMin",
    "Softmax",
    "LogSoftmax",
    "Sigmoid",
    "BiasAdd",
    "Identity",
    "MatMul",
    "Add",
    "AddV2",
    "Relu",
    "Tanh",
    "Reshape",
    "Squeeze",
];

fn is_plumbing_op(op: &str) -> bool {
    op.starts_with("Assign")
        || op.contains("Initializ")
        || op.starts_with("Save")
        || op.starts_with("Restore")
        || VARIABLE_OPS.contains(&op)
        || PLACEHOLDER_OPS.contains(&op)
        || matches!(
            op,
            "NoOp"
                | "Const"
                | "ReadVariableOp"
                | "MergeV2Checkpoints"
                | "ShardedFilename"
                | "StringJoin"
                | "VarIsInitializedOp"
                | "IsVariableInitialized"
                | "Shape"
                | "Print"
                | "PrintV2"
                | "Assert"
        )
}

/// Where a text parse stopped, for choosing the more telling of two errors.
fn text_position(error: &ckpt_proto::Error) -> (usize, usize) {
    match error {
        ckpt_proto::Error::Text { line, column, .. }
        | ckpt_proto::Error::TooDeep { line, column, .. } => (*line, *column),
        _ => (0, 0),
    }
}

/// Whether a file that is no binary protobuf reads as text (`node {`, `graph_def {`): its first
/// 256 characters are not control characters other than whitespace.
fn looks_like_text(text: &str) -> bool {
    !text.trim().is_empty()
        && text
            .chars()
            .take(256)
            .all(|c| !c.is_control() || c.is_whitespace())
}

/// `gradients/...` or `gradients_<digits>/...`: the scopes `tf.gradients` builds in.
fn is_training_scope(name: &str) -> bool {
    let scope = name.split('/').next().unwrap_or(name);
    match scope.strip_prefix("gradients") {
        Some("") => name.len() > scope.len(),
        Some(rest) => rest
            .strip_prefix('_')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// Whether the node forwards a variant or resource (the `Optional` gradient outputs of a
/// control-flow-v2 `If`, variable handles): never a user-facing output.
fn carries_handle(node: &crate::Node) -> bool {
    ["T", "dtype"].iter().any(|attr| {
        matches!(
            node.attr_dtype(attr),
            Ok(ckpt_proto::DataType::DtVariant | ckpt_proto::DataType::DtResource)
        )
    })
}

/// `save/...` or `save_<digits>/...`: the name scopes `tf.train.Saver` uses.
fn is_save_scope(name: &str) -> bool {
    let Some((scope, _)) = name.split_once('/') else {
        return false;
    };
    match scope.strip_prefix("save") {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('_')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// Maps every variable node to its checkpoint key: through the saver's restore op where it
/// restores the variable, else the node's own name.
fn map_variables(
    graph: &Graph,
    restore: Option<NodeId>,
) -> (BTreeMap<NodeId, String>, BTreeMap<NodeId, String>) {
    let mut keys = BTreeMap::new();
    let mut slices = BTreeMap::new();
    if let Some(restore) = restore {
        for assign in restore_assignments(graph, restore) {
            let node = graph.node(assign);
            let (Some(&var), Some(&value)) = (node.inputs.first(), node.inputs.get(1)) else {
                continue;
            };
            let var = skip_identities(graph, var).node;
            if !graph
                .get(var)
                .is_some_and(|n| VARIABLE_OPS.contains(&n.op.as_str()))
            {
                continue;
            }
            if let Some((key, slice)) = restored_key(graph, skip_identities(graph, value)) {
                if !slice.is_empty() {
                    slices.insert(var, slice);
                }
                keys.insert(var, key);
            }
        }
    }
    for (id, node) in graph.nodes.iter().enumerate() {
        if VARIABLE_OPS.contains(&node.op.as_str()) {
            keys.entry(id).or_insert_with(|| node.name.clone());
        }
    }
    (keys, slices)
}

/// The restore op named by a SaverDef (`save/restore_all`), if it is in the graph.
fn restore_op(graph: &Graph, restore_op_name: &str) -> Option<NodeId> {
    let name = restore_op_name.trim_start_matches('^');
    graph.find(name).or_else(|| {
        let (op_name, _) = crate::graph::split_tensor_name(name)?;
        graph.find(op_name)
    })
}

/// The `Assign` / `AssignVariableOp` nodes reachable from the restore op over control edges
/// (through `save/restore_shard` NoOps of sharded savers).
fn restore_assignments(graph: &Graph, restore: NodeId) -> Vec<NodeId> {
    let mut seen = HashSet::from([restore]);
    let mut queue = VecDeque::from([restore]);
    let mut found = Vec::new();
    while let Some(id) = queue.pop_front() {
        let Some(node) = graph.get(id) else { continue };
        if matches!(node.op.as_str(), "Assign" | "AssignVariableOp") {
            found.push(id);
        }
        for &c in &node.control_inputs {
            if seen.insert(c) {
                queue.push_back(c);
            }
        }
    }
    found.sort_unstable();
    found
}

/// Follows `Identity` nodes back to the tensor they forward.
pub(crate) fn skip_identities(graph: &Graph, mut output: Output) -> Output {
    // Bounded by the node count, so a malformed Identity cycle cannot loop forever.
    for _ in 0..graph.len() {
        match graph.get(output.node) {
            Some(n) if matches!(n.op.as_str(), "Identity" | "Snapshot") => match n.inputs.first() {
                Some(&input) => output = input,
                None => break,
            },
            _ => break,
        }
    }
    output
}

/// The (key, shape_and_slice) a restore op's output carries: `RestoreV2:k` is element k of
/// its `tensor_names` input, `RestoreSlice` / `Restore` (V1 checkpoints) read one tensor.
fn restored_key(graph: &Graph, output: Output) -> Option<(String, String)> {
    let node = graph.get(output.node)?;
    let (key, slice) = match node.op.as_str() {
        "RestoreV2" => {
            let names = const_strings(graph, *node.inputs.get(1)?)?;
            let key = names.get(output.index)?.clone();
            let slice = node
                .inputs
                .get(2)
                .and_then(|&o| const_strings(graph, o))
                .and_then(|s| s.get(output.index).cloned())
                .unwrap_or_default();
            (key, slice)
        }
        "RestoreSlice" | "Restore" => {
            let key = const_strings(graph, *node.inputs.get(1)?)?.first()?.clone();
            let slice = if node.op == "RestoreSlice" {
                node.inputs
                    .get(2)
                    .and_then(|&o| const_strings(graph, o))
                    .and_then(|s| s.first().cloned())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            (key, slice)
        }
        _ => return None,
    };
    (!key.is_empty()).then_some((key, slice))
}

/// The strings of a string `Const` (through Identities).
fn const_strings(graph: &Graph, output: Output) -> Option<Vec<String>> {
    let node = graph.get(skip_identities(graph, output).node)?;
    if node.op != "Const" {
        return None;
    }
    match node.attr("value")?.value.as_ref()? {
        Value::Tensor(t) => Some(
            t.string_val
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_scopes_are_recognized() {
        assert!(is_training_scope("gradients/fc1/MatMul_grad/MatMul"));
        assert!(is_training_scope("gradients_2/x"));
        assert!(!is_training_scope("gradients"));
        assert!(!is_training_scope("gradients_x/y"));
        assert!(!is_training_scope("my_gradients/y"));
    }

    #[test]
    fn save_scopes_are_recognized() {
        assert!(is_save_scope("save/Const"));
        assert!(is_save_scope("save_1/RestoreV2"));
        assert!(!is_save_scope("saver/x"));
        assert!(!is_save_scope("save_a/x"));
        assert!(!is_save_scope("save_/x"));
        assert!(!is_save_scope("save"));
        assert!(!is_save_scope("dense/save/x"));
    }
}
