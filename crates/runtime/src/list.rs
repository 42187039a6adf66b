//! TensorFlow's two kinds of tensor sequences, as runtime values.
//!
//! - A [`TensorList`] (control flow v2, `list_kernels.cc`) is a **value**: an op that "changes"
//!   a list returns a new one and leaves its input as it was. The elements sit behind an `Arc`,
//!   so passing a list on is free and a change copies the element table only when the list is
//!   shared (a list moved into its last reader is changed in place, as TensorFlow forwards an
//!   input it holds the only reference to).
//! - A [`TensorArray`] (control flow v1, `tensor_array.h`) is a **resource**: the handle names
//!   one array that every op on it reads and changes, in the order their `flow` inputs impose.
//!   `TensorArrayV3` creates a fresh array each time it runs, so every run (and every iteration
//!   of a loop that creates one) has its own, as TensorFlow's per-step resource manager gives.
//!
//! Both hold their elements as [`Value`]s. Their element shapes may be partly unknown, which
//! [`PartialShape`] expresses as TensorFlow's `PartialTensorShape` does.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ops::{op_bail, OpError};
use crate::value::{with_dtype, Datum, TensorBuf};
use crate::{DType, Value};

/// The most elements a list or an array may hold: their sizes come from graphs and inputs,
/// and each element costs a table entry even before it is written.
pub(crate) const MAX_LEN: usize = 1 << 24;

/// A shape whose rank or dimensions may be unknown (TensorFlow's `PartialTensorShape`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PartialShape {
    /// `None`: unknown rank; a `None` dimension is unknown.
    dims: Option<Vec<Option<usize>>>,
}

impl PartialShape {
    /// A shape of unknown rank.
    pub(crate) fn unknown() -> PartialShape {
        PartialShape { dims: None }
    }

    /// A fully known shape.
    pub(crate) fn known(dims: &[usize]) -> PartialShape {
        PartialShape {
            dims: Some(dims.iter().map(|&d| Some(d)).collect()),
        }
    }

