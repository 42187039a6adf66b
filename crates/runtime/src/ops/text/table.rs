//! `HashTableV2`, `HashTable`, `MutableHashTableV2`, `MutableHashTable`: key -> value tables,
//! built once when the graph is loaded and read-only while it runs.
//!
//! A TF1 graph fills its tables with initializer ops that `tf.compat.v1.tables_initializer()`
//! runs before any inference; the runtime does that work at plan time instead:
//!
//! - a `HashTable(V2)` takes every `InitializeTable(V2)` and `LookupTableImportV2` (constant
//!   keys and values; TF 2's `KeyValueTensorInitializer` emits the latter) and
//!   `InitializeTableFromTextFile(V2)` node of the graph whose table input is this node (through
//!   `Identity` nodes); a table without one is an error, as TensorFlow's "Table not
//!   initialized";
//! - a `MutableHashTable(V2)` takes its contents from the checkpoint entries `<name>-keys` and
//!   `<name>-values`, which TF's saver writes for it (`LookupTableExportV2`) and restores with
//!   `LookupTableImportV2`; `<name>` is tried as the node's name, its `shared_name`, and the last
//!   component of its name, in that order. Without those entries the table is empty.
//!
//! The node's output (TensorFlow's resource handle) is a scalar string holding the node's
//! name; the lookup kernels receive the table itself when they are built. Tables of tensors
//! (`MutableHashTableOfTensorsV2`, `value_shape` other than scalar) are not supported.

use std::collections::HashMap;
use std::sync::Arc;

use ckpt_bundle::Checkpoint;
use ckpt_graph::{Graph, Model, Node, NodeId, Output};

use crate::ops::{dtype_attr, node_error, BuildCtx, Built};
use crate::value::{map_any, with_dtype, Datum, TensorBuf};
use crate::{DType, Error, Value};

pub(crate) fn build(node: &Node, _ctx: &BuildCtx<'_>) -> Result<Built, Error> {
    // Checked here so that an unsupported dtype is reported when the graph is loaded.
    dtype_attr(node, "key_dtype")?;
    dtype_attr(node, "value_dtype")?;
    Ok(Built::Table)
}

/// A table's keys, by the type they compare as.
#[derive(Debug)]
enum Keys {
    Str(HashMap<Vec<u8>, usize>),
    Int(HashMap<i64, usize>),
}

/// A read-only hash table: each key's position in `values`.
#[derive(Debug)]
pub(crate) struct Table {
    /// The table node's name, for error messages.
    pub name: String,
    pub key_dtype: DType,
    pub value_dtype: DType,
    keys: Keys,
    /// Rank 1, `value_dtype`.
    values: Value,
}

