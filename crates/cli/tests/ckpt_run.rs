//! Behaviour tests of `ckpt-run` (and `ckpt run`) on graphs TensorFlow 2.21 wrote: outputs
//! against TensorFlow's own, and the error a user gets for each kind of bad input.

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use ckpt_cli::npy::{read_npy, write_npy, NpyArray};
use common::{ckpt, fixture, Run};

fn npy(path: &Path) -> Result<NpyArray<'static>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    read_npy(&bytes, &path.display().to_string()).map(NpyArray::into_owned)
}

fn f32s(array: &NpyArray<'_>) -> Vec<f32> {
    array
        .data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Runs the MLP fixture with `extra` arguments, writing into a fresh directory.
fn run_mlp(extra: &[&str]) -> Result<(tempfile::TempDir, Run)> {
    let out = tempfile::tempdir()?;
    let mlp = fixture("mlp");
    let x = mlp.join("x.npy");
    let mut args = vec![
        "run".to_string(),
        mlp.join("model.ckpt-150").display().to_string(),
        "--feed".into(),
        format!("x={}", x.display()),
        "--out".into(),
        out.path().display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = ckpt(&args)?;
    Ok((out, run))
}

#[test]
fn mlp_matches_tensorflow() -> Result<()> {
    let (out, run) = run_mlp(&["--feed", "keep_prob=1.0", "--fetch", "logits,pred"])?;
    run.success()?;
    let mlp = fixture("mlp");
    // argmax is an int64 tensor and must be identical.
    let pred = npy(&out.path().join("pred.npy"))?;
    let want_pred = npy(&mlp.join("pred.npy"))?;
    assert_eq!(pred.descr, "<i8");
    assert_eq!(pred, want_pred);
    // logits within 1e-5 relative of TensorFlow's (1e-5 absolute near zero).
    let logits = npy(&out.path().join("logits.npy"))?;
    let want = npy(&mlp.join("logits.npy"))?;
    assert_eq!(logits.shape, want.shape);
    for (got, want) in f32s(&logits).iter().zip(f32s(&want)) {
        ensure!(
            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
            "logit {got} vs TensorFlow's {want}"
        );
    }
    Ok(())
}

#[test]
fn ckpt_run_binary_prints_values() -> Result<()> {
    let mlp = fixture("mlp");
    let output = Command::new(env!("CARGO_BIN_EXE_ckpt-run"))
        .arg(&mlp)
        .args([
            "--feed",
            &format!("x={}", mlp.join("x.npy").display()),
            "--feed",
            "keep_prob=1",
            "--fetch",
            "pred",
        ])
        .output()?;
    ensure!(
        output.status.success(),
        "ckpt-run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout)?;
    let want = npy(&mlp.join("pred.npy"))?;
    let classes: Vec<String> = want
        .data
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]).to_string())
        .collect();
    assert_eq!(
        stdout,
        format!("pred: int64 [64]\n[{}]\n", classes.join(" "))
    );
    Ok(())
}

