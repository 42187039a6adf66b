//! `ReverseSequence(input, seq_lengths)`: for each index `b` along `batch_dim`, the first
//! `seq_lengths[b]` entries along `seq_dim` in reverse order, the rest as they are. This is how
//! `bidirectional_dynamic_rnn` runs its backward direction over sequences of different lengths.

use ckpt_graph::Node;

use crate::ops::{
    int_values, kernel, node_error, op_bail, take_inputs, BuildCtx, Built, Kernel, OpError,
};
use crate::value::{map_any, Datum, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let seq_dim = node.attr_i64("seq_dim")?;
    let batch_dim = node.attr_i64_or("batch_dim", 0)?;
    if seq_dim == batch_dim {
        return Err(node_error(
            node,
            format!("seq_dim == batch_dim == {seq_dim}"),
        ));
    }
    kernel(ReverseSequence { seq_dim, batch_dim })
}

#[derive(Debug)]
struct ReverseSequence {
    seq_dim: i64,
    batch_dim: i64,
}

impl Kernel for ReverseSequence {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [input, lengths] = take_inputs(inputs)?;
        let shape = input.shape().to_vec();
        let rank = shape.len() as i64;
        let dim = |d: i64, what: &str| -> Result<usize, OpError> {
            if d < 0 || d >= rank {
                op_bail!("{what} {d} is out of range for an input of rank {rank}");
            }
            Ok(d as usize)
        };
        let (seq_dim, batch_dim) = (
            dim(self.seq_dim, "seq_dim")?,
            dim(self.batch_dim, "batch_dim")?,
        );
        let lengths = int_values(&lengths, "seq_lengths")?;
        if lengths.len() != shape[batch_dim] {
            op_bail!(
                "len(seq_lengths) != input.dims({batch_dim}), ({} vs. {})",
                lengths.len(),
                shape[batch_dim]
            );
        }
        let lengths: Vec<usize> = lengths
            .iter()
            .enumerate()
            .map(|(b, &l)| match usize::try_from(l) {
                Ok(l) if l <= shape[seq_dim] => Ok(l),
                _ => Err(OpError(format!(
                    "seq_lengths({b}) must be in [0, {}], got {l}",
                    shape[seq_dim]
                ))),
            })
            .collect::<Result<_, _>>()?;
        let out = map_any!(&input, t => Datum::wrap(reverse(t, seq_dim, batch_dim, &lengths)),
            else op_bail!("cannot reverse a {}", input.kind()));
        Ok(vec![out])
    }
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn reverse<T: Clone>(
    t: &TensorBuf<T>,
    seq_dim: usize,
    batch_dim: usize,
    lengths: &[usize],
) -> TensorBuf<T> {
    let shape = t.shape();
    let st = strides(shape);
    let data = t.data();
    let out: Vec<T> = (0..data.len())
        .map(|i| {
            let b = (i / st[batch_dim]) % shape[batch_dim];
            let s = (i / st[seq_dim]) % shape[seq_dim];
            let len = lengths[b];
            if s < len {
                data[i - s * st[seq_dim] + (len - 1 - s) * st[seq_dim]].clone()
            } else {
                data[i].clone()
            }
        })
        .collect();
    TensorBuf::from_parts(shape.to_vec(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Element-by-element reference over explicit coordinates.
    fn reference(
        shape: &[usize],
        data: &[i32],
        seq_dim: usize,
        batch_dim: usize,
        lengths: &[usize],
    ) -> Vec<i32> {
        let st = strides(shape);
        let mut out = vec![0; data.len()];
        for (i, o) in out.iter_mut().enumerate() {
            let mut coords: Vec<usize> = (0..shape.len()).map(|d| (i / st[d]) % shape[d]).collect();
            let len = lengths[coords[batch_dim]];
            if coords[seq_dim] < len {
                coords[seq_dim] = len - 1 - coords[seq_dim];
            }
            let src: usize = coords.iter().zip(&st).map(|(c, s)| c * s).sum();
            *o = data[src];
        }
        out
    }

    #[test]
    fn matches_reference_on_odd_shapes() -> Result<(), OpError> {
        for (shape, seq_dim, batch_dim) in [
            (vec![3usize, 6, 2], 1usize, 0usize),
            (vec![7, 3], 0, 1),
            (vec![2, 1, 5, 3], 2, 3),
            (vec![4, 0, 2], 1, 0),
            (vec![1, 17], 1, 0),
        ] {
            let n: usize = shape.iter().product();
            let data: Vec<i32> = (0..n as i32).collect();
            let batch = shape[batch_dim];
            let lengths: Vec<usize> = (0..batch)
                .map(|b| (b * 5 + 1) % (shape[seq_dim] + 1))
                .collect();
            let t = TensorBuf::from_parts(shape.clone(), data.clone());
            let got = reverse(&t, seq_dim, batch_dim, &lengths);
            assert_eq!(
                got.data(),
                &reference(&shape, &data, seq_dim, batch_dim, &lengths)[..],
                "{shape:?}"
            );
        }
        let k = ReverseSequence {
            seq_dim: 1,
            batch_dim: 0,
        };
        let x = Value::new(vec![2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
        let out = k.run(vec![x.clone(), Value::new(vec![2], vec![3i64, 2])?])?;
        assert_eq!(out[0].as_f32(), Some(&[3.0, 2.0, 1.0, 5.0, 4.0, 6.0][..]));
        let err = k
            .run(vec![x.clone(), Value::new(vec![2], vec![4i64, 2])?])
            .err();
        assert_eq!(
            err,
            Some(OpError("seq_lengths(0) must be in [0, 3], got 4".into()))
        );
        let err = k.run(vec![x, Value::new(vec![1], vec![1i32])?]).err();
        assert!(err.is_some_and(|e| e.0.contains("len(seq_lengths)")));
        Ok(())
    }
}