impl Table {
    /// The number of entries (`LookupTableSizeV2`).
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The position of each key in `keys` (a tensor of the table's key dtype), `None` for
    /// keys the table lacks.
    pub(crate) fn positions(&self, keys: &Value) -> Result<Vec<Option<usize>>, String> {
        if keys.dtype() != self.key_dtype {
            return Err(format!(
                "keys have dtype {}, table {:?} has key dtype {}",
                keys.dtype(),
                self.name,
                self.key_dtype
            ));
        }
        Ok(match (&self.keys, keys) {
            (Keys::Str(m), Value::Str(k)) => k.data().iter().map(|s| m.get(s).copied()).collect(),
            (Keys::Int(m), Value::I64(k)) => k.data().iter().map(|x| m.get(x).copied()).collect(),
            (Keys::Int(m), Value::I32(k)) => k
                .data()
                .iter()
                .map(|&x| m.get(&i64::from(x)).copied())
                .collect(),
            _ => {
                return Err(format!(
                    "keys of dtype {} cannot be looked up",
                    keys.dtype()
                ))
            }
        })
    }

    /// The values at `positions`, `default` (a scalar of the value dtype) where `None`, shaped
    /// `shape`.
    pub(crate) fn gather(
        &self,
        positions: &[Option<usize>],
        default: &Value,
        shape: Vec<usize>,
    ) -> Result<Value, String> {
        if default.dtype() != self.value_dtype {
            return Err(format!(
                "default_value has dtype {}, table {:?} has value dtype {}",
                default.dtype(),
                self.name,
                self.value_dtype
            ));
        }
        if default.len() != 1 {
            return Err(format!(
                "default_value must be a scalar, got shape {:?}",
                default.shape()
            ));
        }
        with_dtype!(self.value_dtype, T => {
            let (Some(vals), Some(def)) = (self.values.get::<T>(), default.get::<T>()) else {
                return Err("table values have the wrong dtype".into());
            };
            let (vals, def) = (vals.data(), &def.data()[0]);
            let out: Vec<T> = pick(vals, positions, def);
            Ok(T::wrap(TensorBuf::new(shape, out).map_err(|e| e.to_string())?))
        }, else Err(format!("value dtype {} is not supported", self.value_dtype)))
    }
}

/// `vals[p]` for each position, `default` where `None` (or out of range).
fn pick<T: Clone>(vals: &[T], positions: &[Option<usize>], default: &T) -> Vec<T> {
    positions
        .iter()
        .map(|p| p.and_then(|i| vals.get(i)).unwrap_or(default).clone())
        .collect()
}

/// `vals[i]` for each `i` of `order` (all in range).
fn select<T: Clone>(vals: &[T], order: &[usize]) -> Vec<T> {
    order.iter().filter_map(|&i| vals.get(i).cloned()).collect()
}

/// Collects keys and values, then makes the table.
struct TableBuilder {
    name: String,
    key_dtype: DType,
    value_dtype: DType,
    keys: Vec<Value>,
    values: Vec<Value>,
}

impl TableBuilder {
    /// Adds `keys` and `values` (same element count, the table's dtypes).
    fn add(&mut self, keys: Value, values: Value) -> Result<(), String> {
        if keys.dtype() != self.key_dtype || values.dtype() != self.value_dtype {
            return Err(format!(
                "keys/values of dtypes {}/{} for a table of {} -> {}",
                keys.dtype(),
                values.dtype(),
                self.key_dtype,
                self.value_dtype
            ));
        }
        if keys.len() != values.len() {
            return Err(format!(
                "{} keys but {} values (shapes {:?} and {:?})",
                keys.len(),
                values.len(),
                keys.shape(),
                values.shape()
            ));
        }
        self.keys.push(keys);
        self.values.push(values);
        Ok(())
    }

    /// The table; a key given twice with different values is an error (as TensorFlow's
    /// `HashTable has different value for same key`); `overwrite` keeps the last value instead
    /// (a mutable table's import).
    fn finish(self, overwrite: bool) -> Result<Table, String> {
        let values = concat_flat(&self.values, self.value_dtype)?;
        let same =
            |i: usize, j: usize| map_any!(&values, t => t.data()[i] == t.data()[j], else false);
        let mut order: Vec<usize> = Vec::new();
        let keys = match self.key_dtype {
            DType::String => {
                let mut m: HashMap<Vec<u8>, usize> = HashMap::new();
                let mut i = 0;
                for k in &self.keys {
                    let Some(k) = k.as_strings() else { continue };
                    for s in k {
                        insert(&mut m, s.clone(), i, overwrite, &same, &mut order, || {
                            String::from_utf8_lossy(s).into_owned()
                        })?;
                        i += 1;
                    }
                }
                Keys::Str(m)
            }
            DType::Int64 | DType::Int32 => {
                let mut m: HashMap<i64, usize> = HashMap::new();
                let mut i = 0;
                for k in &self.keys {
                    let ints: Vec<i64> = match k {
                        Value::I64(t) => t.data().to_vec(),
                        Value::I32(t) => t.data().iter().map(|&x| i64::from(x)).collect(),
                        _ => continue,
                    };
                    for x in ints {
                        insert(&mut m, x, i, overwrite, &same, &mut order, || x.to_string())?;
                        i += 1;
                    }
                }
                Keys::Int(m)
            }
            other => {
                return Err(format!(
                    "key dtype {other} is not supported (string, int32, int64)"
                ))
            }
        };
        // Keep only the values the keys point at, in a compact vector.
        let mut remap = vec![usize::MAX; values.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old] = new;
        }
        let compact = map_any!(&values, t => Datum::wrap(TensorBuf::new(
            vec![order.len()],
            select(t.data(), &order),
        ).map_err(|e| e.to_string())?), else return Err("table values are not a tensor".into()));
        let keys = match keys {
            Keys::Str(m) => Keys::Str(m.into_iter().map(|(k, v)| (k, remap[v])).collect()),
            Keys::Int(m) => Keys::Int(m.into_iter().map(|(k, v)| (k, remap[v])).collect()),
        };
        Ok(Table {
            name: self.name,
            key_dtype: self.key_dtype,
            value_dtype: self.value_dtype,
            keys,
            values: compact,
        })
    }
}

