//! Writes that survive a kill: `ckpt import`, `merge` and `drop` run under `strace`, which
//! kills the process at the K-th rename, link, unlink or fsync, for every K. Afterwards the
//! prefix must hold the complete old checkpoint, the complete new one, or (when a checkpoint was
//! being replaced) nothing, with the old one whole under `<prefix>.ckpt-backup`; never the old
//! index over new data. The next write into the directory then succeeds and leaves no
//! temporary files behind.

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use ckpt_bundle::{backup_prefix, BundleReader};
use common::npz::{f32_npy, i64_npy, make_checkpoint, write_npz};
use common::{ckpt, file_names};

/// The syscalls of a write that move, link, remove or sync files, as strace names them.
const SYSCALLS: &[&str] = &[
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "fsync",
    "fdatasync",
];

/// Every tensor of the checkpoint at `prefix`, read and checksummed, as `name -> bytes`.
fn contents(prefix: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let reader = BundleReader::open(prefix)?;
    reader.verify()?;
    let mut out = BTreeMap::new();
    for t in reader.tensors() {
        let tensor = reader.read(&t.name)?;
        out.insert(t.name.clone(), tensor.bytes().unwrap_or_default().to_vec());
    }
    Ok(out)
}

/// `ckpt ARGS`, under strace, killed at the `when`-th call of `syscall` (`None`: just traced).
/// Returns how often each syscall of [`SYSCALLS`] was called (complete only when not killed).
fn traced(args: &[&Path], kill: Option<(&str, usize)>) -> Result<BTreeMap<String, usize>> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.arg("-f")
        .arg("-qq")
        .arg("-o")
        .arg(&log)
        .arg(format!("-etrace={}", SYSCALLS.join(",")));
    if let Some((syscall, when)) = kill {
        cmd.arg(format!("-einject={syscall}:signal=SIGKILL:when={when}"));
    }
    let status = cmd
        .arg(env!("CARGO_BIN_EXE_ckpt"))
        .args(args)
        .status()
        .context("cannot run strace")?;
    if kill.is_none() {
        ensure!(status.success(), "ckpt {args:?} failed under strace");
    }
    let text = std::fs::read_to_string(&log)?;
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        // "12345 renameat2(AT_FDCWD, ..." (with -f, each line starts with the thread id).
        let call = line.split_whitespace().nth(1).unwrap_or_default();
        if let Some(name) = call.split('(').next() {
            if SYSCALLS.contains(&name) {
                *counts.entry(name.to_string()).or_insert(0) += 1;
            }
        }
    }
    Ok(counts)
}

