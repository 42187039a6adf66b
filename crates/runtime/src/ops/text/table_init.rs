//! `InitializeTableV2`, `InitializeTable`, `InitializeTableFromTextFileV2`,
//! `InitializeTableFromTextFile` and `LookupTableImportV2`: the ops that fill a table.
//!
//! Their work is done when the graph is loaded ([`super::table`] builds each table from its
//! initializers and the checkpoint), so running one (a fetch or a control edge that needs it,
//! such as `init_all_tables`) does nothing more: it has no outputs.
//!
//! A text file initializer reads its file as `tensorflow/core/kernels/lookup_util.cc` does:
//! one entry per line (`\n`-separated, a trailing `\r` dropped), the key and value each taken
//! from column `key_index`/`value_index` of the line split at `delimiter`, or the whole line
//! (`-2`), or the line number (`-1`); `vocab_size` (when not `-1`) lines exactly; an empty line
//! or a missing column is an error. Its path is resolved as follows: the path the graph holds
//! (relative to the model file's directory when relative) if that file exists, else
//! `assets/<file name>` beside the model file, else `<file name>` beside it; graphs carry the
//! absolute path of the machine that wrote them, which rarely exists where they run.

use std::path::{Path, PathBuf};

use ckpt_graph::{Model, Node};

use crate::ops::{kernel, BuildCtx, Built, Kernel, OpError};
use crate::value::TensorBuf;
use crate::{DType, Error, Value};

pub(crate) fn build(_node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    kernel(Done)
}

/// An initializer whose work was done at plan time.
#[derive(Debug)]
struct Done;

impl Kernel for Done {
    fn run(&self, _inputs: Vec<Value>) -> Result<Vec<Value>, OpError> {
        Ok(Vec::new())
    }

    fn is_pure(&self) -> bool {
        false
    }
}

/// The largest vocabulary file read (1 GiB).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Where the file `name` of a graph is found (see the module documentation), or the paths
/// tried.
fn resolve(model: &Model, name: &str) -> Result<PathBuf, String> {
    let dir = model.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let given = Path::new(name);
    let mut tried = vec![if given.is_absolute() {
        given.to_path_buf()
    } else {
        dir.join(given)
    }];
    if let Some(base) = given.file_name() {
        tried.push(dir.join("assets").join(base));
        tried.push(dir.join(base));
    }
    for p in &tried {
        if p.is_file() {
            return Ok(p.clone());
        }
    }
    let shown: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "asset file {name:?} not found (tried {})",
        shown.join(", ")
    ))
}

/// The keys and values a text file initializer `init` gives a table of `key_dtype` ->
/// `value_dtype`.
pub(crate) fn read_text_file(
    model: &Model,
    init: &Node,
    name: &str,
    key_dtype: DType,
    value_dtype: DType,
) -> Result<(Value, Value), String> {
    let attr_int = |a: &str, d: i64| init.attr_i64_or(a, d).map_err(|e| e.to_string());
    let key_index = attr_int("key_index", -2)?;
    let value_index = attr_int("value_index", -1)?;
    let vocab_size = attr_int("vocab_size", -1)?;
    let delimiter = init
        .attr_string_or("delimiter", "\t")
        .map_err(|e| e.to_string())?;
    let path = resolve(model, name)?;
    let shown = path.display().to_string();
    let len = std::fs::metadata(&path)
        .map_err(|e| format!("{shown}: {e}"))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "{shown}: {len} bytes, more than the {MAX_FILE_BYTES} read"
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("{shown}: {e}"))?;
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if vocab_size >= 0 {
        let want = usize::try_from(vocab_size).unwrap_or(usize::MAX);
        if lines.len() < want {
            return Err(format!(
                "{shown}: vocab_size is {vocab_size} but the file has {} lines",
                lines.len()
            ));
        }
        lines.truncate(want);
    }
    let mut keys = Column::new(key_dtype, lines.len());
    let mut values = Column::new(value_dtype, lines.len());
    for (n, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(format!("{shown}: line {} is empty", n + 1));
        }
        let fields: Vec<&[u8]> = if delimiter.is_empty() {
            vec![line]
        } else {
            split_bytes(line, delimiter.as_bytes())
        };
        for (index, col, what) in [
            (key_index, &mut keys, "key"),
            (value_index, &mut values, "value"),
        ] {
            let at = |m: String| format!("{shown}: line {}: {what} {m}", n + 1);
            match index {
                -2 => col.push_text(line).map_err(at)?,
                -1 => col.push_int(n as i64).map_err(at)?,
                i => match usize::try_from(i).ok().and_then(|i| fields.get(i)) {
                    Some(text) => col.push_text(text).map_err(at)?,
                    None => {
                        return Err(format!(
                            "{shown}: line {} has {} columns, the {what} is column {i}",
                            n + 1,
                            fields.len()
                        ))
                    }
                },
            }
        }
    }
    Ok((keys.finish()?, values.finish()?))
}

fn split_bytes<'a>(line: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + sep.len() <= line.len() {
        if &line[i..i + sep.len()] == sep {
            out.push(&line[start..i]);
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&line[start..]);
    out
}

