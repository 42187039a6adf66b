//! V1 checkpoints built by hand: the docs/format.md §3.11 example, layouts TensorFlow can
//! write, and hostile files (garbage protos, overlapping or missing slices, value counts that
//! disagree with the shape, overflowing shapes, unknown dtypes). Every bad file gives the
//! error variant that names the file and the tensor; none panics or allocates by a count it
//! was given.

use std::path::Path;

use ckpt_bundle::{Checkpoint, DType, Error, Format, TensorSlice, V1Reader};
use ckpt_proto::tensor_shape_proto::Dim;
use ckpt_proto::{
    DataType, Message, SavedSlice, SavedSliceMeta, SavedTensorSliceMeta, SavedTensorSlices,
    TensorProto, TensorShapeProto, VersionDef,
};
use ckpt_table::{TableBuilder, TableOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn shape(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

fn slice(spec: &str) -> BoxResult<TensorSlice> {
    Ok(TensorSlice::parse(spec)?)
}

/// A `SavedSliceMeta` as TensorFlow's writer fills it.
fn meta(name: &str, dtype: DataType, dims: &[i64], slices: &[&TensorSlice]) -> SavedSliceMeta {
    SavedSliceMeta {
        name: name.to_string(),
        shape: Some(shape(dims)),
        r#type: dtype as i32,
        slice: slices.iter().map(|s| s.to_proto()).collect(),
    }
}

/// The entry under the empty key.
fn meta_entry(tensors: Vec<SavedSliceMeta>) -> (Vec<u8>, Vec<u8>) {
    let sts = SavedTensorSlices {
        meta: Some(SavedTensorSliceMeta {
            tensor: tensors,
            versions: Some(VersionDef {
                producer: 1,
                ..Default::default()
            }),
        }),
        data: None,
    };
    (Vec::new(), sts.encode_to_vec())
}

/// The entry of one slice's values.
fn data_entry(name: &str, s: &TensorSlice, data: TensorProto) -> (Vec<u8>, Vec<u8>) {
    let sts = SavedTensorSlices {
        meta: None,
        data: Some(SavedSlice {
            name: name.to_string(),
            slice: Some(s.to_proto()),
            data: Some(data),
        }),
    };
    (s.index_key(name), sts.encode_to_vec())
}

fn floats(v: &[f32]) -> TensorProto {
    TensorProto {
        float_val: v.to_vec(),
        ..Default::default()
    }
}

/// A table of the entries, in key order.
fn table(mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> BoxResult<Vec<u8>> {
    entries.sort();
    let mut b = TableBuilder::new(Vec::new(), TableOptions::default());
    for (k, v) in &entries {
        b.add(k, v)?;
    }
    Ok(b.finish()?)
}

fn open(files: Vec<Vec<(Vec<u8>, Vec<u8>)>>) -> BoxResult<Result<V1Reader, Error>> {
    let tables = files
        .into_iter()
        .map(table)
        .collect::<BoxResult<Vec<_>>>()?;
    Ok(V1Reader::from_bytes(tables))
}

fn open_err(files: Vec<Vec<(Vec<u8>, Vec<u8>)>>) -> BoxResult<Error> {
    match open(files)? {
        Ok(_) => Err("opened a hostile V1 checkpoint".into()),
        Err(e) => Ok(e),
    }
}

/// A float [2,3] tensor `w` stored whole, with `values` as its float_val.
fn whole_w(values: &[f32]) -> BoxResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let full = slice("-:-")?;
    Ok(vec![
        meta_entry(vec![meta("w", DataType::DtFloat, &[2, 3], &[&full])]),
        data_entry("w", &full, floats(values)),
    ])
}

fn unhex(s: &str) -> BoxResult<Vec<u8>> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| Ok(u8::from_str_radix(s.get(i..i + 2).ok_or("odd hex")?, 16)?))
        .collect()
}

