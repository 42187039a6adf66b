//! `ckpt-run` (also `ckpt run`): restore a graph and its variables, feed it, fetch results.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use ckpt_bundle::BundleReader;
use ckpt_graph::Model;
use ckpt_runtime::{Session, SessionOptions, TensorBuf, Value};
use clap::Parser;

use crate::convert::{npy_to_value, value_to_npy};
use crate::npy::{read_npy, write_npy};

/// Run a TensorFlow graph restored from a checkpoint, without TensorFlow.
///
/// Loads PATH's `.meta` graph (or a frozen `.pb`), restores its variables from the checkpoint,
/// feeds the placeholders and prints or saves the fetched tensors.
///
/// Example: ckpt-run model.ckpt --feed x=img.npy --feed keep_prob=1.0 --fetch logits,pred --out results/
#[derive(Debug, Parser)]
#[command(name = "ckpt-run", version, about, long_about)]
pub struct RunArgs {
    /// A checkpoint prefix (its `.meta` holds the graph), a directory with a `checkpoint` state
    /// file, any of the checkpoint's files, or a frozen GraphDef `.pb`.
    pub path: PathBuf,
    /// Feed a placeholder: NAME=FILE.npy, NAME=NUMBER or NAME=true|false. Repeatable. The value is
    /// cast to the placeholder's dtype and checked against its static shape, as feed_dict does.
    #[arg(long = "feed", value_name = "NAME=VALUE")]
    pub feeds: Vec<String>,
    /// Tensors to compute: NAME or NAME:K, comma-separated or repeated.
    #[arg(long = "fetch", value_name = "NAME[,NAME...]", value_delimiter = ',')]
    pub fetches: Vec<String>,
    /// Write each fetched tensor to DIR/NAME.npy (folders for `/` in names; `name:1` becomes `name_1.npy`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Worker threads for the kernels (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Turn recognized dropout subgraphs into identities, so training graphs with a fixed rate
    /// run deterministically.
    #[arg(long)]
    pub inference: bool,
    /// Time the fetch: one warm-up run, then N runs; prints mean latency and samples per second.
    #[arg(long, value_name = "N")]
    pub bench: Option<usize>,
    /// List the graph's placeholders (dtype, shape), likely outputs and signatures, then exit.
    #[arg(long)]
    pub describe: bool,
    /// Stop a run with an error when one while loop's body has run N times (a loop that never
    /// ends fails instead of hanging).
    #[arg(long, value_name = "N", default_value_t = SessionOptions::DEFAULT_MAX_ITERATIONS)]
    pub max_iterations: u64,
}

/// The graph and checkpoint a PATH names.
fn load(path: &Path) -> Result<(Model, Option<BundleReader>)> {
    let is_frozen = path.is_file() && path.extension().is_some_and(|e| e == "pb");
    if is_frozen {
        let model =
            Model::load(path).with_context(|| format!("cannot load graph {}", path.display()))?;
        return Ok((model, None));
    }
    let bundle = BundleReader::open(path)
        .with_context(|| format!("cannot open checkpoint {}", path.display()))?;
    let mut meta = bundle.prefix().as_os_str().to_owned();
    meta.push(".meta");
    let meta = PathBuf::from(meta);
    if !meta.is_file() {
        bail!(
            "{}: no graph beside the checkpoint (expected {}); ckpt-run needs the .meta that tf.train.Saver writes, or a frozen .pb",
            path.display(),
            meta.display()
        );
    }
    let model =
        Model::load(&meta).with_context(|| format!("cannot load graph {}", meta.display()))?;
    Ok((model, Some(bundle)))
}

pub fn run(args: &RunArgs) -> Result<()> {
    let (model, bundle) = load(&args.path)?;
    if args.describe {
        return describe(&model);
    }
    if args.fetches.is_empty() {
        bail!("nothing to fetch: give --fetch NAME (try --describe to see the graph's likely outputs)");
    }
    let feeds = args
        .feeds
        .iter()
        .map(|f| parse_feed(f))
        .collect::<Result<Vec<_>>>()?;
    let feed_names: Vec<&str> = feeds.iter().map(|(n, _)| n.as_str()).collect();
    let fetch_names: Vec<&str> = args.fetches.iter().map(String::as_str).collect();
    let options = SessionOptions {
        threads: args.threads,
        inference: args.inference,
        max_iterations: args.max_iterations,
    };
    let session = Session::new(&model, bundle.as_ref(), &fetch_names, &feed_names, options)?;
    let feed_refs: Vec<(&str, Value)> =
        feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let outputs = session.run(&feed_refs)?;

    if let Some(runs) = args.bench {
        bench(&session, &feed_refs, runs.max(1))?;
    }
    match &args.out {
        Some(dir) => {
            for (name, value) in fetch_names.iter().zip(&outputs) {
                let file = output_path(dir, name);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create {}", parent.display()))?;
                }
                let mut bytes = Vec::new();
                write_npy(&mut bytes, &value_to_npy(name, value)?)?;
                std::fs::write(&file, bytes)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                eprintln!("wrote {}", file.display());
            }
        }
        None => {
            for (name, value) in fetch_names.iter().zip(&outputs) {
                let tensor = value.to_tensor()?;
                println!(
                    "{name}: {} {}",
                    tensor.dtype().name(),
                    crate::summary::shape_text(tensor.shape())
                );
                println!("{}", crate::summary::summarize(&tensor));
            }
        }
    }
    Ok(())
}

