//! Issue 2's "Bad input" list, one named test each: every malformed bundle gives an error
//! naming the file (and tensor, offset), never a panic.

mod common;

use std::path::Path;

use ckpt_bundle::{data_path, index_path, BundleReader, Error, ReadOptions};
use ckpt_proto::tensor_shape_proto::Dim;
use ckpt_proto::tensor_slice_proto::{extent::HasLength, Extent};
use ckpt_proto::{BundleEntryProto, Message, TensorShapeProto, TensorSliceProto};
use common::*;

fn open_err(prefix: &Path) -> BoxResult<Error> {
    match BundleReader::open(prefix) {
        Ok(_) => Err("open succeeded on a damaged bundle".into()),
        Err(e) => Ok(e),
    }
}

fn read_err(prefix: &Path, name: &str) -> BoxResult<Error> {
    let r = BundleReader::open(prefix)?;
    match r.read(name) {
        Ok(_) => Err(format!("reading {name} succeeded on a damaged bundle").into()),
        Err(e) => Ok(e),
    }
}

#[test]
fn truncated_index() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    let path = index_path(&prefix);
    let full = std::fs::read(&path)?;
    for cut in 0..full.len() {
        std::fs::write(&path, &full[..cut])?;
        let e = open_err(&prefix)?;
        assert!(matches!(e, Error::Table { .. }), "cut {cut}: {e}");
        assert!(e.to_string().contains("model.ckpt-7.index"), "{e}");
    }
    Ok(())
}

#[test]
fn empty_index() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    std::fs::write(index_path(&prefix), b"")?;
    let e = open_err(&prefix)?;
    assert!(matches!(e, Error::Table { .. }), "{e}");
    assert!(e.to_string().contains("model.ckpt-7.index"), "{e}");
    Ok(())
}

#[test]
fn bad_magic() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    let path = index_path(&prefix);
    let mut bytes = std::fs::read(&path)?;
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&path, &bytes)?;
    let e = open_err(&prefix)?;
    assert!(matches!(e, Error::Table { .. }), "{e}");
    assert!(e.to_string().contains("magic"), "{e}");
    Ok(())
}

#[test]
fn flipped_bit_in_index_block() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    let path = index_path(&prefix);
    let good = std::fs::read(&path)?;
    // Every bit of every block read (everything before the footer but the metaindex block,
    // which TensorFlow writes empty and never reads) is covered by a block crc.
    let meta = ckpt_table::Table::open(&good)?.metaindex_handle();
    let meta = meta.offset as usize..(meta.offset + meta.size) as usize + 5;
    for byte in (0..good.len() - 48).filter(|b| !meta.contains(b)) {
        for bit in 0..8 {
            let mut bytes = good.clone();
            bytes[byte] ^= 1 << bit;
            std::fs::write(&path, &bytes)?;
            let e = open_err(&prefix)
                .map_err(|e| format!("byte {byte} bit {bit} of {}: {e}", good.len()))?;
            assert!(
                matches!(e, Error::Table { .. }),
                "byte {byte} bit {bit}: {e}"
            );
        }
    }
    Ok(())
}

#[test]
fn flipped_bit_in_tensor_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    let path = data_path(&prefix, 0, 1);
    let good = std::fs::read(&path)?;
    // "a" is bytes 0..24, "b" 24..32, "s" 32..
    for (byte, tensor) in [
        (0usize, "a"),
        (23, "a"),
        (24, "b"),
        (31, "b"),
        (good.len() - 1, "s"),
    ] {
        let mut bytes = good.clone();
        bytes[byte] ^= 0x10;
        std::fs::write(&path, &bytes)?;
        let e = read_err(&prefix, tensor)?;
        assert!(
            matches!(&e, Error::ChecksumMismatch { tensor: t, .. } if t == tensor),
            "byte {byte}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("model.ckpt-7.data-00000-of-00001")
                && msg.contains(&format!("\"{tensor}\"")),
            "{msg}"
        );
        let r = BundleReader::open(&prefix)?;
        let v = r.verify();
        assert!(matches!(v, Err(Error::ChecksumMismatch { .. })), "{v:?}");
        // With checks off the damaged bytes come back as they are.
        let r = BundleReader::open_with(
            &prefix,
            ReadOptions {
                verify_checksums: false,
            },
        )?;
        assert!(r.read(tensor).is_ok());
    }
    // A flipped bit in a string length is caught by the length checksum, checks on or off.
    let mut bytes = good.clone();
    bytes[32] ^= 0x02;
    std::fs::write(&path, &bytes)?;
    let r = BundleReader::open_with(
        &prefix,
        ReadOptions {
            verify_checksums: false,
        },
    )?;
    let e = r.read("s").err().ok_or("expected an error")?;
    assert!(matches!(e, Error::StringData { offset: 34, .. }), "{e}");
    Ok(())
}