#[test]
fn reads_the_format_md_example() -> TestResult {
    // docs/format.md §3.11, "Worked example": `w = [1, -2]` and `step = 7`, 190 bytes.
    let file = unhex(
        "0000250a230a0c0a04737465701200180922000a0f0a0177120412020802180122020a001202080100080f007374
         6570000100120d0a047374657012001a035201070107157700010101807f12130a017712020a001a0a2a08000080
         3f000000c0000000000100000000f4fd262e000000000100000000c0f2a1b0000102010069000000000100000000
         6b6e640e6e087b0e00000000000000000000000000000000000000000000000000000000000000000000000057fb
         808b247547db",
    )?;
    assert_eq!(file.len(), 190);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.ckpt");
    std::fs::write(&path, &file)?;
    let ckpt = Checkpoint::open(&path)?;
    assert_eq!(ckpt.format(), Format::V1);
    assert_eq!(ckpt.prefix(), path);
    assert_eq!(ckpt.meta_path(), dir.path().join("model.ckpt.meta"));
    let names: Vec<&str> = ckpt.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["step", "w"]);
    assert_eq!(&*ckpt.read("w")?.as_slice::<f32>()?, &[1.0, -2.0]);
    let step = ckpt.read("step")?;
    assert_eq!((step.dtype(), step.shape()), (DType::Int64, &[][..]));
    assert_eq!(&*step.as_slice::<i64>()?, &[7]);
    assert_eq!(ckpt.verify()?.bytes, 190);
    // The bundle reader refuses it, saying what it is.
    let e = ckpt_bundle::BundleReader::open(&path)
        .err()
        .ok_or("opened as V2")?;
    assert!(
        matches!(&e, Error::CheckpointNotFound { reason, .. } if reason.contains("is a V1 checkpoint")),
        "{e}"
    );
    Ok(())
}

#[test]
fn slices_assemble_across_files_and_keep_their_stored_form() -> TestResult {
    // [4,3] int32 in three slices over two files; the first with an explicit extent `0,4`
    // for its rows, which changes its key.
    let a = slice("0,4:0,1")?;
    let b = slice("0,2:1,2")?;
    let c = slice("2,2:1,2")?;
    let ints = |v: &[i32]| TensorProto {
        int_val: v.to_vec(),
        ..Default::default()
    };
    let file0 = vec![
        meta_entry(vec![meta("g", DataType::DtInt32, &[4, 3], &[&a, &b])]),
        data_entry("g", &a, ints(&[0, 3, 6, 9])),
        data_entry("g", &b, ints(&[1, 2, 4, 5])),
    ];
    let file1 = vec![
        meta_entry(vec![meta("g", DataType::DtInt32, &[4, 3], &[&c])]),
        data_entry("g", &c, ints(&[7, 8, 10, 11])),
    ];
    let r = open(vec![file0, file1])?.map_err(|e| e.to_string())?;
    assert_eq!(r.tensors().len(), 1);
    assert_eq!(
        &*r.read("g")?.as_slice::<i32>()?,
        &(0..12).collect::<Vec<_>>()[..]
    );
    // A box across all three slices.
    let part = r.read_slice("g", &slice("1,2:0,3")?)?;
    assert_eq!(part.shape(), [2, 3]);
    assert_eq!(&*part.as_slice::<i32>()?, &[3, 4, 5, 6, 7, 8]);
    // A request that is exactly one stored slice.
    assert_eq!(&*r.read_slice("g", &b)?.as_slice::<i32>()?, &[1, 2, 4, 5]);
    assert_eq!(r.verify()?.tensors, 1);
    Ok(())
}

#[test]
fn garbage_saved_tensor_slices() -> TestResult {
    // In the metadata entry.
    let e = open_err(vec![vec![(Vec::new(), vec![0xff, 0xff, 0xff])]])?;
    assert!(
        matches!(&e, Error::V1Meta { reason, .. } if reason.contains("does not hold a SavedTensorSlices")),
        "{e}"
    );
    // A metadata entry without a meta.
    let e = open_err(vec![vec![(Vec::new(), Vec::new())]])?;
    assert!(
        matches!(&e, Error::V1Meta { reason, .. } if reason == "the empty key holds no SavedTensorSliceMeta"),
        "{e}"
    );
    // No metadata entry at all: the first key is a tensor's.
    let mut entries = whole_w(&[0.0; 6])?;
    entries.remove(0);
    let e = open_err(vec![entries])?;
    assert!(
        matches!(&e, Error::V1Meta { reason, .. } if reason.contains("instead of the empty key")),
        "{e}"
    );
    // In a data entry: the checkpoint opens; reading and verifying name the tensor.
    let mut entries = whole_w(&[0.0; 6])?;
    entries[1].1 = vec![0x12, 0x7f, 0x01];
    let r = open(vec![entries])?.map_err(|e| e.to_string())?;
    for e in [r.read("w").err(), r.verify().err()] {
        let e = e.ok_or("garbage data read")?;
        assert!(
            matches!(&e, Error::V1Tensor { tensor, reason, .. }
                if tensor == "w[-:-]" && reason.contains("is not a SavedTensorSlices")),
            "{e}"
        );
    }
    Ok(())
}

