//! Behaviour tests of the checkpoint tools of issue 12: `drop --optimizer` identifying optimizer
//! state exactly (object graph, `.meta`, names), `diff`, `average`, `cast`, `show --stats` and
//! `--json`, `ls --objects`, `completions`, and the refusal to overwrite without `--force`.
//!
//! The expectations come from TensorFlow: the `tf1_adam` and `keras_opt` fixtures record which
//! variables the optimizer itself lists, the keys a model saves without an optimizer, numpy's
//! mean of three checkpoints, `tf.cast`'s results and the largest differences.

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, ensure, Context, Result};
use common::npz::{f32_npy, make_checkpoint, read_npz_file};
use common::{
    ckpt, copy_fixture, expected, file_names, fixture, flip_bit, hex, listed_names, shown_values,
};
use serde_json::Value;

/// The fixture's expected.json, whole.
fn expected_json(name: &str) -> Result<Value> {
    let path = fixture(name).join("expected.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn strings(value: &Value, key: &str) -> Result<Vec<String>> {
    value
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no {key}"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("{key}"))
        })
        .collect()
}

/// name -> hex bytes of an object of expected.json.
fn hex_map(value: &Value) -> Result<BTreeMap<String, Vec<u8>>> {
    value
        .as_object()
        .ok_or_else(|| anyhow!("not an object"))?
        .iter()
        .map(|(k, v)| Ok((k.clone(), hex(v.as_str().ok_or_else(|| anyhow!("{k}"))?)?)))
        .collect()
}

#[test]
fn drop_optimizer_follows_the_optimizer_ops_of_a_tf1_meta_graph() -> Result<()> {
    let exp = expected_json("tf1_adam")?;
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("slim/model.ckpt");
    ckpt([
        Path::new("drop"),
        &fixture("tf1_adam"),
        &out,
        Path::new("--optimizer"),
    ])?
    .success()?
    .stderr_has(&["wrote 5 tensors", "(9 dropped)"])?;
    // Exactly what AdamOptimizer lists as its slots, beta powers and learning rate goes; the
    // EMA shadow of dense/kernel and global_step stay.
    assert_eq!(listed_names(&out)?, strings(&exp, "model_variables")?);
    let tf = expected("tf1_adam")?.checkpoint("model.ckpt-3")?.clone();
    let npz = temp.path().join("slim.npz");
    ckpt([Path::new("export"), &out, &npz])?.success()?;
    for (name, array) in read_npz_file(&npz)? {
        assert_eq!(
            Some(&array.data[..]),
            tf.variable(&name)?.bytes.as_deref(),
            "{name}"
        );
    }

    // --dry-run: the same list with the reason for each, nothing written.
    let dry = temp.path().join("dry/model.ckpt");
    let run = ckpt([
        Path::new("drop"),
        &fixture("tf1_adam"),
        &dry,
        Path::new("--optimizer"),
        Path::new("--dry-run"),
    ])?
    .success()?;
    let listed: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    assert_eq!(listed, strings(&exp, "optimizer_state")?);
    assert!(
        run.stdout
            .contains("dense/kernel/Adam\toptimizer state, from the optimizer ops of the graph"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("input `m` of"), "{}", run.stdout);
    run.stderr_has(&["would drop 9 of 14 tensors", "nothing written"])?;
    assert!(!temp.path().join("dry").exists());
    Ok(())
}

#[test]
fn drop_optimizer_rewrites_the_object_graph_of_keras_weights() -> Result<()> {
    let temp = tempfile::tempdir()?;
    for case in ["keras_opt/adam", "keras_opt/legacy_momentum"] {
        let exp = expected_json(case)?;
        let out = temp.path().join(case).join("weights");
        ckpt([
            Path::new("drop"),
            &fixture(case),
            &out,
            Path::new("--optimizer"),
        ])?
        .success()?
        .stderr_has(&["object graph rewritten without them"])?;
        // The keys the same model saves with no optimizer at all.
        assert_eq!(listed_names(&out)?, strings(&exp, "model_keys")?, "{case}");
        let tree = ckpt([Path::new("ls"), Path::new("--objects"), &out])?
            .success()?
            .stdout;
        assert!(!tree.contains("optimizer"), "{case}: {tree}");
        assert!(!tree.contains("OPTIMIZER_SLOT"), "{case}: {tree}");
        assert!(
            tree.contains("    kernel -> layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE\n"),
            "{case}: {tree}"
        );
        // The input's tree names its optimizer.
        let tree = ckpt([Path::new("ls"), Path::new("--objects"), &fixture(case)])?
            .success()?
            .stdout;
        assert!(tree.contains("\n  optimizer\n"), "{case}: {tree}");
    }
    // A checkpoint without optimizer state: a warning, not silence.
    ckpt([
        Path::new("drop"),
        &fixture("tf2_weights"),
        &temp.path().join("w/weights"),
        Path::new("--optimizer"),
    ])?
    .success()?
    .stderr_has(&["warning: --optimizer found no optimizer state", "0 dropped"])?;
    Ok(())
}

#[test]
fn drop_optimizer_without_graph_uses_bert_and_adafactor_names_and_says_so() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let v = f32_npy(vec![2], &[1.0, 2.0]);
    let names = [
        "bert/encoder/kernel:0",
        "bert/encoder/kernel/adam_m:0",
        "bert/encoder/kernel/adam_v:0",
        "shared/embedding:0",
        "shared/embedding_slot_vr:0",
        "shared/embedding_slot_vc:0",
        "layer_norm/scale:0",
        "layer_norm/scale_slot_v:0",
        "orphan/adam_m:0",
        "global_step:0",
    ];
    let arrays: Vec<(&str, &_)> = names.iter().map(|n| (*n, &v)).collect();
    let prefix = make_checkpoint(temp.path(), "named", &arrays)?;
    let out = temp.path().join("slim/model.ckpt");
    ckpt([Path::new("drop"), &prefix, &out, Path::new("--optimizer")])?
        .success()?
        .stderr_has(&["note: no object graph", "names", "(5 dropped)"])?;
    // A slot-like name whose variable is not in the checkpoint is kept.
    assert_eq!(
        listed_names(&out)?,
        [
            "bert/encoder/kernel",
            "global_step",
            "layer_norm/scale",
            "orphan/adam_m",
            "shared/embedding"
        ]
    );
    Ok(())
}

