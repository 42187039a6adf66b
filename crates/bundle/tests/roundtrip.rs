//! Write then read: every dtype, empty and scalar shapes, strings, variants, partitioned
//! tensors, big-endian bundles, merging.

mod common;

use std::borrow::Cow;

use ckpt_bundle::{
    data_path, index_path, merge_bundles, BundleReader, BundleWriter, DType, Error, Prefer, Tensor,
    TensorInfo,
};
use ckpt_proto::tensor_shape_proto::Dim;
use ckpt_proto::{BundleEntryProto, BundleHeaderProto, Message, TensorShapeProto, VersionDef};
use common::*;

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

#[test]
fn every_dtype_round_trips() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("all");
    let shapes: [Vec<u64>; 5] = [vec![], vec![0], vec![3, 0], vec![5], vec![2, 3, 4]];
    let mut expected: Vec<(String, Tensor<'static>)> = Vec::new();
    for (k, dtype) in DType::ALL.iter().enumerate() {
        for (j, shape) in shapes.iter().enumerate() {
            let n: u64 = shape.iter().product();
            let t = match dtype.element_size() {
                Some(size) => {
                    let mut b = bytes(n as usize * size, (k * 10 + j) as u64);
                    if *dtype == DType::Bool {
                        b.iter_mut().for_each(|v| *v &= 1);
                    }
                    Tensor::from_bytes(*dtype, shape.clone(), b)?
                }
                None => {
                    let strings: Vec<Cow<'static, [u8]>> = (0..n as usize)
                        .map(|i| Cow::Owned(bytes(i * 37 % 300, i as u64)))
                        .collect();
                    Tensor::from_strings(*dtype, shape.clone(), strings)?
                }
            };
            expected.push((format!("{}/{j}", dtype.name()), t));
        }
    }
    // Add in a scrambled order: the index is sorted regardless.
    let mut w = BundleWriter::create(&prefix)?;
    for (name, t) in expected.iter().rev() {
        w.add(name, t)?;
    }
    w.finish()?;

    let r = BundleReader::open(&prefix)?;
    let mut names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    let listed: Vec<&str> = r.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(listed, names);
    for (name, want) in &expected {
        let got = r.read(name)?;
        assert_eq!(&got, want, "{name}");
        assert_eq!(
            r.info(name)?,
            &TensorInfo {
                name: name.clone(),
                dtype: want.dtype(),
                shape: want.shape().to_vec()
            }
        );
    }
    let report = r.verify()?;
    assert_eq!(report.tensors, expected.len());
    assert_eq!(
        report.bytes,
        std::fs::metadata(data_path(&prefix, 0, 1))?.len()
    );
    Ok(())
}

#[test]
fn strings_empty_binary_and_large() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("s");
    let binary: Vec<u8> = (0..=255).collect();
    let big = vec![7u8; 70_000];
    let strings: Vec<Cow<[u8]>> = vec![
        Cow::Borrowed(b""),
        Cow::Borrowed(&binary),
        Cow::Borrowed(&big),
        Cow::Borrowed(b"\0"),
    ];
    let mut w = BundleWriter::create(&prefix)?;
    w.add(
        "mixed",
        &Tensor::from_strings(DType::String, vec![2, 2], strings.clone())?,
    )?;
    w.add("empty_scalar", &Tensor::scalar_string(&b""[..]))?;
    w.add(
        "none",
        &Tensor::from_strings(DType::String, vec![0], vec![])?,
    )?;
    w.finish()?;
    let r = BundleReader::open(&prefix)?;
    assert_eq!(r.read("mixed")?.strings(), Some(strings.as_slice()));
    assert_eq!(
        r.read("empty_scalar")?.strings(),
        Some(&[Cow::Borrowed(&b""[..])][..])
    );
    assert_eq!(r.read("none")?.strings().map(<[_]>::len), Some(0));
    // An empty string tensor takes exactly the 4-byte masked zero checksum.
    let data = std::fs::read(data_path(&prefix, 0, 1))?;
    assert!(data.ends_with(&[0xd8, 0xea, 0x82, 0xa2]));
    r.verify()?;
    Ok(())
}

