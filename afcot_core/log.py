"""Structured logging: a pretty console on stderr and, inside a run, a JSON-lines file.

Console lines go through one rich :func:`console`, the same one progress bars draw on, so that in a
terminal a log line is printed above a live bar and never into its line. Other libraries print no bars of their
own, and their Python ``logging`` warnings become afcot events (:func:`quiet_libraries`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import structlog
from rich.console import Console
from rich.text import Text

_file: TextIO | None = None
_file_lock = threading.Lock()  # events come from worker threads too; one may arrive while the run's file closes


class _StderrConsole(Console):
    def on_broken_pipe(self) -> None:
        """The reader of stderr has gone: write nothing more, and let the work go on (rich would exit)."""
        self.quiet = True


@functools.cache
def console() -> Console:
    """The stderr console shared by log lines and progress bars (it follows ``sys.stderr`` when replaced)."""
    return _StderrConsole(stderr=True)


class _ConsoleLogger:
    """A structlog logger that prints rendered lines through :func:`console`.

    A console that cannot be written any more (``afcot ... 2>&1 | head`` after head left, a closed terminal) is
    given up on: the run goes on, and its JSON-lines file still gets every event.
    """

    gone = False

    def msg(self, message: str) -> None:
        if _ConsoleLogger.gone:
            return
        out = console()
        try:
            if out.is_terminal:
                out.print(Text.from_ansi(message), soft_wrap=True, highlight=False)
            else:
                out.file.write(message + "\n")
                out.file.flush()
        except (OSError, ValueError):  # ValueError: the stream was closed
            _ConsoleLogger.gone = True

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _tee_json(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    with _file_lock:
        if _file is not None:
            _file.write(json.dumps(event, default=str) + "\n")
            _file.flush()
    return event


def configure(log_file: Path | None = None, quiet: bool = False) -> None:
    """Send events to the console (unless ``quiet``) and, when given, to ``log_file`` as JSON lines."""
    global _file
    close()
    quiet_libraries()
    _ConsoleLogger.gone = False
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock:
            _file = log_file.open("a", encoding="utf-8")
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _tee_json,
    ]
    if quiet:
        processors.append(_drop)
    processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(processors=processors, logger_factory=lambda *_: _ConsoleLogger(),
                        cache_logger_on_first_use=False)


class _Routed(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        getattr(get(record.name), level)(record.getMessage())


def quiet_libraries() -> None:
    """No progress bars of ``huggingface_hub`` and ``transformers`` ("Loading weights", "Writing model shards"), and
    warnings sent through Python's ``logging`` (accelerate's ``[RANK 0] Removed shared tensor``) as afcot events:
    in the run's file, and on the console unless quiet. transformers' own warnings are left at errors only."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # for libraries imported later
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for module, calls in (("huggingface_hub.utils", ("disable_progress_bars",)),
                          ("transformers.utils.logging", ("disable_progress_bar", "set_verbosity_error"))):
        for call in calls if module in sys.modules else ():
            getattr(sys.modules[module], call)()
    root = logging.getLogger()
    if not any(isinstance(h, _Routed) for h in root.handlers):
        root.addHandler(_Routed(logging.WARNING))


def close() -> None:
    """Close the JSON-lines file, if one is open; later events reach the console only."""
    global _file
    with _file_lock:
        if _file is not None:
            _file.close()
            _file = None


@contextlib.contextmanager
def run_log(log_file: Path, quiet: bool = False) -> Iterator[None]:
    """Log to ``log_file`` inside the block; after it the file is closed and logging is as it was before."""
    before = structlog.get_config()
    configure(log_file, quiet)
    try:
        yield
    finally:
        close()
        structlog.configure(**before)


def _drop(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    raise structlog.DropEvent


def get(name: str = "afcot", /, **values: Any) -> Any:
    """A logger carrying ``values``; it takes the configuration current when it logs, not when it was made."""
    return structlog.get_logger(name, **values)