#[test]
fn writing_commands_refuse_to_overwrite_without_force() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let prefix = make_checkpoint(
        temp.path(),
        "in",
        &[
            ("w", &f32_npy(vec![2], &[1.0, 2.0])),
            ("w/Momentum", &f32_npy(vec![2], &[0.5, 0.5])),
        ],
    )?;
    // Its own input.
    ckpt([
        Path::new("drop"),
        &prefix,
        &prefix,
        Path::new("--match"),
        Path::new("Momentum"),
    ])?
    .failure()?
    .stderr_has(&["is the input checkpoint", "--force"])?;
    assert_eq!(listed_names(&prefix)?, ["w", "w/Momentum"]);
    // With --force it is replaced once the new one is complete.
    ckpt([
        Path::new("drop"),
        &prefix,
        &prefix,
        Path::new("--match"),
        Path::new("Momentum"),
        Path::new("--force"),
    ])?
    .success()?;
    assert_eq!(listed_names(&prefix)?, ["w"]);
    assert_eq!(shown_values(&prefix, "w")?, "[1. 2.]");
    ckpt([Path::new("verify"), &prefix])?.success()?;
    let dir = prefix.parent().ok_or_else(|| anyhow!("no parent"))?;
    assert_eq!(
        file_names(dir)?,
        ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    );
    // Another existing checkpoint.
    let other = make_checkpoint(temp.path(), "other", &[("x", &f32_npy(vec![1], &[3.0]))])?;
    for args in [
        vec!["rename", "--from", "w", "--to", "v"],
        vec!["cast", "--to", "float16"],
    ] {
        let mut argv: Vec<&Path> = vec![Path::new(args[0]), &prefix, &other];
        argv.extend(args[1..].iter().map(Path::new));
        ckpt(argv)?
            .failure()?
            .stderr_has(&["already holds a checkpoint", "--force"])?;
    }
    ckpt([Path::new("average"), &other, &prefix, &prefix])?
        .failure()?
        .stderr_has(&["already holds a checkpoint"])?;
    assert_eq!(listed_names(&other)?, ["x"]);
    // rename reports what it renamed, not "dropped"; a pattern matching nothing is a warning.
    let renamed = temp.path().join("renamed/model.ckpt");
    ckpt([
        Path::new("rename"),
        &prefix,
        &renamed,
        Path::new("--from"),
        Path::new("nothing"),
        Path::new("--to"),
        Path::new("x"),
    ])?
    .success()?
    .stderr_has(&[
        "warning: --from \"nothing\" matches no tensor name",
        "(0 renamed)",
    ])?;
    Ok(())
}

