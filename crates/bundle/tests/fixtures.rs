//! Checkpoints written by real TensorFlow 2.21 (fixtures/, made by make_fixtures.py), read
//! and compared bit for bit with TensorFlow's own readings in each expected.json; and
//! bundles written by this crate compared byte for byte with TensorFlow's files.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use ckpt_bundle::state::{format_state, latest_checkpoint, parse_state, read_state};
use ckpt_bundle::{parse_shape_and_slice, BundleWriter, Checkpoint, DType, Format, Tensor};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn unhex(s: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd hex length: {s}").into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(Into::into))
        .collect()
}

fn load(path: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// Every directory below fixtures/ holding an expected.json.
fn expected_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![fixtures()];
    while let Some(dir) = stack.pop() {
        let Ok(list) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in list.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "expected.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn shape_of(v: &Value) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    v.as_array()
        .ok_or("shape is not an array")?
        .iter()
        .map(|d| d.as_u64().ok_or_else(|| "bad dim".into()))
        .collect()
}

fn strings_of(v: &Value) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    v.as_array()
        .ok_or("strings is not an array")?
        .iter()
        .map(|s| unhex(s.as_str().ok_or("string is not hex")?))
        .collect()
}

/// Builds the tensor a fixture record describes (`hex` or `strings`).
fn tensor_of(rec: &Value) -> Result<Tensor<'static>, Box<dyn std::error::Error>> {
    let dtype_name = rec["dtype"].as_str().ok_or("no dtype")?;
    let dtype =
        DType::from_name(dtype_name).ok_or_else(|| format!("unknown dtype {dtype_name}"))?;
    let shape = shape_of(&rec["shape"])?;
    if let Some(hex) = rec["hex"].as_str() {
        Ok(Tensor::from_bytes(dtype, shape, unhex(hex)?)?)
    } else {
        let strings = strings_of(&rec["strings"])?
            .into_iter()
            .map(Cow::Owned)
            .collect();
        Ok(Tensor::from_strings(dtype, shape, strings)?)
    }
}

/// Compares one checkpoint with TensorFlow's readings: listing, dtypes, shapes, values.
fn check_checkpoint(dir: &Path, ckpt: &Value) -> Result<usize, Box<dyn std::error::Error>> {
    let prefix = dir.join(ckpt["prefix"].as_str().ok_or("no prefix")?);
    let reader = Checkpoint::open(&prefix)?;
    let where_ = prefix.display().to_string();
    assert_eq!(reader.prefix(), prefix);
    match &reader {
        Checkpoint::V2(bundle) => {
            assert!(ckpt["format"].is_null(), "{where_}: read as V2");
            if let Some(n) = ckpt["header"]["num_shards"].as_u64() {
                assert_eq!(bundle.num_shards() as u64, n, "{where_}");
            }
        }
        Checkpoint::V1(v1) => {
            assert_eq!(ckpt["format"].as_str(), Some("v1"), "{where_}: read as V1");
            assert_eq!(reader.format(), Format::V1);
            let files: Vec<String> = v1
                .files()
                .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            let want: Vec<&str> = ckpt["data_files"]
                .as_array()
                .ok_or("no data_files")?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(files, want, "{where_}");
            assert!(v1.missing_files().is_empty(), "{where_}");
        }
    }
    let vars = ckpt["variables"].as_array().ok_or("no variables")?;
    let mut want_names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    want_names.sort();
    let names: Vec<&str> = reader.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, want_names, "{where_}: listing");
    for rec in vars {
        let name = rec["name"].as_str().ok_or("no name")?;
        let got = reader.read(name)?;
        if let Some(nbytes) = rec["nbytes"].as_u64() {
            // Large tensors are recorded by length, crc32c and first bytes.
            let dtype =
                DType::from_name(rec["dtype"].as_str().ok_or("no dtype")?).ok_or("bad dtype")?;
            assert_eq!(
                (got.dtype(), got.shape().to_vec()),
                (dtype, shape_of(&rec["shape"])?),
                "{where_}: {name}"
            );
            let bytes = got.bytes().ok_or("not a fixed-size tensor")?;
            assert_eq!(bytes.len() as u64, nbytes, "{where_}: {name}");
            assert_eq!(
                Some(u64::from(crc32c::crc32c(bytes))),
                rec["crc32c"].as_u64(),
                "{where_}: {name}"
            );
            let head = unhex(rec["head_hex"].as_str().ok_or("no head_hex")?)?;
            assert!(bytes.starts_with(&head), "{where_}: {name}");
        } else {
            let want = tensor_of(rec)?;
            let info = reader.info(name)?;
            assert_eq!(
                (info.dtype, info.shape.as_slice()),
                (want.dtype(), want.shape()),
                "{where_}: {name}"
            );
            assert_eq!(got, want, "{where_}: {name}");
        }
    }
    // Parts read with RestoreV2's shape_and_slice specs (V1 fixtures).
    for rec in ckpt["slice_reads"].as_array().into_iter().flatten() {
        let name = rec["name"].as_str().ok_or("no name")?;
        let spec = rec["shape_and_slice"].as_str().ok_or("no spec")?;
        let parsed = parse_shape_and_slice(spec)?;
        assert_eq!(reader.info(name)?.shape, parsed.shape, "{where_}: {name}");
        let got = reader.read_slice(name, &parsed.slice)?;
        assert_eq!(got, tensor_of(rec)?, "{where_}: {name} {spec}");
    }
    let report = reader.verify()?;
    assert_eq!(report.tensors, vars.len(), "{where_}");
    Ok(vars.len())
}

