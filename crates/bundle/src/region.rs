//! Copying a box of elements between two row-major tensors: how partitioned tensors are
//! assembled from their stored slices and how [`BundleReader::read_slice`] cuts a part out of
//! them (TensorFlow's `BundleReader::GetSliceValue` with `CopyDataFromTensorSliceToTensorSlice`).
//!
//! [`BundleReader::read_slice`]: crate::BundleReader::read_slice

/// An axis-aligned box of `(start, length)` per dimension, in elements.
pub(crate) type Ranges = [(u64, u64)];

/// The part two boxes share, or `None` when they are disjoint or of different ranks.
pub(crate) fn intersect(a: &Ranges, b: &Ranges) -> Option<Vec<(u64, u64)>> {
    if a.len() != b.len() {
        return None;
    }
    a.iter()
        .zip(b)
        .map(|(&(sa, la), &(sb, lb))| {
            let start = sa.max(sb);
            let end = sa.saturating_add(la).min(sb.saturating_add(lb));
            (end > start).then(|| (start, end - start))
        })
        .collect()
}

/// Calls `run_fn(dst_offset, src_offset, length)` (in elements) for each contiguous run that
/// copies the box `region` (in absolute coordinates) from a source tensor covering the box
/// `src` to a destination tensor covering `dst`. Both tensors are row-major over their own
/// boxes' lengths. Runs are produced one at a time: no memory is spent on the list.
///
/// Errors (as a reason) when `region` is not inside both boxes or an offset overflows, before
/// any run is produced; otherwise the runs lie inside buffers of the boxes' element counts.
pub(crate) fn for_each_run(
    dst: &Ranges,
    src: &Ranges,
    region: &Ranges,
    mut run_fn: impl FnMut(usize, usize, usize) -> Result<(), String>,
) -> Result<(), String> {
    let rank = region.len();
    if dst.len() != rank || src.len() != rank {
        return Err(format!(
            "ranks differ: destination {}, source {}, region {rank}",
            dst.len(),
            src.len()
        ));
    }
    let to_usize = |v: u64| usize::try_from(v).map_err(|_| format!("{v} is too large"));
    let inside = |outer: &Ranges| {
        outer.iter().zip(region).all(|(&(os, ol), &(rs, rl))| {
            rs >= os
                && rs
                    .checked_add(rl)
                    .is_some_and(|re| re <= os.saturating_add(ol))
        })
    };
    if !inside(dst) || !inside(src) {
        return Err(format!(
            "region {} lies outside the destination {} or the source {}",
            show(region),
            show(dst),
            show(src)
        ));
    }
    if region.iter().any(|r| r.1 == 0) {
        return Ok(());
    }
    if rank == 0 {
        return run_fn(0, 0, 1);
    }
    let dst_len: Vec<usize> = dst
        .iter()
        .map(|r| to_usize(r.1))
        .collect::<Result<_, _>>()?;
    let src_len: Vec<usize> = src
        .iter()
        .map(|r| to_usize(r.1))
        .collect::<Result<_, _>>()?;
    let lens: Vec<usize> = region
        .iter()
        .map(|r| to_usize(r.1))
        .collect::<Result<_, _>>()?;
    // Offsets of the region's origin inside each box.
    let dst_at: Vec<usize> = region
        .iter()
        .zip(dst)
        .map(|(r, d)| to_usize(r.0 - d.0))
        .collect::<Result<_, _>>()?;
    let src_at: Vec<usize> = region
        .iter()
        .zip(src)
        .map(|(r, s)| to_usize(r.0 - s.0))
        .collect::<Result<_, _>>()?;
    let overflow = || "element offsets overflow".to_string();
    let strides = |len: &[usize]| -> Result<Vec<usize>, String> {
        let mut s = vec![1usize; rank];
        for d in (0..rank - 1).rev() {
            s[d] = s[d + 1].checked_mul(len[d + 1]).ok_or_else(overflow)?;
        }
        Ok(s)
    };
    let dst_stride = strides(&dst_len)?;
    let src_stride = strides(&src_len)?;
    // Trailing dimensions that the region covers completely in both tensors merge into one
    // contiguous run.
    let mut k = rank - 1;
    while k > 0 && lens[k] == dst_len[k] && lens[k] == src_len[k] {
        k -= 1;
    }
    let run = lens[k].checked_mul(dst_stride[k]).ok_or_else(overflow)?;
    let mut idx = vec![0usize; k];
    loop {
        let mut d_off = dst_at[k] * dst_stride[k];
        let mut s_off = src_at[k] * src_stride[k];
        for d in 0..k {
            d_off += (dst_at[d] + idx[d]) * dst_stride[d];
            s_off += (src_at[d] + idx[d]) * src_stride[d];
        }
        run_fn(d_off, s_off, run)?;
        // Advance the outer index, row-major.
        let mut d = k;
        loop {
            if d == 0 {
                return Ok(());
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < lens[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Copies the box `region` of `elem`-byte elements from `src` (covering the box `src_box`)
/// into `dst` (covering `dst_box`), both row-major.
///
/// Errors when the region is not inside both boxes or a buffer is shorter than its box.
pub(crate) fn copy_bytes(
    dst: &mut [u8],
    dst_box: &Ranges,
    src: &[u8],
    src_box: &Ranges,
    region: &Ranges,
    elem: usize,
) -> Result<(), String> {
    let (dst_len, src_len) = (dst.len(), src.len());
    for_each_run(dst_box, src_box, region, |d, s, n| {
        let span = |off: usize| {
            let start = off.checked_mul(elem)?;
            Some(start..start.checked_add(n.checked_mul(elem)?)?)
        };
        let (Some(to), Some(from)) = (
            span(d).and_then(|r| dst.get_mut(r)),
            span(s).and_then(|r| src.get(r)),
        ) else {
            return Err(format!(
                "a run of {n} elements at {d} <- {s} lies outside the buffers ({dst_len} <- {src_len} bytes)"
            ));
        };
        to.copy_from_slice(from);
        Ok(())
    })
}

/// [`copy_bytes`] for whole elements (strings).
pub(crate) fn copy_items<T: Clone>(
    dst: &mut [T],
    dst_box: &Ranges,
    src: &[T],
    src_box: &Ranges,
    region: &Ranges,
) -> Result<(), String> {
    let (dst_len, src_len) = (dst.len(), src.len());
    for_each_run(dst_box, src_box, region, |d, s, n| {
        let (Some(to), Some(from)) = (
            d.checked_add(n).and_then(|e| dst.get_mut(d..e)),
            s.checked_add(n).and_then(|e| src.get(s..e)),
        ) else {
            return Err(format!(
                "a run of {n} elements at {d} <- {s} lies outside the buffers ({dst_len} <- {src_len} elements)"
            ));
        };
        to.clone_from_slice(from);
        Ok(())
    })
}

/// `0,2:1,3` for a box.
pub(crate) fn show(ranges: &Ranges) -> String {
    let parts: Vec<String> = ranges.iter().map(|(s, l)| format!("{s},{l}")).collect();
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain reference: element by element over the region.
    fn reference(dst: &Ranges, src: &Ranges, region: &Ranges, d: &mut [u32], s: &[u32]) {
        let rank = region.len();
        let count: u64 = region.iter().map(|r| r.1).product();
        for flat in 0..count {
            let mut rem = flat;
            let mut coord = vec![0u64; rank];
            for i in (0..rank).rev() {
                coord[i] = region[i].0 + rem % region[i].1;
                rem /= region[i].1;
            }
            let offset = |b: &Ranges| {
                let mut o = 0u64;
                for i in 0..rank {
                    o = o * b[i].1 + (coord[i] - b[i].0);
                }
                o as usize
            };
            d[offset(dst)] = s[offset(src)];
        }
    }

    fn check(dst: &[(u64, u64)], src: &[(u64, u64)], region: &[(u64, u64)]) -> Result<(), String> {
        let n = |b: &[(u64, u64)]| b.iter().map(|r| r.1 as usize).product::<usize>();
        let s: Vec<u32> = (0..n(src) as u32).map(|v| v + 1).collect();
        let mut want = vec![0u32; n(dst)];
        reference(dst, src, region, &mut want, &s);
        let mut got = vec![0u32; n(dst)];
        copy_items(&mut got, dst, &s, src, region)?;
        assert_eq!(got, want, "{dst:?} <- {src:?} over {region:?}");
        let bytes: Vec<u8> = s.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut got_bytes = vec![0u8; n(dst) * 4];
        copy_bytes(&mut got_bytes, dst, &bytes, src, region, 4)?;
        let want_bytes: Vec<u8> = want.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(got_bytes, want_bytes);
        Ok(())
    }

    #[test]
    fn copies_match_the_reference_on_odd_shapes() -> Result<(), String> {
        // Pieces of a [3, 4] tensor: row blocks, a column split, a single element.
        let full = [(0, 3), (0, 4)];
        check(&full, &[(0, 2), (0, 4)], &[(0, 2), (0, 4)])?;
        check(&full, &[(2, 1), (1, 3)], &[(2, 1), (1, 3)])?;
        check(&full, &[(1, 2), (1, 2)], &[(2, 1), (2, 1)])?;
        // Cutting a slice out of a whole tensor, and out of a piece.
        check(&[(1, 2), (0, 4)], &full, &[(1, 2), (0, 4)])?;
        check(
            &[(1, 5), (2, 7), (3, 3)],
            &[(0, 7), (0, 17), (0, 7)],
            &[(1, 5), (2, 7), (3, 3)],
        )?;
        check(&[(0, 7), (0, 17)], &[(3, 4), (5, 12)], &[(3, 3), (6, 10)])?;
        // Rank 1, rank 0 and empty regions.
        check(&[(0, 257)], &[(100, 50)], &[(120, 30)])?;
        check(&[], &[], &[])?;
        check(&[(0, 3), (0, 0)], &[(0, 3), (0, 0)], &[(0, 3), (0, 0)])?;
        Ok(())
    }

    #[test]
    fn out_of_range_is_an_error() {
        let nothing = |_, _, _| Ok(());
        let outside = |r: Result<(), String>| r.is_err_and(|e| e.contains("lies outside"));
        assert!(outside(for_each_run(
            &[(0, 2)],
            &[(0, 4)],
            &[(1, 2)],
            nothing
        )));
        assert!(outside(for_each_run(
            &[(0, 4)],
            &[(2, 2)],
            &[(1, 2)],
            nothing
        )));
        assert!(outside(for_each_run(
            &[(0, 4)],
            &[(0, 4)],
            &[(u64::MAX, 2)],
            nothing
        )));
        assert_eq!(
            for_each_run(&[(0, 4)], &[(0, 4), (0, 1)], &[(0, 4)], nothing),
            Err("ranks differ: destination 1, source 2, region 1".to_string())
        );
        // Buffers shorter than their boxes.
        assert!(outside(copy_bytes(
            &mut [0u8; 4],
            &[(0, 2)],
            &[0u8; 8],
            &[(0, 2)],
            &[(0, 2)],
            4
        )));
        assert!(outside(copy_items(
            &mut [0u8; 2],
            &[(0, 2)],
            &[0u8; 1],
            &[(0, 2)],
            &[(0, 2)]
        )));
        assert!(copy_items(&mut [0u8; 2], &[(0, 2)], &[1u8; 2], &[(0, 2)], &[(0, 2)]).is_ok());
    }

    #[test]
    fn intersections() {
        assert_eq!(
            intersect(&[(0, 4), (2, 3)], &[(2, 4), (0, 4)]),
            Some(vec![(2, 2), (2, 2)])
        );
        assert_eq!(intersect(&[(0, 2)], &[(2, 2)]), None);
        assert_eq!(intersect(&[(0, 2)], &[(0, 2), (0, 1)]), None);
    }
}
