"""numpy conversions between TensorFlow's values and the native module's raw readings.

Kept apart from ``ckpt/__init__.py`` so that ``import ckpt`` does not import numpy and
ml_dtypes (about 100 ms of a cold start); the first reading or writing imports this module.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import ml_dtypes
import numpy as np

# TensorFlow's dtype names and the numpy dtypes TensorFlow hands out for them
# (tensorflow/python/framework/dtypes.py: quantized types are one-field structured dtypes).
NUMPY_DTYPES: Dict[str, np.dtype] = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "int8": np.dtype(np.int8),
    "int16": np.dtype(np.int16),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
    "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16),
    "uint32": np.dtype(np.uint32),
    "uint64": np.dtype(np.uint64),
    "bool": np.dtype(np.bool_),
    "complex64": np.dtype(np.complex64),
    "complex128": np.dtype(np.complex128),
    "string": np.dtype(object),
    "variant": np.dtype(object),
    "qint8": np.dtype([("qint8", np.int8)]),
    "quint8": np.dtype([("quint8", np.uint8)]),
    "qint16": np.dtype([("qint16", np.int16)]),
    "quint16": np.dtype([("quint16", np.uint16)]),
    "qint32": np.dtype([("qint32", np.int32)]),
    "float8_e5m2": np.dtype(ml_dtypes.float8_e5m2),
    "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn),
    "float8_e4m3fnuz": np.dtype(ml_dtypes.float8_e4m3fnuz),
    "float8_e4m3b11fnuz": np.dtype(ml_dtypes.float8_e4m3b11fnuz),
    "float8_e5m2fnuz": np.dtype(ml_dtypes.float8_e5m2fnuz),
}

# numpy dtype -> TensorFlow name, for `save` and feeds (structured quantized dtypes included).
TF_NAMES: Dict[np.dtype, str] = {
    dt: name for name, dt in NUMPY_DTYPES.items() if name not in ("string", "variant")
}



def to_numpy(raw: Tuple[str, List[int], Any, bool]) -> Any:
    """A raw reading from the native module as TensorFlow's value."""
    dtype_name, shape, payload, _is_view = raw
    shape = tuple(shape)
    if isinstance(payload, list):
        if not shape:
            return payload[0]  # a scalar string is a bytes object
        out = np.empty(len(payload), dtype=object)
        out[:] = payload
        return out.reshape(shape)
    value = payload.view(NUMPY_DTYPES[dtype_name]).reshape(shape)
    if not shape:
        return value[()]  # numpy scalar, as TensorFlow returns it
    return value


def raw_tensor(name: str, value: Any, what: str) -> Tuple[str, str, List[int], Any]:
    """``(name, dtype_name, shape, payload)`` of a value for the native module."""
    if not isinstance(name, str):
        raise TypeError(f"{what} names must be str, got {type(name).__name__}")
    if isinstance(value, (bytes, str)):
        value = np.array(value, dtype=object)
    array = np.asarray(value)
    shape = [int(d) for d in array.shape]
    kind = array.dtype.kind
    if kind in ("O", "S", "U"):
        items: List[bytes] = []
        for item in array.reshape(-1).tolist():
            if isinstance(item, bytes):
                items.append(item)
            elif isinstance(item, str):
                items.append(item.encode("utf-8"))
            else:
                raise TypeError(
                    f"{what} {name!r}: a string tensor takes bytes or str elements, "
                    f"got {type(item).__name__}"
                )
        return name, "string", shape, items
    # Checkpoints are little-endian; a big-endian ('>') array is converted first.
    native = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    tf_name = TF_NAMES.get(native)
    if tf_name is None:
        raise TypeError(
            f"{what} {name!r}: numpy dtype {array.dtype} has no TensorFlow dtype "
            f"(supported: {', '.join(sorted(NUMPY_DTYPES))})"
        )
    if native != array.dtype:
        array = array.astype(native)
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return name, tf_name, shape, data
