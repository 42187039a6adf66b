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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_tensorflow_fingerprint64_at_every_length_class() {
        // TensorFlow 2.21: tf.strings.to_hash_bucket_fast(s, 2**63 - 1) for the string of length
        // n whose byte j is (i * 7 + j * 13) % 256, i being n's position in this list (FarmHash
        // takes a different path for 0-16, 17-32, 33-64 and longer strings).
        let want: [(usize, i64); 17] = [
            (0, 1936946117179621456),
            (1, 6305636504242451570),
            (3, 1526233682318655638),
            (4, 5192078163603223069),
            (8, 2250202331768291562),
            (9, 8629155197461257841),
            (16, 4572511456679154392),
            (17, 4509743791266914182),
            (31, 4019059381907791388),
            (32, 6404295180666409558),
            (33, 3839052155029731774),
            (63, 5886056769111860248),
            (64, 465439164891925788),
            (65, 9121036625327209858),
            (100, 1299236736917003444),
            (200, 7074106582070404353),
            (1000, 2930677847100863834),
        ];
        let kernel = HashBucket {
            buckets: i64::MAX as u64,
        };
        for (i, (n, bucket)) in want.into_iter().enumerate() {
            let s: Vec<u8> = (0..n).map(|j| ((i * 7 + j * 13) % 256) as u8).collect();
            let out = kernel.run(vec![Value::scalar(s)]).map_err(|e| e.0);
            assert_eq!(
                out.ok().and_then(|o| o[0].as_i64().map(<[i64]>::to_vec)),
                Some(vec![bucket]),
                "length {n}"
            );
        }
    }
}
