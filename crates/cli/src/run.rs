//! `ckpt-run` (also `ckpt run`): restore a graph and its variables, feed it, fetch results.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use ckpt_bundle::Checkpoint;
use ckpt_graph::Model;
use ckpt_runtime::{Session, SessionOptions, TensorBuf, Value};
use clap::Parser;

use crate::convert::{npy_to_value, value_to_npy};
use crate::npy::{read_npy, write_npy};

/// Run a TensorFlow graph restored from a checkpoint, without TensorFlow.
///
/// Loads PATH's `.meta` graph (or, without one, the `graph.pbtxt` an Estimator writes beside its
/// checkpoints), restores its variables from the checkpoint, feeds the placeholders and prints or
/// saves the fetched tensors. PATH may also be a graph file (a frozen `.pb`, a `graph.pbtxt`, a
/// `.meta`), whose variables then come from `--checkpoint`. On a SavedModel directory it runs a
/// signature, as `saved_model_cli run` does: feeds and fetches are the signature's input and
/// output keys.
///
/// Example: ckpt-run model.ckpt --feed x=img.npy --feed keep_prob=1.0 --fetch logits,pred --out results/
///
/// Example: ckpt-run export/1 --signature serving_default --feed x=x.npy
#[derive(Debug, Parser)]
#[command(name = "ckpt-run", version, about, long_about)]
pub struct RunArgs {
    /// A checkpoint prefix (its `.meta`, else the directory's `graph.pbtxt`, holds the graph), a
    /// directory with a `checkpoint` state file, any of the checkpoint's files, or a graph file:
    /// a frozen GraphDef `.pb`, a text graph (`.pbtxt`), a `.meta`; or a SavedModel directory (or
    /// its `saved_model.pb`).
    #[arg(required_unless_present = "ops")]
    pub path: Option<PathBuf>,
    /// Restore the variables from this checkpoint (a prefix, a directory with a `checkpoint`
    /// file, or any of its files) instead of the one PATH names; PATH then only gives the graph.
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,
    /// Feed a placeholder: NAME=FILE.npy (numbers, bools, or S/U strings), NAME=NUMBER,
    /// NAME=true|false, NAME="TEXT" (a string) or NAME=FILE.txt (one string per line). Repeatable. The value is
    /// cast to the placeholder's dtype and checked against its static shape, as feed_dict does.
    #[arg(long = "feed", value_name = "NAME=VALUE")]
    pub feeds: Vec<String>,
    /// Tensors to compute: NAME or NAME:K, comma-separated or repeated.
    #[arg(long = "fetch", value_name = "NAME[,NAME...]", value_delimiter = ',')]
    pub fetches: Vec<String>,
    /// Write each fetched tensor to DIR/NAME.npy (folders for `/` in names; `name:1` becomes `name_1.npy`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Threads for the kernels, the calling thread included (N - 1 workers), 1 to 1024
    /// (default: one per core).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Turn recognized dropout subgraphs into identities, so training graphs with a fixed rate
    /// run deterministically.
    #[arg(long)]
    pub inference: bool,
    /// Run every node as its own kernel (no batch norm folding, no fusion), to compare with
    /// the optimized plan.
    #[arg(long)]
    pub no_optimize: bool,
    /// Time the fetch instead of printing it: warm-up runs (a tenth of N, at least 3), then N
    /// timed runs; prints only the median, mean, p10 and p90 latency and samples per second.
    #[arg(long, value_name = "N")]
    pub bench: Option<usize>,
    /// With --bench: then time every step of N more runs and print the sum of the steps'
    /// median times (the `steps:` line, to compare with the run's median), per op type the
    /// milliseconds, share of that sum and step count, then the ten slowest nodes. A fused
    /// chain counts under its last node.
    #[arg(long, requires = "bench")]
    pub profile: bool,
    /// Tile every fed array along axis 0 (or cut it) to N rows, so any batch size can be run
    /// from one input file. Scalars are fed as they are.
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// List the graph's placeholders (dtype, shape), likely outputs (marking those that need
    /// ops ckpt-run lacks) and signatures, then exit. For a SavedModel: its tag sets and
    /// signatures, as `saved_model_cli show --all` does.
    #[arg(long)]
    pub describe: bool,
    /// Print every TensorFlow op ckpt-run supports, one per line, then exit (no PATH needed).
    #[arg(long)]
    pub ops: bool,
    /// SavedModel only: the tag set of the meta graph to run, comma-separated or repeated; the
    /// meta graph's tags must equal it (default: serve).
    #[arg(long = "tag", value_name = "TAG[,TAG...]", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// SavedModel only: the signature to run (default: serving_default). Feeds and fetches are
    /// its input and output keys (graph tensor names work too); without --fetch, all of its
    /// outputs are fetched.
    #[arg(long, value_name = "KEY")]
    pub signature: Option<String>,
    /// Stop a run with an error when one while loop's body has run N times (a loop that never
    /// ends fails instead of hanging).
    #[arg(long, value_name = "N", default_value_t = SessionOptions::DEFAULT_MAX_ITERATIONS)]
    pub max_iterations: u64,
    /// The most memory one op's output may take: bytes, or with a K, M, G or T suffix (powers
    /// of 1024), e.g. 4G. A shape the graph computes past it (a Fill, Tile or Pad of a huge
    /// size) is an error naming the node, before anything is allocated. Default: half of the
    /// physical memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

/// Prints the supported ops, one per line (`ckpt-run --ops`, `ckpt ops`).
pub fn print_ops() -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for op in ckpt_runtime::supported_ops() {
        writeln!(out, "{op}")?;
    }
    Ok(())
}