#[test]
fn empty_numeric_tensor_entry_matches_tensorflow() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("e");
    let mut w = BundleWriter::create(&prefix)?;
    w.add(
        "e",
        &Tensor::from_bytes(DType::Float32, vec![0, 3], Vec::new())?,
    )?;
    w.finish()?;
    let entries = read_entries(&std::fs::read(index_path(&prefix))?)?;
    let (_, v) = entries.iter().find(|(k, _)| k == b"e").ok_or("no entry")?;
    // dtype 1, shape [0, 3] (size-0 dim is an empty message), no offset, no size, crc Mask(0).
    assert_eq!(
        v,
        &[
            0x08, 0x01, 0x12, 0x06, 0x12, 0x00, 0x12, 0x02, 0x08, 0x03, 0x35, 0xd8, 0xea, 0x82,
            0xa2
        ]
    );
    assert_eq!(std::fs::metadata(data_path(&prefix, 0, 1))?.len(), 0);
    let r = BundleReader::open(&prefix)?;
    assert_eq!(r.read("e")?.bytes(), Some(&[][..]));
    r.verify()?;
    Ok(())
}

#[test]
fn writer_refuses_bad_tensors_and_stays_usable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("w");
    let mut w = BundleWriter::create(&prefix)?;
    let ok = Tensor::from_vec(vec![2], vec![1i32, 2])?;
    assert!(matches!(w.add("", &ok), Err(Error::InvalidTensor { .. })));
    w.add("x", &ok)?;
    assert!(matches!(w.add("x", &ok), Err(Error::DuplicateTensor { tensor, .. }) if tensor == "x"));
    // A tensor whose data disagrees with its dtype and shape cannot even be built, so it
    // never reaches the writer.
    let e = Tensor::from_bytes(DType::Int32, vec![3], vec![0; 8])
        .err()
        .ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::InvalidTensor { reason, .. } if reason.contains("8 bytes")),
        "{e}"
    );
    let e = Tensor::from_bytes(DType::String, vec![], vec![])
        .err()
        .ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::InvalidTensor { reason, .. } if reason.contains("needs string data")),
        "{e}"
    );
    w.add("y", &Tensor::from_vec(vec![3], vec![1i32, 2, 3])?)?;
    w.finish()?;
    let r = BundleReader::open(&prefix)?;
    assert_eq!(r.tensors().len(), 2);
    assert_eq!(&*r.read("y")?.as_slice::<i32>()?, &[1, 2, 3]);
    Ok(())
}

#[test]
fn unwritable_directory_is_a_clear_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("not_a_dir");
    std::fs::write(&file, b"x")?;
    let e = BundleWriter::create(file.join("model"))
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("not_a_dir"), "{e}");
    Ok(())
}

