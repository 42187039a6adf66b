//! The path forms users type, and the `checkpoint` state file.

mod common;

use std::path::Path;

use ckpt_bundle::state::{format_state, latest_checkpoint, parse_state, read_state, update_state};
use ckpt_bundle::{data_path, index_path, meta_path, BundleReader, BundleWriter, Error, Tensor};
use common::*;

fn write_one(prefix: &Path, value: i64) -> TestResult {
    let mut w = BundleWriter::create(prefix)?;
    w.add("v", &Tensor::from_vec(vec![], vec![value])?)?;
    w.finish()?;
    Ok(())
}

fn value_at(path: &Path) -> BoxResult<i64> {
    Ok(BundleReader::open(path)?.read("v")?.as_slice::<i64>()?[0])
}

#[test]
fn every_path_form_opens_the_same_checkpoint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("model.ckpt-1000");
    write_one(&prefix, 1000)?;
    std::fs::write(meta_path(&prefix), b"meta graph")?;
    for p in [
        prefix.clone(),
        index_path(&prefix),
        meta_path(&prefix),
        data_path(&prefix, 0, 1),
        // A data file name with a stale shard count still names the prefix.
        data_path(&prefix, 3, 7),
    ] {
        let r = BundleReader::open(&p)?;
        assert_eq!(r.prefix(), prefix, "{}", p.display());
        assert_eq!(value_at(&p)?, 1000);
    }
    Ok(())
}

#[test]
fn directory_with_relative_state_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    for step in [5, 10] {
        write_one(&dir.path().join(format!("model.ckpt-{step}")), step)?;
    }
    std::fs::write(
        dir.path().join("checkpoint"),
        "model_checkpoint_path: \"model.ckpt-10\"\n\
         all_model_checkpoint_paths: \"model.ckpt-5\"\n\
         all_model_checkpoint_paths: \"model.ckpt-10\"\n",
    )?;
    assert_eq!(value_at(dir.path())?, 10);
    assert_eq!(
        latest_checkpoint(dir.path())?,
        Some(dir.path().join("model.ckpt-10"))
    );
    let st = read_state(dir.path())?;
    assert_eq!(
        st.all_model_checkpoint_paths[0],
        dir.path().join("model.ckpt-5").to_string_lossy()
    );
    Ok(())
}

#[test]
fn directory_with_absolute_state_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let other = tempfile::tempdir()?;
    let prefix = other.path().join("elsewhere.ckpt");
    write_one(&prefix, 3)?;
    std::fs::write(
        dir.path().join("checkpoint"),
        format!("model_checkpoint_path: \"{}\"\n", prefix.display()),
    )?;
    assert_eq!(value_at(dir.path())?, 3);
    Ok(())
}

#[test]
fn moved_directory_with_stale_absolute_path() -> TestResult {
    // TF1 Saver writes absolute paths; after the directory moves they point nowhere, but
    // the same file name inside the directory is found.
    let dir = tempfile::tempdir()?;
    write_one(&dir.path().join("model.ckpt-9"), 9)?;
    std::fs::write(
        dir.path().join("checkpoint"),
        "model_checkpoint_path: \"/no/such/run/model.ckpt-9\"\n",
    )?;
    assert_eq!(value_at(dir.path())?, 9);
    Ok(())
}

#[test]
fn directory_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    // No state file and no bundle.
    let e = BundleReader::open(dir.path())
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(e, Error::CheckpointNotFound { .. }), "{e}");
    // No state file but exactly one bundle: used.
    write_one(&dir.path().join("only"), 1)?;
    assert_eq!(value_at(dir.path())?, 1);
    // A state file naming a checkpoint that is gone.
    std::fs::write(
        dir.path().join("checkpoint"),
        "model_checkpoint_path: \"gone-5\"\n",
    )?;
    let e = BundleReader::open(dir.path())
        .err()
        .ok_or("expected an error")?;
    assert!(e.to_string().contains("gone-5"), "{e}");
    assert_eq!(latest_checkpoint(dir.path())?, None);
    // An empty model_checkpoint_path.
    std::fs::write(
        dir.path().join("checkpoint"),
        "all_model_checkpoint_paths: \"only\"\n",
    )?;
    assert!(matches!(
        read_state(dir.path()),
        Err(Error::StateFile { .. })
    ));
    // A malformed state file names the file and line.
    std::fs::write(
        dir.path().join("checkpoint"),
        "model_checkpoint_path: \"only\"\nbogus bogus\n",
    )?;
    let e = BundleReader::open(dir.path())
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(&e, Error::StateFile { line: 2, .. }), "{e}");
    assert!(e.to_string().contains("checkpoint"), "{e}");
    Ok(())
}