fn strace_works() -> bool {
    Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// One write to test: the command that writes `prefix`, and the tensors before and after.
struct Case {
    name: &'static str,
    args: Vec<PathBuf>,
    prefix: PathBuf,
    old: Option<BTreeMap<String, Vec<u8>>>,
    new: BTreeMap<String, Vec<u8>>,
}

/// Builds the inputs of one case in `dir`: an old checkpoint at the output prefix (when
/// `replace`), the command, and what it must write.
fn case(dir: &Path, name: &'static str, replace: bool) -> Result<Case> {
    let old_w = f32_npy(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let new_w = f32_npy(vec![3], &[5.0, 6.0, 7.0]);
    let step = i64_npy(vec![], &[42]);
    let prefix = dir.join("out").join("model.ckpt");
    if replace {
        std::fs::create_dir_all(dir.join("out"))?;
        let npz = dir.join("old.npz");
        write_npz(&npz, &[("w", &old_w), ("old_only", &step)])?;
        ckpt([Path::new("import"), &npz, &prefix])?.success()?;
    }
    let args: Vec<PathBuf> = match name {
        "import" => {
            let npz = dir.join("new.npz");
            write_npz(&npz, &[("w", &new_w), ("global_step", &step)])?;
            vec!["import".into(), npz, prefix.clone(), "--force".into()]
        }
        "merge" => {
            let a = make_checkpoint(dir, "a", &[("w", &new_w)])?;
            let b = make_checkpoint(dir, "b", &[("global_step", &step)])?;
            vec!["merge".into(), prefix.clone(), a, b, "--force".into()]
        }
        "drop" => {
            let src = make_checkpoint(
                dir,
                "src",
                &[("w", &new_w), ("global_step", &step), ("w/Adam", &new_w)],
            )?;
            vec![
                "drop".into(),
                src,
                prefix.clone(),
                "--optimizer".into(),
                "--force".into(),
            ]
        }
        other => bail!("no case {other}"),
    };
    // What the command writes, from a run into a scratch prefix.
    let scratch = dir.join("scratch").join("model.ckpt");
    let mut scratch_args = args.clone();
    for a in scratch_args.iter_mut() {
        if *a == prefix {
            *a = scratch.clone();
        }
    }
    ckpt(&scratch_args)?.success()?;
    let new = contents(&scratch)?;
    let old = if replace {
        Some(contents(&prefix)?)
    } else {
        None
    };
    Ok(Case {
        name,
        args,
        prefix,
        old,
        new,
    })
}

/// What a killed write left at the prefix must be one of the allowed states.
fn check_state(case: &Case, killed_at: &str) -> Result<()> {
    let index = ckpt_bundle::index_path(&case.prefix);
    if index.exists() {
        let got = contents(&case.prefix)
            .with_context(|| format!("{} killed at {killed_at}: a torn checkpoint", case.name))?;
        ensure!(
            got == case.new || Some(&got) == case.old.as_ref(),
            "{} killed at {killed_at}: the prefix holds neither the old nor the new tensors: {:?}",
            case.name,
            got.keys()
        );
        return Ok(());
    }
    match &case.old {
        None => Ok(()),
        Some(old) => {
            let backup = backup_prefix(&case.prefix);
            let got = contents(&backup).with_context(|| {
                format!(
                    "{} killed at {killed_at}: the prefix is gone and the backup is not whole",
                    case.name
                )
            })?;
            ensure!(
                got == *old,
                "{} killed at {killed_at}: the backup does not hold the old checkpoint",
                case.name
            );
            // Every command says where the old checkpoint went.
            let run = ckpt([Path::new("ls"), &case.prefix])?.failure()?;
            run.stderr_has(&["interrupted", &backup.display().to_string()])
        }
    }
}

#[test]
fn a_kill_at_any_rename_link_unlink_or_fsync_never_tears_a_checkpoint() -> Result<()> {
    if !strace_works() {
        eprintln!("note: strace is not available; the crash test cannot run here");
        return Ok(());
    }
    let mut killed_runs = 0;
    for name in ["import", "merge", "drop"] {
        for replace in [false, true] {
            let probe_dir = tempfile::tempdir()?;
            let probe = case(probe_dir.path(), name, replace)?;
            let args: Vec<&Path> = probe.args.iter().map(PathBuf::as_path).collect();
            let counts = traced(&args, None)?;
            ensure!(
                counts.keys().any(|k| k.starts_with("rename")),
                "{name}: no rename was traced: {counts:?}"
            );
            for (syscall, &count) in &counts {
                for when in 1..=count {
                    let dir = tempfile::tempdir()?;
                    let c = case(dir.path(), name, replace)?;
                    let args: Vec<&Path> = c.args.iter().map(PathBuf::as_path).collect();
                    traced(&args, Some((syscall, when)))?;
                    killed_runs += 1;
                    let at = format!("{syscall} #{when} (replace: {replace})");
                    check_state(&c, &at)?;
                    // The next write succeeds, and cleans up after the killed one.
                    ckpt(&c.args)?.success()?;
                    ensure!(contents(&c.prefix)? == c.new, "{name} after {at}: rewrite");
                    let out_dir = c.prefix.parent().context("prefix has a directory")?;
                    let left: Vec<String> = file_names(out_dir)?
                        .into_iter()
                        .filter(|f| f.contains("tempstate") || f.contains("ckpt-backup"))
                        .collect();
                    ensure!(left.is_empty(), "{name} after {at}: left {left:?}");
                }
            }
        }
    }
    ensure!(killed_runs >= 10, "only {killed_runs} kills were injected");
    Ok(())
}
