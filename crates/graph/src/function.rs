//! Library functions (`FunctionDef`) as graphs of their own.
//!
//! A function body is imported like a GraphDef, with three differences:
//!
//! - Each input argument becomes a node of op `_Arg` named after the argument, with attrs
//!   `index` (int, its position) and `T` (its dtype). These nodes come first: argument `i`
//!   is node `i` of the body.
//! - A body input is `arg` (argument `arg`, output 0), `node:out_arg:k` (output `k` within
//!   output argument `out_arg` of `node`) or `^node`. `node:out_arg:k` is flattened to
//!   `node`'s output `offset(out_arg) + k`, where the offset sums the sizes of the output
//!   arguments before `out_arg`. Sizes come from the op's output argument list (the crate's
//!   [`op_outputs`](crate::op_outputs) table, then the model's op list, then the signatures of
//!   the library's functions when the op calls one); list arguments are sized by the node's
//!   `number_attr` (int) or `type_list_attr` (list(type)) attribute. For an op found in none
//!   of these, `k` is taken as the flat index, which is right for every op with a single
//!   output argument. `node:k` (GraphDef style) is accepted as flat index `k`.
//! - The function's outputs are its signature's output arguments, resolved through `ret`.
//!
//! Not supported (the function fails to import, with a message): input or output arguments
//! that are lists (`number_attr` / `type_list_attr` on the signature's own args), which
//! TensorFlow 2.x's traced functions never have.

use std::collections::{BTreeMap, HashMap};

use ckpt_proto::attr_value::Value;
use ckpt_proto::{AttrValue, FunctionDef, OpDef};

use crate::graph::{InputRef, NodeId, Output};
use crate::node::Node;
use crate::ops::{op_outputs, OutArg};
use crate::{Error, Graph};
use ckpt_suggest::close_names;

/// The op of the nodes that stand for a function's arguments.
pub const ARG_OP: &str = "_Arg";

/// One FunctionDef of a graph's library, as its own [`Graph`].
#[derive(Clone, Debug)]
pub struct Function {
    /// The signature's name, which `If`'s `then_branch` and friends refer to.
    pub name: String,
    /// Argument `i` is node `i`, of op `_Arg`, named after the argument, with attrs
    /// `index` = i and `T` = its dtype.
    pub body: Graph,
    /// The signature's input argument names, in order.
    pub arg_names: Vec<String>,
    /// The tensors the function returns, in the signature's output argument order.
    pub outputs: Vec<Output>,
    /// The signature's output argument names, in order.
    pub output_names: Vec<String>,
    /// Nodes the function must run even though no output depends on them
    /// (`control_output` resolved through `control_ret`), such as stateful ops.
    pub control_outputs: Vec<NodeId>,
    /// The FunctionDef's own attributes (`_noinline`, ...).
    pub attrs: BTreeMap<String, AttrValue>,
}

/// Where output argument lists come from when flattening `node:out_arg:k`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpResolver<'a> {
    /// OpDefs from a MetaGraphDef's `stripped_op_list`.
    pub(crate) op_defs: Option<&'a BTreeMap<String, OpDef>>,
    /// Signatures of the library's functions, by name.
    pub(crate) signatures: Option<&'a BTreeMap<String, OpDef>>,
}

impl OpResolver<'_> {
    fn out_args(&self, op: &str) -> Option<Vec<OutArg>> {
        if let Some(args) = op_outputs(op) {
            return Some(OutArg::from_static(args));
        }
        [self.op_defs, self.signatures]
            .into_iter()
            .flatten()
            .find_map(|defs| defs.get(op))
            .map(|def| OutArg::from_arg_defs(&def.output_arg))
    }
}

/// Why a body tensor name did not resolve.
enum Unresolved {
    Dangling(String),
    Malformed(String),
}

impl Function {
    /// Converts one FunctionDef on its own. Body inputs naming outputs of ops outside the
    /// crate's table are flattened as if the op had a single output argument; use
    /// [`Model`](crate::Model), which also consults the graph's op list and library.
    pub fn from_function_def(def: &FunctionDef) -> Result<Function, Error> {
        Function::convert(def, OpResolver::default(), None)
    }

