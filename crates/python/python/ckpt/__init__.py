"""TensorFlow's checkpoint API without TensorFlow.

The names, arguments and return values follow ``tf.train``, so a conversion script drops
TensorFlow by changing its import::

    import ckpt  # instead of: import tensorflow as tf; ... tf.train.load_checkpoint

    reader = ckpt.load_checkpoint("bert_model.ckpt")
    for name, shape in ckpt.list_variables("bert_model.ckpt"):
        value = reader.get_tensor(name)  # numpy array, as TensorFlow returns it

Paths are accepted in every form the ``ckpt`` command takes: a prefix
(``model.ckpt-1000``), any of the checkpoint's files (``.index``, ``.data-*``, ``.meta``),
a directory with a ``checkpoint`` state file (its latest checkpoint), a SavedModel directory
(its variables), a V1 checkpoint file or shard.

Values come back as TensorFlow returns them: numpy arrays of numpy's dtypes,
``ml_dtypes.bfloat16`` (and ``ml_dtypes``' float8 types), object arrays of ``bytes`` for
strings, a ``bytes`` object for a scalar string, numpy scalars for other scalars,
partitioned variables assembled. Numeric arrays of a V2 checkpoint view its memory map
without copying (read-only; the mapping stays open as long as any array uses it) when the
data's alignment and byte order allow; otherwise they are copies.
"""

from __future__ import annotations

import os
from importlib import import_module as _import_module

# No `typing` import at run time (it costs a cold `import ckpt` more than the rest of the
# package): annotations stay strings, and `__init__.pyi` holds the types.
from ckpt import _ckpt
from ckpt.errors import NotFoundError

__all__ = [
    "CheckpointReader",
    "DType",
    "NotFoundError",
    "Session",
    "SavedModel",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_saved_model",
    "load_variable",
    "save",
    "supported_ops",
]

__version__ = "0.1.0"

# The dtype names TensorFlow uses (ckpt_bundle's DType names).
_DTYPE_NAMES = frozenset(
    "float16 bfloat16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 bool "
    "complex64 complex128 string variant qint8 quint8 qint16 quint16 qint32 float8_e5m2 "
    "float8_e4m3fn float8_e4m3fnuz float8_e4m3b11fnuz float8_e5m2fnuz".split()
)


def _numpy_side() -> Any:
    """The numpy half of the package (``ckpt._convert``), imported on first use."""
    return _import_module("ckpt._convert")


class DType:
    """A checkpoint tensor's element type, as ``get_variable_to_dtype_map`` gives it.

    Stands in for ``tf.DType``: ``name`` is TensorFlow's name (``"float32"``, ``"bfloat16"``,
    ``"string"``), ``as_numpy_dtype`` the numpy type of the values. It compares equal to
    another ``DType`` of the same name, to that name, and to its numpy dtype.
    """

    __slots__ = ("name",)

    def __init__(self, name: str):
        if name not in _DTYPE_NAMES:
            raise ValueError(f"unknown TensorFlow dtype {name!r}")
        self.name = name

    @property
    def as_numpy_dtype(self) -> Any:
        """The numpy scalar type (``np.float32``, ``ml_dtypes.bfloat16``, ``object``...)."""
        if self.name in ("string", "variant"):
            return object  # as tf.string.as_numpy_dtype
        dt = _numpy_side().NUMPY_DTYPES[self.name]
        return dt.type if dt.names is None else dt

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return other.name == self.name
        if isinstance(other, str):
            return other == self.name
        if self.name in ("string", "variant"):
            return False
        convert = _numpy_side()
        try:
            return convert.np.dtype(other) == convert.NUMPY_DTYPES[self.name]
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"ckpt.{self.name}"


def _strip_output_index(name: str) -> str:
    # tf.train.load_variable accepts "w:0" for "w".
    return name[:-2] if name.endswith(":0") else name