#[test]
fn overlapping_slices_are_refused() -> TestResult {
    let a = slice("0,2:-")?;
    let b = slice("1,2:-")?;
    let one = vec![meta_entry(vec![meta(
        "v",
        DataType::DtFloat,
        &[4, 2],
        &[&a, &b],
    )])];
    let e = open_err(vec![one])?;
    assert!(
        matches!(&e, Error::V1Tensor { tensor, reason, .. }
            if tensor == "v" && reason == "slices 0,2:0,2 and 1,2:0,2 overlap"),
        "{e}"
    );
    // Across files, and a scalar stored twice.
    let f0 = vec![meta_entry(vec![
        meta("v", DataType::DtFloat, &[4, 2], &[&a]),
        meta("s", DataType::DtInt64, &[], &[&TensorSlice::full(0)]),
    ])];
    let f1 = vec![meta_entry(vec![
        meta("v", DataType::DtFloat, &[4, 2], &[&b]),
        meta("s", DataType::DtInt64, &[], &[&TensorSlice::full(0)]),
    ])];
    let e = open_err(vec![f0, f1])?;
    assert!(
        matches!(&e, Error::V1Tensor { tensor, reason, .. }
            if tensor == "s" && reason.contains("overlapping slices")),
        "{e}"
    );
    Ok(())
}

#[test]
fn a_hole_in_the_slices_fails_reads_of_it_and_verify() -> TestResult {
    let a = slice("0,2:-")?;
    let entries = vec![
        meta_entry(vec![meta("v", DataType::DtFloat, &[4, 2], &[&a])]),
        data_entry("v", &a, floats(&[1.0, 2.0, 3.0, 4.0])),
    ];
    let r = open(vec![entries])?.map_err(|e| e.to_string())?;
    assert_eq!(r.info("v")?.shape, [4, 2]);
    let e = r.read("v").err().ok_or("read a tensor with a hole")?;
    assert!(
        matches!(&e, Error::Slices { tensor, reason, .. }
            if tensor == "v" && reason == "the stored slices (0,2:-) hold 4 of the 8 elements of the region 0,4:0,2"),
        "{e}"
    );
    assert!(matches!(r.verify(), Err(Error::Slices { .. })));
    // The part that is there reads.
    let top = r.read_slice("v", &slice("0,2:1,1")?)?;
    assert_eq!(&*top.as_slice::<f32>()?, &[2.0, 4.0]);
    Ok(())
}

#[test]
fn value_count_disagrees_with_the_shape() -> TestResult {
    for (values, found) in [(&[1.0f32; 5][..], 5), (&[1.0; 7][..], 7), (&[][..], 0)] {
        let r = open(vec![whole_w(values)?])?.map_err(|e| e.to_string())?;
        for e in [r.read("w").err(), r.verify().err()] {
            let e = e.ok_or("read a miscounted tensor")?;
            assert!(
                matches!(&e, Error::V1Tensor { path, tensor, reason }
                    if *path == Path::new("<memory>") && tensor == "w[-:-]"
                        && *reason == format!("float_val holds {found} values, but the slice has 6 elements")),
                "{e}"
            );
        }
    }
    // tensor_content of the wrong length.
    let full = slice("-:-")?;
    let entries = vec![
        meta_entry(vec![meta("w", DataType::DtFloat, &[2, 3], &[&full])]),
        data_entry(
            "w",
            &full,
            TensorProto {
                tensor_content: vec![0; 23],
                ..Default::default()
            },
        ),
    ];
    let r = open(vec![entries])?.map_err(|e| e.to_string())?;
    assert!(matches!(
        r.read("w"),
        Err(Error::V1Tensor { reason, .. }) if reason == "tensor_content holds 23 bytes, but 6 float32 elements take 24"
    ));
    // An int8 value that does not fit.
    let entries = vec![
        meta_entry(vec![meta("i", DataType::DtInt8, &[2], &[&slice("-")?])]),
        data_entry(
            "i",
            &slice("-")?,
            TensorProto {
                int_val: vec![1, 300],
                ..Default::default()
            },
        ),
    ];
    let r = open(vec![entries])?.map_err(|e| e.to_string())?;
    assert!(matches!(
        r.read("i"),
        Err(Error::V1Tensor { reason, .. }) if reason == "value 300 of element 1 does not fit int8"
    ));
    Ok(())
}

