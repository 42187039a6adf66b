//! `ckpt-run` on a SavedModel directory: run a signature as `saved_model_cli run` does, or
//! describe the tag sets and signatures as `saved_model_cli show --all` does.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ckpt_graph::ckpt_proto::{tensor_info::Encoding, DataType, SignatureDef, TensorInfo};
use ckpt_graph::{SavedModel, DEFAULT_SIGNATURE, SERVE_TAG};
use ckpt_runtime::{LoadedSavedModel, Value};

use crate::run::{bench, emit, read_feeds, session_options, RunArgs};

/// Whether `path` names a SavedModel (a directory with `saved_model.pb` or
/// `saved_model.pbtxt`, or one of those files).
pub fn is_saved_model(path: &Path) -> bool {
    SavedModel::find(path).is_some()
}

/// Runs `args` against the SavedModel at `path` (`args.path`).
pub fn run(args: &RunArgs, path: &Path) -> Result<()> {
    if let Some(checkpoint) = &args.checkpoint {
        bail!(
            "--checkpoint {}: a SavedModel's variables are the ones in its variables/ directory",
            checkpoint.display()
        );
    }
    if args.describe {
        let saved = SavedModel::load(path)?;
        print!("{}", describe(&saved));
        return Ok(());
    }
    let tags: Vec<&str> = if args.tags.is_empty() {
        vec![SERVE_TAG]
    } else {
        args.tags.iter().map(String::as_str).collect()
    };
    let key = args.signature.as_deref().unwrap_or(DEFAULT_SIGNATURE);
    let saved = LoadedSavedModel::load(path, &tags)?;
    let feeds = read_feeds(args)?;
    let inputs: Vec<&str> = feeds.iter().map(|(n, _)| n.as_str()).collect();
    let outputs: Vec<&str> = args.fetches.iter().map(String::as_str).collect();
    let options = session_options(args);
    let session = saved
        .session(key, &inputs, &outputs, options)
        .with_context(|| {
            format!(
                "{} (tag set {{{}}})",
                saved.file().display(),
                saved.tags().join(", ")
            )
        })?;
    let fed: Vec<(&str, Value)> = feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    if let Some(runs) = args.bench {
        return bench(&session, &fed, runs.max(1), args.profile);
    }
    let values = session.run(&fed)?;
    let names: Vec<&str> = session.fetch_names().iter().map(String::as_str).collect();
    emit(&names, &values, args.out.as_deref())
}

/// The tag sets and signatures of every meta graph, in `saved_model_cli show --all`'s words:
/// meta graphs sorted by their tags, signatures by key, inputs and outputs by key. (It also
/// prints each meta graph's op set and, for TF2, the concrete functions, which this omits.)
pub fn describe(saved: &SavedModel) -> String {
    let mut metas: Vec<_> = saved.proto().meta_graphs.iter().collect();
    let tags = |m: &ckpt_graph::ckpt_proto::MetaGraphDef| {
        m.meta_info_def
            .as_ref()
            .map(|i| i.tags.clone())
            .unwrap_or_default()
    };
    metas.sort_by_key(|m| tags(m));
    let mut out = String::new();
    for meta in metas {
        let _ = writeln!(
            out,
            "\nMetaGraphDef with tag-set: '{}' contains the following SignatureDefs:",
            tags(meta).join(", ")
        );
        for (key, signature) in &meta.signature_def {
            let _ = writeln!(out, "\nsignature_def['{key}']:");
            describe_signature(&mut out, signature);
        }
    }
    out
}

fn describe_signature(out: &mut String, signature: &SignatureDef) {
    let _ = writeln!(
        out,
        "  The given SavedModel SignatureDef contains the following input(s):"
    );
    for (key, info) in &signature.inputs {
        let _ = writeln!(out, "    inputs['{key}'] tensor_info:");
        describe_tensor(out, info);
    }
    let _ = writeln!(
        out,
        "  The given SavedModel SignatureDef contains the following output(s):"
    );
    for (key, info) in &signature.outputs {
        let _ = writeln!(out, "    outputs['{key}'] tensor_info:");
        describe_tensor(out, info);
    }
    let _ = writeln!(out, "  Method name is: {}", signature.method_name);
}

fn describe_tensor(out: &mut String, info: &TensorInfo) {
    let dtype = DataType::try_from(info.dtype).map_or_else(
        |_| format!("dtype {}", info.dtype),
        |d| d.as_str_name().to_owned(),
    );
    let shape = match &info.tensor_shape {
        Some(s) if s.unknown_rank => "unknown_rank".to_owned(),
        Some(s) => format!(
            "({})",
            s.dim
                .iter()
                .map(|d| d.size.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "()".to_owned(),
    };
    let _ = writeln!(out, "        dtype: {dtype}");
    let _ = writeln!(out, "        shape: {shape}");
    match &info.encoding {
        Some(Encoding::Name(name)) => {
            let _ = writeln!(out, "        name: {name}");
        }
        Some(Encoding::CooSparse(coo)) => {
            let _ = writeln!(
                out,
                "        sparse: values {}, indices {}, dense_shape {}",
                coo.values_tensor_name, coo.indices_tensor_name, coo.dense_shape_tensor_name
            );
        }
        Some(Encoding::CompositeTensor(c)) => {
            let _ = writeln!(
                out,
                "        composite tensor of {} components",
                c.components.len()
            );
        }
        None => {
            let _ = writeln!(out, "        name: ");
        }
    }
}
