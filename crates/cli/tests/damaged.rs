//! Behaviour tests that cut across subcommands: hostile index entries, written with the
//! project's own table writer, refused by every command that reads them; destinations that
//! cannot be written, named by every command that writes.

#[allow(dead_code)]
mod common;

use std::path::Path;

use anyhow::{anyhow, ensure, Context, Result};
use common::npz::{f32_npy, write_npz};
use common::{ckpt, copy_fixture, file_names, fixture};

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The key/value pairs of an `.index` file.
fn index_entries(path: &Path) -> Result<Entries> {
    let bytes = std::fs::read(path)?;
    let table = ckpt_table::Table::open(&bytes)?;
    table
        .iter()
        .map(|e| e.map(|(k, v)| (k, v.into_owned())).map_err(Into::into))
        .collect()
}

fn write_index(path: &Path, entries: &Entries) -> Result<()> {
    let mut builder =
        ckpt_table::TableBuilder::new(Vec::new(), ckpt_table::TableOptions::default());
    for (key, value) in entries {
        builder.add(key, value)?;
    }
    std::fs::write(path, builder.finish()?)?;
    Ok(())
}

fn decode_entry(value: &[u8]) -> Result<ckpt_proto::BundleEntryProto> {
    use ckpt_proto::Message;
    Ok(ckpt_proto::BundleEntryProto::decode(value)?)
}

fn encode<M: ckpt_proto::Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