#[test]
fn every_tensorflow_checkpoint_reads_bit_for_bit() -> TestResult {
    let files = expected_files();
    let mut checkpoints = 0;
    let mut tensors = 0;
    for file in &files {
        let dir = file.parent().ok_or("no parent")?;
        let expected = load(file)?;
        for ckpt in expected["checkpoints"].as_array().into_iter().flatten() {
            tensors += check_checkpoint(dir, ckpt)?;
            checkpoints += 1;
        }
    }
    if files.is_empty() {
        eprintln!("no fixtures found under {}", fixtures().display());
        return Ok(());
    }
    assert!(checkpoints >= 10, "only {checkpoints} checkpoints found");
    eprintln!("{checkpoints} TensorFlow checkpoints, {tensors} tensors compared");
    Ok(())
}

#[test]
fn state_files_parse_and_format_like_tensorflow() -> TestResult {
    for file in expected_files() {
        let dir = file.parent().ok_or("no parent")?;
        let expected = load(&file)?;
        let state = &expected["state"];
        if state.is_null() {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(state["file"].as_str().ok_or("no file")?))?;
        assert_eq!(
            state["text"].as_str(),
            Some(text.as_str()),
            "{}",
            dir.display()
        );
        let st = parse_state(&text)?;
        assert_eq!(
            Some(st.model_checkpoint_path.as_str()),
            state["model_checkpoint_path"].as_str()
        );
        let paths: Vec<&str> = state["all_model_checkpoint_paths"]
            .as_array()
            .ok_or("no paths")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(st.all_model_checkpoint_paths, paths, "{}", dir.display());
        let times: Vec<f64> = state["all_model_checkpoint_timestamps"]
            .as_array()
            .ok_or("no timestamps")?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        assert_eq!(st.all_model_checkpoint_timestamps, times);
        assert_eq!(
            st.last_preserved_timestamp,
            state["last_preserved_timestamp"].as_f64().unwrap_or(0.0)
        );
        // Files TensorFlow wrote come back out byte for byte (the octal one is hand-written).
        if !dir.ends_with("octal") {
            assert_eq!(format_state(&st), text, "{}", dir.display());
        }
        // latest_checkpoint agrees with TensorFlow's, except where a fixture records what
        // ckpt finds beyond it (a state file written on Windows).
        let latest = latest_checkpoint(dir)?;
        match state["latest_checkpoint"].as_str() {
            Some(rel) => {
                assert_eq!(latest, Some(dir.join(rel)), "{}", dir.display());
                let via_dir = Checkpoint::open(dir)?;
                assert_eq!(via_dir.prefix(), dir.join(rel));
                assert_eq!(
                    read_state(dir)?.model_checkpoint_path,
                    dir.join(rel).to_string_lossy()
                );
            }
            None => match state["ckpt_latest_checkpoint"].as_str() {
                Some(ours) => {
                    assert_eq!(latest, Some(dir.join(ours)), "{}", dir.display());
                    assert_eq!(Checkpoint::open(dir)?.prefix(), dir.join(ours));
                }
                None => assert_eq!(latest, None, "{}", dir.display()),
            },
        }
    }
    Ok(())
}

/// Replays a SaveV2 call recorded in save.json with this crate's writer and compares the
/// two files with TensorFlow's.
fn check_byte_exact(dir: &Path) -> TestResult {
    let save = load(&dir.join("save.json"))?;
    let prefix_name = save["prefix"].as_str().ok_or("no prefix")?;
    let out = tempfile::tempdir()?;
    let prefix = out.path().join(prefix_name);
    let records = if save["tensors_from_expected"].as_bool() == Some(true) {
        load(&dir.join("expected.json"))?["checkpoints"][0]["variables"].clone()
    } else {
        save["tensors"].clone()
    };
    let mut w = BundleWriter::create(&prefix)?;
    for rec in records.as_array().ok_or("no tensors")? {
        let name = rec["name"].as_str().ok_or("no name")?;
        let spec = rec["shape_and_slice"].as_str().unwrap_or("");
        w.add_shape_and_slice(name, spec, &tensor_of(rec)?)?;
    }
    w.finish()?;
    let mut compared = 0;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{prefix_name}.")) {
            let theirs = std::fs::read(dir.join(&name))?;
            let ours = std::fs::read(out.path().join(&name))?;
            assert!(
                ours == theirs,
                "{}: {name} differs ({} vs {} bytes)",
                dir.display(),
                ours.len(),
                theirs.len()
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 2, "{}", dir.display());
    assert_eq!(std::fs::read_dir(out.path())?.count(), 2, "no stray files");
    Ok(())
}

#[test]
fn writer_is_byte_identical_to_tensorflow() -> TestResult {
    let root = fixtures();
    let mut cases = 0;
    for group in ["byte_exact", ""] {
        let Ok(list) = std::fs::read_dir(root.join(group)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = list.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            if dir.join("save.json").is_file() {
                check_byte_exact(&dir)?;
                cases += 1;
            }
        }
    }
    if root.join("byte_exact").is_dir() {
        assert!(cases >= 3, "only {cases} byte-exact cases");
    }
    eprintln!("{cases} byte-exact cases");
    Ok(())
}
