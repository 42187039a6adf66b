//! Behaviour tests of `ckpt verify` on the fixtures and on damaged copies of them: flipped bits,
//! truncated, missing and garbage files, each named in the error.

#[allow(dead_code)]
mod common;

use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use common::{
    ckpt, copy_fixture, expected, fixture, flip_bit, truncate, Entry, CHECKPOINT_FIXTURES,
};

/// The tensor an index entry stores: its key, or for a slice (`\0name\0...`) the name.
fn entry_tensor(key: &[u8]) -> Result<String> {
    let name = match key.split_first() {
        Some((0, rest)) => rest.split(|&b| b == 0).next().unwrap_or_default(),
        _ => key,
    };
    Ok(String::from_utf8(name.to_vec())?)
}

#[test]
fn verify_passes_every_fixture_checkpoint() -> Result<()> {
    for name in CHECKPOINT_FIXTURES {
        for c in &expected(name)?.checkpoints {
            let run = ckpt([Path::new("verify"), &fixture(name).join(&c.prefix)])?.success()?;
            let want = format!(
                "ok: {} tensors, {} bytes verified in ",
                c.variables.len(),
                c.data_bytes()?
            );
            ensure!(
                run.stdout.starts_with(&want) && run.stdout.ends_with(" GB/s)\n"),
                "{name}/{}: `ckpt verify` printed {:?}, want {want:?}...",
                c.prefix,
                run.stdout
            );
        }
    }
    Ok(())
}

#[test]
fn a_flipped_bit_in_any_tensor_is_found_and_named() -> Result<()> {
    for name in ["dtypes", "partitioned", "sharded"] {
        let (_temp, dir) = copy_fixture(name)?;
        let expected = expected(name)?;
        let c = expected.default_checkpoint()?;
        for entry in c.entries.iter().filter(|e| e.size > 0) {
            let tensor = entry_tensor(&entry.key)?;
            let file = c
                .data_files
                .get(usize::try_from(entry.shard_id)?)
                .ok_or_else(|| anyhow!("{name}: no shard {}", entry.shard_id))?;
            let path = dir.join(file);
            for (at, bit) in [
                (entry.offset, 0),
                (entry.offset + entry.size / 2, 5),
                (entry.offset + entry.size - 1, 7),
            ] {
                flip_bit(&path, at, bit)?;
                let run = ckpt([Path::new("verify"), &dir])?.failure()?;
                // A string tensor's damage may show first in its lengths' checksum
                // ("corrupt string data ...: length checksum mismatch").
                run.stderr_has(&[file, &format!("tensor \"{tensor}\""), "checksum mismatch"])
                    .with_context(|| format!("{name}: flip at {at}"))?;
                // Reading the tensor meets the same damage.
                let run = ckpt([Path::new("show"), &dir, Path::new(&tensor)])?.failure()?;
                run.stderr_has(&[file, &format!("tensor \"{tensor}\""), "checksum mismatch"])
                    .with_context(|| format!("{name}: flip at {at}"))?;
                flip_bit(&path, at, bit)?;
            }
        }
        ckpt([Path::new("verify"), &dir])?.success()?;
    }
    Ok(())
}

#[test]
fn a_flipped_bit_in_an_index_data_block_is_refused() -> Result<()> {
    for name in ["dtypes", "many"] {
        let (_temp, dir) = copy_fixture(name)?;
        let expected = expected(name)?;
        let c = expected.default_checkpoint()?;
        ensure!(!c.index_blocks.is_empty());
        let index = dir.join(format!("{}.index", c.prefix));
        // The middle of the first, the middle and the last data block.
        let picks = [0, c.index_blocks.len() / 2, c.index_blocks.len() - 1];
        for &b in &picks {
            let (offset, size) = c.index_blocks[b];
            let at = offset + size / 2;
            flip_bit(&index, at, 2)?;
            for command in ["verify", "ls"] {
                let run = ckpt([Path::new(command), &dir])?.failure()?;
                run.stderr_has(&[
                    &format!("{}.index", c.prefix),
                    "checksum mismatch",
                    &format!("block at offset {offset}"),
                ])?;
            }
            flip_bit(&index, at, 2)?;
        }
    }
    Ok(())
}

