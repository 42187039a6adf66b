//! Replays the committed seeds of the `array_import` fuzz target (`fuzz/seeds/array_import`)
//! through the same code the target runs, so that `cargo test` catches a panic on any of them
//! without a nightly toolchain; and checks that the seeds are what they claim to be.

#[path = "../../../fuzz/fuzz_targets/common/arrays.rs"]
mod arrays_target;

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use ckpt_cli::npy::read_npy;

fn seeds() -> Result<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/array_import");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    Ok(files)
}

#[test]
fn every_committed_seed_runs_without_panicking() -> Result<()> {
    let files = seeds()?;
    ensure!(files.len() >= 13, "only {} seeds found", files.len());
    for path in &files {
        arrays_target::run(&std::fs::read(path)?);
    }
    Ok(())
}

#[test]
fn the_seeds_parse_as_their_formats() -> Result<()> {
    for path in seeds()? {
        let data = std::fs::read(&path)?;
        let what = path.display().to_string();
        match path.extension().and_then(|e| e.to_str()) {
            // Some seeds hold dtypes the reader refuses (big-endian, unicode): it is enough
            // that they are real files of their format.
            Some("npy") => ensure!(data.starts_with(b"\x93NUMPY"), "{what}"),
            Some("npz") => {
                ensure!(
                    zip::ZipArchive::new(std::io::Cursor::new(&data)).is_ok(),
                    "{what}"
                );
            }
            Some("safetensors") => {
                ensure!(
                    safetensors::SafeTensors::deserialize(&data).is_ok(),
                    "{what}"
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// Seeds found by fuzzing are added here when they once crashed; each must now be refused
/// with an error (or read), never panic. The hostile inputs of issue 13 are among them:
/// a zero-width `|S0` member of 10^12 elements and a header numpy refuses.
#[test]
fn hostile_headers_are_errors() -> Result<()> {
    let npy = |header: &str| {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out
    };
    let zero_width = npy("{'descr': '|S0', 'fortran_order': False, 'shape': (1000000000000,), }");
    arrays_target::run(&zero_width);
    let unquoted = npy("{descr: '<f4', 'fortran_order': False, 'shape': (2,), }");
    ensure!(read_npy(&unquoted, "x.npy").is_err());
    arrays_target::run(&unquoted);
    Ok(())
}
