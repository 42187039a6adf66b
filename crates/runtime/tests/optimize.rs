//! The plan's optimizations (batch norm folded into the convolution, `Pad` folded into its
//! padding, bias and activation fused) on a small text graph: the same values as the
//! unoptimized plan, fewer steps, and errors that still name the original nodes.

mod common;

use ckpt_graph::Model;
use ckpt_runtime::{Error, Session, SessionOptions, Value};
use common::{assert_within, TestResult};

fn tensor(name: &str, dtype: &str, dims: &[usize], field: &str, values: &[f64]) -> String {
    let dims: String = dims
        .iter()
        .map(|d| format!("dim {{ size: {d} }} "))
        .collect();
    let vals: String = values.iter().map(|v| format!("{field}: {v} ")).collect();
    format!(
        "node {{ name: \"{name}\" op: \"Const\" attr {{ key: \"dtype\" value {{ type: {dtype} }} }} \
         attr {{ key: \"value\" value {{ tensor {{ dtype: {dtype} tensor_shape {{ {dims}}} {vals}}} }} }} }}\n"
    )
}

/// x -> Pad(1 row top, 1 column right) -> Conv2D 1x1 VALID -> FusedBatchNormV3 -> Relu6, with
/// `channels` batch-norm parameters for the convolution's 2 output channels.
fn graph(channels: usize) -> Result<Model, ckpt_graph::Error> {
    graph_in(channels, "NHWC")
}

/// [`graph`] in `data_format` (`NHWC` or `NCHW`, for the Pad, the Conv2D and the batch norm).
fn graph_in(channels: usize, data_format: &str) -> Result<Model, ckpt_graph::Error> {
    let paddings: &[f64] = if data_format == "NCHW" {
        &[0., 0., 0., 0., 1., 0., 0., 1.]
    } else {
        &[0., 0., 1., 0., 0., 1., 0., 0.]
    };
    let f = |n: usize, base: f64| -> Vec<f64> { (0..n).map(|i| base + 0.25 * i as f64).collect() };
    let mut text = String::from(
        "node { name: \"x\" op: \"Placeholder\" attr { key: \"dtype\" value { type: DT_FLOAT } } }\n",
    );
    text += &tensor("paddings", "DT_INT32", &[4, 2], "int_val", paddings);
    text += &tensor(
        "w",
        "DT_FLOAT",
        &[1, 1, 3, 2],
        "float_val",
        &[1., -2., 0.5, 1.5, -1., 0.25],
    );
    text += &tensor(
        "scale",
        "DT_FLOAT",
        &[channels],
        "float_val",
        &f(channels, 0.5),
    );
    text += &tensor(
        "offset",
        "DT_FLOAT",
        &[channels],
        "float_val",
        &f(channels, -0.1),
    );
    text += &tensor(
        "mean",
        "DT_FLOAT",
        &[channels],
        "float_val",
        &f(channels, 0.2),
    );
    text += &tensor(
        "var",
        "DT_FLOAT",
        &[channels],
        "float_val",
        &f(channels, 0.6),
    );
    let format = format!("attr {{ key: \"data_format\" value {{ s: \"{data_format}\" }} }}");
    text += &format!(
        "node {{ name: \"pad\" op: \"Pad\" input: \"x\" input: \"paddings\" }}\n\
        node {{ name: \"conv\" op: \"Conv2D\" input: \"pad\" input: \"w\" \
          attr {{ key: \"strides\" value {{ list {{ i: 1 i: 1 i: 1 i: 1 }} }} }} \
          attr {{ key: \"padding\" value {{ s: \"VALID\" }} }} {format} }}\n\
        node {{ name: \"bn\" op: \"FusedBatchNormV3\" input: \"conv\" input: \"scale\" \
          input: \"offset\" input: \"mean\" input: \"var\" \
          attr {{ key: \"is_training\" value {{ b: false }} }} \
          attr {{ key: \"epsilon\" value {{ f: 0.001 }} }} {format} }}\n\
        node {{ name: \"act\" op: \"Relu6\" input: \"bn\" }}\n"
    );
    Model::from_text(&text)
}

