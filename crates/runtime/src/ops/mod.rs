//! Kernels, one file per op family, and the table from op name to kernel builder.
//!
//! A builder reads and validates a node's attributes when the plan is built and returns a
//! [`Built`]: most often a [`Kernel`] that the executor calls on every run with owned inputs
//! (so it may reuse a uniquely held input buffer for its output).

use std::fmt;

use ckpt_graph::{Function, Model, Node};
use ckpt_proto::DataType;

use crate::value::{Datum, TensorBuf};
use crate::{DType, Error, Value};

pub(crate) mod array;
pub(crate) mod broadcast;
pub(crate) mod control;
pub(crate) mod math;
pub(crate) mod nn;
pub(crate) mod parallel;
pub(crate) mod tensor_array;
pub(crate) mod tensor_list;
pub(crate) mod text;

/// A kernel failure; the executor adds the node's name and op.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpError(pub String);

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpError {}

impl From<Error> for OpError {
    fn from(e: Error) -> OpError {
        OpError(e.to_string())
    }
}

/// `Err(OpError(format!(...)))`.
macro_rules! op_bail {
    ($($arg:tt)*) => {
        return Err($crate::ops::OpError(format!($($arg)*)))
    };
}
pub(crate) use op_bail;

/// One op's computation, configured at plan time.
pub(crate) trait Kernel: Send + Sync + fmt::Debug {
    /// Computes the outputs from live inputs.
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError>;

    /// Whether the outputs depend on nothing but the inputs, so that a node whose inputs are
    /// all constants may be evaluated once at plan time.
    fn is_pure(&self) -> bool {
        true
    }
}

/// What a builder makes of a node.
#[derive(Debug)]
pub(crate) enum Built {
    Kernel(Box<dyn Kernel>),
    /// Outputs known at plan time (`Const`).
    Constant(Vec<Value>),
    /// A variable: its value comes from the checkpoint.
    Variable,
    /// `Switch`: forwards input 0 to output 0 when the predicate is false, to output 1 when it
    /// is true; the other output is dead. `force_false` routes to output 0 regardless.
    Switch {
        force_false: bool,
    },
    /// `Merge`: forwards its first live input and that input's index.
    Merge,
    /// A lookup table, built from its initializers or the checkpoint when the graph is
    /// loaded ([`text::table`]).
    Table,
    /// `While` / `StatelessWhile`: runs its body function while its cond function holds.
    While(Box<control::while_op::WhileLoop>),
}

pub(crate) fn kernel(k: impl Kernel + 'static) -> Result<Built, Error> {
    Ok(Built::Kernel(Box::new(k)))
}

/// What builders may consult besides the node itself.
#[derive(Debug)]
pub(crate) struct BuildCtx<'a> {
    /// The model, for its function library.
    pub model: &'a Model,
    /// Rewrite recognized dropout to identity (`SessionOptions::inference`).
    pub inference: bool,
    /// Fuse and fold in the plans of function bodies (not `SessionOptions::unoptimized`).
    pub optimize: bool,
    /// For each output index up to the highest one read, whether the plan reads it.
    pub used_outputs: &'a [bool],
    /// Inference mode routes this `Switch` to its false output whatever the predicate.
    pub force_false: bool,
    /// Nesting depth of function bodies (0 for the main graph).
    pub depth: usize,
    /// For a `LookupTable*` op, the table its first input holds, when it is one the plan
    /// built.
    pub table: Option<std::sync::Arc<text::table::Table>>,
    /// For each data input, its value when it is a constant of the plan (a `Const`, a
    /// variable, a folded result); `None` when it is computed at run time.
    pub const_inputs: &'a [Option<&'a Value>],
    /// Iterations a while loop may run ([`crate::SessionOptions::max_iterations`]).
    pub max_iterations: u64,
    /// Function bodies planned so far for this session.
    pub function_plans: &'a std::sync::atomic::AtomicUsize,
}

