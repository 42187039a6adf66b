//! `Pack` (stack along a new axis) and `Unpack` (split along an axis, dropping it).

use ckpt_graph::Node;

use crate::ops::{
    expect, kernel, normalize_axis, num_elements, op_bail, take_inputs, BuildCtx, Built, Kernel,
    OpError,
};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Pack {
        axis: node.attr_i64_or("axis", 0)?,
    })
}

pub(crate) fn build_unpack(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Unpack {
        axis: node.attr_i64_or("axis", 0)?,
    })
}

#[derive(Debug)]
struct Pack {
    axis: i64,
}

impl Kernel for Pack {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let Some(first) = inputs.first() else {
            op_bail!("Pack needs at least one input");
        };
        let dtype = first.dtype();
        let out = with_dtype!(dtype, T => {
            let parts = inputs
                .into_iter()
                .enumerate()
                .map(|(i, v)| expect::<T>(v, &format!("input {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            T::wrap(pack(&parts, self.axis)?)
        }, else op_bail!("unsupported dtype {dtype}"));
        Ok(vec![out])
    }
}

pub(crate) fn pack<T: Datum>(parts: &[TensorBuf<T>], axis: i64) -> Result<TensorBuf<T>, OpError> {
    let Some(first) = parts.first() else {
        op_bail!("Pack needs at least one input");
    };
    let shape = first.shape();
    if let Some((i, p)) = parts.iter().enumerate().find(|(_, p)| p.shape() != shape) {
        op_bail!(
            "input {i} has shape {:?}, input 0 has {:?}",
            p.shape(),
            shape
        );
    }
    let axis = normalize_axis(axis, shape.len() + 1)?;
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis..].iter().product();
    let mut out_shape = shape.to_vec();
    out_shape.insert(axis, parts.len());
    let mut data = Vec::with_capacity(num_elements(&out_shape)?);
    for o in 0..outer {
        for p in parts {
            data.extend_from_slice(&p.data()[o * inner..(o + 1) * inner]);
        }
    }
    Ok(TensorBuf::from_parts(out_shape, data))
}

#[derive(Debug)]
struct Unpack {
    axis: i64,
}

impl Kernel for Unpack {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let dtype = x.dtype();
        with_dtype!(dtype, T => {
            let t = expect::<T>(x, "value")?;
            Ok(unpack(&t, self.axis)?.into_iter().map(T::wrap).collect())
        }, else op_bail!("unsupported dtype {dtype}"))
    }
}

fn unpack<T: Datum>(t: &TensorBuf<T>, axis: i64) -> Result<Vec<TensorBuf<T>>, OpError> {
    let shape = t.shape();
    let axis = normalize_axis(axis, shape.len())?;
    let n = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape = shape.to_vec();
    out_shape.remove(axis);
    Ok((0..n)
        .map(|k| {
            let mut data = Vec::with_capacity(outer * inner);
            for o in 0..outer {
                let start = (o * n + k) * inner;
                data.extend_from_slice(&t.data()[start..start + inner]);
            }
            TensorBuf::from_parts(out_shape.clone(), data)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_matches_reference_on_every_axis() -> Result<(), OpError> {
        let shape = [2usize, 3];
        let parts: Vec<TensorBuf<i32>> = (0..4)
            .map(|p| TensorBuf::from_parts(shape.to_vec(), (0..6).map(|i| p * 100 + i).collect()))
            .collect();
        for axis in [0i64, 1, 2, -1] {
            let out = pack(&parts, axis)?;
            let a = normalize_axis(axis, 3)?;
            let mut expect_shape = shape.to_vec();
            expect_shape.insert(a, 4);
            assert_eq!(out.shape(), expect_shape.as_slice());
            // Reference: out[idx] = parts[idx[a]][idx without a].
            let (s0, s1, s2) = (expect_shape[0], expect_shape[1], expect_shape[2]);
            for i in 0..s0 {
                for j in 0..s1 {
                    for k in 0..s2 {
                        let idx = [i, j, k];
                        let p = idx[a];
                        let rest: Vec<usize> = (0..3).filter(|&d| d != a).map(|d| idx[d]).collect();
                        let want = parts[p].data()[rest[0] * 3 + rest[1]];
                        assert_eq!(out.data()[(i * s1 + j) * s2 + k], want);
                    }
                }
            }
            let back = unpack(&out, axis)?;
            assert_eq!(back, parts);
        }
        Ok(())
    }

    #[test]
    fn pack_scalars_and_mismatches() -> Result<(), OpError> {
        let parts = vec![
            TensorBuf::from_parts(vec![], vec![1i64]),
            TensorBuf::from_parts(vec![], vec![2i64]),
        ];
        let out = pack(&parts, 0)?;
        assert_eq!(out.shape(), &[2]);
        assert_eq!(out.data(), &[1, 2]);
        let bad = vec![
            TensorBuf::from_parts(vec![1], vec![1i64]),
            TensorBuf::from_parts(vec![], vec![2i64]),
        ];
        assert_eq!(
            pack(&bad, 0).err(),
            Some(OpError("input 1 has shape [], input 0 has [1]".into()))
        );
        Ok(())
    }
}