fn session(model: &Model, unoptimized: bool) -> Result<Session, Error> {
    Session::new(
        model,
        None,
        &["act"],
        &["x"],
        SessionOptions {
            unoptimized,
            ..Default::default()
        },
    )
}

fn input(channels: usize) -> TestResult<Value> {
    let n = 2 * 3 * 4 * channels;
    let data: Vec<f32> = (0..n).map(|i| ((i * 7) % 11) as f32 * 0.5 - 2.0).collect();
    Ok(Value::new(vec![2, 3, 4, channels], data)?)
}

#[test]
fn folded_chain_matches_the_unoptimized_plan_in_one_step() -> TestResult {
    let model = graph(2)?;
    let (fast, plain) = (session(&model, false)?, session(&model, true)?);
    // Pad, Conv2D, FusedBatchNormV3 and Relu6 are one convolution step.
    assert_eq!(fast.num_steps(), 1);
    assert_eq!(plain.num_steps(), 4);
    let x = input(3)?;
    let want = plain.run(&[("x", x.clone())])?;
    let got = fast.run(&[("x", x)])?;
    assert_eq!(got[0].shape(), &[2, 4, 5, 2]);
    assert_within("act", &got[0], &want[0], 1e-5, 1e-6)?;
    // Padded cells see only the folded bias: relu6(offset - mean * s).
    let s = 0.5 / (0.6f32 + 0.001).sqrt();
    let corner = (-0.1f32 - 0.2 * s).clamp(0.0, 6.0);
    assert!((got[0].as_f32().ok_or("dtype")?[0] - corner).abs() < 1e-6);
    Ok(())
}

#[test]
fn nchw_chains_are_left_unfused_and_match() -> TestResult {
    // The folds and the epilogue assume NHWC: an NCHW convolution (transposed around the NHWC
    // kernel) keeps its Pad, batch norm and activation as steps of their own.
    let model = graph_in(2, "NCHW")?;
    let (fast, plain) = (session(&model, false)?, session(&model, true)?);
    assert_eq!(fast.num_steps(), 4);
    let n = 2 * 3 * 4 * 3;
    let data: Vec<f32> = (0..n).map(|i| ((i * 7) % 11) as f32 * 0.5 - 2.0).collect();
    let x = Value::new(vec![2, 3, 3, 4], data)?;
    let want = plain.run(&[("x", x.clone())])?;
    let got = fast.run(&[("x", x)])?;
    assert_eq!(got[0].shape(), &[2, 2, 4, 5]);
    assert_within("act", &got[0], &want[0], 0.0, 0.0)?;
    Ok(())
}

#[test]
fn errors_inside_a_fused_chain_name_the_original_node() -> TestResult {
    // A shape mismatch in the convolution names the convolution.
    let model = graph(2)?;
    let err = session(&model, false)?
        .run(&[("x", input(2)?)])
        .err()
        .ok_or("a 2-channel input to a 3-channel filter ran")?;
    match err {
        Error::Node { node, op, message } => {
            assert_eq!((node.as_str(), op.as_str()), ("conv", "Conv2D"));
            // The folded Pad's input, unpadded, is what the convolution reads.
            assert_eq!(
                message,
                "filter has 3 input channels, input has 2: [2,3,4,2] and [1,1,3,2]"
            );
        }
        other => return Err(format!("unexpected error {other}").into()),
    }
    // Batch-norm parameters that do not fit the convolution name the batch norm, at build
    // time, since they are folded then.
    let model = graph(3)?;
    match session(&model, false).err() {
        Some(Error::Node { node, op, message }) => {
            assert_eq!((node.as_str(), op.as_str()), ("bn", "FusedBatchNormV3"));
            assert_eq!(
                message,
                "the batch norm has 3 channels, the filter before it has shape [1,1,3,2]"
            );
        }
        other => return Err(format!("unexpected result {other:?}").into()),
    }
    Ok(())
}

