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

/// Buffers smaller than this many elements (64 KiB of float32) are left to the allocator:
/// they are cheap to allocate, and pooling them would only add bookkeeping.
const MIN_POOLED: usize = 16 * 1024;

/// A pooled buffer serves a request of `len` elements when its capacity is at most this many
/// times `len`, so that a small tensor never pins a much larger buffer.
const MAX_SLACK: usize = 2;

/// The free buffers hold at most this many times the most elements a run had out at once.
const FREE_BOUND: usize = 2;

/// float32 buffers freed during runs of one [`Session`](crate::Session), handed to later
/// allocations of a similar size: the executor's memory plan. Values move out of their slots
/// on their last read (the plan computes which read that is once, when it is built), so a
/// buffer comes back here as soon as the tensor it held is dead, and the next kernel output
/// of a fitting size takes it. With fixed input shapes every run makes the same requests,
/// so after the first run the tensors a run produces and frees come from the pool instead of
/// the allocator (test `steady_state_runs_reuse_buffers` in `tests/fixtures.rs`); the tensors a run returns leave the pool.
///
/// Bounded: the free buffers never hold more than [`FREE_BOUND`] times the most elements a
/// run had taken out of the pool at once, and a buffer that no allocation took during a whole run is freed when the
/// run ends. Only the thread that runs the plan recycles; buffers dropped on kernel threads go
/// back to the allocator.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    /// Free buffers (length 0), with the run in which each came back.
    free: Vec<(u64, Vec<f32>)>,
    /// Elements in `free`.
    free_elements: usize,
    /// Runs started with this pool; the current one while it is installed.
    run: u64,
    /// Elements handed out and not yet back in this run, and the most there were at once in
    /// any run: the bound on `free_elements`.
    out_elements: usize,
    peak_out_elements: usize,
    /// Requests of this run that the free buffers could not serve.
    misses: usize,
}

impl BufferPool {
    /// Requests of the last run that no free buffer could serve (allocated afresh).
    pub(crate) fn misses(&self) -> usize {
        self.misses
    }

    /// The smallest free buffer holding at least `len` elements and at most
    /// [`MAX_SLACK`]` * len`.
    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let limit = len.saturating_mul(MAX_SLACK);
        let best = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, (_, b))| (len..=limit).contains(&b.capacity()))
            .min_by_key(|(_, (_, b))| b.capacity())
            .map(|(i, _)| i)?;
        let (_, buf) = self.free.swap_remove(best);
        self.free_elements -= buf.capacity();
        Some(buf)
    }

    fn note_out(&mut self, elements: usize) {
        self.out_elements = self.out_elements.saturating_add(elements);
        self.peak_out_elements = self.peak_out_elements.max(self.out_elements);
    }

    fn give_back(&mut self, mut buf: Vec<f32>) {
        let elements = buf.capacity();
        self.out_elements = self.out_elements.saturating_sub(elements);
        if self.free_elements.saturating_add(elements)
            > self.peak_out_elements.saturating_mul(FREE_BOUND)
        {
            return; // freed by the allocator
        }
        buf.clear();
        self.free_elements += elements;
        self.free.push((self.run, buf));
    }

    /// Ends a run: frees the buffers that no allocation took during it.
    fn end_run(&mut self) {
        let run = self.run;
        self.free.retain(|(back, _)| *back >= run);
        self.free_elements = self.free.iter().map(|(_, b)| b.capacity()).sum();
        self.out_elements = 0;
    }
}

