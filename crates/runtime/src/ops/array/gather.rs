//! `GatherV2` (with `axis` and `batch_dims`), `Gather` (axis 0) and `ResourceGather` (rows of
//! a resource variable, with `batch_dims`), as `gather_op.cc` and `resource_variable_ops.cc`
//! define them. An index out of range is an error, as on TensorFlow's CPU.

use ckpt_graph::Node;

use crate::ops::{
    expect, fmt_shape, int_scalar, int_values, kernel, op_bail, output_len, take_inputs, BuildCtx,
    Built, Kernel, OpError,
};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::{Error, Value};

/// `GatherV2(params, indices, axis)`.
pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Gather {
        form: Form::AxisInput,
        batch_dims: node.attr_i64_or("batch_dims", 0)?,
    })
}

/// `Gather(params, indices)`: axis 0, no batch dimensions.
pub(crate) fn build_v1(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Gather {
        form: Form::AxisZero,
        batch_dims: 0,
    })
}

/// `ResourceGather(resource, indices)`: the variable's value arrives as input 0.
pub(crate) fn build_resource(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Gather {
        form: Form::AxisZero,
        batch_dims: node.attr_i64_or("batch_dims", 0)?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// The axis is a third input.
    AxisInput,
    /// Gathers along axis `batch_dims` (0 unless batch dimensions are given).
    AxisZero,
}

#[derive(Debug)]
struct Gather {
    form: Form,
    batch_dims: i64,
}

impl Kernel for Gather {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let (params, indices, axis) = match self.form {
            Form::AxisInput => {
                let [params, indices, axis] = take_inputs(inputs)?;
                (params, indices, Some(int_scalar(&axis, "axis")?))
            }
            Form::AxisZero => {
                let [params, indices] = take_inputs(inputs)?;
                (params, indices, None)
            }
        };
        let idx = int_values(&indices, "indices")?;
        let spec = GatherSpec::new(params.shape(), indices.shape(), axis, self.batch_dims)?;
        let dtype = params.dtype();
        let out = with_dtype!(dtype, T => T::wrap(gather(&expect::<T>(params, "params")?, &idx, &spec)?), else op_bail!("unsupported dtype {dtype}"));
        Ok(vec![out])
    }
}

/// A gather's geometry: `out[b, o, j, i] = params[b, o, indices[b, j], i]`.
#[derive(Debug, PartialEq)]
struct GatherSpec {
    batch: usize,
    outer: usize,
    /// Size of the gathered axis.
    n: usize,
    inner: usize,
    /// Indices per batch.
    per_batch: usize,
    out_shape: Vec<usize>,
}

impl GatherSpec {
    /// `axis` is `None` for the forms that gather along the first non-batch axis.
    fn new(
        params: &[usize],
        indices: &[usize],
        axis: Option<i64>,
        batch_dims: i64,
    ) -> Result<GatherSpec, OpError> {
        let (p_rank, i_rank) = (params.len() as i64, indices.len() as i64);
        let shapes = || {
            format!(
                "params {} and indices {}",
                fmt_shape(params),
                fmt_shape(indices)
            )
        };
        let b = if batch_dims < 0 {
            batch_dims + i_rank
        } else {
            batch_dims
        };
        if b < 0 || b > i_rank {
            op_bail!(
                "batch_dims {batch_dims} is out of range for indices of rank {i_rank} ({})",
                shapes()
            );
        }
        let axis = axis.unwrap_or(b);
        let a = if axis < 0 { axis + p_rank } else { axis };
        if a < 0 || a >= p_rank {
            op_bail!("axis {axis} is out of range for {}", shapes());
        }
        if b > a {
            op_bail!("batch_dims {b} must be at most the axis {a} ({})", shapes());
        }
        let (a, b) = (a as usize, b as usize);
        if params[..b] != indices[..b] {
            op_bail!(
                "the first {b} dimensions of {} must be equal (batch_dims {b})",
                shapes()
            );
        }
        let mut out_shape = params[..a].to_vec();
        out_shape.extend_from_slice(&indices[b..]);
        out_shape.extend_from_slice(&params[a + 1..]);
        output_len(&out_shape, 8)?;
        Ok(GatherSpec {
            batch: params[..b].iter().product(),
            outer: params[b..a].iter().product(),
            n: params[a],
            inner: params[a + 1..].iter().product(),
            per_batch: indices[b..].iter().product(),
            out_shape,
        })
    }
}

