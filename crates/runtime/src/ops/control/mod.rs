//! Control flow: TF1 `Switch`/`Merge` with dead-branch semantics, TF2 `If`/`StatelessIf`
//! running branch functions as nested plans, function calls, and `NoOp`.

pub(crate) mod assert;
pub(crate) mod call;
pub(crate) mod if_op;
pub(crate) mod merge;
pub(crate) mod noop;
pub(crate) mod switch;
