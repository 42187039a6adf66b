//! `ckpt._ckpt`: the native half of the `ckpt` Python package.
//!
//! It exposes raw readings (dtype name, shape, element bytes or byte strings) and leaves the
//! numpy dtypes, shapes and TensorFlow's call conventions to `python/ckpt/__init__.py`. Element
//! bytes of a tensor stored whole in a little-endian V2 bundle come back as a read-only
//! `uint8` numpy array that views the memory map: its base object is the [`Reader`], which owns
//! the [`Checkpoint`] and so the mapping, so the view stays valid as long as any array uses it.
//! Everything else (V1 tensors, partitioned variables, big-endian bundles, misaligned data) is
//! copied into a numpy-owned buffer.
//!
//! Errors become Python exceptions: a missing tensor `ckpt.errors.NotFoundError` (a `KeyError`)
//! with TensorFlow-like close-name suggestions; a path that leads to no checkpoint
//! `FileNotFoundError`; other I/O errors `OSError`; damaged files, bad arguments and graph
//! errors `ValueError`; each with the message the `ckpt` command prints.
// The one `unsafe` is numpy's `borrow_from_array` (a view of the memory map); see `bytes_array`.
#![deny(unsafe_code)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ckpt_bundle::{BundleWriter, Checkpoint, DType, ReadOptions, Tensor, TensorData};
use ckpt_graph::Model;
use ckpt_runtime::{LoadedSavedModel, SessionOptions, Value};
use numpy::ndarray::ArrayView1;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// One tensor as handed to Python: `(dtype_name, shape, payload, is_view)` where `payload` is a
/// 1-D `uint8` array of the little-endian element bytes or a list of `bytes`.
type Raw<'py> = (String, Vec<u64>, Bound<'py, PyAny>, bool);

/// A tensor handed in from Python: `(name, dtype_name, shape, payload)`.
type RawIn<'py> = (String, String, Vec<u64>, Bound<'py, PyAny>);

/// Raises `ckpt.errors.<class_name>(message)`, falling back to `fallback` if that module cannot
/// be imported (it always can when the package is installed).
fn package_error(py: Python<'_>, class_name: &str, message: String) -> PyErr {
    let made = py
        .import("ckpt.errors")
        .and_then(|m| m.getattr(class_name))
        .and_then(|cls| cls.call1((message.clone(),)));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) => PyValueError::new_err(message),
    }
}

/// Maps a bundle error to the Python exception a TensorFlow user expects.
fn bundle_error(py: Python<'_>, error: ckpt_bundle::Error) -> PyErr {
    use ckpt_bundle::Error as E;
    let message = error.to_string();
    match error {
        E::TensorNotFound {
            tensor,
            suggestions,
            ..
        } => {
            let err = package_error(py, "NotFoundError", message);
            let value = err.value(py);
            // Attributes for programs; the message already says all of it.
            let _ = value.setattr("name", tensor);
            let _ = value.setattr("suggestions", suggestions);
            err
        }
        E::CheckpointNotFound { .. } | E::MissingShard { .. } => {
            PyFileNotFoundError::new_err(message)
        }
        E::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        E::Io { .. } => PyOSError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// The error of opening `path`, prefixed as the `ckpt` command prints it.
fn open_error(py: Python<'_>, path: &Path, error: ckpt_bundle::Error) -> PyErr {
    let remote = matches!(error, ckpt_bundle::Error::RemotePath { .. });
    let err = bundle_error(py, error);
    if remote {
        return err;
    }
    let message = format!(
        "cannot open checkpoint {}: {}",
        path.display(),
        err.value(py)
    );
    rebuild(py, &err, message)
}

/// `err` again, of the same class, with another message (attributes are not kept).
fn rebuild(py: Python<'_>, err: &PyErr, message: String) -> PyErr {
    match err.get_type(py).call1((message.clone(),)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) => PyValueError::new_err(message),
    }
}

fn runtime_error(error: ckpt_runtime::Error) -> PyErr {
    let message = match &error {
        ckpt_runtime::Error::UnsupportedOps { .. } => format!(
            "{error}\n(`ckpt.supported_ops()` lists the {} supported ops)",
            ckpt_runtime::supported_ops().len()
        ),
        _ => error.to_string(),
    };
    PyValueError::new_err(message)
}

fn graph_error(path: &Path, error: ckpt_graph::Error) -> PyErr {
    PyValueError::new_err(format!("cannot load graph {}: {error}", path.display()))
}

/// A read-only `uint8` array viewing `bytes` (borrowed from `owner`'s memory map) when they are
/// aligned for elements of `element_size`, a numpy-owned copy otherwise. Returns the array and
/// whether it is a view.
// The `Cow` itself is the point: only `Borrowed` bytes lie in the memory map; `Owned` ones die
// with the tensor and must be copied.
#[allow(clippy::ptr_arg)]
fn bytes_array<'py>(
    owner: &Bound<'py, PyAny>,
    bytes: &Cow<'_, [u8]>,
    element_size: usize,
) -> (Bound<'py, PyAny>, bool) {
    let py = owner.py();
    let align = element_size.clamp(1, 8);
    if let Cow::Borrowed(slice) = bytes {
        if !slice.is_empty() && (slice.as_ptr() as usize) % align == 0 {
            let view = ArrayView1::from(*slice);
            // SAFETY: `slice` lies in a memory map owned by the `Checkpoint` inside `owner`
            // (a frozen `Reader`, whose checkpoint is never replaced or dropped while the object
            // lives). numpy keeps `owner` as the array's base object, so the mapping outlives
            // the array and every view of it; the array is made read-only below, so the
            // read-only mapping is never written through it.
            #[allow(unsafe_code)]
            let array = unsafe { PyArray1::<u8>::borrow_from_array(&view, owner.clone()) };
            let readonly = array.readwrite().make_nonwriteable();
            return (readonly.as_any().clone(), true);
        }
    }
    (PyArray1::<u8>::from_slice(py, bytes).into_any(), false)
}