fn bench(session: &Session, feeds: &[(&str, Value)], runs: usize) -> Result<()> {
    let batch = feeds
        .iter()
        .filter_map(|(_, v)| v.shape().first().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        session.run(feeds)?;
        samples.push(started.elapsed().as_secs_f64());
    }
    let mean = samples.iter().sum::<f64>() / runs as f64;
    samples.sort_by(f64::total_cmp);
    let median = samples[runs / 2];
    eprintln!(
        "bench: {runs} runs after warm-up, batch {batch}: mean {:.3} ms, median {:.3} ms, {:.0} samples/s",
        mean * 1e3,
        median * 1e3,
        batch as f64 / mean
    );
    Ok(())
}

fn describe(model: &Model) -> Result<()> {
    println!("placeholders:");
    for id in model.placeholders() {
        let node = model.graph.node(id);
        let dtype = node
            .attr_dtype("dtype")
            .ok()
            .and_then(|d| ckpt_bundle::DType::from_proto(d as i32))
            .map_or("?", |d| d.name());
        let shape = match node.attr_shape("shape") {
            Ok(Some(dims)) => format!(
                "[{}]",
                dims.iter()
                    .map(|d| if *d < 0 {
                        "?".to_string()
                    } else {
                        d.to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            _ => "unknown".to_string(),
        };
        let default = if node.op == "PlaceholderWithDefault" {
            " (has a default)"
        } else {
            ""
        };
        println!("  {}\t{dtype}\t{shape}{default}", node.name);
    }
    println!("likely outputs:");
    for id in model.likely_outputs() {
        let node = model.graph.node(id);
        println!("  {}\t{}", node.name, node.op);
    }
    if !model.signatures.is_empty() {
        println!("signatures:");
        for (key, signature) in &model.signatures {
            println!("  {key} ({})", signature.method_name);
            for (kind, map) in [("input", &signature.inputs), ("output", &signature.outputs)] {
                for (name, info) in map {
                    if let Some(ckpt_proto::tensor_info::Encoding::Name(tensor)) = &info.encoding {
                        println!("    {kind} {name}: {tensor}");
                    }
                }
            }
        }
    }
    Ok(())
}

/// `DIR/scope/name.npy`, with `:k` (k > 0) turned into `_k`.
fn output_path(dir: &Path, name: &str) -> PathBuf {
    let stem = match name.rsplit_once(':') {
        Some((base, "0")) => base.to_string(),
        Some((base, k)) if k.chars().all(|c| c.is_ascii_digit()) => format!("{base}_{k}"),
        _ => name.to_string(),
    };
    let mut path = dir.to_path_buf();
    for part in stem
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
    {
        path.push(part);
    }
    path.set_extension("npy");
    path
}

/// Parses `NAME=FILE.npy`, `NAME=NUMBER` or `NAME=true|false`.
fn parse_feed(spec: &str) -> Result<(String, Value)> {
    let (name, value) = spec.split_once('=').ok_or_else(|| {
        anyhow!("--feed {spec:?}: expected NAME=FILE.npy, NAME=NUMBER or NAME=true|false")
    })?;
    if name.is_empty() {
        bail!("--feed {spec:?}: empty placeholder name");
    }
    let parsed = match value {
        "true" | "True" => Value::Bool(TensorBuf::new(vec![], vec![true])?),
        "false" | "False" => Value::Bool(TensorBuf::new(vec![], vec![false])?),
        _ if value.ends_with(".npy") || Path::new(value).is_file() => {
            let bytes = std::fs::read(value)
                .with_context(|| format!("--feed {name}: cannot read {value}"))?;
            npy_to_value(name, &read_npy(&bytes, value)?)
                .with_context(|| format!("--feed {name}"))?
        }
        _ => {
            if let Ok(int) = value.parse::<i64>() {
                Value::I64(TensorBuf::new(vec![], vec![int])?)
            } else if let Ok(float) = value.parse::<f64>() {
                Value::F64(TensorBuf::new(vec![], vec![float])?)
            } else {
                bail!("--feed {name}={value}: not a number, true/false, or an existing .npy file")
            }
        }
    };
    Ok((name.to_string(), parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_nest_and_number() {
        let dir = Path::new("out");
        assert_eq!(output_path(dir, "logits"), Path::new("out/logits.npy"));
        assert_eq!(
            output_path(dir, "dense/BiasAdd:0"),
            Path::new("out/dense/BiasAdd.npy")
        );
        assert_eq!(output_path(dir, "split:1"), Path::new("out/split_1.npy"));
        assert_eq!(output_path(dir, "../../etc/x"), Path::new("out/etc/x.npy"));
    }

    #[test]
    fn scalar_feeds() -> Result<()> {
        assert!(matches!(parse_feed("keep_prob=1.0")?.1, Value::F64(_)));
        assert!(matches!(parse_feed("k=3")?.1, Value::I64(_)));
        assert!(matches!(parse_feed("training=false")?.1, Value::Bool(_)));
        let message =
            |r: Result<(String, Value)>| r.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert_eq!(
            message(parse_feed("x")),
            "--feed \"x\": expected NAME=FILE.npy, NAME=NUMBER or NAME=true|false"
        );
        assert_eq!(
            message(parse_feed("x=banana")),
            "--feed x=banana: not a number, true/false, or an existing .npy file"
        );
        Ok(())
    }
}
