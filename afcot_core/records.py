"""The records that flow through afcot. Everything that leaves a run is one of these."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from afcot_core.errors import BadInput

Kind = Literal["aqa", "classification"]
Verdict = Literal["accepted", "rejected", "failed"]


class AudioRef(msgspec.Struct, frozen=True, kw_only=True):
    """A piece of audio, either a file on disk (``path``) or encoded bytes in memory (``data``)."""

    path: str | None = None
    data: bytes | None = None
    format: str = "flac"
    sample_rate: int = 0
    duration: float = 0.0
    sha256: str = ""


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One question about one clip: an AQA question or a classification among ``choices``."""

    id: str
    audio: AudioRef
    question: str
    answer: str
    kind: Kind = "aqa"
    choices: list[str] | None = None
    source: str = ""
    labels: list[str] = msgspec.field(default_factory=list)


class TeacherCall(msgspec.Struct, frozen=True, kw_only=True):
    """One request to a teacher and its reply, kept in a record's trace.

    ``latency_s`` and ``cache_hit`` describe this process's run, not the data: stored records carry
    them as 0 and false (see :func:`canonical`), so a resumed or cached run writes the same bytes.
    """

    role: Literal["alm", "llm"]
    model: str
    prompt: str
    reply: str
    with_audio: bool = False
    latency_s: float = 0.0
    cache_hit: bool = False


class CoT(msgspec.Struct, frozen=True, kw_only=True):
    """The four parts of a LLaVA-CoT style answer."""

    summary: str
    caption: str
    reasoning: str
    conclusion: str


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of running one item through a strategy."""

    item: Item
    strategy: str
    verdict: Verdict
    cot: CoT | None = None
    reason: str | None = None
    chain: list[tuple[str, str]] = msgspec.field(default_factory=list)
    prediction: str | None = None
    trace: list[TeacherCall] = msgspec.field(default_factory=list)
    fingerprint: str = ""
    #: per-step reason codes noted on the way, e.g. ``predict/fallback`` when a reply would not parse (sorted, so
    #: concurrent steps finishing in another order give the same record)
    codes: list[str] = msgspec.field(default_factory=list)
    #: the question as the teachers saw it, options listed (the released pipelines' ``formatted_question``)
    formatted_question: str = ""
    #: the sub-questions the gate wrote (the released Algorithm 6's ``sub_questions``; empty for the others)
    sub_questions: list[str] = msgspec.field(default_factory=list)


#: the notes of a strategy's evidence that a record keeps, as its fields of the same names
KEPT_NOTES = ("formatted_question", "sub_questions")


def kept_notes(notes: dict[str, object]) -> dict[str, object]:
    """The :data:`KEPT_NOTES` among a strategy's evidence notes (the others stay out of the record)."""
    return {name: notes[name] for name in KEPT_NOTES if name in notes}


def item_without_audio_bytes(item: Item) -> Item:
    """A copy of ``item`` whose audio keeps its metadata but drops in-memory bytes (for JSON sidecars)."""
    return msgspec.structs.replace(item, audio=msgspec.structs.replace(item.audio, data=None))


def canonical(record: Record) -> Record:
    """``record`` as it is stored: wall-clock and cache facts of the trace cleared, audio bytes kept."""
    if not any(call.latency_s or call.cache_hit for call in record.trace):
        return record
    trace = [msgspec.structs.replace(call, latency_s=0.0, cache_hit=False) for call in record.trace]
    return msgspec.structs.replace(record, trace=trace)


def sample_key(item_id: str) -> str:
    """The key a record is stored under: the item id without dots (they separate the extension) or slashes.

    Different ids can share a key (``a/b`` and ``a.b``); sources check their keys are unique.
    """
    if not item_id.strip():
        raise ValueError("an item id must not be empty")
    return re.sub(r"[^A-Za-z0-9_-]", "_", item_id)


class SampleKeys:
    """What a source checks as it reads its ids: none empty, none repeated, no two stored under one sample key."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, str]] = {}  # sample key → (id, where it was read)

    def add(self, item_id: str, where: str, at: str) -> None:
        """Take ``item_id``, read at ``at`` ("line 3"); :class:`BadInput` prefixed with ``where`` when it clashes."""
        if not item_id.strip():
            raise BadInput(f"{where}: empty id")
        key = sample_key(item_id)
        if key in self._seen:
            first, first_at = self._seen[key]
            if first == item_id:
                raise BadInput(f"{where}: duplicate id '{item_id}' (first on {first_at})")
            raise BadInput(f"{where}: id '{item_id}' and id '{first}' ({first_at}) would both be stored as sample "
                           f"'{key}'; rename one of them")
        self._seen[key] = (item_id, at)