#[test]
fn offset_plus_size_past_end_of_shard() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    edit_entry(&prefix, "b", |e| e.offset = 100)?;
    let e = read_err(&prefix, "b")?;
    assert!(
        matches!(&e, Error::DataOutOfBounds { tensor, offset: 100, size: 8, .. } if tensor == "b"),
        "{e}"
    );
    assert!(
        e.to_string().contains("model.ckpt-7.data-00000-of-00001"),
        "{e}"
    );
    let r = BundleReader::open(&prefix)?;
    assert!(matches!(r.verify(), Err(Error::DataOutOfBounds { .. })));
    // "a" is still readable.
    assert!(r.read("a").is_ok());
    Ok(())
}

#[test]
fn offset_plus_size_overflows() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    edit_entry(&prefix, "b", |e| e.offset = i64::MAX - 3)?;
    let e = open_err(&prefix)?;
    assert!(
        matches!(&e, Error::Entry { tensor, reason, .. } if tensor == "b" && reason.contains("overflows")),
        "{e}"
    );
    edit_entry(&prefix, "b", |e| e.offset = -8)?;
    let e = open_err(&prefix)?;
    assert!(
        matches!(&e, Error::Entry { tensor, .. } if tensor == "b"),
        "{e}"
    );
    Ok(())
}

fn shape(dims: &[i64]) -> Option<TensorShapeProto> {
    Some(TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    })
}

#[test]
fn shape_element_count_overflows() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    edit_entry(&prefix, "a", |e| e.shape = shape(&[1 << 40, 1 << 40]))?;
    let e = open_err(&prefix)?;
    assert!(
        matches!(&e, Error::Entry { tensor, reason, .. } if tensor == "a" && reason.contains("overflows")),
        "{e}"
    );
    // Elements fit but bytes do not.
    edit_entry(&prefix, "a", |e| e.shape = shape(&[1 << 31, 1 << 31]))?;
    let e = open_err(&prefix)?;
    assert!(
        matches!(&e, Error::Entry { tensor, reason, .. } if tensor == "a" && reason.contains("overflows")),
        "{e}"
    );
    Ok(())
}

#[test]
fn shape_disagrees_with_stored_size() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    edit_entry(&prefix, "a", |e| e.shape = shape(&[3, 3]))?;
    let e = open_err(&prefix)?;
    assert!(
        matches!(&e, Error::Entry { tensor, reason, .. } if tensor == "a" && reason.contains("24") && reason.contains("36")),
        "{e}"
    );
    // A string tensor claiming more elements than bytes.
    let prefix = small_bundle(&dir.path().join("s"))?;
    edit_entry(&prefix, "s", |e| e.shape = shape(&[1000]))?;
    let e = open_err(&prefix)?;
    assert!(
        matches!(&e, Error::Entry { tensor, .. } if tensor == "s"),
        "{e}"
    );
    Ok(())
}

#[test]
fn negative_dimension_and_unknown_rank() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    edit_entry(&prefix, "a", |e| e.shape = shape(&[-1, 3]))?;
    assert!(matches!(open_err(&prefix)?, Error::Entry { .. }));
    edit_entry(&prefix, "a", |e| {
        e.shape = Some(TensorShapeProto {
            dim: vec![],
            unknown_rank: true,
        })
    })?;
    assert!(matches!(open_err(&prefix)?, Error::Entry { .. }));
    Ok(())
}

#[test]
fn unknown_dtype() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    for dtype in [0, 77, 20, 101, -3] {
        edit_entry(&prefix, "b", |e| e.dtype = dtype)?;
        let e = open_err(&prefix)?;
        assert!(
            matches!(&e, Error::Entry { tensor, .. } if tensor == "b"),
            "dtype {dtype}: {e}"
        );
        assert!(e.to_string().contains("dtype"), "{e}");
    }
    Ok(())
}

#[test]
fn shard_id_out_of_range() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    for id in [1, -1, i32::MAX] {
        edit_entry(&prefix, "b", |e| e.shard_id = id)?;
        let e = open_err(&prefix)?;
        assert!(
            matches!(&e, Error::Entry { tensor, reason, .. } if tensor == "b" && reason.contains("out of range")),
            "{e}"
        );
    }
    Ok(())
}

#[test]
fn header_claiming_two_billion_shards() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    for n in [2_000_000_000, 0, -5] {
        edit_header(&prefix, |h| h.num_shards = n)?;
        let e = open_err(&prefix)?;
        assert!(
            matches!(&e, Error::Header { reason, .. } if reason.contains("num_shards")),
            "{n}: {e}"
        );
    }
    Ok(())
}

