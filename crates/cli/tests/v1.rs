//! Behaviour tests of every command on V1 checkpoints (the TensorSlice format) written by
//! TensorFlow 2.21 (`fixtures/v1_*`), compared with TensorFlow's own readings.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, ensure, Context, Result};
use ckpt_cli::npy::{read_npy, NpyArray};
use common::npz::read_npz_file;
use common::{ckpt, copy_fixture, expected, fixture, flip_bit, shown_values, V1_FIXTURES};

/// Every path form that names the fixture's (latest) V1 checkpoint.
fn path_forms(name: &str) -> Result<Vec<PathBuf>> {
    let dir = fixture(name);
    let expected = expected(name)?;
    let c = expected.default_checkpoint()?;
    let mut forms = vec![dir.join(&c.prefix)];
    forms.extend(c.data_files.iter().map(|f| dir.join(f)));
    if let Some((stem, _)) = c.prefix.split_once("-?????-of-") {
        // The shards' prefix, and the .meta TensorFlow writes beside them.
        forms.push(dir.join(stem));
        forms.push(dir.join(format!("{stem}.meta")));
    } else {
        forms.push(dir.join(format!("{}.meta", c.prefix)));
    }
    // The directory: through its `checkpoint` file, or as the only checkpoint in it.
    forms.push(dir);
    // Only forms whose files exist (v1_sharded has no .meta).
    Ok(forms
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "meta") || p.is_file())
        .collect())
}

#[test]
fn ls_lists_what_tensorflow_lists_from_every_path_form() -> Result<()> {
    for name in V1_FIXTURES {
        let expected = expected(name)?;
        let listing = expected.default_checkpoint()?.listing();
        let forms = path_forms(name)?;
        ensure!(forms.len() >= 3, "{name}: only {} path forms", forms.len());
        for path in forms {
            let run = ckpt([Path::new("ls"), &path])?.success()?;
            ensure!(
                run.stdout == listing,
                "{}: `ckpt ls` printed\n{}\nTensorFlow lists\n{listing}",
                path.display(),
                run.stdout
            );
            ensure!(run.stderr.is_empty(), "{}: {}", path.display(), run.stderr);
        }
    }
    Ok(())
}

#[test]
fn export_holds_tensorflows_values_bit_for_bit() -> Result<()> {
    let out = tempfile::tempdir()?;
    for name in V1_FIXTURES {
        let expected = expected(name)?;
        let c = expected.default_checkpoint()?;
        let npz = out.path().join(format!("{name}.npz"));
        let run = ckpt([Path::new("export"), &fixture(name), &npz])?.success()?;
        run.stderr_has(&[&format!("wrote {} tensors", c.variables.len())])?;
        let arrays = read_npz_file(&npz)?;
        ensure!(
            arrays.len() == c.variables.len(),
            "{name}: {} arrays",
            arrays.len()
        );
        let mut compared = 0;
        for v in &c.variables {
            let (_, array) = arrays
                .iter()
                .find(|(n, _)| *n == v.name)
                .ok_or_else(|| anyhow!("{name}: {} not exported", v.name))?;
            ensure!(array.shape == v.shape, "{name}: {} shape", v.name);
            if let Some(bytes) = &v.bytes {
                ensure!(
                    array.data == *bytes,
                    "{name}: {} differs from TensorFlow's",
                    v.name
                );
                compared += 1;
            }
        }
        ensure!(
            compared >= 3,
            "{name}: only {compared} numeric tensors compared"
        );
    }
    Ok(())
}

#[test]
fn show_assembles_a_tensor_split_across_shards() -> Result<()> {
    // split/emb [5,3]: rows 0-2 in shard 0, rows 3-4 in shard 1.
    let dir = fixture("v1_sharded");
    let c = expected("v1_sharded")?.checkpoints.remove(0);
    let want = c.variable("split/emb")?;
    let bytes = want.bytes.as_ref().ok_or_else(|| anyhow!("no bytes"))?;
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let shown = shown_values(&dir, "split/emb")?;
    // The last row comes from the second shard.
    let last = values.get(12).ok_or_else(|| anyhow!("short"))?;
    ensure!(shown.contains(&last.to_string()), "{shown}");
    let strings = shown_values(&dir, "vocab/words")?;
    ensure!(strings.contains("hello"), "{strings}");
    Ok(())
}

#[test]
fn verify_reads_every_table_entry() -> Result<()> {
    for name in V1_FIXTURES {
        let c = expected(name)?.default_checkpoint()?.clone();
        let size: u64 = c
            .data_files
            .iter()
            .map(|f| std::fs::metadata(fixture(name).join(f)).map(|m| m.len()))
            .sum::<std::io::Result<u64>>()?;
        let run = ckpt([Path::new("verify"), &fixture(name)])?.success()?;
        ensure!(
            run.stdout.starts_with(&format!(
                "ok: {} tensors, {size} bytes verified",
                c.variables.len()
            )),
            "{name}: {}",
            run.stdout
        );
    }
    Ok(())
}

