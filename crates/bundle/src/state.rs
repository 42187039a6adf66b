//! The `checkpoint` state file: a text-format `CheckpointState` naming the latest
//! checkpoint of a directory and the ones kept before it.
//!
//! ```
//! use ckpt_bundle::state::{format_state, parse_state};
//!
//! let st = parse_state("model_checkpoint_path: \"model.ckpt-5\"\n\
//!                       all_model_checkpoint_paths: \"model.ckpt-5\"\n")?;
//! assert_eq!(st.model_checkpoint_path, "model.ckpt-5");
//! assert_eq!(parse_state(&format_state(&st))?, st);
//! # Ok::<(), ckpt_bundle::Error>(())
//! ```

use std::path::{Path, PathBuf};

pub use ckpt_proto::CheckpointState;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::paths::{index_path, meta_path, strip_data_suffix};
pub use crate::text_format::{format_state, parse_state};

/// The state file's name inside a checkpoint directory (`latest_filename` default).
pub const STATE_FILE_NAME: &str = "checkpoint";

/// Reads `dir/checkpoint`. As TensorFlow's `get_checkpoint_state` does, relative paths in
/// it are joined onto `dir`, and an empty `model_checkpoint_path` is an error.
pub fn read_state(dir: &Path) -> Result<CheckpointState> {
    let path = dir.join(STATE_FILE_NAME);
    let mut st = read_raw(&path)?;
    if st.model_checkpoint_path.is_empty() {
        return Err(Error::StateFile {
            path,
            line: 0,
            reason: "model_checkpoint_path is empty or missing".to_string(),
        });
    }
    let join = |p: &str| join_dir(dir, p).to_string_lossy().into_owned();
    st.model_checkpoint_path = join(&st.model_checkpoint_path);
    for p in &mut st.all_model_checkpoint_paths {
        *p = join(p);
    }
    Ok(st)
}

/// The largest state file read, in bytes. TensorFlow's are a few hundred bytes per kept
/// checkpoint; anything larger than this is not one.
pub const MAX_STATE_FILE_BYTES: u64 = 1 << 20;

fn read_raw(path: &Path) -> Result<CheckpointState> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_STATE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_STATE_FILE_BYTES {
        return Err(Error::StateFile {
            path: path.to_path_buf(),
            line: 0,
            reason: format!(
                "larger than {MAX_STATE_FILE_BYTES} bytes: not a checkpoint state file"
            ),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| Error::StateFile {
        path: path.to_path_buf(),
        line: 0,
        reason: format!("not UTF-8 text ({e})"),
    })?;
    parse_state(&text).map_err(|e| match e {
        Error::StateSyntax { line, reason } => Error::StateFile {
            path: path.to_path_buf(),
            line,
            reason,
        },
        other => other,
    })
}

/// The latest checkpoint prefix of `dir`, as `tf.train.latest_checkpoint`: `None` when
/// there is no state file or the checkpoint it names has no `.index`. When the state file
/// holds an absolute path that no longer exists (the directory was moved or copied), the
/// same file name inside `dir` is tried.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    if !dir.join(STATE_FILE_NAME).is_file() {
        return Ok(None);
    }
    let st = read_state(dir)?;
    Ok(find_existing(dir, &st.model_checkpoint_path))
}

pub(crate) fn join_dir(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// The prefix `p` names, if its `.index` exists, trying `dir/<file name>` for a stale
/// absolute path.
pub(crate) fn find_existing(dir: &Path, p: &str) -> Option<PathBuf> {
    let joined = join_dir(dir, p);
    if index_path(&joined).is_file() {
        return Some(joined);
    }
    let moved = dir.join(joined.file_name()?);
    index_path(&moved).is_file().then_some(moved)
}

/// Records `new_prefix` as the latest checkpoint of `dir`, as TF1's `Saver.save` does:
/// it becomes `model_checkpoint_path` and the last of `all_model_checkpoint_paths`; when
/// `max_to_keep` is `Some(n)` with `n > 0`, the oldest entries beyond `n` are dropped
/// and their files (`.index`, `.data-*`, `.meta`) deleted. `Some(0)` and `None` keep all,
/// as in TensorFlow. Paths inside `dir` are written relative to it, others absolute.
/// The file is replaced atomically.
pub fn update_state(dir: &Path, new_prefix: &Path, max_to_keep: Option<usize>) -> Result<()> {
    let state_path = dir.join(STATE_FILE_NAME);
    let mut st = if state_path.is_file() {
        read_raw(&state_path)?
    } else {
        CheckpointState::default()
    };
    let abs_dir = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    let abs_new = std::path::absolute(new_prefix).map_err(|e| Error::io(new_prefix, e))?;
    let entry = match abs_new.strip_prefix(&abs_dir) {
        Ok(rel) if rel.components().count() > 0 => rel.to_string_lossy().into_owned(),
        _ => abs_new.to_string_lossy().into_owned(),
    };

    let keep_times = !st.all_model_checkpoint_timestamps.is_empty()
        && st.all_model_checkpoint_timestamps.len() == st.all_model_checkpoint_paths.len();
    let mut paths = Vec::new();
    let mut times = Vec::new();
    for (i, p) in st.all_model_checkpoint_paths.iter().enumerate() {
        let same = std::path::absolute(join_dir(dir, p)).is_ok_and(|a| a == abs_new);
        if !same {
            paths.push(p.clone());
            if keep_times {
                times.push(
                    st.all_model_checkpoint_timestamps
                        .get(i)
                        .copied()
                        .unwrap_or(0.0),
                );
            }
        }
    }
    paths.push(entry.clone());
    if keep_times {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        times.push(now);
    }
    let mut dropped = Vec::new();
    if let Some(n) = max_to_keep.filter(|&n| n > 0) {
        while paths.len() > n {
            dropped.push(paths.remove(0));
            if keep_times && !times.is_empty() {
                times.remove(0);
            }
        }
    }
    st.model_checkpoint_path = entry;
    st.all_model_checkpoint_paths = paths;
    st.all_model_checkpoint_timestamps = times;
    write_atomic(&state_path, format_state(&st).as_bytes())?;

    for old in dropped {
        delete_checkpoint_files(&join_dir(dir, &old))?;
    }
    Ok(())
}

/// Deletes `<prefix>.index`, `<prefix>.meta` and every `<prefix>.data-*-of-*`; files
/// already gone are not an error.
pub fn delete_checkpoint_files(prefix: &Path) -> Result<()> {
    let remove = |p: &Path| match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p, e)),
        _ => Ok(()),
    };
    remove(&index_path(prefix))?;
    remove(&meta_path(prefix))?;
    let (Some(parent), Some(base)) = (prefix.parent(), prefix.file_name()) else {
        return Ok(());
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let base = base.to_string_lossy();
    let list = match std::fs::read_dir(parent) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(parent, e)),
    };
    for entry in list {
        let entry = entry.map_err(|e| Error::io(parent, e))?;
        let name = entry.file_name();
        if let Some(name) = name.to_str() {
            if strip_data_suffix(name) == Some(&*base) {
                remove(&entry.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_state_files_are_refused_without_reading_them_whole() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join(STATE_FILE_NAME);
        let mut text = String::from("model_checkpoint_path: \"m\"\n");
        text.push_str(&"# padding\n".repeat(200_000));
        std::fs::write(&path, &text).map_err(|e| Error::io(&path, e))?;
        assert!(matches!(
            read_state(dir.path()),
            Err(Error::StateFile { line: 0, ref reason, .. }) if reason.starts_with("larger than 1048576 bytes")
        ));
        Ok(())
    }
}