#[test]
fn missing_shard_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    let data = data_path(&prefix, 0, 1);
    std::fs::remove_file(&data)?;
    // The index alone lists the tensors; reading one stored in the missing file fails, and
    // so does verify, naming the file.
    let reader = BundleReader::open(&prefix)?;
    assert_eq!(reader.tensors().len(), 3);
    assert_eq!(reader.missing_shards(), [data.as_path()]);
    let e = reader.read("a").err().ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::MissingShard { path, shard: 0, num_shards: 1, tensor } if *path == data && tensor == "a"),
        "{e}"
    );
    assert!(
        e.to_string().contains("model.ckpt-7.data-00000-of-00001"),
        "{e}"
    );
    let e = reader.verify().err().ok_or("expected an error")?;
    assert!(matches!(&e, Error::MissingShard { shard: 0, .. }), "{e}");

    // Two shards declared, the second missing: the tensors of the first still read.
    let prefix = small_bundle(&dir.path().join("two"))?;
    edit_header(&prefix, |h| h.num_shards = 2)?;
    edit_entry(&prefix, "b", |e| e.shard_id = 1)?;
    std::fs::rename(data_path(&prefix, 0, 1), data_path(&prefix, 0, 2))?;
    let reader = BundleReader::open(&prefix)?;
    assert_eq!(
        reader.missing_shards(),
        [data_path(&prefix, 1, 2).as_path()]
    );
    assert_eq!(
        &*reader.read("a")?.as_slice::<f32>()?,
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    let e = reader.read("b").err().ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::MissingShard { shard: 1, num_shards: 2, tensor, .. } if tensor == "b"),
        "{e}"
    );
    let e = reader.verify().err().ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::MissingShard { shard: 1, num_shards: 2, tensor, .. } if tensor == "b"),
        "{e}"
    );
    Ok(())
}

#[test]
fn garbage_entry_proto() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    edit_raw(&prefix, |entries| {
        if let Some(e) = entries.iter_mut().find(|(k, _)| k == b"b") {
            e.1 = vec![0xff, 0xff, 0xff, 0x0f];
        }
    })?;
    let e = open_err(&prefix)?;
    assert!(
        matches!(&e, Error::Entry { tensor, reason, .. } if tensor == "b" && reason.contains("BundleEntryProto")),
        "{e}"
    );
    Ok(())
}

#[test]
fn garbage_header_proto() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    edit_raw(&prefix, |entries| {
        if let Some(e) = entries.iter_mut().find(|(k, _)| k.is_empty()) {
            e.1 = b"\x0a\xff\xff".to_vec();
        }
    })?;
    let e = open_err(&prefix)?;
    assert!(
        matches!(&e, Error::Header { reason, .. } if reason.contains("BundleHeaderProto")),
        "{e}"
    );
    // No header at all.
    edit_raw(&prefix, |entries| entries.retain(|(k, _)| !k.is_empty()))?;
    assert!(matches!(open_err(&prefix)?, Error::Header { .. }));
    edit_raw(&prefix, |entries| entries.clear())?;
    assert!(matches!(open_err(&prefix)?, Error::Header { .. }));
    Ok(())
}

#[test]
fn newer_version_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    edit_header(&prefix, |h| {
        h.version.get_or_insert_default().min_consumer = 2
    })?;
    assert!(
        matches!(open_err(&prefix)?, Error::Header { reason, .. } if reason.contains("min_consumer"))
    );
    edit_header(&prefix, |h| {
        let v = h.version.get_or_insert_default();
        v.min_consumer = 0;
        v.bad_consumers = vec![1];
    })?;
    assert!(
        matches!(open_err(&prefix)?, Error::Header { reason, .. } if reason.contains("bad_consumers"))
    );
    edit_header(&prefix, |h| {
        let v = h.version.get_or_insert_default();
        v.bad_consumers.clear();
        v.producer = -1;
    })?;
    assert!(matches!(open_err(&prefix)?, Error::Header { .. }));
    edit_header(&prefix, |h| h.endianness = 7)?;
    assert!(matches!(open_err(&prefix)?, Error::Header { .. }));
    Ok(())
}

#[test]
fn string_count_beyond_bytes_is_refused_without_allocating() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    // 2^40 strings claimed for a 12-byte tensor whose size field is also inflated: the
    // bound check against the shard's real length stops it before any allocation.
    edit_entry(&prefix, "s", |e| {
        e.shape = shape(&[1 << 40]);
        e.size = 1 << 41;
    })?;
    let e = read_err(&prefix, "s")?;
    assert!(matches!(e, Error::DataOutOfBounds { .. }), "{e}");
    Ok(())
}

fn slice_proto(extents: &[(i64, Option<i64>)]) -> TensorSliceProto {
    TensorSliceProto {
        extent: extents
            .iter()
            .map(|&(start, len)| Extent {
                start,
                has_length: len.map(HasLength::Length),
            })
            .collect(),
    }
}

