//! Behaviour tests of `ckpt --help` and of each subcommand's help.

#[allow(dead_code)]
mod common;

use anyhow::{ensure, Result};
use common::ckpt;

#[test]
fn every_subcommand_has_help_naming_its_arguments() -> Result<()> {
    let cases: &[(&str, &[&str])] = &[
        ("ls", &["<PATH>", "--json"]),
        ("show", &["<PATH>", "<NAME>", "--full"]),
        ("verify", &["<PATH>"]),
        ("export", &["<PATH>", "<OUT>", ".npz", ".safetensors"]),
        ("import", &["<INPUT>", "<OUT_PREFIX>", "bfloat16"]),
        (
            "merge",
            &["<OUT_PREFIX>", "<INPUTS>...", "--prefer", "first", "last"],
        ),
        ("rename", &["<PATH>", "<OUT_PREFIX>", "--from", "--to"]),
        (
            "drop",
            &["<PATH>", "<OUT_PREFIX>", "--match", "--optimizer"],
        ),
    ];
    for (command, mentions) in cases {
        let run = ckpt([*command, "--help"])?.success()?;
        ensure!(
            run.stdout.contains(&format!("Usage: ckpt {command}")),
            "{command} --help: {}",
            run.stdout
        );
        for m in *mentions {
            ensure!(
                run.stdout.contains(m),
                "`ckpt {command} --help` should mention {m}: {}",
                run.stdout
            );
        }
    }
    let run = ckpt(["--help"])?.success()?;
    for (command, _) in cases {
        ensure!(
            run.stdout.contains(&format!("  {command} ")),
            "`ckpt --help` should list {command}: {}",
            run.stdout
        );
    }
    // No subcommand: a usage error, not a crash.
    let run = ckpt(Vec::<&str>::new())?;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("Usage: ckpt"), "{}", run.stderr);
    Ok(())
}