/// The raw Python form of a tensor; `owner` is the object keeping its bytes alive.
fn tensor_to_py<'py>(owner: &Bound<'py, PyAny>, tensor: &Tensor<'_>) -> PyResult<Raw<'py>> {
    let py = owner.py();
    let dtype = tensor.dtype();
    let (payload, view) = match tensor.data() {
        TensorData::Bytes(bytes) => bytes_array(owner, bytes, dtype.element_size().unwrap_or(1)),
        TensorData::Strings(strings) => {
            let items = strings.iter().map(|s| PyBytes::new(py, s));
            (PyList::new(py, items)?.into_any(), false)
        }
    };
    Ok((
        dtype.name().to_string(),
        tensor.shape().to_vec(),
        payload,
        view,
    ))
}

/// A tensor from its raw Python form, borrowing the payload's bytes.
fn tensor_from_py<'a>(
    name: &str,
    dtype_name: &str,
    shape: Vec<u64>,
    payload: &'a Payload<'_>,
) -> PyResult<Tensor<'a>> {
    let dtype = DType::from_name(dtype_name).ok_or_else(|| {
        PyValueError::new_err(format!("tensor {name:?}: unknown dtype {dtype_name:?}"))
    })?;
    let made = match payload {
        Payload::Bytes(array) => {
            let bytes = array.as_slice().map_err(|e| {
                PyValueError::new_err(format!("tensor {name:?}: element bytes: {e}"))
            })?;
            Tensor::from_bytes(dtype, shape, bytes)
        }
        Payload::Strings(items) => Tensor::from_strings(
            dtype,
            shape,
            items.iter().map(|b| Cow::Borrowed(b.as_bytes())).collect(),
        ),
    };
    made.map_err(|e| PyValueError::new_err(format!("tensor {name:?}: {e}")))
}

/// The element bytes or byte strings of a tensor handed in from Python.
enum Payload<'py> {
    Bytes(PyReadonlyArray1<'py, u8>),
    Strings(Vec<Bound<'py, PyBytes>>),
}

impl<'py> Payload<'py> {
    fn extract(name: &str, payload: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(array) = payload.extract::<PyReadonlyArray1<'py, u8>>() {
            return Ok(Payload::Bytes(array));
        }
        if let Ok(list) = payload.extract::<Vec<Bound<'py, PyBytes>>>() {
            return Ok(Payload::Strings(list));
        }
        Err(PyValueError::new_err(format!(
            "tensor {name:?}: expected a uint8 array or a list of bytes"
        )))
    }
}

/// Runtime sessions already planned, by what they were planned for.
type SessionCache<K> = Mutex<HashMap<K, Arc<ckpt_runtime::Session>>>;

/// An open checkpoint (V1 or V2), read through `ckpt.CheckpointReader`.
#[pyclass(frozen, module = "ckpt._ckpt")]
struct Reader {
    checkpoint: Checkpoint,
}

