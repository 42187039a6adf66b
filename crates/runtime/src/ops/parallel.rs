//! Splitting work over rayon: disjoint output chunks, and only above a size threshold, where
//! the work outweighs the cost of waking threads.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use rayon::prelude::*;

thread_local! {
    /// Set while [`one_thread`] runs on this thread.
    static ONE_THREAD: Cell<bool> = const { Cell::new(false) };
    /// The session's pool while [`on_caller`] runs a plan on this (non-pool) thread.
    static CALLER_POOL: RefCell<Option<Arc<rayon::ThreadPool>>> = const { RefCell::new(None) };
    /// Parallel sections entered on this thread, for [`count_sections`].
    static SECTIONS: Cell<usize> = const { Cell::new(0) };
}

/// The threads a kernel may split its work over: 1 inside [`one_thread`], the session's pool's
/// inside [`on_caller`], otherwise the current rayon pool's.
pub(crate) fn num_threads() -> usize {
    if ONE_THREAD.with(Cell::get) {
        return 1;
    }
    CALLER_POOL
        .with(|p| p.borrow().as_ref().map(|p| p.current_num_threads()))
        .unwrap_or_else(rayon::current_num_threads)
}

/// Runs `f` on the calling thread with every kernel single-threaded: how a session with one
/// thread runs, without handing each run to a pool's worker and waiting for it (two context
/// switches, a third of a batch-1 MLP's run).
pub(crate) fn one_thread<R>(f: impl FnOnce() -> R) -> R {
    let before = ONE_THREAD.with(|c| c.replace(true));
    let result = f();
    ONE_THREAD.with(|c| c.set(before));
    result
}

/// Runs `f` (a plan) on the calling thread, each parallel section handed to `pool`: for runs
/// with few parallel sections, which then skip the hand-over of the whole run to the pool.
/// Kernels see the pool's thread count, so they split work exactly as inside the pool.
pub(crate) fn on_caller<R>(pool: &Arc<rayon::ThreadPool>, f: impl FnOnce() -> R) -> R {
    let before = CALLER_POOL.with(|p| p.replace(Some(Arc::clone(pool))));
    let result = f();
    CALLER_POOL.with(|p| *p.borrow_mut() = before);
    result
}

/// `f`'s result and the number of parallel sections it entered on this thread.
pub(crate) fn count_sections<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = SECTIONS.with(|c| c.replace(0));
    let result = f();
    let sections = SECTIONS.with(|c| c.replace(before));
    (result, sections)
}

