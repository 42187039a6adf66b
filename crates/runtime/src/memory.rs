//! The memory budget: the most bytes one kernel output may take. Shapes computed from a
//! graph's attributes, constants or feeds (`Fill`, `Tile`, `BroadcastTo`, `Pad`, `OneHot`,
//! random ops, ...) are checked against it before anything is allocated, so that a tiny
//! hostile graph gets an error naming its node instead of aborting the process when the
//! allocator gives up.
//!
//! The budget is process-wide (like a `ulimit`), since kernels run on shared threads: set it
//! with [`set_max_memory`]; by default it is half of the machine's physical memory (8 GiB
//! where that cannot be read).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::ops::{fmt_shape, num_elements, op_bail, OpError};

/// 0 means "not set": [`default_max_memory`] applies.
static LIMIT: AtomicU64 = AtomicU64::new(0);

/// Sets the budget in bytes for one kernel output; `None` restores the default (half of
/// physical memory). A budget of 0 is taken as 1 byte.
pub fn set_max_memory(bytes: Option<u64>) {
    LIMIT.store(bytes.map_or(0, |b| b.max(1)), Ordering::Relaxed);
}

/// The budget in bytes for one kernel output: what [`set_max_memory`] set, or half of the
/// physical memory.
pub fn max_memory() -> u64 {
    match LIMIT.load(Ordering::Relaxed) {
        0 => default_max_memory(),
        n => n,
    }
}

/// Half of the physical memory (`MemTotal` of `/proc/meminfo`), or 8 GiB where it cannot be
/// read.
pub fn default_max_memory() -> u64 {
    static DEFAULT: OnceLock<u64> = OnceLock::new();
    *DEFAULT.get_or_init(|| physical_memory().map_or(8 << 30, |b| b / 2))
}

fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Element count of an output of `shape` whose elements take `element_bytes` each, refused
/// when its size overflows or exceeds [`max_memory`].
pub(crate) fn output_len(shape: &[usize], element_bytes: usize) -> Result<usize, OpError> {
    let n = num_elements(shape)?;
    let bytes = (n as u64).saturating_mul(element_bytes as u64);
    let limit = max_memory();
    if bytes > limit {
        op_bail!(
            "output shape {} needs {bytes} bytes, more than the memory budget of {limit} bytes \
             (ckpt-run --max-memory)",
            fmt_shape(shape)
        );
    }
    Ok(n)
}