class CheckpointReader:
    """An open checkpoint: ``tf.train.load_checkpoint``'s reader (``CheckpointReader``).

    Create it with :func:`load_checkpoint`. Opening reads and validates the index only; data
    files are memory-mapped on first use. Safe to share between threads.
    """

    def __init__(self, ckpt_dir_or_file: PathLike, verify: bool = True):
        """Opens the checkpoint; see :func:`load_checkpoint`."""
        self._reader = _ckpt.Reader(os.fspath(ckpt_dir_or_file), verify)
        self._listing: Optional[List[Tuple[str, str, List[int]]]] = None

    def _list(self) -> List[Tuple[str, str, List[int]]]:
        if self._listing is None:
            self._listing = self._reader.list()
        return self._listing

    @property
    def prefix(self) -> str:
        """The checkpoint's prefix (V2), or its file or shard pattern (V1)."""
        return os.fspath(self._reader.prefix)

    @property
    def format(self) -> str:
        """``"V1"`` or ``"V2"``."""
        return self._reader.format

    def get_tensor(self, tensor_str: str) -> Any:
        """The value of tensor ``tensor_str`` (a trailing ``:0`` is ignored).

        Returns a numpy array (read-only when it views the memory map), a numpy scalar for a
        scalar, a ``bytes`` object for a scalar string, an object array of ``bytes`` for
        strings. Partitioned variables come back whole.

        Raises:
            NotFoundError: no such tensor (a ``KeyError``); the message suggests close names.
            FileNotFoundError: the data file holding it is missing.
            ValueError: its bytes are damaged (checksum mismatch, out of bounds).
        """
        return _numpy_side().to_numpy(self._reader.read(_strip_output_index(tensor_str)))

    def has_tensor(self, tensor_str: str) -> bool:
        """Whether a tensor of that name exists."""
        return self._reader.has(_strip_output_index(tensor_str))

    def get_variable_to_shape_map(self) -> Dict[str, List[int]]:
        """``{name: shape}`` for every tensor, shapes as lists of ints."""
        return {name: list(shape) for name, _, shape in self._list()}

    def get_variable_to_dtype_map(self) -> Dict[str, DType]:
        """``{name: DType}`` for every tensor (``DType`` compares equal to numpy dtypes)."""
        return {name: DType(dtype) for name, dtype, _ in self._list()}

    def verify(self) -> Tuple[int, int]:
        """Reads every tensor and checks every checksum; returns ``(tensors, bytes)``.

        Raises:
            ValueError: the first damage found; FileNotFoundError: a missing data file.
        """
        return self._reader.verify()

    def __contains__(self, name: str) -> bool:
        return self.has_tensor(name)

    def __repr__(self) -> str:
        return f"<ckpt.CheckpointReader {self.format} {self.prefix!r}>"


def load_checkpoint(ckpt_dir_or_file: PathLike, verify: bool = True) -> CheckpointReader:
    """Opens a checkpoint, as ``tf.train.load_checkpoint``.

    Args:
        ckpt_dir_or_file: a prefix, any of the checkpoint's files, a directory with a
            ``checkpoint`` state file, a SavedModel directory, or a V1 file or shard.
        verify: check each tensor's crc32c when it is read (default); ``False`` skips that
            pass over the bytes (bounds, sizes and string layouts are still checked).

    Raises:
        FileNotFoundError: the path leads to no checkpoint (the message says what was looked
            for).
        ValueError: the index is damaged, or the path is a URL (gs://, s3://).
        OSError: the files cannot be read.
    """
    return CheckpointReader(ckpt_dir_or_file, verify=verify)


def list_variables(ckpt_dir_or_file: PathLike) -> List[Tuple[str, List[int]]]:
    """Every tensor as ``(name, shape)``, sorted by name, as ``tf.train.list_variables``.

    Partitioned variables are listed once, under their full name and shape. Raises as
    :func:`load_checkpoint`.
    """
    return [(name, list(shape)) for name, _, shape in _ckpt.Reader(os.fspath(ckpt_dir_or_file)).list()]


def load_variable(ckpt_dir_or_file: PathLike, name: str) -> Any:
    """The value of one tensor, as ``tf.train.load_variable`` (see ``get_tensor``)."""
    return load_checkpoint(ckpt_dir_or_file).get_tensor(name)


