"""MMAU (Sakshi et al., ICLR 2025): test-mini and test, scored as the official ``evaluation.py``.

Breakdowns: task (sound, music, speech), difficulty (easy, hard, medium, the official order) and
sub-category (first-seen order); ``category`` (Reasoning / Information Extraction) is an extra,
non-official breakdown, with the 13 list-valued entries (``["Reasoning"]``) read as their element.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import msgspec

from afcot_benchmarks.common import (
    field,
    one_of,
    option_item,
    resolve,
)
from afcot_benchmarks.option_text import OptionTextBenchmark
from afcot_benchmarks.protocol import EvalItem
from afcot_core.api import BadInput

TASKS = ("sound", "music", "speech")
DIFFICULTIES = ("easy", "hard", "medium")
FILES = {"test-mini": "mmau-test-mini.json", "test": "mmau-test.json"}
#: the key the official script reads first; the README's (and EvalAI's) key is accepted after it
PREDICTION_KEYS = ("model_output", "model_prediction")


class MmauConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where the official files are; ``file`` overrides ``data_dir``/``subset``."""

    #: folder with the official file
    data_dir: str = "data/mmau"
    #: test-mini or test
    subset: Literal["test-mini", "test"] = "test-mini"
    #: an explicit file instead of data_dir / subset
    file: str = ""
    #: folder the audio paths are relative to (default: the file's folder)
    audio_root: str = ""
    #: letter the options (A) x. (B) y. and let a leading letter select its option
    lettered: bool = False

    def path(self) -> Path:
        return Path(self.file).expanduser() if self.file else resolve(self.data_dir, FILES[self.subset])

    def audio_dir(self) -> Path:
        return Path(self.audio_root).expanduser() if self.audio_root else self.path().parent


def category_of(value: Any, where: str) -> str:
    """``category`` as a string; a list (13 test-mini items) is joined, as its single element."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return " + ".join(value)
    raise BadInput(f"{where}.category: expected a string or a list of strings")


def parse_item(record: dict[str, Any], where: str, audio_root: Path | None) -> EvalItem:
    """One MMAU record; audio is looked up under ``audio_root`` (skipped when None)."""
    groups = {
        "task": one_of(field(record, "task", where), TASKS, f"{where}.task"),
        "difficulty": one_of(field(record, "difficulty", where), DIFFICULTIES, f"{where}.difficulty"),
        "sub-category": field(record, "sub-category", where),
        "category": category_of(record.get("category", ""), where),
    }
    return option_item(record, where, groups, audio_root, "audio_id")


class Mmau(OptionTextBenchmark):
    name = "mmau"
    prediction_keys = PREDICTION_KEYS
    parse_item = staticmethod(parse_item)
    breakdowns = ("task", "difficulty", "sub-category", "category")

    def group_order(self, breakdown: str) -> tuple[str, ...]:
        return {"task": TASKS, "difficulty": DIFFICULTIES}.get(breakdown, ())

    def export(self, pairs: Iterable[tuple[EvalItem, str | None]]) -> dict[str, str]:
        rows = [{**item.record, "model_output": answer or ""} for item, answer in pairs]
        return {"mmau-predictions.json": json.dumps(rows, indent=2, ensure_ascii=False) + "\n"}


def preflight(config: MmauConfig) -> list[str]:
    path = config.path()
    problems = [] if path.is_file() else [f"MMAU file not found: {path} (set data_dir, subset or file)"]
    if not config.audio_dir().is_dir():
        problems.append(f"MMAU audio folder not found: {config.audio_dir()} (set audio_root)")
    return problems
