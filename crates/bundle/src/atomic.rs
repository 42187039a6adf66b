//! Writing files so that a reader sees the old contents or the new, never a mix: write under
//! a temporary name beside the target, `fsync`, then rename over it (docs/format.md §5.3 on
//! how TensorFlow names its temporary files).

use std::collections::hash_map::RandomState;
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

/// `<path><suffix><random>`: a temporary name beside `path` that no other writer picks.
pub(crate) fn temp_path(path: &Path, suffix: &str) -> PathBuf {
    with_suffix(path, &format!("{suffix}{}", random_u64()))
}

/// Replaces `path` with `bytes` atomically: written to a temporary file beside it, synced,
/// and renamed over it. On error the temporary file is removed and `path` is untouched.
///
/// Errors: [`Error::Io`] naming the file that failed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path, ".tmp");
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