/// The graph and checkpoint a PATH names; when PATH leads to a `.meta` whose checkpoint data is
/// missing, the graph alone and why there is no checkpoint (`--describe` needs only the graph).
fn load(path: &Path) -> Result<(Model, Option<Checkpoint>, Option<String>)> {
    let is_frozen = is_graph_file(path);
    if is_frozen {
        let model =
            Model::load(path).with_context(|| format!("cannot load graph {}", path.display()))?;
        return Ok((model, None, None));
    }
    let bundle = match open_checkpoint(path)? {
        Ok(bundle) => bundle,
        Err((meta, why)) => {
            let model = Model::load(&meta)
                .with_context(|| format!("cannot load graph {}", meta.display()))?;
            return Ok((model, None, Some(why)));
        }
    };
    let meta = bundle.meta_path();
    if !meta.is_file() {
        if let Some(model) = graph_beside(&bundle, &meta)? {
            return Ok((model, Some(bundle), None));
        }
        bail!(
            "{}: no graph beside the checkpoint (expected {} or {}); ckpt-run needs the .meta that tf.train.Saver writes, the {ESTIMATOR_GRAPH} an Estimator writes, or a frozen .pb",
            path.display(),
            meta.display(),
            estimator_graph(&bundle).display()
        );
    }
    let model =
        Model::load(&meta).with_context(|| format!("cannot load graph {}", meta.display()))?;
    Ok((model, Some(bundle), None))
}

/// The checkpoint (V1 or V2) PATH leads to; or, when there is none but PATH is a `.meta` (or a
/// prefix with one), that graph and what was looked for.
fn open_checkpoint(path: &Path) -> Result<std::result::Result<Checkpoint, (PathBuf, String)>> {
    match Checkpoint::open(path) {
        Ok(checkpoint) => Ok(Ok(checkpoint)),
        Err(e @ ckpt_bundle::Error::CheckpointNotFound { .. }) => {
            let meta = if path.extension().is_some_and(|e| e == "meta") {
                path.to_path_buf()
            } else {
                ckpt_bundle::meta_path(path)
            };
            if meta.is_file() {
                Ok(Err((meta, e.to_string())))
            } else {
                Err(anyhow::Error::new(e)
                    .context(format!("cannot open checkpoint {}", path.display())))
            }
        }
        Err(e @ ckpt_bundle::Error::RemotePath { .. }) => Err(e.into()),
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("cannot open checkpoint {}", path.display())))
        }
    }
}