impl BuildCtx<'_> {
    /// The table `node` (a `LookupTable*` op) reads, or an error when its first input is not a
    /// table node of the main graph.
    pub(crate) fn table(&self, node: &Node) -> Result<std::sync::Arc<text::table::Table>, Error> {
        self.table.clone().ok_or_else(|| {
            node_error(
                node,
                "its table input is not a HashTableV2 or MutableHashTableV2 node of the main graph",
            )
        })
    }

    /// The library function `name`, called by `node`.
    pub(crate) fn function(&self, node: &Node, name: &str) -> Result<&Function, Error> {
        self.model
            .function(name)
            .map_err(|e| node_error(node, e.to_string()))
    }
}

pub(crate) type Builder = fn(&Node, &BuildCtx<'_>) -> Result<Built, Error>;

/// The op table: every op the executor supports, with its builder.
static OPS: &[(&str, Builder)] = &[
    // control flow
    ("Assert", control::assert::build),
    ("Enter", control::enter::build),
    ("Exit", control::exit::build),
    ("If", control::if_op::build),
    ("LoopCond", control::loop_cond::build),
    ("Merge", control::merge::build),
    ("NextIteration", control::next_iteration::build),
    ("NoOp", control::noop::build),
    ("PartitionedCall", control::call::build),
    ("RefEnter", control::enter::build),
    ("RefExit", control::exit::build),
    ("RefMerge", control::merge::build),
    ("RefNextIteration", control::next_iteration::build),
    ("RefSwitch", control::switch::build),
    ("StatefulPartitionedCall", control::call::build),
    ("StatelessIf", control::if_op::build),
    ("StatelessWhile", control::while_op::build),
    ("Switch", control::switch::build),
    ("While", control::while_op::build),
    // TensorArray (control flow v1)
    ("TensorArrayCloseV3", tensor_array::close::build),
    ("TensorArrayConcatV3", tensor_array::concat::build),
    ("TensorArrayGatherV3", tensor_array::gather::build),
    ("TensorArrayReadV3", tensor_array::read::build),
    ("TensorArrayScatterV3", tensor_array::scatter::build),
    ("TensorArraySizeV3", tensor_array::size::build),
    ("TensorArraySplitV3", tensor_array::split::build),
    ("TensorArrayV3", tensor_array::create::build),
    ("TensorArrayWriteV3", tensor_array::write::build),
    // TensorList (control flow v2)
    ("EmptyTensorList", tensor_list::empty::build),
    ("TensorListElementShape", tensor_list::element_shape::build),
    ("TensorListFromTensor", tensor_list::from_tensor::build),
    ("TensorListGetItem", tensor_list::get_item::build),
    ("TensorListLength", tensor_list::length::build),
    ("TensorListPopBack", tensor_list::pop_back::build),
    ("TensorListPushBack", tensor_list::push_back::build),
    ("TensorListReserve", tensor_list::reserve::build),
    ("TensorListSetItem", tensor_list::set_item::build),
    ("TensorListStack", tensor_list::stack::build),
    // arrays, shapes, variables
    ("BroadcastTo", array::tile::build_broadcast_to),
    ("Cast", array::cast::build),
    ("CheckNumerics", array::identity::build_check_numerics),
    ("Concat", array::concat::build_concat),
    ("ConcatV2", array::concat::build_concat_v2),
    ("Const", array::constant::build),
    ("EnsureShape", array::identity::build),
    ("ExpandDims", array::expand_dims::build),
    ("Fill", array::fill::build),
    ("Gather", array::gather::build_v1),
    ("GatherV2", array::gather::build),
    ("Identity", array::identity::build),
    ("IdentityN", array::identity::build_n),
    ("MirrorPad", array::pad::build_mirror),
    ("OnesLike", array::fill::build_ones_like),
    ("OneHot", array::one_hot::build),
    ("Pack", array::pack::build),
    ("Pad", array::pad::build),
    ("PadV2", array::pad::build_v2),
    ("Placeholder", array::placeholder::build),
    (
        "PlaceholderWithDefault",
        array::placeholder::build_with_default,
    ),
    ("RandomUniform", array::random::build),
    ("Range", array::range::build),
    ("Rank", array::shape::build_rank),
    ("ReadVariableOp", array::variable::build_read),
    ("ResourceGather", array::gather::build_resource),
    ("Reshape", array::reshape::build),
    ("ReverseSequence", array::reverse_sequence::build),
    ("Shape", array::shape::build),
    ("ShapeN", array::shape::build_shape_n),
    ("Size", array::shape::build_size),
    ("Slice", array::strided_slice::build_slice),
    ("Snapshot", array::identity::build),
    ("Split", array::split::build),
    ("SplitV", array::split::build_v),
    ("Squeeze", array::squeeze::build),
    (
        "StatelessRandomGetAlg",
        array::stateless_random::build_key_counter,
    ),
    (
        "StatelessRandomGetKeyCounter",
        array::stateless_random::build_key_counter,
    ),
    (
        "StatelessRandomGetKeyCounterAlg",
        array::stateless_random::build_key_counter,
    ),
    ("StatelessRandomNormal", array::stateless_random::build),
    ("StatelessRandomNormalV2", array::stateless_random::build),
    ("StatelessRandomUniform", array::stateless_random::build),
    ("StatelessRandomUniformInt", array::stateless_random::build),
    (
        "StatelessRandomUniformIntV2",
        array::stateless_random::build,
    ),
    ("StatelessRandomUniformV2", array::stateless_random::build),
    ("StatelessTruncatedNormal", array::stateless_random::build),
    ("StatelessTruncatedNormalV2", array::stateless_random::build),
    ("StopGradient", array::identity::build),
    ("StridedSlice", array::strided_slice::build),
    ("Tile", array::tile::build),
    ("Transpose", array::transpose::build),
    ("Unpack", array::pack::build_unpack),
    ("VarHandleOp", array::variable::build),
    ("Variable", array::variable::build),
    ("VariableV2", array::variable::build),
    ("Where", array::where_op::build),
    ("ZerosLike", array::fill::build_zeros_like),
    // math
    ("Abs", math::unary::build),
    ("All", math::all_any::build),
    ("Any", math::all_any::build),
    ("Add", math::binary::build),
    ("AddN", math::binary::build_add_n),
    ("AddV2", math::binary::build),
    ("BatchMatMul", math::batch_matmul::build),
    ("BatchMatMulV2", math::batch_matmul::build),
    ("BatchMatMulV3", math::batch_matmul::build),
    ("BiasAdd", math::bias_add::build),
    ("Bucketize", math::bucketize::build),
    ("ClipByValue", math::clip::build),
    ("Cumprod", math::cumulative::build),
    ("Cumsum", math::cumulative::build),
    ("Div", math::binary::build),
    ("DivNoNan", math::binary::build),
    ("Equal", math::compare::build),
    ("Einsum", math::einsum::build),
    ("Erf", math::erf::build),
    ("Erfc", math::erf::build),
    ("Exp", math::unary::build),
    ("Floor", math::unary::build),
    ("FloorDiv", math::binary::build),
    ("FloorMod", math::binary::build),
    ("Greater", math::compare::build),
    ("GreaterEqual", math::compare::build),
    ("Less", math::compare::build),
    ("LessEqual", math::compare::build),
    ("Log", math::unary::build),
    ("LogicalAnd", math::compare::build_logical),
    ("LogicalNot", math::compare::build_logical),
    ("LogicalOr", math::compare::build_logical),
    ("MatMul", math::matmul::build),
    ("Max", math::reduce::build),
    ("Maximum", math::binary::build),
    ("Mean", math::reduce::build),
    ("Min", math::reduce::build),
    ("Minimum", math::binary::build),
    ("Mul", math::binary::build),
    ("Neg", math::unary::build),
    ("NotEqual", math::compare::build),
    ("Pow", math::binary::build),
    ("Prod", math::reduce::build),
    ("RealDiv", math::binary::build),
    ("Reciprocal", math::unary::build),
    ("Rsqrt", math::unary::build),
    ("Select", math::select::build),
    ("SelectV2", math::select::build),
    ("Sqrt", math::unary::build),
    ("Square", math::unary::build),
    ("SquaredDifference", math::binary::build),
    ("Sub", math::binary::build),
    ("Sum", math::reduce::build),
    // strings and lookup tables
    ("HashTable", text::table::build),
    ("HashTableV2", text::table::build),
    ("InitializeTable", text::table_init::build),
    ("InitializeTableFromTextFile", text::table_init::build),
    ("InitializeTableFromTextFileV2", text::table_init::build),
    ("InitializeTableV2", text::table_init::build),
    ("LookupTableFind", text::lookup_find::build),
    ("LookupTableFindV2", text::lookup_find::build),
    ("LookupTableImportV2", text::table_init::build),
    ("LookupTableSize", text::lookup_size::build),
    ("LookupTableSizeV2", text::lookup_size::build),
    ("MutableHashTable", text::table::build),
    ("MutableHashTableV2", text::table::build),
    ("RegexReplace", text::regex_replace::build),
    ("StaticRegexReplace", text::regex_replace::build_static),
    ("StringJoin", text::string_join::build),
    ("StringSplit", text::string_split::build),
    ("StringSplitV2", text::string_split::build_v2),
    ("StringToHashBucketFast", text::hash_bucket::build),
    // nn
    ("ArgMax", nn::arg_minmax::build),
    ("ArgMin", nn::arg_minmax::build),
    ("AvgPool", nn::pool::build),
    ("Conv2D", nn::conv2d::build),
    ("DepthwiseConv2dNative", nn::depthwise::build),
    ("Elu", nn::activation::build),
    ("FusedBatchNorm", nn::batch_norm::build),
    ("FusedBatchNormV2", nn::batch_norm::build),
    ("FusedBatchNormV3", nn::batch_norm::build),
    ("LeakyRelu", nn::activation::build),
    ("LogSoftmax", nn::softmax::build),
    ("MaxPool", nn::pool::build),
    ("Relu", nn::activation::build),
    ("Relu6", nn::activation::build),
    ("Sigmoid", nn::activation::build),
    ("Softmax", nn::softmax::build),
    ("Softplus", nn::activation::build),
    ("Tanh", nn::activation::build),
    ("TopK", nn::top_k::build),
    ("TopKV2", nn::top_k::build),
];

/// The builder for `op`, if the executor supports it (function-call nodes, whose op is a
/// library function's name, are handled by the plan).
pub(crate) fn builder(op: &str) -> Option<Builder> {
    OPS.iter().find(|(name, _)| *name == op).map(|&(_, b)| b)
}

/// Names of all supported ops, sorted.
pub fn supported_ops() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = OPS.iter().map(|&(name, _)| name).collect();
    names.sort_unstable();
    names
}

