//! TensorFlow's stateless random ops, bit for bit: `StatelessRandomUniform`,
//! `StatelessRandomNormal`, `StatelessTruncatedNormal`, `StatelessRandomUniformInt`, their `V2`
//! forms (key, counter and algorithm as inputs), and `StatelessRandomGetKeyCounter`,
//! `StatelessRandomGetKeyCounterAlg`, `StatelessRandomGetAlg`, which TF2 initializers emit.
//!
//! All of them draw from Philox-4x32-10 (`philox_random.h`) with the seed scrambled as
//! `GenerateKey` does (`stateless_random_ops.cc`), and fill the output in the order of
//! `FillPhiloxRandom` (`random_op_cpu.h`): one generator call per group of outputs, and for
//! truncated normals (a variable number of draws per output) each group of four starts 256
//! draws after the previous one. The distributions follow `random_distributions.h`.
//!
//! TensorFlow's uint64 keys and counters are held as int64 values with the same bits.

use ckpt_graph::Node;
use ckpt_proto::DataType;

use crate::ops::{
    dims_from, fmt_shape, int_values, kernel, node_error, op_bail, output_len, BuildCtx, Built,
    Kernel, OpError,
};
use crate::value::TensorBuf;
use crate::{DType, Error, Value};

/// The Philox-4x32-10 counter-based generator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Philox {
    counter: [u32; 4],
    key: [u32; 2],
}

const W32A: u32 = 0x9E37_79B9;
const W32B: u32 = 0xBB67_AE85;
const M4X32A: u32 = 0xD251_1F53;
const M4X32B: u32 = 0xCD9E_8D57;

impl Philox {
    /// The generator for a two-element seed, scrambled as `GenerateKey` does.
    pub(crate) fn from_seed(seed0: u64, seed1: u64) -> Philox {
        let mut start = Philox {
            counter: [
                seed0 as u32,
                (seed0 >> 32) as u32,
                seed1 as u32,
                (seed1 >> 32) as u32,
            ],
            key: [0x3ec8_f720, 0x0246_1e29],
        };
        let mix = start.next_block();
        Philox {
            counter: [0, 0, mix[2], mix[3]],
            key: [mix[0], mix[1]],
        }
    }

    /// The generator a `V2` op's uint64 key and two-word counter describe.
    fn from_key_counter(key: u64, counter: [u64; 2]) -> Philox {
        Philox {
            counter: [
                counter[0] as u32,
                (counter[0] >> 32) as u32,
                counter[1] as u32,
                (counter[1] >> 32) as u32,
            ],
            key: [key as u32, (key >> 32) as u32],
        }
    }

    /// The uint64 key and counter `StatelessRandomGetKeyCounter` returns.
    fn key_counter(&self) -> (u64, [u64; 2]) {
        let c = self.counter.map(u64::from);
        (
            u64::from(self.key[0]) | u64::from(self.key[1]) << 32,
            [c[0] | c[1] << 32, c[2] | c[3] << 32],
        )
    }

    /// Four 32-bit values, and the counter moves on by one.
    fn next_block(&mut self) -> [u32; 4] {
        let mut counter = self.counter;
        let mut key = self.key;
        for round in 0..10 {
            if round > 0 {
                key[0] = key[0].wrapping_add(W32A);
                key[1] = key[1].wrapping_add(W32B);
            }
            let p0 = u64::from(M4X32A) * u64::from(counter[0]);
            let p1 = u64::from(M4X32B) * u64::from(counter[2]);
            let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
            let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
            counter = [
                hi1 ^ counter[1] ^ key[0],
                lo1,
                hi0 ^ counter[3] ^ key[1],
                lo0,
            ];
        }
        self.skip(1);
        counter
    }

    /// Moves the 128-bit counter on by `n` blocks.
    fn skip(&mut self, n: u64) {
        let mut carry = n;
        for word in &mut self.counter {
            let sum = u64::from(*word) + (carry & 0xffff_ffff);
            *word = sum as u32;
            carry = (carry >> 32) + (sum >> 32);
            if carry == 0 {
                break;
            }
        }
    }
}