#[test]
fn partitioned_tensor_round_trips() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("part");
    let full: Vec<f32> = (0..24).map(|v| v as f32).collect(); // [4, 6]
    let block = |r0: usize, rows: usize, c0: usize, cols: usize| -> Vec<f32> {
        let mut v = Vec::new();
        for r in r0..r0 + rows {
            for c in c0..c0 + cols {
                v.push(full[r * 6 + c]);
            }
        }
        v
    };
    let mut w = BundleWriter::create(&prefix)?;
    // Row block [0,3) x all columns, then the last row split in two column blocks.
    w.add_slice(
        "pv",
        &[4, 6],
        &[(0, 3), (0, 6)],
        &Tensor::from_vec(vec![3, 6], block(0, 3, 0, 6))?,
    )?;
    w.add("other", &Tensor::from_vec(vec![], vec![1.5f64])?)?;
    w.add_slice(
        "pv",
        &[4, 6],
        &[(3, 1), (0, 4)],
        &Tensor::from_vec(vec![1, 4], block(3, 1, 0, 4))?,
    )?;
    w.add_slice(
        "pv",
        &[4, 6],
        &[(3, 1), (4, 2)],
        &Tensor::from_vec(vec![1, 2], block(3, 1, 4, 2))?,
    )?;
    // Same slice twice, a whole-covering slice of an existing name, wrong shape: errors.
    let again = Tensor::from_vec(vec![1, 2], block(3, 1, 4, 2))?;
    assert!(matches!(
        w.add_slice("pv", &[4, 6], &[(3, 1), (4, 2)], &again),
        Err(Error::DuplicateTensor { .. })
    ));
    assert!(matches!(
        w.add_slice("pv", &[4, 6], &[(3, 1), (5, 2)], &again),
        Err(Error::InvalidTensor { tensor, reason }) if tensor == "pv" && reason.contains("outside")
    ));
    assert!(matches!(
        w.add_slice("pv", &[4, 7], &[(3, 1), (4, 2)], &again),
        Err(Error::InvalidTensor { tensor, reason }) if tensor == "pv" && reason.contains("disagrees with earlier slices")
    ));
    assert!(matches!(
        w.add("pv", &Tensor::from_vec(vec![4, 6], full.clone())?),
        Err(Error::DuplicateTensor { .. })
    ));
    // A slice covering the whole shape is stored as a plain tensor.
    w.add_slice(
        "whole",
        &[2],
        &[(0, 2)],
        &Tensor::from_vec(vec![2], vec![9i8, 8])?,
    )?;
    w.finish()?;

    let r = BundleReader::open(&prefix)?;
    let names: Vec<&str> = r.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["other", "pv", "whole"], "slice keys are not listed");
    assert_eq!(r.info("pv")?.shape, [4, 6]);
    let pv = r.read("pv")?;
    assert_eq!(pv.shape(), [4, 6]);
    assert_eq!(&*pv.as_slice::<f32>()?, full.as_slice());
    assert_eq!(&*r.read("whole")?.as_slice::<i8>()?, &[9, 8]);
    let report = r.verify()?;
    assert_eq!(report.tensors, 3);
    assert_eq!(report.bytes, 24 * 4 + 8 + 2);

    // The index holds the full entry with three slices and three encoded slice keys.
    let entries = read_entries(&std::fs::read(index_path(&prefix))?)?;
    assert_eq!(
        entries
            .iter()
            .filter(|(k, _)| k.first() == Some(&0))
            .count(),
        3
    );
    let (_, v) = entries
        .iter()
        .find(|(k, _)| k == b"pv")
        .ok_or("no full entry")?;
    let full_entry = BundleEntryProto::decode(v.as_slice())?;
    assert_eq!(full_entry.slices.len(), 3);
    assert_eq!(
        (full_entry.offset, full_entry.size, full_entry.crc32c),
        (0, 0, 0)
    );
    Ok(())
}

#[test]
fn tensorflow_partitioned_entry_bytes() -> TestResult {
    // docs/format.md §3.8: part/pv [6, 2] in three row blocks; the first slice proto is
    // `3a 08 0a 02 10 02 0a 02 10 02` (start 0 left out, length set for both dims).
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("pv");
    let mut w = BundleWriter::create(&prefix)?;
    for k in 0..3u64 {
        let t = Tensor::from_vec(vec![2, 2], vec![k as f32; 4])?;
        w.add_slice("part/pv", &[6, 2], &[(2 * k, 2), (0, 2)], &t)?;
    }
    w.finish()?;
    let entries = read_entries(&std::fs::read(index_path(&prefix))?)?;
    let (_, v) = entries
        .iter()
        .find(|(k, _)| k == b"part/pv")
        .ok_or("no full entry")?;
    let want_first = [0x3a, 0x08, 0x0a, 0x02, 0x10, 0x02, 0x0a, 0x02, 0x10, 0x02];
    assert!(
        v.windows(want_first.len()).any(|w| w == want_first),
        "{v:02x?}"
    );
    assert!(v
        .windows(6)
        .any(|w| w == [0x0a, 0x04, 0x08, 0x02, 0x10, 0x02]));
    assert!(v
        .windows(6)
        .any(|w| w == [0x0a, 0x04, 0x08, 0x04, 0x10, 0x02]));
    let mut key = vec![0x00];
    key.extend_from_slice(b"part/pv");
    key.extend_from_slice(&[0x00, 0x01, 0x01, 0x02, 0x80, 0x82, 0x80, 0x82]);
    assert!(entries.iter().any(|(k, _)| *k == key));
    let r = BundleReader::open(&prefix)?;
    assert_eq!(
        &*r.read("part/pv")?.as_slice::<f32>()?,
        &[0., 0., 0., 0., 1., 1., 1., 1., 2., 2., 2., 2.]
    );
    Ok(())
}