    /// Dimensions as TensorFlow writes them: -1 for unknown; anything below is an error.
    pub(crate) fn from_dims(dims: &[i64]) -> Result<PartialShape, OpError> {
        let dims = dims
            .iter()
            .map(|&d| match d {
                -1 => Ok(None),
                d => usize::try_from(d)
                    .map(Some)
                    .map_err(|_| OpError(format!("invalid dimension {d} in a shape"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(PartialShape { dims: Some(dims) })
    }

    /// A `shape` attribute as [`ckpt_graph::Node::attr_shape`] returns it.
    pub(crate) fn from_attr(attr: Option<&[i64]>) -> Result<PartialShape, OpError> {
        match attr {
            None => Ok(PartialShape::unknown()),
            Some(dims) => PartialShape::from_dims(dims),
        }
    }

    /// A shape tensor (`TensorShapeFromTensor`): an int32 or int64 vector with -1 for unknown
    /// dimensions, or the scalar -1 for an unknown rank.
    pub(crate) fn from_tensor(v: &Value) -> Result<PartialShape, OpError> {
        let values = match v {
            Value::I32(t) => t.data().iter().map(|&x| i64::from(x)).collect::<Vec<_>>(),
            Value::I64(t) => t.data().to_vec(),
            other => op_bail!(
                "expected an int32 or int64 shape tensor; found {}",
                other.dtype()
            ),
        };
        match (v.shape(), values.as_slice()) {
            ([], [-1]) => Ok(PartialShape::unknown()),
            ([], _) => op_bail!(
                "the only valid scalar shape tensor is the fully unknown shape specified as -1"
            ),
            ([_], dims) => PartialShape::from_dims(dims),
            (shape, _) => op_bail!("a shape tensor must be a vector, got shape {shape:?}"),
        }
    }

    /// The dimensions when every one is known.
    pub(crate) fn to_shape(&self) -> Option<Vec<usize>> {
        self.dims.as_ref()?.iter().copied().collect()
    }

    /// Whether a tensor of `shape` fits this shape.
    pub(crate) fn accepts(&self, shape: &[usize]) -> bool {
        match &self.dims {
            None => true,
            Some(dims) => {
                dims.len() == shape.len()
                    && dims
                        .iter()
                        .zip(shape)
                        .all(|(d, &s)| d.is_none_or(|d| d == s))
            }
        }
    }

    /// The most specific shape compatible with both (`PartialTensorShape::MergeWith`), or an
    /// error when they disagree.
    pub(crate) fn merge(&self, other: &PartialShape) -> Result<PartialShape, OpError> {
        let (a, b) = match (&self.dims, &other.dims) {
            (None, _) => return Ok(other.clone()),
            (_, None) => return Ok(self.clone()),
            (Some(a), Some(b)) => (a, b),
        };
        if a.len() != b.len() {
            op_bail!("incompatible shapes {self} and {other}: ranks differ");
        }
        let dims = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| match (x, y) {
                (Some(x), Some(y)) if x != y => {
                    op_bail!("incompatible shapes {self} and {other}")
                }
                (x, y) => Ok(x.or(y)),
            })
            .collect::<Result<_, _>>()?;
        Ok(PartialShape { dims: Some(dims) })
    }

    /// The shape as a shape tensor's values: -1 for unknown dimensions; `None` for an
    /// unknown rank (which a shape tensor writes as the scalar -1).
    pub(crate) fn to_dims(&self) -> Option<Vec<i64>> {
        self.dims.as_ref().map(|dims| {
            dims.iter()
                .map(|d| d.map_or(-1, |d| i64::try_from(d).unwrap_or(i64::MAX)))
                .collect()
        })
    }
}

impl fmt::Display for PartialShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dims {
            None => f.write_str("<unknown>"),
            Some(dims) => {
                f.write_str("[")?;
                for (i, d) in dims.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    match d {
                        Some(d) => write!(f, "{d}")?,
                        None => f.write_str("?")?,
                    }
                }
                f.write_str("]")
            }
        }
    }
}

/// A tensor of `shape` and `dtype` holding zeros (false, empty strings), for elements that
/// were reserved but never set.
pub(crate) fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Value, OpError> {
    let n = crate::ops::output_len(&shape, crate::ops::element_bytes(dtype))?;
    Ok(match dtype {
        DType::Float32 => Value::F32(TensorBuf::from_parts(shape, vec![0.0; n])),
        DType::Float64 => Value::F64(TensorBuf::from_parts(shape, vec![0.0; n])),
        DType::Int32 => Value::I32(TensorBuf::from_parts(shape, vec![0; n])),
        DType::Int64 => Value::I64(TensorBuf::from_parts(shape, vec![0; n])),
        DType::UInt8 => Value::U8(TensorBuf::from_parts(shape, vec![0; n])),
        DType::Bool => Value::Bool(TensorBuf::from_parts(shape, vec![false; n])),
        DType::String => Value::Str(TensorBuf::from_parts(shape, vec![Vec::new(); n])),
        other => op_bail!("cannot make zeros of dtype {other}"),
    })
}

/// The tensor of `shape` whose elements are those of `parts`, one after the other: stacking
/// (`shape` = `[parts.len()] + element shape`) and concatenating along dimension 0 alike.
/// Every part must have `dtype`, and their sizes must add up to `shape`'s.
pub(crate) fn join(dtype: DType, parts: &[&Value], shape: Vec<usize>) -> Result<Value, OpError> {
    let n = crate::ops::output_len(&shape, crate::ops::element_bytes(dtype))?;
    with_dtype!(dtype, T => {
        let mut data: Vec<T> = Vec::with_capacity(n);
        for (i, part) in parts.iter().enumerate() {
            let Some(t) = part.get::<T>() else {
                op_bail!("element {i} has dtype {}, expected {dtype}", part.kind());
            };
            data.extend_from_slice(t.data());
        }
        if data.len() != n {
            op_bail!("elements of {} values do not fill shape {shape:?}", data.len());
        }
        Ok(T::wrap(TensorBuf::from_parts(shape, data)))
    }, else op_bail!("cannot join elements of dtype {dtype}"))
}

/// Rows `start..start + len` of `v` along dimension 0, as a tensor of shape
/// `[len] + v.shape()[1..]`, or of shape `v.shape()[1..]` when `drop_dim` (one row).
pub(crate) fn rows(v: &Value, start: usize, len: usize, drop_dim: bool) -> Result<Value, OpError> {
    let Some((&n, rest)) = v.shape().split_first() else {
        op_bail!("expected at least a vector, got a scalar");
    };
    let end = start.checked_add(len).filter(|&e| e <= n);
    let Some(end) = end else {
        op_bail!("rows {start}..{start}+{len} out of range for {n} rows");
    };
    let row: usize = rest.iter().product();
    let shape: Vec<usize> = if drop_dim {
        rest.to_vec()
    } else {
        std::iter::once(len).chain(rest.iter().copied()).collect()
    };
    crate::value::map_any!(v, t => {
        let data = t.data()[start * row..end * row].to_vec();
        Ok(Datum::wrap(TensorBuf::from_parts(shape, data)))
    }, else op_bail!("cannot slice a {}", v.kind()))
}

/// A list of tensors of one dtype, as control flow v2 carries it through loops (TensorFlow's
/// `TensorList`, a `DT_VARIANT` scalar). Elements may be uninitialized: `TensorListReserve`
/// makes a list of them, and reading one gives zeros once its shape is known.
#[derive(Clone, PartialEq)]
pub struct TensorList {
    element_dtype: DType,
    element_shape: PartialShape,
    /// `TensorListPushBack` fails past this many elements (`EmptyTensorList`'s
    /// `max_num_elements`); `None` for no limit.
    max_len: Option<usize>,
    elements: Arc<Vec<Option<Value>>>,
}

impl TensorList {
    /// A list of `len` uninitialized elements.
    pub(crate) fn reserved(
        element_dtype: DType,
        element_shape: PartialShape,
        len: usize,
        max_len: Option<usize>,
    ) -> Result<TensorList, OpError> {
        if len > MAX_LEN {
            op_bail!("a list of {len} elements is too long (at most {MAX_LEN})");
        }
        Ok(TensorList {
            element_dtype,
            element_shape,
            max_len,
            elements: Arc::new(vec![None; len]),
        })
    }