/// An error about a node found while building the plan.
pub(crate) fn node_error(node: &Node, message: impl Into<String>) -> Error {
    Error::Node {
        node: node.name.clone(),
        op: node.op.clone(),
        message: message.into(),
    }
}

/// A type attribute as a runtime dtype; an error names types the executor cannot hold.
pub(crate) fn dtype_attr(node: &Node, name: &str) -> Result<DType, Error> {
    held_dtype(node, name, node.attr_dtype(name)?)
}

/// [`dtype_attr`], with `default` standing in for an absent attribute.
pub(crate) fn dtype_attr_or(node: &Node, name: &str, default: DataType) -> Result<DType, Error> {
    held_dtype(node, name, node.attr_dtype_or(name, default)?)
}

fn held_dtype(node: &Node, name: &str, dt: DataType) -> Result<DType, Error> {
    crate::compute_dtype(dt).ok_or_else(|| {
        node_error(
            node,
            format!("attribute {name:?}: dtype {dt:?} is not supported"),
        )
    })
}

/// A kernel defined by a plain function of its inputs.
pub(crate) struct FnKernel(pub fn(Vec<Value>) -> Result<Vec<Value>, OpError>);

impl fmt::Debug for FnKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnKernel")
    }
}

impl Kernel for FnKernel {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        (self.0)(inputs)
    }
}

