"""Exceptions raised by ``ckpt``.

Besides these, ``ckpt`` raises the built-in exceptions a Python user expects:
``FileNotFoundError`` when a path leads to no checkpoint or a data file is missing,
``OSError`` for other I/O errors, ``ValueError`` for damaged files (a checksum mismatch,
a corrupt index), values ``save`` cannot store and feeds a graph refuses, and ``TypeError``
for arguments of the wrong kind. The messages are those the ``ckpt`` command prints.
"""

from __future__ import annotations

__all__ = ["NotFoundError"]


class NotFoundError(KeyError):
    """No tensor of that name in the checkpoint (TensorFlow raises ``tf.errors.NotFoundError``).

    A ``KeyError``, so ``except KeyError`` catches it. Its message names the checkpoint and,
    when close names exist, asks "did you mean ...?".

    Attributes:
        name: the tensor name asked for.
        suggestions: listed names close to it, best first.
    """

    name: str
    suggestions: list[str]

    def __init__(self, message: str, name: str = "", suggestions: list[str] | None = None):
        super().__init__(message)
        self.name = name
        self.suggestions = list(suggestions or [])

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument; show the message as written.
        return str(self.args[0]) if self.args else ""