/// A partitioned [4, 2] float tensor "p" stored as two row blocks, written by hand.
fn partitioned(dir: &Path) -> BoxResult<std::path::PathBuf> {
    let prefix = dir.join("p");
    let mut w = ckpt_bundle::BundleWriter::create(&prefix)?;
    let top = ckpt_bundle::Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0])?;
    let bottom = ckpt_bundle::Tensor::from_vec(vec![2, 2], vec![5.0f32, 6.0, 7.0, 8.0])?;
    w.add_slice("p", &[4, 2], &[(0, 2), (0, 2)], &top)?;
    w.add_slice("p", &[4, 2], &[(2, 2), (0, 2)], &bottom)?;
    w.finish()?;
    Ok(prefix)
}

#[test]
fn bad_slices() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = partitioned(dir.path())?;
    assert_eq!(
        &*BundleReader::open(&prefix)?.read("p")?.as_slice::<f32>()?,
        &[1., 2., 3., 4., 5., 6., 7., 8.]
    );

    // A slice outside the shape.
    edit_entry(&prefix, "p", |e| {
        e.slices[1] = slice_proto(&[(3, Some(2)), (0, Some(2))])
    })?;
    assert!(
        matches!(open_err(&prefix)?, Error::Slices { reason, .. } if reason.contains("outside"))
    );

    // A slice whose entry is missing.
    let prefix = partitioned(&dir.path().join("2"))?;
    edit_entry(&prefix, "p", |e| {
        e.slices[1] = slice_proto(&[(2, Some(1)), (0, Some(2))])
    })?;
    assert!(
        matches!(open_err(&prefix)?, Error::Slices { reason, .. } if reason.contains("no entry"))
    );

    // Slices that leave a gap: listed, but reading and verifying fail.
    let prefix = partitioned(&dir.path().join("3"))?;
    edit_entry(&prefix, "p", |e| {
        e.slices.pop();
    })?;
    let r = BundleReader::open(&prefix)?;
    assert_eq!(r.info("p")?.shape, [4, 2]);
    let e = r.read("p").err().ok_or("expected an error")?;
    assert!(
        matches!(&e, Error::Slices { tensor, reason, .. } if tensor == "p" && reason.contains("4 of the tensor's 8")),
        "{e}"
    );
    assert!(matches!(r.verify(), Err(Error::Slices { .. })));

    // Overlapping slices (the same slice listed twice).
    let prefix = partitioned(&dir.path().join("4"))?;
    edit_entry(&prefix, "p", |e| e.slices[1] = e.slices[0].clone())?;
    let r = BundleReader::open(&prefix)?;
    assert!(matches!(r.read("p"), Err(Error::Slices { reason, .. }) if reason.contains("overlap")));

    // A slice stored with the wrong dtype.
    let prefix = partitioned(&dir.path().join("5"))?;
    edit_raw(&prefix, |entries| {
        for (k, v) in entries.iter_mut() {
            if k.first() == Some(&0) {
                if let Ok(mut e) = BundleEntryProto::decode(v.as_slice()) {
                    e.dtype = 3;
                    e.size = 16;
                    *v = e.encode_to_vec();
                }
            }
        }
    })?;
    assert!(matches!(open_err(&prefix)?, Error::Slices { reason, .. } if reason.contains("dtype")));
    Ok(())
}

#[test]
fn index_keys_out_of_order_or_not_utf8() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    edit_raw(&prefix, |entries| {
        if let Some(e) = entries.iter_mut().find(|(k, _)| k == b"b") {
            e.0 = vec![b'b', 0xff];
        }
    })?;
    assert!(matches!(open_err(&prefix)?, Error::Entry { reason, .. } if reason.contains("UTF-8")));
    Ok(())
}

#[test]
fn hostile_bytes_never_panic() -> TestResult {
    // Random single-byte edits anywhere in both files, read with checks on and off.
    let dir = tempfile::tempdir()?;
    let prefix = small_bundle(dir.path())?;
    let index = std::fs::read(index_path(&prefix))?;
    let data = std::fs::read(data_path(&prefix, 0, 1))?;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let mut idx = index.clone();
        let mut dat = data.clone();
        let target = if next() % 2 == 0 { &mut idx } else { &mut dat };
        let at = (next() % target.len() as u64) as usize;
        target[at] = next() as u8;
        for verify in [true, false] {
            if let Ok(r) = BundleReader::from_bytes(
                &idx,
                vec![dat.clone()],
                ReadOptions {
                    verify_checksums: verify,
                },
            ) {
                for t in r.tensors().to_vec() {
                    let _ = r.read(&t.name);
                }
                let _ = r.verify();
            }
        }
    }
    Ok(())
}