#[test]
fn diff_reports_changes_with_diff_exit_codes() -> Result<()> {
    let exp = expected_json("tf1_adam")?;
    let dir = fixture("tf1_adam");
    let (two, three) = (dir.join("model.ckpt-2"), dir.join("model.ckpt-3"));
    ckpt([Path::new("diff"), &three, &three])?
        .success()?
        .stdout
        .contains("identical")
        .then_some(())
        .ok_or_else(|| anyhow!("no `identical`"))?;
    let run = ckpt([Path::new("diff"), &two, &three, Path::new("--json")])?;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout)?;
    let changed = json["changed"]
        .as_array()
        .ok_or_else(|| anyhow!("no changed"))?;
    let want = exp["max_abs_diff_2_3"]
        .as_object()
        .ok_or_else(|| anyhow!("no max_abs_diff_2_3"))?;
    let mut previous = f64::INFINITY;
    let mut floats = 0;
    for c in changed {
        let name = c["name"].as_str().unwrap_or_default();
        let got = c["max_abs_diff"]
            .as_f64()
            .ok_or_else(|| anyhow!("{name}"))?;
        // Largest change first.
        assert!(got <= previous, "{name}: not sorted");
        previous = got;
        if let Some(w) = want.get(name) {
            // |a - b| of two float32 values is exact in float64: numpy's value (to the
            // precision JSON parsing keeps).
            let w = w.as_f64().ok_or_else(|| anyhow!("{name}"))?;
            assert!((got - w).abs() <= w * 1e-15, "{name}: {got} vs {w}");
            floats += 1;
        }
    }
    // Every float tensor numpy saw change is listed (lr is the same in both).
    let moved = want.values().filter(|w| w.as_f64() != Some(0.0)).count();
    assert_eq!(floats, moved);
    // Different tensors and a missing checkpoint.
    let run = ckpt([Path::new("diff"), &three, &fixture("tf1_saver")])?;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.contains("only in A\tlr\tfloat32\t[]\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("only in B\tcounter\tint32\t[]\n"),
        "{}",
        run.stdout
    );
    let run = ckpt([Path::new("diff"), &three, &dir.join("nothing")])?;
    assert_eq!(run.code, Some(2));
    Ok(())
}

#[test]
fn average_is_numpys_float64_mean_and_refuses_disagreeing_inputs() -> Result<()> {
    let exp = expected_json("tf1_adam")?;
    let dir = fixture("tf1_adam");
    let temp = tempfile::tempdir()?;
    let out = temp.path().join("avg/model.ckpt");
    let inputs: Vec<_> = (1..=3)
        .map(|i| dir.join(format!("model.ckpt-{i}")))
        .collect();
    let mut argv = vec![Path::new("average"), &out];
    argv.extend(inputs.iter().map(|p| p.as_path()));
    ckpt(argv)?.success()?;
    let want = hex_map(&exp["average_1_2_3"])?;
    let npz = temp.path().join("avg.npz");
    ckpt([Path::new("export"), &out, &npz])?.success()?;
    let got: BTreeMap<String, Vec<u8>> = read_npz_file(&npz)?
        .into_iter()
        .map(|(n, a)| (n, a.data.into_owned()))
        .collect();
    for (name, bytes) in &want {
        assert_eq!(got.get(name), Some(bytes), "{name}");
    }
    // Integers from the last input.
    assert_eq!(shown_values(&out, "global_step")?, "3");

    // Inputs that disagree: every mismatch listed, nothing written.
    let bad = temp.path().join("bad/model.ckpt");
    ckpt([
        Path::new("average"),
        &bad,
        &inputs[2],
        &fixture("tf1_saver"),
    ])?
    .failure()?
    .stderr_has(&["cannot be averaged", "lr: in ", "counter: in "])?;
    assert!(!temp.path().join("bad").join("model.ckpt.index").exists());
    Ok(())
}

