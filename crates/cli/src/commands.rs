//! The subcommands of `ckpt`.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use ckpt_bundle::{BundleWriter, Checkpoint, Tensor, TensorData};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use regex::Regex;

use crate::convert::{dtype_from_safetensors, npy_to_tensor, safetensors_dtype, tensor_to_npy};
use crate::npy::{read_npz, NpzWriter};
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List tensors, one line each: `NAME<TAB>DTYPE<TAB>SHAPE`, sorted by name.
    ///
    /// Partitioned variables are listed once, under the variable's name with its full shape, as
    /// tf.train.list_variables does.
    Ls {
        #[arg(help = PATH_HELP)]
        path: PathBuf,
        /// Print a JSON array of {"name","dtype","shape"} instead.
        #[arg(long)]
        json: bool,
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
    },
    /// Make a TensorFlow checkpoint from a numpy archive (.npz) or a safetensors file.
    ///
    /// Names are kept; bfloat16 from safetensors stays bfloat16. Writes OUT_PREFIX.index and
    /// OUT_PREFIX.data-00000-of-00001, atomically.
    Import {
        /// Input .npz or .safetensors file.
        input: PathBuf,
        /// Prefix of the checkpoint to write, e.g. out/model.ckpt.
        out_prefix: PathBuf,
    },
    /// Merge several checkpoints (or the shards of one) into one checkpoint.
    Merge {
        /// Prefix of the checkpoint to write.
        out_prefix: PathBuf,
        /// Checkpoints to merge, in any of the forms `ckpt ls` accepts.
        #[arg(required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
        /// Which tensor to keep when a name appears in several inputs (default: it is an error).
        #[arg(long, value_enum)]
        prefer: Option<Prefer>,
    },
    /// Write a copy of a checkpoint with tensors renamed by a regular expression.
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
    },
    /// Write a copy of a checkpoint without some tensors (for example optimizer slots).
    Drop {
        #[arg(help = PATH_HELP)]
        path: PathBuf,
        /// Prefix of the checkpoint to write.
        out_prefix: PathBuf,
        /// Drop tensors whose name matches this regular expression (repeatable).
        #[arg(long = "match")]
        patterns: Vec<String>,
        /// Drop optimizer state: Adam/Momentum/RMSProp/Adagrad/Ftrl slots, beta powers,
        /// TF2 `.OPTIMIZER_SLOT` and `optimizer/` keys.
        #[arg(long)]
        optimizer: bool,
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

/// Optimizer variables of TF1 (slot suffixes, beta powers) and TF2 (slot keys, the optimizer object).
const OPTIMIZER_PATTERN: &str = r"(^|/)(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad|Adadelta|Adadelta_\d+|Ftrl|Ftrl_\d+|Nadam|Nadam_\d+|AdamW|AdamW_\d+)$|(^|/)beta[12]_power(_\d+)?$|/\.OPTIMIZER_SLOT/|^optimizer/";

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ls { path, json } => list(&path, json),
        Command::Show { path, name, full } => show(&path, &name, full),
        Command::Verify { path } => verify(&path),
        Command::Export { path, out } => export(&path, &out),
        Command::Import { input, out_prefix } => import(&input, &out_prefix),
        Command::Merge {
            out_prefix,
            inputs,
            prefer,
        } => merge(&out_prefix, &inputs, prefer),
        Command::Rename {
            path,
            out_prefix,
            pattern,
            replacement,
        } => {
            let regex =
                Regex::new(&pattern).with_context(|| format!("bad --from pattern {pattern:?}"))?;
            rewrite(&path, &out_prefix, |name| {
                Some(regex.replace_all(name, replacement.as_str()).into_owned())
            })
        }
        Command::Drop {
            path,
            out_prefix,
            patterns,
            optimizer,
        } => {
            let mut regexes = patterns
                .iter()
                .map(|p| Regex::new(p).with_context(|| format!("bad --match pattern {p:?}")))
                .collect::<Result<Vec<_>>>()?;
            if optimizer {
                regexes.push(Regex::new(OPTIMIZER_PATTERN)?);
            }
            if regexes.is_empty() {
                bail!("nothing to drop: give --match REGEX or --optimizer");
            }
            rewrite(&path, &out_prefix, |name| {
                (!regexes.iter().any(|r| r.is_match(name))).then(|| name.to_string())
            })
        }
        Command::Ops => crate::run::print_ops(),
        Command::Run { args } => {
            use clap::Parser as _;
            let mut argv = vec![std::ffi::OsString::from("ckpt run")];
            argv.extend(args);
            let args = crate::run::RunArgs::try_parse_from(argv).unwrap_or_else(|e| e.exit());
            crate::run::run(&args)
        }
    }
}

fn open(path: &Path) -> Result<Checkpoint> {
    Checkpoint::open(path).map_err(|e| match e {
        // The message already says everything, starting with the path.
        ckpt_bundle::Error::RemotePath { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("cannot open checkpoint {}", path.display())),
    })
}

/// Opens a checkpoint and says on stderr which one it is when a directory's `checkpoint` file
/// points outside the directory (a listing or a copy would not show it).
fn open_and_note(path: &Path) -> Result<Checkpoint> {
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
        for t in reader.tensors() {
            writeln!(
                out,
                "{}\t{}\t{}",
                t.name,
                t.dtype.name(),
                shape_text(&t.shape)
            )?;
        }
    }
    out.flush().or_else(ignore_broken_pipe)
}