/// Checks the input count and returns the inputs as an array.
pub(crate) fn take_inputs<const N: usize>(inputs: Vec<Value>) -> Result<[Value; N], OpError> {
    let n = inputs.len();
    inputs
        .try_into()
        .map_err(|_| OpError(format!("expected {N} inputs, got {n}")))
}

/// The `f32` tensor in `v`, or an error naming what it is instead.
pub(crate) fn expect_f32(v: Value, what: &str) -> Result<TensorBuf<f32>, OpError> {
    expect::<f32>(v, what)
}

pub(crate) fn expect<T: Datum>(v: Value, what: &str) -> Result<TensorBuf<T>, OpError> {
    T::take(v).map_err(|v| {
        OpError(format!(
            "{what} has dtype {}, expected {}",
            v.dtype(),
            T::DTYPE
        ))
    })
}

/// An integer tensor (int32 or int64) as `i64`s: shapes, axes, paddings, indices.
pub(crate) fn int_values(v: &Value, what: &str) -> Result<Vec<i64>, OpError> {
    match v {
        Value::I32(t) => Ok(t.data().iter().map(|&x| i64::from(x)).collect()),
        Value::I64(t) => Ok(t.data().to_vec()),
        other => op_bail!("{what} must be int32 or int64, got {}", other.dtype()),
    }
}