#[pymethods]
impl Reader {
    /// Opens the checkpoint `path` leads to (a prefix, any of its files, a directory with a
    /// `checkpoint` state file, a SavedModel directory, a V1 file or shard). With `verify`,
    /// each read checks the tensor's crc32c.
    #[new]
    #[pyo3(signature = (path, verify = true))]
    fn new(py: Python<'_>, path: PathBuf, verify: bool) -> PyResult<Self> {
        let options = ReadOptions {
            verify_checksums: verify,
        };
        let checkpoint = py
            .detach(|| Checkpoint::open_with(&path, options))
            .map_err(|e| open_error(py, &path, e))?;
        Ok(Reader { checkpoint })
    }

    /// The checkpoint's prefix (V2), file or shard pattern (V1).
    #[getter]
    fn prefix(&self) -> PathBuf {
        self.checkpoint.prefix().to_path_buf()
    }

    /// `"V1"` or `"V2"`.
    #[getter]
    fn format(&self) -> &'static str {
        self.checkpoint.format().name()
    }

    /// Every tensor as `(name, dtype_name, shape)`, sorted by name.
    fn list(&self) -> Vec<(String, &'static str, Vec<u64>)> {
        self.checkpoint
            .tensors()
            .iter()
            .map(|t| (t.name.clone(), t.dtype.name(), t.shape.clone()))
            .collect()
    }

    /// Whether a tensor of that name exists.
    fn has(&self, name: &str) -> bool {
        self.checkpoint.contains(name)
    }

    /// `(dtype_name, shape)` of tensor `name`.
    fn info(&self, py: Python<'_>, name: &str) -> PyResult<(&'static str, Vec<u64>)> {
        let info = self
            .checkpoint
            .info(name)
            .map_err(|e| bundle_error(py, e))?;
        Ok((info.dtype.name(), info.shape.clone()))
    }

    /// Reads tensor `name`: `(dtype_name, shape, payload, is_view)`.
    fn read<'py>(slf: &Bound<'py, Self>, name: &str) -> PyResult<Raw<'py>> {
        let py = slf.py();
        let tensor = slf
            .get()
            .checkpoint
            .read(name)
            .map_err(|e| bundle_error(py, e))?;
        tensor_to_py(slf.as_any(), &tensor)
    }

    /// Reads every tensor and checks every checksum; returns `(tensors, bytes)`.
    fn verify(&self, py: Python<'_>) -> PyResult<(usize, u64)> {
        let report = py
            .detach(|| self.checkpoint.verify())
            .map_err(|e| bundle_error(py, e))?;
        Ok((report.tensors, report.bytes))
    }
}

/// Writes a checkpoint (one shard) at `prefix` from `(name, dtype_name, shape, payload)` items.
#[pyfunction]
fn save(py: Python<'_>, prefix: PathBuf, items: Vec<RawIn<'_>>) -> PyResult<()> {
    let payloads: Vec<Payload<'_>> = items
        .iter()
        .map(|(name, _, _, p)| Payload::extract(name, p))
        .collect::<PyResult<_>>()?;
    let mut tensors = Vec::with_capacity(items.len());
    for ((name, dtype, shape, _), payload) in items.iter().zip(&payloads) {
        tensors.push((
            name.as_str(),
            tensor_from_py(name, dtype, shape.clone(), payload)?,
        ));
    }
    let write_error = |e| bundle_error(py, e);
    let mut writer = BundleWriter::create(&prefix).map_err(write_error)?;
    for (name, tensor) in &tensors {
        writer.add(name, tensor).map_err(write_error)?;
    }
    writer.finish().map_err(write_error)
}

/// The latest checkpoint recorded in `dir/checkpoint`, or `None`.
#[pyfunction]
fn latest_checkpoint(py: Python<'_>, dir: PathBuf) -> PyResult<Option<PathBuf>> {
    ckpt_bundle::state::latest_checkpoint(&dir).map_err(|e| bundle_error(py, e))
}

/// Every op `Session` can run.
#[pyfunction]
fn supported_ops() -> Vec<&'static str> {
    ckpt_runtime::supported_ops().to_vec()
}

/// A graph and its variables, run as `tf.compat.v1.Session.run` does.
#[pyclass(frozen, module = "ckpt._ckpt")]
struct Graph {
    model: Model,
    checkpoint: Option<Checkpoint>,
    options: SessionOptions,
    /// Sessions already planned, by (fetches, feeds).
    sessions: SessionCache<(Vec<String>, Vec<String>)>,
}