/// A float in [0, 1) from the low 23 bits of `x` (`Uint32ToFloat`).
fn unit_f32(x: u32) -> f32 {
    f32::from_bits((127 << 23) | (x & 0x7f_ffff)) - 1.0
}

/// A double in [0, 1) from 52 bits of `hi` and `lo` (`Uint64ToDouble`).
fn unit_f64(hi: u32, lo: u32) -> f64 {
    let mantissa = u64::from(hi & 0xf_ffff) << 32 | u64::from(lo);
    f64::from_bits((1023 << 52) | mantissa) - 1.0
}

/// `BoxMullerFloat`.
fn box_muller_f32(x0: u32, x1: u32) -> [f32; 2] {
    let u1 = unit_f32(x0).max(1.0e-7);
    let v1 = (2.0 * std::f64::consts::PI * f64::from(unit_f32(x1))) as f32;
    let u2 = (-2.0f32 * u1.ln()).sqrt();
    [v1.sin() * u2, v1.cos() * u2]
}

/// `BoxMullerDouble`.
fn box_muller_f64(x: [u32; 4]) -> [f64; 2] {
    let u1 = unit_f64(x[0], x[1]).max(1.0e-7);
    let v1 = 2.0 * std::f64::consts::PI * unit_f64(x[2], x[3]);
    let u2 = (-2.0 * u1.ln()).sqrt();
    [v1.sin() * u2, v1.cos() * u2]
}

/// What a stateless op draws.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Distribution {
    Uniform,
    Normal,
    TruncatedNormal,
    /// Integers in [minval, maxval), the bounds being inputs.
    UniformInt,
}

/// Draws beyond which a truncated-normal output group starts (`kReservedSamplesPerOutput`).
const RESERVED_SAMPLES_PER_OUTPUT: u64 = 256;

/// `n` samples of `dist` in `dtype`, in TensorFlow's order.
fn fill(
    gen: Philox,
    dist: Distribution,
    dtype: DType,
    shape: Vec<usize>,
    bounds: Option<(i64, i64)>,
) -> Result<Value, OpError> {
    let n = output_len(&shape, crate::ops::element_bytes(dtype))?;
    let mut gen = gen;
    Ok(match (dist, dtype) {
        (Distribution::Uniform, DType::Float32) => {
            let data = groups(n, || gen.next_block().map(unit_f32));
            Value::F32(TensorBuf::from_parts(shape, data))
        }
        (Distribution::Uniform, DType::Float64) => {
            let data = groups(n, || {
                let x = gen.next_block();
                [unit_f64(x[0], x[1]), unit_f64(x[2], x[3])]
            });
            Value::F64(TensorBuf::from_parts(shape, data))
        }
        (Distribution::Normal, DType::Float32) => {
            let data = groups(n, || {
                let x = gen.next_block();
                let [a, b] = box_muller_f32(x[0], x[1]);
                let [c, d] = box_muller_f32(x[2], x[3]);
                [a, b, c, d]
            });
            Value::F32(TensorBuf::from_parts(shape, data))
        }
        (Distribution::Normal, DType::Float64) => {
            let data = groups(n, || box_muller_f64(gen.next_block()));
            Value::F64(TensorBuf::from_parts(shape, data))
        }
        (Distribution::TruncatedNormal, DType::Float32) => {
            let base = gen;
            let mut group = 0u64;
            let data = groups(n, || {
                let mut draws = Draws::new(base, group * 4 * RESERVED_SAMPLES_PER_OUTPUT / 4);
                group += 1;
                let mut out = [0.0f32; 4];
                let mut k = 0;
                while k < 4 {
                    let (x0, x1) = (draws.next(), draws.next());
                    for f in box_muller_f32(x0, x1) {
                        if f.abs() < 2.0 && k < 4 {
                            out[k] = f;
                            k += 1;
                        }
                    }
                }
                out
            });
            Value::F32(TensorBuf::from_parts(shape, data))
        }
        (Distribution::TruncatedNormal, DType::Float64) => {
            let base = gen;
            let mut group = 0u64;
            let data = groups(n, || {
                let mut draws = Draws::new(base, group * 2 * RESERVED_SAMPLES_PER_OUTPUT / 4);
                group += 1;
                let mut out = [0.0f64; 2];
                let mut k = 0;
                while k < 2 {
                    let x = [draws.next(), draws.next(), draws.next(), draws.next()];
                    for f in box_muller_f64(x) {
                        if f.abs() < 2.0 && k < 2 {
                            out[k] = f;
                            k += 1;
                        }
                    }
                }
                out
            });
            Value::F64(TensorBuf::from_parts(shape, data))
        }
        (Distribution::UniformInt, DType::Int32) => {
            let (lo, hi) = bounds.unwrap_or((0, 1));
            let range = (hi as i32).wrapping_sub(lo as i32) as u32;
            let data = groups(n, || {
                gen.next_block()
                    .map(|x| (lo as i32).wrapping_add((x % range) as i32))
            });
            Value::I32(TensorBuf::from_parts(shape, data))
        }
        (Distribution::UniformInt, DType::Int64) => {
            let (lo, hi) = bounds.unwrap_or((0, 1));
            let range = hi.wrapping_sub(lo) as u64;
            let data = groups(n, || {
                let x = gen.next_block();
                let pair = |a: u32, b: u32| u64::from(a) | u64::from(b) << 32;
                [pair(x[0], x[1]), pair(x[2], x[3])]
                    .map(|bits| lo.wrapping_add((bits % range) as i64))
            });
            Value::I64(TensorBuf::from_parts(shape, data))
        }
        (dist, dtype) => op_bail!("{dist:?} samples of dtype {dtype} are not supported"),
    })
}

