//! The `.npy` array format (and `.npz`, a zip of them), read and written at the byte level.
//!
//! Checkpoint tensors move through these files with their exact bytes, so the codec works on raw
//! little-endian element buffers and numpy `descr` strings rather than on typed arrays: that keeps
//! float16, complex and fixed-width byte strings (`|S7`) as simple as float32.

use std::borrow::Cow;
use std::io::{Read, Seek, Write};

use anyhow::{anyhow, bail, Context, Result};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Headers past this size are refused rather than read (numpy itself caps them at 10 000 bytes).
const MAX_HEADER_LEN: usize = 1 << 16;
/// The largest `.npz` member read, in bytes (uncompressed).
pub const MAX_ENTRY_BYTES: u64 = 16 << 30;

/// The most an `.npz` member's buffer is sized to before its bytes arrive (64 MiB).
const INITIAL_ENTRY_RESERVE: u64 = 64 << 20;

/// One array: its numpy dtype string, shape and row-major element bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray<'a> {
    /// numpy's `descr`, for example `<f4`, `|b1`, `|S5`.
    pub descr: String,
    pub shape: Vec<u64>,
    /// The element bytes in C order: borrowed from the file's bytes when they can be used
    /// as they are, owned when they were reordered or made in memory.
    pub data: Cow<'a, [u8]>,
}

impl NpyArray<'_> {
    /// The same array holding its own bytes.
    pub fn into_owned(self) -> NpyArray<'static> {
        NpyArray {
            descr: self.descr,
            shape: self.shape,
            data: Cow::Owned(self.data.into_owned()),
        }
    }

    pub fn num_elements(&self) -> Result<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| anyhow!("shape {:?} has too many elements", self.shape))
    }
}

/// Serializes an array in npy format version 1.0 (2.0 when the header needs it).
pub fn write_npy<W: Write>(out: &mut W, array: &NpyArray<'_>) -> std::io::Result<()> {
    let shape = match array.shape.as_slice() {
        [] => "()".to_string(),
        [one] => format!("({one},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        array.descr, shape
    );
    // Pad with spaces so the data starts on a 64-byte boundary, newline last, as numpy does.
    let (version, prefix_len) = if header.len() + 11 <= 65535 {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = prefix_len + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    out.write_all(MAGIC)?;
    out.write_all(&[version, 0])?;
    if version == 1 {
        out.write_all(&(header.len() as u16).to_le_bytes())?;
    } else {
        out.write_all(&(header.len() as u32).to_le_bytes())?;
    }
    out.write_all(header.as_bytes())?;
    out.write_all(&array.data)
}

/// Parses an npy file held in memory. `what` names it in errors.
pub fn read_npy<'a>(bytes: &'a [u8], what: &str) -> Result<NpyArray<'a>> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| anyhow!("{what}: not an npy file (bad magic)"))?;
    let (version, rest) = rest
        .split_first()
        .ok_or_else(|| anyhow!("{what}: truncated npy header"))?;
    let rest = rest
        .get(1..)
        .ok_or_else(|| anyhow!("{what}: truncated npy header"))?;
    let (header_len, rest) = match version {
        1 => {
            let len = rest
                .get(..2)
                .ok_or_else(|| anyhow!("{what}: truncated npy header"))?;
            (u16::from_le_bytes([len[0], len[1]]) as usize, &rest[2..])
        }
        2 | 3 => {
            let len = rest
                .get(..4)
                .ok_or_else(|| anyhow!("{what}: truncated npy header"))?;
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            (len, &rest[4..])
        }
        v => bail!("{what}: unsupported npy format version {v}"),
    };
    if header_len > MAX_HEADER_LEN {
        bail!("{what}: npy header of {header_len} bytes is implausibly large");
    }
    let header = rest
        .get(..header_len)
        .ok_or_else(|| anyhow!("{what}: npy header runs past the end of the file"))?;
    let data = &rest[header_len..];
    let header = crate::npy_header::parse_header(header)
        .map_err(|reason| anyhow!("{what}: bad npy header: {reason}"))?;
    let (descr, shape, fortran) = (header.descr, header.shape, header.fortran_order);
    let array = NpyArray {
        descr,
        shape,
        data: Cow::Borrowed(&[]),
    };
    let count = array.num_elements().with_context(|| what.to_string())?;
    let item = descr_item_size(&array.descr)
        .ok_or_else(|| anyhow!("{what}: unsupported npy dtype {:?}", array.descr))?;
    let expected = count
        .checked_mul(item as u64)
        .ok_or_else(|| anyhow!("{what}: array size overflows"))?;
    if (data.len() as u64) < expected {
        bail!(
            "{what}: npy data holds {} bytes, shape {:?} of {} needs {expected}",
            data.len(),
            array.shape,
            array.descr
        );
    }
    let mut data = Cow::Borrowed(&data[..expected as usize]);
    // Reordering costs one step per element: only where there are bytes to move.
    if fortran && array.shape.len() > 1 && !data.is_empty() {
        data = Cow::Owned(fortran_to_c(&data, &array.shape, item));
    }
    Ok(NpyArray { data, ..array })
}

