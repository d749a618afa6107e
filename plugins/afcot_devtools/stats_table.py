"""``generate/stats.md``: the run statistics (``stats.json``, written by the generate stage) as a Markdown table,
one row per strategy and source, then the total; written when a generate stage finishes, and printed at the end of
``afcot recipe run``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from afcot_core.api import atomic_write


def write(generate_dir: Path) -> dict[str, Any] | None:
    """``stats.md`` from the ``stats.json`` beside it (nothing when there is none); the statistics read."""
    source = generate_dir / "stats.json"
    if not source.is_file():
        return None
    stats = json.loads(source.read_text(encoding="utf-8"))
    suffix = f".{os.getpid()}.tmp"  # ranks may write at the same time: each its own temporary file
    atomic_write(generate_dir / "stats.md", lambda tmp: tmp.write_text(markdown(stats), encoding="utf-8"), suffix)
    return stats


def markdown(stats: dict[str, Any]) -> str:
    """The statistics as a Markdown table (one row per strategy and source, then the total)."""
    head = ("| strategy | source | items | accepted | yield | mean sub-Qs / rounds | calls / accepted (ALM + LLM) "
            "| tokens / accepted | causality rejects | reject reasons |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]

    def cell(row: dict[str, Any], strategy: str, source: str) -> str:
        calls = row["calls_per_accepted"]
        reasons = ", ".join(f"{k} {v}" for k, v in row["reject_reasons"].items()) or "-"
        rate = "-" if row["causality_rejection_rate"] is None else f"{row['causality_rejection_rate']:.0%}"
        return (f"| {strategy} | {source or '-'} | {row['items']} | {row['accepted']} | {row['yield']:.0%} "
                f"| {_num(row['mean_steps'])} | {_num(calls['alm'])} + {_num(calls['llm'])} "
                f"| {_num(row['tokens_per_accepted'], 0)} | {rate} | {reasons} |")

    lines += [cell(row, row["strategy"], row["source"]) for row in stats["rows"]]
    lines.append(cell(stats["total"], "**all**", ""))
    notes = [f"Tokens are estimated as {stats['token_estimate']}."]
    if "run" in stats:
        notes.append(f"This run: {stats['run'].get('calls', 0)} teacher calls, "
                     f"{stats['run'].get('cache_hits', 0)} answered from the replay cache.")
    return "\n".join(lines) + "\n\n" + " ".join(notes) + "\n"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