#[test]
fn cast_rounds_as_tf_cast_does() -> Result<()> {
    let exp = expected_json("tf1_adam")?;
    let dir = fixture("tf1_adam");
    let temp = tempfile::tempdir()?;
    for to in ["float16", "bfloat16"] {
        let out = temp.path().join(to).join("model.ckpt");
        ckpt([
            Path::new("cast"),
            &dir.join("model.ckpt-3"),
            &out,
            Path::new("--to"),
            Path::new(to),
        ])?
        .success()?
        .stderr_has(&["rounding error"])?;
        let want = hex_map(&exp["cast"][to])?;
        let listing = ckpt([Path::new("ls"), &out])?.success()?.stdout;
        for (name, bytes) in &want {
            assert!(
                listing.contains(&format!("{name}\t{to}\t")),
                "{name}: {listing}"
            );
            // The stored bytes: export widens bfloat16, so compare through `show --json`'s
            // values against TensorFlow's rounded bits, decoded.
            let run = ckpt([
                Path::new("show"),
                &out,
                Path::new(name),
                Path::new("--json"),
            ])?
            .success()?;
            let json: Value = serde_json::from_str(&run.stdout)?;
            let mut got = Vec::new();
            flatten(&json["values"], &mut got);
            let want: Vec<f32> = bytes
                .chunks_exact(2)
                .map(|c| {
                    let bits = u16::from_le_bytes([c[0], c[1]]);
                    if to == "bfloat16" {
                        f32::from_bits(u32::from(bits) << 16)
                    } else {
                        f16_to_f64(bits) as f32
                    }
                })
                .collect();
            assert_eq!(got, want, "{to} {name}");
        }
        assert_eq!(shown_values(&out, "global_step")?, "3");
    }
    // --match that matches nothing: a warning naming it.
    ckpt([
        Path::new("cast"),
        &dir.join("model.ckpt-3"),
        &temp.path().join("none/model.ckpt"),
        Path::new("--to"),
        Path::new("float16"),
        Path::new("--match"),
        Path::new("^nothing$"),
    ])?
    .success()?
    .stderr_has(&["warning", "\"^nothing$\""])?;
    Ok(())
}

/// The numbers of nested JSON arrays, as float32 (serde_json's parsing may be 1 ulp off in
/// float64; every value compared here is a float32, float16 or bfloat16, exact in float32).
fn flatten(value: &Value, out: &mut Vec<f32>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        Value::Number(n) => out.extend(n.as_f64().map(|x| x as f32)),
        _ => out.push(f32::NAN),
    }
}

/// IEEE half to f64 (finite values and zeros; enough for weights).
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    sign * if exp == 0 {
        frac * 2f64.powi(-24)
    } else {
        (1.0 + frac / 1024.0) * 2f64.powi(exp - 15)
    }
}

