//! `StringJoin`: joins its inputs elementwise with `separator`. As TensorFlow's kernel
//! (`string_join_op.cc`), the inputs are scalars or of one shape, scalars repeated over it.

use ckpt_graph::Node;

use crate::ops::{expect, fmt_shape, kernel, op_bail, BuildCtx, Built, Kernel, OpError};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Join {
        separator: match node.attr("separator") {
            Some(_) => node.attr_bytes("separator")?.to_vec(),
            None => Vec::new(),
        },
    })
}

#[derive(Debug)]
struct Join {
    separator: Vec<u8>,
}

impl Kernel for Join {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let parts: Vec<TensorBuf<Vec<u8>>> = inputs
            .into_iter()
            .enumerate()
            .map(|(i, v)| expect::<Vec<u8>>(v, &format!("input {i}")))
            .collect::<Result<_, _>>()?;
        let mut shape: Option<&[usize]> = None;
        for p in &parts {
            if p.rank() == 0 {
                continue;
            }
            match shape {
                None => shape = Some(p.shape()),
                Some(s) if s == p.shape() => {}
                Some(s) => op_bail!(
                    "inputs have shapes {} and {}: they must be scalars or of one shape",
                    fmt_shape(s),
                    fmt_shape(p.shape())
                ),
            }
        }
        let shape = shape.unwrap_or(&[]).to_vec();
        let n = parts.iter().find(|p| p.rank() > 0).map_or(1, |p| p.len());
        let out: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let mut s = Vec::new();
                for (j, p) in parts.iter().enumerate() {
                    if j > 0 {
                        s.extend_from_slice(&self.separator);
                    }
                    let d = p.data();
                    if let Some(x) = d.get(if p.rank() == 0 { 0 } else { i }) {
                        s.extend_from_slice(x);
                    }
                }
                s
            })
            .collect();
        Ok(vec![Value::Str(TensorBuf::new(shape, out)?)])
    }
}