    /// A list holding `elements`, all initialized.
    pub(crate) fn from_elements(
        element_dtype: DType,
        element_shape: PartialShape,
        elements: Vec<Value>,
    ) -> TensorList {
        TensorList {
            element_dtype,
            element_shape,
            max_len: None,
            elements: Arc::new(elements.into_iter().map(Some).collect()),
        }
    }

    /// The dtype of the elements.
    pub fn element_dtype(&self) -> DType {
        self.element_dtype
    }

    /// The number of elements, initialized or not.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Element `i`, or `None` when it is out of range or uninitialized.
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.elements.get(i)?.as_ref()
    }

    pub(crate) fn element_shape(&self) -> &PartialShape {
        &self.element_shape
    }

    pub(crate) fn max_len(&self) -> Option<usize> {
        self.max_len
    }

    pub(crate) fn elements(&self) -> &[Option<Value>] {
        &self.elements
    }

    /// The elements for changing, copied first when another list shares them.
    pub(crate) fn elements_mut(&mut self) -> &mut Vec<Option<Value>> {
        Arc::make_mut(&mut self.elements)
    }

    /// Fails unless the op's `element_dtype` attribute is the list's.
    pub(crate) fn check_dtype(&self, op_dtype: DType) -> Result<(), OpError> {
        if op_dtype != self.element_dtype {
            op_bail!(
                "invalid data types; op elements {op_dtype} but list elements {}",
                self.element_dtype
            );
        }
        Ok(())
    }

