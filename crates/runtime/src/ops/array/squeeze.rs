//! `Squeeze`: drops size-1 dimensions (all of them, or those in `squeeze_dims`).

use ckpt_graph::Node;

use crate::ops::{kernel, normalize_axis, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let axes = if node.has_attr("squeeze_dims") {
        node.attr_ints("squeeze_dims")?
    } else {
        node.attr_ints_or("axis", &[])?
    };
    kernel(Squeeze { axes })
}

#[derive(Debug)]
struct Squeeze {
    axes: Vec<i64>,
}

impl Kernel for Squeeze {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let shape = squeezed(x.shape(), &self.axes)?;
        Ok(vec![x.reshape(shape)?])
    }
}

fn squeezed(shape: &[usize], axes: &[i64]) -> Result<Vec<usize>, OpError> {
    let mut drop = vec![false; shape.len()];
    if axes.is_empty() {
        for (d, &n) in drop.iter_mut().zip(shape) {
            *d = n == 1;
        }
    } else {
        for &a in axes {
            let a = normalize_axis(a, shape.len())?;
            if shape[a] != 1 {
                op_bail!(
                    "cannot squeeze dimension {a} of size {} (shape {shape:?})",
                    shape[a]
                );
            }
            drop[a] = true;
        }
    }
    Ok(shape
        .iter()
        .zip(&drop)
        .filter(|(_, &d)| !d)
        .map(|(&n, _)| n)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeeze_all_or_selected() -> Result<(), OpError> {
        assert_eq!(squeezed(&[1, 3, 1, 1], &[])?, vec![3]);
        assert_eq!(squeezed(&[1, 3, 1, 1], &[0, -1])?, vec![3, 1]);
        assert_eq!(
            squeezed(&[1, 3], &[1]).err(),
            Some(OpError(
                "cannot squeeze dimension 1 of size 3 (shape [1, 3])".into()
            ))
        );
        assert_eq!(
            squeezed(&[1, 3], &[2]).err(),
            Some(OpError("axis 2 is out of range for rank 2".into()))
        );
        assert_eq!(squeezed(&[], &[])?, Vec::<usize>::new());
        Ok(())
    }
}