/// Builds a bundle as a big-endian machine would write it.
fn big_endian_bundle() -> BoxResult<(Vec<u8>, Vec<u8>)> {
    let mut data = Vec::new();
    let mut entries = Vec::new();
    let mut add =
        |name: &str, dtype: i32, shape: &[i64], bytes: Vec<u8>, crc: u32, data: &mut Vec<u8>| {
            let entry = BundleEntryProto {
                dtype,
                shape: Some(TensorShapeProto {
                    dim: shape
                        .iter()
                        .map(|&size| Dim {
                            size,
                            name: String::new(),
                        })
                        .collect(),
                    unknown_rank: false,
                }),
                offset: data.len() as i64,
                size: bytes.len() as i64,
                crc32c: ckpt_table::mask_crc(crc),
                ..Default::default()
            };
            data.extend_from_slice(&bytes);
            entries.push((name.as_bytes().to_vec(), entry.encode_to_vec()));
        };
    let f: Vec<u8> = [1.5f32, -2.0, 1e10]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    add("f", 1, &[3], f.clone(), crc32c::crc32c(&f), &mut data);
    let i: Vec<u8> = [-2i16, 300].iter().flat_map(|v| v.to_be_bytes()).collect();
    add("i", 5, &[2], i.clone(), crc32c::crc32c(&i), &mut data);
    let c: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    add("c", 8, &[1], c.clone(), crc32c::crc32c(&c), &mut data);
    let u: Vec<u8> = vec![1, 2, 3];
    add("u", 4, &[3], u.clone(), crc32c::crc32c(&u), &mut data);
    // Strings: lengths checksummed as big-endian u32, checksum stored big-endian.
    let mut crc = crc32c::crc32c_append(0, &2u32.to_be_bytes());
    crc = crc32c::crc32c_append(crc, &3u32.to_be_bytes());
    let mut s = vec![2, 3];
    let stored = ckpt_table::mask_crc(crc).to_be_bytes();
    s.extend_from_slice(&stored);
    crc = crc32c::crc32c_append(crc, &stored);
    s.extend_from_slice(b"hiabc");
    crc = crc32c::crc32c_append(crc, b"hiabc");
    add("s", 7, &[2], s, crc, &mut data);
    let header = BundleHeaderProto {
        num_shards: 1,
        endianness: 1,
        version: Some(VersionDef {
            producer: 1,
            ..Default::default()
        }),
    };
    entries.push((Vec::new(), header.encode_to_vec()));
    Ok((build_index(entries)?, data))
}

#[test]
fn big_endian_bundles_are_byte_swapped() -> TestResult {
    let (index, data) = big_endian_bundle()?;
    let r = BundleReader::from_bytes(&index, vec![data], Default::default())?;
    assert!(r.is_big_endian());
    assert_eq!(&*r.read("f")?.as_slice::<f32>()?, &[1.5, -2.0, 1e10]);
    assert_eq!(&*r.read("i")?.as_slice::<i16>()?, &[-2, 300]);
    assert_eq!(&*r.read("c")?.as_slice::<[f32; 2]>()?, &[[1.0, 2.0]]);
    assert_eq!(&*r.read("u")?.as_slice::<u8>()?, &[1, 2, 3]);
    let s = r.read("s")?;
    assert_eq!(
        s.strings(),
        Some(&[Cow::Borrowed(&b"hi"[..]), Cow::Borrowed(&b"abc"[..])][..])
    );
    assert_eq!(r.verify()?.tensors, 5);
    Ok(())
}