    pub(crate) fn convert(
        def: &FunctionDef,
        resolver: OpResolver<'_>,
        defaults: Option<&BTreeMap<String, OpDef>>,
    ) -> Result<Function, Error> {
        let signature = def.signature.as_ref().ok_or_else(|| Error::BadFunction {
            function: String::new(),
            reason: "the FunctionDef has no signature".to_owned(),
        })?;
        let name = signature.name.clone();
        let bad = |reason: String| Error::BadFunction {
            function: name.clone(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("the signature has an empty name".to_owned()));
        }

        let mut args = Vec::with_capacity(signature.input_arg.len());
        for (i, arg) in signature.input_arg.iter().enumerate() {
            if !arg.number_attr.is_empty() || !arg.type_list_attr.is_empty() {
                return Err(bad(format!(
                    "input argument {:?} is a list of tensors, which is not supported",
                    arg.name
                )));
            }
            let dtype = if arg.r#type != 0 {
                Value::Type(arg.r#type)
            } else {
                match def.attr.get(&arg.type_attr).and_then(|v| v.value.as_ref()) {
                    Some(Value::Type(t)) => Value::Type(*t),
                    // A polymorphic signature: the type is known only per call.
                    _ => Value::Placeholder(arg.type_attr.clone()),
                }
            };
            let index = i64::try_from(i).map_err(|_| bad("too many arguments".to_owned()))?;
            let mut node = Node::new(arg.name.clone(), ARG_OP);
            node.attrs.insert(
                "index".to_owned(),
                AttrValue {
                    value: Some(Value::I(index)),
                },
            );
            node.attrs
                .insert("T".to_owned(), AttrValue { value: Some(dtype) });
            args.push(node);
        }
        let arg_names: Vec<String> = args.iter().map(|n| n.name.clone()).collect();

        let in_function = |error: Error| Error::InFunction {
            function: name.clone(),
            error: Box::new(error),
        };
        let body = Graph::build(
            args,
            def.node_def.iter().cloned().map(Ok),
            defaults,
            |nodes, index, node, input| {
                resolve(resolver, nodes, index, input, true).map_err(|e| match e {
                    Unresolved::Dangling(missing) => Error::DanglingInput {
                        node: node.name.clone(),
                        input: input.to_owned(),
                        suggestions: close_names(&missing, index.keys().map(String::as_str)),
                    },
                    Unresolved::Malformed(reason) => Error::MalformedInput {
                        node: node.name.clone(),
                        input: input.to_owned(),
                        reason,
                    },
                })
            },
        )
        .map_err(in_function)?;

        let index = name_index(&body);
        let mut outputs = Vec::with_capacity(signature.output_arg.len());
        let mut output_names = Vec::with_capacity(signature.output_arg.len());
        for arg in &signature.output_arg {
            if !arg.number_attr.is_empty() || !arg.type_list_attr.is_empty() {
                return Err(bad(format!(
                    "output argument {:?} is a list of tensors, which is not supported",
                    arg.name
                )));
            }
            let spec = def
                .ret
                .get(&arg.name)
                .ok_or_else(|| bad(format!("output {:?} has no entry in `ret`", arg.name)))?;
            let output = match resolve(resolver, &body.nodes, &index, spec, false) {
                Ok(InputRef::Data(o)) => o,
                Ok(InputRef::Control(_)) => {
                    return Err(bad(format!(
                        "output {:?} returns {spec:?}, a control edge",
                        arg.name
                    )))
                }
                Err(Unresolved::Dangling(missing)) => {
                    return Err(bad(format!(
                        "output {:?} returns {spec:?}, but there is no node {missing:?}",
                        arg.name
                    )))
                }
                Err(Unresolved::Malformed(reason)) => {
                    return Err(bad(format!(
                        "output {:?} returns {spec:?}: {reason}",
                        arg.name
                    )))
                }
            };
            outputs.push(output);
            output_names.push(arg.name.clone());
        }

        let mut control_outputs = Vec::with_capacity(signature.control_output.len());
        for out in &signature.control_output {
            let node_name = def.control_ret.get(out).unwrap_or(out);
            let id = body.find(node_name).ok_or_else(|| {
                bad(format!(
                    "control output {out:?} names {node_name:?}, which is not in the body"
                ))
            })?;
            control_outputs.push(id);
        }

        Ok(Function {
            name,
            body,
            arg_names,
            outputs,
            output_names,
            control_outputs,
            attrs: def.attr.clone(),
        })
    }