#[test]
fn element_count_overflows() -> TestResult {
    let full = slice("-:-")?;
    for dims in [[1i64 << 32, 1 << 32], [1 << 62, 4]] {
        let e = open_err(vec![vec![meta_entry(vec![meta(
            "huge",
            DataType::DtFloat,
            &dims,
            &[&full],
        )])]])?;
        assert!(
            matches!(&e, Error::V1Tensor { tensor, reason, .. }
                if tensor == "huge" && reason.contains("overflows")),
            "{dims:?}: {e}"
        );
    }
    // A count that fits but that the few values stored cannot fill: refused before anything
    // of that size is allocated.
    let entries = vec![
        meta_entry(vec![meta(
            "big",
            DataType::DtFloat,
            &[1 << 40],
            &[&slice("-")?],
        )]),
        data_entry("big", &slice("-")?, floats(&[1.0, 2.0])),
    ];
    let r = open(vec![entries])?.map_err(|e| e.to_string())?;
    assert!(matches!(
        r.read("big"),
        Err(Error::V1Tensor { reason, .. }) if reason == format!("float_val holds 2 values, but the slice has {} elements", 1u64 << 40)
    ));
    // Negative dimensions and slices outside the shape.
    let e = open_err(vec![vec![meta_entry(vec![meta(
        "neg",
        DataType::DtFloat,
        &[-1, 2],
        &[&full],
    )])]])?;
    assert!(
        matches!(&e, Error::V1Tensor { reason, .. } if reason == "dimension 0 has size -1"),
        "{e}"
    );
    let e = open_err(vec![vec![meta_entry(vec![meta(
        "out",
        DataType::DtFloat,
        &[4],
        &[&slice("2,3")?],
    )])]])?;
    assert!(
        matches!(&e, Error::V1Tensor { reason, .. } if reason == "slice 0 (2,3) does not fit the shape [4]"),
        "{e}"
    );
    Ok(())
}

#[test]
fn unknown_and_unstorable_dtypes() -> TestResult {
    let full = slice("-")?;
    let mut m = meta("odd", DataType::DtFloat, &[2], &[&full]);
    m.r#type = 99;
    let e = open_err(vec![vec![meta_entry(vec![m])]])?;
    assert!(
        matches!(&e, Error::V1Tensor { tensor, reason, .. } if tensor == "odd" && reason == "unknown dtype 99"),
        "{e}"
    );
    for (dtype, reason) in [
        (
            DataType::DtVariant,
            "dtype variant cannot be stored in a V1 checkpoint",
        ),
        (DataType::DtResource, "dtype DtResource (20) cannot be read"),
    ] {
        let e = open_err(vec![vec![meta_entry(vec![meta(
            "odd",
            dtype,
            &[2],
            &[&full],
        )])]])?;
        assert!(
            matches!(&e, Error::V1Tensor { reason: r, .. } if r == reason),
            "{e}"
        );
    }
    Ok(())
}

#[test]
fn files_disagreeing_and_entries_that_do_not_match_their_key() -> TestResult {
    let a = slice("0,1:-")?;
    let b = slice("1,1:-")?;
    let f0 = vec![meta_entry(vec![meta(
        "v",
        DataType::DtFloat,
        &[2, 2],
        &[&a],
    )])];
    let f1 = vec![meta_entry(vec![meta(
        "v",
        DataType::DtDouble,
        &[2, 2],
        &[&b],
    )])];
    let e = open_err(vec![f0, f1])?;
    assert!(
        matches!(&e, Error::V1Tensor { path, reason, .. }
            if *path == Path::new("<memory>-00001-of-00002")
                && reason == "this file says float64 [2, 2], file 0 of the checkpoint says float32 [2, 2]"),
        "{e}"
    );
    // An entry holding another tensor's data under this tensor's key.
    let full = slice("-:-")?;
    let mut entries = whole_w(&[0.0; 6])?;
    let (_, other) = data_entry("x", &full, floats(&[0.0; 6]));
    entries[1].1 = other;
    let r = open(vec![entries])?.map_err(|e| e.to_string())?;
    assert!(matches!(
        r.read("w"),
        Err(Error::V1Tensor { reason, .. }) if reason == "entry is for tensor \"x\""
    ));
    // A slice listed in the metadata without an entry; an entry the metadata does not list.
    let mut entries = whole_w(&[0.0; 6])?;
    entries.pop();
    entries.push(data_entry("stray", &full, floats(&[0.0; 6])));
    let r = open(vec![entries])?.map_err(|e| e.to_string())?;
    assert!(matches!(
        r.read("w"),
        Err(Error::V1Tensor { tensor, reason, .. }) if tensor == "w[-:-]" && reason == "has no entry in the file"
    ));
    assert!(matches!(
        r.verify(),
        Err(Error::V1Tensor { tensor, reason, .. })
            if tensor == "stray[-:-]" && reason == "the entry is not listed in the file's metadata"
    ));
    Ok(())
}

