//! Helpers for the `ckpt` behaviour tests: running the built binary, reading the fixtures'
//! `expected.json` (TensorFlow's own readings), and damaging copies of fixtures.
//!
//! Every test file compiles this module into its own binary and uses only part of it, so the
//! files declare it with `#[allow(dead_code)]`.

pub mod npz;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;

/// What one run of `ckpt` did.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    /// `None` when a signal ended the process (an abort, for instance).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The run, if it exited 0.
    pub fn success(self) -> Result<Run> {
        ensure!(
            self.code == Some(0),
            "`ckpt {}` exited with {:?}\nstderr: {}",
            self.args.join(" "),
            self.code,
            self.stderr
        );
        Ok(self)
    }

    /// The run, if it failed the way a user error should: exit code 1 and a message on
    /// stderr; never a panic (exit 101), an abort (a signal) or a clap usage error (2).
    pub fn failure(self) -> Result<Run> {
        ensure!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "`ckpt {}` panicked:\n{}",
            self.args.join(" "),
            self.stderr
        );
        ensure!(
            self.code == Some(1),
            "`ckpt {}` should fail with exit code 1, got {:?}\nstdout: {}\nstderr: {}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        );
        ensure!(
            self.stderr.starts_with("error: "),
            "`ckpt {}`: stderr should start with `error: `, got {:?}",
            self.args.join(" "),
            self.stderr
        );
        Ok(self)
    }

    /// Checks that stderr holds every one of `parts`.
    pub fn stderr_has(&self, parts: &[&str]) -> Result<()> {
        for part in parts {
            ensure!(
                self.stderr.contains(part),
                "`ckpt {}`: stderr should mention {part:?}, got {:?}",
                self.args.join(" "),
                self.stderr
            );
        }
        Ok(())
    }
}

/// Runs the `ckpt` binary built for these tests.
pub fn ckpt<I, S>(args: I) -> Result<Run>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_ckpt"))
        .args(&args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .context("cannot run the ckpt binary")?;
    Ok(Run {
        args: args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).context("ckpt wrote non-UTF-8 to stdout")?,
        stderr: String::from_utf8(output.stderr).context("ckpt wrote non-UTF-8 to stderr")?,
    })
}

/// The names of `ckpt ls PATH`, one per line (the `# total` line left out).
pub fn listed_names(path: &Path) -> Result<Vec<String>> {
    let run = ckpt([Path::new("ls"), path])?.success()?;
    Ok(run
        .stdout
        .lines()
        .filter(|line| !line.starts_with("# total: "))
        .map(|line| line.split('\t').next().unwrap_or_default().to_string())
        .collect())
}

/// The value text `ckpt show` prints (everything after the name, dtype and shape lines).
pub fn shown_values(path: &Path, name: &str) -> Result<String> {
    let run = ckpt([Path::new("show"), path, Path::new(name)])?.success()?;
    let mut lines = run.stdout.lines();
    ensure!(
        lines.next() == Some(&format!("name:  {name}")[..]),
        "{}",
        run.stdout
    );
    ensure!(
        lines.next().is_some_and(|l| l.starts_with("dtype: ")),
        "{}",
        run.stdout
    );
    ensure!(
        lines.next().is_some_and(|l| l.starts_with("shape: ")),
        "{}",
        run.stdout
    );
    Ok(lines.collect::<Vec<_>>().join("\n"))
}

/// The repository's `fixtures/` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A fixture directory, e.g. `fixture("dtypes")`.
pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// Every fixture directory that holds checkpoints and TensorFlow's readings of them.
pub const CHECKPOINT_FIXTURES: &[&str] = &[
    "dtypes",
    "layers_v1",
    "layers_v2",
    "lenet",
    "many",
    "mlp",
    "mobilenet",
    "ops",
    "partitioned",
    "sharded",
    "tf1_saver",
    "tf2",
    "tf2_newopt",
    "tf2_weights",
    "tf1_adam",
    "keras_opt/adam",
    "keras_opt/legacy_momentum",
];

/// Fixture directories holding V1 checkpoints (no `.index`; one table file per shard).
pub const V1_FIXTURES: &[&str] = &["v1_dtypes", "v1_graph", "v1_sharded"];

/// One variable as TensorFlow read it (`tf.train.load_checkpoint`).
#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Little-endian element bytes (absent for large tensors and strings).
    pub bytes: Option<Vec<u8>>,
    /// The elements of a string tensor.
    pub strings: Option<Vec<Vec<u8>>>,
    /// The first bytes of a large tensor (whose `bytes` are left out).
    pub head: Option<Vec<u8>>,
}

