//! Arithmetic, comparisons, matrix products and reductions.

pub(crate) mod all_any;
pub(crate) mod batch_matmul;
pub(crate) mod bias_add;
pub(crate) mod binary;
pub(crate) mod bucketize;
pub(crate) mod clip;
pub(crate) mod compare;
pub(crate) mod cumulative;
pub(crate) mod einsum;
pub(crate) mod erf;
pub(crate) mod matmul;
pub(crate) mod reduce;
pub(crate) mod select;
pub(crate) mod unary;
