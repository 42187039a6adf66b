//! SavedModel directories (docs/format.md §8): the `SavedModel` message, the choice of a meta
//! graph by its tag set, signatures resolved to graph tensors, and the captured inputs of TF2
//! signature functions bound to checkpoint keys through the object graph.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use ckpt_proto::attr_value::Value;
use ckpt_proto::saved_object::Kind;
use ckpt_proto::tensor_info::Encoding;
use ckpt_proto::{
    DataType, Message, MetaGraphDef, SavedObjectGraph, TensorInfo, TrackableObjectGraph,
};
use ckpt_suggest::close_names;

use crate::graph::{NodeId, Output};
use crate::model::skip_identities;
use crate::{Error, Model, Node, VARIABLE_OPS};

/// The binary SavedModel file of a SavedModel directory.
pub const SAVED_MODEL_PB: &str = "saved_model.pb";
/// The text-format SavedModel file, read when `saved_model.pb` is absent.
pub const SAVED_MODEL_PBTXT: &str = "saved_model.pbtxt";
/// The tag of the meta graph loaders pick by default (`tf.saved_model.SERVING`).
pub const SERVE_TAG: &str = "serve";
/// The signature run by default (`tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY`).
pub const DEFAULT_SIGNATURE: &str = "serving_default";
/// The checkpoint key of the serialized `TrackableObjectGraph` in a TF2 checkpoint.
pub const OBJECT_GRAPH_KEY: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";
/// The attribute of a variable's object-graph node that names its checkpoint key.
const VARIABLE_VALUE: &str = "VARIABLE_VALUE";

/// A SavedModel directory's `saved_model.pb` (or `saved_model.pbtxt`), decoded.
///
/// ```no_run
/// use ckpt_graph::{SavedModel, DEFAULT_SIGNATURE};
///
/// let saved = SavedModel::load("export/1".as_ref())?;
/// println!("{:?}", saved.tag_sets());
/// // The TF1 way to the variables; TF2 exports also need the checkpoint's object graph
/// // (`ckpt_runtime::LoadedSavedModel` reads it).
/// let model = saved.model(&["serve"], None)?;
/// let signature = model.signature(DEFAULT_SIGNATURE)?;
/// for input in &signature.inputs {
///     println!("{} -> {}", input.key, input.name);
/// }
/// # Ok::<(), ckpt_graph::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SavedModel {
    dir: PathBuf,
    file: PathBuf,
    proto: ckpt_proto::SavedModel,
}

impl SavedModel {
    /// The SavedModel file `path` names: `path` itself when it is a file called
    /// `saved_model.pb` or `saved_model.pbtxt`, else the one inside the directory `path`.
    /// `None` when `path` is neither.
    pub fn find(path: &Path) -> Option<PathBuf> {
        if path.is_dir() {
            return [SAVED_MODEL_PB, SAVED_MODEL_PBTXT]
                .iter()
                .map(|name| path.join(name))
                .find(|p| p.is_file());
        }
        let name = path.file_name()?;
        (path.is_file() && (name == SAVED_MODEL_PB || name == SAVED_MODEL_PBTXT))
            .then(|| path.to_owned())
    }

    /// Reads a SavedModel: a directory (its `saved_model.pb`, else `saved_model.pbtxt`), or
    /// one of those files. Errors name the file.
    pub fn load(path: &Path) -> Result<SavedModel, Error> {
        let file = if path.is_dir() {
            SavedModel::find(path).ok_or_else(|| Error::NotASavedModel {
                path: path.to_owned(),
                reason: if path.join("saved_model.cpb").is_file() {
                    "it holds a chunked saved_model.cpb, which is not supported".to_owned()
                } else {
                    format!("no {SAVED_MODEL_PB} or {SAVED_MODEL_PBTXT}")
                },
            })?
        } else {
            path.to_owned()
        };
        let bytes = std::fs::read(&file).map_err(|error| Error::Io {
            path: file.clone(),
            error,
        })?;
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let is_text = file.extension().is_some_and(|e| e == "pbtxt");
        // A file named .pbtxt that is not UTF-8 is read as the binary message it must be.
        let saved = match std::str::from_utf8(&bytes) {
            Ok(text) if is_text => SavedModel::from_text(text, dir),
            _ => SavedModel::from_bytes(&bytes, dir),
        };
        saved
            .map(|mut s| {
                s.file = file.clone();
                s
            })
            .map_err(|error| Error::InFile {
                path: file,
                error: Box::new(error),
            })
    }

