//! Drift guard for `src/generated/`: compiles `proto/` with protox, runs prost-build over the
//! result and checks that the committed Rust code is exactly what comes out, and that the
//! committed `descriptor.bin` (the encoded `FileDescriptorSet` the text-format parser reads)
//! is exactly the set protox compiles.
//!
//! After changing a `.proto` file or the configuration below, rewrite the committed code with
//!
//! ```text
//! CKPT_REGENERATE_PROTOS=1 cargo test -p ckpt-proto --test generated
//! ```

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;

/// The command that rewrites `src/generated/`; printed by a failing check.
const REGENERATE: &str = "CKPT_REGENERATE_PROTOS=1 cargo test -p ckpt-proto --test generated";

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The committed descriptor set, beside the generated code.
const DESCRIPTOR_FILE: &str = "descriptor.bin";

#[test]
fn generated_code_matches_the_proto_files() -> Result<()> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed_dir = crate_dir.join("src").join("generated");
    let Generated {
        code: fresh,
        descriptor,
    } = generate(&crate_dir.join("proto"))?;

    if std::env::var_os("CKPT_REGENERATE_PROTOS").is_some_and(|v| v == "1") {
        fs::create_dir_all(&committed_dir)?;
        for stale in rust_files(&committed_dir)? {
            fs::remove_file(stale)?;
        }
        for (name, code) in &fresh {
            fs::write(committed_dir.join(name), code)?;
        }
        fs::write(committed_dir.join(DESCRIPTOR_FILE), &descriptor)?;
        return Ok(());
    }

    let committed_names: Vec<String> = rust_files(&committed_dir)?
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    let fresh_names: Vec<&String> = fresh.iter().map(|(name, _)| name).collect();
    assert_eq!(
        committed_names.iter().collect::<Vec<_>>(),
        fresh_names,
        "src/generated/ holds other files than the .proto files produce; run `{REGENERATE}`"
    );
    for (name, code) in &fresh {
        let committed = fs::read_to_string(committed_dir.join(name))?;
        assert!(
            committed == *code,
            "src/generated/{name} differs from what proto/ produces; run `{REGENERATE}`"
        );
    }
    let committed = fs::read(committed_dir.join(DESCRIPTOR_FILE))?;
    assert!(
        committed == descriptor,
        "src/generated/{DESCRIPTOR_FILE} differs from what proto/ produces; run `{REGENERATE}`"
    );
    Ok(())
}

/// Every `.rs` file directly in `dir`, sorted; none if `dir` does not exist.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if dir.is_dir() {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Every `.proto` file under `root`, as paths relative to it with `/` separators, sorted.
fn proto_files(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "proto") {
                let relative = path.strip_prefix(root)?;
                let parts: Vec<&str> = relative
                    .components()
                    .filter_map(|c| c.as_os_str().to_str())
                    .collect();
                found.push(parts.join("/"));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// What `proto/` compiles to.
struct Generated {
    /// The Rust code, one `(file name, contents)` per protobuf package, sorted by name.
    code: Vec<(String, String)>,
    /// The encoded `FileDescriptorSet` of every file (imports included, source info left out).
    descriptor: Vec<u8>,
}

fn generate(proto_root: &Path) -> Result<Generated> {
    let files = proto_files(proto_root)?;
    let mut fds = protox::Compiler::new([proto_root])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(&files)?
        .file_descriptor_set();

    // The text-format parser needs every message, the well-known types included, but no
    // comments or spans.
    let mut descriptor_set = fds.clone();
    for file in &mut descriptor_set.file {
        file.source_code_info = None;
    }
    let descriptor = descriptor_set.encode_to_vec();

    // The well-known types come from prost-types; only TensorFlow's own files become code.
    fds.file.retain(|f| f.package() != "google.protobuf");

    let out = tempfile::tempdir()?;
    prost_build::Config::new()
        .out_dir(out.path())
        // Sorted maps encode deterministically, and downstream code relies on their order.
        .btree_map(["."])
        // Keeps `attr_value::Value` small (40 bytes rather than 224, the size of an inline
        // `ListValue`): a graph holds one per node attribute, millions in a large graph.
        .boxed(".tensorflow.AttrValue.value.tensor")
        .boxed(".tensorflow.AttrValue.value.list")
        .boxed(".tensorflow.AttrValue.value.func")
        // `prost::Name` on every message: `text::parse` finds a type's descriptor by its name.
        .enable_type_names()
        .type_name_domain(["."], "type.googleapis.com")
        .compile_fds(fds)?;

    let mut generated = Vec::new();
    for path in rust_files(out.path())? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("generated file name is not UTF-8")?
            .to_owned();
        let code = fs::read_to_string(&path)?;
        generated.push((name, format!("{}\n{code}", header())));
    }
    Ok(Generated {
        code: generated,
        descriptor,
    })
}

/// The first line of every generated file.
fn header() -> String {
    format!(
        "// @generated from crates/proto/proto/ by protox and prost-build; do not edit. \
         Regenerate with `{REGENERATE}`."
    )
}
