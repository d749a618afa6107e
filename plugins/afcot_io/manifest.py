"""A JSONL manifest of audio files: one item per line.

Each line is an object with ``id``, ``audio`` (a path, relative to ``audio_root`` or the manifest's
folder), ``question``, ``answer`` and optionally ``kind`` ("aqa" or "classification"),
``choices`` and ``labels``. The whole manifest is checked before a run starts; an unreadable or
empty audio file does not stop the run: that item is rejected with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated

import msgspec

from afcot_core.audio import audio_ref_from_path
from afcot_core.errors import BadInput
from afcot_core.protocols import Source
from afcot_core.recipe import MustExist
from afcot_core.records import Item, Kind


class ManifestConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the manifest source."""

    path: Annotated[str, MustExist()]
    audio_root: str | None = None
    limit: int | None = None


class ManifestLine(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    audio: str
    question: str
    answer: str
    kind: Kind = "aqa"
    choices: list[str] | None = None
    labels: list[str] = msgspec.field(default_factory=list)


def read_manifest(path: Path) -> list[ManifestLine]:
    """Every line of the manifest; :class:`BadInput` names the file, the line and the problem."""
    lines: list[ManifestLine] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                line = msgspec.json.decode(raw, type=ManifestLine)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise BadInput(f"{path}:{number}: {exc}") from None
            if line.id in seen:
                raise BadInput(f"{path}:{number}: duplicate id '{line.id}' (first on line {seen[line.id]})")
            if line.choices is not None and line.answer not in line.choices:
                raise BadInput(f"{path}:{number}: answer '{line.answer}' is not one of the choices")
            seen[line.id] = number
            lines.append(line)
    return lines


class ManifestSource(Source):
    def __init__(self, config: ManifestConfig) -> None:
        self.path = Path(config.path)
        self.root = Path(config.audio_root) if config.audio_root else self.path.parent
        self.lines = read_manifest(self.path)[: config.limit]

    def count(self) -> int:
        return len(self.lines)

    def _item(self, line: ManifestLine) -> Item:
        return Item(id=line.id, audio=audio_ref_from_path(self.root / line.audio), question=line.question,
                    answer=line.answer, kind=line.kind, choices=line.choices, labels=line.labels,
                    source=str(self.path))

    def partitions(self, size: int) -> Iterator[Iterable[Item]]:
        lines = iter(self.lines)
        while chunk := list(islice(lines, size)):
            yield (self._item(line) for line in chunk)


def preflight(config: ManifestConfig) -> list[str]:
    try:
        read_manifest(Path(config.path))
    except BadInput as exc:
        return [str(exc)]
    return []