/// A graph file given as the path: a frozen `.pb`, a text graph, or a `.meta` file.
fn is_graph_file(path: &Path) -> bool {
    path.is_file()
        && path.extension().is_some_and(|e| {
            e == "pb"
                || e == "meta"
                || ckpt_graph::TEXT_EXTENSIONS
                    .iter()
                    .any(|t| e.eq_ignore_ascii_case(t))
        })
}

#[pymethods]
impl Graph {
    /// Loads the graph `path` names and the variables of its checkpoint: a checkpoint (its
    /// `.meta`, else the `graph.pbtxt` beside it), or a graph file whose variables come from
    /// `checkpoint` (a `.meta`'s own checkpoint when not given).
    #[new]
    #[pyo3(signature = (path, checkpoint = None, threads = None, inference = false))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        checkpoint: Option<PathBuf>,
        threads: Option<usize>,
        inference: bool,
    ) -> PyResult<Self> {
        let open = |p: &Path| Checkpoint::open(p).map_err(|e| open_error(py, p, e));
        let (model, ckpt) = if is_graph_file(&path) {
            let model = Model::load(&path).map_err(|e| graph_error(&path, e))?;
            let ckpt = match (&checkpoint, path.extension().is_some_and(|e| e == "meta")) {
                (Some(c), _) => Some(open(c)?),
                (None, true) => Checkpoint::open(&path).ok(),
                (None, false) => None,
            };
            (model, ckpt)
        } else {
            let ckpt = open(&path)?;
            let meta = ckpt.meta_path();
            let graph_file = if meta.is_file() {
                meta
            } else {
                let beside = ckpt
                    .prefix()
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join("graph.pbtxt");
                if !beside.is_file() {
                    return Err(PyFileNotFoundError::new_err(format!(
                        "{}: no graph beside the checkpoint (expected {} or {}); a Session needs the .meta that tf.train.Saver writes, the graph.pbtxt an Estimator writes, or a frozen .pb",
                        path.display(),
                        meta.display(),
                        beside.display()
                    )));
                }
                beside
            };
            let model = Model::load(&graph_file).map_err(|e| graph_error(&graph_file, e))?;
            let ckpt = match &checkpoint {
                Some(c) => open(c)?,
                None => ckpt,
            };
            (model, Some(ckpt))
        };
        Ok(Graph {
            model,
            checkpoint: ckpt,
            options: SessionOptions {
                threads,
                inference,
                ..SessionOptions::default()
            },
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Runs the graph: `feeds` are `(name, dtype_name, shape, payload)`, the result one raw
    /// tensor per fetch.
    fn run<'py>(
        slf: &Bound<'py, Self>,
        fetches: Vec<String>,
        feeds: Vec<RawIn<'py>>,
    ) -> PyResult<Vec<Raw<'py>>> {
        let py = slf.py();
        let this = slf.get();
        let values = feed_values(&feeds)?;
        let feed_names: Vec<String> = values.iter().map(|(n, _)| n.clone()).collect();
        let session = this.session(fetches, feed_names)?;
        let outputs = run_session(py, &session, &values)?;
        let none = py.None().into_bound(py);
        outputs
            .iter()
            .map(|v| {
                let tensor = v.to_tensor().map_err(runtime_error)?;
                tensor_to_py(&none, &tensor)
            })
            .collect()
    }
}

impl Graph {
    fn session(
        &self,
        fetches: Vec<String>,
        feeds: Vec<String>,
    ) -> PyResult<Arc<ckpt_runtime::Session>> {
        let key = (fetches, feeds);
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| PyValueError::new_err("a previous run panicked"))?;
        if let Some(s) = sessions.get(&key) {
            return Ok(Arc::clone(s));
        }
        let fetch_refs: Vec<&str> = key.0.iter().map(String::as_str).collect();
        let feed_refs: Vec<&str> = key.1.iter().map(String::as_str).collect();
        let session = ckpt_runtime::Session::new(
            &self.model,
            self.checkpoint.as_ref(),
            &fetch_refs,
            &feed_refs,
            self.options,
        )
        .map_err(runtime_error)?;
        let session = Arc::new(session);
        sessions.insert(key, Arc::clone(&session));
        Ok(session)
    }
}

/// A SavedModel's meta graph and variables, its signatures run as TF2's
/// `loaded.signatures[key](**inputs)` does.
#[pyclass(frozen, module = "ckpt._ckpt")]
struct SavedModel {
    loaded: LoadedSavedModel,
    options: SessionOptions,
    /// Sessions already planned, by (signature, inputs fed).
    sessions: SessionCache<(String, Vec<String>)>,
}