/// A session error, explained when the graph's variables have no checkpoint to come from.
fn explain_session_error(error: ckpt_runtime::Error, no_data: Option<&str>) -> anyhow::Error {
    match (error, no_data) {
        (e @ ckpt_runtime::Error::UnsupportedOps { .. }, _) => anyhow!(
            "{e}\n(`ckpt-run --ops` lists the {} supported ops)",
            ckpt_runtime::supported_ops().len()
        ),
        (e @ ckpt_runtime::Error::NoCheckpoint { .. }, Some(why)) => anyhow!(
            "{e}; the checkpoint data is missing: {why}; give the checkpoint with --checkpoint PATH"
        ),
        (e @ ckpt_runtime::Error::NoCheckpoint { .. }, None) => {
            anyhow!("{e}; give the checkpoint with --checkpoint PATH")
        }
        (e, _) => e.into(),
    }
}

/// A graph file given as PATH: a frozen `.pb` or a text graph (`graph.pbtxt`), read without a
/// checkpoint unless `--checkpoint` names one.
fn is_graph_file(path: &Path) -> bool {
    path.is_file()
        && path.extension().is_some_and(|e| {
            e == "pb"
                || ckpt_graph::TEXT_EXTENSIONS
                    .iter()
                    .any(|t| e.eq_ignore_ascii_case(t))
        })
}

/// The graph an Estimator (`CheckpointSaverHook`) or a TF1 `Supervisor` writes into its
/// `model_dir`, beside checkpoints saved without a `.meta`.
const ESTIMATOR_GRAPH: &str = "graph.pbtxt";

/// `graph.pbtxt` in the checkpoint's directory.
fn estimator_graph(bundle: &Checkpoint) -> PathBuf {
    bundle
        .prefix()
        .parent()
        .unwrap_or(Path::new(""))
        .join(ESTIMATOR_GRAPH)
}

/// The Estimator graph of a checkpoint that has no `.meta` (`missing_meta`), if there is one;
/// says on stderr which file is used (an error names the file anyway).
fn graph_beside(bundle: &Checkpoint, missing_meta: &Path) -> Result<Option<Model>> {
    let graph = estimator_graph(bundle);
    if !graph.is_file() {
        return Ok(None);
    }
    let model =
        Model::load(&graph).with_context(|| format!("cannot load graph {}", graph.display()))?;
    eprintln!(
        "no {}; using the graph in {}",
        missing_meta.display(),
        graph.display()
    );
    Ok(Some(model))
}

/// `--checkpoint`: the graph from PATH (a graph file, or the graph of the checkpoint PATH
/// names), the variables from `checkpoint`.
fn load_with_checkpoint(
    path: &Path,
    checkpoint: &Path,
) -> Result<(Model, Option<Checkpoint>, Option<String>)> {
    let model = if path.is_file() {
        Model::load(path).with_context(|| format!("cannot load graph {}", path.display()))?
    } else {
        load(path)?.0
    };
    let bundle = Checkpoint::open(checkpoint)
        .with_context(|| format!("cannot open checkpoint {}", checkpoint.display()))?;
    Ok((model, Some(bundle), None))
}