#[test]
fn show_stats_and_json_and_completions() -> Result<()> {
    let tf = expected("tf1_adam")?.checkpoint("model.ckpt-3")?.clone();
    let bytes = tf
        .variable("dense/kernel")?
        .bytes
        .clone()
        .ok_or_else(|| anyhow!("no bytes"))?;
    let values: Vec<f64> = bytes
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let run = ckpt([
        Path::new("show"),
        &fixture("tf1_adam"),
        Path::new("dense/kernel"),
        Path::new("--stats"),
        Path::new("--json"),
    ])?
    .success()?;
    let json: Value = serde_json::from_str(&run.stdout)?;
    let s = &json["stats"];
    assert_eq!(s["min"].as_f64().map(|x| x as f32), Some(min as f32));
    assert_eq!(s["max"].as_f64().map(|x| x as f32), Some(max as f32));
    assert!((s["mean"].as_f64().unwrap_or(f64::NAN) - mean).abs() < 1e-12);
    assert!((s["std"].as_f64().unwrap_or(f64::NAN) - std).abs() < 1e-12);
    assert_eq!(s["count"].as_u64(), Some(12));
    assert_eq!(s["nan"].as_u64(), Some(0));
    let text = ckpt([
        Path::new("show"),
        &fixture("tf1_adam"),
        Path::new("dense/kernel"),
        Path::new("--stats"),
    ])?
    .success()?
    .stdout;
    assert!(text.contains(&format!("min:   {min}\n")), "{text}");
    assert!(text.contains("zeros: 0 of 12\n"), "{text}");
    // Values as JSON: exactly TensorFlow's float32 values.
    let run = ckpt([
        Path::new("show"),
        &fixture("tf1_adam"),
        Path::new("dense/kernel"),
        Path::new("--json"),
    ])?
    .success()?;
    let json: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(json["shape"], serde_json::json!([4, 3]));
    let mut got = Vec::new();
    flatten(&json["values"], &mut got);
    let want: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    assert_eq!(got, want);
    // Statistics of a string tensor: an error naming it.
    ckpt([
        Path::new("show"),
        &fixture("keras_opt/adam"),
        Path::new("_CHECKPOINTABLE_OBJECT_GRAPH"),
        Path::new("--stats"),
    ])?
    .failure()?
    .stderr_has(&["_CHECKPOINTABLE_OBJECT_GRAPH", "numeric"])?;

    let bash = ckpt([Path::new("completions"), Path::new("bash")])?
        .success()?
        .stdout;
    assert!(
        bash.contains("_ckpt()") && bash.contains("average"),
        "{bash}"
    );
    Ok(())
}

#[test]
fn an_object_graph_that_does_not_decode_is_an_error_and_nothing_is_written() -> Result<()> {
    let temp = tempfile::tempdir()?;
    // A field with wire type 7, which protobuf does not have.
    let garbage = common::npz::npy("|S4", vec![], b"\x0f\xff\xff\xff".to_vec());
    let prefix = make_checkpoint(
        temp.path(),
        "bad",
        &[
            ("_CHECKPOINTABLE_OBJECT_GRAPH", &garbage),
            ("w", &f32_npy(vec![1], &[1.0])),
        ],
    )?;
    let out = temp.path().join("out/model.ckpt");
    ckpt([Path::new("drop"), &prefix, &out, Path::new("--optimizer")])?
        .failure()?
        .stderr_has(&["_CHECKPOINTABLE_OBJECT_GRAPH"])?;
    assert!(!out.with_extension("ckpt.index").exists());
    assert!(!temp.path().join("out").exists() || file_names(&temp.path().join("out"))?.is_empty());
    ckpt([Path::new("ls"), Path::new("--objects"), &prefix])?
        .failure()?
        .stderr_has(&["_CHECKPOINTABLE_OBJECT_GRAPH"])?;
    Ok(())
}

/// `diff` and `average` check each tensor's crc32c in the same pass as their arithmetic (the
/// bytes are read once): a flipped bit in a float tensor is still an error naming the data
/// file and the checksum, `diff` exits 2 as diff(1) does on trouble, and `average` writes
/// nothing.
#[test]
fn diff_and_average_still_check_checksums() -> Result<()> {
    let (_temp, dir) = copy_fixture("tf1_saver")?;
    // Byte 20 lies in dense/kernel, a float32 tensor stored from offset 16.
    flip_bit(&dir.join("model.ckpt-4000.data-00000-of-00001"), 20, 1)?;
    let good = fixture("tf1_saver");
    let mentions = [
        "checksum mismatch",
        "model.ckpt-4000.data-00000-of-00001",
        "\"dense/kernel\"",
    ];
    for (a, b) in [(&good, &dir), (&dir, &good)] {
        let run = ckpt([Path::new("diff"), a, b])?;
        ensure!(
            run.code == Some(2) && run.stdout.is_empty(),
            "diff of a damaged checkpoint: exit {:?}, stdout {:?}",
            run.code,
            run.stdout
        );
        run.stderr_has(&mentions)?;
    }
    let out_dir = tempfile::tempdir()?;
    let out = out_dir.path().join("avg/model.ckpt");
    ckpt([Path::new("average"), &out, &good, &dir])?
        .failure()?
        .stderr_has(&mentions)?;
    ensure!(
        !out_dir.path().join("avg/model.ckpt.index").exists(),
        "average of a damaged checkpoint wrote its output"
    );
    // The undamaged pair still compares and averages.
    ensure!(ckpt([Path::new("diff"), &good, &good])?.code == Some(0));
    ckpt([Path::new("average"), &out, &good, &good])?.success()?;
    Ok(())
}

