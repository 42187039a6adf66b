//! `ckpt diff`, `ckpt average`, `ckpt cast` and the statistics and JSON of `ckpt show`.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ckpt_bundle::{Checkpoint, DType, DeferredCheck, Tensor, TensorData, TensorInfo};
use regex::Regex;
use serde_json::{json, Value};

use crate::commands::{ignore_broken_pipe, open, CastTarget, WriteArgs};
use crate::copy::{check_output, Item, Source};
use crate::numeric::{self, Difference, FloatType, Stats};
use crate::summary::shape_text;

/// How a tensor present in both checkpoints compares.
enum Change {
    Dtype(DType, DType),
    Shape(Vec<u64>, Vec<u64>),
    /// Values differ: numeric tensors with the largest differences, others with a count only.
    Values {
        count: u64,
        diff: Difference,
        numeric: bool,
    },
}

/// A number for JSON: non-finite values as strings.
fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or_else(
        || {
            Value::String(if x.is_nan() {
                "nan".into()
            } else if x > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            })
        },
        Value::Number,
    )
}

/// How the values of tensor `name` differ between `a` and `b` (same dtype and shape); `None`
/// when they are identical.
///
/// Numeric tensors are read once: their checksums are computed in the same pass as the
/// comparison (see [`Checkpoint::read_deferred`]).
fn compare(a: &Checkpoint, b: &Checkpoint, info: &TensorInfo) -> Result<Option<Change>> {
    let (ta, check_a) = a.read_deferred(&info.name)?;
    let (tb, check_b) = b.read_deferred(&info.name)?;
    let count = info.num_elements();
    if let (TensorData::Bytes(x), TensorData::Bytes(y), Some(kind)) =
        (ta.data(), tb.data(), numeric::kind(info.dtype))
    {
        let (diff, crc_x, crc_y) = numeric::difference_checked(kind, x, y);
        finish_check(check_a, || crc_x)?;
        finish_check(check_b, || crc_y)?;
        // Bitwise-different but numerically equal (0.0 and -0.0, NaN payloads): the same.
        return Ok((diff.differing > 0).then_some(Change::Values {
            count,
            diff,
            numeric: true,
        }));
    }
    finish_check(check_a, || crc32c::crc32c(ta.bytes().unwrap_or_default()))?;
    finish_check(check_b, || crc32c::crc32c(tb.bytes().unwrap_or_default()))?;
    if ta.data() == tb.data() {
        return Ok(None);
    }
    match (ta.data(), tb.data(), numeric::kind(info.dtype)) {
        (TensorData::Strings(x), TensorData::Strings(y), _) => {
            let differing = x.iter().zip(y).filter(|(p, q)| p != q).count() as u64;
            Ok(Some(Change::Values {
                count,
                diff: Difference {
                    differing,
                    ..Difference::default()
                },
                numeric: false,
            }))
        }
        (TensorData::Bytes(x), TensorData::Bytes(y), None) => {
            let size = info.dtype.element_size().unwrap_or(1).max(1);
            let differing = x
                .chunks(size)
                .zip(y.chunks(size))
                .filter(|(p, q)| p != q)
                .count() as u64;
            Ok(Some(Change::Values {
                count,
                diff: Difference {
                    differing,
                    ..Difference::default()
                },
                numeric: false,
            }))
        }
        _ => Ok(Some(Change::Values {
            count,
            diff: Difference::default(),
            numeric: false,
        })),
    }
}

/// Finishes the checksum check [`Checkpoint::read_deferred`] left, if it left one, with
/// `crc`, the crc32c of the tensor's bytes.
fn finish_check(check: Option<DeferredCheck>, crc: impl FnOnce() -> u32) -> Result<()> {
    if let Some(check) = check {
        check.finish(crc())?;
    }
    Ok(())
}