/// `n` values from groups that `next` makes, the last group cut short.
fn groups<T: Copy, const K: usize>(n: usize, mut next: impl FnMut() -> [T; K]) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let group = next();
        let take = (n - out.len()).min(K);
        out.extend_from_slice(&group[..take]);
    }
    out
}

/// One 32-bit value at a time from a generator skipped ahead by some blocks
/// (`SingleSampleAdapter`).
struct Draws {
    gen: Philox,
    block: [u32; 4],
    used: usize,
}

impl Draws {
    fn new(mut gen: Philox, skip: u64) -> Draws {
        gen.skip(skip);
        Draws {
            gen,
            block: [0; 4],
            used: 4,
        }
    }

    fn next(&mut self) -> u32 {
        if self.used == 4 {
            self.block = self.gen.next_block();
            self.used = 0;
        }
        self.used += 1;
        self.block[self.used - 1]
    }
}

/// Which op family a node is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// `(shape, seed[2])` (+ `minval`, `maxval`).
    Seed,
    /// `(shape, key[1], counter[2], alg)` (+ `minval`, `maxval`).
    KeyCounter,
}

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    let (dist, form) = match node.op.as_str() {
        "StatelessRandomUniform" => (Distribution::Uniform, Form::Seed),
        "StatelessRandomNormal" => (Distribution::Normal, Form::Seed),
        "StatelessTruncatedNormal" => (Distribution::TruncatedNormal, Form::Seed),
        "StatelessRandomUniformInt" => (Distribution::UniformInt, Form::Seed),
        "StatelessRandomUniformV2" => (Distribution::Uniform, Form::KeyCounter),
        "StatelessRandomNormalV2" => (Distribution::Normal, Form::KeyCounter),
        "StatelessTruncatedNormalV2" => (Distribution::TruncatedNormal, Form::KeyCounter),
        "StatelessRandomUniformIntV2" => (Distribution::UniformInt, Form::KeyCounter),
        other => {
            return Err(node_error(
                node,
                format!("not a stateless random op: {other}"),
            ))
        }
    };
    // Half-precision samples are made from 16 bits, not rounded from float32 ones.
    let raw = node.attr_dtype_or("dtype", DataType::DtFloat)?;
    let dtype = match raw {
        DataType::DtFloat => DType::Float32,
        DataType::DtDouble => DType::Float64,
        DataType::DtInt32 if dist == Distribution::UniformInt => DType::Int32,
        DataType::DtInt64 if dist == Distribution::UniformInt => DType::Int64,
        other => {
            return Err(node_error(
                node,
                format!("{dist:?} samples of dtype {other:?} are not supported"),
            ))
        }
    };
    kernel(StatelessRandom { dist, form, dtype })
}

