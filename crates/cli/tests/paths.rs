//! The path forms every command accepts beyond a plain prefix, and what it says when a path
//! leads nowhere: state files written on Windows or pointing outside their directory,
//! SavedModel directories, URLs, a graph without its data, a missing data shard.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};
use common::{ckpt, copy_fixture, expected, fixture, Run};

/// Runs `ckpt ARGS` in `cwd`, so that paths are given relative.
fn ckpt_in(cwd: &Path, args: &[&str]) -> Result<Run> {
    let output = Command::new(env!("CARGO_BIN_EXE_ckpt"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .output()
        .context("cannot run the ckpt binary")?;
    Ok(Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}

#[test]
fn state_files_written_on_windows_resolve_inside_the_directory() -> Result<()> {
    for case in ["abs", "mixed", "rel"] {
        let name = format!("state_windows/{case}");
        let listing = expected(&name)?.checkpoints[0].listing();
        for command in ["ls", "verify"] {
            let run = ckpt([Path::new(command), &fixture(&name)])?.success()?;
            ensure!(run.stderr.is_empty(), "{name}: {}", run.stderr);
            if command == "ls" {
                ensure!(run.stdout == listing, "{name}: {}", run.stdout);
            }
        }
    }
    Ok(())
}

#[test]
fn a_state_file_leading_nowhere_is_quoted_and_the_directory_joined_once() -> Result<()> {
    let temp = tempfile::tempdir()?;
    std::fs::create_dir(temp.path().join("run"))?;
    for (recorded, looked_for) in [
        (
            r"D:\\work\\runs\\exp1\\images.ckpt-300",
            vec!["run/images.ckpt-300.index"],
        ),
        (
            r"sub\\images.ckpt-300",
            vec![
                r"run/sub\images.ckpt-300.index",
                "run/sub/images.ckpt-300.index",
                "run/images.ckpt-300.index",
            ],
        ),
        (
            "/gone/model.ckpt-5",
            vec!["/gone/model.ckpt-5.index", "run/model.ckpt-5.index"],
        ),
    ] {
        std::fs::write(
            temp.path().join("run/checkpoint"),
            format!("model_checkpoint_path: \"{recorded}\"\n"),
        )?;
        let run = ckpt_in(temp.path(), &["ls", "run"])?.failure()?;
        let unescaped = recorded.replace(r"\\", r"\");
        run.stderr_has(&[&format!(
            "run/checkpoint names \"{unescaped}\", but no checkpoint is there"
        )])?;
        run.stderr_has(&looked_for)?;
        ensure!(!run.stderr.contains("run/run"), "{}", run.stderr);
    }
    Ok(())
}

#[test]
fn a_state_file_pointing_outside_its_directory_is_noted() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let (_keep, tf1) = copy_fixture("tf1_saver")?;
    let run_dir = temp.path().join("run");
    std::fs::create_dir(&run_dir)?;
    let prefix = tf1.join("model.ckpt-3000");
    std::fs::write(
        run_dir.join("checkpoint"),
        format!("model_checkpoint_path: \"{}\"\n", prefix.display()),
    )?;
    let note = format!(
        "note: {} points outside the directory, to {}",
        run_dir.join("checkpoint").display(),
        prefix.display()
    );
    let npz = temp.path().join("out.npz");
    for args in [
        vec![PathBuf::from("ls"), run_dir.clone()],
        vec![PathBuf::from("verify"), run_dir.clone()],
        vec![PathBuf::from("export"), run_dir.clone(), npz.clone()],
    ] {
        let run = ckpt(&args)?.success()?;
        run.stderr_has(&[&note])?;
    }
    // A checkpoint inside the directory needs no note.
    let run = ckpt([Path::new("ls"), &fixture("tf1_saver")])?.success()?;
    ensure!(run.stderr.is_empty(), "{}", run.stderr);
    Ok(())
}

#[test]
fn urls_are_refused_as_remote() -> Result<()> {
    for url in [
        "gs://bucket/run/model.ckpt-5",
        "s3://b/ckpt",
        "hdfs://namenode:8020/m",
    ] {
        for args in [
            vec!["ls", url],
            vec!["show", url, "w"],
            vec!["verify", url],
            vec!["export", url, "o.npz"],
            vec!["run", url, "--describe"],
        ] {
            let run = ckpt(&args)?.failure()?;
            let scheme = url.split("://").next().unwrap_or_default();
            run.stderr_has(&[&format!(
                "error: {url}: remote paths are not supported yet ({scheme}:// URL)"
            )])?;
        }
    }
    Ok(())
}

#[test]
fn a_graph_without_its_data_describes_but_does_not_run() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let meta = temp.path().join("model.ckpt-5.meta");
    std::fs::copy(fixture("v1_graph").join("model.ckpt-5.meta"), &meta)?;
    let prefix = temp.path().join("model.ckpt-5");
    for path in [&meta, &prefix] {
        let run = ckpt([Path::new("run"), path, Path::new("--describe")])?.success()?;
        ensure!(run.stdout.contains("  x\tfloat32\t[?,6]"), "{}", run.stdout);
        let run = ckpt([
            "run".as_ref(),
            path.as_os_str(),
            "--feed".as_ref(),
            format!("x={}", fixture("v1_graph").join("x.npy").display()).as_ref(),
            "--fetch".as_ref(),
            "logits".as_ref(),
        ])?
        .failure()?;
        run.stderr_has(&[
            "the graph reads 4 variable(s) but no checkpoint was given: fc1/w, fc1/b, fc2/w, fc2/b",
            "the checkpoint data is missing",
            &format!("{}.index", prefix.display()),
            &format!("{}-?????-of-?????", prefix.display()),
        ])?;
    }
    Ok(())
}

#[test]
fn a_saved_model_directory_reads_its_variables() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let (_keep, tf2) = copy_fixture("tf2")?;
    let c = expected("tf2")?.default_checkpoint()?.clone();
    for graph_file in ["saved_model.pb", "saved_model.pbtxt"] {
        let sm = temp.path().join(graph_file.replace('.', "_"));
        std::fs::create_dir_all(sm.join("variables"))?;
        std::fs::write(sm.join(graph_file), b"")?;
        for file in
            std::iter::once(format!("{}.index", c.prefix)).chain(c.data_files.iter().cloned())
        {
            let to = file.replacen(&c.prefix, "variables", 1);
            std::fs::copy(tf2.join(&file), sm.join("variables").join(to))?;
        }
        for path in [sm.clone(), sm.join(graph_file)] {
            let run = ckpt([Path::new("ls"), &path])?.success()?;
            ensure!(
                run.stdout == c.listing(),
                "{}: {}",
                path.display(),
                run.stdout
            );
        }
        ckpt([Path::new("verify"), &sm])?.success()?;
        ckpt([
            Path::new("show"),
            &sm,
            Path::new("save_counter/.ATTRIBUTES/VARIABLE_VALUE"),
        ])?
        .success()?;
        ckpt([
            Path::new("export"),
            &sm,
            &temp.path().join("vars.npz"),
            Path::new("--force"),
        ])?
        .success()?;
    }
    // No variables: said so.
    let empty = temp.path().join("no_vars");
    std::fs::create_dir(&empty)?;
    std::fs::write(empty.join("saved_model.pb"), b"")?;
    let run = ckpt([Path::new("ls"), &empty])?.failure()?;
    run.stderr_has(&[
        "a SavedModel directory without variables",
        "variables/variables.index does not exist",
    ])?;
    Ok(())
}

#[test]
fn a_missing_data_shard_still_shows_the_tensors_of_the_others() -> Result<()> {
    let c = expected("sharded")?.checkpoints.remove(0);
    let (_temp, dir) = copy_fixture("sharded")?;
    let missing = &c.data_files[1];
    std::fs::remove_file(dir.join(missing))?;
    let in_shard = |shard: u64| {
        c.entries
            .iter()
            .find(|e| e.shard_id == shard)
            .map(|e| String::from_utf8_lossy(&e.key).into_owned())
    };
    let present = in_shard(0).context("no tensor in shard 0")?;
    let absent = in_shard(1).context("no tensor in shard 1")?;
    let run = ckpt([Path::new("show"), &dir, Path::new(&present)])?.success()?;
    ensure!(
        run.stdout.starts_with(&format!("name:  {present}\n")),
        "{}",
        run.stdout
    );
    let run = ckpt([Path::new("show"), &dir, Path::new(&absent)])?.failure()?;
    run.stderr_has(&[missing, "missing data file (shard 1 of 2", &absent])?;
    Ok(())
}
