"""Type stubs of the native module ``ckpt._ckpt`` (the Rust half of ``ckpt``).

Raw readings are ``(dtype_name, shape, payload, is_view)``: ``payload`` is a 1-D ``uint8``
array of little-endian element bytes (read-only and viewing the memory map when ``is_view``)
or, for string and variant tensors, a list of ``bytes``. ``ckpt/__init__.py`` turns them into
TensorFlow's values.
"""

import os
from typing import List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, os.PathLike[str]]
_Payload = Union[npt.NDArray[np.uint8], List[bytes]]
_Raw = Tuple[str, List[int], _Payload, bool]
_RawIn = Tuple[str, str, List[int], _Payload]

class Reader:
    def __init__(self, path: _Path, verify: bool = True) -> None: ...
    @property
    def prefix(self) -> str: ...
    @property
    def format(self) -> str: ...
    def list(self) -> List[Tuple[str, str, List[int]]]: ...
    def has(self, name: str) -> bool: ...
    def info(self, name: str) -> Tuple[str, List[int]]: ...
    def read(self, name: str) -> _Raw: ...
    def verify(self) -> Tuple[int, int]: ...

class Graph:
    def __init__(
        self,
        path: _Path,
        checkpoint: Optional[_Path] = None,
        threads: Optional[int] = None,
        inference: bool = False,
    ) -> None: ...
    def run(self, fetches: List[str], feeds: List[_RawIn]) -> List[_Raw]: ...

def save(prefix: _Path, items: List[_RawIn]) -> None: ...
def latest_checkpoint(dir: _Path) -> Optional[str]: ...
def supported_ops() -> List[str]: ...
