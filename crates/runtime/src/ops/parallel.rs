//! Splitting work over rayon: disjoint output chunks, and only above a size threshold, where
//! the work outweighs the cost of waking threads.

use rayon::prelude::*;

/// Work units (about one multiply-add each) below which a kernel runs on the calling thread.
pub(crate) const MIN_PARALLEL_WORK: usize = 1 << 16;

/// Elements per task for elementwise maps.
const MAP_CHUNK: usize = 1 << 14;

/// `out[i] = f(src[i])`, in parallel for large inputs.
pub(crate) fn map<T, U>(src: &[T], f: impl Fn(T) -> U + Sync + Send) -> Vec<U>
where
    T: Copy + Sync,
    U: Copy + Default + Send,
{
    if src.len() < MIN_PARALLEL_WORK {
        return src.iter().map(|&x| f(x)).collect();
    }
    let mut out = vec![U::default(); src.len()];
    out.par_chunks_mut(MAP_CHUNK)
        .zip(src.par_chunks(MAP_CHUNK))
        .for_each(|(o, s)| {
            for (o, &x) in o.iter_mut().zip(s) {
                *o = f(x);
            }
        });
    out
}

/// `data[i] = f(data[i])`, in parallel for large inputs.
pub(crate) fn map_in_place<T: Copy + Send>(data: &mut [T], f: impl Fn(T) -> T + Sync + Send) {
    if data.len() < MIN_PARALLEL_WORK {
        for x in data.iter_mut() {
            *x = f(*x);
        }
        return;
    }
    data.par_chunks_mut(MAP_CHUNK).for_each(|chunk| {
        for x in chunk.iter_mut() {
            *x = f(*x);
        }
    });
}

/// `f(chunk)` over disjoint chunks of `data` that cover it, in parallel for large inputs.
pub(crate) fn chunks_in_place<T: Send>(data: &mut [T], f: impl Fn(&mut [T]) + Sync + Send) {
    if data.len() < MIN_PARALLEL_WORK {
        f(data);
        return;
    }
    data.par_chunks_mut(MAP_CHUNK).for_each(f);
}

/// `out[i] = f(a[i], b[i])` for equal-length inputs, in parallel for large inputs.
pub(crate) fn zip_map<A, B, U>(a: &[A], b: &[B], f: impl Fn(A, B) -> U + Sync + Send) -> Vec<U>
where
    A: Copy + Sync,
    B: Copy + Sync,
    U: Copy + Default + Send,
{
    if a.len() < MIN_PARALLEL_WORK {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    let mut out = vec![U::default(); a.len()];
    out.par_chunks_mut(MAP_CHUNK)
        .zip(a.par_chunks(MAP_CHUNK).zip(b.par_chunks(MAP_CHUNK)))
        .for_each(|(o, (a, b))| {
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
    if dst.len() < MIN_PARALLEL_WORK {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = f(*d, s);
        }
        return;
    }
    dst.par_chunks_mut(MAP_CHUNK)
        .zip(src.par_chunks(MAP_CHUNK))
        .for_each(|(d, s)| {
            for (d, &s) in d.iter_mut().zip(s) {
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
    if row_len == 0 || out.is_empty() {
        return;
    }
    let rows = out.len() / row_len;
    let total = rows.saturating_mul(work_per_row.max(1));
    let threads = rayon::current_num_threads();
    if total < MIN_PARALLEL_WORK || rows < 2 || threads < 2 {
        for (i, row) in out.chunks_mut(row_len).enumerate() {
            f(i, row);
        }
        return;
    }
    // A few tasks per thread balances uneven rows without much scheduling overhead.
    let tasks = (threads * 4).min(rows);
    let rows_per_task = rows.div_ceil(tasks);
    out.par_chunks_mut(rows_per_task * row_len)
        .enumerate()
        .for_each(|(t, chunk)| {
            for (i, row) in chunk.chunks_mut(row_len).enumerate() {
                f(t * rows_per_task + i, row);
            }
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
    let threads = rayon::current_num_threads();
    let max_rows = max_rows_per_block.max(1);
    if total < MIN_PARALLEL_WORK || rows < 2 || threads < 2 {
        for (b, block) in out.chunks_mut(max_rows * row_len).enumerate() {
            f(b * max_rows, block);
        }
        return;
    }
    let tasks = (threads * 4).min(rows);
    let rows_per_task = rows.div_ceil(tasks).min(max_rows);
    out.par_chunks_mut(rows_per_task * row_len)
        .enumerate()
        .for_each(|(t, block)| {
            f(t * rows_per_task, block);
        });
}

#[cfg(test)]
mod tests {
    use super::*;

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