def latest_checkpoint(checkpoint_dir: PathLike, latest_filename: Optional[str] = None) -> Optional[str]:
    """The latest checkpoint's prefix recorded in ``checkpoint_dir``, or ``None``.

    As ``tf.train.latest_checkpoint``: ``None`` when there is no ``checkpoint`` state file or
    nothing exists where it points. A recorded path that leads nowhere is also tried inside
    ``checkpoint_dir`` (a moved or copied directory) and with Windows separators.

    Args:
        latest_filename: only ``None`` or ``"checkpoint"`` (the default state file name).

    Raises:
        ValueError: the state file is malformed.
    """
    if latest_filename not in (None, "checkpoint"):
        raise ValueError(f"latest_filename {latest_filename!r}: only 'checkpoint' is supported")
    found = _ckpt.latest_checkpoint(os.fspath(checkpoint_dir))
    return None if found is None else os.fspath(found)


def save(prefix: PathLike, tensors: Mapping[str, Any]) -> str:
    """Writes ``{name: array}`` as a TensorFlow checkpoint (V2, one shard) at ``prefix``.

    Writes ``<prefix>.index`` and ``<prefix>.data-00000-of-00001`` atomically, byte-identical
    to what TensorFlow's ``BundleWriter`` writes; ``tf.train.load_checkpoint`` and
    ``tf.compat.v1.train.Saver.restore`` read it. Dtypes are taken from numpy
    (``ml_dtypes.bfloat16`` for bfloat16); strings from object, ``S`` or ``U`` arrays (``str``
    is written as UTF-8) or a ``bytes``/``str`` scalar. Returns ``prefix``.

    Raises:
        TypeError: a dtype TensorFlow has no counterpart for (datetime, float128...), or a
            string element that is neither ``bytes`` nor ``str``.
        OSError: the files cannot be written.
    """
    if not (hasattr(tensors, "items") and hasattr(tensors, "keys")):
        raise TypeError(f"save takes a mapping {{name: array}}, got {type(tensors).__name__}")
    items = [_numpy_side().raw_tensor(name, value, "tensor") for name, value in tensors.items()]
    _ckpt.save(os.fspath(prefix), items)
    return os.fspath(prefix)


def supported_ops() -> List[str]:
    """Every TensorFlow op :class:`Session` can run."""
    return list(_ckpt.supported_ops())


def _tensor_name(fetch: Any) -> str:
    name = getattr(fetch, "name", fetch)
    if not isinstance(name, str):
        raise TypeError(f"fetch or feed key {fetch!r}: expected a tensor name (str)")
    return name


