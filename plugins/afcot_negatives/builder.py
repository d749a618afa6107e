"""Build 4-option classification MCQs from a labelled source, with the answer letter balanced.

A labelled source maps clips to labels: an FSD50K-style CSV (a ``fname`` column and a ``labels``
column of comma-separated labels; an optional ``split`` column), a JSON object ``{clip: [labels]}``,
or a JSON list / JSONL file of objects ``{"fname" | "clip" | "audio": ..., "labels": [...]}``.

The answer of a clip is its most specific label (one with no descendant among the clip's labels);
a clip with several such labels is skipped or gets one of them at random (``ambiguous``). The other
labels are passed to the sampler as positives to avoid. Letters are assigned from a shuffled, exactly
balanced sequence, so every letter is the answer for ``n/k`` items (±1).
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from afcot_core.api import BadInput, NegativeSampler, make_rng
from afcot_negatives.evalfile import McqEntry
from afcot_negatives.ontology import Ontology, eval_label, label_key

QUESTION = "Classify the sound."
Style = Literal["eval", "as-is"]
_CLIP_FIELDS = ("fname", "clip", "audio", "file", "filename", "name")


@dataclass(frozen=True)
class LabelledClip:
    clip: str
    labels: tuple[str, ...]


@dataclass
class BuildResult:
    entries: list[McqEntry]
    labels: dict[str, tuple[str, ...]]  # entry key -> the clip's positive labels
    skipped: Counter[str] = field(default_factory=Counter)


def _split_labels(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(x.strip() for x in value.split(",") if x.strip())
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return tuple(x.strip() for x in value if x.strip())
    raise BadInput(f"{where}: labels must be a list of strings or a comma-separated string")


def _from_object(obj: Any, where: str) -> LabelledClip:
    if not isinstance(obj, dict):
        raise BadInput(f"{where}: expected an object")
    clip = next((str(obj[f]) for f in _CLIP_FIELDS if obj.get(f) not in (None, "")), None)
    if clip is None or "labels" not in obj:
        raise BadInput(f"{where}: needs a clip field ({'/'.join(_CLIP_FIELDS)}) and 'labels'")
    return LabelledClip(clip, _split_labels(obj["labels"], f"{where}.labels"))


def read_labelled(path: str | Path, split: str | None = None) -> list[LabelledClip]:
    """The clips of a labelled source (see the module docstring), in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc})") from None
    clips: list[LabelledClip] = []
    if path.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        fields = reader.fieldnames or []
        clip_field = next((f for f in _CLIP_FIELDS if f in fields), None)
        if clip_field is None or "labels" not in fields:
            raise BadInput(f"{path}: needs a header with a clip column ({'/'.join(_CLIP_FIELDS)}), 'labels'")
        for n, row in enumerate(reader, start=2):
            if split is None or row.get("split") == split:
                clips.append(LabelledClip(row[clip_field], _split_labels(row["labels"] or "", f"{path}:{n}")))
    elif path.suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    clips.append(_from_object(json.loads(line), f"{path}:{n}"))
                except json.JSONDecodeError as exc:
                    raise BadInput(f"{path}:{n}: not valid JSON ({exc})") from None
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}: not valid JSON ({exc})") from None
        if isinstance(doc, dict):
            clips = [LabelledClip(str(k), _split_labels(v, f"{path}: {k}")) for k, v in doc.items()]
        elif isinstance(doc, list):
            clips = [_from_object(o, f"{path}[{i}]") for i, o in enumerate(doc)]
        else:
            raise BadInput(f"{path}: expected a JSON object or list")
    seen: set[str] = set()
    for c in clips:
        if c.clip in seen:
            raise BadInput(f"{path}: clip '{c.clip}' listed twice")
        seen.add(c.clip)
    return clips


def most_specific(ontology: Ontology, labels: tuple[str, ...], where: str) -> list[str]:
    """The labels that have no descendant among ``labels`` (unknown labels are a :class:`BadInput`)."""
    ids = {label: ontology.require(label, where).id for label in labels}
    present = set(ids.values())
    return [label for label in labels if not ontology.descendants(ids[label]) & present]


def balanced_positions(n: int, k: int, rng: random.Random) -> list[int]:
    """``n`` answer positions in ``range(k)``, each used ``n // k`` or ``n // k + 1`` times, shuffled."""
    positions = [i % k for i in range(n)]
    rng.shuffle(positions)
    return positions


def _stem(clip: str) -> str:
    return Path(clip).stem or clip


def build_mcq(clips: list[LabelledClip], sampler: NegativeSampler, ontology: Ontology, *, options: int = 4,
              seed: int = 0, ambiguous: Literal["skip", "random"] = "random", style: Style = "eval",
              audio_ext: str = ".wav", question: str = QUESTION) -> BuildResult:
    """One MCQ per clip, answer letters balanced; clips that cannot make one are counted in ``skipped``."""
    show: Callable[[str], str] = eval_label if style == "eval" else str
    drafts: list[tuple[str, str, list[str], tuple[str, ...]]] = []
    result = BuildResult([], {})
    for clip in clips:
        if not clip.labels:
            result.skipped["no labels"] += 1
            continue
        leaves = most_specific(ontology, clip.labels, f"clip '{clip.clip}'")
        if len(leaves) > 1 and ambiguous == "skip":
            result.skipped["several most specific labels"] += 1
            continue
        answer = leaves[0] if len(leaves) == 1 else make_rng(seed, "answer", clip.clip).choice(leaves)
        others = [x for x in clip.labels if x != answer]
        negatives = sampler.sample(answer, options - 1, exclude=others, seed=f"{seed}:{clip.clip}")
        choices = [show(answer)] + [show(x) for x in negatives or []]
        if len({label_key(c) for c in choices}) < options:
            result.skipped["too few negatives"] += 1
            continue
        name = clip.clip if Path(clip.clip).suffix or not audio_ext else clip.clip + audio_ext
        drafts.append((name, choices[0], choices[1:], clip.labels))
    positions = balanced_positions(len(drafts), options, make_rng(seed, "letters"))
    for i, ((name, answer, negatives, labels), pos) in enumerate(zip(drafts, positions, strict=True)):
        choices = [*negatives[:pos], answer, *negatives[pos:]]
        result.entries.append(McqEntry(key=str(i), name=name, question=question, choices=tuple(choices),
                                       answer_index=pos))
        result.labels[str(i)] = labels
    return result


def manifest_lines(result: BuildResult, audio_prefix: str = "") -> list[dict[str, Any]]:
    """JSONL lines for the ``manifest`` source: classification items for the CoT algorithms."""
    lines = []
    for e in result.entries:
        lines.append({"id": _stem(e.name), "audio": f"{audio_prefix}{e.name}", "question": e.question,
                      "answer": e.answer, "kind": "classification", "choices": list(e.choices),
                      "labels": list(result.labels[e.key])})
    return lines


def write_manifest(path: str | Path, result: BuildResult, audio_prefix: str = "") -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for line in manifest_lines(result, audio_prefix):
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