    /// The list's element shape merged with the shapes of its initialized elements: what
    /// uninitialized elements read as.
    pub(crate) fn inferred_element_shape(
        &self,
        mut shape: PartialShape,
    ) -> Result<PartialShape, OpError> {
        if shape.to_shape().is_none() {
            for e in self.elements.iter().flatten() {
                shape = shape.merge(&PartialShape::known(e.shape()))?;
            }
        }
        Ok(shape)
    }
}

impl fmt::Debug for TensorList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.elements.iter().filter(|e| e.is_some()).count();
        write!(
            f,
            "TensorList<{}, {}>[{} elements, {set} set]",
            self.element_dtype,
            self.element_shape,
            self.elements.len()
        )
    }
}

/// A handle to a TensorArray (control flow v1; TensorFlow's `TensorArray` resource behind a
/// `DT_RESOURCE` handle). Clones of a handle refer to the same array.
#[derive(Clone)]
pub struct TensorArray {
    state: Arc<Mutex<ArrayState>>,
}

/// How a TensorArray is made (`TensorArrayV3`'s attributes and size).
#[derive(Debug)]
pub(crate) struct ArraySpec {
    pub name: String,
    pub dtype: DType,
    pub element_shape: PartialShape,
    pub dynamic_size: bool,
    pub clear_after_read: bool,
    pub identical_element_shapes: bool,
}

/// One array's elements and flags, locked by every op.
#[derive(Debug)]
pub(crate) struct ArrayState {
    pub name: String,
    pub dtype: DType,
    /// Refined by writes when `identical_element_shapes`, and by gathers' attributes.
    pub element_shape: PartialShape,
    pub dynamic_size: bool,
    pub clear_after_read: bool,
    pub identical_element_shapes: bool,
    pub closed: bool,
    pub elements: Vec<ArrayElement>,
}

/// An element and what has happened to it (`TensorArray::TensorAndState`).
#[derive(Clone, Debug, Default)]
pub(crate) struct ArrayElement {
    /// The value written; `None` for a zeros element that only has a shape, and after a read
    /// cleared it.
    pub value: Option<Value>,
    pub shape: Vec<usize>,
    pub written: bool,
    pub read: bool,
    pub cleared: bool,
}

impl TensorArray {
    /// A new array of `size` unwritten elements.
    pub(crate) fn new(spec: ArraySpec, size: usize) -> Result<TensorArray, OpError> {
        if size > MAX_LEN {
            op_bail!("a TensorArray of {size} elements is too large (at most {MAX_LEN})");
        }
        Ok(TensorArray {
            state: Arc::new(Mutex::new(ArrayState {
                name: spec.name,
                dtype: spec.dtype,
                element_shape: spec.element_shape,
                dynamic_size: spec.dynamic_size,
                clear_after_read: spec.clear_after_read,
                identical_element_shapes: spec.identical_element_shapes,
                closed: false,
                elements: vec![ArrayElement::default(); size],
            })),
        })
    }

    /// The array, locked; fails once it is closed.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, ArrayState>, OpError> {
        let state = self
            .state
            .lock()
            .map_err(|_| OpError("a TensorArray was left inconsistent by a panic".into()))?;
        if state.closed {
            op_bail!("TensorArray {} has already been closed", state.name);
        }
        Ok(state)
    }

    /// The number of elements (0 when the array is closed or unusable).
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.elements.len())
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PartialEq for TensorArray {
    /// Handles are equal when they refer to the same array.
    fn eq(&self, other: &TensorArray) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }
}

