//! Slices: `read_slice` (TensorFlow's `LookupSlice`) on whole and partitioned tensors, string
//! tensors assembled from slices, and a property test of the writer -> reader round trip over
//! arbitrary dtypes, shapes, names and slice sets.

mod common;

use std::borrow::Cow;

use ckpt_bundle::{
    parse_shape_and_slice, BundleReader, BundleWriter, DType, Error, Extent, Tensor, TensorData,
    TensorSlice,
};
use common::TestResult;
use proptest::prelude::*;

/// Row-major strides of `shape`.
fn strides(shape: &[u64]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// The plain reference: the flat indices of the box `ranges` of a tensor of `shape`, in
/// row-major order of the box.
fn box_indices(shape: &[u64], ranges: &[(u64, u64)]) -> Vec<usize> {
    let st = strides(shape);
    let count: u64 = ranges.iter().map(|r| r.1).product();
    (0..count)
        .map(|flat| {
            let mut rem = flat;
            let mut index = 0u64;
            for d in (0..shape.len()).rev() {
                let len = ranges[d].1;
                index += (ranges[d].0 + rem % len) * st[d];
                rem /= len;
            }
            index as usize
        })
        .collect()
}

/// One element's bytes (or string) at each flat index of `indices`.
fn pick(t: &Tensor<'_>, indices: &[usize]) -> TensorData<'static> {
    match t.data() {
        TensorData::Bytes(b) => {
            let elem = t.dtype().element_size().unwrap_or(1);
            let mut out = Vec::with_capacity(indices.len() * elem);
            for &i in indices {
                out.extend_from_slice(&b[i * elem..(i + 1) * elem]);
            }
            TensorData::Bytes(Cow::Owned(out))
        }
        TensorData::Strings(s) => {
            TensorData::Strings(indices.iter().map(|&i| Cow::Owned(s[i].to_vec())).collect())
        }
    }
}

fn sub_tensor(t: &Tensor<'_>, ranges: &[(u64, u64)]) -> Result<Tensor<'static>, Error> {
    let shape: Vec<u64> = ranges.iter().map(|r| r.1).collect();
    match pick(t, &box_indices(t.shape(), ranges)) {
        TensorData::Bytes(b) => Tensor::from_bytes(t.dtype(), shape, b),
        TensorData::Strings(s) => Tensor::from_strings(t.dtype(), shape, s),
    }
}

#[test]
fn read_slice_of_whole_and_partitioned_tensors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("m");
    let full: Vec<i32> = (0..24).collect();
    let whole = Tensor::from_slice(vec![4, 6], &full)?;
    let mut w = BundleWriter::create(&prefix)?;
    w.add("whole", &whole)?;
    // The same values as a [4, 6] tensor in three pieces: rows 0-1, and rows 2-3 split
    // into columns 0-3 and 4-5.
    w.add_slice(
        "part",
        &[4, 6],
        &[(0, 2), (0, 6)],
        &sub_tensor(&whole, &[(0, 2), (0, 6)])?,
    )?;
    w.add_slice(
        "part",
        &[4, 6],
        &[(2, 2), (0, 4)],
        &sub_tensor(&whole, &[(2, 2), (0, 4)])?,
    )?;
    w.add_slice(
        "part",
        &[4, 6],
        &[(2, 2), (4, 2)],
        &sub_tensor(&whole, &[(2, 2), (4, 2)])?,
    )?;
    w.finish()?;
    let r = BundleReader::open(&prefix)?;
    for spec in [
        "4 6 1,2:3,3",
        "4 6 -:-",
        "4 6 3,1:-",
        "4 6 0,4:5,1",
        "4 6 1,3:2,3",
    ] {
        let s = parse_shape_and_slice(spec)?;
        let want = sub_tensor(&whole, &s.slice.ranges(&s.shape)?)?;
        for name in ["whole", "part"] {
            assert_eq!(r.read_slice(name, &s.slice)?, want, "{name} {spec}");
        }
    }
    // A whole unpartitioned tensor is borrowed from the map, as `read` does.
    let all = r.read_slice("whole", &TensorSlice::full(2))?;
    assert!(matches!(all.data(), TensorData::Bytes(Cow::Borrowed(_))));
    // Slices that do not fit are refused naming the tensor.
    let outside = TensorSlice::parse("3,2:-")?;
    let e = r
        .read_slice("part", &outside)
        .err()
        .ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::SliceSpec { spec, reason } if spec == "3,2:-" && reason.contains("\"part\"") && reason.contains("outside")),
        "{e}"
    );
    let e = r
        .read_slice("whole", &TensorSlice::full(3))
        .err()
        .ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::SliceSpec { reason, .. } if reason.contains("rank-3")),
        "{e}"
    );
    assert!(matches!(
        r.read_slice("nope", &outside),
        Err(Error::TensorNotFound { .. })
    ));
    Ok(())
}