#[test]
fn hostile_index_entries_are_refused_without_panic() -> Result<()> {
    use ckpt_proto::tensor_shape_proto::Dim;
    use ckpt_proto::{BundleHeaderProto, TensorShapeProto};

    let (_temp, dir) = copy_fixture("tf1_saver")?;
    let index = dir.join("model.ckpt-4000.index");
    let original = index_entries(&index)?;
    let header = original
        .iter()
        .find(|(k, _)| k.is_empty())
        .map(|(_, v)| BundleHeaderProto::decode(&v[..]))
        .transpose()?
        .ok_or_else(|| anyhow!("no header entry"))?;
    let kernel = original
        .iter()
        .find(|(k, _)| k == b"dense/kernel")
        .map(|(_, v)| decode_entry(v))
        .transpose()?
        .ok_or_else(|| anyhow!("no dense/kernel entry"))?;
    let dims = |sizes: &[i64]| {
        Some(TensorShapeProto {
            dim: sizes
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        })
    };

    use ckpt_proto::Message;
    type Mutation = Box<dyn Fn(&mut ckpt_proto::BundleEntryProto)>;
    // Changes to dense/kernel's entry, and what the error must say.
    let entry_cases: Vec<(&str, Mutation, &[&str])> = vec![
        (
            "shard id out of range",
            Box::new(|e| e.shard_id = 7),
            &[
                "shard",
                "model.ckpt-4000.index",
                "bad index entry: shard id 7 out of range: the header declares 1 shards",
            ],
        ),
        (
            "negative shard id",
            Box::new(|e| e.shard_id = -1),
            &[
                "shard",
                "model.ckpt-4000.index",
                "bad index entry: shard id -1 out of range",
            ],
        ),
        // Only the data file's length shows this one wrong.
        (
            "offset past the end",
            Box::new(|e| e.offset = 1 << 40),
            &[
                "model.ckpt-4000.data-00000-of-00001",
                "data [1099511627776, 1099511627776+48) lies outside the file (129 bytes)",
            ],
        ),
        (
            "offset + size overflows",
            Box::new(|e| {
                e.offset = i64::MAX - 4;
                e.size = 48
            }),
            &[
                "model.ckpt-4000.index",
                "bad index entry: offset 9223372036854775803 + size 48 overflows",
            ],
        ),
        (
            "negative offset",
            Box::new(|e| e.offset = -16),
            &[
                "model.ckpt-4000.index",
                "bad index entry: negative offset -16",
            ],
        ),
        (
            "negative size",
            Box::new(|e| e.size = -48),
            &["model.ckpt-4000.index", "bad index entry: ", "size -48"],
        ),
        (
            "size disagrees with shape",
            Box::new(|e| e.size = 44),
            &[
                "model.ckpt-4000.index",
                "bad index entry: stored size 44 bytes, but float32 [4, 3] takes 48 bytes",
            ],
        ),
        (
            "element count overflows",
            Box::new(move |e| e.shape = dims(&[1 << 32, 1 << 32, 1 << 20])),
            &[
                "model.ckpt-4000.index",
                "bad index entry: element count of shape [4294967296, 4294967296, 1048576] overflows",
            ],
        ),
        (
            "negative dimension",
            Box::new(move |e| e.shape = dims(&[-4, -3])),
            &[
                "model.ckpt-4000.index",
                "bad index entry: dimension 0 has size -4",
            ],
        ),
        (
            "unknown dtype",
            Box::new(|e| e.dtype = 999),
            &["model.ckpt-4000.index", "bad index entry: unknown dtype 999"],
        ),
        (
            "invalid dtype",
            Box::new(|e| e.dtype = 0),
            &[
                "model.ckpt-4000.index",
                "bad index entry: ",
                "(0) cannot be read from a bundle",
            ],
        ),
        (
            "wrong checksum",
            Box::new(|e| e.crc32c ^= 1),
            &[
                "checksum mismatch",
                "model.ckpt-4000.data-00000-of-00001",
                "checksum mismatch at offset 16",
            ],
        ),
    ];
    for (what, mutate, mentions) in &entry_cases {
        let mut entry = kernel.clone();
        mutate(&mut entry);
        let entries: Entries = original
            .iter()
            .map(|(k, v)| {
                let v = if k == b"dense/kernel" {
                    encode(&entry)
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        write_index(&index, &entries)?;
        for command in ["verify", "export"] {
            let mut args = vec![Path::new(command), &dir];
            let out = dir.join("out.npz");
            if command == "export" {
                args.push(&out);
            }
            let run = ckpt(args)?.failure().with_context(|| what.to_string())?;
            run.stderr_has(&["model.ckpt-4000", "\"dense/kernel\""])
                .with_context(|| what.to_string())?;
            run.stderr_has(mentions).with_context(|| what.to_string())?;
            ensure!(!out.exists(), "{what}: export left {}", out.display());
        }
    }

    // Changes to the header entry.
    let header_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "two billion shards",
            encode(&BundleHeaderProto {
                num_shards: 2_000_000_000,
                ..header.clone()
            }),
            "bad bundle header: num_shards is 2000000000; expected 1 to 1000000",
        ),
        (
            "no shards",
            encode(&BundleHeaderProto {
                num_shards: 0,
                ..header.clone()
            }),
            "bad bundle header: num_shards is 0; expected 1 to 1000000",
        ),
        (
            "negative shards",
            encode(&BundleHeaderProto {
                num_shards: -3,
                ..header.clone()
            }),
            "bad bundle header: num_shards is -3; expected 1 to 1000000",
        ),
        (
            "unknown endianness",
            encode(&BundleHeaderProto {
                endianness: 9,
                ..header.clone()
            }),
            "bad bundle header: unknown endianness 9",
        ),
        (
            "garbage",
            b"\xff\xff\xff\xff\x0f".to_vec(),
            "bad bundle header: not a BundleHeaderProto",
        ),
    ];
    for (what, value, reason) in &header_cases {
        let entries: Entries = original
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if k.is_empty() {
                        value.clone()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        write_index(&index, &entries)?;
        for command in ["verify", "ls"] {
            let run = ckpt([Path::new(command), &dir])?
                .failure()
                .with_context(|| what.to_string())?;
            run.stderr_has(&["model.ckpt-4000.index"])
                .with_context(|| what.to_string())?;
            run.stderr_has(&[reason])
                .with_context(|| what.to_string())?;
        }
    }

    // No header entry at all; garbage where an entry proto should be.
    let headless: Entries = original
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .cloned()
        .collect();
    write_index(&index, &headless)?;
    let run = ckpt([Path::new("ls"), &dir])?.failure()?;
    run.stderr_has(&["model.ckpt-4000.index"])?;
    run.stderr_has(&[
        "bad bundle header",
        "first key is counter instead of the empty header key",
    ])?;
    let garbled: Entries = original
        .iter()
        .map(|(k, v)| {
            let v = if k == b"dense/kernel" {
                b"\x0a\xff\xff\xff\xff\xff".to_vec()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    write_index(&index, &garbled)?;
    let run = ckpt([Path::new("ls"), &dir])?.failure()?;
    run.stderr_has(&["model.ckpt-4000.index", "\"dense/kernel\""])?;
    run.stderr_has(&["bad index entry: not a BundleEntryProto"])?;

    // Put the original back: the copy is whole again.
    write_index(&index, &original)?;
    ckpt([Path::new("verify"), &dir])?.success()?;
    Ok(())
}

#[test]
fn unwritable_destinations_are_errors_naming_them() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let blocker = temp.path().join("not_a_dir");
    std::fs::write(&blocker, b"a file where a directory should be")?;

    let out = blocker.join("out.npz");
    let run = ckpt([Path::new("export"), &fixture("tf1_saver"), &out])?.failure()?;
    run.stderr_has(&["not_a_dir"])?;
    // The missing directory is created; a file in its way is named.
    run.stderr_has(&[&format!("cannot create {}", blocker.display())])?;

    let input = temp.path().join("in.npz");
    write_npz(&input, &[("w", &f32_npy(vec![1], &[1.0]))])?;
    let prefix = blocker.join("model.ckpt");
    let run = ckpt([Path::new("import"), &input, &prefix])?.failure()?;
    run.stderr_has(&["not_a_dir"])?;
    run.stderr_has(&[&format!("cannot write checkpoint {}", prefix.display())])?;

    let run = ckpt([Path::new("merge"), &prefix, &fixture("tf1_saver")])?.failure()?;
    run.stderr_has(&["not_a_dir"])?;
    // merge adds no words of its own: the path, then the operating system's reason.
    run.stderr_has(&[&format!("{}: ", blocker.display())])?;
    let run = ckpt([
        Path::new("drop"),
        &fixture("tf1_saver"),
        &prefix,
        Path::new("--match"),
        Path::new("^counter$"),
    ])?
    .failure()?;
    run.stderr_has(&["not_a_dir"])?;
    run.stderr_has(&[&format!("cannot write checkpoint {}", prefix.display())])?;
    assert_eq!(
        file_names(temp.path())?,
        ["in.npz".to_string(), "not_a_dir".to_string()]
    );
    Ok(())
}