#[derive(Debug)]
struct StatelessRandom {
    dist: Distribution,
    form: Form,
    dtype: DType,
}

/// The two seeds of a `[2]` int32/int64 seed input, as `GenerateKey` reads them.
fn seeds(v: &Value) -> Result<(u64, u64), OpError> {
    let s = int_values(v, "seed")?;
    match (v.shape(), s.as_slice()) {
        ([2], &[a, b]) => Ok((a as u64, b as u64)),
        _ => op_bail!("seed must have shape [2], not {}", fmt_shape(v.shape())),
    }
}

/// The generator a `V2` op's key, counter and algorithm inputs describe.
fn key_counter_gen(key: &Value, counter: &Value, alg: &Value) -> Result<Philox, OpError> {
    let alg = int_values(alg, "alg")?;
    // 1 is Philox; 3 (auto-select) is Philox on CPUs. 2 (ThreeFry) is not implemented.
    if !matches!(alg.as_slice(), [1] | [3]) {
        op_bail!("random algorithm {alg:?} is not supported (only Philox, 1, and auto-select, 3)");
    }
    let key = int_values(key, "key")?;
    let counter = int_values(counter, "counter")?;
    match (key.as_slice(), counter.as_slice()) {
        ([k], [c0, c1, ..]) => Ok(Philox::from_key_counter(
            *k as u64,
            [*c0 as u64, *c1 as u64],
        )),
        _ => op_bail!(
            "key must have 1 element and counter at least 2, got {} and {}",
            key.len(),
            counter.len()
        ),
    }
}

impl Kernel for StatelessRandom {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        let int = self.dist == Distribution::UniformInt;
        let want = match self.form {
            Form::Seed => 2,
            Form::KeyCounter => 4,
        } + if int { 2 } else { 0 };
        if inputs.len() != want {
            op_bail!("expected {want} inputs, got {}", inputs.len());
        }
        let shape = dims_from(&int_values(&inputs[0], "shape")?, "shape")?;
        let gen = match self.form {
            Form::Seed => {
                let (s0, s1) = seeds(&inputs[1])?;
                Philox::from_seed(s0, s1)
            }
            Form::KeyCounter => key_counter_gen(&inputs[1], &inputs[2], &inputs[3])?,
        };
        let bounds = if int {
            let lo = crate::ops::int_scalar(&inputs[want - 2], "minval")?;
            let hi = crate::ops::int_scalar(&inputs[want - 1], "maxval")?;
            if lo >= hi {
                op_bail!("need minval < maxval, got {lo} >= {hi}");
            }
            Some((lo, hi))
        } else {
            None
        };
        Ok(vec![fill(gen, self.dist, self.dtype, shape, bounds)?])
    }
}

/// `StatelessRandomGetKeyCounter`, `StatelessRandomGetKeyCounterAlg`, `StatelessRandomGetAlg`.
pub(crate) fn build_key_counter(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(KeyCounter {
        with_alg: node.op == "StatelessRandomGetKeyCounterAlg",
        alg_only: node.op == "StatelessRandomGetAlg",
    })
}

#[derive(Debug)]
struct KeyCounter {
    with_alg: bool,
    alg_only: bool,
}

/// Philox, as TensorFlow picks it on CPUs.
const ALG_PHILOX: i32 = 1;

