"""A JSONL manifest of audio files: one item per line.

Each line is an object with ``id``, ``audio`` (a path, relative to ``audio_root`` or the manifest's
folder), ``question``, ``answer`` and optionally ``kind`` ("aqa" or "classification"),
``choices`` and ``labels``. The whole manifest is checked before a run starts (a manifest with no
items, or an ``audio_root`` that is not a folder, is an error); an unreadable or empty audio file does not
stop the run: that item is rejected with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated

import msgspec

from afcot_core.api import BadInput, Item, Kind, MustExist, SampleKeys, Source, answer_in_choices, audio_ref_from_path


class ManifestConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the manifest source."""

    #: the JSONL manifest file
    path: Annotated[str, MustExist()]
    #: the folder that relative ``audio`` paths start from (default: the manifest's folder)
    audio_root: str | None = None
    #: read only the first ``limit`` items (at least 1); leave it out to read every item
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit = {self.limit}: must be at least 1 (leave it out to read every item)")


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
    if not path.is_file():
        raise BadInput(f"{path}: {'is a folder, not' if path.is_dir() else 'no such'} manifest file")
    lines: list[ManifestLine] = []
    keys = SampleKeys()
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
            if not raw.strip():
                continue
            try:
                line = msgspec.json.decode(raw, type=ManifestLine)
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
                raise BadInput(f"{path}:{number}: {exc}") from None
            keys.add(line.id, f"{path}:{number}", f"line {number}")
            if line.choices is not None and not answer_in_choices(line.answer, line.choices):
                raise BadInput(f"{path}:{number}: answer '{line.answer}' is not one of the choices (as given or "
                               f"with its option tag, e.g. '(A) {line.choices[0] if line.choices else ''}')")
            lines.append(line)
    if not lines:
        raise BadInput(f"{path}: the manifest holds no items")
    return lines


def _audio_root(config: ManifestConfig) -> Path:
    if config.audio_root is None:
        return Path(config.path).parent
    root = Path(config.audio_root)
    if not root.is_dir():
        raise BadInput(f"audio_root {root}: {'is not a folder' if root.exists() else 'no such folder'}")
    return root


class ManifestSource(Source):
    def __init__(self, config: ManifestConfig) -> None:
        self.path = Path(config.path)
        self.root = _audio_root(config)
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
    """What is missing: the audio folder. A malformed manifest is bad input of its own (raised, never listed as
    missing)."""
    read_manifest(Path(config.path))
    try:
        _audio_root(config)
    except BadInput as exc:
        return [str(exc)]
    return []
