//! numpy broadcasting for elementwise kernels of two and three inputs.
//!
//! Shapes are aligned on the right; a dimension of 1 stretches. Before iterating, adjacent
//! dimensions that broadcast the same way in every input are merged, so the common cases
//! (`[n,c] + [c]`, `[n,h,w,c] * [c]`) run as a loop over rows with a contiguous inner loop.

use super::parallel;
use super::{num_elements, op_bail, OpError};
use crate::value::TensorBuf;

/// The broadcast shape of `shapes`, or an error naming the incompatible pair.
pub(crate) fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Vec<usize>, OpError> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for shape in shapes {
        let offset = rank - shape.len();
        for (i, &d) in shape.iter().enumerate() {
            let o = &mut out[offset + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                let all: Vec<String> = shapes.iter().map(|s| super::fmt_shape(s)).collect();
                op_bail!(
                    "shapes {} are incompatible for broadcasting",
                    all.join(" and ")
                );
            }
        }
    }
    Ok(out)
}

/// The output shape collapsed to as few dimensions as possible, with each input's element
/// stride per collapsed dimension (0 where the input is broadcast).
#[derive(Debug, PartialEq)]
pub(crate) struct Layout<const K: usize> {
    pub dims: Vec<usize>,
    pub strides: Vec<[usize; K]>,
}

impl<const K: usize> Layout<K> {
    pub(crate) fn new(out: &[usize], inputs: [&[usize]; K]) -> Layout<K> {
        let rank = out.len();
        // Per-dimension "is this input full-size here" pattern, skipping size-1 output dims.
        let mut dims: Vec<usize> = Vec::with_capacity(rank);
        let mut full: Vec<[bool; K]> = Vec::with_capacity(rank);
        for (i, &d) in out.iter().enumerate() {
            if d == 1 {
                continue;
            }
            let mut pattern = [false; K];
            for (k, shape) in inputs.iter().enumerate() {
                let offset = rank - shape.len();
                pattern[k] = i >= offset && shape[i - offset] == d;
            }
            match (dims.last_mut(), full.last()) {
                (Some(last), Some(prev)) if *prev == pattern => *last *= d,
                _ => {
                    dims.push(d);
                    full.push(pattern);
                }
            }
        }
        // Strides from the innermost dimension outwards.
        let mut strides = vec![[0usize; K]; dims.len()];
        let mut acc = [1usize; K];
        for i in (0..dims.len()).rev() {
            for k in 0..K {
                if full[i][k] {
                    strides[i][k] = acc[k];
                    acc[k] *= dims[i];
                }
            }
        }
        Layout { dims, strides }
    }

    /// Rows of the innermost dimension: (number of rows, row length, inner strides).
    fn rows(&self) -> (usize, usize, [usize; K]) {
        match (self.dims.last(), self.strides.last()) {
            (Some(&inner), Some(&s)) => {
                (self.dims[..self.dims.len() - 1].iter().product(), inner, s)
            }
            _ => (1, 1, [0; K]),
        }
    }

    /// Each input's offset at the start of output row `row`.
    fn row_offsets(&self, mut row: usize) -> [usize; K] {
        let mut off = [0usize; K];
        let outer = self.dims.len().saturating_sub(1);
        for i in (0..outer).rev() {
            let d = self.dims[i];
            let idx = row % d;
            row /= d;
            for (o, s) in off.iter_mut().zip(&self.strides[i]) {
                *o += idx * s;
            }
        }
        off
    }
}