impl Kernel for KeyCounter {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        if self.alg_only {
            return Ok(vec![Value::scalar(ALG_PHILOX)]);
        }
        let [seed] = crate::ops::take_inputs(inputs)?;
        let (s0, s1) = seeds(&seed)?;
        let (key, counter) = Philox::from_seed(s0, s1).key_counter();
        let mut out = vec![
            Value::I64(TensorBuf::from_parts(vec![1], vec![key as i64])),
            Value::I64(TensorBuf::from_parts(
                vec![2],
                counter.iter().map(|&c| c as i64).collect(),
            )),
        ];
        if self.with_alg {
            out.push(Value::scalar(ALG_PHILOX));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(a: i64, b: i64) -> Result<Value, Error> {
        Value::new(vec![2], vec![a, b])
    }

    fn shape(dims: &[i32]) -> Result<Value, Error> {
        Value::new(vec![dims.len()], dims.to_vec())
    }

    fn op(dist: Distribution, form: Form, dtype: DType) -> StatelessRandom {
        StatelessRandom { dist, form, dtype }
    }

    fn bits32(v: &Value) -> Vec<u32> {
        v.as_f32()
            .unwrap_or_default()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    }

    fn bits64(v: &Value) -> Vec<u64> {
        v.as_f64()
            .unwrap_or_default()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    }

    /// Values TensorFlow 2.21 returned for the same ops and seeds (`tf.raw_ops.*`).
    #[test]
    fn samples_match_tensorflow_bit_for_bit() -> Result<(), Box<dyn std::error::Error>> {
        let f32s = op(Distribution::Uniform, Form::Seed, DType::Float32)
            .run(vec![shape(&[7])?, seed(1, 2)?])?;
        let uniform = [
            0x3f58_1458,
            0x3e44_a788,
            0x3f7f_087c,
            0x3e24_3c98,
            0x3e8b_424c,
            0x3f26_3b8a,
            0x3ddb_05b0,
        ];
        assert_eq!(bits32(&f32s[0]), uniform);
        let out = op(Distribution::Uniform, Form::Seed, DType::Float32)
            .run(vec![shape(&[2, 3])?, seed(-5, 1 << 40)?])?;
        assert_eq!(out[0].shape(), &[2, 3]);
        assert_eq!(
            bits32(&out[0]),
            [
                0x3f70_b1de,
                0x3f10_00ae,
                0x3c9d_00c0,
                0x3f12_375c,
                0x3db0_cf70,
                0x3f30_096a
            ]
        );
        let out = op(Distribution::Uniform, Form::Seed, DType::Float64)
            .run(vec![shape(&[5])?, seed(3, 4)?])?;
        assert_eq!(
            bits64(&out[0]),
            [
                0x3fee_4817_affb_c712,
                0x3fe8_6d44_7d77_c99e,
                0x3fc8_6e3e_8357_7df8,
                0x3feb_1e74_f111_c438,
                0x3fed_f731_40fc_79b6
            ]
        );
        let normal = [
            0x3f0b_4acd,
            0x3e54_5b81,
            0x3d96_a8e4,
            0x3d3e_3228,
            0xbfa6_9a7f,
            0xbf74_2ff1,
            0x3f57_7b86,
        ];
        let out = op(Distribution::Normal, Form::Seed, DType::Float32)
            .run(vec![shape(&[7])?, seed(1, 2)?])?;
        assert_eq!(bits32(&out[0]), normal);
        let out = op(Distribution::Normal, Form::Seed, DType::Float64)
            .run(vec![shape(&[3])?, seed(1, 2)?])?;
        assert_eq!(
            bits64(&out[0]),
            [
                0xbfc2_3745_fcee_d393,
                0x3fe7_b30d_f7ad_ce2e,
                0xbff7_8138_2108_6c87
            ]
        );
        let truncated = [
            0x3f0b_4acd,
            0x3e54_5b81,
            0x3d96_a8e4,
            0x3d3e_3228,
            0x3e2c_3e2c,
            0xbfd7_af2c,
            0x3e77_d657,
            0x3fda_0aa9,
            0x3f8d_93a1,
        ];
        let out = op(Distribution::TruncatedNormal, Form::Seed, DType::Float32)
            .run(vec![shape(&[9])?, seed(1, 2)?])?;
        assert_eq!(bits32(&out[0]), truncated);
        let out = op(Distribution::TruncatedNormal, Form::Seed, DType::Float64)
            .run(vec![shape(&[5])?, seed(7, 8)?])?;
        assert_eq!(
            bits64(&out[0]),
            [
                0x3ff4_5d8d_455e_298a,
                0xbfe8_7477_1c0c_d219,
                0xbfd6_bcf1_8de4_9b33,
                0x3fdb_bb58_0aa0_fa97,
                0x3fea_5eb2_aa4c_a2a8
            ]
        );
        let ints = op(Distribution::UniformInt, Form::Seed, DType::Int32).run(vec![
            shape(&[7])?,
            seed(1, 2)?,
            Value::scalar(-5i32),
            Value::scalar(10i32),
        ])?;
        assert_eq!(ints[0].as_i32(), Some(&[5, 9, 4, 4, 2, 5, 1][..]));
        let ints = op(Distribution::UniformInt, Form::Seed, DType::Int64).run(vec![
            shape(&[5])?,
            seed(1, 2)?,
            Value::scalar(-5i64),
            Value::scalar(1_000_000_000_000i64),
        ])?;
        assert_eq!(
            ints[0].as_i64(),
            Some(
                &[
                    146243290039,
                    637750006048,
                    318077103687,
                    515994380383,
                    327611604148
                ][..]
            )
        );

        // V2: the key and counter StatelessRandomGetKeyCounter returns give the same samples.
        let kc = KeyCounter {
            with_alg: true,
            alg_only: false,
        }
        .run(vec![Value::new(vec![2], vec![1i32, 2])?])?;
        assert_eq!(kc[0].as_i64(), Some(&[10413732777507651514u64 as i64][..]));
        assert_eq!(
            kc[1].as_i64(),
            Some(&[0, 17830669156045600267u64 as i64][..])
        );
        assert_eq!(kc[2].as_i32(), Some(&[1][..]));
        for (dist, want) in [
            (Distribution::Uniform, &uniform[..]),
            (Distribution::Normal, &normal[..]),
            (Distribution::TruncatedNormal, &truncated[..7]),
        ] {
            let out = op(dist, Form::KeyCounter, DType::Float32).run(vec![
                shape(&[7])?,
                kc[0].clone(),
                kc[1].clone(),
                Value::scalar(1i32),
            ])?;
            assert_eq!(bits32(&out[0]), want, "{dist:?}");
        }
        Ok(())
    }

    #[test]
    fn bad_seeds_bounds_and_algorithms_are_errors() -> Result<(), Error> {
        let k = op(Distribution::Uniform, Form::Seed, DType::Float32);
        let three = Value::new(vec![3], vec![1i32, 2, 3])?;
        assert_eq!(
            k.run(vec![shape(&[2])?, three]).err(),
            Some(OpError("seed must have shape [2], not [3]".into()))
        );
        let k = op(Distribution::UniformInt, Form::Seed, DType::Int32);
        assert_eq!(
            k.run(vec![
                shape(&[2])?,
                seed(1, 2)?,
                Value::scalar(5i32),
                Value::scalar(5i32)
            ])
            .err(),
            Some(OpError("need minval < maxval, got 5 >= 5".into()))
        );
        let k = op(Distribution::Uniform, Form::KeyCounter, DType::Float32);
        let key = Value::new(vec![1], vec![1i64])?;
        let counter = Value::new(vec![2], vec![0i64, 0])?;
        assert_eq!(
            k.run(vec![shape(&[2])?, key, counter, Value::scalar(2i32)])
                .err(),
            Some(OpError(
                "random algorithm [2] is not supported (only Philox, 1, and auto-select, 3)".into()
            ))
        );
        let huge = Value::new(vec![2], vec![1i64 << 40, 1 << 40])?;
        assert!(matches!(
            op(Distribution::Uniform, Form::Seed, DType::Float32).run(vec![huge, seed(1, 2)?]),
            Err(OpError(m)) if m.contains("too large")
        ));
        Ok(())
    }

    #[test]
    fn skip_carries_across_words() {
        let mut g = Philox {
            counter: [u32::MAX, u32::MAX, 7, 0],
            key: [0, 0],
        };
        g.skip(1);
        assert_eq!(g.counter, [0, 0, 8, 0]);
        g.skip(u64::from(u32::MAX) + 2);
        assert_eq!(g.counter, [1, 1, 8, 0]);
    }
}