pub fn run(args: &RunArgs) -> Result<()> {
    if args.ops {
        return print_ops();
    }
    ckpt_runtime::set_max_memory(args.max_memory);
    let Some(path) = &args.path else {
        bail!("give the checkpoint or graph to run (PATH)");
    };
    if crate::saved_model::is_saved_model(path) {
        return crate::saved_model::run(args, path);
    }
    if !args.tags.is_empty() || args.signature.is_some() {
        bail!(
            "{}: --tag and --signature apply to SavedModel directories (with a saved_model.pb)",
            path.display()
        );
    }
    let (model, bundle, no_data) = match &args.checkpoint {
        Some(checkpoint) => load_with_checkpoint(path, checkpoint)?,
        None => load(path)?,
    };
    if args.describe {
        return describe(&model);
    }
    if args.fetches.is_empty() {
        bail!("nothing to fetch: give --fetch NAME (try --describe to see the graph's likely outputs)");
    }
    let feeds = read_feeds(args)?;
    let feed_names: Vec<&str> = feeds.iter().map(|(n, _)| n.as_str()).collect();
    let fetch_names: Vec<&str> = args.fetches.iter().map(String::as_str).collect();
    let options = session_options(args);
    let session = Session::new(&model, bundle.as_ref(), &fetch_names, &feed_names, options)
        .map_err(|e| explain_session_error(e, no_data.as_deref()))?;
    let feed_refs: Vec<(&str, Value)> =
        feeds.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    if let Some(runs) = args.bench {
        return bench(&session, &feed_refs, runs.max(1), args.profile);
    }
    let outputs = session.run(&feed_refs)?;
    emit(&fetch_names, &outputs, args.out.as_deref())
}