#[test]
fn merge_combines_and_detects_duplicates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let mut w = BundleWriter::create(&a)?;
    w.add("x", &Tensor::from_vec(vec![2], vec![1.0f32, 2.0])?)?;
    w.add("dup", &Tensor::from_vec(vec![], vec![1i64])?)?;
    w.add_slice(
        "p",
        &[2, 2],
        &[(0, 1), (0, 2)],
        &Tensor::from_vec(vec![1, 2], vec![1i32, 2])?,
    )?;
    w.finish()?;
    let mut w = BundleWriter::create(&b)?;
    w.add("y", &Tensor::scalar_string(&b"why"[..]))?;
    w.add("dup", &Tensor::from_vec(vec![], vec![2i64])?)?;
    w.add_slice(
        "p",
        &[2, 2],
        &[(1, 1), (0, 2)],
        &Tensor::from_vec(vec![1, 2], vec![3i32, 4])?,
    )?;
    w.finish()?;
    // Each input alone lists "p" but cannot read it: it holds half the slices.
    assert!(matches!(
        BundleReader::open(&a)?.read("p"),
        Err(Error::Slices { tensor, reason, .. }) if tensor == "p" && reason.contains("2 of the tensor's 4")
    ));

    let out = dir.path().join("merged");
    let e = merge_bundles(&[&a, &b], &out, None)
        .err()
        .ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::Merge { reason, .. } if reason.contains("\"dup\"")),
        "{e}"
    );
    assert!(!index_path(&out).exists());

    for (prefer, want) in [(Prefer::First, 1i64), (Prefer::Last, 2)] {
        merge_bundles(&[&a, &b], &out, Some(prefer))?;
        let r = BundleReader::open(&out)?;
        let names: Vec<&str> = r.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["dup", "p", "x", "y"]);
        assert_eq!(&*r.read("dup")?.as_slice::<i64>()?, &[want]);
        assert_eq!(&*r.read("p")?.as_slice::<i32>()?, &[1, 2, 3, 4]);
        assert_eq!(&*r.read("x")?.as_slice::<f32>()?, &[1.0, 2.0]);
        // Each input's data shard becomes one of the output's, as in TensorFlow's MergeBundles.
        assert_eq!(r.num_shards(), 2);
        r.verify()?;
    }
    // Inputs are untouched.
    assert_eq!(
        &*BundleReader::open(&b)?.read("dup")?.as_slice::<i64>()?,
        &[2]
    );
    Ok(())
}

#[test]
fn in_memory_reader_and_concurrent_reads() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    let index = std::fs::read(index_path(&prefix))?;
    let data = std::fs::read(data_path(&prefix, 0, 1))?;
    let r = BundleReader::from_bytes(&index, vec![data], Default::default())?;
    assert_eq!(&*r.read("a")?.as_slice::<f32>()?, &[1., 2., 3., 4., 5., 6.]);

    let r = std::sync::Arc::new(BundleReader::open(&prefix)?);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || r.read("b").map(|t| t.as_slice::<i64>().map(|v| v[0])))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().map_err(|_| "thread panicked")???, 42);
    }
    Ok(())
}

#[test]
fn not_found_suggests_close_names() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    let r = BundleReader::open(&prefix)?;
    let e = r.read("A").err().ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::TensorNotFound { tensor, suggestions, .. } if tensor == "A" && suggestions.contains(&"a".to_string())),
        "{e}"
    );
    assert!(e.to_string().contains("did you mean"), "{e}");
    assert!(
        matches!(r.info("missing"), Err(Error::TensorNotFound { tensor, .. }) if tensor == "missing")
    );
    assert!(!r.contains("missing") && r.contains("a"));
    Ok(())
}

#[test]
fn reader_and_writer_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<BundleReader>();
    send_sync::<Tensor<'static>>();
    send::<BundleWriter>();
}

#[test]
fn two_shards_referenced_out_of_id_order() -> TestResult {
    // "a" lives in shard 1 and "b" in shard 0, so the first shard used is not shard 0.
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("m");
    let mut w = BundleWriter::create(&prefix)?;
    w.add("a", &Tensor::from_vec(vec![2], vec![1.0f32, 2.0])?)?;
    w.add("b", &Tensor::from_vec(vec![], vec![3i64])?)?;
    w.finish()?;
    let data = std::fs::read(data_path(&prefix, 0, 1))?;
    std::fs::remove_file(data_path(&prefix, 0, 1))?;
    std::fs::write(data_path(&prefix, 1, 2), &data[..8])?;
    std::fs::write(data_path(&prefix, 0, 2), &data[8..])?;
    edit_header(&prefix, |h| h.num_shards = 2)?;
    edit_entry(&prefix, "a", |e| e.shard_id = 1)?;
    edit_entry(&prefix, "b", |e| e.offset = 0)?;
    let r = BundleReader::open(&prefix)?;
    assert_eq!(r.num_shards(), 2);
    assert_eq!(&*r.read("a")?.as_slice::<f32>()?, &[1.0, 2.0]);
    assert_eq!(&*r.read("b")?.as_slice::<i64>()?, &[3]);
    assert_eq!(r.verify()?.bytes, 16);
    Ok(())
}