/// `ckpt diff A B`.
pub fn diff(a_path: &Path, b_path: &Path, as_json: bool) -> Result<ExitCode> {
    let a = open(a_path)?;
    let b = open(b_path)?;
    let in_b: BTreeMap<&str, &TensorInfo> =
        b.tensors().iter().map(|t| (t.name.as_str(), t)).collect();
    let in_a: BTreeMap<&str, &TensorInfo> =
        a.tensors().iter().map(|t| (t.name.as_str(), t)).collect();
    let only_a: Vec<&TensorInfo> = a
        .tensors()
        .iter()
        .filter(|t| !in_b.contains_key(t.name.as_str()))
        .collect();
    let only_b: Vec<&TensorInfo> = b
        .tensors()
        .iter()
        .filter(|t| !in_a.contains_key(t.name.as_str()))
        .collect();
    let mut changes: Vec<(String, Change)> = Vec::new();
    let mut identical = 0usize;
    for ta in a.tensors() {
        let Some(tb) = in_b.get(ta.name.as_str()) else {
            continue;
        };
        let change = if ta.dtype != tb.dtype {
            Some(Change::Dtype(ta.dtype, tb.dtype))
        } else if ta.shape != tb.shape {
            Some(Change::Shape(ta.shape.clone(), tb.shape.clone()))
        } else {
            compare(&a, &b, ta)?
        };
        match change {
            Some(c) => changes.push((ta.name.clone(), c)),
            None => identical += 1,
        }
    }
    // Largest change first: structural changes, then values by absolute, then relative size.
    let rank = |c: &Change| match c {
        Change::Dtype(..) => (0u8, f64::INFINITY, f64::INFINITY),
        Change::Shape(..) => (1, f64::INFINITY, f64::INFINITY),
        Change::Values { diff, numeric, .. } => {
            (if *numeric { 2 } else { 3 }, diff.max_abs, diff.max_rel)
        }
    };
    changes.sort_by(|x, y| {
        let (rx, ry) = (rank(&x.1), rank(&y.1));
        rx.0.cmp(&ry.0)
            .then(ry.1.total_cmp(&rx.1))
            .then(ry.2.total_cmp(&rx.2))
            .then(x.0.cmp(&y.0))
    });
    let same = only_a.is_empty() && only_b.is_empty() && changes.is_empty();
    let mut out = BufWriter::new(std::io::stdout().lock());
    if as_json {
        let tensor =
            |t: &&TensorInfo| json!({"name": t.name, "dtype": t.dtype.name(), "shape": t.shape});
        let changed: Vec<Value> = changes
            .iter()
            .map(|(name, c)| match c {
                Change::Dtype(x, y) => json!({"name": name, "change": "dtype", "a": x.name(), "b": y.name()}),
                Change::Shape(x, y) => json!({"name": name, "change": "shape", "a": x, "b": y}),
                Change::Values { count, diff, numeric } => {
                    let mut v = json!({"name": name, "change": "values", "elements": count, "differing": diff.differing});
                    if *numeric {
                        v["max_abs_diff"] = number(diff.max_abs);
                        v["max_rel_diff"] = number(diff.max_rel);
                    }
                    v
                }
            })
            .collect();
        let value = json!({
            "a": a.prefix().display().to_string(),
            "b": b.prefix().display().to_string(),
            "identical": same,
            "only_in_a": only_a.iter().map(tensor).collect::<Vec<_>>(),
            "only_in_b": only_b.iter().map(tensor).collect::<Vec<_>>(),
            "changed": changed,
            "unchanged": identical,
        });
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        for t in &only_a {
            writeln!(
                out,
                "only in A\t{}\t{}\t{}",
                t.name,
                t.dtype.name(),
                shape_text(&t.shape)
            )?;
        }
        for t in &only_b {
            writeln!(
                out,
                "only in B\t{}\t{}\t{}",
                t.name,
                t.dtype.name(),
                shape_text(&t.shape)
            )?;
        }
        for (name, c) in &changes {
            match c {
                Change::Dtype(x, y) => {
                    writeln!(out, "dtype\t{name}\t{} -> {}", x.name(), y.name())?
                }
                Change::Shape(x, y) => {
                    writeln!(out, "shape\t{name}\t{} -> {}", shape_text(x), shape_text(y))?
                }
                Change::Values {
                    count,
                    diff,
                    numeric: true,
                } => writeln!(
                    out,
                    "values\t{name}\tmax abs {:e}, max rel {:e} ({} of {count} elements differ)",
                    diff.max_abs, diff.max_rel, diff.differing
                )?,
                Change::Values {
                    count,
                    diff,
                    numeric: false,
                } => writeln!(
                    out,
                    "values\t{name}\t{} of {count} elements differ",
                    diff.differing
                )?,
            }
        }
        if same {
            writeln!(out, "identical: {identical} tensors, the same in both")?;
        } else {
            writeln!(
                out,
                "# {} only in A, {} only in B, {} changed, {identical} identical",
                only_a.len(),
                only_b.len(),
                changes.len()
            )?;
        }
    }
    out.flush().or_else(ignore_broken_pipe)?;
    Ok(if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Lists at most 20 lines, then how many more.
fn some_lines(lines: &[String]) -> String {
    let mut text: Vec<String> = lines.iter().take(20).map(|l| format!("  {l}")).collect();
    if lines.len() > 20 {
        text.push(format!("  ... and {} more", lines.len() - 20));
    }
    text.join("\n")
}

/// `ckpt average OUT IN...`.
pub fn average(out_prefix: &Path, inputs: &[PathBuf], write: &WriteArgs) -> Result<()> {
    let readers: Vec<Checkpoint> = inputs
        .iter()
        .map(|p| write.open(p))
        .collect::<Result<_>>()?;
    check_output(out_prefix, &readers.iter().collect::<Vec<_>>(), write.force)?;
    let Some(last) = readers.len().checked_sub(1) else {
        bail!("average needs at least two checkpoints");
    };
    // Every input must list the same tensors, with the same dtypes and shapes.
    let mut mismatches = Vec::new();
    let reference = &readers[last];
    let short = |i: usize| inputs[i].display().to_string();
    for (i, r) in readers.iter().enumerate().take(last) {
        for t in r.tensors() {
            match reference.info(&t.name) {
                Err(_) => mismatches.push(format!(
                    "{}: in {}, missing from {}",
                    t.name,
                    short(i),
                    short(last)
                )),
                Ok(u) if u.dtype != t.dtype || u.shape != t.shape => mismatches.push(format!(
                    "{}: {} {} in {}, {} {} in {}",
                    t.name,
                    t.dtype.name(),
                    shape_text(&t.shape),
                    short(i),
                    u.dtype.name(),
                    shape_text(&u.shape),
                    short(last)
                )),
                Ok(_) => {}
            }
        }
        for t in reference.tensors() {
            if !r.contains(&t.name) {
                mismatches.push(format!(
                    "{}: in {}, missing from {}",
                    t.name,
                    short(last),
                    short(i)
                ));
            }
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "the checkpoints disagree in {} places, so they cannot be averaged:\n{}",
            mismatches.len(),
            some_lines(&mismatches)
        );
    }
    let items: Vec<Item> = reference
        .tensors()
        .iter()
        .map(|t| Item {
            input: last,
            more_inputs: Vec::new(),
            name: t.name.clone(),
            out_name: t.name.clone(),
        })
        .collect();
    let averaged = reference
        .tensors()
        .iter()
        .filter(|t| numeric::float_type(t.dtype).is_some())
        .count();
    // The output buffer, reused from tensor to tensor (so not zeroed again for each): two
    // take turns, one filled while the writer writes the other.
    let mut out = Vec::new();
    let count = crate::copy::write(
        &readers,
        &items,
        out_prefix,
        write.layout(),
        |item, input, slice, put| {
            let dtype = readers[input].info(&item.name)?.dtype;
            let Some(float) = numeric::float_type(dtype) else {
                return put(Source::Unchanged);
            };
            // Whole tensors are read once: their checksums are computed in the same pass as
            // the mean (see `Checkpoint::read_deferred`).
            let (parts, checks): (Vec<Tensor<'_>>, Vec<Option<DeferredCheck>>) = readers
                .iter()
                .map(|r| match slice {
                    None => r.read_deferred(&item.name),
                    Some(s) => r.read_slice(&item.name, s).map(|t| (t, None)),
                })
                .collect::<ckpt_bundle::Result<Vec<_>>>()?
                .into_iter()
                .unzip();
            let bytes: Vec<&[u8]> = parts
                .iter()
                .map(|t| t.bytes().unwrap_or_default())
                .collect();
            // The output's crc32c too, chunk by chunk while it is in cache: the writer takes it.
            let crcs = numeric::mean_checked_into(float, &bytes, &mut out)
                .with_context(|| format!("averaging {:?}", item.name))?;
            for (check, crc) in checks.into_iter().zip(crcs.inputs) {
                finish_check(check, || crc)?;
            }
            let shape = parts.last().map(|t| t.shape().to_vec()).unwrap_or_default();
            // The writer takes `out` and writes it while the next tensor is averaged into the
            // buffer it gives back.
            put(Source::Buffer {
                dtype,
                shape,
                bytes: &mut out,
                crc32c: crcs.output,
            })
        },
    )?;
    eprintln!(
        "wrote {count} tensors to {}: {averaged} floating-point tensors averaged over {} \
         checkpoints, {} others taken from {}",
        out_prefix.display(),
        readers.len(),
        count.saturating_sub(averaged),
        inputs[last].display()
    );
    Ok(())
}

/// `ckpt cast IN OUT --to T [--match REGEX]`.
pub fn cast(
    path: &Path,
    out_prefix: &Path,
    to: CastTarget,
    pattern: Option<&str>,
    write: &WriteArgs,
) -> Result<()> {
    let regex = pattern
        .map(|p| Regex::new(p).with_context(|| format!("bad --match pattern {p:?}")))
        .transpose()?;
    let target = match to {
        CastTarget::Float32 => FloatType::F32,
        CastTarget::Float16 => FloatType::F16,
        CastTarget::Bfloat16 => FloatType::BF16,
    };
    let reader = write.open(path)?;
    check_output(out_prefix, &[&reader], write.force)?;
    if let (Some(re), Some(p)) = (&regex, pattern) {
        if !reader.tensors().iter().any(|t| re.is_match(&t.name)) {
            eprintln!("warning: --match {p:?} matches no tensor name");
        }
    }
    let selected = |t: &TensorInfo| {
        regex.as_ref().is_none_or(|r| r.is_match(&t.name))
            && matches!(
                t.dtype,
                DType::Float16 | DType::BFloat16 | DType::Float32 | DType::Float64
            )
            && t.dtype != target.dtype()
    };
    let chosen: std::collections::BTreeSet<String> = reader
        .tensors()
        .iter()
        .filter(|t| selected(t))
        .map(|t| t.name.clone())
        .collect();
    let items: Vec<Item> = reader
        .tensors()
        .iter()
        .map(|t| Item {
            input: 0,
            more_inputs: Vec::new(),
            name: t.name.clone(),
            out_name: t.name.clone(),
        })
        .collect();
    // The largest rounding error, and where.
    let mut worst: (f64, String) = (0.0, String::new());
    let mut overflowed: BTreeMap<String, u64> = BTreeMap::new();
    let readers = [reader];
    let count = crate::copy::write(
        &readers,
        &items,
        out_prefix,
        write.layout(),
        |item, input, slice, put| {
            if !chosen.contains(&item.name) {
                return put(Source::Unchanged);
            }
            let tensor = crate::copy::read_from(&readers, item, input, slice)?;
            let from = numeric::float_type(tensor.dtype())
                .ok_or_else(|| anyhow!("{:?} is not a float tensor", item.name))?;
            let (bytes, rounding) = numeric::cast(from, target, tensor.bytes().unwrap_or_default());
            if rounding.max_error > worst.0 || worst.1.is_empty() {
                worst = (rounding.max_error.max(worst.0), item.name.clone());
            }
            if rounding.overflowed > 0 {
                *overflowed.entry(item.name.clone()).or_default() += rounding.overflowed;
            }
            put(Source::Computed(Tensor::from_bytes(
                target.dtype(),
                tensor.shape().to_vec(),
                bytes,
            )?))
        },
    )?;
    for (name, n) in &overflowed {
        eprintln!(
            "warning: {n} values of {name:?} are too large for {} and became infinite",
            target.dtype().name()
        );
    }
    if chosen.is_empty() {
        eprintln!(
            "wrote {count} tensors to {}: no floating-point tensor to convert to {}",
            out_prefix.display(),
            target.dtype().name()
        );
    } else {
        eprintln!(
            "wrote {count} tensors to {}: {} converted to {}, max rounding error {:e} (in {:?})",
            out_prefix.display(),
            chosen.len(),
            target.dtype().name(),
            worst.0,
            worst.1
        );
    }
    Ok(())
}

/// The statistics of `show --stats` as text lines.
pub fn stats_text(s: &Stats) -> String {
    let nonfinite = s.nan + s.pos_inf + s.neg_inf;
    let mut text = String::new();
    if s.finite > 0 {
        text.push_str(&format!(
            "min:   {}\nmax:   {}\nmean:  {}\nstd:   {}\n",
            s.min,
            s.max,
            s.mean,
            s.std()
        ));
    } else {
        text.push_str("no finite elements\n");
    }
    text.push_str(&format!(
        "zeros: {} of {}\nnon-finite: {nonfinite} (nan {}, +inf {}, -inf {})\n",
        s.zeros, s.count, s.nan, s.pos_inf, s.neg_inf
    ));
    text
}

/// The statistics of `show --stats --json`.
pub fn stats_json(s: &Stats) -> Value {
    let finite = s.finite > 0;
    let opt = |x: f64| if finite { number(x) } else { Value::Null };
    json!({
        "count": s.count,
        "min": opt(s.min),
        "max": opt(s.max),
        "mean": opt(s.mean),
        "std": opt(s.std()),
        "zeros": s.zeros,
        "nan": s.nan,
        "pos_inf": s.pos_inf,
        "neg_inf": s.neg_inf,
    })
}

/// A tensor's values as nested JSON arrays.
pub fn values_json(tensor: &Tensor<'_>) -> Result<Value> {
    let flat: Vec<Value> = match (tensor.data(), tensor.dtype()) {
        (TensorData::Strings(s), _) => s
            .iter()
            .map(|b| match std::str::from_utf8(b) {
                Ok(text) => Value::String(text.to_string()),
                Err(_) => Value::Array(b.iter().map(|&x| Value::from(x)).collect()),
            })
            .collect(),
        (TensorData::Bytes(bytes), dtype) => match numeric::kind(dtype) {
            Some(kind) => {
                let n = match dtype {
                    DType::Complex64 | DType::Complex128 => tensor.num_elements() as usize * 2,
                    _ => tensor.num_elements() as usize,
                };
                let mut v = vec![0f64; n];
                numeric::decode(kind, bytes, &mut v);
                let one = |x: f64| match dtype {
                    DType::Bool => Value::Bool(x != 0.0),
                    _ if matches!(kind, numeric::Kind::Int { .. }) => {
                        // Exact for every int up to 2^53; 64-bit values are re-read exactly.
                        Value::from(x as i64)
                    }
                    _ => number(x),
                };
                match dtype {
                    DType::Complex64 | DType::Complex128 => v
                        .chunks_exact(2)
                        .map(|c| Value::Array(vec![number(c[0]), number(c[1])]))
                        .collect(),
                    DType::Int64 => bytes
                        .chunks_exact(8)
                        .map(|c| Value::from(i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))))
                        .collect(),
                    DType::UInt64 => bytes
                        .chunks_exact(8)
                        .map(|c| Value::from(u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))))
                        .collect(),
                    _ => v.into_iter().map(one).collect(),
                }
            }
            None => bail!("{} tensors have no JSON form", tensor.dtype().name()),
        },
    };
    Ok(nest(tensor.shape(), &flat))
}

/// Nests a row-major flat list into arrays of `shape`.
fn nest(shape: &[u64], flat: &[Value]) -> Value {
    match shape.split_first() {
        None => flat.first().cloned().unwrap_or(Value::Null),
        Some((&n, rest)) => {
            let inner: usize = rest.iter().product::<u64>() as usize;
            if n == 0 || inner == 0 {
                return Value::Array((0..n).map(|_| nest(rest, &[])).collect());
            }
            Value::Array(flat.chunks(inner).map(|c| nest(rest, c)).collect())
        }
    }
}