impl fmt::Debug for TensorArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state.lock() {
            Ok(s) => write!(
                f,
                "TensorArray {:?}<{}, {}>[{}]",
                s.name,
                s.dtype,
                s.element_shape,
                s.elements.len()
            ),
            Err(_) => f.write_str("TensorArray <poisoned>"),
        }
    }
}

impl ArrayState {
    /// `TensorArray::LockedWriteOrAggregate` without aggregation: each index once.
    pub(crate) fn write(&mut self, index: i64, value: Value) -> Result<(), OpError> {
        let i = match usize::try_from(index) {
            Ok(i) if i < self.elements.len() || (self.dynamic_size && i < MAX_LEN) => i,
            _ => op_bail!(
                "TensorArray {}: tried to write to index {index} but array is not resizeable and size is: {}",
                self.name,
                self.elements.len()
            ),
        };
        if i >= self.elements.len() {
            self.elements.resize(i + 1, ArrayElement::default());
        }
        if value.dtype() != self.dtype {
            op_bail!(
                "TensorArray {}: could not write to TensorArray index {index} because the value dtype is {} but TensorArray dtype is {}",
                self.name,
                value.dtype(),
                self.dtype
            );
        }
        if !self.element_shape.accepts(value.shape()) {
            op_bail!(
                "TensorArray {}: could not write to TensorArray index {index} because the value shape is {} which is incompatible with the TensorArray's inferred element shape: {}",
                self.name,
                PartialShape::known(value.shape()),
                self.element_shape
            );
        }
        if self.identical_element_shapes && self.element_shape.to_shape().is_none() {
            self.element_shape = PartialShape::known(value.shape());
        }
        let name = &self.name;
        let Some(e) = self.elements.get_mut(i) else {
            op_bail!("TensorArray {name}: index {index} out of range");
        };
        if e.read {
            op_bail!("TensorArray {name}: could not write to TensorArray index {index} because it has already been read");
        }
        if e.written {
            op_bail!("TensorArray {name}: could not write to TensorArray index {index} because it has already been written to");
        }
        e.shape = value.shape().to_vec();
        e.value = Some(value);
        e.written = true;
        Ok(())
    }

    /// `TensorArray::LockedRead`: an unwritten element reads as zeros when the element shape
    /// is known, and is an error otherwise.
    pub(crate) fn read(&mut self, index: i64) -> Result<Value, OpError> {
        let size = self.elements.len();
        let Some(i) = usize::try_from(index).ok().filter(|&i| i < size) else {
            op_bail!("tried to read from index {index} but array size is: {size}");
        };
        let dtype = self.dtype;
        let clear = self.clear_after_read;
        let known = self.element_shape.to_shape();
        let name = &self.name;
        let Some(e) = self.elements.get_mut(i) else {
            op_bail!("TensorArray {name}: index {index} out of range");
        };
        if !e.written {
            let Some(shape) = known else {
                op_bail!(
                    "TensorArray {name}: could not read from TensorArray index {index}; furthermore, the element shape is not fully defined: {} (set the full element_shape of the TensorArray to read zeros instead)",
                    self.element_shape
                );
            };
            e.shape = shape;
            e.written = true;
        }
        if e.cleared {
            op_bail!("TensorArray {name}: could not read index {index} twice because it was cleared after a previous read (perhaps try setting clear_after_read = false?)");
        }
        let value = match &e.value {
            Some(v) => v.clone(),
            None => zeros(dtype, e.shape.clone())?,
        };
        if clear {
            e.value = None;
            e.cleared = true;
        }
        e.read = true;
        Ok(value)
    }

    /// `TensorArray::SetElemShape`: merges a shape an op declares into the element shape.
    pub(crate) fn refine_element_shape(&mut self, shape: &PartialShape) -> Result<(), OpError> {
        self.element_shape = self.element_shape.merge(shape).map_err(|_| {
            OpError(format!(
                "inconsistent shapes: saw {shape} but expected {}",
                self.element_shape
            ))
        })?;
        Ok(())
    }