#[test]
fn frozen_graph_and_inference_mode_agree_with_tensorflow() -> Result<()> {
    let frozen = fixture("frozen");
    let out = tempfile::tempdir()?;
    let x = fixture("mlp").join("x.npy");
    ckpt([
        "run".as_ref(),
        frozen.join("mlp_frozen.pb").as_os_str(),
        "--feed".as_ref(),
        format!("x={}", x.display()).as_ref(),
        "--feed".as_ref(),
        "keep_prob=0.5".as_ref(),
        "--inference".as_ref(),
        "--fetch".as_ref(),
        "pred".as_ref(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ])?
    .success()?;
    // keep_prob is fed 0.5, but --inference removed the dropout: TensorFlow's keep_prob=1 answer.
    assert_eq!(
        npy(&out.path().join("pred.npy"))?,
        npy(&frozen.join("pred.npy"))?
    );
    Ok(())
}

#[test]
fn describe_lists_placeholders_and_outputs() -> Result<()> {
    let run = ckpt([
        "run".as_ref(),
        fixture("mlp").as_os_str(),
        "--describe".as_ref(),
    ])?
    .success()?;
    assert!(
        run.stdout
            .contains("placeholders:\n  x\tfloat32\t[?,784]\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  keep_prob\tfloat32\t[]\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("likely outputs:\n  pred\tArgMax\n"),
        "{}",
        run.stdout
    );
    Ok(())
}

#[test]
fn unfed_keep_prob_is_named_with_a_hint() -> Result<()> {
    let (_out, run) = run_mlp(&["--fetch", "pred"])?;
    let run = run.failure()?;
    run.stderr_has(&["keep_prob", "1.0"])?;
    run.stderr_has(&[
        "placeholder \"keep_prob\" must be fed",
        "feed 1.0 for inference",
    ])?;
    Ok(())
}

#[test]
fn unknown_fetch_suggests_close_names() -> Result<()> {
    let (_out, run) = run_mlp(&["--feed", "keep_prob=1", "--fetch", "logitz"])?;
    let run = run.failure()?;
    run.stderr_has(&["logitz", "logits"])?;
    run.stderr_has(&["no node named \"logitz\"", "did you mean \"logits\""])
}

#[test]
fn feed_of_the_wrong_shape_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("x.npy");
    let mut bytes = Vec::new();
    write_npy(
        &mut bytes,
        &NpyArray {
            descr: "<f4".into(),
            shape: vec![2, 783],
            data: vec![0; 2 * 783 * 4].into(),
        },
    )?;
    std::fs::write(&bad, bytes)?;
    let run = ckpt([
        "run".as_ref(),
        fixture("mlp").as_os_str(),
        "--feed".as_ref(),
        format!("x={}", bad.display()).as_ref(),
        "--feed".as_ref(),
        "keep_prob=1".as_ref(),
        "--fetch".as_ref(),
        "pred".as_ref(),
    ])?;
    let run = run.failure()?;
    run.stderr_has(&["\"x\"", "783", "784"])?;
    run.stderr_has(&["feed \"x\"", "does not match the placeholder's shape"])
}

#[test]
fn unparsable_npy_is_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("garbage.npy");
    std::fs::write(&bad, b"this is not numpy")?;
    let run = ckpt([
        "run".as_ref(),
        fixture("mlp").as_os_str(),
        "--feed".as_ref(),
        format!("x={}", bad.display()).as_ref(),
        "--fetch".as_ref(),
        "pred".as_ref(),
    ])?;
    run.failure()?
        .stderr_has(&["garbage.npy", "not an npy file"])
}

/// A copy of the MLP fixture's files in a temporary directory.
fn mlp_copy() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for entry in std::fs::read_dir(fixture("mlp"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.path().join(entry.file_name()))?;
    }
    Ok(dir)
}

#[test]
fn garbage_meta_is_named() -> Result<()> {
    let dir = mlp_copy()?;
    std::fs::write(dir.path().join("model.ckpt-150.meta"), [0xffu8; 100])?;
    let run = ckpt([
        "run".as_ref(),
        dir.path().join("model.ckpt-150").as_os_str(),
        "--describe".as_ref(),
    ])?;
    run.failure()?
        .stderr_has(&["model.ckpt-150.meta", "not a MetaGraphDef or GraphDef"])
}

#[test]
fn variables_missing_from_the_checkpoint_are_named() -> Result<()> {
    let dir = mlp_copy()?;
    let slim = dir.path().join("slim");
    ckpt([
        "drop".as_ref(),
        dir.path().join("model.ckpt-150").as_os_str(),
        slim.as_os_str(),
        "--match".as_ref(),
        "^fc2/".as_ref(),
    ])?
    .success()?;
    std::fs::copy(
        dir.path().join("model.ckpt-150.meta"),
        dir.path().join("slim.meta"),
    )?;
    let run = ckpt([
        "run".as_ref(),
        slim.as_os_str(),
        "--feed".as_ref(),
        format!("x={}", fixture("mlp").join("x.npy").display()).as_ref(),
        "--feed".as_ref(),
        "keep_prob=1".as_ref(),
        "--fetch".as_ref(),
        "pred".as_ref(),
    ])?;
    let run = run.failure()?;
    run.stderr_has(&["fc2/weights", "fc2/biases"])?;
    run.stderr_has(&["2 variable(s) missing from the checkpoint"])
}

#[test]
fn checkpoint_without_a_graph_says_so() -> Result<()> {
    let run = ckpt([
        "run".as_ref(),
        fixture("dtypes").join("ckpt").as_os_str(),
        "--describe".as_ref(),
    ])?;
    let run = run.failure()?;
    run.stderr_has(&["ckpt.meta", "frozen .pb"])?;
    run.stderr_has(&["no graph beside the checkpoint"])
}

