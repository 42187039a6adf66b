//! Arithmetic, comparisons, matrix products and reductions.

pub(crate) mod all_any;
pub(crate) mod bias_add;
pub(crate) mod binary;
pub(crate) mod compare;
pub(crate) mod matmul;
pub(crate) mod reduce;
pub(crate) mod select;
pub(crate) mod unary;