/// Runs one parallel section of a kernel: on the session's pool when the plan runs on the
/// caller's thread ([`on_caller`]), otherwise right here (already on a pool's thread).
pub(crate) fn section<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    SECTIONS.with(|c| c.set(c.get() + 1));
    match CALLER_POOL.with(|p| p.borrow().clone()) {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Work units (about one multiply-add each) below which a kernel runs on the calling thread.
pub(crate) const MIN_PARALLEL_WORK: usize = 1 << 16;

/// The work units of `multiply_adds` done in vector registers (8 or 16 lanes, fused): an
/// eighth of a unit each, so that a vectorized kernel (direct and depthwise convolution)
/// goes parallel only when its share of a section outweighs a thread's hand-over, as the
/// scalar kernels the [`MIN_PARALLEL_WORK`] threshold was set for do.
pub(crate) fn vectorized_work(multiply_adds: usize) -> usize {
    multiply_adds / 8
}

/// Elements per task for elementwise maps.
const MAP_CHUNK: usize = 1 << 14;

/// `out[i] = f(src[i])`, in parallel for large inputs.
pub(crate) fn map<T, U>(src: &[T], f: impl Fn(T) -> U + Sync + Send) -> Vec<U>
where
    T: Copy + Sync,
    U: Copy + Default + Send,
{
    if src.len() < MIN_PARALLEL_WORK || num_threads() < 2 {
        return src.iter().map(|&x| f(x)).collect();
    }
    let mut out = vec![U::default(); src.len()];
    section(|| {
        out.par_chunks_mut(MAP_CHUNK)
            .zip(src.par_chunks(MAP_CHUNK))
            .for_each(|(o, s)| {
                for (o, &x) in o.iter_mut().zip(s) {
                    *o = f(x);
                }
            })
    });
    out
}

/// `data[i] = f(data[i])`, in parallel for large inputs.
pub(crate) fn map_in_place<T: Copy + Send>(data: &mut [T], f: impl Fn(T) -> T + Sync + Send) {
    if data.len() < MIN_PARALLEL_WORK || num_threads() < 2 {
        for x in data.iter_mut() {
            *x = f(*x);
        }
        return;
    }
    section(|| {
        data.par_chunks_mut(MAP_CHUNK).for_each(|chunk| {
            for x in chunk.iter_mut() {
                *x = f(*x);
            }
        })
    });
}

/// `f(chunk)` over disjoint chunks of `data` that cover it, in parallel for large inputs.
pub(crate) fn chunks_in_place<T: Send>(data: &mut [T], f: impl Fn(&mut [T]) + Sync + Send) {
    if data.len() < MIN_PARALLEL_WORK || num_threads() < 2 {
        f(data);
        return;
    }
    section(|| data.par_chunks_mut(MAP_CHUNK).for_each(f));
}

/// `out[i] = f(a[i], b[i])` for equal-length inputs, in parallel for large inputs.
pub(crate) fn zip_map<A, B, U>(a: &[A], b: &[B], f: impl Fn(A, B) -> U + Sync + Send) -> Vec<U>
where
    A: Copy + Sync,
    B: Copy + Sync,
    U: Copy + Default + Send,
{
    if a.len() < MIN_PARALLEL_WORK || num_threads() < 2 {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    let mut out = vec![U::default(); a.len()];
    section(|| {
        out.par_chunks_mut(MAP_CHUNK)
            .zip(a.par_chunks(MAP_CHUNK).zip(b.par_chunks(MAP_CHUNK)))
            .for_each(|(o, (a, b))| {
                for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                    *o = f(x, y);
                }
            })
    });
    out
}

/// `dst[i] = f(dst[i], src[i])`, in parallel for large inputs.
pub(crate) fn map_in_place_zip<T, S>(dst: &mut [T], src: &[S], f: impl Fn(T, S) -> T + Sync + Send)
where
    T: Copy + Send,
    S: Copy + Sync,
{
    if dst.len() < MIN_PARALLEL_WORK || num_threads() < 2 {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = f(*d, s);
        }
        return;
    }
    section(|| {
        dst.par_chunks_mut(MAP_CHUNK)
            .zip(src.par_chunks(MAP_CHUNK))
            .for_each(|(d, s)| {
                for (d, &s) in d.iter_mut().zip(s) {
                    *d = f(*d, s);
                }
            })
    });
}

/// Calls `f(row_index, row)` for every `row_len`-element row of `out`, spreading rows over
/// threads when `work_per_row * rows` is large. When `out.len()` is not a multiple of
/// `row_len` the last row is shorter.
pub(crate) fn for_rows<T: Send>(
    out: &mut [T],
    row_len: usize,
    work_per_row: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if row_len == 0 || out.is_empty() {
        return;
    }
    let rows = out.len() / row_len;
    let total = rows.saturating_mul(work_per_row.max(1));
    let threads = num_threads();
    if total < MIN_PARALLEL_WORK || rows < 2 || threads < 2 {
        for (i, row) in out.chunks_mut(row_len).enumerate() {
            f(i, row);
        }
        return;
    }
    // A few tasks per thread balances uneven rows without much scheduling overhead.
    let tasks = (threads * 4).min(rows);
    let rows_per_task = rows.div_ceil(tasks);
    section(|| {
        out.par_chunks_mut(rows_per_task * row_len)
            .enumerate()
            .for_each(|(t, chunk)| {
                for (i, row) in chunk.chunks_mut(row_len).enumerate() {
                    f(t * rows_per_task + i, row);
                }
            })
    });
}

