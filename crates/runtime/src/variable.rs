//! Variables: checkpoint tensors as runtime values, copied once out of the memory map into an
//! owned, aligned buffer at plan time, then shared by every run.

use ckpt_bundle::{parse_shape_and_slice, Checkpoint, Tensor};
use ckpt_graph::{Model, Node, NodeId};

use crate::ops::{dtype_attr, node_error};
use crate::{Error, Value};

/// Why a variable's value could not be loaded.
pub(crate) enum VariableError {
    /// The checkpoint has no tensor under this key.
    Missing(String),
    Other(Error),
}

/// The value of variable node `id`: the checkpoint tensor under the key the model maps the
/// variable to (its name by default), sliced when the variable is one part of a partitioned
/// one, and checked against the dtype and shape the graph declares.
pub(crate) fn load(
    model: &Model,
    bundle: &Checkpoint,
    id: NodeId,
    node: &Node,
) -> Result<Value, VariableError> {
    let key = model.variable_key(id).unwrap_or(&node.name).to_string();
    if !bundle.contains(&key) {
        return Err(VariableError::Missing(key));
    }
    let bundle_error = |error| {
        VariableError::Other(Error::Bundle {
            node: node.name.clone(),
            key: key.clone(),
            error: Box::new(error),
        })
    };
    let tensor = match model.variable_slices.get(&id) {
        None => bundle.read(&key).map_err(bundle_error)?,
        Some(spec) => read_part(bundle, &key, spec).map_err(|e| match e {
            PartError::Bundle(e) => bundle_error(e),
            PartError::Shape(m) => {
                VariableError::Other(node_error(node, format!("checkpoint tensor {key:?}: {m}")))
            }
        })?,
    };
    let value = Value::from_tensor(&tensor).map_err(|e| {
        VariableError::Other(node_error(node, format!("checkpoint tensor {key:?}: {e}")))
    })?;
    // The graph's declared dtype wins where both are known; a mismatch is an error.
    let declared = dtype_attr(node, "dtype").ok();
    if let Some(d) = declared {
        if d != value.dtype() {
            return Err(VariableError::Other(node_error(
                node,
                format!(
                    "the graph declares {d}, checkpoint tensor {key:?} holds {}",
                    value.dtype()
                ),
            )));
        }
    }
    // As TensorFlow reads it: the pre-1.0 `Variable` op's `shape {}` means any shape.
    if let Ok(Some(shape)) = model.declared_shape(node) {
        let fits = shape.len() == value.shape().len()
            && shape
                .iter()
                .zip(value.shape())
                .all(|(&d, &n)| d < 0 || d as usize == n);
        if !fits {
            return Err(VariableError::Other(node_error(
                node,
                format!(
                    "the graph declares shape {shape:?}, checkpoint tensor {key:?} has {:?}",
                    value.shape()
                ),
            )));
        }
    }
    Ok(value)
}

/// Why the part of a partitioned variable could not be read.
#[derive(Debug)]
enum PartError {
    Bundle(ckpt_bundle::Error),
    /// The spec names another full shape than the checkpoint holds.
    Shape(String),
}

/// The part of checkpoint tensor `key` that a variable's `shape_and_slice` spec, such as
/// `"6 2 0,3:-"` (full shape, then `start,length` or `-` per dimension), selects: parsed by
/// `ckpt-bundle` with TensorFlow's rules and read with `Checkpoint::read_slice`, as
/// `RestoreV2` does through `LookupSlice`.
fn read_part<'b>(bundle: &'b Checkpoint, key: &str, spec: &str) -> Result<Tensor<'b>, PartError> {
    let parsed = parse_shape_and_slice(spec).map_err(PartError::Bundle)?;
    let stored = &bundle.info(key).map_err(PartError::Bundle)?.shape;
    if parsed.shape != *stored {
        return Err(PartError::Shape(format!(
            "slice spec {spec:?} is for shape {:?}, the tensor has {stored:?}",
            parsed.shape
        )));
    }
    bundle
        .read_slice(key, &parsed.slice)
        .map_err(PartError::Bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_partitioned_parts() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let prefix = dir.path().join("v");
        let mut w = ckpt_bundle::BundleWriter::create(&prefix)?;
        w.add(
            "v",
            &Tensor::from_vec(vec![6, 2], (0..12).collect::<Vec<i32>>())?,
        )?;
        w.finish()?;
        let bundle = Checkpoint::open(&prefix)?;
        let part = Value::from_tensor(
            &read_part(&bundle, "v", "6 2 3,3:-").map_err(|e| format!("{e:?}"))?,
        )?;
        assert_eq!(part.shape(), &[3, 2]);
        assert_eq!(part.as_i32(), Some(&[6, 7, 8, 9, 10, 11][..]));
        assert!(matches!(
            read_part(&bundle, "v", "6 3 0,3:-"),
            Err(PartError::Shape(m)) if m == "slice spec \"6 3 0,3:-\" is for shape [6, 3], the tensor has [6, 2]"
        ));
        assert!(matches!(
            read_part(&bundle, "v", "6 2 5,3:-"),
            Err(PartError::Bundle(ckpt_bundle::Error::SliceSpec { spec, reason }))
                if spec == "6 2 5,3:-" && reason == "extent 5,3 of dimension 0 lies outside its size 6"
        ));
        Ok(())
    }
}