/// A reader opened before a writer replaces its checkpoint keeps reading the version it
/// opened: its data shard is mapped at open, so the writer's renames cannot
/// mix the old index with new data (which used to fail with checksum errors).
#[test]
fn a_reader_sees_the_version_it_opened_while_the_prefix_is_rewritten() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("model.ckpt");
    let write = |seed: u64| -> TestResult {
        let mut w = BundleWriter::create(&prefix)?;
        for k in 0..6u64 {
            let t = Tensor::from_bytes(DType::UInt8, vec![4096], bytes(4096, seed * 100 + k))?;
            w.add(&format!("t{k}"), &t)?;
        }
        w.finish()?;
        Ok(())
    };
    write(1)?;
    let old = BundleReader::open(&prefix)?;
    write(2)?;
    for k in 0..6u64 {
        let got = old.read(&format!("t{k}"))?;
        assert_eq!(got.bytes(), Some(&bytes(4096, 100 + k)[..]), "t{k}");
    }
    let new = BundleReader::open(&prefix)?;
    assert_eq!(new.read("t0")?.bytes(), Some(&bytes(4096, 200)[..]));
    Ok(())
}

/// `read_deferred` returns the same bytes as `read` without checking them, and leaves a check
/// that passes with the bytes' crc32c and fails, as `read` does, with any other; strings and
/// V1-style reads keep checking as they read.
#[test]
fn deferred_checksum_checks_pass_and_fail_like_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("d");
    let mut w = BundleWriter::create(&prefix)?;
    let data = bytes(4 * 1000, 3);
    w.add(
        "f",
        &Tensor::from_bytes(DType::Float32, vec![10, 100], data.as_slice())?,
    )?;
    w.add("s", &Tensor::scalar_string(&b"text"[..]))?;
    w.finish()?;
    let r = BundleReader::open(&prefix)?;
    let (t, check) = r.read_deferred("f")?;
    assert_eq!(t.bytes(), r.read("f")?.bytes());
    let check = check.ok_or("a float tensor stored whole defers its check")?;
    assert_eq!(check.stored(), crc32c::crc32c(&data));
    check.clone().finish(crc32c::crc32c(&data))?;
    match check.finish(crc32c::crc32c(&data) ^ 1) {
        Err(Error::ChecksumMismatch { tensor, stored, .. }) => {
            assert_eq!(tensor, "f");
            assert_eq!(stored, crc32c::crc32c(&data));
        }
        other => return Err(format!("expected a checksum mismatch, got {other:?}").into()),
    }
    let (s, check) = r.read_deferred("s")?;
    assert!(check.is_none(), "strings are checked as they are read");
    assert_eq!(s.strings().map(|v| v.len()), Some(1));

    // A damaged float tensor: `read` fails at once, `read_deferred` hands back the bytes and a
    // check that fails with the same error.
    let data_file = data_path(&prefix, 0, 1);
    let mut raw = std::fs::read(&data_file)?;
    raw[5] ^= 0x10;
    std::fs::write(&data_file, &raw)?;
    let r = BundleReader::open(&prefix)?;
    let read_error = r
        .read("f")
        .err()
        .ok_or("read of a damaged tensor succeeded")?;
    let (t, check) = r.read_deferred("f")?;
    let computed = crc32c::crc32c(t.bytes().ok_or("bytes")?);
    let deferred_error = check
        .ok_or("no deferred check")?
        .finish(computed)
        .err()
        .ok_or("deferred check of a damaged tensor passed")?;
    assert_eq!(deferred_error.to_string(), read_error.to_string());
    Ok(())
}
