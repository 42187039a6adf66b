//! `Switch(data, pred)`: output 0 (`output_false`) carries `data` when `pred` is false,
//! output 1 (`output_true`) when it is true; the other output is dead. The executor does the
//! routing; this file validates the node and evaluates predicates.

use ckpt_graph::Node;

use crate::ops::{op_bail, BuildCtx, Built, OpError};
use crate::{Error, Value};

pub(crate) fn build(_node: &Node, ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    Ok(Built::Switch {
        force_false: ctx.force_false,
    })
}

/// A `Switch` predicate: a scalar bool.
pub(crate) fn predicate(v: &Value) -> Result<bool, OpError> {
    match v.as_bool() {
        Some(&[b]) if v.shape().is_empty() => Ok(b),
        _ => op_bail!(
            "pred must be a scalar bool, got {} of shape {:?}",
            v.dtype(),
            v.shape()
        ),
    }
}

/// An `If` condition, by TensorFlow's rules: a scalar is true when non-zero (non-empty for
/// strings); any other tensor is true when it has elements.
pub(crate) fn truthy(v: &Value) -> bool {
    if !v.shape().is_empty() {
        return !v.is_empty();
    }
    match v {
        Value::Str(t) => t.data().first().is_some_and(|s| !s.is_empty()),
        other => other.get_f64(0).is_some_and(|x| x != 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates() -> Result<(), Error> {
        assert!(predicate(&Value::scalar(true)).is_ok_and(|b| b));
        assert_eq!(
            predicate(&Value::scalar(1.0f32)).err(),
            Some(OpError(
                "pred must be a scalar bool, got float32 of shape []".into()
            ))
        );
        assert_eq!(
            predicate(&Value::new(vec![1], vec![true])?).err(),
            Some(OpError(
                "pred must be a scalar bool, got bool of shape [1]".into()
            ))
        );
        assert!(truthy(&Value::scalar(2i32)));
        assert!(!truthy(&Value::scalar(0.0f32)));
        assert!(!truthy(&Value::scalar(Vec::<u8>::new())));
        assert!(truthy(&Value::new(vec![1], vec![false])?));
        assert!(!truthy(&Value::new(vec![0], Vec::<bool>::new())?));
        Ok(())
    }
}
