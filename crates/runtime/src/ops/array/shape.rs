//! `Shape`, `Size`, `Rank`.

use ckpt_graph::Node;
use ckpt_proto::DataType;

use crate::ops::{
    dtype_attr_or, kernel, node_error, op_bail, take_inputs, BuildCtx, Built, FnKernel, Kernel,
    OpError,
};
use crate::{DType, Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(ShapeOf {
        out: out_type(node)?,
        what: What::Shape,
    })
}

pub(crate) fn build_size(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(ShapeOf {
        out: out_type(node)?,
        what: What::Size,
    })
}

pub(crate) fn build_shape_n(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(ShapeN {
        one: ShapeOf {
            out: out_type(node)?,
            what: What::Shape,
        },
    })
}

#[derive(Debug)]
struct ShapeN {
    one: ShapeOf,
}

impl Kernel for ShapeN {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let mut out = Vec::with_capacity(inputs.len());
        for x in inputs {
            out.extend(self.one.run(vec![x])?);
        }
        Ok(out)
    }
}

pub(crate) fn build_rank(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(FnKernel(|inputs| {
        let [x] = take_inputs(inputs)?;
        let rank = i32::try_from(x.shape().len()).map_err(|_| OpError("rank too large".into()))?;
        Ok(vec![Value::scalar(rank)])
    }))
}

fn out_type(node: &Node) -> Result<DType, Error> {
    match dtype_attr_or(node, "out_type", DataType::DtInt32)? {
        d @ (DType::Int32 | DType::Int64) => Ok(d),
        other => Err(node_error(
            node,
            format!("out_type must be int32 or int64, got {other}"),
        )),
    }
}

#[derive(Debug)]
enum What {
    Shape,
    Size,
}

#[derive(Debug)]
struct ShapeOf {
    out: DType,
    what: What,
}

impl Kernel for ShapeOf {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [x] = take_inputs(inputs)?;
        let (dims, shape): (Vec<usize>, Vec<usize>) = match self.what {
            What::Shape => (x.shape().to_vec(), vec![x.shape().len()]),
            What::Size => (vec![x.len()], Vec::new()),
        };
        let v = match self.out {
            DType::Int32 => {
                let d: Result<Vec<i32>, _> = dims.iter().map(|&d| i32::try_from(d)).collect();
                let Ok(d) = d else {
                    op_bail!("dimension does not fit in int32: {dims:?}");
                };
                Value::new(shape, d)
            }
            _ => Value::new(shape, dims.iter().map(|&d| d as i64).collect::<Vec<i64>>()),
        };
        Ok(vec![v.map_err(|e| OpError(e.to_string()))?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_size() -> Result<(), OpError> {
        let x = Value::new(vec![2, 0, 3], Vec::<f32>::new()).map_err(|e| OpError(e.to_string()))?;
        let s = ShapeOf {
            out: DType::Int32,
            what: What::Shape,
        }
        .run(vec![x.clone()])?;
        assert_eq!(s[0].as_i32(), Some(&[2, 0, 3][..]));
        assert_eq!(s[0].shape(), &[3]);
        let n = ShapeOf {
            out: DType::Int64,
            what: What::Size,
        }
        .run(vec![x])?;
        assert_eq!(n[0].as_i64(), Some(&[0][..]));
        assert_eq!(n[0].shape(), &[] as &[usize]);
        Ok(())
    }
}