/// Prints each fetched tensor (dtype, shape, numpy-like values), or writes it to
/// `out/NAME.npy`.
pub(crate) fn emit(names: &[&str], outputs: &[Value], out: Option<&Path>) -> Result<()> {
    match out {
        Some(dir) => {
            for (name, value) in names.iter().zip(outputs) {
                let file = output_path(dir, name);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create {}", parent.display()))?;
                }
                let mut bytes = Vec::new();
                write_npy(&mut bytes, &value_to_npy(name, value)?)?;
                write_file_atomically(&file, &bytes)?;
                eprintln!("wrote {}", file.display());
            }
        }
        None => {
            for (name, value) in names.iter().zip(outputs) {
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

/// `--batch`: `value` repeated (or cut) along axis 0 to `batch` rows; scalars unchanged.
pub(crate) fn tile_batch(value: &Value, batch: usize) -> Result<Value> {
    if value.shape().first() == Some(&0) {
        bail!("it has no rows to repeat");
    }
    Ok(value.tile_rows(batch)?)
}

/// Latency statistics of `--bench`, in seconds.
#[derive(Debug, PartialEq)]
struct BenchStats {
    median: f64,
    mean: f64,
    p10: f64,
    p90: f64,
}

impl BenchStats {
    /// Statistics of a non-empty set of samples (nearest-rank percentiles).
    fn of(mut samples: Vec<f64>) -> Option<BenchStats> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let rank = |p: f64| samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(BenchStats {
            median: if n % 2 == 1 {
                samples[n / 2]
            } else {
                (samples[n / 2 - 1] + samples[n / 2]) / 2.0
            },
            mean: samples.iter().sum::<f64>() / n as f64,
            p10: rank(0.1),
            p90: rank(0.9),
        })
    }
}

pub(crate) fn bench(
    session: &Session,
    feeds: &[(&str, Value)],
    runs: usize,
    profile: bool,
) -> Result<()> {
    let batch = feeds
        .iter()
        .filter_map(|(_, v)| v.shape().first().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    for _ in 0..(runs / 10).max(3) {
        session.run(feeds)?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let outputs = session.run(feeds)?;
        samples.push(started.elapsed().as_secs_f64());
        drop(outputs);
    }
    let Some(s) = BenchStats::of(samples) else {
        bail!("no runs to time");
    };
    let ms = |t: f64| t * 1e3;
    println!(
        "batch {batch}, {runs} runs after warm-up: median {:.3} ms, mean {:.3} ms, p10 {:.3} ms, p90 {:.3} ms, {:.1} samples/s",
        ms(s.median),
        ms(s.mean),
        ms(s.p10),
        ms(s.p90),
        batch as f64 / s.median
    );
    if profile {
        print_profile(session, feeds, runs)?;
    }
    Ok(())
}

/// `--profile`: per op type and per node, the median over `runs` runs of each step's time.
fn print_profile(session: &Session, feeds: &[(&str, Value)], runs: usize) -> Result<()> {
    let mut per_step: Vec<Vec<f64>> = Vec::new();
    let mut labels: Vec<(String, String)> = Vec::new();
    for _ in 0..runs {
        let (outputs, steps) = session.run_profiled(feeds)?;
        drop(outputs);
        if labels.is_empty() {
            labels = steps
                .iter()
                .map(|s| (s.node.clone(), s.op.clone()))
                .collect();
            per_step = vec![Vec::with_capacity(runs); steps.len()];
        }
        for (times, step) in per_step.iter_mut().zip(&steps) {
            times.push(step.elapsed.as_secs_f64());
        }
    }
    let medians: Vec<f64> = per_step
        .into_iter()
        .map(|t| BenchStats::of(t).map_or(0.0, |s| s.median))
        .collect();
    let total: f64 = medians.iter().sum();
    let mut by_op: Vec<(&str, f64, usize)> = Vec::new();
    for ((_, op), &t) in labels.iter().zip(&medians) {
        match by_op.iter_mut().find(|(o, _, _)| *o == op.as_str()) {
            Some(entry) => {
                entry.1 += t;
                entry.2 += 1;
            }
            None => by_op.push((op.as_str(), t, 1)),
        }
    }
    by_op.sort_by(|a, b| b.1.total_cmp(&a.1));
    let share = |t: f64| if total > 0.0 { 100.0 * t / total } else { 0.0 };
    println!(
        "steps: {} ms in {} steps (sum of per-step medians)",
        fmt_ms(total),
        medians.len()
    );
    println!("{:>10} {:>6} {:>6}  op", "ms", "%", "steps");
    for (op, t, n) in &by_op {
        println!("{:>10} {:>5.1}% {n:>6}  {op}", fmt_ms(*t), share(*t));
    }
    let mut order: Vec<usize> = (0..medians.len()).collect();
    order.sort_by(|&a, &b| medians[b].total_cmp(&medians[a]));
    println!("slowest nodes:");
    for &i in order.iter().take(10) {
        let (node, op) = &labels[i];
        println!(
            "{:>10} {:>5.1}%  {node} ({op})",
            fmt_ms(medians[i]),
            share(medians[i])
        );
    }
    Ok(())
}

fn fmt_ms(seconds: f64) -> String {
    format!("{:.3}", seconds * 1e3)
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
        let shape = match model.declared_shape(node) {
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
        let missing = ckpt_runtime::unsupported_ops(model, &[node.name.as_str()])?;
        if missing.is_empty() {
            println!("  {}\t{}", node.name, node.op);
        } else {
            let ops: Vec<&str> = missing.iter().map(|m| m.op.as_str()).collect();
            println!(
                "  {}\t{}\tneeds unsupported ops: {}",
                node.name,
                node.op,
                ops.join(", ")
            );
        }
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

/// Parses `NAME=FILE.npy`, `NAME=NUMBER`, `NAME=true|false`, `NAME="TEXT"` (a string scalar)
/// or `NAME=FILE.txt` (a string vector, one element per line, without the line ends).
pub(crate) fn parse_feed(spec: &str) -> Result<(String, Value)> {
    let (name, value) = spec.split_once('=').ok_or_else(|| {
        anyhow!("--feed {spec:?}: expected NAME=FILE.npy, NAME=FILE.txt, NAME=NUMBER, NAME=true|false or NAME=\"TEXT\"")
    })?;
    if name.is_empty() {
        bail!("--feed {spec:?}: empty placeholder name");
    }
    let parsed = match value {
        "true" | "True" => Value::Bool(TensorBuf::new(vec![], vec![true])?),
        "false" | "False" => Value::Bool(TensorBuf::new(vec![], vec![false])?),
        _ if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') => Value::Str(
            TensorBuf::new(vec![], vec![value.as_bytes()[1..value.len() - 1].to_vec()])?,
        ),
        _ if value.ends_with(".txt") => {
            let bytes = std::fs::read(value)
                .with_context(|| format!("--feed {name}: cannot read {value}"))?;
            let mut lines: Vec<Vec<u8>> = bytes
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
                .collect();
            if lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            Value::Str(TensorBuf::new(vec![lines.len()], lines)?)
        }
        _ if value.ends_with(".npy") || Path::new(value).is_file() => {
            // Mapped, not read: a large feed is held once, as the decoded tensor.
            let bytes = ckpt_bundle::MappedFile::open(Path::new(value))
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

/// The `--feed` values, each tiled or cut to `--batch` rows when given.
pub(crate) fn read_feeds(args: &RunArgs) -> Result<Vec<(String, Value)>> {
    let mut feeds = args
        .feeds
        .iter()
        .map(|f| parse_feed(f))
        .collect::<Result<Vec<_>>>()?;
    if let Some(batch) = args.batch {
        for (name, value) in &mut feeds {
            *value = tile_batch(value, batch)
                .with_context(|| format!("--batch {batch}: cannot tile feed {name}"))?;
        }
    }
    Ok(feeds)
}

/// The session options the command line asks for.
pub(crate) fn session_options(args: &RunArgs) -> SessionOptions {
    SessionOptions {
        threads: args.threads,
        inference: args.inference,
        max_iterations: args.max_iterations,
        unoptimized: args.no_optimize,
    }
}

/// Writes `bytes` to a temporary file beside `file` and renames it into place, so that a
/// full disk or a kill leaves either the old file or the whole new one under the final name,
/// never a truncated one (the temporary file is removed on error).
fn write_file_atomically(file: &Path, bytes: &[u8]) -> Result<()> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = file.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, file));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(error).with_context(|| format!("cannot write {}", file.display()));
    }
    Ok(())
}

/// `--max-memory SIZE`: bytes, or a number with a K, M, G or T suffix (powers of 1024,
/// an optional trailing `B` or `iB`), at least 1.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{text:?}: the size suffix must be K, M, G or T")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size (bytes, or a number with K, M, G or T)"))?;
    match n.checked_mul(1u64 << shift) {
        Some(0) => Err(format!("{text:?}: the size must be at least 1 byte")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?} is too large")),
    }
}

/// `--threads N`: 1 to [`SessionOptions::MAX_THREADS`].
fn parse_threads(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a thread count"))?;
    if n == 0 || n > SessionOptions::MAX_THREADS {
        return Err(format!(
            "{n} threads: the count must be 1 to {}",
            SessionOptions::MAX_THREADS
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_stats_percentiles() {
        let samples: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(
            super::BenchStats::of(samples),
            Some(super::BenchStats {
                median: 5.5,
                mean: 5.5,
                p10: 1.0,
                p90: 9.0,
            })
        );
        assert_eq!(super::BenchStats::of(Vec::new()), None);
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert_eq!(super::parse_size("64K"), Ok(64 << 10));
        assert_eq!(super::parse_size("512M"), Ok(512 << 20));
        assert_eq!(super::parse_size("4G"), Ok(4 << 30));
        assert_eq!(super::parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(super::parse_size("1t"), Ok(1 << 40));
        assert!(super::parse_size("0").is_err());
        assert!(super::parse_size("4X").is_err());
        assert!(super::parse_size("lots").is_err());
        assert!(super::parse_size("99999999T").is_err());
    }

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
        let text = parse_feed("s=\"a b\"")?.1;
        assert_eq!(text.as_strings(), Some(&[b"a b".to_vec()][..]));
        assert_eq!(text.shape(), &[] as &[usize]);
        let message =
            |r: Result<(String, Value)>| r.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert_eq!(
            message(parse_feed("x")),
            "--feed \"x\": expected NAME=FILE.npy, NAME=FILE.txt, NAME=NUMBER, NAME=true|false or NAME=\"TEXT\""
        );
        assert_eq!(
            message(parse_feed("x=banana")),
            "--feed x=banana: not a number, true/false, or an existing .npy file"
        );
        Ok(())
    }
}