#[test]
fn a_damaged_v1_table_is_named() -> Result<()> {
    let (_temp, dir) = copy_fixture("v1_dtypes")?;
    let file = dir.join("model.ckpt");
    // A byte in the middle of the only data block: its checksum no longer matches.
    flip_bit(&file, 600, 3)?;
    let run = ckpt([Path::new("verify"), &file])?.failure()?;
    run.stderr_has(&[&file.display().to_string(), "checksum mismatch"])?;
    Ok(())
}

#[test]
fn a_missing_v1_shard_lists_the_rest_and_fails_verify() -> Result<()> {
    let (_temp, dir) = copy_fixture("v1_sharded")?;
    let missing = dir.join("model.ckpt-3-00001-of-00002");
    std::fs::remove_file(&missing)?;
    let missing_text = missing.display().to_string();
    // Only the shard left describes its tensors, as TensorFlow lists them too.
    let run = ckpt([Path::new("ls"), &dir])?.success()?;
    ensure!(
        run.stdout
            == "global_step\tint64\t[]\npart/pv\tfloat32\t[6,2]\nsplit/emb\tfloat32\t[5,3]\n\
                # total: 3 tensors, 28 parameters, 116 bytes\n",
        "{}",
        run.stdout
    );
    run.stderr_has(&[&missing_text, "is missing"])?;
    ckpt([Path::new("show"), &dir, Path::new("part/pv")])?.success()?;
    // split/emb has rows 3-4 in the missing shard.
    let run = ckpt([Path::new("show"), &dir, Path::new("split/emb")])?.failure()?;
    run.stderr_has(&["split/emb", "hold 9 of the 15 elements", &missing_text])?;
    let run = ckpt([Path::new("verify"), &dir])?.failure()?;
    run.stderr_has(&[&missing_text, "missing data file (shard 1 of 2)"])?;
    Ok(())
}

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

#[test]
fn ckpt_run_restores_a_graph_from_v1_data() -> Result<()> {
    let dir = fixture("v1_graph");
    for path in [
        dir.join("model.ckpt-5"),
        dir.join("model.ckpt-5.meta"),
        dir.clone(),
    ] {
        let out = tempfile::tempdir()?;
        ckpt([
            "run".as_ref(),
            path.as_os_str(),
            "--feed".as_ref(),
            format!("x={}", dir.join("x.npy").display()).as_ref(),
            "--fetch".as_ref(),
            "logits,pred".as_ref(),
            "--out".as_ref(),
            out.path().as_os_str(),
        ])?
        .success()?;
        ensure!(
            npy(&out.path().join("pred.npy"))? == npy(&dir.join("pred.npy"))?,
            "{}: pred differs",
            path.display()
        );
        let got = npy(&out.path().join("logits.npy"))?;
        let want = npy(&dir.join("logits.npy"))?;
        ensure!(got.shape == want.shape, "{}", path.display());
        for (g, w) in f32s(&got).iter().zip(f32s(&want)) {
            ensure!(
                (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{}: logits {g} vs TensorFlow's {w}",
                path.display()
            );
        }
    }
    Ok(())
}

#[test]
fn rename_converts_a_v1_checkpoint_to_a_bundle() -> Result<()> {
    let out = tempfile::tempdir()?;
    let prefix = out.path().join("converted");
    ckpt([
        "rename".as_ref(),
        fixture("v1_dtypes").as_os_str(),
        prefix.as_os_str(),
        "--from".as_ref(),
        "^float32$".as_ref(),
        "--to".as_ref(),
        "f32".as_ref(),
    ])?
    .success()?;
    ensure!(out.path().join("converted.index").is_file());
    let v1 = ckpt([Path::new("ls"), &fixture("v1_dtypes")])?
        .success()?
        .stdout;
    let v2 = ckpt([Path::new("ls"), &prefix])?.success()?.stdout;
    // V1 lists in its table's order, V2 sorted: compare as sets (the total line, the same in
    // both, included).
    let set = |text: &str| {
        text.lines()
            .map(str::to_string)
            .collect::<std::collections::BTreeSet<_>>()
    };
    ensure!(
        set(&v2) == set(&v1.replace("float32\tfloat32\t[9]", "f32\tfloat32\t[9]")),
        "{v2}"
    );
    ensure!(
        v2.lines()
            .filter(|l| !l.starts_with("# total"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            == v1
                .replace("float32\tfloat32\t[9]", "f32\tfloat32\t[9]")
                .lines()
                .filter(|l| !l.starts_with("# total"))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        "{v2}"
    );
    // The same values: compare one tensor's printout.
    ensure!(
        shown_values(&prefix, "sliced/grid")?
            == shown_values(&fixture("v1_dtypes"), "sliced/grid")?
    );
    Ok(())
}
