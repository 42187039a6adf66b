//! Shape manipulation, constants, placeholders and variables.

pub(crate) mod cast;
pub(crate) mod concat;
pub(crate) mod constant;
pub(crate) mod expand_dims;
pub(crate) mod fill;
pub(crate) mod gather;
pub(crate) mod identity;
pub(crate) mod one_hot;
pub(crate) mod pack;
pub(crate) mod pad;
pub(crate) mod placeholder;
pub(crate) mod random;
pub(crate) mod range;
pub(crate) mod reshape;
pub(crate) mod reverse_sequence;
pub(crate) mod shape;
pub(crate) mod split;
pub(crate) mod squeeze;
pub(crate) mod stateless_random;
pub(crate) mod strided_slice;
pub(crate) mod tile;
pub(crate) mod transpose;
pub(crate) mod variable;
pub(crate) mod where_op;