#[test]
fn newer_versions_are_refused() -> TestResult {
    let (key, _) = meta_entry(Vec::new());
    let sts = SavedTensorSlices {
        meta: Some(SavedTensorSliceMeta {
            tensor: Vec::new(),
            versions: Some(VersionDef {
                producer: 5,
                min_consumer: 3,
                bad_consumers: Vec::new(),
            }),
        }),
        data: None,
    };
    let e = open_err(vec![vec![(key, sts.encode_to_vec())]])?;
    assert!(
        matches!(&e, Error::V1Meta { reason, .. } if reason.contains("min_consumer 3")),
        "{e}"
    );
    Ok(())
}

#[test]
fn truncated_and_flipped_files() -> TestResult {
    let bytes = table(whole_w(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.ckpt");
    // Truncated: not a checkpoint at all any more.
    std::fs::write(&path, &bytes[..bytes.len() - 3])?;
    let e = Checkpoint::open(&path)
        .err()
        .ok_or("opened a truncated file")?;
    assert!(
        matches!(&e, Error::CheckpointNotFound { reason, .. } if reason.contains("is not a V1 checkpoint either")),
        "{e}"
    );
    // A flipped bit in the data block: the table's block checksum catches it.
    let mut flipped = bytes.clone();
    flipped[10] ^= 0x10;
    std::fs::write(&path, &flipped)?;
    let e = Checkpoint::open(&path)
        .err()
        .ok_or("opened a damaged file")?;
    assert!(
        matches!(&e, Error::Table { path: p, error: ckpt_table::Error::ChecksumMismatch { .. } } if *p == path),
        "{e}"
    );
    Ok(())
}

#[test]
fn shards_found_by_name_and_missing_ones_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let a = slice("0,1:-")?;
    let b = slice("1,1:-")?;
    let shard = |s: &TensorSlice, v: &[f32]| {
        table(vec![
            meta_entry(vec![meta("v", DataType::DtFloat, &[2, 2], &[s])]),
            data_entry("v", s, floats(v)),
        ])
    };
    std::fs::write(
        dir.path().join("m.ckpt-00000-of-00002"),
        shard(&a, &[1.0, 2.0])?,
    )?;
    std::fs::write(
        dir.path().join("m.ckpt-00001-of-00002"),
        shard(&b, &[3.0, 4.0])?,
    )?;
    let pattern = dir.path().join("m.ckpt-?????-of-00002");
    for path in [
        dir.path().join("m.ckpt"),
        pattern.clone(),
        dir.path().join("m.ckpt-00001-of-00002"),
        dir.path().to_path_buf(),
    ] {
        let c = Checkpoint::open(&path)?;
        assert_eq!(c.prefix(), pattern, "{}", path.display());
        assert_eq!(&*c.read("v")?.as_slice::<f32>()?, &[1.0, 2.0, 3.0, 4.0]);
    }
    std::fs::remove_file(dir.path().join("m.ckpt-00000-of-00002"))?;
    let c = Checkpoint::open(dir.path().join("m.ckpt"))?;
    let missing = dir.path().join("m.ckpt-00000-of-00002");
    assert_eq!(c.missing_files(), std::slice::from_ref(&missing));
    let e = c.read("v").err().ok_or("read half a tensor")?;
    assert!(
        matches!(&e, Error::Slices { reason, .. } if reason.contains(&*missing.to_string_lossy())),
        "{e}"
    );
    assert!(matches!(
        c.verify(),
        Err(Error::MissingShard { path, shard: 0, num_shards: 2, .. }) if path == missing
    ));
    Ok(())
}
