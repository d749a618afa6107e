"""Registers the developer commands and writes the dataset card when a generate stage finishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afcot_core.api import hookimpl


@hookimpl
def register_commands(register: Any) -> None:
    from afcot_devtools import commands

    for name, help, configure, run in commands.COMMANDS:
        register(name, help, configure, run)


@hookimpl
def stage_finished(stage: str, out_dir: Path, log: Any) -> None:
    if stage == "generate":
        import json

        from afcot_devtools import datacard

        folder = Path(out_dir) / "generate"
        stats = folder / "stats.json"  # written by the stage from the shards: they are read once for both
        datacard.write(folder, stats=json.loads(stats.read_text(encoding="utf-8")) if stats.is_file() else None)