fn gather<T: Datum>(
    params: &TensorBuf<T>,
    idx: &[i64],
    spec: &GatherSpec,
) -> Result<TensorBuf<T>, OpError> {
    let GatherSpec {
        batch,
        outer,
        n,
        inner,
        per_batch,
        ..
    } = *spec;
    let src = params.data();
    let mut data = Vec::with_capacity(output_len(&spec.out_shape, std::mem::size_of::<T>())?);
    for b in 0..batch {
        let batch_idx = &idx[b * per_batch..(b + 1) * per_batch];
        for o in 0..outer {
            for (j, &i) in batch_idx.iter().enumerate() {
                let Some(i) = usize::try_from(i).ok().filter(|&i| i < n) else {
                    op_bail!(
                        "indices[{}] = {i} is not in [0, {n}) (params shape {})",
                        b * per_batch + j,
                        fmt_shape(params.shape())
                    );
                };
                let start = ((b * outer + o) * n + i) * inner;
                data.extend_from_slice(&src[start..start + inner]);
            }
        }
    }
    Ok(TensorBuf::from_parts(spec.out_shape.clone(), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(shape: &[usize]) -> TensorBuf<i32> {
        let n: usize = shape.iter().product();
        TensorBuf::from_parts(shape.to_vec(), (0..n as i32).collect())
    }

    fn run(
        params: &[usize],
        idx: &[i64],
        idx_shape: &[usize],
        axis: i64,
        batch_dims: i64,
    ) -> Result<TensorBuf<i32>, OpError> {
        let spec = GatherSpec::new(params, idx_shape, Some(axis), batch_dims)?;
        gather(&iota(params), idx, &spec)
    }

    /// Reference: visit every output coordinate and read the input element it names.
    fn reference(
        params: &[usize],
        idx: &[i64],
        idx_shape: &[usize],
        a: usize,
        b: usize,
    ) -> Vec<i32> {
        let out_shape: Vec<usize> = params[..a]
            .iter()
            .chain(&idx_shape[b..])
            .chain(&params[a + 1..])
            .copied()
            .collect();
        let n: usize = out_shape.iter().product();
        let strides = |s: &[usize]| {
            let mut st = vec![1usize; s.len()];
            for d in (0..s.len().saturating_sub(1)).rev() {
                st[d] = st[d + 1] * s[d + 1];
            }
            st
        };
        let (ps, is) = (strides(params), strides(idx_shape));
        (0..n)
            .map(|flat| {
                let mut coord = vec![0usize; out_shape.len()];
                let mut rem = flat;
                for d in (0..out_shape.len()).rev() {
                    coord[d] = rem % out_shape[d];
                    rem /= out_shape[d];
                }
                // indices coordinate: batch dims, then the gathered block.
                let k = idx_shape.len() - b;
                let mut ic: Vec<usize> = coord[..b].to_vec();
                ic.extend_from_slice(&coord[a..a + k]);
                let i = idx[ic.iter().zip(&is).map(|(c, s)| c * s).sum::<usize>()] as usize;
                let mut pc: Vec<usize> = coord[..a].to_vec();
                pc.push(i);
                pc.extend_from_slice(&coord[a + k..]);
                pc.iter().zip(&ps).map(|(c, s)| c * s).sum::<usize>() as i32
            })
            .collect()
    }

    #[test]
    fn gather_matches_reference_with_axes_and_batch_dims() -> Result<(), OpError> {
        let cases: &[(&[usize], &[usize], i64, i64)] = &[
            (&[3, 2], &[2], 0, 0),
            (&[3, 2], &[], 1, 0),
            (&[17, 257], &[7], 1, 0),
            (&[7, 5], &[2, 3], 0, 0),
            (&[2, 3, 4], &[2, 2], 1, 1),
            (&[2, 3, 4], &[2, 3], 2, 1),
            (&[2, 3, 4], &[2, 3, 2], -1, -1),
            (&[2, 3, 4], &[2, 3], 2, 2),
            (&[4, 0, 3], &[5], 0, 0),
            (&[5, 3], &[0], 0, 0),
        ];
        for &(params, idx_shape, axis, batch_dims) in cases {
            let p_rank = params.len() as i64;
            let a = if axis < 0 { axis + p_rank } else { axis } as usize;
            let b = if batch_dims < 0 {
                batch_dims + idx_shape.len() as i64
            } else {
                batch_dims
            } as usize;
            let count: usize = idx_shape.iter().product();
            let idx: Vec<i64> = (0..count)
                .map(|k| ((k * 7 + 3) % params[a].max(1)) as i64)
                .collect();
            let out = run(params, &idx, idx_shape, axis, batch_dims)?;
            let want = reference(params, &idx, idx_shape, a, b);
            assert_eq!(
                out.data(),
                want.as_slice(),
                "{params:?} {idx_shape:?} {axis} {batch_dims}"
            );
        }
        Ok(())
    }

    #[test]
    fn tensorflow_values_and_errors() -> Result<(), OpError> {
        // tf.gather(reshape(range(24), [2,3,4]), [[0,2],[1,1]], axis=1, batch_dims=1)
        let out = run(&[2, 3, 4], &[0, 2, 1, 1], &[2, 2], 1, 1)?;
        assert_eq!(out.shape(), &[2, 2, 4]);
        assert_eq!(
            out.data(),
            &[0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 16, 17, 18, 19]
        );
        assert_eq!(
            run(&[2, 3, 4], &[5], &[1], 1, 0).err(),
            Some(OpError(
                "indices[0] = 5 is not in [0, 3) (params shape [2,3,4])".into()
            ))
        );
        assert_eq!(
            run(&[3, 2], &[0, -1], &[2], 0, 0).err(),
            Some(OpError(
                "indices[1] = -1 is not in [0, 3) (params shape [3,2])".into()
            ))
        );
        assert_eq!(
            run(&[2, 3, 4], &[0], &[1, 1], 0, 1).err(),
            Some(OpError(
                "batch_dims 1 must be at most the axis 0 (params [2,3,4] and indices [1,1])".into()
            ))
        );
        assert_eq!(
            run(&[2, 3, 4], &[0], &[1, 1], 2, 1).err(),
            Some(OpError(
                "the first 1 dimensions of params [2,3,4] and indices [1,1] must be equal (batch_dims 1)"
                    .into()
            ))
        );
        assert_eq!(
            run(&[2, 3], &[0], &[1], 2, 0).err(),
            Some(OpError(
                "axis 2 is out of range for params [2,3] and indices [1]".into()
            ))
        );
        assert_eq!(
            run(&[2, 3], &[0], &[1], 0, 2).err(),
            Some(OpError(
                "batch_dims 2 is out of range for indices of rank 1 (params [2,3] and indices [1])"
                    .into()
            ))
        );
        Ok(())
    }

    #[test]
    fn huge_outputs_are_refused_before_allocating() {
        let spec = GatherSpec::new(&[2, 1 << 20], &[1 << 20, 1 << 12], Some(0), 0);
        assert!(matches!(spec, Err(OpError(m)) if m.contains("memory budget")));
    }

    #[test]
    fn resource_gather_and_gather_v1_take_axis_zero() -> Result<(), OpError> {
        let params = Value::new(vec![3, 2], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
        let idx = Value::new(vec![2, 1], vec![2i32, 0])?;
        let k = Gather {
            form: Form::AxisZero,
            batch_dims: 0,
        };
        let out = k.run(vec![params, idx])?;
        assert_eq!(out[0].shape(), &[2, 1, 2]);
        assert_eq!(out[0].as_f32(), Some(&[5.0, 6.0, 1.0, 2.0][..]));
        Ok(())
    }
}
