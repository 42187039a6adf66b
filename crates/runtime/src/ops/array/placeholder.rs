//! `Placeholder` (must be fed) and `PlaceholderWithDefault` (its input unless fed).

use ckpt_graph::Node;

use super::identity::identity;
use crate::ops::{dtype_attr, kernel, BuildCtx, Built, FnKernel};
use crate::Error;

/// Reached only for placeholders the session was not told would be fed.
pub(crate) fn build(node: &Node, ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let shape = ctx.model.declared_shape(node).ok().flatten();
    Err(Error::UnfedPlaceholder {
        name: node.name.clone(),
        hint: describe(node, shape.as_deref()),
    })
}

pub(crate) fn build_with_default(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(identity))
}

/// " (float32, shape [-1,784])" plus a hint when the name suggests what to feed; `shape` is
/// the declared shape (`Model::declared_shape`), left out when unknown.
pub(crate) fn describe(node: &Node, shape: Option<&[i64]>) -> String {
    let dtype = dtype_attr(node, "dtype")
        .map(|d| d.name().to_string())
        .unwrap_or_else(|_| "?".to_string());
    let shape = match shape {
        Some(dims) => {
            let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            format!(", shape [{}]", dims.join(","))
        }
        None => String::new(),
    };
    format!(" ({dtype}{shape}){}", hint(&node.name))
}

/// Advice for placeholders that look like dropout or training switches.
pub(crate) fn hint(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.contains("keep_prob") || lower.contains("keep_rate") || lower.contains("keepprob") {
        "; it looks like a dropout keep probability: feed 1.0 for inference"
    } else if lower.contains("training") || lower.contains("is_train") || lower.contains("phase") {
        "; it looks like a training flag: feed false for inference"
    } else if lower.contains("dropout") || lower.contains("rate") {
        "; it looks like a dropout rate: feed 0.0 for inference"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn hints_name_dropout_and_training_inputs() {
        assert!(hint("keep_prob").contains("1.0"));
        assert!(hint("Placeholder_is_training").contains("false"));
        assert!(hint("dropout_rate").contains("0.0"));
        assert_eq!(hint("x"), "");
    }
}
