//! `StringToHashBucketFast`: `Fingerprint64(s) % num_buckets` as int64, where TensorFlow's
//! `Fingerprint64` (`tensorflow/core/platform/fingerprint.h`) is FarmHash's
//! `farmhash::Fingerprint64`, computed here by the `farmhash` crate (checked against
//! TensorFlow's values in the tests).

use ckpt_graph::Node;

use crate::ops::{expect, kernel, node_error, take_inputs, BuildCtx, Built, Kernel, OpError};
use crate::value::TensorBuf;
use crate::{Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let n = node.attr_i64("num_buckets")?;
    let buckets = u64::try_from(n)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| node_error(node, format!("num_buckets must be positive, got {n}")))?;
    kernel(HashBucket { buckets })
}

/// TensorFlow's `Fingerprint64` of `bytes`.
pub(crate) fn fingerprint64(bytes: &[u8]) -> u64 {
    farmhash::fingerprint64(bytes)
}

#[derive(Debug)]
struct HashBucket {
    buckets: u64,
}

impl Kernel for HashBucket {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let [input] = take_inputs(inputs)?;
        let s = expect::<Vec<u8>>(input, "input")?;
        // A bucket is below num_buckets, itself an int64, so the conversion is exact.
        let out: Vec<i64> = s
            .data()
            .iter()
            .map(|x| (fingerprint64(x) % self.buckets) as i64)
            .collect();
        Ok(vec![Value::I64(TensorBuf::new(s.shape().to_vec(), out)?)])
    }
}