    /// Parses a text-format `SavedModel` (a `saved_model.pbtxt`); `dir` is the directory
    /// holding its `variables/` and `assets/`.
    pub fn from_text(text: &str, dir: impl Into<PathBuf>) -> Result<SavedModel, Error> {
        let proto = ckpt_proto::text::parse::<ckpt_proto::SavedModel>(text).map_err(|error| {
            Error::Text {
                what: "SavedModel",
                error,
            }
        })?;
        let dir = dir.into();
        Ok(SavedModel {
            file: dir.join(SAVED_MODEL_PBTXT),
            dir,
            proto,
        })
    }

    /// Decodes a binary `SavedModel` message; `dir` is the directory holding its
    /// `variables/` and `assets/`.
    pub fn from_bytes(bytes: &[u8], dir: impl Into<PathBuf>) -> Result<SavedModel, Error> {
        let proto = ckpt_proto::SavedModel::decode(bytes).map_err(|error| Error::Decode {
            what: "SavedModel",
            error,
        })?;
        let dir = dir.into();
        Ok(SavedModel {
            file: dir.join(SAVED_MODEL_PB),
            dir,
            proto,
        })
    }

    /// The directory holding `variables/` and `assets/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file the SavedModel was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The decoded message.
    pub fn proto(&self) -> &ckpt_proto::SavedModel {
        &self.proto
    }

    /// The checkpoint prefix of the variables: `<dir>/variables/variables`.
    pub fn variables_prefix(&self) -> PathBuf {
        self.dir.join("variables").join("variables")
    }

    /// Each meta graph's tags, in file order (tags as the file lists them).
    pub fn tag_sets(&self) -> Vec<Vec<String>> {
        self.proto.meta_graphs.iter().map(meta_tags).collect()
    }

    /// The first meta graph whose tags, as a set, equal `tags` (as TensorFlow's loader
    /// chooses).
    pub fn meta_graph(&self, tags: &[&str]) -> Result<&MetaGraphDef, Error> {
        let wanted: HashSet<&str> = tags.iter().copied().collect();
        self.proto
            .meta_graphs
            .iter()
            .find(|m| {
                let have: HashSet<&str> = m
                    .meta_info_def
                    .iter()
                    .flat_map(|i| i.tags.iter().map(String::as_str))
                    .collect();
                have == wanted
            })
            .ok_or_else(|| Error::NoMetaGraph {
                path: self.file.clone(),
                tags: sorted_tags(tags.iter().copied()),
                available: self.tag_sets(),
            })
    }

    /// Imports the meta graph tagged `tags` (see [`SavedModel::meta_graph`]) as a [`Model`].
    ///
    /// For a TF2 export, the captured inputs of each signature's function call are bound
    /// (see [`Model::captures`]): a captured variable gets its checkpoint key from
    /// `checkpoint_objects`, the `TrackableObjectGraph` stored under [`OBJECT_GRAPH_KEY`] in
    /// the variables checkpoint, whose node ids equal the SavedModel's object graph's. A TF1
    /// export needs none: its saver's restore op gives the keys. Errors name the file and
    /// the tag set; a capture that cannot be bound fails only when its signature is used.
    pub fn model(
        &self,
        tags: &[&str],
        checkpoint_objects: Option<&TrackableObjectGraph>,
    ) -> Result<Model, Error> {
        let meta = self.meta_graph(tags)?;
        let in_meta_graph = |error: Error| Error::InMetaGraph {
            path: self.file.clone(),
            tags: sorted_tags(tags.iter().copied()),
            error: Box::new(error),
        };
        let mut model = Model::from_meta_graph_def(meta).map_err(in_meta_graph)?;
        // Asset files (vocabularies) are in the SavedModel directory's assets/.
        model.dir = Some(self.dir.clone());
        if let Some(objects) = &meta.object_graph_def {
            bind_captures(&mut model, meta, objects, checkpoint_objects);
        }
        Ok(model)
    }
}

fn meta_tags(meta: &MetaGraphDef) -> Vec<String> {
    meta.meta_info_def
        .as_ref()
        .map(|i| i.tags.clone())
        .unwrap_or_default()
}