#[test]
fn ops_lists_the_supported_ops_one_per_line() -> Result<()> {
    let via_ckpt = ckpt(["ops"])?.success()?;
    let output = Command::new(env!("CARGO_BIN_EXE_ckpt-run"))
        .arg("--ops")
        .output()?;
    ensure!(output.status.success(), "ckpt-run --ops failed");
    let via_run = String::from_utf8(output.stdout)?;
    assert_eq!(via_run, via_ckpt.stdout);
    let ops: Vec<&str> = via_run.lines().collect();
    assert_eq!(ops, ckpt_runtime::supported_ops());
    for op in ["MatMul", "Split", "ResourceGather", "Assert"] {
        ensure!(ops.contains(&op), "{op} missing from --ops");
    }
    Ok(())
}

/// A frozen graph x -> Lgamma -> Digamma -> Lgamma -> y, plus an unused SaveV2.
fn graph_with_missing_ops(dir: &Path) -> Result<std::path::PathBuf> {
    use ckpt_proto::attr_value::Value as Attr;
    use ckpt_proto::{AttrValue, DataType, GraphDef, Message, NodeDef};
    let float = AttrValue {
        value: Some(Attr::Type(DataType::DtFloat as i32)),
    };
    let node = |name: &str, op: &str, input: &str, attr: &str| NodeDef {
        name: name.into(),
        op: op.into(),
        input: if input.is_empty() {
            vec![]
        } else {
            vec![input.into()]
        },
        attr: [(attr.to_string(), float.clone())].into(),
        ..Default::default()
    };
    let def = GraphDef {
        node: vec![
            node("x", "Placeholder", "", "dtype"),
            node("a/lgamma", "Lgamma", "x", "T"),
            node("b/digamma", "Digamma", "a/lgamma", "T"),
            node("c/lgamma", "Lgamma", "b/digamma", "T"),
            node("y", "Identity", "c/lgamma", "T"),
            node("save/SaveV2", "SaveV2", "x", "T"),
        ],
        ..Default::default()
    };
    let path = dir.join("missing.pb");
    std::fs::write(&path, def.encode_to_vec())?;
    Ok(path)
}

#[test]
fn missing_ops_are_all_named_at_once_and_marked_by_describe() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pb = graph_with_missing_ops(dir.path())?;
    let run = ckpt([
        "run".as_ref(),
        pb.as_os_str(),
        "--feed".as_ref(),
        "x=1.0".as_ref(),
        "--fetch".as_ref(),
        "y".as_ref(),
    ])?
    .failure()?;
    let n = ckpt_runtime::supported_ops().len();
    assert_eq!(
        run.stderr,
        format!(
            "error: 2 unsupported ops: Lgamma (2 nodes, e.g. a/lgamma), Digamma (1 node, e.g. b/digamma)\n\
             (`ckpt-run --ops` lists the {n} supported ops)\n"
        )
    );
    let run = ckpt(["run".as_ref(), pb.as_os_str(), "--describe".as_ref()])?.success()?;
    ensure!(
        run.stdout
            .contains("  y\tIdentity\tneeds unsupported ops: Lgamma, Digamma\n"),
        "{}",
        run.stdout
    );
    Ok(())
}

#[test]
fn text_model_takes_words_as_bytes_unicode_and_text() -> Result<()> {
    let dir = fixture("text_lookup");
    let model = dir.join("model.ckpt");
    let want_label = npy(&dir.join("label.npy"))?;
    let want_ids = npy(&dir.join("ids.npy"))?;
    // numpy S and U arrays give the same words.
    for words in ["words.npy", "words_unicode.npy"] {
        let out = tempfile::tempdir()?;
        ckpt([
            "run".as_ref(),
            model.as_os_str(),
            "--feed".as_ref(),
            format!("words={}", dir.join(words).display()).as_ref(),
            "--fetch".as_ref(),
            "label,ids".as_ref(),
            "--out".as_ref(),
            out.path().as_os_str(),
        ])?
        .success()?;
        assert_eq!(npy(&out.path().join("label.npy"))?, want_label, "{words}");
        assert_eq!(npy(&out.path().join("ids.npy"))?, want_ids, "{words}");
    }
    // A quoted string feeds a string scalar; a .txt file a vector of its lines.
    let out = tempfile::tempdir()?;
    let lines = out.path().join("words.txt");
    std::fs::write(&lines, "cat\nzebra\n")?;
    let run = ckpt([
        "run".as_ref(),
        model.as_os_str(),
        "--feed".as_ref(),
        "sentence=\"a b,c\"".as_ref(),
        "--fetch".as_ref(),
        "split_values".as_ref(),
    ])?
    .success()?;
    assert_eq!(run.stdout, "split_values: string [3]\n[b'a' b'b' b'c']\n");
    let run = ckpt([
        "run".as_ref(),
        model.as_os_str(),
        "--feed".as_ref(),
        format!("words={}", lines.display()).as_ref(),
        "--fetch".as_ref(),
        "buckets".as_ref(),
    ])?;
    // words is [None, None]: a vector does not fit, and the error says so.
    ensure!(run.code == Some(1), "a rank-1 feed for [?,?] must fail");
    ensure!(run.stderr.contains("feed \"words\""), "{}", run.stderr);
    Ok(())
}

