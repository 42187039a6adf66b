//! Temporary files and atomic replacement: a file is written under a temporary name beside its
//! target (`<target>.tempstate-<pid>-<n>`, after TensorFlow's `.tempstate<n>`), synced, then
//! renamed over it, so a reader sees the old contents or the new, never a mix. The writer's pid
//! in the name lets the next write recognize the leftovers of a killed one.

use std::collections::hash_map::RandomState;
use std::ffi::OsStr;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::paths::with_suffix;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random u64 for temporary file names (`.tempstate<random>`, as TensorFlow names them).
pub(crate) fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(TEMP_COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

/// The marker in the names of this crate's temporary files: `<final name>.tempstate-<pid>-<n>`
/// (TensorFlow's own writers use `.tempstate<n>`, which this crate never removes).
pub(crate) const TEMP_MARKER: &str = ".tempstate-";

/// A temporary name beside `path` for this process: `<path>.tempstate-<pid>-<n>`.
pub(crate) fn temp_name(path: &Path) -> PathBuf {
    with_suffix(
        path,
        &format!("{TEMP_MARKER}{}-{}", std::process::id(), random_u64()),
    )
}

/// Removes, from `dir`, the temporary files (`*.tempstate-<pid>-<n>`) of writers that are no
/// longer running: a write killed midway leaves them, and the next write into the directory
/// cleans up. Where a process cannot be checked (no `/proc`), nothing is removed. Returns the
/// files removed.
pub(crate) fn remove_stale_temp_files(dir: &Path) -> Vec<PathBuf> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = writer_pid(&name) else {
            continue;
        };
        if !proc.join(pid.to_string()).exists() && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// The process id in a temporary file name of this crate, if `name` is one.
fn writer_pid(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?;
    let at = name.rfind(TEMP_MARKER)?;
    let rest = name.get(at + TEMP_MARKER.len()..)?;
    let (pid, n) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(pid) && digits(n) {
        pid.parse().ok()
    } else {
        None
    }
}

/// Replaces `path` with `bytes` atomically: written to a temporary file beside it, synced,
/// and renamed over it. On error the temporary file is removed and `path` is untouched.
///
/// Errors: [`Error::Io`] naming the file that failed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_name(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_the_writer_pid() {
        let t = temp_name(Path::new("d/m.index"));
        let name = t.file_name().map(OsStr::to_os_string).unwrap_or_default();
        assert_eq!(writer_pid(&name), Some(std::process::id()));
        assert_eq!(writer_pid(OsStr::new("m.index.tempstate123")), None);
        assert_eq!(writer_pid(OsStr::new("m.index.tempstate-12-x")), None);
        assert_eq!(writer_pid(OsStr::new("m.index")), None);
    }

    #[test]
    fn stale_temp_files_of_dead_writers_are_removed() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        // A pid that cannot be running (above Linux's pid_max limit of 2^22).
        let dead = dir.path().join("m.index.tempstate-4999999-7");
        let alive = temp_name(&dir.path().join("m.index"));
        let tensorflow = dir.path().join("m.index.tempstate123");
        for f in [&dead, &alive, &tensorflow] {
            std::fs::write(f, b"x").map_err(|e| Error::io(f, e))?;
        }
        let removed = remove_stale_temp_files(dir.path());
        if Path::new("/proc/self").exists() {
            assert_eq!(removed, std::slice::from_ref(&dead));
            assert!(!dead.exists());
        }
        assert!(alive.exists() && tensorflow.exists());
        Ok(())
    }
}