/// `f(a, b)` elementwise with broadcasting.
pub(crate) fn zip2<A, B, O>(
    a: &TensorBuf<A>,
    b: &TensorBuf<B>,
    f: impl Fn(A, B) -> O + Sync + Send,
) -> Result<TensorBuf<O>, OpError>
where
    A: Copy + Sync,
    B: Copy + Sync,
    O: Copy + Default + Send,
{
    let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
    let n = num_elements(&shape)?;
    let (ad, bd) = (a.data(), b.data());
    let out = if a.shape() == b.shape() {
        parallel::zip_map(ad, bd, f)
    } else if n == 0 {
        Vec::new()
    } else if bd.len() == 1 {
        let y = bd[0];
        parallel::map(ad, |x| f(x, y))
    } else if ad.len() == 1 {
        let x = ad[0];
        parallel::map(bd, |y| f(x, y))
    } else {
        let layout = Layout::new(&shape, [a.shape(), b.shape()]);
        let mut out = vec![O::default(); n];
        fill_rows2(&layout, &mut out, |o, [oa, ob], [sa, sb]| match (sa, sb) {
            (1, 1) => o
                .iter_mut()
                .zip(&ad[oa..])
                .zip(&bd[ob..])
                .for_each(|((o, &x), &y)| *o = f(x, y)),
            (1, _) => {
                let y = bd[ob];
                o.iter_mut().zip(&ad[oa..]).for_each(|(o, &x)| *o = f(x, y))
            }
            (_, 1) => {
                let x = ad[oa];
                o.iter_mut().zip(&bd[ob..]).for_each(|(o, &y)| *o = f(x, y))
            }
            _ => {
                let v = f(ad[oa], bd[ob]);
                o.iter_mut().for_each(|o| *o = v)
            }
        });
        out
    };
    Ok(TensorBuf::from_parts(shape, out))
}