#[test]
fn a_thread_count_past_the_limit_is_refused() -> Result<()> {
    for bad in ["0", "1025", "100000000"] {
        let (_out, run) = run_mlp(&["--feed", "keep_prob=1.0", "--threads", bad])?;
        ensure!(
            run.code == Some(2) && run.stderr.contains("the count must be 1 to 1024"),
            "--threads {bad}: {run:?}"
        );
    }
    let (_out, run) = run_mlp(&[
        "--feed",
        "keep_prob=1.0",
        "--fetch",
        "pred",
        "--threads",
        "3",
    ])?;
    run.success()?;
    Ok(())
}

#[test]
fn out_files_are_written_whole_or_not_at_all() -> Result<()> {
    // A normal run leaves only the .npy files, no temporary files beside them.
    let (out, run) = run_mlp(&["--feed", "keep_prob=1.0", "--fetch", "logits,pred"])?;
    run.success()?;
    let mut names: Vec<String> = std::fs::read_dir(out.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(names, ["logits.npy", "pred.npy"]);
    // When the final name cannot be written (here it is a directory), the run fails naming
    // it and removes its temporary file.
    let out = tempfile::tempdir()?;
    std::fs::create_dir(out.path().join("pred.npy"))?;
    std::fs::write(out.path().join("pred.npy").join("keep"), b"x")?;
    let mlp = fixture("mlp");
    let run = ckpt([
        "run".to_string(),
        mlp.join("model.ckpt-150").display().to_string(),
        "--feed".into(),
        format!("x={}", mlp.join("x.npy").display()),
        "--feed".into(),
        "keep_prob=1.0".into(),
        "--fetch".into(),
        "pred".into(),
        "--out".into(),
        out.path().display().to_string(),
    ])?
    .failure()?;
    run.stderr_has(&["cannot write", "pred.npy"])?;
    let mut left: Vec<String> = std::fs::read_dir(out.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    left.sort();
    assert_eq!(left, ["pred.npy"]);
    assert_eq!(
        std::fs::read(out.path().join("pred.npy").join("keep"))?,
        b"x"
    );
    Ok(())
}

/// `--bench N --profile --batch B`: the timing line for batch B (no tensor printed), then the
/// per-op table with every op type the MLP runs and the slowest nodes; `--profile` alone is a
/// usage error.
#[test]
fn bench_profile_prints_timings_per_op() -> Result<()> {
    let (_out, run) = run_mlp(&[
        "--feed",
        "keep_prob=1.0",
        "--fetch",
        "logits",
        "--inference",
        "--bench",
        "5",
        "--profile",
        "--batch",
        "3",
    ])?;
    let run = run.success()?;
    let mut lines = run.stdout.lines();
    let first = lines.next().unwrap_or_default();
    ensure!(
        first.starts_with("batch 3, 5 runs after warm-up: median ") && first.contains("samples/s"),
        "timing line: {first}"
    );
    ensure!(
        !run.stdout.contains("dtype"),
        "no tensor printed: {}",
        run.stdout
    );
    let steps = lines.next().unwrap_or_default();
    ensure!(
        steps.starts_with("steps: ") && steps.contains(" ms in "),
        "{steps}"
    );
    let table: Vec<&str> = run.stdout.lines().collect();
    for op in ["MatMul", "Relu"] {
        ensure!(
            table
                .iter()
                .any(|l| l.trim_end().ends_with(&format!("  {op}"))),
            "no {op} row in:\n{}",
            run.stdout
        );
    }
    let slowest = table
        .iter()
        .position(|l| *l == "slowest nodes:")
        .context("no slowest-nodes list")?;
    let first_slowest = table.get(slowest + 1).copied().unwrap_or_default();
    ensure!(
        first_slowest.ends_with(')') && first_slowest.contains('%'),
        "{}",
        run.stdout
    );
    let (_out, run) = run_mlp(&["--feed", "keep_prob=1.0", "--fetch", "logits", "--profile"])?;
    ensure!(
        run.code == Some(2) && run.stderr.contains("--bench"),
        "{}",
        run.stderr
    );
    Ok(())
}
