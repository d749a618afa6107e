"""Structured logging: a pretty console on stderr and, inside a run, a JSON-lines file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog

_file: TextIO | None = None


def _tee_json(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    if _file is not None:
        _file.write(json.dumps(event, default=str) + "\n")
        _file.flush()
    return event


def configure(log_file: Path | None = None, quiet: bool = False) -> None:
    """Send events to the console (unless ``quiet``) and, when given, to ``log_file`` as JSON lines."""
    global _file
    if _file is not None:
        _file.close()
        _file = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        _file = log_file.open("a", encoding="utf-8")
    renderer: Any = (
        structlog.processors.JSONRenderer() if quiet else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _tee_json,
    ]
    if quiet:
        processors.append(_drop)
    processors.append(renderer)
    structlog.configure(processors=processors, logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                        cache_logger_on_first_use=False)


def _drop(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    raise structlog.DropEvent


def get(name: str = "afcot") -> Any:
    return structlog.get_logger(name)