class Session:
    """Runs a TensorFlow 1 graph restored from a checkpoint, as ``tf.compat.v1.Session``.

    ``Session("model.ckpt-150")`` loads the graph from the checkpoint's ``.meta`` (or the
    ``graph.pbtxt`` an Estimator writes beside it) and restores its variables;
    ``Session("frozen.pb")`` loads a frozen graph; ``checkpoint=`` takes the variables from
    another checkpoint. Usable as a context manager.
    """

    def __init__(
        self,
        path: PathLike,
        checkpoint: Optional[PathLike] = None,
        threads: Optional[int] = None,
        inference: bool = False,
    ):
        """Loads the graph and its variables.

        Args:
            path: a checkpoint (any form :func:`load_checkpoint` takes) or a graph file
                (``.pb``, ``.pbtxt``, ``.meta``).
            checkpoint: where the variables come from, if not ``path``'s checkpoint.
            threads: threads for the kernels, the calling thread included (default: one per core).
            inference: turn recognized dropout subgraphs into identities.

        Raises:
            FileNotFoundError: no checkpoint or no graph found; ValueError: the graph cannot
            be read.
        """
        self._graph = _ckpt.Graph(
            os.fspath(path),
            None if checkpoint is None else os.fspath(checkpoint),
            threads,
            inference,
        )

    def run(self, fetches: Any, feed_dict: Optional[Mapping[Any, Any]] = None) -> Any:
        """Computes ``fetches`` with ``feed_dict``, as ``tf.compat.v1.Session.run``.

        Args:
            fetches: a tensor name (``"logits"``, ``"logits:0"``, ``"split:1"``), or a list,
                tuple or dict of them (nested), returned in the same structure.
            feed_dict: ``{placeholder name: value}``; values are numpy arrays or Python
                scalars and lists, cast to the placeholder's dtype and checked against its
                shape.

        Returns:
            numpy arrays (numpy scalars for scalars, ``bytes`` for a scalar string) in the
            structure of ``fetches``.

        Raises:
            ValueError: a feed of the wrong shape or type, an unknown name, an op the runtime
                lacks, a kernel error.
        """
        names: List[str] = []

        def collect(f: Any) -> None:
            if isinstance(f, (list, tuple)):
                for x in f:
                    collect(x)
            elif hasattr(f, "items"):
                for x in f.values():
                    collect(x)
            else:
                names.append(_tensor_name(f))

        collect(fetches)
        feeds = []
        for key, value in (feed_dict or {}).items():
            name = _tensor_name(key)
            feeds.append(_numpy_side().raw_tensor(name, value, "feed"))
        unique = list(dict.fromkeys(names))
        outputs = dict(zip(unique, (_numpy_side().to_numpy(r) for r in self._graph.run(unique, feeds))))

        def build(f: Any) -> Any:
            if isinstance(f, list):
                return [build(x) for x in f]
            if isinstance(f, tuple):
                return tuple(build(x) for x in f)
            if hasattr(f, "items"):
                pairs = [(k, build(v)) for k, v in f.items()]
                return dict(pairs) if type(f) is dict else type(f)(pairs)
            return outputs[_tensor_name(f)]

        return build(fetches)

    def close(self) -> None:
        """Releases nothing: kept for ``tf.compat.v1.Session`` compatibility."""

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ConcreteFunction:
    """One signature of a :class:`SavedModel`, called as TF2's
    ``loaded.signatures[key](**inputs)``: keyword arguments by input key, a dict of numpy
    arrays by output key back."""

    def __init__(self, model: Any, key: str):
        self._model = model
        self.name = key
        inputs, outputs = model.signature_io(key)
        #: The signature's input keys, sorted.
        self.inputs: list = inputs
        #: The signature's output keys, sorted.
        self.outputs: list = outputs

    def __call__(self, **inputs: Any) -> Dict[str, Any]:
        """Runs the signature on ``inputs`` (numpy arrays or Python values, by input key).

        Raises:
            ValueError: an unknown or missing input, a value of the wrong shape or type.
        """
        convert = _numpy_side()
        feeds = [convert.raw_tensor(k, v, "input") for k, v in inputs.items()]
        return {k: convert.to_numpy(raw) for k, raw in self._model.run(self.name, feeds)}

    def __repr__(self) -> str:
        return f"<ckpt.ConcreteFunction {self.name}({', '.join(self.inputs)}) -> {self.outputs}>"


class SavedModel:
    """A SavedModel loaded by :func:`load_saved_model`; ``signatures`` maps each signature key
    to a callable :class:`ConcreteFunction`."""

    def __init__(
        self,
        export_dir: PathLike,
        tags: Any = None,
        threads: Optional[int] = None,
        inference: bool = False,
    ):
        if tags is None:
            tags = ["serve"]
        elif isinstance(tags, str):
            tags = [tags]
        self._model = _ckpt.SavedModel(os.fspath(export_dir), list(tags), threads, inference)
        self.signatures: Dict[str, ConcreteFunction] = {
            key: ConcreteFunction(self._model, key) for key in self._model.signature_keys()
        }


def load_saved_model(
    export_dir: PathLike,
    tags: Any = None,
    threads: Optional[int] = None,
    inference: bool = False,
) -> SavedModel:
    """Loads a SavedModel (TF1 or TF2 export) to run its signatures, as ``tf.saved_model.load``.

    Args:
        export_dir: the SavedModel directory (or its ``saved_model.pb``).
        tags: the meta graph's tag set (default ``["serve"]``).
        threads: threads for the kernels, the calling thread included (default: one per core).
        inference: turn recognized dropout subgraphs into identities.

    ``load_saved_model(d).signatures["serving_default"](x=batch)`` returns
    ``{output key: numpy array}``. Raises ``FileNotFoundError`` when there is no SavedModel,
    ``ValueError`` when a tag set is missing (the message lists those available) or the graph
    cannot run.
    """
    return SavedModel(export_dir, tags, threads, inference)
