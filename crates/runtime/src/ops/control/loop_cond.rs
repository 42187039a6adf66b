//! `LoopCond(input)`: a while loop's predicate, a scalar bool passed through to the loop's
//! `Switch`es (which end the loop when it is false).

use ckpt_graph::Node;

use crate::ops::{kernel, take_inputs, BuildCtx, Built, FnKernel};
use crate::Error;

use super::switch::predicate;

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(|inputs| {
        let [pred] = take_inputs(inputs)?;
        predicate(&pred)?;
        Ok(vec![pred])
    }))
}

#[cfg(test)]
mod tests {
    use crate::ops::test_util::build_kernel;
    use crate::ops::OpError;
    use crate::Value;

    #[test]
    fn passes_a_scalar_bool_and_refuses_anything_else() -> Result<(), Box<dyn std::error::Error>> {
        let k = build_kernel(super::build, &ckpt_graph::Node::new("cond", "LoopCond"))?;
        assert_eq!(k.run(vec![Value::scalar(true)])?, vec![Value::scalar(true)]);
        assert_eq!(
            k.run(vec![Value::scalar(1i32)]).err(),
            Some(OpError(
                "pred must be a scalar bool, got int32 of shape []".into()
            ))
        );
        Ok(())
    }
}