/// `f(a, b)` elementwise for same-typed inputs, writing into `a`'s or `b`'s buffer when that
/// input has the output's shape and is not shared.
pub(crate) fn zip2_reuse<T>(
    mut a: TensorBuf<T>,
    mut b: TensorBuf<T>,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Result<TensorBuf<T>, OpError>
where
    T: Copy + Default + Send + Sync,
{
    let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
    if a.shape() == shape.as_slice() && a.is_unique() {
        let layout = Layout::new(&shape, [a.shape(), b.shape()]);
        let bd = b.data();
        if let Some(ad) = a.unique_mut() {
            in_place(&layout, ad, bd, &f);
            return Ok(a);
        }
    }
    if b.shape() == shape.as_slice() && b.is_unique() {
        let layout = Layout::new(&shape, [b.shape(), a.shape()]);
        let ad = a.data();
        if let Some(bd) = b.unique_mut() {
            in_place(&layout, bd, ad, |y, x| f(x, y));
            return Ok(b);
        }
    }
    zip2(&a, &b, f)
}

/// `dst[i] = f(dst[i], src[broadcast i])` where `dst` has the output's shape.
fn in_place<T: Copy + Send + Sync>(
    layout: &Layout<2>,
    dst: &mut [T],
    src: &[T],
    f: impl Fn(T, T) -> T + Sync + Send,
) {
    if src.len() == dst.len() {
        parallel::map_in_place_zip(dst, src, f);
        return;
    }
    if src.len() == 1 {
        let y = src[0];
        parallel::map_in_place(dst, |x| f(x, y));
        return;
    }
    fill_rows2(layout, dst, |o, [_, os], [_, ss]| {
        if ss == 1 {
            o.iter_mut()
                .zip(&src[os..])
                .for_each(|(o, &y)| *o = f(*o, y));
        } else {
            let y = src[os];
            o.iter_mut().for_each(|o| *o = f(*o, y));
        }
    });
}

/// Runs `row(out_row, input_offsets, inner_strides)` over every innermost row of the output.
fn fill_rows2<O: Send>(
    layout: &Layout<2>,
    out: &mut [O],
    row: impl Fn(&mut [O], [usize; 2], [usize; 2]) + Sync + Send,
) {
    let (_, inner, strides) = layout.rows();
    parallel::for_rows(out, inner, inner, |r, o| {
        row(o, layout.row_offsets(r), strides)
    });
}

/// `f(a, b, c)` elementwise with broadcasting (for `Select`/`SelectV2`).
pub(crate) fn zip3<A, B, C, O>(
    a: &TensorBuf<A>,
    b: &TensorBuf<B>,
    c: &TensorBuf<C>,
    f: impl Fn(A, B, C) -> O + Sync + Send,
) -> Result<TensorBuf<O>, OpError>
where
    A: Copy + Sync,
    B: Copy + Sync,
    C: Copy + Sync,
    O: Copy + Default + Send,
{
    let shape = broadcast_shapes(&[a.shape(), b.shape(), c.shape()])?;
    let n = num_elements(&shape)?;
    let mut out = vec![O::default(); n];
    if n > 0 {
        let layout = Layout::new(&shape, [a.shape(), b.shape(), c.shape()]);
        let (_, inner, [sa, sb, sc]) = layout.rows();
        let (ad, bd, cd) = (a.data(), b.data(), c.data());
        parallel::for_rows(&mut out, inner, inner, |r, o| {
            let [oa, ob, oc] = layout.row_offsets(r);
            let len = o.len();
            match (sa, sb, sc) {
                // Contiguous rows, or one value of `a` per row (a row-wise `Select`, as
                // dynamic_rnn masks finished sequences): slices, so the loop vectorizes.
                (0 | 1, 1, 1) => {
                    let (bs, cs) = (&bd[ob..ob + len], &cd[oc..oc + len]);
                    if sa == 0 {
                        let x = ad[oa];
                        for ((o, &y), &z) in o.iter_mut().zip(bs).zip(cs) {
                            *o = f(x, y, z);
                        }
                    } else {
                        let xs = &ad[oa..oa + len];
                        for (((o, &x), &y), &z) in o.iter_mut().zip(xs).zip(bs).zip(cs) {
                            *o = f(x, y, z);
                        }
                    }
                }
                _ => {
                    for (j, o) in o.iter_mut().enumerate() {
                        *o = f(ad[oa + j * sa], bd[ob + j * sb], cd[oc + j * sc]);
                    }
                }
            }
        });
    }
    Ok(TensorBuf::from_parts(shape, out))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reference broadcasting: index every input from the full output index.
    pub(crate) fn reference_index(out_shape: &[usize], in_shape: &[usize], flat: usize) -> usize {
        let rank = out_shape.len();
        let mut idx = vec![0usize; rank];
        let mut rem = flat;
        for i in (0..rank).rev() {
            idx[i] = rem % out_shape[i].max(1);
            rem /= out_shape[i].max(1);
        }
        let offset = rank - in_shape.len();
        let mut pos = 0;
        for (i, &d) in in_shape.iter().enumerate() {
            let j = if d == 1 { 0 } else { idx[offset + i] };
            pos = pos * d + j;
        }
        pos
    }

    fn iota(shape: &[usize]) -> TensorBuf<f32> {
        let n = shape.iter().product();
        TensorBuf::from_parts(shape.to_vec(), (0..n).map(|i| i as f32).collect())
    }

    const CASES: &[(&[usize], &[usize])] = &[
        (&[], &[]),
        (&[3], &[]),
        (&[], &[0]),
        (&[0, 3], &[3]),
        (&[2, 3], &[3]),
        (&[2, 3], &[2, 1]),
        (&[7, 1, 5], &[1, 4, 1]),
        (&[17, 257], &[257]),
        (&[17, 257], &[17, 1]),
        (&[2, 3, 4, 5], &[3, 1, 5]),
        (&[1], &[6, 1, 1]),
        (&[300, 300], &[300, 300]),
        (&[30, 1, 40], &[1, 20, 1]),
    ];

    #[test]
    fn zip2_matches_reference() -> Result<(), OpError> {
        for &(sa, sb) in CASES {
            for (sa, sb) in [(sa, sb), (sb, sa)] {
                let (a, b) = (iota(sa), iota(sb));
                let out = zip2(&a, &b, |x, y| x * 1000.0 + y)?;
                let shape = broadcast_shapes(&[sa, sb])?;
                assert_eq!(out.shape(), shape.as_slice());
                for (i, &v) in out.data().iter().enumerate() {
                    let x = a.data()[reference_index(&shape, sa, i)];
                    let y = b.data()[reference_index(&shape, sb, i)];
                    assert_eq!(v, x * 1000.0 + y, "{sa:?} {sb:?} at {i}");
                }
                let reused = zip2_reuse(a.clone(), b.clone(), |x, y| x * 1000.0 + y)?;
                assert_eq!(reused, out);
                let reused = zip2_reuse(iota(sa), iota(sb), |x, y| x * 1000.0 + y)?;
                assert_eq!(reused, out);
            }
        }
        Ok(())
    }

    #[test]
    fn zip3_matches_reference() -> Result<(), OpError> {
        // Strided rows, one `a` value per row (the contiguous path with a broadcast `a`), and
        // all three contiguous.
        let cases: [(&[usize], &[usize], &[usize]); 3] = [
            (&[4, 1, 3], &[5, 1], &[1, 3]),
            (&[7, 1], &[7, 33], &[7, 33]),
            (&[2, 3, 5], &[2, 3, 5], &[2, 3, 5]),
        ];
        for (sa, sb, sc) in cases {
            let (a, b, c) = (iota(sa), iota(sb), iota(sc));
            let out = zip3(&a, &b, &c, |x, y, z| x * 10000.0 + y * 100.0 + z)?;
            let shape = broadcast_shapes(&[sa, sb, sc])?;
            assert_eq!(out.shape(), shape.as_slice());
            for (i, &v) in out.data().iter().enumerate() {
                let x = a.data()[reference_index(&shape, sa, i)];
                let y = b.data()[reference_index(&shape, sb, i)];
                let z = c.data()[reference_index(&shape, sc, i)];
                assert_eq!(
                    v,
                    x * 10000.0 + y * 100.0 + z,
                    "{sa:?} {sb:?} {sc:?} at {i}"
                );
            }
        }
        assert_eq!(
            broadcast_shapes(&[&[4, 1, 3], &[5, 1], &[1, 3]])?,
            vec![4, 5, 3]
        );
        Ok(())
    }

    #[test]
    fn incompatible_shapes_are_errors() {
        assert_eq!(
            broadcast_shapes(&[&[2, 3], &[4]]).err(),
            Some(OpError(
                "shapes [2,3] and [4] are incompatible for broadcasting".into()
            ))
        );
        assert_eq!(
            broadcast_shapes(&[&[0], &[2]]).err(),
            Some(OpError(
                "shapes [0] and [2] are incompatible for broadcasting".into()
            ))
        );
    }

    #[test]
    fn layout_merges_dimensions() {
        let l = Layout::new(&[2, 3, 4, 5], [&[2, 3, 4, 5][..], &[5][..]]);
        assert_eq!(l.dims, vec![24, 5]);
        assert_eq!(l.strides, vec![[5, 0], [1, 1]]);
    }

    proptest::proptest! {
        #[test]
        fn zip2_matches_reference_on_random_shapes(
            out in proptest::collection::vec(0usize..5, 0..5),
            mask_a in proptest::collection::vec(proptest::bool::ANY, 5),
            mask_b in proptest::collection::vec(proptest::bool::ANY, 5),
            drop_a in 0usize..3,
            drop_b in 0usize..3,
        ) {
            // Derive two broadcast-compatible shapes from `out`: some dims become 1, some
            // leading dims are dropped.
            let derive = |mask: &[bool], drop: usize| -> Vec<usize> {
                out.iter().zip(mask).skip(drop.min(out.len())).map(|(&d, &m)| if m { 1 } else { d }).collect()
            };
            let (sa, sb) = (derive(&mask_a, drop_a), derive(&mask_b, drop_b));
            let (a, b) = (iota(&sa), iota(&sb));
            let got = zip2(&a, &b, |x, y| x * 1000.0 + y).map_err(|e| proptest::test_runner::TestCaseError::fail(e.0))?;
            let shape = broadcast_shapes(&[&sa, &sb]).map_err(|e| proptest::test_runner::TestCaseError::fail(e.0))?;
            proptest::prop_assert_eq!(got.shape(), shape.as_slice());
            for (i, &v) in got.data().iter().enumerate() {
                let x = a.data()[reference_index(&shape, &sa, i)];
                let y = b.data()[reference_index(&shape, &sb, i)];
                proptest::prop_assert_eq!(v, x * 1000.0 + y);
            }
        }
    }
}
