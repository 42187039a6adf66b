//! Control flow: TF1 `Switch`/`Merge` with dead-branch semantics and TF1 while loops
//! (`Enter`, `Merge`, `Switch`, `LoopCond`, `NextIteration`, `Exit`, whose frames the plan
//! compiles), TF2 `If`/`StatelessIf` and `While`/`StatelessWhile` running functions as nested
//! plans, function calls, and `NoOp`.

pub(crate) mod assert;
pub(crate) mod call;
pub(crate) mod enter;
pub(crate) mod exit;
pub(crate) mod if_op;
pub(crate) mod loop_cond;
pub(crate) mod merge;
pub(crate) mod next_iteration;
pub(crate) mod noop;
pub(crate) mod switch;
pub(crate) mod while_op;