/// Inserts key `k` at value position `i` (see [`TableBuilder::finish`]).
fn insert<K: std::hash::Hash + Eq>(
    m: &mut HashMap<K, usize>,
    k: K,
    i: usize,
    overwrite: bool,
    same: &impl Fn(usize, usize) -> bool,
    order: &mut Vec<usize>,
    show: impl Fn() -> String,
) -> Result<(), String> {
    match m.get(&k) {
        None => {
            m.insert(k, i);
            order.push(i);
        }
        Some(&old) if overwrite => {
            if let Some(slot) = order.iter_mut().find(|o| **o == old) {
                *slot = i;
            }
            m.insert(k, i);
        }
        Some(&old) if same(old, i) => {}
        Some(_) => {
            return Err(format!(
                "key {:?} is given two different values (TensorFlow: HashTable has different value for same key)",
                show()
            ))
        }
    }
    Ok(())
}

/// The elements of `parts` (all of `dtype`) as one rank-1 value.
fn concat_flat(parts: &[Value], dtype: DType) -> Result<Value, String> {
    with_dtype!(dtype, T => {
        let mut all: Vec<T> = Vec::new();
        for p in parts {
            if let Some(t) = p.get::<T>() {
                all.extend_from_slice(t.data());
            }
        }
        let n = all.len();
        Ok(T::wrap(TensorBuf::new(vec![n], all).map_err(|e| e.to_string())?))
    }, else Err(format!("value dtype {dtype} is not supported")))
}

/// Follows `Identity` nodes from `o` back to the node producing the value.
pub(crate) fn source_node(graph: &Graph, mut o: Output) -> NodeId {
    for _ in 0..graph.nodes.len() {
        let node = graph.node(o.node);
        match (node.op.as_str(), node.inputs.first()) {
            ("Identity" | "Snapshot", Some(&i)) => o = i,
            _ => break,
        }
    }
    o.node
}

/// The value of `o` when it is a constant (a `Const`, possibly behind `Identity` nodes).
fn constant(graph: &Graph, o: Output, what: &str) -> Result<Value, String> {
    let node = graph.node(source_node(graph, o));
    if node.op != "Const" {
        return Err(format!(
            "{what} comes from {:?} ({}), not a constant: only constant table initializers are supported",
            node.name, node.op
        ));
    }
    let proto = node.attr_tensor("value").map_err(|e| e.to_string())?;
    crate::tensor_proto::decode(proto).map_err(|m| format!("{what}: {m}"))
}

