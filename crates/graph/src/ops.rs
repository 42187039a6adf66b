//! Output argument lists of the ops the runtime knows, for flattening function-body inputs.
//!
//! In a FunctionDef body, an input names another node's output by *output argument* and an
//! index within it (`split:output:1`, `bn:batch_mean:0`), while a GraphDef and this crate's IR
//! number a node's outputs flatly (`split:1`, `bn:1`). Flattening needs each op's output
//! argument list and the sizes of its list arguments, which come from the node's attributes.
//! The table below was copied from TensorFlow 2.21's op registry (`OpDef.output_arg`).

use ckpt_proto::op_def::ArgDef;

use crate::node::Node;

/// How many tensors one output argument of an op stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutArity {
    /// Exactly one tensor.
    One,
    /// `N` tensors, `N` being the node's int attribute of this name (`Unpack`'s `num`).
    Number(&'static str),
    /// One tensor per entry of the node's list(type) attribute of this name (`If`'s `Tout`).
    TypeList(&'static str),
}

use OutArity::{Number, One, TypeList};

type OutArgs = &'static [(&'static str, OutArity)];

/// Sorted by op name for binary search (a unit test checks the order).
static OP_OUTPUTS: &[(&str, OutArgs)] = &[
    ("Abs", &[("y", One)]),
    ("Add", &[("z", One)]),
    ("AddN", &[("sum", One)]),
    ("AddV2", &[("z", One)]),
    ("ArgMax", &[("output", One)]),
    ("ArgMin", &[("output", One)]),
    ("Assign", &[("output_ref", One)]),
    ("AssignVariableOp", &[]),
    ("AvgPool", &[("output", One)]),
    ("BatchMatMulV2", &[("output", One)]),
    ("BiasAdd", &[("output", One)]),
    ("Case", &[("output", TypeList("Tout"))]),
    ("Cast", &[("y", One)]),
    ("CheckNumerics", &[("output", One)]),
    ("Concat", &[("output", One)]),
    ("ConcatV2", &[("output", One)]),
    ("Const", &[("output", One)]),
    ("Conv2D", &[("output", One)]),
    ("DepthwiseConv2dNative", &[("output", One)]),
    ("Div", &[("z", One)]),
    ("Einsum", &[("output", One)]),
    ("Elu", &[("activations", One)]),
    ("EmptyTensorList", &[("handle", One)]),
    ("Enter", &[("output", One)]),
    ("Equal", &[("z", One)]),
    ("Exit", &[("output", One)]),
    ("Exp", &[("y", One)]),
    ("ExpandDims", &[("output", One)]),
    ("Fill", &[("output", One)]),
    ("Floor", &[("y", One)]),
    ("FloorDiv", &[("z", One)]),
    (
        "FusedBatchNorm",
        &[
            ("y", One),
            ("batch_mean", One),
            ("batch_variance", One),
            ("reserve_space_1", One),
            ("reserve_space_2", One),
        ],
    ),
    (
        "FusedBatchNormV2",
        &[
            ("y", One),
            ("batch_mean", One),
            ("batch_variance", One),
            ("reserve_space_1", One),
            ("reserve_space_2", One),
        ],
    ),
    (
        "FusedBatchNormV3",
        &[
            ("y", One),
            ("batch_mean", One),
            ("batch_variance", One),
            ("reserve_space_1", One),
            ("reserve_space_2", One),
            ("reserve_space_3", One),
        ],
    ),
    ("Gather", &[("output", One)]),
    ("GatherV2", &[("output", One)]),
    ("Greater", &[("z", One)]),
    ("GreaterEqual", &[("z", One)]),
    ("Identity", &[("output", One)]),
    ("IdentityN", &[("output", TypeList("T"))]),
    ("If", &[("output", TypeList("Tout"))]),
    ("LeakyRelu", &[("activations", One)]),
    ("Less", &[("z", One)]),
    ("LessEqual", &[("z", One)]),
    ("Log", &[("y", One)]),
    ("LogSoftmax", &[("logsoftmax", One)]),
    ("LogicalAnd", &[("z", One)]),
    ("LogicalNot", &[("y", One)]),
    ("LogicalOr", &[("z", One)]),
    ("LoopCond", &[("output", One)]),
    ("MatMul", &[("product", One)]),
    ("Max", &[("output", One)]),
    ("MaxPool", &[("output", One)]),
    ("MaxPoolV2", &[("output", One)]),
    ("Maximum", &[("z", One)]),
    ("Mean", &[("output", One)]),
    ("Merge", &[("output", One), ("value_index", One)]),
    ("Min", &[("output", One)]),
    ("Minimum", &[("z", One)]),
    ("MirrorPad", &[("output", One)]),
    ("Mul", &[("z", One)]),
    ("Neg", &[("y", One)]),
    ("NextIteration", &[("output", One)]),
    ("NoOp", &[]),
    ("NotEqual", &[("z", One)]),
    ("OnesLike", &[("y", One)]),
    ("OptionalFromValue", &[("optional", One)]),
    ("OptionalNone", &[("optional", One)]),
    ("Pack", &[("output", One)]),
    ("Pad", &[("output", One)]),
    ("PadV2", &[("output", One)]),
    ("PartitionedCall", &[("output", TypeList("Tout"))]),
    ("Placeholder", &[("output", One)]),
    ("PlaceholderV2", &[("output", One)]),
    ("PlaceholderWithDefault", &[("output", One)]),
    ("Pow", &[("z", One)]),
    ("PreventGradient", &[("output", One)]),
    ("Prod", &[("output", One)]),
    ("RandomStandardNormal", &[("output", One)]),
    ("RandomUniform", &[("output", One)]),
    ("Range", &[("output", One)]),
    ("Rank", &[("output", One)]),
    ("ReadVariableOp", &[("value", One)]),
    ("RealDiv", &[("z", One)]),
    ("Relu", &[("activations", One)]),
    ("Relu6", &[("activations", One)]),
    ("Reshape", &[("output", One)]),
    ("RestoreV2", &[("tensors", TypeList("dtypes"))]),
    ("Rsqrt", &[("y", One)]),
    ("SaveV2", &[]),
    ("Select", &[("output", One)]),
    ("SelectV2", &[("output", One)]),
    ("Selu", &[("activations", One)]),
    ("Shape", &[("output", One)]),
    ("ShapeN", &[("output", Number("N"))]),
    ("Sigmoid", &[("y", One)]),
    ("Size", &[("output", One)]),
    ("Slice", &[("output", One)]),
    ("Snapshot", &[("output", One)]),
    ("Softmax", &[("softmax", One)]),
    ("Softplus", &[("activations", One)]),
    ("Split", &[("output", Number("num_split"))]),
    ("SplitV", &[("output", Number("num_split"))]),
    ("Sqrt", &[("y", One)]),
    ("Square", &[("y", One)]),
    ("SquaredDifference", &[("z", One)]),
    ("Squeeze", &[("output", One)]),
    ("StatefulPartitionedCall", &[("output", TypeList("Tout"))]),
    ("StatelessCase", &[("output", TypeList("Tout"))]),
    ("StatelessIf", &[("output", TypeList("Tout"))]),
    ("StatelessWhile", &[("output", TypeList("T"))]),
    ("StopGradient", &[("output", One)]),
    ("StridedSlice", &[("output", One)]),
    ("Sub", &[("z", One)]),
    ("Sum", &[("output", One)]),
    ("Switch", &[("output_false", One), ("output_true", One)]),
    ("Tanh", &[("y", One)]),
    ("TensorArrayCloseV3", &[]),
    ("TensorArrayConcatV3", &[("value", One), ("lengths", One)]),
    ("TensorArrayGatherV3", &[("value", One)]),
    ("TensorArrayReadV3", &[("value", One)]),
    ("TensorArrayScatterV3", &[("flow_out", One)]),
    ("TensorArraySizeV3", &[("size", One)]),
    ("TensorArraySplitV3", &[("flow_out", One)]),
    ("TensorArrayV3", &[("handle", One), ("flow", One)]),
    ("TensorArrayWriteV3", &[("flow_out", One)]),
    ("TensorListElementShape", &[("element_shape", One)]),
    ("TensorListFromTensor", &[("output_handle", One)]),
    ("TensorListGetItem", &[("item", One)]),
    ("TensorListLength", &[("length", One)]),
    (
        "TensorListPopBack",
        &[("output_handle", One), ("tensor", One)],
    ),
    ("TensorListPushBack", &[("output_handle", One)]),
    ("TensorListReserve", &[("handle", One)]),
    ("TensorListSetItem", &[("output_handle", One)]),
    ("TensorListStack", &[("tensor", One)]),
    ("Tile", &[("output", One)]),
    ("TopKV2", &[("values", One), ("indices", One)]),
    ("Transpose", &[("y", One)]),
    ("TruncatedNormal", &[("output", One)]),
    ("Unique", &[("y", One), ("idx", One)]),
    ("Unpack", &[("output", Number("num"))]),
    ("VarHandleOp", &[("resource", One)]),
    ("Variable", &[("ref", One)]),
    ("VariableV2", &[("ref", One)]),
    ("While", &[("output", TypeList("T"))]),
    ("ZerosLike", &[("y", One)]),
];

