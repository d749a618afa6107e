"""Standard streams whose reader may go away (``afcot ... | head``) without stopping the work.

Python ignores SIGPIPE, so a write to a pipe whose reader has left raises :class:`BrokenPipeError` wherever it
happens: in our final ``print``, but also in a library's progress bar in the middle of a run, which would end the
run half done. Inside :func:`forgiving`, such a write instead points the stream's file descriptor at ``/dev/null``
(so nothing buffered, nor the interpreter's flush at exit, fails again) and the command goes on to its own exit code.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO


class Forgiving:
    """A text stream that drops what it cannot deliver once its reader has gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        self.gone = True
        with contextlib.suppress(OSError, ValueError, AttributeError):  # not a real file (a test's capture)
            target = self._stream.fileno()
            with open(os.devnull, "wb") as devnull:  # closed whether or not dup2 takes the descriptor
                os.dup2(devnull.fileno(), target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def forgiving() -> Iterator[None]:
    """Inside: ``sys.stdout`` and ``sys.stderr`` are :class:`Forgiving`; after, they are as before."""
    before = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Forgiving(sys.stdout), Forgiving(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = before