#[test]
fn missing_paths() -> TestResult {
    let dir = tempfile::tempdir()?;
    for p in [
        "nothing",
        "nothing.index",
        "nothing.data-00000-of-00001",
        "nothing.meta",
    ] {
        let e = BundleReader::open(dir.path().join(p))
            .err()
            .ok_or("expected an error")?;
        assert!(matches!(e, Error::CheckpointNotFound { .. }), "{p}: {e}");
        assert!(e.to_string().contains("nothing"), "{e}");
    }
    // A file that is not part of a V2 checkpoint.
    std::fs::write(dir.path().join("model.ckpt"), b"v1 table")?;
    let e = BundleReader::open(dir.path().join("model.ckpt"))
        .err()
        .ok_or("expected an error")?;
    assert!(e.to_string().contains("V1"), "{e}");
    Ok(())
}

#[test]
fn update_state_keeps_the_newest_and_deletes_the_rest() -> TestResult {
    let dir = tempfile::tempdir()?;
    for step in 1..=4 {
        let prefix = dir.path().join(format!("model.ckpt-{step}"));
        write_one(&prefix, step)?;
        std::fs::write(meta_path(&prefix), b"meta")?;
        update_state(dir.path(), &prefix, Some(2))?;
    }
    let text = std::fs::read_to_string(dir.path().join("checkpoint"))?;
    assert_eq!(
        text,
        "model_checkpoint_path: \"model.ckpt-4\"\n\
         all_model_checkpoint_paths: \"model.ckpt-3\"\n\
         all_model_checkpoint_paths: \"model.ckpt-4\"\n"
    );
    let mut files: Vec<String> = std::fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    files.sort();
    assert_eq!(
        files,
        [
            "checkpoint",
            "model.ckpt-3.data-00000-of-00001",
            "model.ckpt-3.index",
            "model.ckpt-3.meta",
            "model.ckpt-4.data-00000-of-00001",
            "model.ckpt-4.index",
            "model.ckpt-4.meta",
        ]
    );
    assert_eq!(value_at(dir.path())?, 4);
    // Saving the same prefix again moves it to the end without duplicating it.
    update_state(dir.path(), &dir.path().join("model.ckpt-3"), Some(2))?;
    let st = parse_state(&std::fs::read_to_string(dir.path().join("checkpoint"))?)?;
    assert_eq!(
        st.all_model_checkpoint_paths,
        ["model.ckpt-4", "model.ckpt-3"]
    );
    assert_eq!(st.model_checkpoint_path, "model.ckpt-3");
    // A prefix outside the directory is written absolute.
    let other = tempfile::tempdir()?;
    let outside = other.path().join("x");
    write_one(&outside, 0)?;
    update_state(dir.path(), &outside, None)?;
    let st = read_state(dir.path())?;
    assert_eq!(st.model_checkpoint_path, outside.to_string_lossy());
    assert_eq!(st.all_model_checkpoint_paths.len(), 3);
    Ok(())
}

#[test]
fn update_state_keeps_tensorflow2_timestamps_aligned() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("checkpoint"),
        "model_checkpoint_path: \"ckpt-2\"\n\
         all_model_checkpoint_paths: \"ckpt-1\"\n\
         all_model_checkpoint_paths: \"ckpt-2\"\n\
         all_model_checkpoint_timestamps: 1795299526.9227304\n\
         all_model_checkpoint_timestamps: 1795299526.9396002\n\
         last_preserved_timestamp: 1795299525.883424\n",
    )?;
    update_state(dir.path(), &dir.path().join("ckpt-3"), Some(2))?;
    let st = read_state(dir.path())?;
    assert_eq!(st.all_model_checkpoint_paths.len(), 2);
    assert_eq!(st.all_model_checkpoint_timestamps.len(), 2);
    assert_eq!(st.all_model_checkpoint_timestamps[0], 1795299526.9396002);
    assert!(st.all_model_checkpoint_timestamps[1] > 1.7e9);
    assert_eq!(st.last_preserved_timestamp, 1795299525.883424);
    let text = format_state(&parse_state(&std::fs::read_to_string(
        dir.path().join("checkpoint"),
    )?)?);
    assert!(
        text.contains("last_preserved_timestamp: 1795299525.883424\n"),
        "{text}"
    );
    Ok(())
}