fn sorted_tags<'a>(tags: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut tags: Vec<String> = tags.map(str::to_owned).collect();
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// A signature's input or output, resolved to a tensor of the model's graph.
#[derive(Clone, Debug, PartialEq)]
pub struct SignatureTensor {
    /// The input or output key (`x`, `probs`).
    pub key: String,
    /// The tensor name the `TensorInfo` gives (`serving_default_x:0`).
    pub name: String,
    /// That tensor in the model's graph.
    pub output: Output,
    /// The dtype the `TensorInfo` declares.
    pub dtype: DataType,
    /// The shape the `TensorInfo` declares (`-1` for an unknown size); `None` for an unknown
    /// rank. An absent shape is a scalar, as TensorFlow reads it.
    pub shape: Option<Vec<i64>>,
}

/// A signature of a SavedModel (or a MetaGraphDef), with its tensors resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// The signature's key (`serving_default`).
    pub key: String,
    /// `tensorflow/serving/predict`, `.../classify` or `.../regress`.
    pub method_name: String,
    /// The inputs, sorted by key.
    pub inputs: Vec<SignatureTensor>,
    /// The outputs, sorted by key (the order a TF2 signature function returns them in).
    pub outputs: Vec<SignatureTensor>,
}

impl Signature {
    /// The input `name`: an input key, else the tensor name of an input (`x:0`, or `x` for
    /// output 0).
    pub fn input(&self, name: &str) -> Option<&SignatureTensor> {
        find_tensor(&self.inputs, name)
    }

    /// The output `name`: an output key, else the tensor name of an output.
    pub fn output(&self, name: &str) -> Option<&SignatureTensor> {
        find_tensor(&self.outputs, name)
    }
}

fn find_tensor<'a>(tensors: &'a [SignatureTensor], name: &str) -> Option<&'a SignatureTensor> {
    tensors.iter().find(|t| t.key == name).or_else(|| {
        let canonical = |s: &str| {
            if s.contains(':') {
                s.to_owned()
            } else {
                format!("{s}:0")
            }
        };
        let wanted = canonical(name);
        tensors.iter().find(|t| canonical(&t.name) == wanted)
    })
}

/// What a captured input of a TF2 signature's function call is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureBinding {
    /// A variable: its `VarHandleOp` in the main graph, read from the checkpoint under `key`.
    Variable {
        /// The `VarHandleOp` node.
        node: NodeId,
        /// The checkpoint key.
        key: String,
    },
    /// A constant: a `Const` of the main graph.
    Constant {
        /// The `Const` node.
        node: NodeId,
    },
}

/// One captured input of a TF2 signature's function call, as `bound_inputs` of the
/// SavedModel's object graph lists it (docs/format.md §8.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    /// The call node (`StatefulPartitionedCall`, `PartitionedCall`) in the main graph.
    pub call: NodeId,
    /// The function it calls (the signature wrapper).
    pub function: String,
    /// Which input of the call node is captured.
    pub input: usize,
    /// The object-graph node it is bound to.
    pub object: i32,
    /// What it is bound to, or why it could not be bound.
    pub binding: Result<CaptureBinding, String>,
}