#[test]
fn partitioned_string_tensors_assemble() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("s");
    let words: Vec<Cow<'_, [u8]>> = ["a", "bb", "", "dddd", "e", "ff"]
        .iter()
        .map(|s| Cow::Borrowed(s.as_bytes()))
        .collect();
    let full = Tensor::from_strings(DType::String, vec![3, 2], words)?;
    let mut w = BundleWriter::create(&prefix)?;
    w.add_slice(
        "vocab",
        &[3, 2],
        &[(0, 1), (0, 2)],
        &sub_tensor(&full, &[(0, 1), (0, 2)])?,
    )?;
    w.add_slice(
        "vocab",
        &[3, 2],
        &[(1, 2), (0, 2)],
        &sub_tensor(&full, &[(1, 2), (0, 2)])?,
    )?;
    w.finish()?;
    let r = BundleReader::open(&prefix)?;
    assert_eq!(r.read("vocab")?, full);
    let col = r.read_slice("vocab", &TensorSlice::parse("-:1,1")?)?;
    assert_eq!(col, sub_tensor(&full, &[(0, 3), (1, 1)])?);
    r.verify()?;
    Ok(())
}

#[test]
fn empty_slices_are_refused_by_the_writer() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut w = BundleWriter::create(dir.path().join("e"))?;
    let empty = Tensor::from_vec(vec![0, 2], Vec::<f32>::new())?;
    let e = w
        .add_slice("t", &[4, 2], &[(1, 0), (0, 2)], &empty)
        .err()
        .ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::InvalidTensor { tensor, reason } if tensor == "t" && reason.contains("positive")),
        "{e}"
    );
    Ok(())
}

/// A tensor to write: its name, the full tensor, and how it is split into slices (split
/// points along the first two axes; no split means it is stored whole).
#[derive(Clone, Debug)]
struct Case {
    name: String,
    tensor: Tensor<'static>,
    splits: Vec<Vec<u64>>,
}

const DTYPES: &[DType] = &[
    DType::Float16,
    DType::BFloat16,
    DType::Float32,
    DType::Float64,
    DType::Int8,
    DType::Int16,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::UInt16,
    DType::UInt32,
    DType::UInt64,
    DType::Bool,
    DType::Complex64,
    DType::Complex128,
    DType::QInt8,
    DType::QUInt8,
    DType::QInt32,
    DType::String,
];

// The strategy builds data of exactly the size the dtype and shape need, so the checked
// constructors cannot fail; a strategy has no way to return an error.
#[allow(clippy::expect_used)]
fn tensor_strategy() -> impl Strategy<Value = Tensor<'static>> {
    (
        proptest::sample::select(DTYPES),
        proptest::collection::vec(0u64..5, 0..4),
    )
        .prop_flat_map(|(dtype, shape)| {
            let count = shape.iter().product::<u64>() as usize;
            let raw = match dtype.element_size() {
                Some(size) => proptest::collection::vec(any::<u8>(), count * size)
                    .prop_map(|b| vec![b])
                    .boxed(),
                None => {
                    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), count)
                        .boxed()
                }
            };
            (Just(dtype), Just(shape), raw)
        })
        .prop_map(|(dtype, shape, mut raw)| {
            let t = match dtype.element_size() {
                Some(_) => {
                    let mut bytes = raw.pop().unwrap_or_default();
                    if dtype == DType::Bool {
                        bytes.iter_mut().for_each(|b| *b &= 1);
                    }
                    Tensor::from_bytes(dtype, shape, bytes)
                }
                None => {
                    Tensor::from_strings(dtype, shape, raw.into_iter().map(Cow::Owned).collect())
                }
            };
            t.expect("generated consistently")
        })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        "[a-zA-Z0-9_/.:\u{e9}\u{4e2d} -]{1,12}",
        tensor_strategy(),
        proptest::collection::vec(any::<u64>(), 0..4),
    )
        .prop_map(|(name, tensor, cuts)| {
            // Split points along axes 0 and 1 (positive lengths only).
            let mut splits = Vec::new();
            for (axis, &dim) in tensor.shape().iter().take(2).enumerate() {
                let mut points: Vec<u64> = cuts
                    .iter()
                    .skip(axis)
                    .step_by(2)
                    .filter(|_| dim > 1)
                    .map(|c| 1 + c % (dim - 1))
                    .collect();
                points.sort_unstable();
                points.dedup();
                splits.push(points);
            }
            Case {
                name,
                tensor,
                splits,
            }
        })
}