/// The output arguments of `op`, in order, when the op is in the crate's table.
///
/// ```
/// use ckpt_graph::{op_outputs, OutArity};
/// assert_eq!(op_outputs("Mul"), Some(&[("z", OutArity::One)][..]));
/// assert_eq!(op_outputs("Unpack"), Some(&[("output", OutArity::Number("num"))][..]));
/// assert_eq!(op_outputs("NoSuchOp"), None);
/// ```
pub fn op_outputs(op: &str) -> Option<&'static [(&'static str, OutArity)]> {
    OP_OUTPUTS
        .binary_search_by(|(name, _)| (*name).cmp(op))
        .ok()
        .and_then(|i| OP_OUTPUTS.get(i))
        .map(|(_, args)| *args)
}

/// One output argument with its arity, from the static table or from an `OpDef`.
#[derive(Clone, Debug)]
pub(crate) struct OutArg {
    pub(crate) name: String,
    pub(crate) arity: ArgArity,
}

#[derive(Clone, Debug)]
pub(crate) enum ArgArity {
    One,
    Number(String),
    TypeList(String),
}

impl OutArg {
    pub(crate) fn from_static(args: &[(&str, OutArity)]) -> Vec<OutArg> {
        args.iter()
            .map(|&(name, arity)| OutArg {
                name: name.to_owned(),
                arity: match arity {
                    One => ArgArity::One,
                    Number(a) => ArgArity::Number(a.to_owned()),
                    TypeList(a) => ArgArity::TypeList(a.to_owned()),
                },
            })
            .collect()
    }