/// `average` hands each averaged tensor to a writer thread and averages the next one
/// meanwhile: the output holds the float64 mean of each element rounded once, is byte for byte
/// what a plain write of the same tensors gives, and a checksum that fails in a later tensor,
/// while an earlier one is being written, leaves nothing under the output's name and no
/// temporary file.
#[test]
fn average_writing_in_the_background_gives_the_same_bytes_and_no_partial_output() -> Result<()> {
    use ckpt_bundle::{BundleReader, BundleWriter, Tensor};
    let temp = tempfile::tempdir()?;
    // 5 MiB of float32 per large tensor: past the writer's 4 MiB buffer, so the thread writes
    // them.
    let n: usize = 5 << 18;
    let values = |seed: u32, t: u32| -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let h = i
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed * 7919 + t * 104_729);
                (h % 100_003) as f32 * 0.013 - 650.0
            })
            .collect()
    };
    let big = ["a/kernel", "b/kernel", "c/kernel"];
    let write = |name: &str, seed: u32| -> Result<std::path::PathBuf> {
        let prefix = temp.path().join(name).join("model.ckpt");
        let mut w = BundleWriter::create(&prefix)?;
        for (t, tensor) in big.iter().enumerate() {
            let v = values(seed, t as u32);
            w.add(tensor, &Tensor::from_slice(vec![n as u64 / 4, 4], &v)?)?;
        }
        let bias = [seed as f32, 0.5, -1.25];
        w.add("d/bias", &Tensor::from_slice(vec![3], &bias)?)?;
        w.add(
            "global_step",
            &Tensor::from_slice(vec![], &[seed as i64 * 100])?,
        )?;
        w.finish()?;
        Ok(prefix)
    };
    let (a, b) = (write("a", 1)?, write("b", 2)?);
    let out = temp.path().join("avg/model.ckpt");
    ckpt([Path::new("average"), &out, &a, &b])?.success()?;
    let (ra, rb, ro) = (
        BundleReader::open(&a)?,
        BundleReader::open(&b)?,
        BundleReader::open(&out)?,
    );
    for name in big.iter().chain(&["d/bias"]) {
        let (x, y, m) = (ra.read(name)?, rb.read(name)?, ro.read(name)?);
        let want: Vec<u32> = x
            .as_slice::<f32>()?
            .iter()
            .zip(y.as_slice::<f32>()?.iter())
            .map(|(p, q)| (((*p as f64) + (*q as f64)) / 2.0) as f32)
            .map(f32::to_bits)
            .collect();
        let got: Vec<u32> = m.as_slice::<f32>()?.iter().map(|v| v.to_bits()).collect();
        ensure!(got == want, "{name}: not the float64 mean rounded once");
    }
    ensure!(
        ro.read("global_step")?.as_slice::<i64>()?.to_vec() == [200],
        "step from the last input"
    );
    // The same tensors written again in the same order by a plain `add`: the same files.
    let again = temp.path().join("again/model.ckpt");
    let mut w = BundleWriter::create(&again)?;
    for t in ro.tensors() {
        w.add(&t.name, &ro.read(&t.name)?)?;
    }
    w.finish()?;
    for suffix in [".index", ".data-00000-of-00001"] {
        let file = |p: &Path| std::fs::read(format!("{}{suffix}", p.display()));
        ensure!(
            file(&out)? == file(&again)?,
            "{suffix} differs from a plain write"
        );
    }
    // A flipped bit in the third large tensor of `b` (stored after the first two): found while
    // the second is being written.
    flip_bit(
        &temp.path().join("b/model.ckpt.data-00000-of-00001"),
        2 * 4 * n as u64 + 100,
        3,
    )?;
    let bad = temp.path().join("bad/model.ckpt");
    ckpt([Path::new("average"), &bad, &a, &b])?
        .failure()?
        .stderr_has(&["checksum mismatch", "\"c/kernel\""])?;
    let left = file_names(&temp.path().join("bad"))?;
    ensure!(left.is_empty(), "a failed average left {left:?}");
    Ok(())
}
