//! numpy arrays made by hand, npz files of them, and checkpoints imported from those files.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ckpt_cli::npy::{read_npz, NpyArray, NpzWriter};

use super::ckpt;

pub fn read_npz_file(path: &Path) -> Result<Vec<(String, NpyArray<'static>)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    read_npz(Cursor::new(bytes), &path.display().to_string())
}

pub fn npy(descr: &str, shape: Vec<u64>, data: Vec<u8>) -> NpyArray<'static> {
    NpyArray {
        descr: descr.to_string(),
        shape,
        data: data.into(),
    }
}

pub fn f32_npy(shape: Vec<u64>, values: &[f32]) -> NpyArray<'static> {
    npy(
        "<f4",
        shape,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

pub fn i64_npy(shape: Vec<u64>, values: &[i64]) -> NpyArray<'static> {
    npy(
        "<i8",
        shape,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

pub fn write_npz(path: &Path, arrays: &[(&str, &NpyArray<'_>)]) -> Result<()> {
    let mut npz = NpzWriter::new(Cursor::new(Vec::new()));
    for (name, array) in arrays {
        npz.add(name, array)?;
    }
    std::fs::write(path, npz.finish()?.into_inner())?;
    Ok(())
}

/// Writes `arrays` to NAME.npz in `dir` and imports it as checkpoint `dir/NAME/model.ckpt`.
pub fn make_checkpoint(
    dir: &Path,
    name: &str,
    arrays: &[(&str, &NpyArray<'_>)],
) -> Result<PathBuf> {
    let npz = dir.join(format!("{name}.npz"));
    write_npz(&npz, arrays)?;
    let prefix = dir.join(name).join("model.ckpt");
    ckpt([Path::new("import"), &npz, &prefix])?.success()?;
    Ok(prefix)
}