/// The boxes a case's tensor is written as: the grid of its split points.
fn pieces(case: &Case) -> Vec<TensorSlice> {
    let shape = case.tensor.shape();
    let mut slices = vec![Vec::new()];
    for (axis, &dim) in shape.iter().enumerate() {
        let points = case.splits.get(axis).cloned().unwrap_or_default();
        let extents: Vec<Extent> = if points.is_empty() {
            vec![Extent::Full]
        } else {
            let mut bounds = vec![0];
            bounds.extend(points);
            bounds.push(dim);
            bounds
                .windows(2)
                .map(|w| Extent::Range {
                    start: w[0],
                    length: w[1] - w[0],
                })
                .collect()
        };
        slices = slices
            .into_iter()
            .flat_map(|prefix| {
                extents.iter().map(move |e| {
                    let mut p = prefix.clone();
                    p.push(*e);
                    p
                })
            })
            .collect();
    }
    slices.into_iter().map(TensorSlice::new).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn writer_reader_round_trip(
        cases in proptest::collection::vec(case_strategy(), 1..6),
        probe in proptest::collection::vec((any::<u64>(), any::<u64>()), 4),
    ) {
        let mut cases = cases;
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        cases.dedup_by(|a, b| a.name == b.name);
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let prefix = dir.path().join("p");
        let fail = |e: Error| TestCaseError::fail(e.to_string());
        let mut w = BundleWriter::create(&prefix).map_err(fail)?;
        for case in &cases {
            for slice in pieces(case) {
                let ranges = slice.ranges(case.tensor.shape()).map_err(fail)?;
                w.add_tensor_slice(&case.name, case.tensor.shape(), &slice, &sub_tensor(&case.tensor, &ranges).map_err(fail)?)
                    .map_err(fail)?;
            }
        }
        w.finish().map_err(fail)?;

        let r = BundleReader::open(&prefix).map_err(fail)?;
        let listed: Vec<(&str, DType, &[u64])> = r
            .tensors()
            .iter()
            .map(|t| (t.name.as_str(), t.dtype, t.shape.as_slice()))
            .collect();
        let want: Vec<(&str, DType, &[u64])> = cases
            .iter()
            .map(|c| (c.name.as_str(), c.tensor.dtype(), c.tensor.shape()))
            .collect();
        prop_assert_eq!(listed, want);
        for case in &cases {
            prop_assert_eq!(&r.read(&case.name).map_err(fail)?, &case.tensor, "{}", case.name);
            // A sub-box chosen by the probe.
            let ranges: Vec<(u64, u64)> = case
                .tensor
                .shape()
                .iter()
                .zip(probe.iter().cycle())
                .map(|(&dim, &(a, b))| {
                    if dim == 0 {
                        (0, 0)
                    } else {
                        let start = a % dim;
                        (start, 1 + b % (dim - start))
                    }
                })
                .collect();
            let slice = TensorSlice::new(
                ranges
                    .iter()
                    .map(|&(start, length)| if length == 0 { Extent::Full } else { Extent::Range { start, length } })
                    .collect(),
            );
            prop_assert_eq!(
                r.read_slice(&case.name, &slice).map_err(fail)?,
                sub_tensor(&case.tensor, &ranges).map_err(fail)?,
                "{} {}", case.name, slice
            );
        }
        prop_assert_eq!(r.verify().map_err(fail)?.tensors, cases.len());
    }
}
