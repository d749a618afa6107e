"""Registers the developer commands; when a generate stage finishes, writes its statistics table (``stats.md``) and
the dataset card."""

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
        from afcot_devtools import datacard, stats_table

        folder = Path(out_dir) / "generate"
        stats = stats_table.write(folder)  # stats.json, written by the stage from the shards: read once for both
        datacard.write(folder, stats=stats)