/// Reads one varint64 of a table footer.
fn varint(bytes: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes
            .get(*at)
            .ok_or_else(|| anyhow!("footer ends in a varint"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("varint too long")
}

#[test]
fn every_single_bit_flip_in_an_index_is_refused_or_harmless() -> Result<()> {
    let (_temp, dir) = copy_fixture("dtypes")?;
    let index = dir.join("ckpt.index");
    let original = std::fs::read(&index)?;
    let len = original.len() as u64;
    // The footer's handles: the metaindex block (which TensorFlow never reads either), then
    // the index block. Each block is followed by a type byte and a crc32c.
    let mut at = original.len() - 48;
    let (_meta_offset, _meta_size) = (varint(&original, &mut at)?, varint(&original, &mut at)?);
    let (index_offset, index_size) = (varint(&original, &mut at)?, varint(&original, &mut at)?);
    let c = expected("dtypes")?.checkpoints.remove(0);
    let block = |offset: u64, size: u64| {
        let reason = format!("block at offset {offset} (size {size}): checksum mismatch");
        (offset, offset + size + 5, reason)
    };
    let mut guarded: Vec<(u64, u64, String)> = c
        .index_blocks
        .iter()
        .map(|&(offset, size)| block(offset, size))
        .collect();
    guarded.push(block(index_offset, index_size));
    guarded.push((len - 8, len, "not an sstable: bad magic number".to_string()));
    // What a flip outside the guarded bytes (in the footer's handles, say) may be refused for.
    let reasons = ["checksum mismatch", "past end of file", "bad magic number"];
    let mut refused = 0;
    for at in 0..len {
        let bit = (at % 8) as u8;
        flip_bit(&index, at, bit)?;
        let run = ckpt([Path::new("verify"), &dir])?;
        ensure!(
            !run.stderr.contains("panicked"),
            "flip at {at}: {}",
            run.stderr
        );
        let guard = guarded
            .iter()
            .find(|(start, end, _)| (*start..*end).contains(&at));
        if guard.is_some() || run.code != Some(0) {
            let run = run.failure().with_context(|| format!("flip at {at}"))?;
            run.stderr_has(&["ckpt.index"])?;
            match guard {
                Some((_, _, reason)) => run
                    .stderr_has(&[reason])
                    .with_context(|| format!("flip at {at}"))?,
                None => ensure!(
                    reasons.iter().any(|r| run.stderr.contains(r)),
                    "flip at {at}: refused for none of {reasons:?}: {}",
                    run.stderr
                ),
            }
            refused += 1;
        } else {
            // A harmless flip must not change what is read.
            ensure!(
                run.stdout.starts_with("ok: 40 tensors, 1284 bytes"),
                "flip at {at}: {}",
                run.stdout
            );
        }
        flip_bit(&index, at, bit)?;
    }
    ensure!(refused > 1100, "only {refused} of {len} flips refused");
    ckpt([Path::new("verify"), &dir])?.success()?;
    Ok(())
}

#[test]
fn truncated_data_file_names_the_first_tensor_past_the_end() -> Result<()> {
    let (_temp, dir) = copy_fixture("dtypes")?;
    let c = expected("dtypes")?.checkpoints.remove(0);
    let data = dir.join("ckpt.data-00000-of-00001");
    for len in [1000, 1, 0] {
        truncate(&data, len)?;
        let mut cut: Vec<&Entry> = c
            .entries
            .iter()
            .filter(|e| e.size > 0 && e.offset + e.size > len)
            .collect();
        cut.sort_by(|a, b| a.key.cmp(&b.key));
        let first = entry_tensor(&cut[0].key)?;
        let run = ckpt([Path::new("verify"), &dir])?.failure()?;
        run.stderr_has(&[
            "ckpt.data-00000-of-00001",
            &format!("tensor \"{first}\""),
            "lies outside the file",
            &format!("({len} bytes)"),
        ])?;
    }
    Ok(())
}

#[test]
fn truncated_empty_or_garbage_index_is_refused() -> Result<()> {
    let original = std::fs::read(fixture("dtypes").join("ckpt.index"))?;
    let (_temp, dir) = copy_fixture("dtypes")?;
    let index = dir.join("ckpt.index");
    let len = original.len() as u64;
    for cut in [0, 1, 10, 47, 48, 500, len - 49, len - 1] {
        std::fs::write(&index, &original)?;
        truncate(&index, cut)?;
        for command in ["verify", "ls"] {
            let run = ckpt([Path::new(command), &dir])?
                .failure()
                .with_context(|| format!("index cut to {cut} bytes"))?;
            run.stderr_has(&["ckpt.index"])?;
            // Under 48 bytes there is no footer; past that, its last 8 bytes are not the magic.
            let reason = if cut < 48 {
                format!("file too short for footer ({cut} bytes, need 48)")
            } else {
                "not an sstable: bad magic number".to_string()
            };
            run.stderr_has(&[&reason])
                .with_context(|| format!("index cut to {cut} bytes"))?;
        }
    }
    let run = {
        std::fs::write(&index, b"")?;
        ckpt([Path::new("verify"), &dir])?.failure()?
    };
    run.stderr_has(&["ckpt.index", "too short"])?;

    // Garbage of the right length; then garbage ending in the right magic number.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let garbage: Vec<u8> = (0..original.len())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&index, &garbage)?;
    let run = ckpt([Path::new("verify"), &dir])?.failure()?;
    run.stderr_has(&["ckpt.index", "bad magic"])?;
    let mut with_magic = garbage;
    let magic_at = with_magic.len() - 8;
    with_magic[magic_at..].copy_from_slice(&original[original.len() - 8..]);
    std::fs::write(&index, &with_magic)?;
    let run = ckpt([Path::new("verify"), &dir])?.failure()?;
    run.stderr_has(&["ckpt.index"])?;
    // The footer's handles, read from garbage, point nowhere in the file.
    run.stderr_has(&["block handle", "past end of file"])?;
    Ok(())
}

#[test]
fn garbage_data_file_is_a_checksum_error() -> Result<()> {
    let (_temp, dir) = copy_fixture("tf1_saver")?;
    let data = dir.join("model.ckpt-4000.data-00000-of-00001");
    let len = std::fs::metadata(&data)?.len();
    std::fs::write(&data, vec![0x5a; len as usize])?;
    let run = ckpt([Path::new("verify"), &dir])?.failure()?;
    // The first tensor in name order.
    run.stderr_has(&[
        "model.ckpt-4000.data-00000-of-00001",
        "tensor \"counter\"",
        "checksum mismatch",
    ])?;
    // The other checkpoints of the directory are untouched.
    ckpt([Path::new("verify"), &dir.join("model.ckpt-3000")])?.success()?;
    Ok(())
}

#[test]
fn a_missing_shard_is_named_with_a_tensor_that_needs_it() -> Result<()> {
    let c = expected("sharded")?.checkpoints.remove(0);
    for (shard, file) in c.data_files.iter().enumerate() {
        let (_temp, dir) = copy_fixture("sharded")?;
        std::fs::remove_file(dir.join(file))?;
        let needs: Vec<String> = c
            .entries
            .iter()
            .filter(|e| e.shard_id == shard as u64)
            .map(|e| entry_tensor(&e.key))
            .collect::<Result<_>>()?;
        let run = ckpt([Path::new("verify"), &dir])?.failure()?;
        run.stderr_has(&[file, "missing data file", &format!("shard {shard} of 2")])?;
        ensure!(
            needs
                .iter()
                .any(|t| run.stderr.contains(&format!("tensor \"{t}\""))),
            "stderr should name one of {needs:?}: {}",
            run.stderr
        );
        // The index is enough to list everything, with a warning naming the missing file.
        let run = ckpt([Path::new("ls"), &dir])?.success()?;
        ensure!(run.stdout == c.listing(), "ls printed {}", run.stdout);
        run.stderr_has(&[file, "is missing: the tensors stored in it cannot be read"])?;
    }
    Ok(())
}

#[test]
fn a_missing_index_is_reported_not_guessed() -> Result<()> {
    let (_temp, dir) = copy_fixture("dtypes")?;
    std::fs::remove_file(dir.join("ckpt.index"))?;
    let index = dir.join("ckpt.index").display().to_string();
    for (path, reason) in [
        (
            dir.join("ckpt"),
            format!("neither {index} nor a directory of that name exists"),
        ),
        (
            dir.join("ckpt.data-00000-of-00001"),
            format!("{index} does not exist"),
        ),
        (
            dir.clone(),
            "directory has no `checkpoint` state file and no .index file".to_string(),
        ),
    ] {
        let run = ckpt([Path::new("verify"), &path])?.failure()?;
        run.stderr_has(&["no checkpoint at", &path.display().to_string()])?;
        if path != dir {
            run.stderr_has(&[&index])?;
        }
        run.stderr_has(&[&format!("no checkpoint at {}: {reason}", path.display())])?;
    }
    Ok(())
}
