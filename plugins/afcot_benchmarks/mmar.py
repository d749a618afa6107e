"""MMAR (Ma et al., 2025): scored as the official ``code/evaluation.py`` (accuracy path).

Breakdowns: modality (7, fixed order), category (4 layers, fixed order), sub-category (first-seen
order). Predictions are read from ``answer_prediction``, or the v1 key ``model_prediction``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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

MODALITIES = ("sound", "music", "speech", "mix-sound-music", "mix-sound-speech", "mix-music-speech",
              "mix-sound-music-speech")
CATEGORIES = ("Signal Layer", "Perception Layer", "Semantic Layer", "Cultural Layer")
PREDICTION_KEYS = ("answer_prediction", "model_prediction")


class MmarConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``file`` (JSONL, or the v1 JSON list) under ``data_dir``; audio under ``audio_root``."""

    #: folder with the official file
    data_dir: str = "data/mmar"
    #: an explicit file instead of data_dir / subset
    file: str = "MMAR-meta.jsonl"
    #: folder the audio paths are relative to (default: the file's folder)
    audio_root: str = ""
    #: letter the options (A) x. (B) y. and let a leading letter select its option
    lettered: bool = False

    def path(self) -> Path:
        return resolve(self.data_dir, self.file)

    def audio_dir(self) -> Path:
        return Path(self.audio_root).expanduser() if self.audio_root else self.path().parent


def category_of(record: dict[str, Any], where: str) -> str:
    """The layer; a one-element list is read as its element (the official script would crash)."""
    value = record.get("category")
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise BadInput(f"{where}.category: expected a string (or a one-element list)")
    return one_of(value, CATEGORIES, f"{where}.category")


def parse_item(record: dict[str, Any], where: str, audio_root: Path | None) -> EvalItem:
    """One MMAR record; audio is ``audio_root/audio_path`` (never derived from the id)."""
    groups = {
        "modality": one_of(field(record, "modality", where), MODALITIES, f"{where}.modality"),
        "category": category_of(record, where),
        "sub-category": field(record, "sub-category", where),
    }
    return option_item(record, where, groups, audio_root, "audio_path")


class Mmar(OptionTextBenchmark):
    name = "mmar"
    prediction_keys = PREDICTION_KEYS
    parse_item = staticmethod(parse_item)
    breakdowns = ("modality", "category", "sub-category")

    def group_order(self, breakdown: str) -> tuple[str, ...]:
        return {"modality": MODALITIES, "category": CATEGORIES}.get(breakdown, ())

    def export(self, pairs: Iterable[tuple[EvalItem, str | None]]) -> dict[str, str]:
        rows = [{**item.record, "answer_prediction": answer or ""} for item, answer in pairs]
        return {"mmar-predictions.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)}


def preflight(config: MmarConfig) -> list[str]:
    path = config.path()
    problems = [] if path.is_file() else [f"MMAR file not found: {path} (set data_dir or file)"]
    if not config.audio_dir().is_dir():
        problems.append(f"MMAR audio folder not found: {config.audio_dir()} (set audio_root)")
    return problems
