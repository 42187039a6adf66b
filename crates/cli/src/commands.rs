//! The subcommands of `ckpt`.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ckpt_bundle::{BundleWriter, Checkpoint, DType, Tensor, TensorData};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use regex::Regex;

use crate::convert::{dtype_from_safetensors, npy_to_tensor, safetensors_dtype, tensor_to_npy};
use crate::copy::{check_output, check_output_file, Item, Layout, Source};
use crate::npy::{read_npz, NpzWriter};
use crate::object_graph::{self, OBJECT_GRAPH_KEY};
use crate::summary::{render, shape_text, summarize};

const PATH_HELP: &str = "Checkpoint (V2 or V1): a prefix (model.ckpt-1000), a directory with a \
    `checkpoint` state file (its latest checkpoint is used), a SavedModel directory (its variables), \
    or any of the checkpoint's files (.index, .meta, .data-*, a V1 file or shard)";

/// Look inside, check, convert and edit TensorFlow checkpoints, without TensorFlow.
#[derive(Debug, Parser)]
#[command(name = "ckpt", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command that writes a checkpoint.
#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    /// Replace an existing checkpoint at the output prefix, the input included: the new one is
    /// written beside it and put in place only once complete.
    #[arg(long)]
    pub force: bool,
    /// Write N data shards instead of keeping the inputs' shards.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub shards: Option<u32>,
    /// Write partitioned variables as whole tensors instead of keeping their slices.
    #[arg(long)]
    pub join_partitions: bool,
    /// Do not check the inputs' crc32c checksums. Tensors copied unchanged (by drop, rename,
    /// merge, and the tensors average and cast leave alone) keep the input's checksum, so
    /// damage in them still shows in `ckpt verify` of the output; with the check (the default)
    /// it is computed while the kernel copies, on another core.
    #[arg(long)]
    pub no_verify: bool,
}

impl WriteArgs {
    pub(crate) fn layout(&self) -> Layout {
        Layout {
            shards: self.shards,
            join_partitions: self.join_partitions,
        }
    }