    pub(crate) fn from_arg_defs(args: &[ArgDef]) -> Vec<OutArg> {
        args.iter()
            .map(|a| OutArg {
                name: a.name.clone(),
                arity: if !a.number_attr.is_empty() {
                    ArgArity::Number(a.number_attr.clone())
                } else if !a.type_list_attr.is_empty() {
                    ArgArity::TypeList(a.type_list_attr.clone())
                } else {
                    ArgArity::One
                },
            })
            .collect()
    }

    /// How many tensors this argument stands for on `node`.
    pub(crate) fn count(&self, node: &Node) -> Result<usize, crate::Error> {
        match &self.arity {
            ArgArity::One => Ok(1),
            ArgArity::Number(attr) => {
                let n = node.attr_i64(attr)?;
                usize::try_from(n).map_err(|_| crate::Error::BadAttr {
                    node: node.name.clone(),
                    op: node.op.clone(),
                    attr: attr.clone(),
                    reason: format!("is negative ({n}) but counts outputs"),
                })
            }
            ArgArity::TypeList(attr) => Ok(node.attr_dtypes(attr)?.len()),
        }
    }
}

/// Number of outputs of `node` when its op is in the table, from its attributes.
pub(crate) fn static_output_count(node: &Node) -> Option<Result<usize, crate::Error>> {
    let args = op_outputs(&node.op)?;
    let mut total = 0usize;
    for arg in OutArg::from_static(args) {
        match arg.count(node) {
            Ok(n) => total = total.saturating_add(n),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in OP_OUTPUTS.windows(2) {
            if let [a, b] = pair {
                assert!(a.0 < b.0, "{} must sort before {}", a.0, b.0);
            }
        }
    }

    #[test]
    fn lookups_find_multi_output_ops() {
        let bn = op_outputs("FusedBatchNormV3").map(|a| a.iter().map(|x| x.0).collect::<Vec<_>>());
        assert_eq!(
            bn.as_deref(),
            Some(
                &[
                    "y",
                    "batch_mean",
                    "batch_variance",
                    "reserve_space_1",
                    "reserve_space_2",
                    "reserve_space_3"
                ][..]
            )
        );
        assert_eq!(
            op_outputs("Switch"),
            Some(&[("output_false", One), ("output_true", One)][..])
        );
        assert_eq!(op_outputs("If"), Some(&[("output", TypeList("Tout"))][..]));
    }
}