/// One column of a text file, converted to its dtype.
enum Column {
    Str(Vec<Vec<u8>>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Unsupported(DType),
}

impl Column {
    fn new(dtype: DType, n: usize) -> Column {
        match dtype {
            DType::String => Column::Str(Vec::with_capacity(n)),
            DType::Int64 => Column::I64(Vec::with_capacity(n)),
            DType::Int32 => Column::I32(Vec::with_capacity(n)),
            DType::Float32 => Column::F32(Vec::with_capacity(n)),
            DType::Float64 => Column::F64(Vec::with_capacity(n)),
            other => Column::Unsupported(other),
        }
    }

    fn push_text(&mut self, text: &[u8]) -> Result<(), String> {
        let s = || std::str::from_utf8(text).map(str::trim).unwrap_or("");
        let bad =
            |dtype: &str| format!("{:?} is not a valid {dtype}", String::from_utf8_lossy(text));
        match self {
            Column::Str(v) => v.push(text.to_vec()),
            Column::I64(v) => v.push(s().parse().map_err(|_| bad("int64"))?),
            Column::I32(v) => v.push(s().parse().map_err(|_| bad("int32"))?),
            Column::F32(v) => v.push(s().parse().map_err(|_| bad("float"))?),
            Column::F64(v) => v.push(s().parse().map_err(|_| bad("double"))?),
            Column::Unsupported(d) => return Err(format!("of dtype {d} cannot be read from text")),
        }
        Ok(())
    }

    fn push_int(&mut self, x: i64) -> Result<(), String> {
        match self {
            Column::I64(v) => v.push(x),
            Column::I32(v) => {
                v.push(i32::try_from(x).map_err(|_| format!("line number {x} overflows int32"))?)
            }
            _ => return Err("must be an integer to hold the line number".into()),
        }
        Ok(())
    }

    fn finish(self) -> Result<Value, String> {
        let wrap = |r: Result<Value, Error>| r.map_err(|e| e.to_string());
        match self {
            Column::Str(v) => wrap(Ok(Value::Str(
                TensorBuf::new(vec![v.len()], v).map_err(|e| e.to_string())?,
            ))),
            Column::I64(v) => wrap(Value::new(vec![v.len()], v)),
            Column::I32(v) => wrap(Value::new(vec![v.len()], v)),
            Column::F32(v) => wrap(Value::new(vec![v.len()], v)),
            Column::F64(v) => wrap(Value::new(vec![v.len()], v)),
            Column::Unsupported(d) => Err(format!("dtype {d} cannot be read from text")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_in(dir: &Path) -> Result<Model, Box<dyn std::error::Error>> {
        let mut m = Model::from_graph_def(&ckpt_proto::GraphDef::default())
            .or_else(|_| Model::from_text("node { name: \"a\" op: \"NoOp\" }"))?;
        m.dir = Some(dir.to_path_buf());
        Ok(m)
    }

    fn init(attrs: &str) -> Result<Node, Box<dyn std::error::Error>> {
        let m = Model::from_text(&format!(
            "node {{ name: \"init\" op: \"InitializeTableFromTextFileV2\" {attrs} }}"
        ))?;
        Ok(m.graph.nodes[0].clone())
    }

    #[test]
    fn reads_columns_and_line_numbers_and_finds_moved_assets(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("assets"))?;
        std::fs::write(dir.path().join("assets/vocab.tsv"), "a\t10\r\nb\t20\n")?;
        let m = model_in(dir.path())?;
        // The graph names a path of another machine: found as assets/vocab.tsv.
        let node = init(
            "attr { key: \"key_index\" value { i: 0 } } attr { key: \"value_index\" value { i: 1 } }",
        )?;
        let (k, v) = read_text_file(&m, &node, "/gone/vocab.tsv", DType::String, DType::Int64)?;
        assert_eq!(k.as_strings(), Some(&[b"a".to_vec(), b"b".to_vec()][..]));
        assert_eq!(v.as_i64(), Some(&[10, 20][..]));
        let node = init("attr { key: \"key_index\" value { i: -2 } } attr { key: \"value_index\" value { i: -1 } }")?;
        let (k, v) = read_text_file(&m, &node, "vocab.tsv", DType::String, DType::Int64)?;
        assert_eq!(
            k.as_strings(),
            Some(&[b"a\t10".to_vec(), b"b\t20".to_vec()][..])
        );
        assert_eq!(v.as_i64(), Some(&[0, 1][..]));
        let node = init("attr { key: \"key_index\" value { i: 3 } } attr { key: \"value_index\" value { i: -1 } }")?;
        let err = read_text_file(&m, &node, "vocab.tsv", DType::String, DType::Int64)
            .err()
            .unwrap_or_default();
        assert!(
            err.ends_with("line 1 has 2 columns, the key is column 3"),
            "{err}"
        );
        let err = read_text_file(&m, &node, "nothere.txt", DType::String, DType::Int64)
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with("asset file \"nothere.txt\" not found (tried "),
            "{err}"
        );
        Ok(())
    }
}
