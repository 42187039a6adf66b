//! The worked example of docs/format.md §2.10, written by `tf.compat.v1.train.Saver`: read from
//! TensorFlow's bytes, and written back byte for byte.

use std::borrow::Cow;

use ckpt_bundle::{BundleReader, BundleWriter, DType, Tensor, TensorData};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const INDEX_HEX: &str = "00000608011a0208010001135708011208120208041202080328303568c46a8d0001116208011204120208032030280c3599413d0d00010d7308071200203c280a35ece0c02901030d746570080912002046280835bbd79f11010111760807120412020803204e280a35adbfe42f000000000100000000c6dd08fd000000000100000000c0f2a1b0000102740076000000000100000000458068ba7b0888010e000000000000000000000000000000000000000000000000000000000000000000000057fb808b247547db";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

fn data_bytes() -> Vec<u8> {
    let mut d = Vec::new();
    for _ in 0..12 {
        d.extend_from_slice(&unhex("0000803f"));
    }
    d.extend_from_slice(&[0; 12]);
    d.extend_from_slice(&unhex("05d9c69c4368656c6c6f"));
    d.extend_from_slice(&unhex("0700000000000000"));
    d.extend_from_slice(&unhex("010200abfbc9d8616263"));
    d
}

#[test]
fn reads_tensorflow_example() -> TestResult {
    let index = unhex(INDEX_HEX);
    assert_eq!(index.len(), 203);
    let data = data_bytes();
    assert_eq!(data.len(), 88);
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("model.ckpt");
    std::fs::write(dir.path().join("model.ckpt.index"), &index)?;
    std::fs::write(dir.path().join("model.ckpt.data-00000-of-00001"), &data)?;

    let r = BundleReader::open(&prefix)?;
    let names: Vec<&str> = r.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["W", "b", "s", "step", "sv"]);
    assert_eq!(r.num_shards(), 1);
    assert_eq!(r.info("W")?.shape, [4, 3]);
    assert_eq!(r.info("s")?.dtype, DType::String);

    let w = r.read("W")?;
    assert_eq!(w.dtype(), DType::Float32);
    assert_eq!(&*w.as_slice::<f32>()?, &[1.0f32; 12]);
    assert!(
        matches!(w.data(), TensorData::Bytes(Cow::Borrowed(_))),
        "zero-copy"
    );
    assert_eq!(&*r.read("b")?.as_slice::<f32>()?, &[0.0f32; 3]);
    assert_eq!(&*r.read("step")?.as_slice::<i64>()?, &[7]);
    let s = r.read("s")?;
    assert_eq!(s.shape(), Vec::<u64>::new());
    assert_eq!(s.strings(), Some(&[Cow::Borrowed(&b"hello"[..])][..]));
    let sv = r.read("sv")?;
    let sv: Vec<&[u8]> = sv
        .strings()
        .unwrap_or_default()
        .iter()
        .map(|c| &**c)
        .collect();
    assert_eq!(sv, [&b"a"[..], b"bc", b""]);

    let report = r.verify()?;
    assert_eq!(report.tensors, 5);
    assert_eq!(report.bytes, 88);
    Ok(())
}

#[test]
fn writes_tensorflow_example_byte_for_byte() -> TestResult {
    let dir = tempfile::tempdir()?;
    let prefix = dir.path().join("model.ckpt");
    let mut w = BundleWriter::create(&prefix)?;
    // The Saver adds tensors in sorted key order.
    w.add("W", &Tensor::from_vec(vec![4, 3], vec![1.0f32; 12])?)?;
    w.add("b", &Tensor::from_vec(vec![3], vec![0.0f32; 3])?)?;
    w.add("s", &Tensor::scalar_string(&b"hello"[..]))?;
    w.add("step", &Tensor::from_vec(vec![], vec![7i64])?)?;
    let sv: Vec<Cow<[u8]>> = vec![
        Cow::Borrowed(b"a"),
        Cow::Borrowed(b"bc"),
        Cow::Borrowed(b""),
    ];
    w.add("sv", &Tensor::from_strings(DType::String, vec![3], sv)?)?;
    w.finish()?;

    assert_eq!(
        std::fs::read(dir.path().join("model.ckpt.index"))?,
        unhex(INDEX_HEX)
    );
    assert_eq!(
        std::fs::read(dir.path().join("model.ckpt.data-00000-of-00001"))?,
        data_bytes()
    );
    let mut files: Vec<String> = std::fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    files.sort();
    assert_eq!(
        files,
        ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    );
    Ok(())
}
