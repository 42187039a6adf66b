//! Putting a finished checkpoint in place so that a crash at any moment leaves the prefix with
//! the complete old checkpoint, the complete new one, or (only when replacing one) no
//! checkpoint, with the old one kept whole under [`backup_prefix`]. Never the old index over the
//! new data.
//!
//! The new files are written and synced under temporary names first (by the writer). Then:
//! 1. the old checkpoint's files are hard-linked (copied where links are not possible) to the
//!    backup prefix, so a complete copy exists before anything at the prefix changes;
//! 2. the old `.index` is removed: the prefix now holds no checkpoint (a reader needs the
//!    index), and the backup holds the old one;
//! 3. the new data files are renamed into place, then the new index, the last step that makes
//!    the new checkpoint visible;
//! 4. the backup (also one left by an earlier interrupted write to the prefix) and the data
//!    shards of the old checkpoint that the new one does not use are removed.
//!
//! The directory is synced after each group of steps. A writer that dies leaves temporary files
//! named `<file>.tempstate-<pid>-<n>` (or a backup); `atomic::remove_stale_temp_files` removes
//! the temporary files of writers that are no longer running, and readers report a backup left
//! beside a missing checkpoint ([`interrupted_write`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::paths::{index_path, strip_data_suffix, with_suffix};

/// What is appended to a prefix to name the backup of the checkpoint a write replaces.
pub const BACKUP_SUFFIX: &str = ".ckpt-backup";

/// The prefix under which a write keeps the checkpoint it replaces until it is done:
/// `<prefix>.ckpt-backup` (itself a readable checkpoint prefix).
pub fn backup_prefix(prefix: &Path) -> PathBuf {
    with_suffix(prefix, BACKUP_SUFFIX)
}

/// When `prefix` has no `.index` but a backup from an interrupted write does, the backup's
/// prefix: the checkpoint that was at `prefix` before.
pub fn interrupted_write(prefix: &Path) -> Option<PathBuf> {
    let backup = backup_prefix(prefix);
    (!index_path(prefix).exists() && index_path(&backup).is_file()).then_some(backup)
}

/// The files of the checkpoint at `prefix`: its `.index` (if it exists) and every
/// `<prefix>.data-*-of-*` beside it.
fn checkpoint_files(prefix: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let index = index_path(prefix);
    if index.is_file() {
        files.push(index);
    }
    let (dir, base) = split(prefix);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            if strip_data_suffix(name) == Some(base.as_str()) {
                files.push(entry.path());
            }
        }
    }
    Ok(files)
}

/// The directory of `prefix` (`.` for a bare name) and its file name part.
fn split(prefix: &Path) -> (PathBuf, String) {
    let dir = match prefix.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = prefix
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, base)
}

/// `file` renamed from `from_prefix` to `to_prefix` (same suffix).
fn renamed(file: &Path, from_prefix: &Path, to_prefix: &Path) -> Option<PathBuf> {
    let name = file.file_name()?.to_str()?;
    let from = from_prefix.file_name()?.to_str()?;
    let suffix = name.strip_prefix(from)?;
    Some(with_suffix(to_prefix, suffix))
}

/// Syncs a directory, so that the renames and links in it survive a power loss.
fn sync_dir(dir: &Path) -> Result<()> {
    // Directories cannot be opened for syncing everywhere (Windows); where they can, it matters.
    if let Ok(d) = File::open(dir) {
        d.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// Puts a written checkpoint in place at `prefix`: `data` lists `(temporary, final)` paths of
/// its data files, `index_tmp` its index (all fully written). `sync` also syncs the directory
/// after each step. See the module documentation for the order and what a crash leaves.
///
/// Errors: [`Error::Io`] naming the file that failed; the temporary files are left for the
/// caller to remove.
pub(crate) fn commit(
    prefix: &Path,
    data: &[(PathBuf, PathBuf)],
    index_tmp: &Path,
    sync: bool,
) -> Result<()> {
    let (dir, _) = split(prefix);
    let sync_dir = |d: &Path| if sync { sync_dir(d) } else { Ok(()) };
    let backup = backup_prefix(prefix);
    let old = checkpoint_files(prefix)?;
    let replacing = old.first().is_some_and(|f| *f == index_path(prefix));

    if replacing {
        // A backup left by an earlier interrupted write is superseded by the complete
        // checkpoint now at the prefix.
        for f in checkpoint_files(&backup)? {
            remove_if_exists(&f)?;
        }
        for f in &old {
            let Some(to) = renamed(f, prefix, &backup) else {
                continue;
            };
            if std::fs::hard_link(f, &to).is_err() {
                std::fs::copy(f, &to).map_err(|e| Error::io(&to, e))?;
                if sync {
                    File::open(&to)
                        .and_then(|t| t.sync_all())
                        .map_err(|e| Error::io(&to, e))?;
                }
            }
        }
        sync_dir(&dir)?;
        let index = index_path(prefix);
        std::fs::remove_file(&index).map_err(|e| Error::io(&index, e))?;
        sync_dir(&dir)?;
    }
    for (tmp, to) in data {
        std::fs::rename(tmp, to).map_err(|e| Error::io(to, e))?;
    }
    let index = index_path(prefix);
    std::fs::rename(index_tmp, &index).map_err(|e| Error::io(&index, e))?;
    sync_dir(&dir)?;

    // The new checkpoint is complete: drop the backup and old shards it does not use.
    let kept: Vec<&PathBuf> = data.iter().map(|(_, to)| to).collect();
    for f in old.iter().skip(usize::from(replacing)) {
        if !kept.contains(&f) {
            remove_if_exists(f)?;
        }
    }
    // Also a backup left by an earlier interrupted write: the checkpoint it saved was being
    // replaced, and now has been.
    for f in checkpoint_files(&backup)? {
        remove_if_exists(&f)?;
    }
    Ok(())
}