/// x -> MatMul -> BiasAdd -> GELU spelled out in ops: Keras' `(x * 0.5) * (1 + erf(x / √2))`
/// (`keras_form`) or google-research/bert's `x * (0.5 * (1 + erf(x / √2)))`, with `half` in
/// place of 0.5 (a value other than 0.5 must not fuse). `√2` is `Sqrt(2.0)`.
fn gelu_graph(keras_form: bool, half: f64) -> Result<Model, ckpt_graph::Error> {
    let mut text = String::from(
        "node { name: \"x\" op: \"Placeholder\" attr { key: \"dtype\" value { type: DT_FLOAT } } }\n",
    );
    let w: Vec<f64> = (0..15).map(|i| (i as f64 - 7.0) * 0.37).collect();
    text += &tensor("w", "DT_FLOAT", &[3, 5], "float_val", &w);
    text += &tensor(
        "b",
        "DT_FLOAT",
        &[5],
        "float_val",
        &[0.1, -0.2, 0.3, 0.0, -1.5],
    );
    text += &tensor("half", "DT_FLOAT", &[], "float_val", &[half]);
    text += &tensor("one", "DT_FLOAT", &[], "float_val", &[1.0]);
    text += &tensor("two", "DT_FLOAT", &[], "float_val", &[2.0]);
    text += "node { name: \"mm\" op: \"MatMul\" input: \"x\" input: \"w\" }\n\
        node { name: \"bias\" op: \"BiasAdd\" input: \"mm\" input: \"b\" }\n\
        node { name: \"sqrt2\" op: \"Sqrt\" input: \"two\" }\n\
        node { name: \"div\" op: \"RealDiv\" input: \"bias\" input: \"sqrt2\" }\n\
        node { name: \"erf\" op: \"Erf\" input: \"div\" }\n\
        node { name: \"cdf\" op: \"AddV2\" input: \"one\" input: \"erf\" }\n";
    text += if keras_form {
        "node { name: \"halfx\" op: \"Mul\" input: \"bias\" input: \"half\" }\n\
         node { name: \"gelu\" op: \"Mul\" input: \"halfx\" input: \"cdf\" }\n"
    } else {
        "node { name: \"halfcdf\" op: \"Mul\" input: \"half\" input: \"cdf\" }\n\
         node { name: \"gelu\" op: \"Mul\" input: \"bias\" input: \"halfcdf\" }\n"
    };
    Model::from_text(&text)
}