/// A scalar (or one-element) integer tensor.
pub(crate) fn int_scalar(v: &Value, what: &str) -> Result<i64, OpError> {
    let vals = int_values(v, what)?;
    match vals.as_slice() {
        [x] => Ok(*x),
        _ => op_bail!("{what} must be a scalar, got shape {:?}", v.shape()),
    }
}

/// Resolves a possibly negative `axis` against `rank` (`-rank <= axis < rank`).
pub(crate) fn normalize_axis(axis: i64, rank: usize) -> Result<usize, OpError> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        op_bail!("axis {axis} is out of range for rank {rank}");
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// A dimension list as `usize`, rejecting negative sizes.
pub(crate) fn dims_from(values: &[i64], what: &str) -> Result<Vec<usize>, OpError> {
    values
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| OpError(format!("{what} has negative dimension {d}")))
        })
        .collect()
}

/// Element count of `shape`, or an error when it overflows.
pub(crate) fn num_elements(shape: &[usize]) -> Result<usize, OpError> {
    crate::value::checked_num_elements(shape)
        .ok_or_else(|| OpError(format!("shape {shape:?} is too large")))
}

pub(crate) use crate::memory::output_len;

/// Bytes one element of `dtype` takes in a [`Value`] (a string's `Vec<u8>` header for
/// strings, whose contents come on top), for [`output_len`].
pub(crate) fn element_bytes(dtype: DType) -> usize {
    dtype
        .element_size()
        .unwrap_or(std::mem::size_of::<Vec<u8>>())
}

/// `[a,b,c]`, the way error messages print shapes.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}

/// What kernel tests build nodes with.
#[cfg(test)]
pub(crate) mod test_util {
    use ckpt_graph::ckpt_proto::{GraphDef, NodeDef};
    use ckpt_graph::{Model, Node};

    use super::{BuildCtx, Built, Kernel};
    use crate::Error;

    /// A model of one `NoOp`, for the build context.
    pub(crate) fn empty_model() -> Result<Model, Error> {
        let def = GraphDef {
            node: vec![NodeDef {
                name: "noop".into(),
                op: "NoOp".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        Ok(Model::from_graph_def(&def)?)
    }

    /// Builds `node` with `builder`, expecting a kernel.
    pub(crate) fn build_kernel(
        builder: super::Builder,
        node: &Node,
    ) -> Result<Box<dyn Kernel>, Error> {
        let model = empty_model()?;
        let ctx = BuildCtx {
            model: &model,
            inference: false,
            optimize: true,
            used_outputs: &[true],
            force_false: false,
            depth: 0,
            max_iterations: 1000,
            const_inputs: &[],
            function_plans: &std::sync::atomic::AtomicUsize::new(0),
            table: None,
        };
        match builder(node, &ctx)? {
            Built::Kernel(k) => Ok(k),
            other => Err(Error::Internal(format!("expected a kernel, got {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_table_has_no_duplicates() {
        let names = supported_ops();
        for pair in names.windows(2) {
            assert_ne!(pair[0], pair[1], "duplicate op in the table");
        }
        assert!(builder("Conv2D").is_some());
        assert!(builder("NotAnOp").is_none());
    }
}
