//! File names of a bundle (`naming.cc`) and turning what a user typed into a prefix.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, ShortPath};
use crate::state;

/// `<prefix>.index`.
pub fn index_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".index")
}

/// `<prefix>.data-%05d-of-%05d`.
pub fn data_path(prefix: &Path, shard: u32, num_shards: u32) -> PathBuf {
    with_suffix(prefix, &format!(".data-{shard:05}-of-{num_shards:05}"))
}

/// `<prefix>.meta` (written by TF1's Saver beside the bundle).
pub fn meta_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".meta")
}

pub(crate) fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// If `name` is `<stem>.data-NNNNN-of-NNNNN` (digits of any width), returns `<stem>`.
pub(crate) fn strip_data_suffix(name: &str) -> Option<&str> {
    let at = name.rfind(".data-")?;
    let rest = name.get(at + ".data-".len()..)?;
    let (a, b) = rest.split_once("-of-")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        name.get(..at)
    } else {
        None
    }
}

/// Turns any of the forms a user types into a checkpoint prefix whose `.index` exists:
/// a prefix, a directory holding a `checkpoint` state file, or one of the checkpoint's own
/// files (`.index`, `.meta`, `.data-NNNNN-of-NNNNN`).
pub fn resolve_prefix(path: &Path) -> Result<PathBuf> {
    if index_path(path).is_file() {
        return Ok(path.to_path_buf());
    }
    if let Some(backup) = crate::commit::interrupted_write(path) {
        return Err(not_found(
            path,
            &format!(
                "a write to it was interrupted; the checkpoint that was there is kept whole as {} (read it there, or rename its files back)",
                ShortPath(&backup)
            ),
        ));
    }
    if path.is_dir() {
        return resolve_dir(path);
    }
    if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
        let stem = name
            .strip_suffix(".index")
            .or_else(|| name.strip_suffix(".meta"))
            .or_else(|| strip_data_suffix(name));
        if let Some(stem) = stem {
            let prefix = path.with_file_name(stem);
            if index_path(&prefix).is_file() {
                return Ok(prefix);
            }
            if stem.is_empty() {
                return Err(not_found(path, "file name has no prefix before the suffix"));
            }
            return Err(not_found(
                path,
                &format!("{} does not exist", ShortPath(&index_path(&prefix))),
            ));
        }
    }
    if path.is_file() {
        return Err(not_found(
            path,
            &format!(
                "{} does not exist (a V1 checkpoint or not a checkpoint file; V1 is not supported)",
                ShortPath(&index_path(path))
            ),
        ));
    }
    Err(not_found(
        path,
        &format!(
            "neither {} nor a directory of that name exists",
            ShortPath(&index_path(path))
        ),
    ))
}

fn not_found(path: &Path, reason: &str) -> Error {
    Error::CheckpointNotFound {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn resolve_dir(dir: &Path) -> Result<PathBuf> {
    let state_path = dir.join(state::STATE_FILE_NAME);
    if state_path.is_file() {
        let st = state::read_state(dir)?;
        return match state::find_existing(dir, &st.model_checkpoint_path) {
            Some(prefix) => Ok(prefix),
            None => Err(not_found(
                dir,
                &format!(
                    "{} names \"{}\", but {} does not exist",
                    ShortPath(&state_path),
                    ShortPath(Path::new(&st.model_checkpoint_path)),
                    ShortPath(&index_path(&state::join_dir(
                        dir,
                        &st.model_checkpoint_path
                    )))
                ),
            )),
        };
    }
    // No state file: accept a directory that holds exactly one bundle.
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".index")) {
            // The backup an interrupted write leaves is not a checkpoint of its own here.
            if !stem.is_empty() && !stem.ends_with(crate::commit::BACKUP_SUFFIX) {
                found.push(dir.join(stem));
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(not_found(
            dir,
            "directory has no `checkpoint` state file and no .index file",
        )),
        n => Err(not_found(
            dir,
            &format!("directory has no `checkpoint` state file and {n} .index files; name one"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = Path::new("dir/model.ckpt-1000");
        assert_eq!(index_path(p), Path::new("dir/model.ckpt-1000.index"));
        assert_eq!(
            data_path(p, 1, 2),
            Path::new("dir/model.ckpt-1000.data-00001-of-00002")
        );
        assert_eq!(meta_path(p), Path::new("dir/model.ckpt-1000.meta"));
        assert_eq!(
            data_path(p, 123456, 1234567),
            Path::new("dir/model.ckpt-1000.data-123456-of-1234567")
        );
    }

    #[test]
    fn data_suffix() {
        assert_eq!(
            strip_data_suffix("m.ckpt.data-00000-of-00001"),
            Some("m.ckpt")
        );
        assert_eq!(strip_data_suffix("a.data-1-of-2"), Some("a"));
        assert_eq!(strip_data_suffix("a.data-x-of-2"), None);
        assert_eq!(strip_data_suffix("a.data-1-of-"), None);
        assert_eq!(strip_data_suffix("a.index"), None);
    }
}