/// A stored index entry: where a tensor's (or a slice's) bytes live.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: Vec<u8>,
    pub shard_id: u64,
    pub offset: u64,
    pub size: u64,
}

/// One checkpoint of a fixture, as its `expected.json` describes it.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub prefix: String,
    pub data_files: Vec<String>,
    pub variables: Vec<Variable>,
    /// Index entries that point at data (the header entry excluded); empty when
    /// expected.json leaves them out (the `many` fixture).
    pub entries: Vec<Entry>,
    /// `(offset, size)` of each data block of the `.index` table.
    pub index_blocks: Vec<(u64, u64)>,
}

impl Checkpoint {
    pub fn variable(&self, name: &str) -> Result<&Variable> {
        self.variables
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| anyhow!("{}: no variable {name:?} in expected.json", self.prefix))
    }

    /// `ckpt ls` output TensorFlow's readings call for: sorted bytewise, shapes as `[a,b]`,
    /// then the total line.
    pub fn listing(&self) -> String {
        let (tensors, parameters, bytes) = self.total();
        format!(
            "{}# total: {tensors} tensors, {parameters} parameters, {bytes} bytes\n",
            self.names_listing()
        )
    }

    /// The tensor lines of `ckpt ls`, without the total line.
    pub fn names_listing(&self) -> String {
        let mut vars: Vec<&Variable> = self.variables.iter().collect();
        vars.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        vars.iter()
            .map(|v| format!("{}\t{}\t{}\n", v.name, v.dtype, shape_text(&v.shape)))
            .collect()
    }

    /// Tensors, elements and data bytes (a string tensor: the bytes of its elements), as
    /// inspect_checkpoint's total counts them, from TensorFlow's readings.
    pub fn total(&self) -> (usize, u64, u64) {
        let mut parameters = 0;
        let mut bytes = 0;
        for v in &self.variables {
            let n: u64 = v.shape.iter().product();
            parameters += n;
            bytes += match &v.strings {
                Some(s) => s.iter().map(|x| x.len() as u64).sum(),
                None => n * dtype_size(&v.dtype),
            };
        }
        (self.variables.len(), parameters, bytes)
    }

    /// The bytes `ckpt verify` checksums: every stored run of data.
    pub fn data_bytes(&self) -> Result<u64> {
        if !self.entries.is_empty() {
            return Ok(self.entries.iter().map(|e| e.size).sum());
        }
        self.variables
            .iter()
            .map(|v| {
                v.bytes.as_ref().map(|b| b.len() as u64).ok_or_else(|| {
                    anyhow!("{}: no entries and no bytes for {}", self.prefix, v.name)
                })
            })
            .sum()
    }
}

/// A fixture's `expected.json`: its checkpoints and the latest one its `checkpoint` file names.
#[derive(Clone, Debug)]
pub struct Expected {
    pub checkpoints: Vec<Checkpoint>,
    pub latest: Option<String>,
}

impl Expected {
    pub fn checkpoint(&self, prefix: &str) -> Result<&Checkpoint> {
        self.checkpoints
            .iter()
            .find(|c| c.prefix == prefix)
            .ok_or_else(|| anyhow!("no checkpoint {prefix:?} in expected.json"))
    }

    /// The checkpoint `ckpt` should pick when given the fixture's directory.
    pub fn default_checkpoint(&self) -> Result<&Checkpoint> {
        match (&self.latest, self.checkpoints.as_slice()) {
            (Some(latest), _) => self.checkpoint(latest),
            (None, [only]) => Ok(only),
            (None, _) => bail!("several checkpoints and no `checkpoint` file"),
        }
    }
}

/// The size in bytes of one element of a dtype named as `ckpt ls` names it (0 for strings).
pub fn dtype_size(dtype: &str) -> u64 {
    match dtype {
        "bool" | "int8" | "uint8" | "qint8" | "quint8" => 1,
        "float16" | "bfloat16" | "int16" | "uint16" | "qint16" | "quint16" => 2,
        "float32" | "int32" | "uint32" | "qint32" => 4,
        "float64" | "int64" | "uint64" | "complex64" => 8,
        "complex128" => 16,
        _ => 0,
    }
}

pub fn shape_text(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(","))
}

pub fn hex(text: &str) -> Result<Vec<u8>> {
    ensure!(text.len().is_multiple_of(2), "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| anyhow!("bad hex {text:?}"))
        })
        .collect()
}