    /// Opens an input checkpoint of a writing command, checksums checked unless --no-verify.
    pub(crate) fn open(&self, path: &Path) -> Result<Checkpoint> {
        let options = ckpt_bundle::ReadOptions {
            verify_checksums: !self.no_verify,
        };
        open_with(path, options)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List tensors, one line each: `NAME<TAB>DTYPE<TAB>SHAPE`, sorted by name, then a total.
    ///
    /// Partitioned variables are listed once, under the variable's name with its full shape, as
    /// tf.train.list_variables does. The last line, `# total: T tensors, P parameters, B bytes`,
    /// counts elements and data bytes (string tensors: their bytes), like inspect_checkpoint's
    /// total.
    Ls {
        #[arg(help = PATH_HELP)]
        path: PathBuf,
        /// Print a JSON array of {"name","dtype","shape"} instead (no total).
        #[arg(long)]
        json: bool,
        /// Print a TF2 checkpoint's object graph as a tree instead: each object under the name
        /// that reaches it first, each saved value as `name -> checkpoint key`, other edges to
        /// an object as `name = path`, an optimizer's slots as `[slot m of path] -> key`.
        #[arg(long, conflicts_with = "json")]
        objects: bool,
    },
    /// Print a tensor's dtype, shape and values (summarized like numpy past 1000 elements).
    Show {
        #[arg(help = PATH_HELP)]
        path: PathBuf,
        /// Tensor name, as `ckpt ls` prints it.
        name: String,
        /// Print every element, however many.
        #[arg(long)]
        full: bool,
        /// Print statistics instead of values: min, max, mean, std (population) over the finite
        /// elements, and the counts of zeros, NaNs and infinities.
        #[arg(long)]
        stats: bool,
        /// Print JSON: name, dtype, shape and the values as nested arrays (NaN and infinities
        /// as the strings "nan", "inf", "-inf"; strings as text, or byte arrays when not
        /// UTF-8), or the statistics with --stats.
        #[arg(long)]
        json: bool,
    },
    /// Read every tensor and check every checksum; exit non-zero on the first damage found.
    Verify {
        #[arg(help = PATH_HELP)]
        path: PathBuf,
    },
    /// Write every tensor to OUT.npz or OUT.safetensors under its checkpoint name.
    ///
    /// npz keeps numpy's own dtypes (float16 as <f2); bfloat16 is widened to float32 (exactly) and
    /// strings become fixed-width bytes (S) arrays. safetensors keeps F16 and BF16; tensors it
    /// cannot hold (strings, complex) are skipped with a warning naming them.
    Export {
        #[arg(help = PATH_HELP)]
        path: PathBuf,
        /// Output file; its extension (.npz or .safetensors) picks the format.
        out: PathBuf,
        /// Replace OUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Make a TensorFlow checkpoint from a numpy archive (.npz) or a safetensors file.
    ///
    /// A trailing `:0` (a TensorFlow tensor name, as in `conv0/W:0`) is removed from each name,
    /// since savers key variables by op name; --keep-names keeps names as they are. bfloat16
    /// from safetensors stays bfloat16. Writes OUT_PREFIX.index and
    /// OUT_PREFIX.data-00000-of-00001, atomically.
    Import {
        /// Input .npz or .safetensors file.
        input: PathBuf,
        /// Prefix of the checkpoint to write, e.g. out/model.ckpt.
        out_prefix: PathBuf,
        /// Keep names exactly, a trailing `:0` included.
        #[arg(long)]
        keep_names: bool,
        /// Replace an existing checkpoint at OUT_PREFIX.
        #[arg(long)]
        force: bool,
    },
    /// Merge several checkpoints (or the shards of one) into one checkpoint.
    ///
    /// Each data shard of each input becomes a shard of the output (as TensorFlow's
    /// MergeBundles does) and partitioned variables keep their slices, unless --shards or
    /// --join-partitions say otherwise.
    Merge {
        /// Prefix of the checkpoint to write.
        out_prefix: PathBuf,
        /// Checkpoints to merge, in any of the forms `ckpt ls` accepts.
        #[arg(required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
        /// Which tensor to keep when a name appears in several inputs (default: it is an error).
        #[arg(long, value_enum)]
        prefer: Option<Prefer>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Write a copy of a checkpoint with tensors renamed by a regular expression.
    ///
    /// Partitioned variables keep their slices and tensors their shards.
    Rename {
        #[arg(help = PATH_HELP)]
        path: PathBuf,
        /// Prefix of the checkpoint to write.
        out_prefix: PathBuf,
        /// Regular expression matched against each tensor name.
        #[arg(long = "from")]
        pattern: String,
        /// Replacement; `$1`, `${name}` refer to capture groups.
        #[arg(long = "to")]
        replacement: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Write a copy of a checkpoint without some tensors (for example optimizer state).
    ///
    /// --optimizer identifies optimizer state exactly where the checkpoint allows: a TF2
    /// checkpoint's object graph names its optimizers and their slot variables (the output's
    /// object graph loses them too, so TensorFlow loads it into a model with or without an
    /// optimizer); a TF1 checkpoint's .meta graph names the variables its Apply* optimizer ops
    /// update or read (slots, beta powers, iterations, learning-rate variables). Otherwise the
    /// names TensorFlow's, Keras', BERT's (adam_m/adam_v), Mesh TensorFlow's (_slot_vr/_vc/_v)
    /// and TensorFlow Addons' optimizers give their state are used, and stderr says so.
    /// global_step is kept.
    Drop {
        #[arg(help = PATH_HELP)]
        path: PathBuf,
        /// Prefix of the checkpoint to write.
        out_prefix: PathBuf,
        /// Drop tensors whose name matches this regular expression (repeatable).
        #[arg(long = "match")]
        patterns: Vec<String>,
        /// Drop optimizer state (slots, beta powers, iterations, learning rates).
        #[arg(long)]
        optimizer: bool,
        /// List what would be dropped, with the reason for each, and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Compare two checkpoints: tensors only in A or only in B, dtype and shape changes, and for
    /// tensors in both the largest absolute and relative difference, largest change first.
    ///
    /// The relative difference of two elements is |a - b| / max(|a|, |b|); NaN equals NaN.
    /// Exit status: 0 when the checkpoints hold the same tensors with the same values, 1 when
    /// they differ, 2 on error (as diff(1)).
    Diff {
        /// The first checkpoint, in any of the forms `ckpt ls` accepts.
        a: PathBuf,
        /// The second checkpoint.
        b: PathBuf,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Average checkpoints element-wise (for example the last few of a run) into OUT_PREFIX.
    ///
    /// Floating-point tensors (float16, bfloat16, float32, float64, complex) become the mean of
    /// the inputs: float16, bfloat16 and float32 values are summed in float64, divided, and
    /// rounded back to nearest even; float64 values are summed with Kahan-Neumaier
    /// compensation. Integer, bool and string tensors (global_step among them) are taken from
    /// the last input, as is the storage layout (slices, shards). The inputs must hold the
    /// same names, dtypes and shapes. Tensors are read one at a time from the memory-mapped
    /// inputs, so memory stays near one tensor per input.
    Average {
        /// Prefix of the checkpoint to write.
        out_prefix: PathBuf,
        /// Checkpoints to average (at least two), in any of the forms `ckpt ls` accepts.
        #[arg(required = true, num_args = 2..)]
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Write a copy with floating-point tensors converted to another float type (rounding to
    /// nearest, ties to even), and report the largest rounding error.
    ///
    /// Other tensors are copied unchanged. Values too large for the new type become infinite
    /// and are counted in a warning.
    Cast {
        #[arg(help = PATH_HELP)]
        path: PathBuf,
        /// Prefix of the checkpoint to write.
        out_prefix: PathBuf,
        /// The float type to convert to.
        #[arg(long, value_enum)]
        to: CastTarget,
        /// Convert only tensors whose name matches this regular expression.
        #[arg(long = "match")]
        pattern: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print every TensorFlow op `ckpt run` supports, one per line (same as `ckpt-run --ops`).
    Ops,
    /// Run a graph: same as the `ckpt-run` command (see `ckpt-run --help`).
    #[command(disable_help_flag = true)]
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Prefer {
    First,
    Last,
}

/// What `ckpt cast --to` converts to.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CastTarget {
    Float32,
    Float16,
    Bfloat16,
}

/// Runs a command; the exit code is 0 but for `diff`, whose code says whether the checkpoints
/// differ.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Ls {
            path,
            json,
            objects,
        } => {
            if objects {
                list_objects(&path)
            } else {
                list(&path, json)
            }
        }
        Command::Show {
            path,
            name,
            full,
            stats,
            json,
        } => show(&path, &name, full, stats, json),
        Command::Verify { path } => verify(&path),
        Command::Export { path, out, force } => export(&path, &out, force),
        Command::Import {
            input,
            out_prefix,
            keep_names,
            force,
        } => import(&input, &out_prefix, keep_names, force),
        Command::Merge {
            out_prefix,
            inputs,
            prefer,
            write,
        } => merge(&out_prefix, &inputs, prefer, &write),
        Command::Rename {
            path,
            out_prefix,
            pattern,
            replacement,
            write,
        } => rename(&path, &out_prefix, &pattern, &replacement, &write),
        Command::Drop {
            path,
            out_prefix,
            patterns,
            optimizer,
            dry_run,
            write,
        } => drop_tensors(&path, &out_prefix, &patterns, optimizer, dry_run, &write),
        Command::Diff { a, b, json } => return crate::tools::diff(&a, &b, json),
        Command::Average {
            out_prefix,
            inputs,
            write,
        } => crate::tools::average(&out_prefix, &inputs, &write),
        Command::Cast {
            path,
            out_prefix,
            to,
            pattern,
            write,
        } => crate::tools::cast(&path, &out_prefix, to, pattern.as_deref(), &write),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "ckpt", &mut std::io::stdout());
            Ok(())
        }
        Command::Ops => crate::run::print_ops(),
        Command::Run { args } => {
            use clap::Parser as _;
            let mut argv = vec![std::ffi::OsString::from("ckpt run")];
            argv.extend(args);
            let args = crate::run::RunArgs::try_parse_from(argv).unwrap_or_else(|e| e.exit());
            crate::run::run(&args)
        }
    }?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn open(path: &Path) -> Result<Checkpoint> {
    open_with(path, Default::default())
}

fn open_with(path: &Path, options: ckpt_bundle::ReadOptions) -> Result<Checkpoint> {
    Checkpoint::open_with(path, options).map_err(|e| match e {
        // The message already says everything, starting with the path.
        ckpt_bundle::Error::RemotePath { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("cannot open checkpoint {}", path.display())),
    })
}

/// Opens a checkpoint and says on stderr which one it is when a directory's `checkpoint` file
/// points outside the directory (a listing or a copy would not show it).
pub(crate) fn open_and_note(path: &Path) -> Result<Checkpoint> {
    let checkpoint = open(path)?;
    if let Some(prefix) = outside_prefix(path, &checkpoint) {
        eprintln!(
            "note: {} points outside the directory, to {}",
            path.join("checkpoint").display(),
            prefix.display()
        );
    }
    Ok(checkpoint)
}

/// The checkpoint's prefix, when `path` is a directory and the prefix lies outside it.
fn outside_prefix<'c>(path: &Path, checkpoint: &'c Checkpoint) -> Option<&'c Path> {
    if !path.is_dir() {
        return None;
    }
    let prefix = checkpoint.prefix();
    let parent = prefix.parent().filter(|p| !p.as_os_str().is_empty())?;
    let dir = std::fs::canonicalize(path).ok()?;
    let parent = std::fs::canonicalize(parent).ok()?;
    (!parent.starts_with(&dir)).then_some(prefix)
}

fn list(path: &Path, json: bool) -> Result<()> {
    let reader = open_and_note(path)?;
    // The index (or the V1 shards left) still lists the tensors; say what cannot be read.
    for file in reader.missing_files() {
        eprintln!(
            "warning: {} is missing: the tensors stored in it cannot be read",
            file.display()
        );
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if json {
        let items: Vec<serde_json::Value> = reader
            .tensors()
            .iter()
            .map(|t| serde_json::json!({ "name": t.name, "dtype": t.dtype.name(), "shape": t.shape }))
            .collect();
        serde_json::to_writer_pretty(&mut out, &items)?;
        writeln!(out)?;
    } else {
        let mut parameters = 0u64;
        let mut bytes = 0u64;
        for t in reader.tensors() {
            writeln!(
                out,
                "{}\t{}\t{}",
                t.name,
                t.dtype.name(),
                shape_text(&t.shape)
            )?;
            parameters = parameters.saturating_add(t.num_elements());
            bytes = bytes.saturating_add(match t.dtype.element_size() {
                Some(size) => t.num_elements().saturating_mul(size as u64),
                // Strings have no fixed size: their bytes are counted when they can be read.
                None => reader
                    .read(&t.name)
                    .map_or(0, |x| crate::copy::data_len(&x)),
            });
        }
        writeln!(
            out,
            "# total: {} tensors, {parameters} parameters, {bytes} bytes",
            reader.tensors().len()
        )?;
    }
    out.flush().or_else(ignore_broken_pipe)
}

/// `ckpt ls --objects`: the object graph of a TF2 checkpoint as a tree.
fn list_objects(path: &Path) -> Result<()> {
    let reader = open_and_note(path)?;
    if !reader.contains(OBJECT_GRAPH_KEY) {
        bail!(
            "{} has no object graph ({OBJECT_GRAPH_KEY}): it is a name-based checkpoint, \
             whose names `ckpt ls` lists",
            reader.prefix().display()
        );
    }
    let graph = object_graph::decode(&read_object_graph(&reader)?)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    out.write_all(object_graph::tree(&graph).as_bytes())?;
    out.flush().or_else(ignore_broken_pipe)
}

/// The serialized object graph of a TF2 checkpoint.
pub(crate) fn read_object_graph(reader: &Checkpoint) -> Result<Vec<u8>> {
    let tensor = reader.read(OBJECT_GRAPH_KEY)?;
    match tensor.strings() {
        Some([one]) if tensor.dtype() == DType::String => Ok(one.to_vec()),
        _ => bail!(
            "{OBJECT_GRAPH_KEY} should be a string scalar, not {} {}",
            tensor.dtype().name(),
            shape_text(tensor.shape())
        ),
    }
}

/// A closed pipe (`ckpt ls | head`) is not an error worth reporting.
pub(crate) fn ignore_broken_pipe(error: std::io::Error) -> Result<()> {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(error.into())
    }
}

fn show(path: &Path, name: &str, full: bool, stats: bool, json: bool) -> Result<()> {
    let reader = open(path)?;
    let tensor = reader.read(name)?;
    let stats = if stats {
        let kind = crate::numeric::kind(tensor.dtype()).ok_or_else(|| {
            anyhow!(
                "tensor {name:?} is {}: statistics need a numeric tensor",
                tensor.dtype().name()
            )
        })?;
        Some(crate::numeric::stats(
            kind,
            tensor.bytes().unwrap_or_default(),
        ))
    } else {
        None
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    if json {
        let mut value = serde_json::json!({
            "name": name,
            "dtype": tensor.dtype().name(),
            "shape": tensor.shape(),
        });
        if let Some(s) = &stats {
            value["stats"] = crate::tools::stats_json(s);
        } else {
            value["values"] = crate::tools::values_json(&tensor)?;
        }
        serde_json::to_writer(&mut out, &value)?;
        writeln!(out)?;
        return out.flush().or_else(ignore_broken_pipe);
    }
    writeln!(out, "name:  {name}")?;
    writeln!(out, "dtype: {}", tensor.dtype().name())?;
    writeln!(out, "shape: {}", shape_text(tensor.shape()))?;
    if let Some(s) = &stats {
        write!(out, "{}", crate::tools::stats_text(s))?;
    } else {
        let text = if full {
            render(&tensor, false)
        } else {
            summarize(&tensor)
        };
        writeln!(out, "{text}")?;
    }
    out.flush().or_else(ignore_broken_pipe)
}

fn verify(path: &Path) -> Result<()> {
    let started = Instant::now();
    let reader = open_and_note(path)?;
    let report = reader.verify()?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "ok: {} tensors, {} bytes verified in {:.3} s ({:.2} GB/s)",
        report.tensors,
        report.bytes,
        seconds,
        report.bytes as f64 / seconds.max(1e-9) / 1e9
    );
    Ok(())
}

/// A progress bar on stderr when it is a terminal and the work is large enough to wait for.
pub(crate) fn progress(total_bytes: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() || total_bytes < 256 << 20 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

fn total_bytes(reader: &Checkpoint) -> u64 {
    reader
        .tensors()
        .iter()
        .map(|t| {
            let count: u64 = t.shape.iter().product();
            count.saturating_mul(t.dtype.element_size().unwrap_or(1) as u64)
        })
        .sum()
}

#[derive(Clone, Copy, PartialEq)]
enum ArrayFormat {
    Npz,
    Safetensors,
}

fn array_format(path: &Path) -> Result<ArrayFormat> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npz") => Ok(ArrayFormat::Npz),
        Some("safetensors") => Ok(ArrayFormat::Safetensors),
        _ => bail!(
            "{}: unknown format; use a .npz or .safetensors file name",
            path.display()
        ),
    }
}

fn export(path: &Path, out: &Path, force: bool) -> Result<()> {
    let format = array_format(out)?;
    check_output_file(out, force)?;
    let reader = open_and_note(path)?;
    let bar = progress(total_bytes(&reader), "exporting");
    // Write to a temporary name beside the output, then rename: no half-written file under `out`.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    // A temporary file is private (0600) by default; the export is an ordinary file, so ask for
    // 0666 and let the umask decide, as File::create does.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let temp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let mut written = 0usize;
    match format {
        ArrayFormat::Npz => {
            let mut npz = NpzWriter::new(BufWriter::with_capacity(1 << 20, temp.as_file()));
            for info in reader.tensors() {
                let tensor = reader.read(&info.name)?;
                let array = tensor_to_npy(&info.name, &tensor)?;
                npz.add(&info.name, &array)
                    .with_context(|| format!("writing {}", out.display()))?;
                bar.inc(array.data.len() as u64);
                written += 1;
            }
            npz.finish()?.flush()?;
        }
        ArrayFormat::Safetensors => {
            let mut views = Vec::new();
            let mut tensors = Vec::new();
            for info in reader.tensors() {
                match safetensors_dtype(info.dtype) {
                    Some(dtype) => {
                        tensors.push((info.name.clone(), dtype, reader.read(&info.name)?))
                    }
                    None => eprintln!(
                        "warning: skipping {:?}: safetensors cannot hold {} tensors",
                        info.name,
                        info.dtype.name()
                    ),
                }
            }
            for (name, dtype, tensor) in &tensors {
                let TensorData::Bytes(bytes) = &tensor.data() else {
                    continue;
                };
                let shape: Vec<usize> = tensor.shape().iter().map(|&d| d as usize).collect();
                let view = safetensors::tensor::TensorView::new(*dtype, shape, bytes)
                    .map_err(|e| anyhow!("tensor {name:?}: {e}"))?;
                views.push((name.clone(), view));
                bar.inc(bytes.len() as u64);
            }
            written = views.len();
            // serialize_to_file replaces the file with its own private temporary file:
            // give the result back the permissions ours was created with.
            let permissions = temp.as_file().metadata()?.permissions();
            safetensors::tensor::serialize_to_file(views, None, temp.path())
                .map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
            std::fs::set_permissions(temp.path(), permissions)
                .with_context(|| format!("writing {}", out.display()))?;
        }
    }
    temp.persist(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    bar.finish_and_clear();
    eprintln!("wrote {written} tensors to {}", out.display());
    Ok(())
}

/// The name a tensor of an array file gets: a trailing `:0` (TensorFlow's tensor name for a
/// variable's value) removed unless `keep` is set.
fn import_name(name: &str, keep: bool) -> &str {
    if keep {
        name
    } else {
        name.strip_suffix(":0")
            .filter(|n| !n.is_empty())
            .unwrap_or(name)
    }
}

fn import(input: &Path, out_prefix: &Path, keep_names: bool, force: bool) -> Result<()> {
    let format = array_format(input)?;
    check_output(out_prefix, &[], force)?;
    let what = input.display().to_string();
    let mut tensors: Vec<(String, String, Tensor<'static>)> = Vec::new();
    let bytes;
    let mut views = Vec::new();
    match format {
        ArrayFormat::Npz => {
            let file = File::open(input).with_context(|| format!("cannot open {what}"))?;
            for (name, array) in read_npz(std::io::BufReader::new(file), &what)? {
                let tensor = npy_to_tensor(&name, &array).with_context(|| what.clone())?;
                let out = import_name(&name, keep_names).to_string();
                tensors.push((name, out, tensor.into_owned()));
            }
        }
        ArrayFormat::Safetensors => {
            bytes = ckpt_bundle::MappedFile::open(input)
                .with_context(|| format!("cannot read {what}"))?;
            let file = safetensors::SafeTensors::deserialize(&bytes)
                .map_err(|e| anyhow!("{what}: not a valid safetensors file: {e}"))?;
            let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
            names.sort();
            for name in names {
                let view = file
                    .tensor(&name)
                    .map_err(|e| anyhow!("{what}: entry {name:?}: {e}"))?;
                let dtype = dtype_from_safetensors(view.dtype()).ok_or_else(|| {
                    anyhow!(
                        "{what}: entry {name:?}: dtype {:?} has no TensorFlow equivalent",
                        view.dtype()
                    )
                })?;
                let shape: Vec<u64> = view.shape().iter().map(|&d| d as u64).collect();
                let out = import_name(&name, keep_names).to_string();
                views.push((name, out, dtype, shape, view));
            }
        }
    }
    let mut renamed: Vec<(&str, &str)> = tensors
        .iter()
        .map(|(a, b, _)| (a.as_str(), b.as_str()))
        .chain(views.iter().map(|(a, b, ..)| (a.as_str(), b.as_str())))
        .collect();
    let mut seen = std::collections::BTreeMap::new();
    for (name, out) in &renamed {
        if let Some(other) = seen.insert(*out, *name) {
            bail!(
                "{what}: entries {other:?} and {name:?} would both be named {out:?}; pass \
                 --keep-names to keep the `:0`"
            );
        }
    }
    let mut writer = BundleWriter::create(out_prefix)
        .with_context(|| format!("cannot write checkpoint {}", out_prefix.display()))?;
    for (name, out, tensor) in &tensors {
        writer
            .add(out, tensor)
            .with_context(|| format!("{what}: entry {name:?}"))?;
    }
    for (name, out, dtype, shape, view) in &views {
        let tensor = Tensor::from_bytes(*dtype, shape.clone(), view.data())
            .with_context(|| format!("{what}: entry {name:?}"))?;
        writer
            .add(out, &tensor)
            .with_context(|| format!("{what}: entry {name:?}"))?;
    }
    writer
        .finish()
        .with_context(|| format!("cannot write checkpoint {}", out_prefix.display()))?;
    renamed.retain(|(a, b)| a != b);
    if let Some((a, b)) = renamed.first() {
        eprintln!(
            "note: removed the trailing `:0` from {} names ({a} -> {b}): TensorFlow's savers key \
             variables without it; --keep-names keeps names as they are",
            renamed.len()
        );
    }
    eprintln!("wrote {} tensors to {}", seen.len(), out_prefix.display());
    Ok(())
}

fn open_all(inputs: &[PathBuf], write: &WriteArgs) -> Result<Vec<Checkpoint>> {
    inputs.iter().map(|p| write.open(p)).collect()
}

fn merge(
    out_prefix: &Path,
    inputs: &[PathBuf],
    prefer: Option<Prefer>,
    write: &WriteArgs,
) -> Result<()> {
    let readers = open_all(inputs, write)?;
    check_output(out_prefix, &readers.iter().collect::<Vec<_>>(), write.force)?;
    // name -> the inputs holding it, in order.
    let mut holders: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, r) in readers.iter().enumerate() {
        for t in r.tensors() {
            holders.entry(&t.name).or_default().push(i);
        }
    }
    let mut items = Vec::new();
    for (name, ins) in &holders {
        let pick = match (ins.as_slice(), prefer) {
            ([one], _) => vec![*one],
            (all, _) if slices_combine(&readers, name, all)? => all.to_vec(),
            ([first, ..], Some(Prefer::First)) => vec![*first],
            ([.., last], Some(Prefer::Last)) => vec![*last],
            (all, _) => {
                let paths: Vec<String> = all
                    .iter()
                    .map(|&i| readers[i].prefix().display().to_string())
                    .collect();
                bail!(
                    "tensor {name:?} is in {} (pass --prefer first or --prefer last to keep one)",
                    paths.join(" and ")
                );
            }
        };
        items.push(Item {
            input: pick[0],
            more_inputs: pick[1..].to_vec(),
            name: name.to_string(),
            out_name: name.to_string(),
        });
    }
    let count = crate::copy::write(
        &readers,
        &items,
        out_prefix,
        write.layout(),
        |_, _, _, put| put(Source::Unchanged),
    )?;
    eprintln!(
        "merged {} checkpoints into {} ({count} tensors)",
        inputs.len(),
        out_prefix.display()
    );
    Ok(())
}

/// Whether every holder stores `name` as slices of one dtype and shape, none twice (the
/// parts of a sharded save), so they combine into one partitioned tensor.
fn slices_combine(readers: &[Checkpoint], name: &str, holders: &[usize]) -> Result<bool> {
    let mut seen = std::collections::BTreeSet::new();
    let mut first: Option<&ckpt_bundle::TensorInfo> = None;
    for &i in holders {
        let info = readers[i].info(name)?;
        match first {
            None => first = Some(info),
            Some(f) if f.dtype == info.dtype && f.shape == info.shape => {}
            Some(_) => return Ok(false),
        }
        let ckpt_bundle::Storage::Partitioned(slices) = readers[i].storage(name)? else {
            return Ok(false);
        };
        for s in slices {
            if !seen.insert(s.extents) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Warns about a regular expression that matched no tensor name.
fn warn_unmatched(option: &str, pattern: &str) {
    eprintln!("warning: {option} {pattern:?} matches no tensor name");
}

fn rename(
    path: &Path,
    out_prefix: &Path,
    pattern: &str,
    replacement: &str,
    write: &WriteArgs,
) -> Result<()> {
    let regex = Regex::new(pattern).with_context(|| format!("bad --from pattern {pattern:?}"))?;
    let reader = write.open(path)?;
    check_output(out_prefix, &[&reader], write.force)?;
    let mut items = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    let mut renamed = 0usize;
    for info in reader.tensors() {
        let new_name = regex.replace_all(&info.name, replacement).into_owned();
        if new_name.is_empty() {
            bail!("tensor {:?} would be renamed to the empty name", info.name);
        }
        if let Some(previous) = seen.insert(new_name.clone(), info.name.clone()) {
            bail!(
                "tensors {previous:?} and {:?} would both be named {new_name:?}",
                info.name
            );
        }
        renamed += usize::from(new_name != info.name);
        items.push(Item {
            input: 0,
            more_inputs: Vec::new(),
            name: info.name.clone(),
            out_name: new_name,
        });
    }
    if !reader.tensors().iter().any(|t| regex.is_match(&t.name)) {
        warn_unmatched("--from", pattern);
    }
    let readers = [reader];
    let count = crate::copy::write(
        &readers,
        &items,
        out_prefix,
        write.layout(),
        |_, _, _, put| put(Source::Unchanged),
    )?;
    eprintln!(
        "wrote {count} tensors to {} ({renamed} renamed)",
        out_prefix.display()
    );
    Ok(())
}

fn drop_tensors(
    path: &Path,
    out_prefix: &Path,
    patterns: &[String],
    optimizer: bool,
    dry_run: bool,
    write: &WriteArgs,
) -> Result<()> {
    let regexes = patterns
        .iter()
        .map(|p| {
            Regex::new(p)
                .map(|r| (p.as_str(), r))
                .with_context(|| format!("bad --match pattern {p:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    if regexes.is_empty() && !optimizer {
        bail!("nothing to drop: give --match REGEX or --optimizer");
    }
    let reader = write.open(path)?;
    if !dry_run {
        check_output(out_prefix, &[&reader], write.force)?;
    }
    // name -> why it goes.
    let mut dropped: std::collections::BTreeMap<String, String> = Default::default();
    let mut new_graph = None;
    if optimizer {
        let found = crate::optimizer::find(&reader)?;
        if let Some(why) = &found.by_names {
            eprintln!("note: {why}");
        }
        if found.drop.is_empty() {
            if found.lookalikes.is_empty() {
                eprintln!(
                    "warning: --optimizer found no optimizer state in {} ({}): 0 dropped",
                    reader.prefix().display(),
                    found.method
                );
            } else {
                eprintln!(
                    "warning: --optimizer found no optimizer state in {} ({}), but {} tensors \
                     are named like optimizer state (e.g. {:?}); drop them with --match if \
                     they are",
                    reader.prefix().display(),
                    found.method,
                    found.lookalikes.len(),
                    found.lookalikes[0]
                );
            }
        } else if !found.lookalikes.is_empty() {
            eprintln!(
                "note: {} tensors are named like optimizer state but {} does not say they are, \
                 so they are kept: {}",
                found.lookalikes.len(),
                found.method,
                found.lookalikes.join(", ")
            );
        }
        for (name, why) in found.drop {
            dropped.insert(
                name,
                format!("optimizer state, from {}: {why}", found.method),
            );
        }
        new_graph = found.object_graph;
    }
    for (pattern, regex) in &regexes {
        let mut any = false;
        for t in reader.tensors() {
            if regex.is_match(&t.name) {
                any = true;
                dropped
                    .entry(t.name.clone())
                    .or_insert_with(|| format!("matches --match {pattern:?}"));
            }
        }
        if !any {
            warn_unmatched("--match", pattern);
        }
    }
    if dry_run {
        let mut out = BufWriter::new(std::io::stdout().lock());
        for (name, why) in &dropped {
            writeln!(out, "{name}\t{why}")?;
        }
        out.flush().or_else(ignore_broken_pipe)?;
        eprintln!(
            "would drop {} of {} tensors (dry run: nothing written)",
            dropped.len(),
            reader.tensors().len()
        );
        return Ok(());
    }
    let items: Vec<Item> = reader
        .tensors()
        .iter()
        .filter(|t| !dropped.contains_key(&t.name))
        .map(|t| Item {
            input: 0,
            more_inputs: Vec::new(),
            name: t.name.clone(),
            out_name: t.name.clone(),
        })
        .collect();
    let graph_bytes = new_graph.map(|g| ckpt_proto::Message::encode_to_vec(&g));
    let readers = [reader];
    let count = crate::copy::write(
        &readers,
        &items,
        out_prefix,
        write.layout(),
        |item, _input, slice, put| match (&graph_bytes, item.name.as_str(), slice) {
            (Some(bytes), OBJECT_GRAPH_KEY, None) => {
                put(Source::Computed(Tensor::scalar_string(bytes.as_slice())))
            }
            _ => put(Source::Unchanged),
        },
    )?;
    let rewritten = if graph_bytes.is_some() {
        ", object graph rewritten without them"
    } else {
        ""
    };
    eprintln!(
        "wrote {count} tensors to {} ({} dropped{rewritten})",
        out_prefix.display(),
        dropped.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_names_lose_only_a_trailing_colon_zero() {
        assert_eq!(import_name("conv0/W:0", false), "conv0/W");
        assert_eq!(import_name("conv0/W:1", false), "conv0/W:1");
        assert_eq!(import_name(":0", false), ":0");
        assert_eq!(import_name("a:0:0", false), "a:0");
        assert_eq!(import_name("conv0/W:0", true), "conv0/W:0");
    }
}