/// A closed pipe (`ckpt ls | head`) is not an error worth reporting.
fn ignore_broken_pipe(error: std::io::Error) -> Result<()> {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(error.into())
    }
}

fn show(path: &Path, name: &str, full: bool) -> Result<()> {
    let reader = open(path)?;
    let tensor = reader.read(name)?;
    println!("name:  {name}");
    println!("dtype: {}", tensor.dtype().name());
    println!("shape: {}", shape_text(tensor.shape()));
    let text = if full {
        render(&tensor, false)
    } else {
        summarize(&tensor)
    };
    println!("{text}");
    Ok(())
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
fn progress(total_bytes: u64, what: &str) -> ProgressBar {
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

fn export(path: &Path, out: &Path) -> Result<()> {
    let format = array_format(out)?;
    let reader = open_and_note(path)?;
    let bar = progress(total_bytes(&reader), "exporting");
    // Write to a temporary name beside the output, then rename: no half-written file under `out`.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
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

fn import(input: &Path, out_prefix: &Path) -> Result<()> {
    let format = array_format(input)?;
    let mut writer = BundleWriter::create(out_prefix)
        .with_context(|| format!("cannot write checkpoint {}", out_prefix.display()))?;
    let what = input.display().to_string();
    let mut count = 0usize;
    match format {
        ArrayFormat::Npz => {
            let file = File::open(input).with_context(|| format!("cannot open {what}"))?;
            for (name, array) in read_npz(std::io::BufReader::new(file), &what)? {
                let tensor = npy_to_tensor(&name, &array).with_context(|| what.clone())?;
                writer
                    .add(&name, &tensor)
                    .with_context(|| format!("{what}: entry {name:?}"))?;
                count += 1;
            }
        }
        ArrayFormat::Safetensors => {
            let bytes = std::fs::read(input).with_context(|| format!("cannot read {what}"))?;
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
                let shape = view.shape().iter().map(|&d| d as u64).collect();
                let tensor = Tensor::from_bytes(dtype, shape, view.data())
                    .with_context(|| format!("{what}: entry {name:?}"))?;
                writer
                    .add(&name, &tensor)
                    .with_context(|| format!("{what}: entry {name:?}"))?;
                count += 1;
            }
        }
    }
    writer
        .finish()
        .with_context(|| format!("cannot write checkpoint {}", out_prefix.display()))?;
    eprintln!("wrote {count} tensors to {}", out_prefix.display());
    Ok(())
}

fn merge(out_prefix: &Path, inputs: &[PathBuf], prefer: Option<Prefer>) -> Result<()> {
    let prefer = prefer.map(|p| match p {
        Prefer::First => ckpt_bundle::Prefer::First,
        Prefer::Last => ckpt_bundle::Prefer::Last,
    });
    ckpt_bundle::merge_bundles(inputs, out_prefix, prefer)?;
    eprintln!(
        "merged {} checkpoints into {}",
        inputs.len(),
        out_prefix.display()
    );
    Ok(())
}

/// Copies a checkpoint, renaming each tensor through `rename` (None drops it).
fn rewrite(path: &Path, out_prefix: &Path, rename: impl Fn(&str) -> Option<String>) -> Result<()> {
    let reader = open(path)?;
    let mut plan = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for info in reader.tensors() {
        let Some(new_name) = rename(&info.name) else {
            continue;
        };
        if new_name.is_empty() {
            bail!("tensor {:?} would be renamed to the empty name", info.name);
        }
        if let Some(previous) = seen.insert(new_name.clone(), info.name.clone()) {
            bail!(
                "tensors {previous:?} and {:?} would both be named {new_name:?}",
                info.name
            );
        }
        plan.push((info.name.clone(), new_name));
    }
    // Write in the new names' order, as TensorFlow's Saver does (sorted keys).
    plan.sort_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));
    let bar = progress(total_bytes(&reader), "writing");
    let mut writer = BundleWriter::create(out_prefix)
        .with_context(|| format!("cannot write checkpoint {}", out_prefix.display()))?;
    for (old, new) in &plan {
        let tensor = reader.read(old)?;
        writer.add(new, &tensor)?;
        if let TensorData::Bytes(b) = &tensor.data() {
            bar.inc(b.len() as u64);
        }
    }
    writer
        .finish()
        .with_context(|| format!("cannot write checkpoint {}", out_prefix.display()))?;
    bar.finish_and_clear();
    let dropped = reader.tensors().len() - plan.len();
    eprintln!(
        "wrote {} tensors to {} ({dropped} dropped)",
        plan.len(),
        out_prefix.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimizer_pattern_matches_slots_only() -> Result<()> {
        let re = Regex::new(OPTIMIZER_PATTERN)?;
        for name in [
            "dense/kernel/Adam",
            "dense/kernel/Adam_1",
            "beta1_power",
            "beta2_power",
            "conv/w/Momentum",
            "model/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
            "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE",
        ] {
            assert!(re.is_match(name), "{name} should match");
        }
        for name in [
            "dense/kernel",
            "Adamant/kernel",
            "global_step",
            "model/layer-0/bias/.ATTRIBUTES/VARIABLE_VALUE",
        ] {
            assert!(!re.is_match(name), "{name} should not match");
        }
        Ok(())
    }
}