/// Byte size of one element of a numpy dtype string we can represent.
pub fn descr_item_size(descr: &str) -> Option<usize> {
    let (order, rest) = descr.split_at_checked(1)?;
    if !matches!(order, "<" | "|" | "=") {
        // Big-endian arrays would need swapping; refuse rather than misread.
        return None;
    }
    let (kind, size) = rest.split_at_checked(1)?;
    let size: usize = size.parse().ok()?;
    let ok = match kind {
        "f" => matches!(size, 2 | 4 | 8),
        "i" | "u" => matches!(size, 1 | 2 | 4 | 8),
        "c" => matches!(size, 8 | 16),
        "b" => size == 1,
        "S" | "V" => size <= (1 << 30),
        "U" => size <= (1 << 28),
        _ => false,
    };
    ok.then_some(if kind == "U" { size * 4 } else { size })
}

/// Reorders column-major element bytes into row-major order.
fn fortran_to_c(data: &[u8], shape: &[u64], item: usize) -> Vec<u8> {
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let count: usize = dims.iter().product();
    let mut out = vec![0u8; data.len()];
    let mut index = vec![0usize; dims.len()];
    for c_pos in 0..count {
        // Fortran offset of the current row-major index.
        let mut f_pos = 0;
        let mut stride = 1;
        for (i, &d) in index.iter().zip(&dims) {
            f_pos += i * stride;
            stride *= d;
        }
        out[c_pos * item..(c_pos + 1) * item]
            .copy_from_slice(&data[f_pos * item..(f_pos + 1) * item]);
        for axis in (0..dims.len()).rev() {
            index[axis] += 1;
            if index[axis] < dims[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// Writes several arrays into an uncompressed `.npz` archive, as `numpy.savez` does.
#[derive(Debug)]
pub struct NpzWriter<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
}

impl<W: Write + Seek> NpzWriter<W> {
    pub fn new(out: W) -> Self {
        NpzWriter {
            zip: zip::ZipWriter::new(out),
        }
    }

    pub fn add(&mut self, name: &str, array: &NpyArray<'_>) -> Result<()> {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(array.data.len() > u32::MAX as usize / 2);
        self.zip.start_file(format!("{name}.npy"), options)?;
        write_npy(&mut self.zip, array)?;
        Ok(())
    }

    pub fn finish(self) -> Result<W> {
        Ok(self.zip.finish()?)
    }
}

/// Reads every array of an `.npz` archive, in archive order. `what` names it in errors.
pub fn read_npz<R: Read + Seek>(input: R, what: &str) -> Result<Vec<(String, NpyArray<'static>)>> {
    let mut archive =
        zip::ZipArchive::new(input).with_context(|| format!("{what}: not a zip (npz) archive"))?;
    let mut arrays = Vec::with_capacity(archive.len().min(1 << 16));
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .with_context(|| format!("{what}: cannot open archive entry {i}"))?;
        let entry_name = entry.name().to_string();
        let name = entry_name
            .strip_suffix(".npy")
            .unwrap_or(&entry_name)
            .to_string();
        // The declared (uncompressed) size bounds what is read: a member that inflates past
        // it (a deflate bomb) is refused, and no buffer is sized beyond the limit.
        let declared = entry.size();
        if declared > MAX_ENTRY_BYTES {
            bail!(
                "{what}: entry {entry_name:?} declares {declared} bytes, more than the {MAX_ENTRY_BYTES} this tool reads"
            );
        }
        // The declared size is the archive's word, not bytes present: reserve at most
        // INITIAL_ENTRY_RESERVE up front and let the buffer grow with what really inflates (a
        // 400-byte archive declaring 4 GB once reserved 4 GB).
        let mut bytes = Vec::new();
        let reserve = declared.min(INITIAL_ENTRY_RESERVE);
        bytes
            .try_reserve_exact(usize::try_from(reserve)?)
            .map_err(|_| {
                anyhow!("{what}: entry {entry_name:?}: cannot allocate {reserve} bytes")
            })?;
        (&mut entry)
            .take(declared.saturating_add(1))
            .read_to_end(&mut bytes)
            .with_context(|| format!("{what}: cannot read entry {entry_name:?}"))?;
        if bytes.len() as u64 > declared {
            bail!(
                "{what}: entry {entry_name:?} inflates past its declared size of {declared} bytes"
            );
        }
        let array = read_npy(&bytes, &format!("{what}: entry {entry_name:?}"))?;
        arrays.push((name, array.into_owned()));
    }
    Ok(arrays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64_bytes_and_round_trips() -> Result<()> {
        let array = NpyArray {
            descr: "<f4".into(),
            shape: vec![2, 3],
            data: (0..24).collect(),
        };
        let mut bytes = Vec::new();
        write_npy(&mut bytes, &array)?;
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!((bytes.len() - 24) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..bytes.len() - 24])?;
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(header.ends_with('\n'));
        assert_eq!(read_npy(&bytes, "t")?, array);
        Ok(())
    }

    #[test]
    fn scalar_and_vector_shapes_use_python_tuples() -> Result<()> {
        for (shape, text) in [(vec![], "()"), (vec![5u64], "(5,)")] {
            let array = NpyArray {
                descr: "|u1".into(),
                data: vec![7; shape.iter().product::<u64>() as usize].into(),
                shape,
            };
            let mut bytes = Vec::new();
            write_npy(&mut bytes, &array)?;
            assert!(String::from_utf8_lossy(&bytes).contains(&format!("'shape': {text}, ")));
            assert_eq!(read_npy(&bytes, "t")?, array);
        }
        Ok(())
    }

    #[test]
    fn fortran_order_is_reordered() -> Result<()> {
        // numpy.asfortranarray([[1, 2, 3], [4, 5, 6]], dtype=uint8) stores 1 4 2 5 3 6.
        let mut bytes = Vec::new();
        write_npy(
            &mut bytes,
            &NpyArray {
                descr: "|u1".into(),
                shape: vec![2, 3],
                data: vec![1, 4, 2, 5, 3, 6].into(),
            },
        )?;
        // Edit the header in place: the magic's 0x93 is not UTF-8, so no round trip via str.
        let at = bytes
            .windows(5)
            .position(|w| w == b"False")
            .ok_or_else(|| anyhow!("no fortran_order in header"))?;
        bytes[at..at + 5].copy_from_slice(b"True ");
        let array = read_npy(&bytes, "t")?;
        assert_eq!(&array.data[..], [1, 2, 3, 4, 5, 6]);
        Ok(())
    }

    #[test]
    fn hostile_headers_are_errors() {
        let message = |r: Result<NpyArray>| r.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert_eq!(
            message(read_npy(b"", "t")),
            "t: not an npy file (bad magic)"
        );
        assert_eq!(
            message(read_npy(b"\x93NUMPY\x01\x00\xff\xff", "t")),
            "t: npy header runs past the end of the file"
        );
        let file = |header: &str, data: &[u8]| {
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(data);
            bytes
        };
        let short = file(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }\n",
            &[],
        );
        let m = message(read_npy(&short, "t"));
        assert!(m.starts_with("t: npy data holds"), "{m}");
        let overflow = file(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 9999999), }\n",
            &[],
        );
        let m = message(read_npy(&overflow, "t"));
        assert!(m.contains("has too many elements"), "{m}");
        // The header's length field cuts it short.
        let mut truncated = short.clone();
        truncated[8] = 40;
        assert_eq!(
            message(read_npy(&truncated, "t")),
            "t: bad npy header: unexpected end of header"
        );
        let big_endian = file(
            "{'descr': '>f4', 'fortran_order': False, 'shape': (), }\n",
            &[0; 4],
        );
        assert_eq!(
            message(read_npy(&big_endian, "t")),
            "t: unsupported npy dtype \">f4\""
        );
    }

    /// Sets every uncompressed-size field of a one-member zip to `size`.
    fn patch_declared_size(zip: &mut [u8], size: u32) {
        for (signature, offset) in [(0x0403_4b50u32, 22usize), (0x0201_4b50, 24)] {
            let sig = signature.to_le_bytes();
            if let Some(at) = zip.windows(4).position(|w| w == sig) {
                zip[at + offset..at + offset + 4].copy_from_slice(&size.to_le_bytes());
            }
        }
    }

    #[test]
    fn npz_members_cannot_inflate_past_their_declared_size() -> Result<()> {
        let big = NpyArray {
            descr: "|u1".into(),
            shape: vec![1 << 20],
            data: vec![0; 1 << 20].into(),
        };
        let mut npy = Vec::new();
        write_npy(&mut npy, &big)?;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file(
            "bomb.npy",
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated),
        )?;
        std::io::Write::write_all(&mut zip, &npy)?;
        let mut bytes = zip.finish()?.into_inner();
        assert!(bytes.len() < 10_000, "a megabyte of zeros deflates small");
        patch_declared_size(&mut bytes, 1000);
        let err = read_npz(std::io::Cursor::new(bytes), "b.npz")
            .err()
            .ok_or_else(|| anyhow!("expected an error"))?;
        assert_eq!(
            format!("{err:#}"),
            "b.npz: entry \"bomb.npy\" inflates past its declared size of 1000 bytes"
        );
        Ok(())
    }

    /// numpy's decisions on `fixtures/npy_headers/corpus.json` (made by its `make.py`): every
    /// file numpy refuses is refused; every file it accepts with a dtype TensorFlow has is read
    /// to the same descr, shape and (row-major) bytes; the rest are refused naming the dtype.
    #[test]
    fn agrees_with_numpy_on_the_header_corpus() -> Result<()> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/npy_headers/corpus.json"
        );
        let corpus: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let cases = corpus["cases"]
            .as_array()
            .ok_or_else(|| anyhow!("no cases"))?;
        assert!(cases.len() >= 40);
        for case in cases {
            let name = case["name"].as_str().unwrap_or_default();
            let hex = case["hex"].as_str().unwrap_or_default();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()?;
            let ours = read_npy(&bytes, name);
            let descr = case["descr"].as_str();
            let supported = descr.is_some_and(|d| descr_item_size(d).is_some());
            match (case["accepted"].as_bool(), ours) {
                (Some(true), Ok(array)) => {
                    assert_eq!(Some(array.descr.as_str()), descr, "{name}");
                    let shape: Vec<u64> = case["shape"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|d| d.as_u64()).collect())
                        .unwrap_or_default();
                    assert_eq!(array.shape, shape, "{name}");
                    let data: String = array.data.iter().map(|b| format!("{b:02x}")).collect();
                    assert_eq!(Some(data.as_str()), case["data_hex"].as_str(), "{name}");
                }
                (Some(true), Err(e)) => {
                    assert!(!supported, "{name}: numpy reads it, we refuse: {e:#}");
                    assert!(format!("{e:#}").contains("npy"), "{name}: {e:#}");
                }
                (_, Ok(array)) => panic!("{name}: numpy refuses it, we read {array:?}"),
                (_, Err(_)) => {}
            }
        }
        Ok(())
    }

    #[test]
    fn zero_width_elements_cost_no_work_per_claimed_element() -> Result<()> {
        // |S0 in Fortran order claiming 10^10 elements: nothing to read, nothing to reorder.
        let header = "{'descr': '|S0', 'fortran_order': True, 'shape': (100000, 100000), }\n";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        let started = std::time::Instant::now();
        let array = read_npy(&bytes, "s0")?;
        assert!(array.data.is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        Ok(())
    }

    #[test]
    fn npz_round_trip() -> Result<()> {
        let a = NpyArray {
            descr: "<i8".into(),
            shape: vec![2],
            data: vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0].into(),
        };
        let b = NpyArray {
            descr: "|S3".into(),
            shape: vec![2],
            data: b"ab\0xyz".to_vec().into(),
        };
        let mut npz = NpzWriter::new(std::io::Cursor::new(Vec::new()));
        npz.add("dense/kernel", &a)?;
        npz.add("s", &b)?;
        let bytes = npz.finish()?.into_inner();
        let arrays = read_npz(std::io::Cursor::new(bytes), "t.npz")?;
        assert_eq!(
            arrays,
            vec![("dense/kernel".to_string(), a), ("s".to_string(), b)]
        );
        Ok(())
    }
}