#[pymethods]
impl SavedModel {
    /// Loads the meta graph of the SavedModel at `path` whose tag set is `tags`, with its
    /// variables.
    #[new]
    #[pyo3(signature = (path, tags, threads = None, inference = false))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        tags: Vec<String>,
        threads: Option<usize>,
        inference: bool,
    ) -> PyResult<Self> {
        let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let loaded = py
            .detach(|| LoadedSavedModel::load(&path, &tag_refs))
            .map_err(|e| match e {
                // The message names the path already.
                ckpt_runtime::Error::Graph(ref g)
                    if matches!(
                        **g,
                        ckpt_graph::Error::Io { .. } | ckpt_graph::Error::NotASavedModel { .. }
                    ) =>
                {
                    PyFileNotFoundError::new_err(e.to_string())
                }
                e => PyValueError::new_err(e.to_string()),
            })?;
        Ok(SavedModel {
            loaded,
            options: SessionOptions {
                threads,
                inference,
                ..SessionOptions::default()
            },
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The signature keys, sorted.
    fn signature_keys(&self) -> Vec<String> {
        self.loaded.model().signatures.keys().cloned().collect()
    }

    /// `(input keys, output keys)` of signature `key`, each sorted.
    fn signature_io(&self, key: &str) -> PyResult<(Vec<String>, Vec<String>)> {
        let sig = self
            .loaded
            .model()
            .signature(key)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok((
            sig.inputs.iter().map(|t| t.key.clone()).collect(),
            sig.outputs.iter().map(|t| t.key.clone()).collect(),
        ))
    }

    /// Runs signature `key` on `feeds` (by input key): `[(output key, raw tensor)]`.
    fn run<'py>(
        slf: &Bound<'py, Self>,
        key: String,
        feeds: Vec<RawIn<'py>>,
    ) -> PyResult<Vec<(String, Raw<'py>)>> {
        let py = slf.py();
        let this = slf.get();
        let values = feed_values(&feeds)?;
        let feed_names: Vec<String> = values.iter().map(|(n, _)| n.clone()).collect();
        let session = {
            let mut sessions = this
                .sessions
                .lock()
                .map_err(|_| PyValueError::new_err("a previous run panicked"))?;
            let cache_key = (key, feed_names);
            match sessions.get(&cache_key) {
                Some(s) => Arc::clone(s),
                None => {
                    let inputs: Vec<&str> = cache_key.1.iter().map(String::as_str).collect();
                    let session = this
                        .loaded
                        .session(&cache_key.0, &inputs, &[], this.options)
                        .map_err(runtime_error)?;
                    let session = Arc::new(session);
                    sessions.insert(cache_key, Arc::clone(&session));
                    session
                }
            }
        };
        let outputs = run_session(py, &session, &values)?;
        let none = py.None().into_bound(py);
        session
            .fetch_names()
            .iter()
            .zip(&outputs)
            .map(|(name, v)| {
                let tensor = v.to_tensor().map_err(runtime_error)?;
                Ok((name.clone(), tensor_to_py(&none, &tensor)?))
            })
            .collect()
    }
}

/// Feeds as runtime values, by name.
fn feed_values(feeds: &[RawIn<'_>]) -> PyResult<Vec<(String, Value)>> {
    let payloads: Vec<Payload<'_>> = feeds
        .iter()
        .map(|(name, _, _, p)| Payload::extract(name, p))
        .collect::<PyResult<_>>()?;
    let mut values = Vec::with_capacity(feeds.len());
    for ((name, dtype, shape, _), payload) in feeds.iter().zip(&payloads) {
        let tensor = tensor_from_py(name, dtype, shape.clone(), payload)?;
        let value = Value::from_tensor(&tensor)
            .map_err(|e| PyValueError::new_err(format!("feed {name:?}: {e}")))?;
        values.push((name.clone(), value));
    }
    Ok(values)
}

/// Runs `session` without the GIL.
fn run_session(
    py: Python<'_>,
    session: &ckpt_runtime::Session,
    values: &[(String, Value)],
) -> PyResult<Vec<Value>> {
    py.detach(|| {
        let refs: Vec<(&str, Value)> = values
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        session.run(&refs)
    })
    .map_err(runtime_error)
}

/// The native module.
#[pymodule]
fn _ckpt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Reader>()?;
    m.add_class::<Graph>()?;
    m.add_class::<SavedModel>()?;
    m.add_function(wrap_pyfunction!(save, m)?)?;
    m.add_function(wrap_pyfunction!(latest_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(supported_ops, m)?)?;
    Ok(())
}