thread_local! {
    /// The pool of the plan running on this thread, if any.
    static ACTIVE: std::cell::RefCell<Option<BufferPool>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (one run of a plan) with `pool` serving [`f32_buffer`] on this thread; returns
/// `f`'s result and the pool, with the buffers no allocation took during the run freed. A
/// pool installed by an outer call is restored afterwards, also when `f` panics.
pub(crate) fn with_pool<R>(pool: BufferPool, f: impl FnOnce() -> R) -> (R, BufferPool) {
    struct Restore(Option<BufferPool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            // The run's pool is dropped here when `f` panicked (the normal path took it).
            let _ = ACTIVE.try_with(|a| a.replace(outer));
        }
    }
    let mut pool = pool;
    pool.run += 1;
    pool.misses = 0;
    let outer = ACTIVE.with(|a| a.replace(Some(pool)));
    let restore = Restore(outer);
    let result = f();
    let mut pool = ACTIVE.with(|a| a.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    pool.end_run();
    (result, pool)
}

/// An empty float32 vector with room for `len` elements, from the running plan's pool when
/// a free buffer fits (see [`BufferPool`]), otherwise from the allocator. Its contents are
/// for the caller to write (through `spare_capacity_mut` and `set_len`, or `resize`).
pub(crate) fn f32_buffer(len: usize) -> Vec<f32> {
    if len >= MIN_POOLED {
        let pooled = ACTIVE.with(|a| {
            let mut active = a.borrow_mut();
            let pool = active.as_mut()?;
            let found = pool.take(len);
            let buf = found.unwrap_or_else(|| {
                pool.misses += 1;
                Vec::with_capacity(len)
            });
            pool.note_out(buf.capacity());
            Some(buf)
        });
        if let Some(buf) = pooled {
            return buf;
        }
    }
    Vec::with_capacity(len)
}

/// [`f32_buffer`] filled with `len` zeros.
pub(crate) fn f32_zeros(len: usize) -> Vec<f32> {
    if len < MIN_POOLED {
        return vec![0.0; len];
    }
    let mut buf = f32_buffer(len);
    buf.resize(len, 0.0);
    buf
}

/// Takes back the buffer of a dead float32 tensor into the running plan's pool, if this thread
/// runs one; otherwise (or when it is small, or the pool is full) the allocator frees it.
pub(crate) fn recycle_f32(buf: Vec<f32>) {
    if buf.capacity() < MIN_POOLED {
        return;
    }
    let _ = ACTIVE.try_with(|a| {
        if let Ok(mut active) = a.try_borrow_mut() {
            if let Some(pool) = active.as_mut() {
                pool.give_back(buf);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorBuf;

    fn tensor(len: usize) -> TensorBuf<f32> {
        let mut buf = f32_buffer(len);
        buf.resize(len, 1.0);
        TensorBuf::from_parts(vec![len], buf)
    }

    #[test]
    fn dead_tensors_serve_later_outputs_of_a_fitting_size() {
        let (_, pool) = with_pool(BufferPool::default(), || {
            let a = tensor(MIN_POOLED * 4);
            let ptr = a.data().as_ptr();
            drop(a);
            // The freed buffer serves a request up to MAX_SLACK times smaller...
            let b = tensor(MIN_POOLED * 2);
            assert_eq!(b.data().as_ptr(), ptr);
            drop(b);
            // ...but not a larger one, nor a much smaller one.
            let c = tensor(MIN_POOLED * 4 + 1);
            assert_ne!(c.data().as_ptr(), ptr);
            let d = tensor(MIN_POOLED);
            assert_ne!(d.data().as_ptr(), ptr);
        });
        // a; c and d: a's buffer did not fit them.
        assert_eq!(pool.misses(), 3);
        assert_eq!(pool.free.len(), 3);
        let (_, pool) = with_pool(pool, || {
            drop(tensor(MIN_POOLED * 3));
        });
        assert_eq!(pool.misses(), 0);
        // Buffers no request took during the run are freed when it ends.
        assert_eq!(pool.free.len(), 1);
        assert_eq!(pool.free_elements, pool.free[0].1.capacity());
    }

    #[test]
    fn free_buffers_stay_within_their_bound() {
        let (_, pool) = with_pool(BufferPool::default(), || {
            drop(tensor(MIN_POOLED));
            // Buffers the pool did not hand out come back too (tensors built elsewhere),
            // while the free ones stay within FREE_BOUND times the most that were out.
            for _ in 0..FREE_BOUND + 2 {
                drop(TensorBuf::from_parts(
                    vec![MIN_POOLED],
                    vec![1.0f32; MIN_POOLED],
                ));
            }
        });
        assert_eq!(pool.free.len(), FREE_BOUND);
        assert!(pool.free_elements <= FREE_BOUND * MIN_POOLED);
    }

    #[test]
    fn small_buffers_and_runs_without_a_pool_use_the_allocator() {
        let (_, pool) = with_pool(BufferPool::default(), || {
            drop(tensor(MIN_POOLED - 1));
            drop(tensor(MIN_POOLED - 1));
        });
        assert_eq!((pool.misses(), pool.free.len()), (0, 0));
        // Outside a run nothing is pooled, and nothing fails.
        drop(tensor(MIN_POOLED * 2));
        assert!(ACTIVE.with(|a| a.borrow().is_none()));
    }

    #[test]
    fn zeros_from_a_recycled_buffer_are_zeros() {
        let (_, _) = with_pool(BufferPool::default(), || {
            drop(tensor(MIN_POOLED));
            let z = f32_zeros(MIN_POOLED);
            assert!(z.len() == MIN_POOLED && z.iter().all(|&x| x.to_bits() == 0));
        });
    }

    #[test]
    fn a_panicking_run_leaves_the_outer_pool_installed() {
        let (_, _) = with_pool(BufferPool::default(), || {
            let inner = std::panic::catch_unwind(|| {
                with_pool(BufferPool::default(), || panic!("kernel panicked"))
            });
            assert!(inner.is_err());
            assert!(ACTIVE.with(|a| a.borrow().is_some()));
            drop(tensor(MIN_POOLED));
            let again = tensor(MIN_POOLED);
            drop(again);
        });
        assert!(ACTIVE.with(|a| a.borrow().is_none()));
    }
}