    /// The `_Arg` node of argument `i`.
    pub fn arg(&self, i: usize) -> Option<NodeId> {
        (i < self.arg_names.len()).then_some(i)
    }
}

fn name_index(graph: &Graph) -> HashMap<String, NodeId> {
    graph
        .nodes
        .iter()
        .enumerate()
        .map(|(id, n)| (n.name.clone(), id))
        .collect()
}

/// Resolves a body tensor name: `arg`, `node:out_arg:k`, `node:k`, or (when `allow_control`)
/// `^node`.
fn resolve(
    resolver: OpResolver<'_>,
    nodes: &[Node],
    index: &HashMap<String, NodeId>,
    spec: &str,
    allow_control: bool,
) -> Result<InputRef, Unresolved> {
    let find = |name: &str| {
        index
            .get(name)
            .copied()
            .ok_or_else(|| Unresolved::Dangling(name.to_owned()))
    };
    if let Some(name) = spec.strip_prefix('^') {
        if !allow_control {
            return Err(Unresolved::Malformed(
                "a control edge is not a tensor".into(),
            ));
        }
        if name.is_empty() || name.contains(':') {
            return Err(Unresolved::Malformed("expected \"^node\"".into()));
        }
        return find(name).map(InputRef::Control);
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let output = match parts.as_slice() {
        [name] if !name.is_empty() => Output::new(find(name)?, 0),
        [name, k] if !name.is_empty() && is_index(k) => Output::new(find(name)?, parse_index(k)?),
        [name, out_arg] if !name.is_empty() && !out_arg.is_empty() => {
            let id = find(name)?;
            Output::new(id, flat_index(resolver, nodes, id, out_arg, 0)?)
        }
        [name, out_arg, k] if !name.is_empty() && !out_arg.is_empty() && is_index(k) => {
            let id = find(name)?;
            let k = parse_index(k)?;
            Output::new(id, flat_index(resolver, nodes, id, out_arg, k)?)
        }
        _ => {
            return Err(Unresolved::Malformed(
                "expected \"arg\", \"node:output_arg:index\" or \"^node\"".into(),
            ))
        }
    };
    Ok(InputRef::Data(output))
}

fn is_index(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_index(s: &str) -> Result<usize, Unresolved> {
    s.parse()
        .map_err(|_| Unresolved::Malformed(format!("output index {s} is too large")))
}

/// The flat output index of `out_arg:k` on node `id`.
fn flat_index(
    resolver: OpResolver<'_>,
    nodes: &[Node],
    id: NodeId,
    out_arg: &str,
    k: usize,
) -> Result<usize, Unresolved> {
    let Some(producer) = nodes.get(id) else {
        return Err(Unresolved::Malformed(format!("node id {id} out of range")));
    };
    let Some(args) = resolver.out_args(&producer.op) else {
        // Unknown op: assume one output argument, so `k` is the flat index.
        return Ok(k);
    };
    let mut offset = 0usize;
    for arg in &args {
        let count = arg
            .count(producer)
            .map_err(|e| Unresolved::Malformed(e.to_string()))?;
        if arg.name == out_arg {
            if k >= count {
                return Err(Unresolved::Malformed(format!(
                    "output argument {out_arg:?} of {:?} ({}) has {count} tensor(s), index {k} is out of range",
                    producer.name, producer.op
                )));
            }
            return offset
                .checked_add(k)
                .ok_or_else(|| Unresolved::Malformed("output index overflows".into()));
        }
        offset = offset.saturating_add(count);
    }
    let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
    Err(Unresolved::Malformed(format!(
        "op {} has no output argument {out_arg:?} (it has {names:?})",
        producer.op
    )))
}