/// Binds the captured inputs of every signature's function calls (docs/format.md §8.4,
/// "Resolving a captured input"), recording each in `model.captures` and giving each bound
/// variable its checkpoint key in `model.variables`.
fn bind_captures(
    model: &mut Model,
    meta: &MetaGraphDef,
    objects: &SavedObjectGraph,
    checkpoint_objects: Option<&TrackableObjectGraph>,
) {
    let library_args: HashMap<&str, usize> = meta
        .graph_def
        .iter()
        .filter_map(|g| g.library.as_ref())
        .flat_map(|l| l.function.iter())
        .filter_map(|f| f.signature.as_ref())
        .map(|s| (s.name.as_str(), s.input_arg.len()))
        .collect();
    // Keys bound so far, to report a variable two signatures bind differently.
    let mut bound: HashMap<NodeId, String> = HashMap::new();
    let mut all = BTreeMap::new();
    for (key, def) in &model.signatures {
        let mut calls: Vec<NodeId> = Vec::new();
        for info in def.outputs.values() {
            let Some(Encoding::Name(name)) = &info.encoding else {
                continue;
            };
            let Ok(output) = model.graph.parse_output(name) else {
                continue;
            };
            if !calls.contains(&output.node) {
                calls.push(output.node);
            }
        }
        let mut captures = Vec::new();
        for call in calls {
            let node = model.graph.node(call);
            let Some(function) = called_function(node) else {
                continue;
            };
            let Some(concrete) = objects.concrete_functions.get(function) else {
                continue;
            };
            let n_args = library_args
                .get(function)
                .copied()
                .unwrap_or(node.inputs.len());
            let first = n_args.checked_sub(concrete.bound_inputs.len());
            for (i, &object) in concrete.bound_inputs.iter().enumerate() {
                let input = first.map_or(i, |k| k + i);
                let binding = match first {
                    None => Err(format!(
                        "the function takes {n_args} arguments but {} captured inputs are bound",
                        concrete.bound_inputs.len()
                    )),
                    Some(_) if n_args != node.inputs.len() => Err(format!(
                        "the function takes {n_args} arguments, the node passes {}",
                        node.inputs.len()
                    )),
                    Some(_) => bind_one(model, node, input, object, objects, checkpoint_objects),
                };
                let binding = match binding {
                    Ok(CaptureBinding::Variable { node: var, key }) => {
                        match bound.get(&var) {
                            Some(other) if *other != key => Err(format!(
                                "variable {:?} is bound to checkpoint key {key:?} here and to {other:?} by another signature",
                                model.graph.node(var).name
                            )),
                            _ => {
                                bound.insert(var, key.clone());
                                Ok(CaptureBinding::Variable { node: var, key })
                            }
                        }
                    }
                    other => other,
                };
                captures.push(Capture {
                    call,
                    function: function.to_owned(),
                    input,
                    object,
                    binding,
                });
            }
        }
        if !captures.is_empty() {
            all.insert(key.clone(), captures);
        }
    }
    for (var, key) in bound {
        model.variables.insert(var, key);
        model.variable_slices.remove(&var);
    }
    model.captures = all;
}

/// The function a call node calls: attr `f` of `PartitionedCall` / `StatefulPartitionedCall`.
fn called_function(node: &Node) -> Option<&str> {
    if !matches!(
        node.op.as_str(),
        "PartitionedCall" | "StatefulPartitionedCall"
    ) {
        return None;
    }
    match node.attr("f")?.value.as_ref()? {
        Value::Func(f) => Some(f.name.as_str()),
        _ => None,
    }
}

/// What input `input` of `call`, bound to object-graph node `object`, is.
fn bind_one(
    model: &Model,
    call: &Node,
    input: usize,
    object: i32,
    objects: &SavedObjectGraph,
    checkpoint_objects: Option<&TrackableObjectGraph>,
) -> Result<CaptureBinding, String> {
    let saved = usize::try_from(object)
        .ok()
        .and_then(|i| objects.nodes.get(i))
        .ok_or_else(|| {
            format!(
                "the object graph has no node {object} (it has {})",
                objects.nodes.len()
            )
        })?;
    let source = call
        .inputs
        .get(input)
        .copied()
        .ok_or_else(|| format!("the node has {} inputs", call.inputs.len()))?;
    let source = skip_identities(&model.graph, source);
    let source_node = model
        .graph
        .get(source.node)
        .ok_or_else(|| format!("input node id {} is out of range", source.node))?;
    match &saved.kind {
        Some(Kind::Variable(_)) => {
            if !VARIABLE_OPS.contains(&source_node.op.as_str()) {
                return Err(format!(
                    "object {object} is a variable, but the input is node {:?} ({})",
                    source_node.name, source_node.op
                ));
            }
            let checkpoint = checkpoint_objects.ok_or_else(|| {
                format!(
                    "variable {:?}: the checkpoint has no object graph ({OBJECT_GRAPH_KEY}) to give its key",
                    source_node.name
                )
            })?;
            let node = usize::try_from(object)
                .ok()
                .and_then(|i| checkpoint.nodes.get(i))
                .ok_or_else(|| {
                    format!(
                        "variable {:?}: the checkpoint's object graph has no node {object} (it has {}); the checkpoint does not hold this variable",
                        source_node.name,
                        checkpoint.nodes.len()
                    )
                })?;
            let key = node
                .attributes
                .iter()
                .find(|a| a.name == VARIABLE_VALUE)
                .map(|a| a.checkpoint_key.clone())
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    format!(
                        "variable {:?}: node {object} of the checkpoint's object graph has no {VARIABLE_VALUE} attribute; the checkpoint does not hold this variable",
                        source_node.name
                    )
                })?;
            Ok(CaptureBinding::Variable {
                node: source.node,
                key,
            })
        }
        Some(Kind::Constant(constant)) => {
            if source_node.op != "Const" || source_node.name != constant.operation {
                return Err(format!(
                    "object {object} is the constant {:?}, but the input is node {:?} ({})",
                    constant.operation, source_node.name, source_node.op
                ));
            }
            Ok(CaptureBinding::Constant { node: source.node })
        }
        Some(Kind::Resource(_)) => Err(format!(
            "object {object} is a resource (such as a lookup table, filled by the init op) captured as node {:?}; captured resources are not supported",
            source_node.name
        )),
        other => Err(format!(
            "object {object} is {}, which a signature cannot capture here",
            kind_name(other.as_ref())
        )),
    }
}