fn field<'v>(value: &'v Value, key: &str) -> Result<&'v Value> {
    value
        .get(key)
        .ok_or_else(|| anyhow!("expected.json: missing field {key:?}"))
}

fn str_field<'v>(value: &'v Value, key: &str) -> Result<&'v str> {
    field(value, key)?
        .as_str()
        .ok_or_else(|| anyhow!("expected.json: {key:?} is not a string"))
}

fn u64_field(value: &Value, key: &str) -> Result<u64> {
    field(value, key)?
        .as_u64()
        .ok_or_else(|| anyhow!("expected.json: {key:?} is not an unsigned integer"))
}

fn array<'v>(value: &'v Value, key: &str) -> Result<&'v Vec<Value>> {
    field(value, key)?
        .as_array()
        .ok_or_else(|| anyhow!("expected.json: {key:?} is not an array"))
}

fn shape(value: &Value) -> Result<Vec<u64>> {
    value
        .as_array()
        .ok_or_else(|| anyhow!("expected.json: shape is not an array"))?
        .iter()
        .map(|d| d.as_u64().ok_or_else(|| anyhow!("bad dimension {d}")))
        .collect()
}

fn variable(v: &Value) -> Result<Variable> {
    Ok(Variable {
        name: str_field(v, "name")?.to_string(),
        dtype: str_field(v, "dtype")?.to_string(),
        shape: shape(field(v, "shape")?)?,
        bytes: v.get("hex").and_then(Value::as_str).map(hex).transpose()?,
        strings: v
            .get("strings")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|s| hex(s.as_str().unwrap_or("?")))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?,
        head: v
            .get("head_hex")
            .and_then(Value::as_str)
            .map(hex)
            .transpose()?,
    })
}

fn checkpoint(c: &Value) -> Result<Checkpoint> {
    // V1 checkpoints have no index: no entries, no blocks.
    let no_index = Value::Object(Default::default());
    let index = c.get("index").unwrap_or(&no_index);
    let mut entries = Vec::new();
    let no_entries = Vec::new();
    for e in index
        .get("entries")
        .and_then(Value::as_array)
        .unwrap_or(&no_entries)
    {
        if let Some(entry) = e.get("entry") {
            entries.push(Entry {
                key: hex(str_field(e, "key_hex")?)?,
                shard_id: u64_field(entry, "shard_id")?,
                offset: u64_field(entry, "offset")?,
                size: u64_field(entry, "size")?,
            });
        }
    }
    Ok(Checkpoint {
        prefix: str_field(c, "prefix")?.to_string(),
        data_files: array(c, "data_files")?
            .iter()
            .map(|f| {
                f.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("bad data file"))
            })
            .collect::<Result<_>>()?,
        variables: array(c, "variables")?
            .iter()
            .map(variable)
            .collect::<Result<_>>()?,
        entries,
        index_blocks: index
            .get("blocks")
            .and_then(Value::as_array)
            .unwrap_or(&no_entries)
            .iter()
            .map(|b| Ok((u64_field(b, "offset")?, u64_field(b, "size")?)))
            .collect::<Result<_>>()?,
    })
}

/// Reads `fixtures/NAME/expected.json`.
pub fn expected(name: &str) -> Result<Expected> {
    let path = fixture(name).join("expected.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: Value = serde_json::from_str(&text)?;
    Ok(Expected {
        checkpoints: array(&json, "checkpoints")?
            .iter()
            .map(checkpoint)
            .collect::<Result<_>>()
            .with_context(|| format!("in {}", path.display()))?,
        latest: json
            .get("state")
            .and_then(|s| s.get("latest_checkpoint"))
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Copies the files of a fixture directory into a fresh temporary directory.
pub fn copy_fixture(name: &str) -> Result<(tempfile::TempDir, PathBuf)> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path().join(name);
    std::fs::create_dir(&dir)?;
    for entry in std::fs::read_dir(fixture(name))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
        }
    }
    Ok((temp, dir))
}

/// Flips one bit of one byte of a file.
pub fn flip_bit(path: &Path, offset: u64, bit: u8) -> Result<()> {
    let mut bytes = std::fs::read(path)?;
    let at = usize::try_from(offset)?;
    let byte = bytes
        .get_mut(at)
        .ok_or_else(|| anyhow!("{}: no byte at {offset}", path.display()))?;
    *byte ^= 1 << (bit % 8);
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Cuts a file down to `len` bytes.
pub fn truncate(path: &Path, len: u64) -> Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    Ok(())
}

/// The names of the files in `dir` (empty when it does not exist), sorted.
pub fn file_names(dir: &Path) -> Result<Vec<String>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}