/// Like [`for_rows`], but hands each task a block of whole rows: `f(first_row, block)`.
/// For kernels that amortize per-task setup (scratch buffers, GEMM calls) over many rows.
pub(crate) fn for_row_blocks<T: Send>(
    out: &mut [T],
    row_len: usize,
    work_per_row: usize,
    max_rows_per_block: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if row_len == 0 || out.is_empty() {
        return;
    }
    let rows = out.len() / row_len;
    let total = rows.saturating_mul(work_per_row.max(1));
    let threads = num_threads();
    let max_rows = max_rows_per_block.max(1);
    if total < MIN_PARALLEL_WORK || rows < 2 || threads < 2 {
        for (b, block) in out.chunks_mut(max_rows * row_len).enumerate() {
            f(b * max_rows, block);
        }
        return;
    }
    let tasks = (threads * 4).min(rows);
    let rows_per_task = rows.div_ceil(tasks).min(max_rows);
    section(|| {
        out.par_chunks_mut(rows_per_task * row_len)
            .enumerate()
            .for_each(|(t, block)| {
                f(t * rows_per_task, block);
            })
    });
}

/// A new buffer of `total` floats filled by rows of `row_len` as [`for_rows`] spreads them:
/// each row is zeroed inside its task (in cache, on the thread that fills it) before
/// `f(row_index, row)` runs, rather than the whole buffer up front on the calling thread.
/// `total` must be a multiple of `row_len` (a trailing part row is zeroed and not passed).
#[allow(unsafe_code)] // one `set_len` over the rows the tasks zeroed
pub(crate) fn rows_zeroed_in_task(
    total: usize,
    row_len: usize,
    work_per_row: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    use std::mem::MaybeUninit;
    let mut out: Vec<f32> = crate::memory::f32_buffer(total);
    let spare = &mut out.spare_capacity_mut()[..total];
    if row_len == 0 {
        spare.fill(MaybeUninit::new(0.0));
    } else {
        let whole = total - total % row_len;
        let (rows, rest) = spare.split_at_mut(whole);
        rest.fill(MaybeUninit::new(0.0));
        for_rows(rows, row_len, work_per_row, |i, row| {
            row.fill(MaybeUninit::new(0.0));
            // SAFETY: every element of `row` was just initialized, and MaybeUninit<f32> has
            // f32's layout.
            let row = unsafe { &mut *(row as *mut [MaybeUninit<f32>] as *mut [f32]) };
            f(i, row);
        });
    }
    // SAFETY: `for_rows` hands every row of `rows` (the first `whole` elements) to the
    // closure, which zeroes it first; `rest` was zeroed above: all `total` are initialized.
    unsafe { out.set_len(total) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_zeroed_in_task_hands_out_zeroed_rows_and_zeroes_a_trailing_part() {
        for (total, row_len) in [(0, 4), (10, 0), (13, 4), (MIN_PARALLEL_WORK * 2, 64)] {
            let out = rows_zeroed_in_task(total, row_len, 8, |i, row| {
                assert!(row.iter().all(|&v| v == 0.0));
                row.iter_mut().for_each(|v| *v = i as f32 + 1.0);
            });
            assert_eq!(out.len(), total);
            for (j, &v) in out.iter().enumerate() {
                let whole = total - total.checked_rem(row_len).unwrap_or(total);
                let want = if j < whole {
                    (j / row_len) as f32 + 1.0
                } else {
                    0.0
                };
                assert_eq!(v, want, "total {total}, row_len {row_len}, element {j}");
            }
        }
    }

    #[test]
    fn map_matches_sequential_on_large_and_small_inputs() {
        for n in [0usize, 1, 7, MIN_PARALLEL_WORK + 17] {
            let src: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let out = map(&src, |x| x * 2.0);
            assert_eq!(out.len(), n);
            assert!(out.iter().enumerate().all(|(i, &y)| y == 2.0 * i as f32));
        }
    }

    #[test]
    fn one_thread_makes_kernels_single_threaded_on_the_caller() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build();
        let Ok(pool) = pool else {
            return;
        };
        pool.install(|| {
            assert_eq!(num_threads(), 3);
            let caller = std::thread::current().id();
            let (threads, ran_on) = one_thread(|| (num_threads(), std::thread::current().id()));
            assert_eq!((threads, ran_on), (1, caller));
            // Nested calls restore the flag they found.
            one_thread(|| one_thread(|| ()));
            assert_eq!(num_threads(), 3);
            // Maps above the size threshold stay on the caller's thread.
            let data: Vec<u32> = (0..MIN_PARALLEL_WORK as u32 * 2).collect();
            let seen = std::sync::Mutex::new(std::collections::HashSet::new());
            let out = one_thread(|| {
                map(&data, |x| {
                    if let Ok(mut s) = seen.lock() {
                        s.insert(std::thread::current().id());
                    }
                    x + 1
                })
            });
            assert_eq!(out.iter().map(|&x| u64::from(x)).sum::<u64>(), {
                let n = data.len() as u64;
                n * (n + 1) / 2
            });
            assert_eq!(seen.lock().map(|s| s.len()).unwrap_or(0), 1);
        });
    }

    #[test]
    fn on_caller_hands_sections_to_the_pool_and_counts_them() {
        let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(3).build() else {
            return;
        };
        let pool = Arc::new(pool);
        let caller = std::thread::current().id();
        let ((threads, here, in_section, in_pool), sections) = on_caller(&pool, || {
            count_sections(|| {
                let threads = num_threads();
                let here = std::thread::current().id();
                let (in_section, in_pool) = section(|| {
                    (
                        std::thread::current().id(),
                        rayon::current_thread_index().is_some(),
                    )
                });
                (threads, here, in_section, in_pool)
            })
        });
        // Kernels see the pool's threads; the plan stays on the caller; a section runs on a
        // pool thread.
        assert_eq!((threads, here, sections), (3, caller, 1));
        assert!(in_pool && in_section != caller);
        // Outside `on_caller` the pool is forgotten, and sections run where they are.
        assert_eq!(num_threads(), rayon::current_num_threads());
        let (_, counted) = count_sections(|| section(|| ()));
        assert_eq!(counted, 1);
        // Results equal a run inside the pool: the same chunking decisions.
        let data: Vec<u32> = (0..MIN_PARALLEL_WORK as u32 * 3).collect();
        let inside = pool.install(|| map(&data, |x| x.wrapping_mul(7)));
        let (outside, sections) = on_caller(&pool, || {
            count_sections(|| map(&data, |x| x.wrapping_mul(7)))
        });
        assert_eq!((inside, sections), (outside, 1));
    }

    #[test]
    fn for_rows_visits_every_row_once() {
        for rows in [0usize, 1, 3, 1000] {
            let mut out = vec![0usize; rows * 129];
            for_rows(&mut out, 129, 1000, |r, row| {
                row.iter_mut().for_each(|x| *x += r + 1)
            });
            for (r, row) in out.chunks(129).enumerate() {
                assert!(row.iter().all(|&x| x == r + 1));
            }
        }
    }

    #[test]
    fn for_row_blocks_visits_every_row_once() {
        for rows in [1usize, 5, 999] {
            let mut out = vec![0usize; rows * 3];
            for_row_blocks(&mut out, 3, 100_000, 64, |first, block| {
                for (i, row) in block.chunks_mut(3).enumerate() {
                    row.iter_mut().for_each(|x| *x += first + i + 1);
                }
            });
            for (r, row) in out.chunks(3).enumerate() {
                assert!(row.iter().all(|&x| x == r + 1));
            }
        }
    }
}