/// Builds table node `id` of the main graph (see the module documentation).
pub(crate) fn load(
    model: &Model,
    graph: &Graph,
    bundle: Option<&Checkpoint>,
    id: NodeId,
    node: &Node,
) -> Result<Arc<Table>, Error> {
    let err = |m: String| node_error(node, m);
    let mut builder = TableBuilder {
        name: node.name.clone(),
        key_dtype: dtype_attr(node, "key_dtype")?,
        value_dtype: dtype_attr(node, "value_dtype")?,
        keys: Vec::new(),
        values: Vec::new(),
    };
    let mutable = node.op.starts_with("Mutable");
    if mutable {
        if let Some(bundle) = bundle {
            load_checkpoint(bundle, node, &mut builder).map_err(err)?;
        }
        return builder.finish(true).map(Arc::new).map_err(err);
    }
    let mut initialized = false;
    for init in &graph.nodes {
        let is_init = matches!(
            init.op.as_str(),
            "InitializeTable"
                | "InitializeTableV2"
                | "InitializeTableFromTextFile"
                | "InitializeTableFromTextFileV2"
                | "LookupTableImportV2"
        );
        let Some(&table_input) = init.inputs.first() else {
            continue;
        };
        if !is_init || source_node(graph, table_input) != id {
            continue;
        }
        let in_init = |m: String| {
            node_error(
                node,
                format!("initializer {:?} ({}): {m}", init.name, init.op),
            )
        };
        if init.op.contains("TextFile") {
            let file = init
                .inputs
                .get(1)
                .ok_or_else(|| in_init("no filename input".into()))?;
            let name = constant(graph, *file, "the filename").map_err(in_init)?;
            let name = match name.as_strings() {
                Some([s]) => String::from_utf8_lossy(s).into_owned(),
                _ => return Err(in_init("the filename must be a scalar string".into())),
            };
            let (keys, values) = super::table_init::read_text_file(
                model,
                init,
                &name,
                builder.key_dtype,
                builder.value_dtype,
            )
            .map_err(in_init)?;
            builder.add(keys, values).map_err(in_init)?;
        } else {
            let (Some(&k), Some(&v)) = (init.inputs.get(1), init.inputs.get(2)) else {
                return Err(in_init("expected table, keys and values inputs".into()));
            };
            let keys = constant(graph, k, "the keys").map_err(in_init)?;
            let values = constant(graph, v, "the values").map_err(in_init)?;
            builder.add(keys, values).map_err(in_init)?;
        }
        initialized = true;
    }
    if !initialized {
        return Err(err(
            "the table has no InitializeTableV2, LookupTableImportV2 or InitializeTableFromTextFileV2 node (TensorFlow: Table not initialized)".into(),
        ));
    }
    builder.finish(false).map(Arc::new).map_err(err)
}

/// A mutable table's `-keys`/`-values` checkpoint entries.
fn load_checkpoint(
    bundle: &Checkpoint,
    node: &Node,
    builder: &mut TableBuilder,
) -> Result<(), String> {
    let mut names = vec![node.name.clone()];
    if let Ok(shared) = node.attr_string_or("shared_name", "") {
        if !shared.is_empty() {
            names.push(shared);
        }
    }
    if let Some(last) = node.name.rsplit('/').next() {
        names.push(last.to_string());
    }
    let Some(prefix) = names
        .iter()
        .find(|n| bundle.contains(&format!("{n}-keys")) && bundle.contains(&format!("{n}-values")))
    else {
        return Ok(());
    };
    let read = |key: String| -> Result<Value, String> {
        let t = bundle
            .read(&key)
            .map_err(|e| format!("checkpoint tensor {key:?}: {e}"))?;
        Value::from_tensor(&t).map_err(|e| format!("checkpoint tensor {key:?}: {e}"))
    };
    let keys = read(format!("{prefix}-keys"))?;
    let values = read(format!("{prefix}-values"))?;
    if values.shape().len() > 1 {
        return Err(format!(
            "checkpoint tensor \"{prefix}-values\" has shape {:?}: tables of tensors are not supported",
            values.shape()
        ));
    }
    builder
        .add(keys, values)
        .map_err(|m| format!("checkpoint tensors \"{prefix}-keys\"/\"{prefix}-values\": {m}"))
}