    /// Fails unless the op's dtype attribute is the array's.
    pub(crate) fn check_dtype(&self, op_dtype: DType) -> Result<(), OpError> {
        if op_dtype != self.dtype {
            op_bail!(
                "TensorArray dtype is {} but op requested dtype {op_dtype}",
                self.dtype
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(element_shape: PartialShape) -> ArraySpec {
        ArraySpec {
            name: "ta".into(),
            dtype: DType::Float32,
            element_shape,
            dynamic_size: false,
            clear_after_read: true,
            identical_element_shapes: false,
        }
    }

    #[test]
    fn partial_shapes_merge_and_print() -> Result<(), OpError> {
        let a = PartialShape::from_dims(&[-1, 4])?;
        let b = PartialShape::from_dims(&[2, -1])?;
        assert_eq!(a.merge(&b)?, PartialShape::known(&[2, 4]));
        assert_eq!(a.to_string(), "[?,4]");
        assert_eq!(PartialShape::unknown().to_string(), "<unknown>");
        assert_eq!(PartialShape::unknown().merge(&a)?, a);
        assert!(a.merge(&PartialShape::known(&[2, 5])).is_err());
        assert!(a.merge(&PartialShape::known(&[4])).is_err());
        assert!(a.accepts(&[7, 4]) && !a.accepts(&[7, 3]) && !a.accepts(&[4]));
        assert!(PartialShape::from_dims(&[-2]).is_err());
        assert_eq!(
            PartialShape::from_tensor(&Value::scalar(-1i32))?,
            PartialShape::unknown()
        );
        assert_eq!(
            PartialShape::from_tensor(&Value::new(vec![2], vec![-1i64, 3])?)?,
            PartialShape::from_dims(&[-1, 3])?
        );
        assert!(PartialShape::from_tensor(&Value::scalar(3i32)).is_err());
        assert!(PartialShape::from_tensor(&Value::scalar(1.0f32)).is_err());
        Ok(())
    }

    #[test]
    fn array_reads_unwritten_elements_as_zeros_only_when_shaped() -> Result<(), OpError> {
        let ta = TensorArray::new(spec(PartialShape::known(&[2])), 3)?;
        let mut s = ta.lock()?;
        assert_eq!(s.read(1)?.as_f32(), Some(&[0.0, 0.0][..]));
        drop(s);
        let ta = TensorArray::new(spec(PartialShape::unknown()), 3)?;
        let mut s = ta.lock()?;
        s.write(
            0,
            Value::new(vec![2], vec![1.0f32, 2.0]).map_err(OpError::from)?,
        )?;
        let err = s.read(1).err().map(|e| e.0).unwrap_or_default();
        assert!(err.contains("element shape is not fully defined"), "{err}");
        assert_eq!(s.read(0)?.as_f32(), Some(&[1.0, 2.0][..]));
        let err = s.read(0).err().map(|e| e.0).unwrap_or_default();
        assert!(err.contains("twice"), "{err}");
        let err = s.read(3).err().map(|e| e.0).unwrap_or_default();
        assert_eq!(err, "tried to read from index 3 but array size is: 3");
        let err = s.write(0, Value::scalar(1.0f32)).err().map(|e| e.0);
        assert!(err.is_some_and(|e| e.contains("already been read")));
        Ok(())
    }

    #[test]
    fn array_writes_once_within_size_unless_dynamic() -> Result<(), OpError> {
        let ta = TensorArray::new(spec(PartialShape::unknown()), 2)?;
        let mut s = ta.lock()?;
        s.write(1, Value::scalar(1.0f32))?;
        let err = s.write(1, Value::scalar(2.0f32)).err().map(|e| e.0);
        assert!(err.is_some_and(|e| e.contains("already been written to")));
        let err = s.write(2, Value::scalar(2.0f32)).err().map(|e| e.0);
        assert!(err.is_some_and(|e| e.contains("not resizeable and size is: 2")));
        let err = s.write(-1, Value::scalar(2.0f32)).err().map(|e| e.0);
        assert!(err.is_some_and(|e| e.contains("index -1")));
        let err = s.write(0, Value::scalar(2i32)).err().map(|e| e.0);
        assert!(err.is_some_and(|e| e.contains("value dtype is int32")));
        drop(s);
        let mut dynamic = spec(PartialShape::unknown());
        dynamic.dynamic_size = true;
        dynamic.identical_element_shapes = true;
        let ta = TensorArray::new(dynamic, 1)?;
        let mut s = ta.lock()?;
        s.write(4, Value::new(vec![1], vec![3.0f32]).map_err(OpError::from)?)?;
        assert_eq!(s.elements.len(), 5);
        // identical_element_shapes: the first write fixes the shape, so unwritten elements
        // read as zeros and a different shape is refused.
        assert_eq!(s.read(2)?.as_f32(), Some(&[0.0][..]));
        assert!(s.write(0, Value::scalar(1.0f32)).is_err());
        let err = s.write(1 << 40, Value::scalar(1.0f32)).err().map(|e| e.0);
        assert!(err.is_some_and(|e| e.contains("not resizeable")));
        Ok(())
    }

    #[test]
    fn join_and_rows_match_a_reference_on_odd_shapes() -> Result<(), OpError> {
        for (n, rest) in [
            (0usize, vec![3usize]),
            (1, vec![]),
            (7, vec![17, 2]),
            (3, vec![0]),
        ] {
            let row: usize = rest.iter().product();
            let shape: Vec<usize> = std::iter::once(n).chain(rest.iter().copied()).collect();
            let data: Vec<i32> = (0..(n * row) as i32).collect();
            let v = Value::new(shape.clone(), data.clone()).map_err(OpError::from)?;
            let parts: Vec<Value> = (0..n)
                .map(|i| rows(&v, i, 1, true))
                .collect::<Result<_, _>>()?;
            for (i, p) in parts.iter().enumerate() {
                assert_eq!(p.shape(), &rest[..]);
                assert_eq!(p.as_i32(), Some(&data[i * row..(i + 1) * row]));
            }
            let refs: Vec<&Value> = parts.iter().collect();
            assert_eq!(join(DType::Int32, &refs, shape.clone())?, v);
            if n >= 3 {
                let mid = rows(&v, 1, 2, false)?;
                assert_eq!(mid.shape()[0], 2);
                assert_eq!(mid.as_i32(), Some(&data[row..3 * row]));
            }
        }
        let v = Value::new(vec![2], vec![1.0f32, 2.0]).map_err(OpError::from)?;
        assert!(rows(&v, 1, 2, false).is_err());
        assert!(rows(&Value::scalar(1.0f32), 0, 1, true).is_err());
        assert!(join(DType::Int32, &[&v], vec![2]).is_err());
        assert!(join(DType::Float32, &[&v], vec![3]).is_err());
        Ok(())
    }

    #[test]
    fn lists_are_values_and_sizes_are_bounded() -> Result<(), OpError> {
        let a = TensorList::reserved(DType::Float32, PartialShape::unknown(), 3, None)?;
        let mut b = a.clone();
        b.elements_mut()[1] = Some(Value::scalar(1.0f32));
        assert!(a.get(1).is_none());
        assert_eq!(b.get(1), Some(&Value::scalar(1.0f32)));
        assert_eq!(
            b.inferred_element_shape(PartialShape::unknown())?,
            PartialShape::known(&[])
        );
        assert!(
            TensorList::reserved(DType::Float32, PartialShape::unknown(), MAX_LEN + 1, None)
                .is_err()
        );
        assert!(TensorArray::new(spec(PartialShape::unknown()), MAX_LEN + 1).is_err());
        assert!(zeros(DType::Variant, vec![1]).is_err());
        Ok(())
    }
}
