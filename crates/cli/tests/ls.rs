//! Behaviour tests of `ckpt ls`, and of the forms of path every subcommand accepts: listings
//! of the checkpoints real TensorFlow 2.21 wrote (`fixtures/`), compared with TensorFlow's own
//! (`expected.json`).

#[allow(dead_code)]
mod common;

use std::path::Path;

use anyhow::{anyhow, ensure, Result};
use common::{ckpt, copy_fixture, expected, fixture, shown_values, CHECKPOINT_FIXTURES};

#[test]
fn ls_lists_what_tensorflow_reads_for_every_fixture() -> Result<()> {
    for name in CHECKPOINT_FIXTURES {
        let expected = expected(name)?;
        for c in &expected.checkpoints {
            let prefix = fixture(name).join(&c.prefix);
            let run = ckpt([Path::new("ls"), &prefix])?.success()?;
            ensure!(
                run.stdout == c.listing(),
                "{name}/{}: `ckpt ls` printed\n{}\nTensorFlow lists\n{}",
                c.prefix,
                run.stdout,
                c.listing()
            );
            ensure!(run.stderr.is_empty(), "{name}: stderr {:?}", run.stderr);
        }
        // The directory: its `checkpoint` file's latest, or its only checkpoint.
        let run = ckpt([Path::new("ls"), &fixture(name)])?.success()?;
        ensure!(
            run.stdout == expected.default_checkpoint()?.listing(),
            "{name} (directory): `ckpt ls` printed\n{}",
            run.stdout
        );
    }
    Ok(())
}

#[test]
fn ls_accepts_any_file_of_the_checkpoint() -> Result<()> {
    for name in CHECKPOINT_FIXTURES {
        for c in &expected(name)?.checkpoints {
            let dir = fixture(name);
            let mut files = vec![format!("{}.index", c.prefix)];
            files.extend(c.data_files.iter().cloned());
            let meta = format!("{}.meta", c.prefix);
            if dir.join(&meta).is_file() {
                files.push(meta);
            }
            for file in files {
                let run = ckpt([Path::new("ls"), &dir.join(&file)])?.success()?;
                ensure!(
                    run.stdout == c.listing(),
                    "{name}/{file}: `ckpt ls` printed\n{}",
                    run.stdout
                );
            }
        }
    }
    Ok(())
}

#[test]
fn ls_json_matches_tensorflow() -> Result<()> {
    for name in CHECKPOINT_FIXTURES {
        let expected = expected(name)?;
        let c = expected.default_checkpoint()?;
        let run = ckpt([Path::new("ls"), Path::new("--json"), &fixture(name)])?.success()?;
        let json: serde_json::Value = serde_json::from_str(&run.stdout)?;
        let items = json
            .as_array()
            .ok_or_else(|| anyhow!("{name}: --json is not an array"))?;
        let mut want = c.variables.clone();
        want.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        ensure!(
            items.len() == want.len(),
            "{name}: {} items, TensorFlow lists {}",
            items.len(),
            want.len()
        );
        for (item, v) in items.iter().zip(&want) {
            let object = item
                .as_object()
                .ok_or_else(|| anyhow!("{name}: item {item} is not an object"))?;
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort();
            ensure!(keys == ["dtype", "name", "shape"], "{name}: keys {keys:?}");
            let shape: Vec<u64> = serde_json::from_value(item["shape"].clone())?;
            ensure!(
                item["name"] == v.name.as_str()
                    && item["dtype"] == v.dtype.as_str()
                    && shape == v.shape,
                "{name}: item {item} should be {v:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn ls_lists_partitioned_variables_once_with_their_full_shape() -> Result<()> {
    let run = ckpt([Path::new("ls"), &fixture("partitioned")])?.success()?;
    assert_eq!(
        run.stdout,
        "part/embedding\tfloat32\t[7,3]\n\
         part/grid\tfloat32\t[4,6]\n\
         part/pv\tfloat32\t[6,2]\n\
         plain\tfloat32\t[3]\n\
         # total: 4 tensors, 60 parameters, 240 bytes\n"
    );
    Ok(())
}

#[test]
fn ls_lists_both_shards_and_tf2_object_keys() -> Result<()> {
    let run = ckpt([Path::new("ls"), &fixture("sharded")])?.success()?;
    assert_eq!(
        run.stdout,
        "dev0/step\tint64\t[]\n\
         dev0/weights\tfloat32\t[3,4]\n\
         dev1/bias\tfloat64\t[2]\n\
         dev1/weights\tfloat32\t[4,2]\n\
         # total: 4 tensors, 23 parameters, 104 bytes\n"
    );
    let run = ckpt([Path::new("ls"), &fixture("tf2_weights")])?.success()?;
    let total = expected("tf2_weights")?.checkpoints[0]
        .listing()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        run.stdout,
        "_CHECKPOINTABLE_OBJECT_GRAPH\tstring\t[]\n\
         layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE\tfloat32\t[8]\n\
         layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE\tfloat32\t[4,8]\n\
         layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE\tfloat32\t[3]\n\
         layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE\tfloat32\t[8,3]\n"
            .to_string()
            + &total
            + "\n"
    );
    Ok(())
}

#[test]
fn path_forms_pick_the_checkpoint_the_user_means() -> Result<()> {
    let dir = fixture("tf1_saver");
    // The `checkpoint` file holds relative paths; its latest is model.ckpt-4000.
    for (path, step) in [
        (dir.clone(), "4000"),
        (dir.join("model.ckpt-2000"), "2000"),
        (dir.join("model.ckpt-3000.meta"), "3000"),
        (dir.join("model.ckpt-2000.index"), "2000"),
        (dir.join("model.ckpt-3000.data-00000-of-00001"), "3000"),
    ] {
        assert_eq!(
            shown_values(&path, "global_step")?,
            step,
            "{}",
            path.display()
        );
    }
    // TF2 CheckpointManager: latest ckpt-3, whose save counter is 3.
    assert_eq!(
        shown_values(&fixture("tf2"), "save_counter/.ATTRIBUTES/VARIABLE_VALUE")?,
        "3"
    );
    Ok(())
}

#[test]
fn checkpoint_file_with_an_absolute_path_is_followed() -> Result<()> {
    let (_temp, run_dir) = copy_fixture("tf1_saver")?;
    let elsewhere = run_dir
        .parent()
        .ok_or_else(|| anyhow!("no parent"))?
        .join("elsewhere");
    std::fs::create_dir(&elsewhere)?;
    let target = run_dir.join("model.ckpt-3000");
    std::fs::write(
        elsewhere.join("checkpoint"),
        format!(
            "model_checkpoint_path: {:?}\nall_model_checkpoint_paths: {:?}\n",
            target.display().to_string(),
            target.display().to_string()
        ),
    )?;
    assert_eq!(shown_values(&elsewhere, "global_step")?, "3000");
    Ok(())
}

#[test]
fn ls_of_nothing_names_the_path() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let missing = temp.path().join("no/such/model.ckpt");
    let run = ckpt([Path::new("ls"), &missing])?.failure()?;
    run.stderr_has(&[&missing.display().to_string()])?;
    run.stderr_has(&[
        &format!("no checkpoint at {}", missing.display()),
        &format!("neither {}.index nor a directory", missing.display()),
    ])?;
    // An empty directory: no `checkpoint` file and no index.
    let run = ckpt([Path::new("ls"), temp.path()])?.failure()?;
    run.stderr_has(&[&temp.path().display().to_string()])?;
    run.stderr_has(&[
        &format!("no checkpoint at {}", temp.path().display()),
        "no `checkpoint` state file and no .index file",
    ])?;
    Ok(())
}