fn kind_name(kind: Option<&Kind>) -> &'static str {
    match kind {
        None => "an object of no kind",
        Some(Kind::UserObject(_)) => "a user object",
        Some(Kind::Asset(_)) => "an asset",
        Some(Kind::Function(_)) => "a function",
        Some(Kind::Variable(_)) => "a variable",
        Some(Kind::BareConcreteFunction(_)) => "a concrete function",
        Some(Kind::Constant(_)) => "a constant",
        Some(Kind::Resource(_)) => "a resource",
        Some(Kind::CapturedTensor(_)) => "a captured tensor",
    }
}

impl Model {
    /// The signature `key` (from the MetaGraphDef's `signature_def`), with its inputs and
    /// outputs resolved to tensors of the graph, after checking what running it needs: the
    /// functions its outputs call exist and none calls itself, and (TF2) every captured input
    /// is bound. Errors name the signature, and the key, node or function at fault.
    pub fn signature(&self, key: &str) -> Result<Signature, Error> {
        let def = self
            .signatures
            .get(key)
            .ok_or_else(|| Error::UnknownSignature {
                name: key.to_owned(),
                available: self.signatures.keys().cloned().collect(),
                suggestions: close_names(key, self.signatures.keys().map(String::as_str)),
            })?;
        let tensors = |kind: &'static str, map: &BTreeMap<String, TensorInfo>| {
            map.iter()
                .map(|(k, info)| self.signature_tensor(key, kind, k, info))
                .collect::<Result<Vec<_>, _>>()
        };
        let inputs = tensors("input", &def.inputs)?;
        let outputs = tensors("output", &def.outputs)?;
        if let Some(captures) = self.captures.get(key) {
            if let Some((capture, reason)) = captures
                .iter()
                .find_map(|c| c.binding.as_ref().err().map(|r| (c, r)))
            {
                return Err(Error::Capture {
                    signature: key.to_owned(),
                    node: self
                        .graph
                        .get(capture.call)
                        .map_or_else(String::new, |n| n.name.clone()),
                    function: capture.function.clone(),
                    input: capture.input,
                    object: capture.object,
                    reason: reason.clone(),
                });
            }
        }
        let fetches: Vec<Output> = outputs.iter().map(|t| t.output).collect();
        let feeds: Vec<Output> = inputs.iter().map(|t| t.output).collect();
        self.check_calls(&fetches, &feeds)
            .map_err(|error| Error::InSignature {
                signature: key.to_owned(),
                error: Box::new(error),
            })?;
        Ok(Signature {
            key: key.to_owned(),
            method_name: def.method_name.clone(),
            inputs,
            outputs,
        })
    }

    fn signature_tensor(
        &self,
        signature: &str,
        kind: &'static str,
        key: &str,
        info: &TensorInfo,
    ) -> Result<SignatureTensor, Error> {
        let name = match &info.encoding {
            Some(Encoding::Name(name)) => name,
            Some(Encoding::CooSparse(_)) => {
                return Err(Error::BadSignature {
                    signature: signature.to_owned(),
                    reason: format!("{kind} {key:?} is a sparse tensor, which is not supported"),
                })
            }
            Some(Encoding::CompositeTensor(_)) => {
                return Err(Error::BadSignature {
                    signature: signature.to_owned(),
                    reason: format!(
                        "{kind} {key:?} is a composite tensor (ragged, sparse, ...), which is not supported"
                    ),
                })
            }
            None => {
                return Err(Error::BadSignature {
                    signature: signature.to_owned(),
                    reason: format!("{kind} {key:?} names no tensor"),
                })
            }
        };
        let output = self
            .graph
            .parse_output(name)
            .map_err(|error| Error::SignatureTensor {
                signature: signature.to_owned(),
                kind,
                key: key.to_owned(),
                error: Box::new(error),
            })?;
        let shape = match &info.tensor_shape {
            Some(s) if s.unknown_rank => None,
            Some(s) => Some(s.dim.iter().map(|d| d.size).collect()),
            None => Some(Vec::new()),
        };
        Ok(SignatureTensor {
            key: key.to_owned(),
            name: name.clone(),
            output,
            dtype: DataType::try_from(info.dtype).unwrap_or(DataType::DtInvalid),
            shape,
        })
    }

    /// Checks the function calls computing `fetches` from `feeds`: every called function is
    /// in the library and imported, and no function calls itself, directly or not. Walks
    /// only what would run (each body pruned to its outputs and control outputs), without
    /// recursion.
    pub fn check_calls(&self, fetches: &[Output], feeds: &[Output]) -> Result<(), Error> {
        let order = self.graph.prune(fetches, feeds)?;
        // Functions fully checked, and the current chain of calls being walked.
        let mut done: HashSet<String> = HashSet::new();
        for id in order {
            let node = self.graph.node(id);
            for callee in self.callees(node) {
                self.check_function(&callee, &mut done)
                    .map_err(|error| Error::InNode {
                        node: node.name.clone(),
                        error: Box::new(error),
                    })?;
            }
        }
        Ok(())
    }

    /// The library functions `node` calls: its op when that is a function's name, and its
    /// function-valued attributes (`f`, `then_branch`, `body`, `branches`, ...).
    fn callees(&self, node: &Node) -> Vec<String> {
        let mut names = Vec::new();
        if self.functions.contains_key(&node.op) || self.function_errors.contains_key(&node.op) {
            names.push(node.op.clone());
        }
        for value in node.attrs.values() {
            match &value.value {
                Some(Value::Func(f)) => names.push(f.name.clone()),
                Some(Value::List(list)) => names.extend(list.func.iter().map(|f| f.name.clone())),
                _ => {}
            }
        }
        names
    }

    /// Depth-first walk of the calls from `root`, with an explicit stack.
    fn check_function(&self, root: &str, done: &mut HashSet<String>) -> Result<(), Error> {
        if done.contains(root) {
            return Ok(());
        }
        let mut stack = vec![self.enter(root)?];
        let mut on_stack: HashSet<String> = HashSet::from([root.to_owned()]);
        while let Some(frame) = stack.last_mut() {
            let Some((node, callee)) = frame.calls.get(frame.next).cloned() else {
                on_stack.remove(&frame.function);
                done.insert(frame.function.clone());
                stack.pop();
                continue;
            };
            frame.next += 1;
            if on_stack.contains(&callee) {
                let start = stack.iter().position(|f| f.function == callee).unwrap_or(0);
                let mut chain: Vec<String> = stack
                    .iter()
                    .skip(start)
                    .map(|f| f.function.clone())
                    .collect();
                chain.push(callee.clone());
                return Err(Error::RecursiveFunction {
                    function: callee,
                    chain,
                });
            }
            if done.contains(&callee) {
                continue;
            }
            let caller = frame.function.clone();
            let entered = self.enter(&callee).map_err(|error| Error::InFunction {
                function: caller,
                error: Box::new(Error::InNode {
                    node,
                    error: Box::new(error),
                }),
            })?;
            on_stack.insert(callee);
            stack.push(entered);
        }
        Ok(())
    }

    /// Function `name` about to be walked: the calls of the part of its body that runs.
    fn enter(&self, name: &str) -> Result<CallFrame, Error> {
        let f = self.function(name)?;
        let mut roots: Vec<Output> = f.outputs.clone();
        roots.extend(f.control_outputs.iter().map(|&id| Output::new(id, 0)));
        let order = f
            .body
            .prune(&roots, &[])
            .map_err(|error| Error::InFunction {
                function: name.to_owned(),
                error: Box::new(error),
            })?;
        let calls = order
            .into_iter()
            .flat_map(|id| {
                let node = f.body.node(id);
                self.callees(node)
                    .into_iter()
                    .map(|c| (node.name.clone(), c))
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(CallFrame {
            function: name.to_owned(),
            calls,
            next: 0,
        })
    }
}

/// A function being walked by [`Model::check_function`].
struct CallFrame {
    function: String,
    /// (calling node, called function), for the part of the body that runs.
    calls: Vec<(String, String)>,
    /// The next call to visit.
    next: usize,
}
