"""The ``afthink`` source: items from AF-Think / AF3 training JSON, to regenerate CoT for them.

The file is read as NVIDIA's AF3 loader reads it (:func:`afcot_core.api.load_afthink`): a string or a
list ``sound``, placeholders anywhere in the turn. Each record's first human turn gives the question and its
options in either layout (the CoT suffix is dropped); its answer is the first gpt turn's last CONCLUSION (or the
whole turn), where ``(B) x`` names option B. Audio is ``audio_root/<sound>`` (default: the JSON file's folder; an
absolute ``sound`` is used as it is). Records without audio or with several clips are skipped, and one warning
says how many, why, and the first of each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated

import msgspec

from afcot_core.api import Item, Kind, MustExist, SampleKeys, Source, audio_ref_from_path, get_logger
from afcot_io.formats import Conversation, answer_of, load_afthink, read_afthink, split_prompt


class AfThinkConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the AF-Think source."""

    #: the AF-Think / AF3 training JSON file
    path: Annotated[str, MustExist()]
    #: the folder the records' ``sound`` paths are relative to (default: the JSON file's folder)
    audio_root: str | None = None
    #: the item kind given to every record: "aqa" or "classification" (the file does not say)
    kind: Kind = "aqa"
    #: read only the first N records
    limit: int | None = None


def _audio_root(config: AfThinkConfig) -> Path:
    return Path(config.audio_root) if config.audio_root else Path(config.path).parent


def to_item(conv: Conversation, root: Path, kind: Kind, source: str) -> Item:
    question, choices = split_prompt(conv.turns[0][0])
    return Item(id=conv.id, audio=audio_ref_from_path(root / conv.sound), question=question,
                answer=answer_of(conv.turns[0][1], choices), kind=kind, choices=choices, source=source)


class AfThinkSource(Source):
    def __init__(self, config: AfThinkConfig) -> None:
        self.path = Path(config.path)
        self.root = _audio_root(config)
        self.kind = config.kind
        loaded = load_afthink(self.path)
        self.skipped = loaded.skipped
        if note := loaded.summary(self.path):
            get_logger().warning(note)
        self.records = loaded.records[: config.limit]
        keys = SampleKeys()
        for i, conv in enumerate(self.records):
            keys.add(conv.id, f"{self.path}: record {i}", f"record {i}")

    def count(self) -> int:
        return len(self.records)

    def partitions(self, size: int) -> Iterator[Iterable[Item]]:
        records = iter(self.records)
        while chunk := list(islice(records, size)):
            yield (to_item(c, self.root, self.kind, self.path.stem) for c in chunk)


def preflight(config: AfThinkConfig) -> list[str]:
    records = read_afthink(Path(config.path))  # a malformed file is bad input, not a missing input
    root = _audio_root(config)
    missing = [c.sound for c in records[: config.limit] if not (root / c.sound).is_file()]
    if not missing:
        return []
    return [f"{config.path}: {len(missing)} audio file(s) not found under {root} (first: {missing[0]})"]
