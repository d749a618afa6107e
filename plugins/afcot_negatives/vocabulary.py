"""Loading ontologies (cached) and label vocabularies resolved against them.

A vocabulary restricts the labels a sampler may offer, e.g. FSD50K's 200 classes. It is an inline
list or a file: ``.json`` (a list of labels), ``.csv`` (FSD50K ``vocabulary.csv`` rows
``index,label,mid``: the mid is used when present, else the label) or text (one label per line).
Labels keep their spelling: a sampler returns them as the vocabulary writes them.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from afcot_core.api import BadInput
from afcot_negatives import AUDIOSET_ONTOLOGY
from afcot_negatives.ontology import Ontology


@dataclass(frozen=True)
class Entry:
    """A label as the vocabulary spells it, with the ontology class it resolves to."""

    label: str
    class_id: str


def load_ontology(path: str | Path | None = None) -> Ontology:
    """The ontology at ``path`` (the bundled AudioSet ontology when None), loaded once per file version."""
    p = Path(path) if path else AUDIOSET_ONTOLOGY
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise BadInput(f"{p}: ontology file not found") from None
    return _load(str(p.resolve()), mtime)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: int) -> Ontology:
    return Ontology.from_json(path)


def _raw_labels(path: Path) -> list[tuple[str, str, str | None]]:
    """(where, label, class id if the file gives one) read from a vocabulary file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{path}: cannot read vocabulary ({exc})") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise BadInput(f"{path}: expected a JSON list of label strings")
        return [(f"{path}[{i}]", x, None) for i, x in enumerate(data)]
    if path.suffix == ".csv":
        out = []
        for n, row in enumerate(csv.reader(text.splitlines()), start=1):
            cells = [c.strip() for c in row if c.strip()]
            mid = next((c for c in cells if c.startswith("/")), None)
            names = [c for c in cells if not c.isdigit() and c != mid]
            if names:
                out.append((f"{path}:{n}", names[0], mid))
            elif mid:
                out.append((f"{path}:{n}", mid, mid))
        return out
    lines = enumerate(text.splitlines(), start=1)
    return [(f"{path}:{n}", line.strip(), None) for n, line in lines if line.strip()]


def load_vocabulary(spec: str | list[str] | None, ontology: Ontology,
                    include_restricted: bool = False) -> list[Entry]:
    """The candidate labels: the vocabulary ``spec`` (inline list or file), else every class of ``ontology``.

    Without a vocabulary, "abstract" and "blacklist" classes are left out unless ``include_restricted``;
    a vocabulary is taken as written (listing a class allows it). Each class appears once.
    """
    if spec is None:
        return [Entry(c.name, c.id) for c in ontology if include_restricted or not c.restricted]
    if isinstance(spec, str):
        raw = _raw_labels(Path(spec))
    else:
        raw = [(f"vocabulary[{i}]", x, None) for i, x in enumerate(spec)]
    entries: list[Entry] = []
    seen: set[str] = set()
    for where, text, class_id in raw:
        cls = ontology.require(class_id or text, where)
        label = cls.name if text == cls.id else text
        if cls.id not in seen:
            seen.add(cls.id)
            entries.append(Entry(label, cls.id))
    if not entries:
        raise BadInput(f"{spec if isinstance(spec, str) else 'vocabulary'}: no labels")
    return entries
