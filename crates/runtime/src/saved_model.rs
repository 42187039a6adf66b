//! SavedModel directories, ready to run: the meta graph of a tag set, the variables
//! checkpoint beside it, and, for TF2 exports, the checkpoint's object graph that binds each
//! captured variable of a signature to its checkpoint key.

use std::path::{Path, PathBuf};

use ckpt_bundle::{BundleReader, Checkpoint};
use ckpt_graph::ckpt_proto::{Message, TrackableObjectGraph};
use ckpt_graph::{Model, SavedModel, OBJECT_GRAPH_KEY};

use crate::{Error, Session, SessionOptions};

/// One meta graph of a SavedModel directory with its variables, ready to run its signatures.
///
/// ```no_run
/// use ckpt_runtime::{LoadedSavedModel, SessionOptions, Value};
///
/// let saved = LoadedSavedModel::load("export/1".as_ref(), &["serve"])?;
/// // Feeds and fetches by the signature's keys; no fetches given: all outputs.
/// let session = saved.session("serving_default", &["x"], &[], SessionOptions::default())?;
/// let out = session.run(&[("x", Value::new(vec![1, 4], vec![0.5f32; 4])?)])?;
/// for (key, value) in session.fetch_names().iter().zip(&out) {
///     println!("{key}: {value:?}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LoadedSavedModel {
    file: PathBuf,
    tags: Vec<String>,
    model: Model,
    checkpoint: Option<Checkpoint>,
}

impl LoadedSavedModel {
    /// Loads the meta graph of the SavedModel at `path` (a directory, or its
    /// `saved_model.pb`) whose tag set equals `tags`, and opens its variables
    /// (`variables/variables`), if it has any. A TF2 export's captured variables get their
    /// checkpoint keys from the checkpoint's `_CHECKPOINTABLE_OBJECT_GRAPH`.
    ///
    /// Errors name the file and the tag set: no SavedModel there, undecodable bytes, no meta
    /// graph with these tags (the available tag sets are listed), an unreadable checkpoint.
    pub fn load(path: &Path, tags: &[&str]) -> Result<LoadedSavedModel, Error> {
        let saved = SavedModel::load(path)?;
        // Report a wrong tag set before touching the checkpoint.
        saved.meta_graph(tags)?;
        let prefix = saved.variables_prefix();
        let mut index = prefix.clone().into_os_string();
        index.push(".index");
        let bundle = if Path::new(&index).is_file() {
            Some(
                BundleReader::open(&prefix).map_err(|error| Error::SavedModelVariables {
                    path: prefix.clone(),
                    error: Box::new(error),
                })?,
            )
        } else {
            None
        };
        let objects = match &bundle {
            Some(b) if b.contains(OBJECT_GRAPH_KEY) => Some(object_graph(b, &prefix)?),
            _ => None,
        };
        let checkpoint = bundle.map(Checkpoint::from);
        let model = saved.model(tags, objects.as_ref())?;
        let mut tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        tags.sort_unstable();
        tags.dedup();
        Ok(LoadedSavedModel {
            file: saved.file().to_owned(),
            tags,
            model,
            checkpoint,
        })
    }

    /// The SavedModel file read.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The tag set of the meta graph, sorted.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The meta graph, with TF2 captures bound (see [`Model::captures`]).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The variables checkpoint (`variables/variables`), when the SavedModel has one.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoint.as_ref()
    }

    /// A session running signature `key`: see [`Session::for_signature`].
    pub fn session(
        &self,
        key: &str,
        inputs: &[&str],
        outputs: &[&str],
        options: SessionOptions,
    ) -> Result<Session, Error> {
        Session::for_signature(
            &self.model,
            self.checkpoint.as_ref(),
            key,
            inputs,
            outputs,
            options,
        )
    }
}

/// The `TrackableObjectGraph` a TF2 checkpoint stores as a string scalar.
fn object_graph(bundle: &BundleReader, prefix: &Path) -> Result<TrackableObjectGraph, Error> {
    let variables_error = |error| Error::SavedModelVariables {
        path: prefix.to_owned(),
        error: Box::new(error),
    };
    let tensor = bundle.read(OBJECT_GRAPH_KEY).map_err(variables_error)?;
    let bytes = tensor
        .strings()
        .and_then(|s| s.first())
        .ok_or_else(|| bad_object_graph(prefix, "it is not a string tensor with one element"))?;
    TrackableObjectGraph::decode(bytes.as_ref())
        .map_err(|e| bad_object_graph(prefix, &format!("it does not decode: {e}")))
}

fn bad_object_graph(prefix: &Path, reason: &str) -> Error {
    Error::BadObjectGraph {
        path: prefix.to_owned(),
        reason: reason.to_string(),
    }
}
