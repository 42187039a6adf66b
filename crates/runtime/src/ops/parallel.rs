//! Splitting work over the session's [`Team`](crate::team::Team): disjoint output chunks,
//! and only above a size threshold, where the work outweighs the cost of handing it over.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::team::{self, Shared};

thread_local! {
    /// Set while [`one_thread`] runs on this thread.
    static ONE_THREAD: Cell<bool> = const { Cell::new(false) };
    /// The session's team while [`with_team`] runs a plan on this thread.
    static TEAM: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

/// The threads a kernel may split its work over: the team's inside [`with_team`] (the
/// calling thread included), otherwise 1; also 1 inside [`one_thread`] and inside a task of a
/// section (tasks do not split further).
pub(crate) fn num_threads() -> usize {
    if ONE_THREAD.with(Cell::get) || team::in_task() {
        return 1;
    }
    TEAM.with(|t| t.borrow().as_ref().map(|t| t.threads()))
        .unwrap_or(1)
}

/// Runs `f` on the calling thread with every kernel single-threaded: how a session with one
/// thread runs.
pub(crate) fn one_thread<R>(f: impl FnOnce() -> R) -> R {
    let before = ONE_THREAD.with(|c| c.replace(true));
    let result = f();
    ONE_THREAD.with(|c| c.set(before));
    result
}

/// Runs `f` (a plan, or the constant folding of one) on the calling thread, each parallel
/// section spread over `team` and this thread.
pub(crate) fn with_team<R>(team: &Arc<Shared>, f: impl FnOnce() -> R) -> R {
    let before = TEAM.with(|t| t.replace(Some(Arc::clone(team))));
    let result = f();
    TEAM.with(|t| *t.borrow_mut() = before);
    result
}

/// Runs `f(i)` for every `i` in `0..tasks`, each once: spread over the current team, or in
/// order on this thread when there is none (or inside [`one_thread`], or inside a task).
pub(crate) fn tasks(tasks: usize, f: impl Fn(usize) + Sync) {
    let team = if num_threads() > 1 {
        TEAM.with(|t| t.borrow().clone())
    } else {
        None
    };
    match team {
        Some(team) => team.run(tasks, &f),
        None => (0..tasks).for_each(f),
    }
}

/// An output buffer that the tasks of one section write through, each its own disjoint
/// elements ([`for_chunks`]' chunks, a product's blocks, a convolution's channel shares).
/// Dereferencing it is the caller's `unsafe`, whose SAFETY comment says why the tasks'
/// elements are disjoint and inside the buffer.
pub(crate) struct TaskOutput<T>(*mut T);
// SAFETY: sharing the pointer between the tasks of a section is sound as long as they write
// disjoint elements (each use's obligation, above); `T: Send` lets those elements be written
// from another thread.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for TaskOutput<T> {}

impl<T> TaskOutput<T> {
    pub(crate) fn new(base: *mut T) -> TaskOutput<T> {
        TaskOutput(base)
    }

    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    pub(crate) fn get(&self) -> *mut T {
        self.0
    }
}

/// `f(i, chunk)` for the `i`-th `chunk_len`-element chunk of `data` (the last may be
/// shorter), chunks spread over the current team as [`tasks`] does, whatever their size.
#[allow(unsafe_code)] // the disjoint sub-slices of `data` handed to the tasks
pub(crate) fn for_chunks<T: Send>(
    data: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let len = data.len();
    let chunk_len = chunk_len.max(1);
    let base = TaskOutput::new(data.as_mut_ptr());
    tasks(len.div_ceil(chunk_len), |i| {
        let start = i * chunk_len;
        let end = (start + chunk_len).min(len);
        // SAFETY: `tasks` calls this once per `i`, so the ranges `start..end` are disjoint,
        // and each lies inside `data`, which is borrowed mutably until every task returns.
        let chunk = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
        f(i, chunk);
    });
}

/// Work units (about one multiply-add each) below which a kernel runs on the calling thread.
pub(crate) const MIN_PARALLEL_WORK: usize = 1 << 16;

/// The work units of `multiply_adds` done in vector registers (8 or 16 lanes, fused): a
/// quarter of a unit each, so that a vectorized kernel (direct and depthwise convolution)
/// goes parallel from about a quarter of a million multiply-adds (some 10 µs on one core),
/// where its share of a section outweighs handing it to a spinning worker. An eighth (which
/// suited the rayon pool's hand-over) and a half were slower at MobileNetV2 batch 1 on 2
/// threads in alternating rounds, a 32nd slower at batch 16 (late layers on one thread).
pub(crate) fn vectorized_work(multiply_adds: usize) -> usize {
    multiply_adds / 4
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
    for_chunks(&mut out, MAP_CHUNK, |c, o| {
        for (o, &x) in o.iter_mut().zip(&src[c * MAP_CHUNK..]) {
            *o = f(x);
        }
    });
    out
}

/// `data[i] = f(data[i])`, in parallel for large inputs.
pub(crate) fn map_in_place<T: Copy + Send>(data: &mut [T], f: impl Fn(T) -> T + Sync + Send) {
    chunks_in_place(data, |chunk| {
        for x in chunk.iter_mut() {
            *x = f(*x);
        }
    });
}

/// `f(chunk)` over disjoint chunks of `data` that cover it, in parallel for large inputs.
pub(crate) fn chunks_in_place<T: Send>(data: &mut [T], f: impl Fn(&mut [T]) + Sync + Send) {
    if data.len() < MIN_PARALLEL_WORK || num_threads() < 2 {
        f(data);
        return;
    }
    for_chunks(data, MAP_CHUNK, |_, chunk| f(chunk));
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
    let mut out = vec![U::default(); a.len().min(b.len())];
    for_chunks(&mut out, MAP_CHUNK, |c, o| {
        let (a, b) = (&a[c * MAP_CHUNK..], &b[c * MAP_CHUNK..]);
        for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
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
    let len = dst.len().min(src.len());
    for_chunks(&mut dst[..len], MAP_CHUNK, |c, d| {
        for (d, &s) in d.iter_mut().zip(&src[c * MAP_CHUNK..]) {
            *d = f(*d, s);
        }
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
    for_row_blocks(out, row_len, work_per_row, usize::MAX, |first, block| {
        for (i, row) in block.chunks_mut(row_len).enumerate() {
            f(first + i, row);
        }
    });
}

/// Like [`for_rows`], but hands each task a block of whole rows: `f(first_row, block)`, at
/// most `max_rows_per_block` rows each. For kernels that amortize per-task setup (scratch
/// buffers, GEMM calls) over many rows.
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
    let rows = out.len().div_ceil(row_len);
    let total = rows.saturating_mul(work_per_row.max(1));
    let threads = num_threads();
    let max_rows = max_rows_per_block.max(1);
    if total < MIN_PARALLEL_WORK || rows < 2 || threads < 2 {
        for (b, block) in out.chunks_mut(max_rows.saturating_mul(row_len)).enumerate() {
            f(b * max_rows, block);
        }
        return;
    }
    // A few tasks per thread balances uneven rows without much scheduling overhead.
    let tasks = (threads * 4).min(rows);
    let rows_per_task = rows.div_ceil(tasks).min(max_rows);
    for_chunks(out, rows_per_task * row_len, |t, block| {
        f(t * rows_per_task, block);
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
        let Ok(team) = crate::team::Team::new(3) else {
            return;
        };
        assert_eq!(num_threads(), 1);
        with_team(team.shared(), || {
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
    fn with_team_spreads_sections_and_matches_one_thread() {
        let Ok(team) = crate::team::Team::new(3) else {
            return;
        };
        let caller = std::thread::current().id();
        let data: Vec<u32> = (0..MIN_PARALLEL_WORK as u32 * 3 + 5).collect();
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        let spread = with_team(team.shared(), || {
            // Inside a task, kernels see one thread.
            tasks(4, |_| assert_eq!(num_threads(), 1));
            map(&data, |x| {
                if let Ok(mut s) = seen.lock() {
                    s.insert(std::thread::current().id());
                }
                x.wrapping_mul(7)
            })
        });
        // Outside `with_team` the team is forgotten, and sections run here.
        assert_eq!(num_threads(), 1);
        let here = map(&data, |x| x.wrapping_mul(7));
        assert_eq!(spread, here);
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(seen.len() > 1 || !seen.contains(&caller));
        // Chunks cover the slice once, the last one shorter.
        let mut out = vec![0usize; 1001];
        with_team(team.shared(), || {
            for_chunks(&mut out, 100, |c, chunk| {
                assert_eq!(chunk.len(), if c == 10 { 1 } else { 100 });
                chunk.iter_mut().for_each(|x| *x += c + 1);
            })
        });
        assert!(out.iter().enumerate().all(|(i, &x)| x == i / 100 + 1));
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