/// Both GELU spellings fuse into the `MatMul` (one step) and give the unfused ops' float32
/// results bit for bit; a different constant, or the GELU's input also fetched, keeps the ops.
#[test]
fn gelu_fuses_into_matmul_bit_exactly() -> TestResult {
    let data: Vec<f32> = (0..4 * 3).map(|i| (i as f32 - 5.5) * 0.83).collect();
    let x = Value::new(vec![4, 3], data)?;
    for keras_form in [true, false] {
        for (half, fuses) in [(0.5, true), (0.4, false)] {
            for fetches in [&["gelu"][..], &["gelu", "bias"]] {
                let model = gelu_graph(keras_form, half)?;
                let build = |unoptimized| {
                    Session::new(
                        &model,
                        None,
                        fetches,
                        &["x"],
                        SessionOptions {
                            unoptimized,
                            ..Default::default()
                        },
                    )
                };
                let (fast, plain) = (build(false)?, build(true)?);
                let all_fused = fuses && fetches.len() == 1;
                let label = format!("keras_form {keras_form}, half {half}, fetches {fetches:?}");
                assert_eq!(
                    fast.num_steps() == 1,
                    all_fused,
                    "{label}: {} steps",
                    fast.num_steps()
                );
                let got = fast.run(&[("x", x.clone())])?;
                let want = plain.run(&[("x", x.clone())])?;
                for (g, w) in got.iter().zip(&want) {
                    let bits = |t: &Value| {
                        t.as_f32()
                            .map(|t| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                    };
                    assert!(bits(g).is_some(), "{label}: float32 output");
                    assert_eq!(bits(g), bits(w), "{label}");
                }
            }
        }
    }
    Ok(())
}

/// A layer norm as `tf.nn.moments` + `tf.nn.batch_normalization` spell it (BERT's
/// `LayerNorm`), over axis `axis` of a [4, 6] input, with `gamma`/`beta` of `param_len`
/// values (6: one per element of the last axis; 1: broadcast scalars).
fn layer_norm_graph(axis: i64, param_len: usize) -> Result<Model, ckpt_graph::Error> {
    let mut text = String::from(
        "node { name: \"x\" op: \"Placeholder\" attr { key: \"dtype\" value { type: DT_FLOAT } } }\n",
    );
    let gamma: Vec<f64> = (0..param_len).map(|i| 0.75 + 0.125 * i as f64).collect();
    let beta: Vec<f64> = (0..param_len).map(|i| -0.5 + 0.25 * i as f64).collect();
    text += &tensor("gamma", "DT_FLOAT", &[param_len], "float_val", &gamma);
    text += &tensor("beta", "DT_FLOAT", &[param_len], "float_val", &beta);
    text += &tensor("eps", "DT_FLOAT", &[], "float_val", &[1e-3]);
    text += &tensor("axes1", "DT_INT32", &[1], "int_val", &[axis as f64]);
    text += &tensor("axes2", "DT_INT32", &[1], "int_val", &[axis as f64]);
    let keep = "attr { key: \"keep_dims\" value { b: true } }";
    text += &format!(
        "node {{ name: \"mean\" op: \"Mean\" input: \"x\" input: \"axes1\" {keep} }}\n\
         node {{ name: \"sg\" op: \"StopGradient\" input: \"mean\" }}\n\
         node {{ name: \"sqd\" op: \"SquaredDifference\" input: \"x\" input: \"sg\" }}\n\
         node {{ name: \"var\" op: \"Mean\" input: \"sqd\" input: \"axes2\" {keep} }}\n\
         node {{ name: \"add\" op: \"AddV2\" input: \"var\" input: \"eps\" }}\n\
         node {{ name: \"rsqrt\" op: \"Rsqrt\" input: \"add\" }}\n\
         node {{ name: \"m\" op: \"Mul\" input: \"rsqrt\" input: \"gamma\" }}\n\
         node {{ name: \"xm\" op: \"Mul\" input: \"x\" input: \"m\" }}\n\
         node {{ name: \"meanm\" op: \"Mul\" input: \"mean\" input: \"m\" }}\n\
         node {{ name: \"sub\" op: \"Sub\" input: \"beta\" input: \"meanm\" }}\n\
         node {{ name: \"y\" op: \"AddV2\" input: \"xm\" input: \"sub\" }}\n"
    );
    Model::from_text(&text)
}

/// The layer norm runs as one step, bit-identical to the unfused ops, over the last axis
/// (given as 1 or -1) and in its general form (axis 0, scalar gamma and beta); with an
/// intermediate also fetched, the ops stay unfused.
#[test]
fn layer_norm_fuses_bit_exactly() -> TestResult {
    let data: Vec<f32> = (0..24)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.61)
        .collect();
    let x = Value::new(vec![4, 6], data)?;
    for (axis, param_len) in [(1, 6), (-1, 6), (0, 1), (1, 1)] {
        for fetches in [&["y"][..], &["y", "var"]] {
            let model = layer_norm_graph(axis, param_len)?;
            let build = |unoptimized| {
                Session::new(
                    &model,
                    None,
                    fetches,
                    &["x"],
                    SessionOptions {
                        unoptimized,
                        ..Default::default()
                    },
                )
            };
            let (fast, plain) = (build(false)?, build(true)?);
            let label = format!("axis {axis}, {param_len} parameters, fetches {fetches:?}");
            assert_eq!(
                fast.num_steps() == 1,
                fetches.len() == 1,
                "{label}: {} steps",
                fast.num_steps()
            );
            let got = fast.run(&[("x", x.clone())])?;
            let want = plain.run(&[("x", x.clone())])?;
            for (g, w) in got.iter().zip(&want) {
                let bits = |t: &Value| {
                    t.as_f32()
                        .map(|t| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                };
                assert!(bits(g).is_some(), "{label}: float32 output");
                assert_eq!(bits(g), bits(w), "{label}");
                assert_eq!(g.shape(), w.shape(), "{label}");
            }
        }
    }
    Ok(())
}

/// Attention as google-research/bert writes it: `[batch, seq, heads, depth]` inputs moved to
/// `[batch, heads, seq, depth]` by `Transpose`s, two batch products, and the context moved
/// back.
fn attention_graph() -> Result<Model, ckpt_graph::Error> {
    let mut text = String::new();
    for name in ["q", "k", "v"] {
        text += &format!(
            "node {{ name: \"{name}\" op: \"Placeholder\" attr {{ key: \"dtype\" value {{ type: DT_FLOAT }} }} }}\n"
        );
    }
    text += &tensor("perm", "DT_INT32", &[4], "int_val", &[0., 2., 1., 3.]);
    let adj = |b: bool| format!("attr {{ key: \"adj_y\" value {{ b: {b} }} }}");
    text += &format!(
        "node {{ name: \"tq\" op: \"Transpose\" input: \"q\" input: \"perm\" }}\n\
         node {{ name: \"tk\" op: \"Transpose\" input: \"k\" input: \"perm\" }}\n\
         node {{ name: \"tv\" op: \"Transpose\" input: \"v\" input: \"perm\" }}\n\
         node {{ name: \"scores\" op: \"BatchMatMulV2\" input: \"tq\" input: \"tk\" {} }}\n\
         node {{ name: \"ctx\" op: \"BatchMatMulV2\" input: \"scores\" input: \"tv\" {} }}\n\
         node {{ name: \"out\" op: \"Transpose\" input: \"ctx\" input: \"perm\" }}\n",
        adj(true),
        adj(false)
    );
    Model::from_text(&text)
}

/// The transposes around attention's batch products fold into them (two steps instead of
/// six) with bit-identical results, at BERT's head shape and an odd one; a fetched transpose
/// or product stays as it is; a shape mismatch still names the product.
#[test]
fn attention_transposes_fold_into_the_products_bit_exactly() -> TestResult {
    let model = attention_graph()?;
    let values = |n: usize, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f32 - 506.0) / 317.0)
            .collect()
    };
    for shape in [[2usize, 128, 4, 64], [3, 7, 2, 5]] {
        let n: usize = shape.iter().product();
        let feeds = [
            ("q", Value::new(shape.to_vec(), values(n, 1))?),
            ("k", Value::new(shape.to_vec(), values(n, 2))?),
            ("v", Value::new(shape.to_vec(), values(n, 3))?),
        ];
        for (fetches, steps) in [(&["out"][..], 2), (&["out", "tk"], 3), (&["out", "ctx"], 3)] {
            let build = |unoptimized| {
                Session::new(
                    &model,
                    None,
                    fetches,
                    &["q", "k", "v"],
                    SessionOptions {
                        unoptimized,
                        ..Default::default()
                    },
                )
            };
            let (fast, plain) = (build(false)?, build(true)?);
            let label = format!("{shape:?}, fetches {fetches:?}");
            assert_eq!(fast.num_steps(), steps, "{label}");
            assert_eq!(plain.num_steps(), 6, "{label}");
            let got = fast.run(&feeds)?;
            let want = plain.run(&feeds)?;
            for (g, w) in got.iter().zip(&want) {
                let bits = |t: &Value| {
                    t.as_f32()
                        .map(|t| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                };
                assert!(bits(g).is_some(), "{label}: float32 output");
                assert_eq!(g.shape(), w.shape(), "{label}");
                assert_eq!(bits(g), bits(w), "{label}");
            }
        }
    }
    // k with another depth: the first product names itself and both (transposed) shapes.
    let fast = Session::new(
        &model,
        None,
        &["out"],
        &["q", "k", "v"],
        SessionOptions::default(),
    )?;
    let err = fast
        .run(&[
            ("q", Value::new(vec![1, 3, 2, 4], vec![0.0f32; 24])?),
            ("k", Value::new(vec![1, 3, 2, 5], vec![0.0f32; 30])?),
            ("v", Value::new(vec![1, 3, 2, 4], vec![0.0f32; 24])?),
        ])
        .err()
        .ok_or("mismatched depths ran")?;
    match err {
        Error::Node { node, op, message } => {
            assert_eq!((node.as_str(), op.as_str()), ("scores", "BatchMatMulV2"));
            assert_eq!(
                message,
                "inner dimensions disagree: [1,2,3,4] x [1,2,3,5] (adj_y)"
            );
        }
        other => return Err(format!("unexpected error {other}").into()),
    }
    Ok(())
}
